# Session 23, call 4 (issue 14): the warpgroup-MMA MLA decode with one tensor copy per step (pages of 64+ tokens):
# its GPU tests, the L2-resident probe (the step's own rate) and the MLA sweep.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $OUT/log.txt
timeout 200 python3 -m pytest -q -x -p no:cacheprovider tests/test_kernel_mla_gpu.py -k wgmma > $OUT/tests.txt 2>&1
echo "tests rc $?" | tee -a $OUT/log.txt; tail -3 $OUT/tests.txt | tee -a $OUT/log.txt
timeout 120 python3 benchmarks/probes/mla_wg_probe.py > $OUT/probe.txt 2>&1; echo "probe rc $?" | tee -a $OUT/log.txt
cat $OUT/probe.txt | tee -a $OUT/log.txt
timeout 300 python3 benchmarks/kernel_vs_flashinfer.py --no-flashinfer --mla-only --sweep \
  --json $OUT/mla.json > $OUT/mla.txt 2>&1
echo "bench rc $?" | tee -a $OUT/log.txt
python3 benchmarks/probes/sweep_rows.py < $OUT/mla.txt | grep -v "tokens\|bulk" | tee -a $OUT/log.txt
