# Session 15 call 7: Nsight Compute on fp8 B64 8K (the default launch: 8 KV heads sharing a bulk ring), pages
# shuffled against pages in address order (4% apart in call 4), to see where scattered pages cost the kernel.
for o in shuffled ordered; do
  if [ $o = ordered ]; then export KVP_ORDERED_PAGES=1; fi
  NCU_OUT=$OUT/$o bash benchmarks/ncu_kernel_device.sh kvp_decode benchmarks/gqa_one_launch.py 64 8192 128 32 8 fp8
  echo "## $o"; grep -E "Duration|DRAM Throughput|Memory Throughput|L2 Hit|L1/TEX Hit|Warp Cycles Per Issued|Achieved Occupancy|Registers Per|Mem Busy|Max Bandwidth|Mem Pipes" $OUT/$o/ncu_details.txt | head -20
  cat $OUT/$o/stall_reasons.txt; head -14 $OUT/$o/top_stalls.txt | cut -c1-120
done
