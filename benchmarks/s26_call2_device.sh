# session 26 call 2: verify of four dense models with the seventh matmul form (the row-owned GEMV at two CTAs per
# SM with rings of 8, timed beside the other six per weight shape and batch); the GEMV GPU tests of that launch
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_gemv_stream_gpu.py -k "own" 2>&1 | tail -1
timeout 330 python3 benchmarks/verify_device_run.py models --only=llama8b-8k,qwen3-14b,llama1b,gemma3-27b --budget=320 2>&1 | tail -8
python3 benchmarks/verify_forms_summary.py 2>&1 | tail -40
