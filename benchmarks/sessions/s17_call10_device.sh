# Session 17 call 10: the streaming GEMV's workspace by a shared tile's first CTA (a few hundred KB whatever n is;
# call 9's per-tile workspace pinned a freed cached segment: NVML allocation check -3.1% / -2.5%): GPU tests,
# memcheck, then verify of the three dense models again.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
timeout 100 python3 -m pytest -q -p no:cacheprovider tests/test_gemv_stream_gpu.py 2>&1 | tail -1
timeout 100 compute-sanitizer --tool memcheck --report-api-errors no python3 -m pytest -q -x -p no:cacheprovider \
  tests/test_gemv_stream_gpu.py -k "16-64 or 3-192 or chain or several" 2>&1 | grep -E "ERROR SUMMARY|passed|failed" | tail -2
timeout 150 python3 benchmarks/verify_device_run.py models --only=llama8b-8k,qwen3-14b,llama1b --budget=140 > /dev/null 2>&1; tail -5 $OUT/summary.txt
python3 - <<'PY'
import json, os
for line in open(os.path.join(os.environ["OUT"], "results.jsonl")):
    r = json.loads(line); v = (r["result"] or {}).get("verdict", {})
    print(r["name"], v.get("capacity_confirmed"), v.get("capacity_reason", "")[:110])
PY
