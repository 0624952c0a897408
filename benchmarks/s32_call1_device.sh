# session 32 call 1: block tables sorted once a decode step (plan.sorted_block_table, kvplan/kernels/page_order.py):
# their GPU tests (GQA mma.sync + warpgroup, fp8, MLA; a graph of sort + kernel), then the standing table with a
# sorted-table column (FlashInfer 0.6.18.post1 from .peers, carried)
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
{
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 170 python3 -m pytest -q -p no:cacheprovider tests/test_page_order.py tests/test_kernel_gpu.py \
  tests/test_kernel_mla_gpu.py -k "sorted_block_table or page_order or plan_run" 2>&1 | tail -4
timeout 410 python3 benchmarks/kernel_device_run.py env bench 2>&1 | tail -45
} | tee $OUT/s32_call1_h200_2026-12-03.txt
cp $OUT/bench.log $OUT/s32_call1_bench_h200_2026-12-03.log 2>/dev/null
cp kernel_vs_flashinfer.json $OUT/ 2>/dev/null; cp $OUT/kernel_vs_flashinfer.json $OUT/kvf_s32.json 2>/dev/null
