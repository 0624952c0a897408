# Session 12 call 4: heads-in-M MLA with two groups of 8 warps over one ring of 4 stages (groups=2) against one
# group (2 CTAs per SM): GPU tests of both, times (mla_probe.py), memcheck + racecheck of the MLA cases.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
SAN="compute-sanitizer --report-api-errors no --error-exitcode 1"
timeout 150 python3 -m pytest -q -x -p no:cacheprovider tests/test_kernel_mla_gpu.py -k "heads_in_m or long_context or graph" > $OUT/t.txt 2>&1; tail -4 $OUT/t.txt
timeout 200 python3 benchmarks/mla_probe.py "groups=2;groups=2 stages=2" "16h B32 8K,16h B128 4K,16h B8 32K" > $OUT/probe.txt 2>&1; cat $OUT/probe.txt
timeout 100 $SAN --tool memcheck python3 benchmarks/kernel_memcheck.py --mla > $OUT/memcheck.txt 2>&1; tail -2 $OUT/memcheck.txt
timeout 150 $SAN --tool racecheck python3 benchmarks/kernel_memcheck.py --mla > $OUT/racecheck.txt 2>&1; tail -2 $OUT/racecheck.txt
