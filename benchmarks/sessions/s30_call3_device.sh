# session 30 call 3: steps in the address order of their pages (KernelOptions.sort_steps): GPU tests, sanitizers
# on the sorted cases, then the A/B on the standing table's GQA shapes (shuffled; in order once)
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_kernel_gpu.py -k "sorted" 2>&1 | tail -3
timeout 200 python3 benchmarks/probes/sort_steps_ab.py 2>&1 | grep -v Warning
timeout 60 python3 benchmarks/probes/sort_steps_ab.py --ordered-pages 2>&1 | grep -v Warning | head -12
for tool in memcheck racecheck; do
  timeout 100 compute-sanitizer --report-api-errors no --tool $tool python3 -m pytest -q -p no:cacheprovider \
    tests/test_kernel_gpu.py -k "sorted_steps_with or (test_sorted_steps and (kv_dtype0 or kv_dtype2))" 2>&1 \
    | grep -E "ERROR SUMMARY|RACECHECK SUMMARY|passed|failed|Hazard|rror" | head -5 | sed "s/^/$tool: /"
done
