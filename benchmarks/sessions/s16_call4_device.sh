# Session 16 call 4: ring depth and KV heads per CTA on the fp8 shapes that miss 92% of read (shared bulk ring,
# pages shuffled), and the bf16 large shapes for reference.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
python3 -m kvplan.kernels.batch sm_90 > /dev/null 2>&1
clean() { grep "^| \|read bandwidth\|error" | sed -E 's/bulk=None, pdl=None, fuse_merge=False, //; s/, min_split_tokens=256, l2_prefetch=2, k_coalesced=True, early_page=True//; s/, trace=False, launcher=.driver.//; s/slices=None, //; s/num_splits=None, //; s/heads_per_warp=None, //; s/, page_runs=False, max_registers=None//; s/lazy_rescale=None, heads_in_m=None//'; }
V="kv_per_cta=8 bulk=True stages=3;kv_per_cta=8 bulk=True stages=4;kv_per_cta=4 bulk=True stages=3;kv_per_cta=4 bulk=True stages=4;kv_per_cta=8 bulk=True stages=3 num_splits=2;kv_per_cta=8 bulk=True stages=3 num_splits=8"
timeout 150 python3 benchmarks/kernel_vs_flashinfer.py --no-flashinfer --sweep --sweep-only "fp8 B64 8K,fp8 B16 32K" --variants "$V" 2>&1 | clean | tee $OUT/fp8_stages.txt
timeout 100 python3 benchmarks/kernel_vs_flashinfer.py --no-flashinfer --sweep --sweep-only "B64 8K,B16 32K" --variants "kv_per_cta=8 stages=3;kv_per_cta=4 stages=3;kv_per_cta=4 stages=2" 2>&1 | clean | tee $OUT/bf16_stages.txt
