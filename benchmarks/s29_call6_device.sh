# the merges through two shared helpers (add_weighted, store_merged4; a few bytes of every cubin moved): the GQA and
# MLA kernel GPU tests and memcheck over every case, then the few-splits A/B once more
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_kernel_gpu.py tests/test_kernel_mla_gpu.py 2>&1 | tail -2
timeout 150 compute-sanitizer --report-api-errors no --tool memcheck python3 benchmarks/kernel_memcheck.py 2>&1 \
  | grep -E "ERROR SUMMARY|cases OK|rror" | head -4 | sed "s/^/memcheck: /"
timeout 100 python3 benchmarks/merge_few_ab.py 2>&1 | grep -E "^\| [Bf]"
