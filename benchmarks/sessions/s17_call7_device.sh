# Session 17 call 7: Nsight Compute (boost clock) of the CTA-ring streaming GEMV against cuBLAS, Llama-3.1-8B's
# gate_up (28672 x 4096) and o_proj (4096 x 4096) at batch 1: one launch each, no PDL overlap in a profile.
export NCU_CLOCK=none
for shape in "28672 4096" "4096 4096"; do
for form in "linear" "gemv 1 8" "gemv 1 12"; do
  set -- $form
  k=kvp_gemv_stream_bf16; [ $1 = linear ] && k=regex:nvjet
  d=$OUT/${shape// /x}_${form// /_}
  NCU_OUT=$d NCU_SKIP=3 bash benchmarks/ncu_kernel_device.sh $k benchmarks/probes/gemv_one_launch.py $shape 1 $form
  echo "== $shape $form"; grep -E "Duration|DRAM Throughput|L2 Cache Throughput|Achieved Occupancy|Dynamic Shared|Registers Per" $d/ncu_details.txt | head -8
  head -8 $d/top_stalls.txt | tail -6
  rm -f $d/ncu_run.txt
done
done
