# session 30 call 5 (run on branch sort-default, the step sort the sm_90 default there): the A/B of its second
# form on the standing table's GQA shapes, every decode GPU test (the defaults now sort), memcheck over every case,
# racecheck of a sorted table that names a page twice
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 150 python3 benchmarks/probes/sort_steps_ab.py 2>&1 | grep -v Warning
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_kernel_gpu.py 2>&1 | tail -2
timeout 120 compute-sanitizer --report-api-errors no --tool memcheck python3 benchmarks/kernel_memcheck.py 2>&1 \
  | grep -E "ERROR SUMMARY|cases OK|rror" | head -4 | sed "s/^/memcheck: /"
timeout 80 compute-sanitizer --report-api-errors no --tool racecheck python3 -m pytest -q -p no:cacheprovider \
  tests/test_kernel_gpu.py -k "sorted_steps_with" 2>&1 | grep -E "RACECHECK SUMMARY|passed|failed|Hazard" \
  | head -4 | sed "s/^/racecheck: /"
