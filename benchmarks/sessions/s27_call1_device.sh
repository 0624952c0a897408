# session 27 call 1: the e4m3 MLA kernel hands L and M over with its last step's P (no end barrier): its GPU tests,
# synccheck and racecheck of its two sanitizer cases (three racecheck runs each), memcheck of every MLA case, its
# times; bf16 16 heads with and without the early refill from 1 to 18 waves of CTAs (a per-launch choice by waves?)
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
SAN="compute-sanitizer --report-api-errors no"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_kernel_mla_gpu.py -k "e4m3 or fp8 or matches_reference" 2>&1 | tail -1
for i in 17 18; do
  timeout 60 $SAN --tool synccheck python3 benchmarks/kernel_memcheck.py --mla $i 2>&1 | grep -E "ERROR SUMMARY" | sed "s/^/synccheck $i: /"
  for n in 1 2 3; do
    timeout 60 $SAN --tool racecheck --racecheck-report all --print-limit 3 python3 benchmarks/kernel_memcheck.py --mla $i 2>&1 | grep -E "RACECHECK SUMMARY|Potential|hazard" | head -4 | sed "s/^/racecheck $i run $n: /"
  done
done
timeout 100 $SAN --tool memcheck python3 benchmarks/kernel_memcheck.py --mla 2>&1 | grep -E "ERROR SUMMARY|cases OK" | sed "s/^/memcheck all MLA cases: /"
timeout 60 python3 benchmarks/mla_probe.py "" "16h fp8 B32 8K,16h fp8 B8 32K,16h fp8 B128 4K,16h fp8 B1 32K" 2>&1 | grep -v Warn
timeout 200 python3 benchmarks/mla_probe.py "wgmma=True early_free=0;wgmma=False" "16h B32 8K,16h B96 8K,16h B200 8K,16h B264 4K,16h B400 8K,16h B528 4K,16h B1056 2K" 2>&1 | grep -v Warn
