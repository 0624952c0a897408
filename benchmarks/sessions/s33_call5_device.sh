# session 33 call 5 (issue 13): call 4's two failures (tiny Qwen3-Next GPU forward at 128 x 128 DeltaNet heads):
# the test's message; the new test of the DeltaNet prefill kernels against their torch forms through the same tiny
# model; the error with each DeltaNet kernel refused in turn (benchmarks/probes/dn_forward_probe.py).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
{
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_verify_gpu.py tests/test_prefill_kernels.py \
  -k "qwen3_next or logits" 2>&1 | grep -E "^E |passed|failed" | head -16
timeout 200 python3 benchmarks/probes/dn_forward_probe.py 2>&1 | grep -v "Warn\|_warn_once"
} 2>&1 | tee $OUT/s33_call5_h200_2026-12-03.txt
