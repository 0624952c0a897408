# Session 15 call 4: the decode kernel at large batch against the page-read probe's finding (shuffled 32 KB pages
# cost a pure read nothing): the default launch with block tables in address order vs shuffled, then a sweep of
# split counts on the shuffled shapes that miss SDPA + 3%.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
python3 -m kvplan.kernels.batch sm_90 > /dev/null 2>&1
S="B64 8K,B16 32K,64q/4kv B16 16K,B32 4K,B1 128K,MQA 64q/1kv B8 32K,fp8 B64 8K"
clean() { grep "^| \|read bandwidth" | sed -E 's/bulk=None, pdl=None, fuse_merge=False, //; s/, min_split_tokens=256, l2_prefetch=2, k_coalesced=True, early_page=True, trace=False, launcher=.driver.//; s/slices=None, //'; }
for o in "" --ordered-pages; do
  echo "## default, pages ${o:-shuffled}" | tee -a $OUT/log.txt
  timeout 120 python3 benchmarks/kernel_vs_flashinfer.py --no-flashinfer --sweep --sweep-only "$S" --variants "" $o 2>&1 | clean | tee -a $OUT/log.txt
done
echo "## split counts, pages shuffled" | tee -a $OUT/log.txt
timeout 250 python3 benchmarks/kernel_vs_flashinfer.py --no-flashinfer --sweep --sweep-only "B64 8K,B16 32K,64q/4kv B16 16K,B32 4K" \
  --variants "num_splits=2;num_splits=3;num_splits=5;num_splits=8;num_splits=12;num_splits=16;num_splits=24;num_splits=33;num_splits=48" 2>&1 | clean | tee -a $OUT/log.txt
