# Session 16 call 9: Nsight Compute at the boost clock (--clock-control none) on fp8 B64 8K, 2 against 3 ring stages
# (in CUDA graphs 263 against 297 us; at the profiler's base clock 298 against 293): where the deeper ring loses.
export NCU_CLOCK=none
for st in 2 3; do
  NCU_OUT=$OUT/st$st bash benchmarks/ncu_kernel_device.sh kvp_decode benchmarks/gqa_one_launch.py 64 8192 128 32 8 fp8 "kv_per_cta=8 bulk=True stages=$st"
  echo "## stages $st"; grep -E "Duration|DRAM Throughput|L2 Hit|L1/TEX Hit|Mem Busy|Max Bandwidth|Warp Cycles Per Issued|SM Frequency|DRAM Frequency|Achieved Occupancy" $OUT/st$st/ncu_details.txt | head -20
  cat $OUT/st$st/stall_reasons.txt; head -10 $OUT/st$st/top_stalls.txt | cut -c1-120
done
