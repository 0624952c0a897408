# Session 7 call 5: GPU tests of everything this session changed, memcheck and racecheck over the decode / MLA
# case list (the two-pass split merge), the MoE variant sweep (pair-slot kernels after the by-expert split).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_skinny_gpu.py tests/test_rope_cache.py tests/test_verify_gpu.py tests/test_kernel_mla_gpu.py > $OUT/pytest.txt 2>&1
tail -2 $OUT/pytest.txt
CS=/usr/local/cuda/bin/compute-sanitizer
for tool in memcheck racecheck; do
  extra=""; [ $tool = racecheck ] && extra="--racecheck-report all"
  timeout 150 $CS --report-api-errors no --tool $tool $extra --error-exitcode 1 python3 benchmarks/kernel_memcheck.py > $OUT/$tool.txt 2>&1
  echo "$tool rc=$? $(grep -c 'ERROR SUMMARY\|RACECHECK SUMMARY' $OUT/$tool.txt) $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' $OUT/$tool.txt | tail -1)"
done
timeout 60 python3 benchmarks/skinny_gemm.py --moe-sweep > $OUT/moe_sweep.txt 2>&1
