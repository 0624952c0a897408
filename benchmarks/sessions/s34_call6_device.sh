# session 34 call 6 (issue 13), branch solve-3ctas: kvp_dn_solve at three CTAs an SM (__launch_bounds__(256, 3)) against
# call 5's two. Its GPU tests (solve, chunked rule, tiny Qwen3-Next), the kernels against their torch forms twice.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
{
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_prefill_kernels.py 2>&1 | tail -2 | cut -c1-300
timeout 60 python3 benchmarks/probes/prefill_kernels_time.py
timeout 60 python3 benchmarks/probes/prefill_kernels_time.py | grep solve
} 2>&1 | tee $OUT/s34_call6_h200_2026-12-03.txt
