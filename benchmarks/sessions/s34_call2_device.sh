# session 34 call 2 (issue 13): RoPE + cache eight values a thread (rope_cache.cu's _v8 entries, GQA and MLA) and
# GELU as x sigmoid(2u) in gated_act.cu. GPU tests of what changed, compute-sanitizer over small launches of every
# new entry, the prefill profiles, then verify on all ten models (the table of record for this tree).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
{
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_gated_act.py tests/test_norm.py \
  tests/test_rope_cache.py tests/test_verify_gpu.py \
  -k "not end_to_end and not interrupt and not cli" 2>&1 | tail -6 | cut -c1-300
for tool in memcheck racecheck synccheck; do
  echo "== $tool"; timeout 60 compute-sanitizer --report-api-errors no --tool $tool python3 \
    benchmarks/probes/prefill_glue_check.py 2>&1 | tail -2
done
for m in openai/gpt-oss-20b deepseek-ai/DeepSeek-V2-Lite meta-llama/Llama-3.1-8B-Instruct google/gemma-3-27b-it; do
  timeout 60 python3 benchmarks/prefill_profile.py $m --top 10 2>&1 | grep -v "Warn\|_warn_once" | cut -c1-200
done
OUT=$OUT/v timeout 330 python3 benchmarks/verify_device_run.py models --budget=320 > /dev/null 2>&1
python3 benchmarks/verify_summary_md.py $OUT/v/results.jsonl
} 2>&1 | tee $OUT/s34_call2_h200_2026-12-03.txt
