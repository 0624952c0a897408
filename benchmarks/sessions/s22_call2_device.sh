# Session 22, call 2 (issue 13): the row-owned GEMV (gemv_stream.cu KVP_GV_OWN: whole 16-row slices a CTA, no tile
# cut between CTAs, no counting at the end): its GPU tests, racecheck of it and of the rotated form on small
# launches (session 21's racecheck over the whole test file ran past 150 s), memcheck, then every dense model's
# shapes in order / own forms, each shape's layers back to back and the whole-model stream.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
SAN="compute-sanitizer --report-api-errors no --error-exitcode 1"
timeout 150 python3 -m pytest -q -x -p no:cacheprovider tests/test_gemv_stream_gpu.py tests/test_gemv_stream.py \
  > $OUT/tests.txt 2>&1; echo "tests rc $?" | tee $OUT/log.txt; tail -4 $OUT/tests.txt | tee -a $OUT/log.txt
for f in own=1 rotate=1; do
  timeout 100 $SAN --tool racecheck python3 benchmarks/gemv_racecheck.py $f > $OUT/racecheck_$f.txt 2>&1
  echo "racecheck $f rc $?" | tee -a $OUT/log.txt; tail -2 $OUT/racecheck_$f.txt | tee -a $OUT/log.txt
done
timeout 60 $SAN --tool memcheck python3 benchmarks/gemv_racecheck.py own=1 > $OUT/memcheck_own.txt 2>&1
echo "memcheck own rc $?" | tee -a $OUT/log.txt; tail -2 $OUT/memcheck_own.txt | tee -a $OUT/log.txt
timeout 280 python3 benchmarks/skinny_gemm.py --gemv --per-shape-all --forms "c1 d8,own,own d6,own d4,own c2 d4" \
  --out $OUT/gemv_own.json 2>&1 | tee $OUT/bench.txt | grep -v registers | tail -40
