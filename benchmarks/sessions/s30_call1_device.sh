# session 30 call 1 (run at commit de372b1, branch l2-ahead, where benchmarks/page_ahead_ab.py lives): page orders and L2 touches ahead
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader
timeout 500 python3 benchmarks/page_ahead_ab.py 2>&1 | grep -v Warning | tee $OUT/s30_call1_h200_2026-12-03.txt
