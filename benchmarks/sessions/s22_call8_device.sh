# Session 22, call 8 (issue 13): verify with the row-owned GEMV launched two CTAs per SM with rings of 6 (call 7: the
# whole-model chain 90.8% of read on Llama-3.1-8B at b1, against 79.8 with rings of 4). GEMV and
# verify GPU tests (stop on a failure), then verify on Llama-3.1-8B, Qwen3-14B, Llama-3.2-1B:
# weight stream % of read per batch, which form each (shape, batch) took, decode step at batch 1 and max.
bash benchmarks/verify_three_device.sh || exit 1
timeout 120 python3 benchmarks/skinny_gemm.py --gemv --per-shape-all --forms "c1 d8,own auto" 2>&1 | grep -v registers | tee $OUT/bench.txt | tail -12
