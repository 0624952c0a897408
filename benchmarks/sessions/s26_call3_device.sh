# session 26 call 3: bf16 MLA at 16 heads a CTA now defaults to the warpgroup-MMA path with the early refill: every
# MLA GPU test and verify's GPU tests, memcheck over every MLA sanitizer case, racecheck of the two 16-head bf16
# default cases, the MLA rows of the standing table, and verify of DeepSeek-V2-Lite (its MLA layers take the new default)
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
SAN="compute-sanitizer --report-api-errors no"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_kernel_mla_gpu.py tests/test_verify_gpu.py 2>&1 | tail -2
timeout 100 $SAN --tool memcheck python3 benchmarks/kernel_memcheck.py --mla 2>&1 | grep -E "ERROR SUMMARY" | sed "s/^/memcheck all MLA cases: /"
for i in 0 1; do
  timeout 45 $SAN --tool racecheck --racecheck-report all --print-limit 2 python3 benchmarks/kernel_memcheck.py --mla $i 2>&1 | grep -E "RACECHECK SUMMARY|Potential" | head -3 | sed "s/^/racecheck $i: /"
done
timeout 150 python3 benchmarks/kernel_vs_flashinfer.py --mla-only --no-flashinfer --json $OUT/mla_table.json 2>&1 | grep -v Warn | tail -16
timeout 100 python3 benchmarks/verify_device_run.py models --only=dsv2-lite --budget=90 2>&1 | tail -2
