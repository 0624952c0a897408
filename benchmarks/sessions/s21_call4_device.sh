# Ran at commit 85bb70e (ahead=True, Matmul.ahead and benchmarks/ahead_summary.py existed there; removed after: level to worse). Results: RESULTS.md "Session 21".
# Session 21, call 4 (issue 13): the GEMV's opt-in tail prefetch (ahead=True: at its end each launch prefetches into
# L2 the next launch's steps after its rings). GPU tests (stop on a failure); gemv_trace.py on 8B b1 / b8 and 1B b1
# for one launch and the default without and with 4 / 8 / 16 steps ahead; verify on the 8B and the 1B with
# KVPLAN_GV_AHEAD=0 and 8 (choose_forms' chain and the forward's GEMVs, Matmul.ahead), alternating.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_gemv_stream_gpu.py > $OUT/t.txt 2>&1
tail -1 $OUT/t.txt | tee $OUT/log.txt
grep -qE "[0-9]+ (failed|errors?)" $OUT/t.txt && { grep -m5 -B2 -A25 "^____" $OUT/t.txt > $OUT/fail.txt; exit 1; }
for m in "Llama-3.1-8B --batch 1" "Llama-3.1-8B --batch 8" "Llama-3.2-1B --layers 12"; do
  timeout 120 python3 benchmarks/gemv_trace.py --model $m --forms c1,c1+a4,c1+a8,c1+a16,auto,auto+a8 2>&1 \
    | grep -v "^|---" | tee -a $OUT/log.txt
done
for a in 0 8 0 8; do
  mkdir -p /tmp/v$a; OUT=/tmp/v$a KVPLAN_GV_AHEAD=$a timeout 150 python3 benchmarks/verify_device_run.py models \
    --only=llama8b-8k,llama1b --budget=140 > /dev/null 2>&1
  python3 benchmarks/ahead_summary.py /tmp/v$a/results.jsonl | tee -a $OUT/log.txt; rm -rf /tmp/v$a
done
