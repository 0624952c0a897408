# Racecheck report of case 8 (8 kv heads per CTA sharing one bulk ring), then head_dim 64 shapes x KH x stages.
#     Device: bash benchmarks/sessions/kv_shared_ring_sweep2.sh
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
python3 -m kvplan.kernels.batch sm_90 > /dev/null 2>&1
san="compute-sanitizer --report-api-errors no --error-exitcode 1 --tool racecheck --racecheck-report all --print-limit 6"
timeout 100 $san python3 benchmarks/kernel_memcheck.py 8 > /tmp/r8.txt 2>&1; echo "race case 8 rc=$?" >> $OUT/log.txt
head -c 6000 /tmp/r8.txt >> $OUT/log.txt
timeout 400 python3 benchmarks/kernel_vs_flashinfer.py --no-flashinfer --sweep \
  --sweep-only "head_dim 64 B64 8K,head_dim 64 B8 8K,head_dim 64 B1 32K,head_dim 64 B32 4K,head_dim 64 4kv B16 32K,8kv B128 2K,B16 32K" \
  --variants "kv_per_cta=8 stages=2;kv_per_cta=4 stages=2;kv_per_cta=2 stages=2;kv_per_cta=2 stages=3;kv_per_cta=8 stages=2 num_splits=4;kv_per_cta=8 stages=2 num_splits=16" \
  --json $OUT/sweep.json 2>&1 | grep "^| " | sed -E 's/bulk=None, pdl=None, fuse_merge=False, //; s/, min_split_tokens=256, l2_prefetch=2, k_coalesced=True, early_page=True, trace=False, launcher=.driver.//; s/slices=None, //' >> $OUT/log.txt
