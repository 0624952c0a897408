# Session 16 call 5: Nsight Compute on fp8 B64 8K, 8 KV heads sharing a bulk ring of 2 stages (the default) against
# 3 stages (same 2 CTAs per SM, 18% slower in call 4): where the deeper ring loses its time.
for st in 2 3; do
  NCU_OUT=$OUT/st$st bash benchmarks/ncu_kernel_device.sh kvp_decode benchmarks/gqa_one_launch.py 64 8192 128 32 8 fp8 "kv_per_cta=8 bulk=True stages=$st"
  echo "## stages $st"; grep -E "Duration|DRAM Throughput|L2 Hit|Warp Cycles Per Issued|Achieved Occupancy|Registers Per|Block Limit|Dynamic Shared" $OUT/st$st/ncu_details.txt | head -20
  cat $OUT/st$st/stall_reasons.txt; head -24 $OUT/st$st/top_stalls.txt | cut -c1-150
done
