# Session 19 call 5: racecheck of the streaming GEMV on shapes that refill the ring (call 4's shapes did not),
# lane 0 arriving on a stage's empty mbarrier (the default) against every lane arriving, twice each; memcheck once.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
for form in default lane_arrive=1; do
  a=$form; [ $form = default ] && a=
  for i in 1 2; do
    echo "== racecheck $form run $i" | tee -a $OUT/log.txt
    timeout 100 compute-sanitizer --tool racecheck --racecheck-report all --report-api-errors no \
      python3 benchmarks/gemv_racecheck.py $a > $OUT/rc_${form%=1}_$i.txt 2>&1
    grep -c "Potential .* hazard" $OUT/rc_${form%=1}_$i.txt | sed 's/^/hazard lines: /' | tee -a $OUT/log.txt
    grep -E "RACECHECK SUMMARY|worst rel" $OUT/rc_${form%=1}_$i.txt | tee -a $OUT/log.txt
  done
  timeout 100 compute-sanitizer --tool memcheck --report-api-errors no python3 benchmarks/gemv_racecheck.py $a 2>&1 \
    | grep -E "ERROR SUMMARY|worst rel" | tee -a $OUT/log.txt
done
