# session 32 call 2: (1) the bf16 MLA warpgroup kernel with each step's latents prefetched into L2 ahead of its
# tensor copies (paged_mla_decode_plan(l2_ahead=N), KVP_MLA_L2AHEAD; opt-in): its GPU tests, then the 16-head shapes
# with N = 0 (default), 1, 2, 3, twice (DRAM / L2-resident, CUDA graphs); (2) the block-table sort as one kernel
# (page_order.cu): its GPU tests against the torch ops, and both timed
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
{
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_kernel_mla_gpu.py tests/test_kernel_gpu.py \
  -k "early_free or refuses or sort" 2>&1 | tail -3
timeout 60 python3 benchmarks/probes/sort_pages_time.py 2>&1
for run in 1 2; do
timeout 150 python3 benchmarks/mla_probe.py "l2_ahead=1;l2_ahead=2;l2_ahead=3" \
  "16h B1 32K,16h B32 8K,16h B8 32K,16h B128 4K,16h B200 8K" 2>&1
done
} | tee $OUT/s32_call2_h200_2026-12-03.txt
# the sanitizers over the two l2_ahead MLA cases (the last two of kernel_memcheck.py)
san="compute-sanitizer --report-api-errors no --error-exitcode 1"
for i in -2 -1; do
  timeout 60 $san --tool memcheck python3 benchmarks/kernel_memcheck.py --only $i 2>&1 | tail -2
  timeout 90 $san --tool racecheck python3 benchmarks/kernel_memcheck.py --only $i 2>&1 | tail -2
done | tee -a $OUT/s32_call2_h200_2026-12-03.txt
