# session 26 call 1: the e4m3 MLA kernel's end hand-over as arrive (scores) / sync (values): its GPU tests,
# synccheck and racecheck of its two sanitizer cases; bf16 wgmma MLA with early refills (early_free) and split counts;
# (call 2: verify)
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
SAN="compute-sanitizer --report-api-errors no"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_kernel_mla_gpu.py -k "wgmma or matches_reference" 2>&1 | tail -1
timeout 150 python3 benchmarks/mla_probe.py "wgmma=True;wgmma=True early_free=2;wgmma=True early_free=4;wgmma=True num_splits=2;wgmma=True num_splits=8" "16h B32 8K,16h B8 32K,16h B128 4K" 2>&1 | grep -v Warn
for i in 17 18; do
  timeout 60 $SAN --tool synccheck python3 benchmarks/kernel_memcheck.py --mla $i 2>&1 | grep -E "ERROR SUMMARY" | sed "s/^/synccheck $i: /"
  timeout 60 $SAN --tool racecheck --racecheck-report all --print-limit 3 python3 benchmarks/kernel_memcheck.py --mla $i 2>&1 | grep -E "RACECHECK SUMMARY|Potential|hazard" | head -4 | sed "s/^/racecheck $i: /"
done
for i in 19 20; do
  timeout 50 $SAN --tool racecheck --racecheck-report all --print-limit 3 python3 benchmarks/kernel_memcheck.py --mla $i 2>&1 | grep -E "RACECHECK SUMMARY|Potential|hazard" | head -4 | sed "s/^/racecheck $i: /"
done
timeout 100 $SAN --tool memcheck python3 benchmarks/kernel_memcheck.py --mla 2>&1 | grep -E "ERROR SUMMARY" | sed "s/^/memcheck all MLA cases: /"
