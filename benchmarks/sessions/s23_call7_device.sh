# Session 23, call 7 (issue 14): the MLA rows of the standing table with the warpgroup-MMA path the default above 16
# heads (bf16 and fp8), after the MLA GPU tests.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $OUT/log.txt
timeout 200 python3 -m pytest -q -x -p no:cacheprovider tests/test_kernel_mla_gpu.py > $OUT/tests.txt 2>&1
echo "tests rc $?" | tee -a $OUT/log.txt; tail -2 $OUT/tests.txt | tee -a $OUT/log.txt
timeout 300 python3 benchmarks/kernel_vs_flashinfer.py --no-flashinfer --mla-only --json $OUT/mla_table.json \
  > $OUT/mla_table.txt 2>&1; echo "table rc $?" | tee -a $OUT/log.txt
grep -v '^{' $OUT/mla_table.txt | tail -25 | tee -a $OUT/log.txt
