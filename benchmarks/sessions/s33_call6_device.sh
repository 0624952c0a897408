# session 33 call 6 (issue 13): the final tree's GPU tests for what this session touched: the prefill kernels (with
# the tiny Qwen3-Next at 128 x 128 heads against the torch forms), the DeltaNet step, verify's GPU forward (tiny
# models back at their call-3 shapes), mxfp4 (gpt-oss's grouped path ends in the gather-sum).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
{
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 280 python3 -m pytest -q -p no:cacheprovider tests/test_prefill_kernels.py tests/test_deltanet_step.py \
  tests/test_verify_gpu.py tests/test_mxfp4_gpu.py -k "not end_to_end and not interrupt and not cli" 2>&1 | tail -4
} 2>&1 | tee $OUT/s33_call6_h200_2026-12-03.txt
