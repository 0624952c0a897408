# Prepared in session 22 for issue 13, not yet run (it was s23_call1_device.sh; session 23 took that name): why
# the row-owned GEMV's two-CTA ring depth moves single shapes by 5-10 points (session 22 calls 7 and 10): the timeline
# of each launch (entry, waits, first stage, end, spread) for rings of 5 / 6 / 8 and the in-order default,
# Llama-3.1-8B and Qwen3-14B at batch 1 and 8.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
for m in Llama-3.1-8B Qwen3-14B; do for b in 1 8; do
  timeout 100 python3 benchmarks/gemv_trace.py --model $m --batch $b --forms c1,o2d5,o2,o2d8 \
    --out $OUT/trace_${m}_b$b.json 2>&1 | tee -a $OUT/log.txt | grep -E "^==|^\| [0-9]"
done; done
