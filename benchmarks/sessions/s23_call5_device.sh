# Session 23, calls 5-6 (issue 14): the warpgroup-MMA MLA decode with fp8 latents (widened into an fp16 operand tile)
# and as the default above 16 bf16 heads (call 6: 32 heads a CTA there): the MLA GPU tests, memcheck and racecheck
# over the MLA cases, the sweep.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $OUT/log.txt
timeout 240 python3 -m pytest -q -x -p no:cacheprovider tests/test_kernel_mla_gpu.py > $OUT/tests.txt 2>&1
echo "tests rc $?" | tee -a $OUT/log.txt; tail -15 $OUT/tests.txt | tee -a $OUT/log.txt
SAN="compute-sanitizer --report-api-errors no --error-exitcode 1"
timeout 150 $SAN --tool memcheck python3 benchmarks/kernel_memcheck.py --mla > $OUT/memcheck.txt 2>&1
echo "memcheck rc $?" | tee -a $OUT/log.txt; tail -2 $OUT/memcheck.txt | tee -a $OUT/log.txt
timeout 200 $SAN --tool racecheck python3 benchmarks/kernel_memcheck.py --mla > $OUT/racecheck.txt 2>&1
echo "racecheck rc $?" | tee -a $OUT/log.txt; tail -2 $OUT/racecheck.txt | tee -a $OUT/log.txt
timeout 200 python3 benchmarks/kernel_vs_flashinfer.py --no-flashinfer --mla-only --sweep \
  --json $OUT/mla.json > $OUT/mla.txt 2>&1
echo "bench rc $?" | tee -a $OUT/log.txt
python3 benchmarks/probes/sweep_rows.py < $OUT/mla.txt | grep -v "tokens\|bulk" | tee -a $OUT/log.txt
