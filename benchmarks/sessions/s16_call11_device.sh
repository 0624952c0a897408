# Session 16 call 11 (run at the tree of branch early-refill): a step's refill issued before its own data is waited for
# (KernelOptions.early_refill): its GPU tests, then the A/B against the default order on the large and split shapes.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
timeout 90 python3 -m pytest -q -x -p no:cacheprovider tests/test_kernel_gpu.py -k "early_refill" 2>&1 | tail -2
clean() { grep "^| \|read bandwidth\|error" | sed -E 's/bulk=None, pdl=None, fuse_merge=False, //; s/, min_split_tokens=256, l2_prefetch=2, k_coalesced=True, early_page=True//; s/, trace=False, launcher=.driver.//; s/slices=None, //; s/num_splits=None, //; s/stages=None, //; s/heads_per_warp=None, //; s/, max_registers=None//; s/kv_per_cta=None, lazy_rescale=None, heads_in_m=None, page_runs=False, //'; }
timeout 120 python3 benchmarks/kernel_vs_flashinfer.py --no-flashinfer --sweep --sweep-only "B64 8K,fp8 B64 8K,B16 32K,B1 128K,B8 8K,B32 4K,64q/4kv B16 16K,MQA 64q/1kv B8 32K" --variants "early_refill=True;early_refill=True kv_per_cta=8 bulk=True stages=3" 2>&1 | clean | tee $OUT/ab.txt
