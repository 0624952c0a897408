# Session 22, call 5 (issue 13): verify with the row-owned GEMV as a sixth matmul form timed at start (call 4: it
# wins on 8B o / gate_up / down and 1B qkv / o / gate_up / down with its launch rule, loses elsewhere). GEMV and
# verify GPU tests (stop on a failure), then verify on Llama-3.1-8B, Qwen3-14B, Llama-3.2-1B:
# weight stream % of read per batch, which form each (shape, batch) took, decode step at batch 1 and max.
bash benchmarks/verify_three_device.sh || exit 1
