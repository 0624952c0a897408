# session 33 call 1 (issue 13): two prefill kernels (deltanet_prefill.cu: the chunked DeltaNet's chunk-to-chunk state
# recurrence in one launch; moe_gather_sum.cu: the grouped MoE path's weighted sum in one launch). Their GPU tests and
# verify's GPU forward tests; Qwen3-Next's prefill profile with both kernels, with the torch forms (A/B, same machine),
# and with TF32 allowed; then verify on the four MoE models (TTFT against the prefill estimate).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
{
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_prefill_kernels.py tests/test_deltanet_step.py \
  tests/test_verify_gpu.py -k "not end_to_end and not interrupt and not cli" 2>&1 | tail -4
Q=Qwen/Qwen3-Next-80B-A3B-Thinking
for flags in "" "--torch-scan --torch-combine" "--tf32"; do
  timeout 120 python3 benchmarks/prefill_profile.py $Q --tp 2 --top 14 $flags 2>&1 | grep -v "Warn\|_warn_once" \
    | cut -c1-170
done
OUT=$OUT/v timeout 200 python3 benchmarks/verify_device_run.py models --only=dsv2-lite,gpt-oss-20b,mixtral-tp2,qwen3next-tp2 \
  --budget=190 > /dev/null 2>&1
python3 benchmarks/verify_summary_md.py $OUT/v/results.jsonl
} 2>&1 | tee $OUT/s33_call1_h200_2026-12-03.txt
