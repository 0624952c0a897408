# Session 13 call 6: MLA heads in M with the first TMA copies issued before q is staged (the q loads and the first
# data's latency overlap): MLA GPU tests, memcheck + racecheck of the MLA cases, the MLA rows of the standing table.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc
SAN="compute-sanitizer --report-api-errors no --error-exitcode 1"
python3 -m kvplan.kernels.batch sm_90 > /dev/null 2>&1
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_kernel_mla_gpu.py > $OUT/t.txt 2>&1; tail -2 $OUT/t.txt
timeout 80 $SAN --tool memcheck python3 benchmarks/kernel_memcheck.py --mla > $OUT/memcheck.txt 2>&1; echo "memcheck rc=$?"; tail -1 $OUT/memcheck.txt
timeout 100 $SAN --tool racecheck python3 benchmarks/kernel_memcheck.py --mla > $OUT/racecheck.txt 2>&1; echo "racecheck rc=$?"; grep -v "^=========     " $OUT/racecheck.txt | tail -2
timeout 120 python3 benchmarks/kernel_vs_flashinfer.py --no-flashinfer --mla-only --json $OUT/mla.json > $OUT/mla.txt 2>&1; tail -13 $OUT/mla.txt
