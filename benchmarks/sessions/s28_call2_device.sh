# GQA decode with TMA page copies (KernelOptions.tma_pages, branch gqa-tma-s28): GPU tests, sanitizers on its cases,
# then the large-batch shapes with and without it, alternating, same tensors (kernel_vs_flashinfer.py's sweep)
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_kernel_gpu.py -k "tma or many_pairs or bulk" 2>&1 | tail -3
SAN="compute-sanitizer --report-api-errors no"
timeout 90 $SAN --tool memcheck python3 benchmarks/kernel_memcheck.py --tma 2>&1 | grep -E "ERROR SUMMARY|cases OK|rror" | head -5 | sed "s/^/memcheck tma: /"
timeout 90 $SAN --tool racecheck --racecheck-report all --print-limit 3 python3 benchmarks/kernel_memcheck.py --tma 2>&1 | grep -E "RACECHECK SUMMARY|Potential|cases OK" | head -4 | sed "s/^/racecheck tma: /"
timeout 200 python3 benchmarks/kernel_vs_flashinfer.py --no-flashinfer --sweep --json $OUT/s28_call2_sweep.json \
  --sweep-only "B64 8K,B16 32K,fp8 B64 8K,fp8 B16 32K,head_dim 64 B16 32K,B32 4K,head_dim 64 B64 8K,8kv B128 2K" \
  --variants "tma_pages=True;tma_pages=False;tma_pages=True" 2>&1 | grep -E "^\||^#|rror" | grep -v "^| sweep shape\|^|---"
