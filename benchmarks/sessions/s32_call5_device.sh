# session 32 call 5: the bf16 MLA warpgroup kernel with each step across two warpgroups (split_steps=True, opt-in):
# its GPU tests, memcheck / racecheck / synccheck over its two sanitizer cases (the last two of
# kernel_memcheck.py), then the 16-head shapes against the default (mla_probe.py: DRAM / L2-resident), twice
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
san="compute-sanitizer --report-api-errors no --error-exitcode 1"
{
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 150 python3 -m pytest -q -x -p no:cacheprovider tests/test_kernel_mla_gpu.py -k "split_steps or refuses" 2>&1 | tail -4
for run in 1 2; do
timeout 100 python3 benchmarks/mla_probe.py "split_steps=True" \
  "16h B1 32K,16h B32 8K,16h B8 32K,16h B128 4K,16h B200 8K,16h B32 8K bs16" 2>&1
done
for i in -2 -1; do
  for tool in memcheck racecheck synccheck; do
    timeout 60 $san --tool $tool python3 benchmarks/kernel_memcheck.py --only $i 2>&1 | tail -1
  done
done
} | tee $OUT/s32_call5_h200_2026-12-03.txt
