# Session 16 call 12, NOT RUN (the device time was spent; run it on branch pairs-early): does halving the bulk copies in flight (token pairs in one copy) let a
# second step in flight (early refill, or 3 stages) pay off where it cost 17-22% with one copy per row (call 11)?
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
timeout 90 python3 -m pytest -q -x -p no:cacheprovider tests/test_kernel_gpu.py -k "pair_copies" 2>&1 | tail -1
clean() { grep "^| \|read bandwidth\|error" | sed -E 's/bulk=None, pdl=None, fuse_merge=False, //; s/, min_split_tokens=256, l2_prefetch=2, k_coalesced=True, early_page=True//; s/, trace=False, launcher=.driver.//; s/slices=None, //; s/num_splits=None, //; s/stages=None, //; s/heads_per_warp=None, //; s/, max_registers=None//; s/kv_per_cta=None, lazy_rescale=None, heads_in_m=None, page_runs=False, //'; }
timeout 100 python3 benchmarks/kernel_vs_flashinfer.py --no-flashinfer --sweep --sweep-only "fp8 B64 8K,B64 8K,B32 4K" --variants "pair_copies=True;pair_copies=True early_refill=True;pair_copies=True kv_per_cta=8 bulk=True stages=3" 2>&1 | clean | tee $OUT/ab.txt
