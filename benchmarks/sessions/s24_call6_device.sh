# session 24 call 6: every MLA GPU test with the two-warpgroup e4m3 path; the fp8 16-head shapes per path;
# memcheck and racecheck over the MLA cases (two of them on the e4m3 path)
set -x
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
python3 -m pytest -q tests/test_kernel_mla_gpu.py 2>&1 | tail -4
python3 benchmarks/mla_probe.py "wgmma=True;wgmma=True e4m3_mma=True" \
  "16h fp8 B1 4K,16h fp8 B1 32K,16h fp8 B8 32K,16h fp8 B32 8K,16h fp8 B128 4K,16h fp8 B64 16K,8h fp8 B32 8K" 2>&1 | grep -v Warn
timeout 150 compute-sanitizer --tool memcheck --error-exitcode 1 python3 benchmarks/kernel_memcheck.py --mla 2>&1 | tail -3
timeout 200 compute-sanitizer --tool racecheck --racecheck-report all --print-limit 10 python3 benchmarks/kernel_memcheck.py --mla 2>&1 | grep -E "RACECHECK SUMMARY|Race reported|memcheck cases" | head
