# Results: benchmarks/RESULTS.md "Session 20".
# Prepared in session 19, run in session 20 (issue 13): the streaming GEMV's L2 prefetch of the 8 / 16 / 32 steps after
# its ring issued right AFTER griddepcontrol.wait (opt-in `l2_ahead`; session 19 measured the same prefetch before
# the wait as a loss). Aimed at the small shapes (o_proj, Llama-3.2-1B's) whose ring refills only after x arrives
# and the first stages are computed. GPU tests of the GEMV (stops on a failure), then the forms per shape and
# whole-model (with rings of 10 and 12 per shape: a deeper ring preloads more of a small shape before the wait; and
# two CTAs per SM with rings of 4 / 6, half the shares, last measured before the TMA ring in session 17),
# then racecheck of the 32-step form on shapes that refill the ring.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_gemv_stream_gpu.py > $OUT/t.txt 2>&1
tail -1 $OUT/t.txt | tee $OUT/log.txt
grep -qE "[0-9]+ (failed|errors?)" $OUT/t.txt && { grep -m5 -B2 -A25 "^____" $OUT/t.txt > $OUT/fail.txt; exit 1; }
timeout 200 python3 benchmarks/skinny_gemm.py --gemv --per-shape-all --forms "gemv d8,l2a8,l2a16,l2a32,d10,gemv d12,c2 d4,c2 d6" \
  --out $OUT/gemv.json 2>&1 | tee -a $OUT/log.txt
timeout 100 compute-sanitizer --tool racecheck --racecheck-report all --report-api-errors no \
  python3 benchmarks/gemv_racecheck.py l2_ahead=32 2>&1 | grep -E "RACECHECK SUMMARY|worst rel" | tee -a $OUT/log.txt
