# Session 7 call 6: memcheck over the decode / MLA case list (API errors off: torch's cuGetProcAddress probes),
# then verify over all ten models of RESULTS.md on this session's main.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
timeout 120 /usr/local/cuda/bin/compute-sanitizer --report-api-errors no --tool memcheck --error-exitcode 1 python3 benchmarks/kernel_memcheck.py > $OUT/memcheck.txt 2>&1
echo "memcheck rc=$? $(grep -E 'ERROR SUMMARY' $OUT/memcheck.txt | tail -1)"
python3 benchmarks/verify_device_run.py models --budget=420 > /dev/null 2>&1
cat $OUT/summary.txt
