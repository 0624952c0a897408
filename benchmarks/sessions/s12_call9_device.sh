# Session 12 call 9: heads-in-M MLA with a producer warp (a ninth warp issues every copy a step ahead, named
# Ran at commit 4a4f087; the `producer_warp` option was removed after this measurement (RESULTS.md, session 12).
# barriers release the stages): its tests, memcheck + racecheck of the MLA cases, times against the default.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
SAN="compute-sanitizer --report-api-errors no --error-exitcode 1"
timeout 100 python3 -m pytest -q -x -p no:cacheprovider tests/test_kernel_mla_gpu.py -k "heads_in_m" > $OUT/t.txt 2>&1; tail -3 $OUT/t.txt
timeout 200 python3 benchmarks/mla_probe.py "producer_warp=True;producer_warp=True lazy_rescale=True" "16h B1 32K,16h B32 8K,16h B128 4K,16h B8 32K" > $OUT/probe.txt 2>&1; cat $OUT/probe.txt
timeout 60 $SAN --tool memcheck python3 benchmarks/kernel_memcheck.py --mla > $OUT/memcheck.txt 2>&1; tail -1 $OUT/memcheck.txt
timeout 90 $SAN --tool racecheck python3 benchmarks/kernel_memcheck.py --mla > $OUT/racecheck.txt 2>&1; grep -v "^=========     " $OUT/racecheck.txt | tail -4
