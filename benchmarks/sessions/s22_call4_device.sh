# Session 22, call 4 (issue 13): the row-owned GEMV with one 3-D TMA box a step and no division in the producer's
# step (calls 2-3: a third / a quarter of read bandwidth, the producer's per-box arithmetic); GPU tests of the GEMV,
# racecheck and memcheck of the new form, then the per-shape and whole-model streams of the three dense models.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
SAN="compute-sanitizer --report-api-errors no --error-exitcode 1"
timeout 100 python3 -m pytest -q -x -p no:cacheprovider tests/test_gemv_stream_gpu.py \
  > $OUT/tests.txt 2>&1; echo "tests rc $?" | tee $OUT/log.txt; tail -4 $OUT/tests.txt | tee -a $OUT/log.txt
for t in racecheck memcheck; do
  timeout 90 $SAN --tool $t python3 benchmarks/gemv_racecheck.py own=1 > $OUT/${t}_own.txt 2>&1
  echo "$t own rc $?" | tee -a $OUT/log.txt; tail -2 $OUT/${t}_own.txt | tee -a $OUT/log.txt
done
timeout 250 python3 benchmarks/skinny_gemm.py --gemv --per-shape-all --forms "c1 d8,own,own d6,own c2 d4" \
  --out $OUT/gemv_own.json 2>&1 | tee $OUT/bench.txt | grep -v registers | tail -40
