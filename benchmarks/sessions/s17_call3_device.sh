# Session 17 call 3: Nsight Compute of the streaming GEMV against cuBLAS on Llama-3.1-8B's gate_up (28672 x 4096,
# batch 1) at the boost clock: where does the GEMV's stream (74-79% of read) lose to cuBLAS's (91%)?
export NCU_CLOCK=none
for form in "linear" "gemv 2 4" "gemv 4 4" "gemv 2 8"; do
  set -- $form
  k=kvp_gemv_stream_bf16; [ $1 = linear ] && k=regex:nvjet
  NCU_OUT=$OUT/${form// /_} NCU_SKIP=3 bash benchmarks/ncu_kernel_device.sh $k benchmarks/probes/gemv_one_launch.py 28672 4096 1 $form
  echo "== $form"; grep -E "Duration|DRAM Throughput|Memory Throughput|L2 Cache Throughput|L1/TEX Hit|L2 Hit|Achieved Occupancy|Registers Per|Block Limit|Dynamic Shared|Warp Cycles Per Issued|Issued Warp" $OUT/${form// /_}/ncu_details.txt | head -24
  head -12 $OUT/${form// /_}/stall_reasons.txt
done
