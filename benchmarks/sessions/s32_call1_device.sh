# session 32 call 1: block tables sorted once a decode step (plan.sorted_block_table, kvplan/kernels/page_order.py):
# their GPU tests (GQA mma.sync + warpgroup, fp8, MLA; a graph of sort + kernel), in the background while
# FlashInfer's modules build (ended by 200 s, before the benchmark starts at 240 s), then the standing table with a
# sorted-table column (FlashInfer 0.6.18.post1 from .peers, carried)
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
R=$OUT/s32_call1_h200_2026-12-03.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > $R
(timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_page_order.py tests/test_kernel_gpu.py \
  tests/test_kernel_mla_gpu.py -k "sorted_block_table or page_order or plan_run" > $OUT/tests.txt 2>&1) &
timeout 560 python3 benchmarks/kernel_device_run.py env bench > $OUT/run.txt 2>&1
wait
{ tail -5 $OUT/tests.txt; tail -62 $OUT/run.txt; } >> $R
cat $R
