# Session 12 call 2: the heads-in-M MLA path's first GPU run. MLA GPU tests (both 16-head paths), DRAM vs
# L2-resident times against the head-tile path (mla_probe.py), memcheck + racecheck of the MLA cases, SASS registers.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
SAN="compute-sanitizer --report-api-errors no --error-exitcode 1"
timeout 120 python3 -m kvplan.kernels.batch sm_90 > $OUT/build.txt 2>&1; tail -2 $OUT/build.txt
timeout 240 python3 -m pytest -q -x -p no:cacheprovider tests/test_kernel_mla_gpu.py > $OUT/mla_tests.txt 2>&1
tail -6 $OUT/mla_tests.txt
timeout 150 python3 benchmarks/mla_probe.py "heads_in_m=False" > $OUT/probe.txt 2>&1; cat $OUT/probe.txt
timeout 100 $SAN --tool memcheck python3 benchmarks/kernel_memcheck.py --mla > $OUT/memcheck.txt 2>&1; tail -3 $OUT/memcheck.txt
timeout 150 $SAN --tool racecheck python3 benchmarks/kernel_memcheck.py --mla > $OUT/racecheck.txt 2>&1; tail -3 $OUT/racecheck.txt
