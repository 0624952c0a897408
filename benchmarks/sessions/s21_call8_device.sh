# Session 21, call 8 (issue 13): verify with the rotated GEMV as a fifth matmul form timed at start (call 7: the
# rotated order wins on Qwen3-14B's four shapes, Llama-3.1-8B's qkv (b2-8) and down, loses on aligned ranges and the
# 8B gate_up). GEMV and verify GPU tests (stop on a failure), then verify on Llama-3.1-8B, Qwen3-14B, Llama-3.2-1B:
# weight stream % of read per batch, which form each (shape, batch) took, decode step at batch 1 and max.
bash benchmarks/verify_three_device.sh || exit 1
