# Session 15 call 6: few (sequence, KV head) pairs with all 8 KV heads of a token in one copy (whole pages a step)
# and the 2-stage ring that the many-pairs default uses (call 5 tried them with the few-pairs shape's 3 stages).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
python3 -m kvplan.kernels.batch sm_90 > /dev/null 2>&1
clean() { grep "^| \|read bandwidth" | sed -E 's/bulk=None, pdl=None, fuse_merge=False, //; s/, heads_per_warp=None//; s/, min_split_tokens=256, l2_prefetch=2, k_coalesced=True, early_page=True//; s/, lazy_rescale=None, heads_in_m=None, page_runs=False, max_registers=None, trace=False, launcher=.driver.//; s/, trace=False, launcher=.driver.//'; }
for o in "" --ordered-pages; do
timeout 100 python3 benchmarks/kernel_vs_flashinfer.py --no-flashinfer --sweep --sweep-only "B1 128K,B1 32K,B8 8K" $o \
  --variants "kv_per_cta=8 stages=2 num_splits=33;kv_per_cta=8 stages=2 num_splits=66;kv_per_cta=8 stages=2 num_splits=128;kv_per_cta=8 stages=2 num_splits=264;kv_per_cta=8 stages=2" 2>&1 | clean | tee -a $OUT/sweep.txt
done
