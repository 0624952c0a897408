# Session 11 call 9: heads in M with q's fragments in shared memory (q_in_shared: 32 registers fewer) under a
# 128-register cap (max_registers: four 4-warp CTAs per SM instead of three): tests, both sanitizers over the case
# list (two new cases at its end), then the large-group sweep.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
timeout 150 python3 -m pytest -q -x -p no:cacheprovider tests/test_kernel_gpu.py -k "heads_in_m or head_tiles" > $OUT/pytest.txt 2>&1
tail -2 $OUT/pytest.txt
san="compute-sanitizer --report-api-errors no --error-exitcode 1"
timeout 120 $san --tool memcheck python3 benchmarks/kernel_memcheck.py > $OUT/memcheck.txt 2>&1 &
timeout 150 $san --tool racecheck python3 benchmarks/kernel_memcheck.py > $OUT/racecheck.txt 2>&1; wait
tail -2 $OUT/memcheck.txt; tail -1 $OUT/racecheck.txt
timeout 200 python3 benchmarks/kernel_vs_flashinfer.py --no-flashinfer --sweep --sweep-only "MQA 64q/1kv B8 32K,64q/4kv B16 16K,MQA 64q/1kv B1 32K,MQA 64q/1kv fp8 B8 32K,MQA 64q/1kv head_dim 64 B8 32K,64q/4kv B64 4K,16q/1kv B32 8K" --variants "q_in_shared=True max_registers=128;q_in_shared=True;max_registers=128;q_in_shared=True max_registers=128 page_runs=True;q_in_shared=True max_registers=128 stages=3" > $OUT/sweep.txt 2>&1
grep "^| [M61]" $OUT/sweep.txt | sed -E 's/\(bulk=([A-Za-z]+).*stages=([A-Za-z0-9]+), kv_per_cta.*page_runs=([A-Za-z]+), q_in_shared=([A-Za-z]+), max_registers=([A-Za-z0-9]+).*\)/st=\2 runs=\3 qs=\4 reg=\5/' | cut -c1-150
