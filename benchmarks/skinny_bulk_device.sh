# One device call for the bulk-copy skinny kernel (session 5): GPU tests, the dense weight-stream table (nothing
# else on the GPU), verify on three dense models, then the decode kernel's GPU tests.
#     Device: bash benchmarks/skinny_bulk_device.sh
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc
python3 -m kvplan.kernels.batch sm_90 > /dev/null 2>&1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > $OUT/log.txt
timeout 150 python3 -m pytest -q -x tests/test_skinny_gpu.py 2>&1 | tail -15 >> $OUT/log.txt
timeout 200 python3 benchmarks/skinny_gemm.py --dense-only --out $OUT/skinny_dense.json > /tmp/skinny.txt 2>&1
tail -3 /tmp/skinny.txt | cut -c1-300 >> $OUT/log.txt
timeout 150 python3 benchmarks/verify_device_run.py models --only=llama8b-8k,llama1b,qwen3-14b --budget=140 > /dev/null 2>&1
timeout 120 python3 -m pytest -q -x tests/test_kernel_gpu.py 2>&1 | tail -3 >> $OUT/log.txt
