# Session 17 call 11: racecheck of the streaming GEMV (producer warp, MMA warps, full/empty mbarriers, cp.async x)
# on small cases, twice, and verify's GPU tests on the final code.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
for i in 1 2; do
timeout 80 compute-sanitizer --tool racecheck --racecheck-report all --report-api-errors no python3 -m pytest -q -x -p no:cacheprovider \
  tests/test_gemv_stream_gpu.py -k "(16-64 or 3-192) and bfloat16" 2>&1 | grep -E "RACECHECK SUMMARY|ERROR SUMMARY|hazard|passed|failed" | tail -3
done
timeout 100 python3 -m pytest -q -p no:cacheprovider tests/test_verify_gpu.py 2>&1 | tail -1
