# session 33 call 3 (issue 13): the scan kernel with interleaved columns of M (whole sectors), the convolution with
# 16-byte weight loads and 32-bit indices (and the gather-sum). GPU tests; the three kernels
# against their torch forms alone; Qwen3-Next's prefill profile with the kernels and with the torch forms (A/B, same
# machine); verify on Qwen3-Next.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
{
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_prefill_kernels.py tests/test_deltanet_step.py \
  tests/test_verify_gpu.py -k "not end_to_end and not interrupt and not cli" 2>&1 | tail -4
timeout 60 python3 benchmarks/probes/prefill_kernels_time.py
Q=Qwen/Qwen3-Next-80B-A3B-Thinking
for flags in "" "--torch-deltanet --torch-combine"; do
  timeout 120 python3 benchmarks/prefill_profile.py $Q --tp 2 --top 16 $flags 2>&1 | grep -v "Warn\|_warn_once" \
    | cut -c1-280
done
OUT=$OUT/v timeout 150 python3 benchmarks/verify_device_run.py models --only=qwen3next-tp2 \
  --budget=140 > /dev/null 2>&1
python3 benchmarks/verify_summary_md.py $OUT/v/results.jsonl
} 2>&1 | tee $OUT/s33_call3_h200_2026-12-03.txt
