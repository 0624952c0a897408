# Racecheck of the KV-heads-per-CTA cases, then the shared-ring sweep (KH x stages) over the GQA shapes.
#     Device: bash benchmarks/sessions/kv_shared_ring_sweep.sh
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
python3 -m kvplan.kernels.batch sm_90 > /dev/null 2>&1
san="compute-sanitizer --report-api-errors no --error-exitcode 1 --tool racecheck --racecheck-report all"
for c in 8 9 17; do timeout 100 $san python3 benchmarks/kernel_memcheck.py $c > /tmp/r$c.txt 2>&1; echo "race case $c rc=$? $(grep -c 'Race reported' /tmp/r$c.txt) $(grep SUMMARY /tmp/r$c.txt)" >> $OUT/log.txt; done
timeout 420 python3 benchmarks/kernel_vs_flashinfer.py --no-flashinfer --sweep \
  --sweep-only "B64 8K,B16 32K,head_dim 64 B16 32K,B8 8K,B1 32K,B32 4K,B1 4K,B1 128K,fp8 B16 32K" \
  --variants "kv_per_cta=8 stages=2;kv_per_cta=8 stages=3;kv_per_cta=4 stages=2;kv_per_cta=4 stages=3;kv_per_cta=4 stages=4;kv_per_cta=2 stages=4;kv_per_cta=8 stages=2" \
  --json $OUT/sweep.json 2>&1 | grep "^| " | sed -E 's/bulk=None, pdl=None, fuse_merge=False, //; s/, min_split_tokens=256, l2_prefetch=2, k_coalesced=True, early_page=True, trace=False, launcher=.driver.//; s/num_splits=None, slices=None, //' >> $OUT/log.txt
