# session 31 call 1 (moved from s30 call 6, never run): the step sort's third form (the head of each slice issued in
# table order, the rest ranked while those copies land; keys beside the order, not in the ring): its GPU tests, the
# A/B on shuffled pages, memcheck of its tests
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
O=$OUT/s31_call1_h200_2026-12-03.txt
{
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 60 python3 -m pytest -q -p no:cacheprovider tests/test_kernel_gpu.py -k "sorted" 2>&1 | tail -2
timeout 130 python3 benchmarks/probes/sort_steps_ab.py 2>&1 | grep -v Warning
timeout 50 compute-sanitizer --report-api-errors no --tool memcheck python3 -m pytest -q -p no:cacheprovider \
  tests/test_kernel_gpu.py -k "sorted_steps_with or (test_sorted_steps and kv_dtype2)" 2>&1 \
  | grep -E "ERROR SUMMARY|passed|failed" | head -3 | sed "s/^/memcheck: /"
} 2>&1 | tee $O
