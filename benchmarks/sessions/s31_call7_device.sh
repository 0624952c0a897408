# session 31 call 7: the warpgroup-MMA decode's second warpgroup hands over behind an mbarrier (call 6: racecheck
# reported the hand-over behind __syncthreads): every GQA GPU test, racecheck and memcheck of small wg launches (one
# and two warpgroups), the A/B again
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
O=$OUT/s31_call7_h200_2026-12-03.txt
{
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 240 python3 -m pytest -q -p no:cacheprovider tests/test_kernel_gpu.py tests/test_decode_wg.py 2>&1 | tail -3
for tool in racecheck memcheck; do for w in 1 2; do
  timeout 90 compute-sanitizer --report-api-errors no --tool $tool python3 benchmarks/probes/decode_wg_sanitize.py $w 2>&1 \
    | grep -E "ERROR SUMMARY|RACECHECK SUMMARY|decode_wg_sanitize|hazard" | head -4 | sed "s/^/$tool $w: /"
done; done
timeout 150 python3 benchmarks/probes/decode_wg_ab.py 2>&1 | grep -v Warning
} 2>&1 | tee $O
