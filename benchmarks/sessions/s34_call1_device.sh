# session 34 call 1 (issue 13): prefill glue as engines fuse it: act(gate) * up in one launch (gated_act.cu), RoPE
# with the paged-cache write and the rotated keys out in one launch for prefill (rope_cache.cu, GQA and MLA), the
# add + RMS norm kernel sized to its row (norm.cu entries 1-16). GPU tests of what changed, then the prefill
# profiles of the four models whose TTFT it touches, then verify on all ten models.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
{
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_gated_act.py tests/test_norm.py \
  tests/test_rope_cache.py tests/test_prefill_kernels.py tests/test_verify_gpu.py tests/test_mxfp4_gpu.py \
  -k "not end_to_end and not interrupt and not cli" 2>&1 | tail -15 | cut -c1-300
for m in openai/gpt-oss-20b deepseek-ai/DeepSeek-V2-Lite "Qwen/Qwen3-Next-80B-A3B-Thinking --tp 2" \
  meta-llama/Llama-3.1-8B-Instruct; do
  timeout 60 python3 benchmarks/prefill_profile.py $m --top 16 2>&1 | grep -v "Warn\|_warn_once" | cut -c1-250
done
OUT=$OUT/v timeout 330 python3 benchmarks/verify_device_run.py models --budget=320 > /dev/null 2>&1
python3 benchmarks/verify_summary_md.py $OUT/v/results.jsonl
} 2>&1 | tee $OUT/s34_call1_h200_2026-12-03.txt
