# the GQA merge for few splits (kvp_merge_few): kernel GPU tests, memcheck over every case, then A/B timings
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 200 python3 benchmarks/probes/merge_few_ab.py 2>&1 | grep -v Warning
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_kernel_gpu.py 2>&1 | tail -2
timeout 150 compute-sanitizer --report-api-errors no --tool memcheck python3 benchmarks/kernel_memcheck.py 2>&1 \
  | grep -E "ERROR SUMMARY|cases OK|rror" | head -4 | sed "s/^/memcheck: /"
