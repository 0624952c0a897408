# session 34 call 4 (issue 14): the MLA split merge two rows a CTA up to 8 splits (kvp_mla_merge_few, as the GQA
# merge since session 29). The MLA GPU tests, memcheck over the MLA cases, the merge A/B on the shapes with 2-8
# splits (mla_probe.py, few_merge=False the one-row-a-CTA merge), then the standing MLA rows.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
{
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 240 python3 -m pytest -q -x -p no:cacheprovider tests/test_kernel_mla_gpu.py 2>&1 | tail -4 | cut -c1-300
timeout 120 compute-sanitizer --tool memcheck --report-api-errors no python3 benchmarks/kernel_memcheck.py --mla \
  2>&1 | tail -3
for run in 1 2; do
  timeout 90 python3 benchmarks/mla_probe.py "few_merge=False" "16h B32 8K,16h fp8 B32 8K,128h B8 8K,16h B8 32K"
done
timeout 150 python3 benchmarks/kernel_vs_flashinfer.py --mla-only --no-flashinfer 2>&1 | tail -16
} 2>&1 | tee $OUT/s34_call4_h200_2026-12-03.txt
