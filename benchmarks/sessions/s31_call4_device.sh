# session 31 call 4: the warpgroup-MMA decode with two warpgroups on alternate steps (one's softmax beside the other's
# MMAs), its softmax and the MLA kernel's in shared helpers (kvp_wgmma.cuh; MLA SASS: same instructions, the
# prologue's registers renamed): the wg and MLA GPU tests, the A/B against the default launch and SDPA on large
# groups, memcheck of the wg tests
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
O=$OUT/s31_call4_h200_2026-12-03.txt
{
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 150 python3 -m pytest -q -x -p no:cacheprovider tests/test_kernel_gpu.py tests/test_kernel_mla_gpu.py \
  -k "warpgroup or mla" 2>&1 | tail -4
timeout 200 python3 benchmarks/probes/decode_wg_ab.py 2>&1 | grep -v Warning
timeout 120 compute-sanitizer --report-api-errors no --tool memcheck python3 -m pytest -q -p no:cacheprovider \
  tests/test_kernel_gpu.py -k "warpgroup_mmas and (bfloat16-16 or 128-2)" 2>&1 \
  | grep -E "ERROR SUMMARY|passed|failed|Invalid|Error" | head -8 | sed "s/^/memcheck: /"
} 2>&1 | tee $O
