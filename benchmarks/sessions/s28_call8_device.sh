# (branch mla-free-one) the e4m3 MLA kernel's FREE hand-over arrived on by one values thread after their named
# barrier instead of by all 128 (KVP_MLA_FREE_ONE): MLA GPU tests, racecheck of every MLA case, fp8 times; then the
# same times with KVP_MLA_FREE_ONE 0 (main's form), patched in place
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
S="16h fp8 B32 8K,16h fp8 B8 32K,16h fp8 B128 4K"
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_kernel_mla_gpu.py 2>&1 | tail -1
timeout 120 compute-sanitizer --report-api-errors no --tool racecheck --racecheck-report all --print-limit 3 \
  python3 benchmarks/kernel_memcheck.py --mla 2>&1 | grep -E "RACECHECK SUMMARY|Potential|cases OK" | head -3
echo "one arrival:"; timeout 60 python3 benchmarks/mla_probe.py "" "$S" 2>&1 | grep -v Warn
sed -i 's/#define KVP_MLA_FREE_ONE 1/#define KVP_MLA_FREE_ONE 0/' kvplan/kernels/paged_mla_wg.cu
echo "128 arrivals:"; timeout 60 python3 benchmarks/mla_probe.py "" "$S" 2>&1 | grep -v Warn
sed -i 's/#define KVP_MLA_FREE_ONE 0/#define KVP_MLA_FREE_ONE 1/' kvplan/kernels/paged_mla_wg.cu
echo "one arrival again:"; timeout 60 python3 benchmarks/mla_probe.py "" "$S" 2>&1 | grep -v Warn
