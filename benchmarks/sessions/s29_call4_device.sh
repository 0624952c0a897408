# where a GQA call's time goes beyond its bytes: per-CTA timelines, pages shuffled and in order (gqa_timeline.py)
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 300 python3 benchmarks/gqa_timeline.py 2>&1 | grep -v Warning
timeout 200 python3 benchmarks/gqa_timeline.py 2>&1 | grep -E "^\| [Bf]"
timeout 100 python3 -m pytest -q -p no:cacheprovider tests/test_kernel_gpu.py -k trace 2>&1 | tail -2
