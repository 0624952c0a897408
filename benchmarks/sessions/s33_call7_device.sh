# session 33 call 7 (issue 13): compute-sanitizer memcheck, racecheck and synccheck over small launches of the four
# new prefill kernels (benchmarks/probes/prefill_kernels_check.py).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
{
for tool in memcheck racecheck synccheck; do
  echo "== $tool"
  timeout 90 compute-sanitizer --report-api-errors no --tool $tool python3 benchmarks/probes/prefill_kernels_check.py 2>&1 | tail -3
done
} 2>&1 | tee $OUT/s33_call7_h200_2026-12-03.txt
