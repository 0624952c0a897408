# session 32 call 3: the block-table sort as a bitonic network (page_order.cu): its GPU tests against the torch
# ops with the sorted-table tests, memcheck / racecheck over small sorts, and the sort timed on the table's shapes
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
san="compute-sanitizer --report-api-errors no --error-exitcode 1"
{
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_kernel_mla_gpu.py tests/test_kernel_gpu.py \
  tests/test_page_order.py -k "sort or page_order" 2>&1 | tail -3
timeout 60 python3 benchmarks/probes/sort_pages_time.py 2>&1
timeout 60 python3 benchmarks/probes/sort_pages_time.py 2>&1 | tail -7
for tool in memcheck racecheck synccheck; do
  timeout 90 $san --tool $tool python3 benchmarks/probes/sort_pages_time.py --check 2>&1 | tail -2
done
} | tee $OUT/s32_call3_h200_2026-12-03.txt
