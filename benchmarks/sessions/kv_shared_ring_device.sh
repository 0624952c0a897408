# One device call for KV heads per CTA on the bulk path: decode-kernel GPU tests for bulk copies and KV heads per
# CTA, memcheck + racecheck over kernel_memcheck.py, then the GQA launch sweep with kv_per_cta variants (kvplan
# only). Written in session 5 for the shared multi-head ring; run on it in session 6 (RESULTS.md, "KV heads sharing one ring").
#     Device: bash benchmarks/sessions/kv_shared_ring_device.sh
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
python3 -m kvplan.kernels.batch sm_90 > /dev/null 2>&1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > $OUT/log.txt
timeout 150 python3 -m pytest -q -x tests/test_kernel_gpu.py -k "bulk or kv_heads or build_variants" 2>&1 | tail -4 >> $OUT/log.txt
san="compute-sanitizer --report-api-errors no --error-exitcode 1"
timeout 120 $san --tool memcheck python3 benchmarks/kernel_memcheck.py > /tmp/memcheck.txt 2>&1; echo "memcheck rc=$? $(grep SUMMARY /tmp/memcheck.txt)" >> $OUT/log.txt
timeout 150 $san --tool racecheck --racecheck-report all python3 benchmarks/kernel_memcheck.py > /tmp/race.txt 2>&1; echo "racecheck rc=$? $(grep -c 'Race reported' /tmp/race.txt) races $(grep SUMMARY /tmp/race.txt)" >> $OUT/log.txt
grep -h -A6 'Race reported\|Invalid' /tmp/race.txt /tmp/memcheck.txt | head -30 >> $OUT/log.txt
timeout 200 python3 benchmarks/kernel_vs_flashinfer.py --no-flashinfer --sweep \
  --sweep-only "B64 8K,B16 32K,B8 8K,B1 32K,head_dim 64 B16 32K" --json $OUT/gqa_sweep.json 2>&1 \
  | grep "^| " | sed -E 's/bulk=None, pdl=None, fuse_merge=False, //; s/, min_split_tokens=256, l2_prefetch=2, k_coalesced=True, early_page=True, trace=False, launcher=.driver.//' >> $OUT/log.txt
