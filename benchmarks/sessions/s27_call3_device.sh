# session 27 call 3: the e4m3 MLA kernel's values read L and M right after the last step's READY barrier (into
# registers), not at the end after their own barrier: racecheck (twice) and synccheck of its two sanitizer cases,
# every MLA case under memcheck and racecheck, its GPU tests, its times
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
SAN="compute-sanitizer --report-api-errors no"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
for i in 17 18; do
  timeout 60 $SAN --tool synccheck python3 benchmarks/kernel_memcheck.py --mla $i 2>&1 | grep -E "ERROR SUMMARY" | sed "s/^/synccheck $i: /"
  for n in 1 2; do
    timeout 60 $SAN --tool racecheck --racecheck-report all --print-limit 3 python3 benchmarks/kernel_memcheck.py --mla $i 2>&1 | grep -E "RACECHECK SUMMARY|Potential|hazard" | head -4 | sed "s/^/racecheck $i run $n: /"
  done
done
timeout 150 $SAN --tool racecheck --racecheck-report all --print-limit 3 python3 benchmarks/kernel_memcheck.py --mla 2>&1 | grep -E "RACECHECK SUMMARY|Potential|cases OK" | head -4 | sed "s/^/racecheck all MLA cases: /"
timeout 100 $SAN --tool memcheck python3 benchmarks/kernel_memcheck.py --mla 2>&1 | grep -E "ERROR SUMMARY|cases OK" | sed "s/^/memcheck all MLA cases: /"
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_kernel_mla_gpu.py 2>&1 | tail -1
timeout 60 python3 benchmarks/mla_probe.py "" "16h fp8 B32 8K,16h fp8 B8 32K,16h fp8 B128 4K,16h fp8 B1 32K" 2>&1 | grep -v Warn
