# Session 14 call 2: the row-tile MoE kernel's ring at 2 steps by default and by expert up to 24 pairs per expert
# (joined experts included): memcheck and racecheck over its cases (kernel_memcheck.py --moe), verify's GPU tests,
# then verify of the three 16-bit MoE models.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc
python3 -m kvplan.kernels.batch sm_90 > /dev/null 2>&1
SAN="compute-sanitizer --report-api-errors no --error-exitcode 1"
(timeout 150 $SAN --tool memcheck python3 benchmarks/kernel_memcheck.py --moe > $OUT/mc.txt 2>&1; echo "memcheck rc=$?" >> $OUT/mc.txt) &
(timeout 150 $SAN --tool racecheck python3 benchmarks/kernel_memcheck.py --moe > $OUT/rc.txt 2>&1; echo "racecheck rc=$?" >> $OUT/rc.txt) &
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_verify_gpu.py tests/test_skinny_gpu.py -k "not mxfp4" > $OUT/t.txt 2>&1; tail -2 $OUT/t.txt
wait; tail -3 $OUT/mc.txt; tail -3 $OUT/rc.txt
timeout 150 python3 benchmarks/verify_device_run.py models --only=qwen3next-tp2,dsv2-lite,mixtral-tp2 --budget=140 > /dev/null 2>&1; tail -4 $OUT/summary.txt
python3 benchmarks/verify_verdict_lines.py $OUT/results.jsonl 2>&1 | cut -c1-1500
