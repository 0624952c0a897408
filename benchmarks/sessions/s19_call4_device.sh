# Session 19 call 4: racecheck of the streaming GEMV with lane 0 arriving on a stage's empty mbarrier (the
# default) and with every lane arriving ("lanes"), the stream of both, then verify of all ten models with the
# GEMV of call 3 (issue 13's table).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
python3 -m kvplan.kernels.batch sm_90 > /dev/null 2>&1
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_gemv_stream_gpu.py > $OUT/t.txt 2>&1
tail -1 $OUT/t.txt | tee $OUT/log.txt
grep -qE "[0-9]+ (failed|errors?)" $OUT/t.txt && { grep -m5 -B2 -A25 "^____" $OUT/t.txt > $OUT/fail.txt; exit 1; }
for form in "" "lane_arrive=1"; do
  for i in 1 2; do
    echo "== racecheck ${form:-default} run $i" | tee -a $OUT/log.txt
    timeout 60 compute-sanitizer --tool racecheck --racecheck-report all --report-api-errors no \
      python3 benchmarks/gemv_racecheck.py $form > $OUT/rc_${form:-default}_$i.txt 2>&1
    grep -c "Potential .* hazard" $OUT/rc_${form:-default}_$i.txt | sed 's/^/hazard lines: /' | tee -a $OUT/log.txt
    grep -E "RACECHECK SUMMARY|worst rel" $OUT/rc_${form:-default}_$i.txt | tee -a $OUT/log.txt
  done
done
timeout 90 python3 benchmarks/skinny_gemm.py --gemv --per-shape-all --forms "gemv d8,lanes" --out $OUT/gemv.json 2>&1 \
  | tee -a $OUT/log.txt
timeout 300 python3 benchmarks/verify_device_run.py models --budget=290 > /dev/null 2>&1
tail -13 $OUT/summary.txt | tee -a $OUT/log.txt
