# Ran at commit 91d0f4c. Results: RESULTS.md "Session 21".
# Session 21, call 5 (issue 13): the GEMV's opt-in rotated order (rotate=True: a CTA runs its last tile first and
# publishes it early; its first tile comes last and it finishes it alone, one round trip instead of fence, count and
# read). GPU tests (stop on a failure); the whole-model stream for the default, rotated, one-launch and one-launch
# rotated forms (skinny_gemm.py --gemv); the timeline of c1 / c1r on 8B b1 and 1B b1.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_gemv_stream_gpu.py > $OUT/t.txt 2>&1
tail -1 $OUT/t.txt | tee $OUT/log.txt
grep -qE "[0-9]+ (failed|errors?)" $OUT/t.txt && { grep -m5 -B2 -A30 "^____" $OUT/t.txt > $OUT/fail.txt; exit 1; }
timeout 200 python3 benchmarks/skinny_gemm.py --gemv --forms "gemv,rot,c1 d8,c1 rot" 2>&1 | tee -a $OUT/log.txt | tail -40
timeout 60 python3 benchmarks/gemv_trace.py --model Llama-3.1-8B --forms c1,c1r 2>&1 | grep -v "^|---" | tee -a $OUT/log.txt
timeout 60 python3 benchmarks/gemv_trace.py --model Llama-3.2-1B --layers 12 --forms c1,c1r 2>&1 | grep -v "^|---" | tee -a $OUT/log.txt
