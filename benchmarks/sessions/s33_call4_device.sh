# session 33 call 4 (issue 13): the DeltaNet prefill from the projection to the chunked rule's inputs in one kernel
# (convolution, SiLU, q/k norms, key heads to value heads, chunk-major) and its gated output norm as a kernel; the
# tiny Qwen3-Next forward test at 128 x 128 DeltaNet heads (prefill kernels and decode step kernel against the
# float64 reference). GPU tests; the prefill kernels against their torch forms; Qwen3-Next's prefill profile; then
# verify on all ten models (the table of record for this tree).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
{
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_prefill_kernels.py tests/test_deltanet_step.py \
  tests/test_verify_gpu.py -k "not end_to_end and not interrupt and not cli" 2>&1 | tail -4
timeout 60 python3 benchmarks/probes/prefill_kernels_time.py
timeout 120 python3 benchmarks/prefill_profile.py Qwen/Qwen3-Next-80B-A3B-Thinking --tp 2 --top 24 2>&1 \
  | grep -v "Warn\|_warn_once" | cut -c1-280
OUT=$OUT/v timeout 330 python3 benchmarks/verify_device_run.py models --budget=320 > /dev/null 2>&1
python3 benchmarks/verify_summary_md.py $OUT/v/results.jsonl
} 2>&1 | tee $OUT/s33_call4_h200_2026-12-03.txt
