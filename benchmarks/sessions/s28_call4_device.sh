# the standing table on main (FlashInfer 0.6.18.post1 from .peers, carried): kvplan against FlashInfer and SDPA on
# every shape of issue 14, MLA rows after sessions 26-28 (early refill, two e4m3 warpgroups, mbarrier hand-overs)
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 560 python3 benchmarks/kernel_device_run.py env bench 2>&1 | tail -40
