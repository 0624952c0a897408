# session 31 call 9: the final tree's kernel GPU tests (GQA, warpgroup-MMA GQA, MLA)
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
timeout 280 python3 -m pytest -q -p no:cacheprovider tests/test_kernel_gpu.py tests/test_kernel_mla_gpu.py \
  tests/test_decode_wg.py 2>&1 | tail -3 | tee $OUT/s31_call9_h200_2026-12-03.txt
