# (branch gqa-tma-s28) the TMA page copies' GPU tests after the stage-alignment fix; then the fp8 large-batch shapes
# (issue 14's 92% bar, 90.6-91.6% today) over KV heads per CTA and ring depths, same tensors, default first and last
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_kernel_gpu.py -k "tma" 2>&1 | tail -2
timeout 90 compute-sanitizer --report-api-errors no --tool memcheck python3 benchmarks/kernel_memcheck.py --tma 2>&1 | grep -E "ERROR SUMMARY|cases OK|rror" | head -3 | sed "s/^/memcheck tma: /"
V="bulk=True kv_per_cta=8 stages=3;bulk=True kv_per_cta=4 stages=2;bulk=True kv_per_cta=4 stages=3"
V="$V;bulk=True kv_per_cta=4 stages=4;bulk=True kv_per_cta=2 stages=4;bulk=True kv_per_cta=8 stages=2 num_splits=1"
V="$V;bulk=True kv_per_cta=8 stages=2 fuse_merge=True;tma_pages=None"
timeout 240 python3 benchmarks/kernel_vs_flashinfer.py --no-flashinfer --sweep --json $OUT/s28_call3_sweep.json \
  --sweep-only "fp8 B64 8K,fp8 B16 32K" --variants "$V" 2>&1 | grep -E "^#|rror"
