# Session 19 call 7 (issue 14): the decode kernels with evict-first KV bulk copies (bulk_g2s_once) as landed:
# memcheck and racecheck over every code path (benchmarks/kernel_memcheck.py, GQA and MLA), then the small GPU
# tests of the GEMV (its every-lane release) once more.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
for tool in memcheck racecheck; do
  extra=; [ $tool = racecheck ] && extra="--racecheck-report all"
  timeout 100 compute-sanitizer --report-api-errors no --tool $tool $extra --error-exitcode 1 \
    python3 benchmarks/kernel_memcheck.py > $OUT/$tool.txt 2>&1
  echo "$tool rc $?" | tee -a $OUT/log.txt; grep -E "SUMMARY" $OUT/$tool.txt | tail -1 | tee -a $OUT/log.txt
done
timeout 45 python3 -m pytest -q -x -p no:cacheprovider tests/test_gemv_stream_gpu.py -k "chain or cut_at_both" 2>&1 \
  | tail -1 | tee -a $OUT/log.txt
