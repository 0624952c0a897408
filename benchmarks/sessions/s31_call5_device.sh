# session 31 call 5: the warpgroup-MMA decode as the sm_90 default for groups of 64+ (16-bit caches): every GQA GPU
# test, the A/B (mma.sync / default / variants, SDPA beside), racecheck and memcheck of small wg launches
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
O=$OUT/s31_call5_h200_2026-12-03.txt
{
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 240 python3 -m pytest -q -p no:cacheprovider tests/test_kernel_gpu.py tests/test_decode_wg.py 2>&1 | tail -4
timeout 150 python3 benchmarks/probes/decode_wg_ab.py 2>&1 | grep -v Warning
for tool in racecheck memcheck; do
  timeout 90 compute-sanitizer --report-api-errors no --tool $tool python3 benchmarks/probes/decode_wg_sanitize.py 2>&1 \
    | grep -E "ERROR SUMMARY|RACECHECK SUMMARY|decode_wg_sanitize|hazard" | head -4 | sed "s/^/$tool: /"
done
} 2>&1 | tee $O
