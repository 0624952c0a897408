# session 34 call 3 (issue 13): the DeltaNet chunks' q_eff, M_c and output as baddbmm with alpha / beta (three fewer
# passes over fp32 tensors a layer). The DeltaNet GPU tests (kernels against the torch forms and the recurrence, the
# tiny Qwen3-Next forward), Qwen3-Next's prefill profile, and verify on Qwen3-Next.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
{
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_prefill_kernels.py tests/test_deltanet_step.py \
  tests/test_verify_gpu.py -k "not end_to_end and not interrupt and not cli" 2>&1 | tail -4 | cut -c1-300
timeout 60 python3 benchmarks/prefill_profile.py Qwen/Qwen3-Next-80B-A3B-Thinking --tp 2 --top 24 2>&1 \
  | grep -v "Warn\|_warn_once" | cut -c1-200
OUT=$OUT/v timeout 150 python3 benchmarks/verify_device_run.py models --only=qwen3next-tp2 --budget=140 > /dev/null 2>&1
python3 benchmarks/verify_summary_md.py $OUT/v/results.jsonl
} 2>&1 | tee $OUT/s34_call3_h200_2026-12-03.txt
