# session 30 call 2: page orders again, finer spans and block ids sorted inside each CTA's chunk
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 500 python3 benchmarks/page_order_probe.py 2>&1 | grep -v Warning | tee $OUT/s30_call2_h200_2026-12-03.txt
