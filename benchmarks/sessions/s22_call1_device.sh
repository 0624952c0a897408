# Prepared in session 21 for the next one (issue 13): the rotated streaming GEMV under compute-sanitizer (memcheck and
# racecheck over its GPU tests: its finishing CTA waits on a global counter), then verify on all ten models with the
# rotated GEMV as a fifth matmul form (session 21 ran it on three: RESULTS.md "Session 21", call 8).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
SAN="compute-sanitizer --report-api-errors no --error-exitcode 1"
timeout 150 $SAN --tool memcheck python3 -m pytest -q -p no:cacheprovider tests/test_gemv_stream_gpu.py -k "rotated or rotate" \
  > $OUT/memcheck.txt 2>&1; echo "memcheck rc $?" | tee $OUT/log.txt
timeout 150 $SAN --tool racecheck python3 -m pytest -q -p no:cacheprovider tests/test_gemv_stream_gpu.py -k "rotated or rotate" \
  > $OUT/racecheck.txt 2>&1; echo "racecheck rc $?" | tee -a $OUT/log.txt
tail -3 $OUT/memcheck.txt $OUT/racecheck.txt | tee -a $OUT/log.txt
OUT=$OUT/v timeout 330 python3 benchmarks/verify_device_run.py models --budget=320 > /dev/null 2>&1
cp $OUT/v/results.jsonl $OUT/results.jsonl; python3 benchmarks/verify_summary_md.py $OUT/results.jsonl | tee -a $OUT/log.txt
