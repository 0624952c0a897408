# Session 23, calls 1-2 (issue 14): the warpgroup-MMA MLA decode (paged_mla_wg.cu) — its GPU tests, then the MLA
# sweep with `wgmma=True` beside the default (heads in M for 16 heads, head tiles for 128) on the same tensors.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $OUT/log.txt
timeout 200 python3 -m pytest -q -x -p no:cacheprovider tests/test_kernel_mla_gpu.py -k wgmma > $OUT/tests.txt 2>&1
echo "tests rc $?" | tee -a $OUT/log.txt; tail -25 $OUT/tests.txt | tee -a $OUT/log.txt
timeout 300 python3 benchmarks/kernel_vs_flashinfer.py --no-flashinfer --mla-only --sweep \
  --json $OUT/mla.json > $OUT/mla.txt 2>&1
echo "bench rc $?" | tee -a $OUT/log.txt; grep -v "^{" $OUT/mla.txt | tail -30 | tee -a $OUT/log.txt
python3 benchmarks/probes/sweep_rows.py < $OUT/mla.txt | tee -a $OUT/log.txt
