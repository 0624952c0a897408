# Nsight Compute on the MLA decode kernel (16 heads, B32 8K, the default launch): where its warps stall.
#     Device: bash benchmarks/mla_ncu_device.sh
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 KVPLAN_CACHE_DIR=/tmp/kc-line KVPLAN_NVRTC_LINEINFO=1
which ncu nsys > $OUT/log.txt 2>&1; ls /usr/local/cuda*/bin 2>/dev/null | grep -i "ncu\|nsys" >> $OUT/log.txt
NCU=$(which ncu || ls /usr/local/cuda*/bin/ncu /opt/nvidia/nsight-compute*/ncu 2>/dev/null | head -1)
echo "ncu: $NCU" >> $OUT/log.txt
timeout 200 $NCU --kernel-name kvp_mla_decode --launch-skip 2 --launch-count 1 --section SpeedOfLight \
  --section WarpStateStats --section Occupancy --section MemoryWorkloadAnalysis --section SourceCounters \
  --section SchedulerStats python3 benchmarks/mla_one_launch.py > $OUT/ncu_mla.txt 2>&1
tail -c 20000 $OUT/ncu_mla.txt | head -c 100 > /dev/null
grep -v "^==PROF==" $OUT/ncu_mla.txt | head -250 >> $OUT/log.txt
