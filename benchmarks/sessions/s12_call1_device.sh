# Session 12 call 1: MLA 16 heads, where the step time goes. DRAM vs L2-resident times per variant
# (benchmarks/mla_probe.py), then Nsight Compute's full set on the default launch (16h B32 8K) and its stall lines.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv > $OUT/gpu.txt
timeout 240 python3 benchmarks/mla_probe.py "stages=3;tokens=64" > $OUT/probe.txt 2>&1
cat $OUT/probe.txt
NCU=/usr/local/cuda/bin/ncu
timeout 150 $NCU -f -o /tmp/full --kernel-name kvp_mla_decode --launch-skip 2 --launch-count 1 --set full \
  python3 benchmarks/probes/mla_one_launch.py > $OUT/ncu_full_run.txt 2>&1
$NCU --import /tmp/full.ncu-rep --page details > $OUT/ncu_full_details.txt 2>&1
NCU_OUT=$OUT/stalls timeout 150 bash benchmarks/ncu_kernel_device.sh kvp_mla_decode benchmarks/probes/mla_one_launch.py
head -30 $OUT/stalls/top_stalls.txt
