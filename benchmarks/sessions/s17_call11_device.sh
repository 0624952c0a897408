# Session 17 call 11 (run twice: the first selected no test, -k named a dtype the ids do not carry): racecheck of
# the streaming GEMV (producer warp, MMA warps, full/empty mbarriers, cp.async x) on small cases and a chain.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
timeout 150 compute-sanitizer --tool racecheck --racecheck-report all --report-api-errors no python3 -m pytest -q -x -p no:cacheprovider \
  tests/test_gemv_stream_gpu.py -k "16-64 or 3-192 or chain" 2>&1 | grep -E "RACECHECK SUMMARY|hazard|passed|failed" | tail -3
