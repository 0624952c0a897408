# Session 16 call 7: the graph-timed decode benchmark with programmatic dependent launch on and off (KVPLAN_PDL), the
# default ring (2 stages) against 3 stages: is the 3-stage ring's loss in graphs (call 4; equal in one profiled launch,
# call 5) the kernel's or the overlap of consecutive launches?
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
python3 -m kvplan.kernels.batch sm_90 > /dev/null 2>&1
clean() { grep "^| \|read bandwidth\|error" | sed -E 's/bulk=None, pdl=None, fuse_merge=False, //; s/, min_split_tokens=256, l2_prefetch=2, k_coalesced=True, early_page=True//; s/, trace=False, launcher=.driver.//; s/slices=None, //; s/num_splits=None, //; s/heads_per_warp=None, //; s/, page_runs=False, max_registers=None//; s/lazy_rescale=None, heads_in_m=None//'; }
for pdl in 1 0; do
  echo "## KVPLAN_PDL=$pdl"
  KVPLAN_PDL=$pdl timeout 100 python3 benchmarks/kernel_vs_flashinfer.py --no-flashinfer --sweep --sweep-only "fp8 B64 8K,B64 8K,B1 128K,B32 4K" --variants "kv_per_cta=8 bulk=True stages=3" 2>&1 | clean
done 2>&1 | tee $OUT/pdl.txt
