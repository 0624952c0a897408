# session 33 call 8 (issue 13): where gpt-oss-20b's and DeepSeek-V2-Lite's 8,192-token TTFT goes (prefill_profile.py;
# +48% and +31% against their prefill estimates in call 4), for the next session.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
{
for m in openai/gpt-oss-20b deepseek-ai/DeepSeek-V2-Lite; do
  timeout 100 python3 benchmarks/prefill_profile.py $m --top 14 2>&1 | grep -v "Warn\|_warn_once" | cut -c1-250
done
} 2>&1 | tee $OUT/s33_call8_h200_2026-12-03.txt
