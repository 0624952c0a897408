# session 25 call 9: the e4m3 MLA kernel as landed (call 7's code: block ids loaded with the copies, as before call 8,
# whose prefetch made the code 1.8x larger and the kernel 3-5% slower): MLA GPU tests, sanitizers, the MLA table
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
SAN="compute-sanitizer --report-api-errors no"
python3 -m pytest -q tests/test_kernel_mla_gpu.py tests/test_kernel_mla_launch.py 2>&1 | tail -2
for i in 17 18; do
  timeout 60 $SAN --tool racecheck --racecheck-report all --print-limit 1 python3 benchmarks/kernel_memcheck.py --mla $i 2>&1 | grep -E "RACECHECK SUMMARY"
  timeout 60 $SAN --tool synccheck python3 benchmarks/kernel_memcheck.py --mla $i 2>&1 | grep -E "ERROR SUMMARY"
done
timeout 150 $SAN --tool memcheck --error-exitcode 1 python3 benchmarks/kernel_memcheck.py --mla 2>&1 | tail -2
python3 benchmarks/kernel_vs_flashinfer.py --mla-only --no-flashinfer --json $OUT/mla_table.json 2>&1 | grep -v Warn | tail -14
