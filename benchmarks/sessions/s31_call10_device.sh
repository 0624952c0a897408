# session 31 call 10: the GPU kernel tests that replay CUDA graphs, after their helper moved to tests/cuda_graphs.py;
# verify's tiny forwards (the attention label now names the kernel a plan runs)
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
{
timeout 100 python3 -m pytest -q -p no:cacheprovider tests/test_kernel_gpu.py tests/test_kernel_mla_gpu.py \
  -k "graph or plan_run or warpgroup_mmas_long" 2>&1 | tail -2
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_verify_gpu.py -k "forward_on_gpu" 2>&1 | tail -2
} | tee $OUT/s31_call10_h200_2026-12-03.txt
