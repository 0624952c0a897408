# Session 16 call 6 (run at the tree of commit d0bf8e5, branch pair-copies): token pairs in one bulk copy (KernelOptions.pair_copies): its GPU tests and the bulk tests,
# compute-sanitizer over the memcheck cases, then the A/B against one copy per row on the large shapes (pages
# shuffled; three of them also in address order).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
python3 -m kvplan.kernels.batch sm_90 > /dev/null 2>&1
timeout 200 python3 -m pytest -q -x -p no:cacheprovider tests/test_kernel_gpu.py -k "pair_copies or bulk_variant or many_pairs or head_tiles or kv_heads_per_cta" > $OUT/tests.txt 2>&1; tail -4 $OUT/tests.txt
S="B64 8K,B16 32K,fp8 B64 8K,fp8 B16 32K,B32 4K,B1 128K,B8 8K,head_dim 64 B16 32K,8kv B128 2K"
clean() { grep "^| \|read bandwidth\|error" | sed -E 's/bulk=None, pdl=None, fuse_merge=False, //; s/, min_split_tokens=256, l2_prefetch=2, k_coalesced=True, early_page=True//; s/, trace=False, launcher=.driver.//; s/slices=None, //; s/num_splits=None, //; s/stages=None, //; s/heads_per_warp=None, //; s/, page_runs=False, max_registers=None//; s/kv_per_cta=None, lazy_rescale=None, heads_in_m=None, //'; }
timeout 150 python3 benchmarks/kernel_vs_flashinfer.py --no-flashinfer --sweep --sweep-only "$S" --variants "pair_copies=True" 2>&1 | clean | tee $OUT/ab.txt
timeout 60 python3 benchmarks/kernel_vs_flashinfer.py --no-flashinfer --sweep --sweep-only "B64 8K,fp8 B64 8K,B16 32K" --variants "pair_copies=True" --ordered-pages 2>&1 | clean | tee $OUT/ab_ordered.txt
for tool in memcheck racecheck; do
  timeout 120 compute-sanitizer --tool $tool --report-api-errors no --error-exitcode 1 python3 benchmarks/kernel_memcheck.py > $OUT/$tool.txt 2>&1; echo "$tool rc $?"; tail -2 $OUT/$tool.txt
done
