# The GPU tests of every module a session touched, then verify on three models (allocation, budget and decode
# verdicts), in one device call.      Device: bash benchmarks/sessions/final_gpu_check.sh
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc
python3 -m kvplan.kernels.batch sm_90 > /dev/null 2>&1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > $OUT/log.txt
timeout 330 python3 -m pytest -q -p no:cacheprovider tests/test_kernel_gpu.py tests/test_kernel_mla_gpu.py \
  tests/test_kernel_reference.py tests/test_kernel_mla_fragments.py tests/test_skinny_gpu.py tests/test_deltanet_step.py \
  tests/test_rope_cache.py tests/test_verify_gpu.py tests/test_verify_model.py tests/test_verify_tp.py tests/test_verify.py \
  > $OUT/pytest.txt 2>&1
tail -4 $OUT/pytest.txt >> $OUT/log.txt
timeout 200 python3 benchmarks/verify_device_run.py models --only=dsv2-lite,llama8b-8k,llama1b --budget=190 > /dev/null 2>&1
