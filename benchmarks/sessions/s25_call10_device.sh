# session 25 call 10: the e4m3 kernel's end hand-over on a named non-.aligned barrier again (a __syncthreads at two
# sites drew synccheck errors in calls 6-9): e4m3 GPU tests, synccheck and racecheck of its two cases, the B32 8K time
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
SAN="compute-sanitizer --report-api-errors no"
python3 -m pytest -q tests/test_kernel_mla_gpu.py -k "wgmma or matches_reference" 2>&1 | tail -1
for i in 17 18; do
  timeout 60 $SAN --tool synccheck python3 benchmarks/kernel_memcheck.py --mla $i 2>&1 | grep -E "ERROR SUMMARY" | sed "s/^/synccheck $i: /"
  timeout 60 $SAN --tool racecheck --racecheck-report all --print-limit 1 python3 benchmarks/kernel_memcheck.py --mla $i 2>&1 | grep -E "RACECHECK SUMMARY" | sed "s/^/racecheck $i: /"
done
timeout 60 $SAN --tool memcheck python3 benchmarks/kernel_memcheck.py --mla 17 2>&1 | grep -E "ERROR SUMMARY" | sed "s/^/memcheck 17: /"
python3 benchmarks/mla_probe.py "" "16h fp8 B32 8K,16h fp8 B64 16K" 2>&1 | grep -v Warn
