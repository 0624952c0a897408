# session 32 call 7: the final tree's kernel GPU tests (GQA, MLA, the page sort) and verify's GPU forward tests,
# after the reverted MLA experiments and the sort kernel joined the default build set
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
{
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 90 python3 -m kvplan.kernels.batch sm_90 2>&1 | tail -1
timeout 330 python3 -m pytest -q -p no:cacheprovider tests/test_kernel_gpu.py tests/test_kernel_mla_gpu.py \
  tests/test_page_order.py 2>&1 | tail -3
timeout 100 python3 -m pytest -q -p no:cacheprovider tests/test_verify_gpu.py -k "forward_on_gpu" 2>&1 | tail -2
} | tee $OUT/s32_call7_h200_2026-12-03.txt
