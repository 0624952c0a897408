# session 25 call 4: the end hand-over through __syncthreads (racecheck); fp8 MLA defaults to e4m3 at every head
# count (16 heads a CTA); where the e4m3 kernel's step goes (probe macros 1-3, benchmarks/mla_e4m3_probe.py)
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
SAN="compute-sanitizer --report-api-errors no"
python3 -m pytest -q tests/test_kernel_mla_gpu.py -k "wgmma or matches_reference" 2>&1 | tail -2
for i in 17 18; do
  timeout 90 $SAN --tool racecheck --racecheck-report all --print-limit 2 python3 benchmarks/kernel_memcheck.py --mla $i 2>&1 | grep -E "RACECHECK SUMMARY|hazard detected|Thread" | head -4
done
S="16h fp8 B32 8K,16h fp8 B64 16K,128h fp8 B8 8K"
for p in 0 1 2 3; do echo "probe $p"; python3 benchmarks/mla_e4m3_probe.py $p "" "$S" 2>&1 | grep -v Warn; done
