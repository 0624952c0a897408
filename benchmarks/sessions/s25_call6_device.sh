# session 25 call 6: the e4m3 MLA kernel with three P buffers (the scores up to 3 steps ahead) and two values
# warpgroups: MLA GPU tests, sanitizers over its two cases, then values warpgroups x P buffers per shape
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
SAN="compute-sanitizer --report-api-errors no"
python3 -m pytest -q tests/test_kernel_mla_gpu.py 2>&1 | tail -2
for i in 17 18; do
  timeout 90 $SAN --tool racecheck --racecheck-report all --print-limit 1 python3 benchmarks/kernel_memcheck.py --mla $i 2>&1 | grep -E "SUMMARY|hazard detected|Thread" | head -4
  timeout 60 $SAN --tool synccheck python3 benchmarks/kernel_memcheck.py --mla $i 2>&1 | grep -E "ERROR SUMMARY"
  timeout 60 $SAN --tool memcheck python3 benchmarks/kernel_memcheck.py --mla $i 2>&1 | grep -E "ERROR SUMMARY"
done
S="16h fp8 B1 4K,16h fp8 B8 32K,16h fp8 B32 8K,16h fp8 B128 4K,16h fp8 B64 16K,128h fp8 B8 8K"
for p in 0 0,1,3 0,1,2 0,2,2 0,2,4; do echo "values wgs, P buffers: $p"; python3 benchmarks/mla_e4m3_probe.py $p "" "$S" 2>&1 | grep -v Warn; done
