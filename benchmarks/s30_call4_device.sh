# session 30 call 4: the step sort ranked 4 keys a load, keys loaded before q, only from 64 steps a CTA: GPU tests,
# the A/B on the standing table's GQA shapes (shuffled, then in address order), memcheck and racecheck
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_kernel_gpu.py -k "sorted" 2>&1 | tail -3
timeout 200 python3 benchmarks/sort_steps_ab.py 2>&1 | grep -v Warning
timeout 100 python3 benchmarks/sort_steps_ab.py --ordered-pages 2>&1 | grep -v Warning
timeout 90 compute-sanitizer --report-api-errors no --tool memcheck python3 -m pytest -q -p no:cacheprovider \
  tests/test_kernel_gpu.py -k "sorted_steps_with or (test_sorted_steps and kv_dtype2)" 2>&1 \
  | grep -E "ERROR SUMMARY|passed|failed" | head -3 | sed "s/^/memcheck: /"
timeout 150 compute-sanitizer --report-api-errors no --tool racecheck python3 -m pytest -q -p no:cacheprovider \
  tests/test_kernel_gpu.py -k "sorted_steps_with" 2>&1 | grep -E "RACECHECK SUMMARY|passed|failed|Hazard" \
  | head -4 | sed "s/^/racecheck: /"
