# session 26 call 4: 16 bf16 MLA heads on 16-token pages: the warpgroup path (early refill or not) against heads in
# M at B32 / B400 8K (why the default keeps heads in M there); the MLA GPU tests of the default paths; verify of
# DeepSeek-V2-Lite (16-token pages: heads in M again)
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 150 python3 benchmarks/mla_probe.py "wgmma=True;wgmma=True early_free=0;wgmma=False" "16h B32 8K bs16,16h B400 8K bs16,16h B400 8K" 2>&1 | grep -v Warn
timeout 100 python3 -m pytest -q -p no:cacheprovider tests/test_kernel_mla_gpu.py -k "heads_in_m or matches_reference or early" 2>&1 | tail -1
timeout 100 python3 benchmarks/verify_device_run.py models --only=dsv2-lite --budget=90 2>&1 | tail -2
