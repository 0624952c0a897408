# Session 14 call 5: the row-tile kernel's first ring steps issued before it waits for the kernel before it
# (row_early=1, a variant): its GPU tests and sanitizer cases, then --moe-batch, default against early.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc
python3 -m kvplan.kernels.batch sm_90 > /dev/null 2>&1
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_skinny_gpu.py -k "row_tiles or above_max or graph" > $OUT/t.txt 2>&1; tail -2 $OUT/t.txt
SAN="compute-sanitizer --report-api-errors no --error-exitcode 1"
(timeout 150 $SAN --tool memcheck python3 benchmarks/kernel_memcheck.py --moe > $OUT/mc.txt 2>&1; echo "memcheck rc=$?" >> $OUT/mc.txt) &
(timeout 150 $SAN --tool racecheck python3 benchmarks/kernel_memcheck.py --moe > $OUT/rc.txt 2>&1; echo "racecheck rc=$?" >> $OUT/rc.txt) &
wait; tail -3 $OUT/mc.txt; tail -3 $OUT/rc.txt
timeout 200 python3 benchmarks/skinny_gemm.py --moe-batch > $OUT/moe_batch.txt 2>&1; grep -v Warn $OUT/moe_batch.txt | cut -c1-300
