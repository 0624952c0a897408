# Session 12 call 11: heads-in-M MLA with one TMA tensor copy per box (128-byte swizzle) instead of 32 row copies
# a step: its tests, times against the default, memcheck + racecheck of the MLA cases (two TMA cases last).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
SAN="compute-sanitizer --report-api-errors no --error-exitcode 1"
timeout 100 python3 -m pytest -q -x -p no:cacheprovider tests/test_kernel_mla_gpu.py -k "heads_in_m" > $OUT/t.txt 2>&1; tail -15 $OUT/t.txt | grep -v "^  \|^$" | tail -8
timeout 150 python3 benchmarks/mla_probe.py "tma=True;tma=True lazy_rescale=True" "16h B1 32K,16h B32 8K,16h B128 4K,16h B8 32K" > $OUT/probe.txt 2>&1; cat $OUT/probe.txt
timeout 60 $SAN --tool memcheck python3 benchmarks/kernel_memcheck.py --mla > $OUT/memcheck.txt 2>&1; tail -1 $OUT/memcheck.txt
timeout 80 $SAN --tool racecheck python3 benchmarks/kernel_memcheck.py --mla > $OUT/racecheck.txt 2>&1; grep -v "^=========     " $OUT/racecheck.txt | tail -3
