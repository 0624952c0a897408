# KV heads sharing one bulk ring (the default for many pairs on sm_90): its GPU tests, racecheck of every case
# that uses it (kernel_memcheck.py 8, 9, 10, 18), then default vs kv_per_cta=1 (the 8-slice default before it).
#     Device: bash benchmarks/sessions/kv_shared_ring_check.sh
S=${S:-"B64 8K,B16 32K,head_dim 64 B16 32K,8kv B128 2K,B32 4K,head_dim 64 B64 8K,head_dim 64 B32 4K,B8 8K,B1 32K"}
V=${V:-"kv_per_cta=1"}
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
python3 -m kvplan.kernels.batch sm_90 > /dev/null 2>&1
[ -n "$SKIP_CHECKS" ] || timeout 200 python3 -m pytest -q tests/test_kernel_gpu.py -k "bulk or kv_heads or share_one_ring or fused" 2>&1 | tail -5 >> $OUT/log.txt
san="compute-sanitizer --report-api-errors no --error-exitcode 1 --tool racecheck --racecheck-report all --print-limit 4"
[ -n "$SKIP_CHECKS" ] || for c in ${CASES:-8 9 10 18 0 2}; do timeout 100 $san python3 benchmarks/kernel_memcheck.py $c > /tmp/r$c.txt 2>&1; echo "race case $c rc=$? $(grep SUMMARY /tmp/r$c.txt)" >> $OUT/log.txt; grep -m3 "hazard\|Thread" /tmp/r$c.txt >> $OUT/log.txt; done
timeout 250 python3 benchmarks/kernel_vs_flashinfer.py --no-flashinfer --sweep \
  --sweep-only "$S" \
  --variants "$V" --json $OUT/sweep.json 2>&1 | grep "^| " | sed -E 's/bulk=None, pdl=None, fuse_merge=False, //; s/, min_split_tokens=256, l2_prefetch=2, k_coalesced=True, early_page=True, trace=False, launcher=.driver.//; s/slices=None, //' >> $OUT/log.txt
