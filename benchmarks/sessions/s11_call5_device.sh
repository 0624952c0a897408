# Session 11 call 5: page runs capped at 168 registers (__maxnreg__, ptxas took 171: two 4-warp CTAs per SM
# instead of three): their GPU tests, racecheck of the case list, and the large-group sweep with and without them.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
timeout 150 python3 -m pytest -q -x -p no:cacheprovider tests/test_kernel_gpu.py -k "heads_in_m or head_tiles" > $OUT/pytest.txt 2>&1
tail -2 $OUT/pytest.txt
timeout 150 compute-sanitizer --report-api-errors no --error-exitcode 1 --tool racecheck python3 benchmarks/kernel_memcheck.py > $OUT/racecheck.txt 2>&1; tail -2 $OUT/racecheck.txt
timeout 200 python3 benchmarks/kernel_vs_flashinfer.py --no-flashinfer --sweep --sweep-only "MQA 64q/1kv B8 32K,64q/4kv B16 16K,MQA 64q/1kv B1 32K,MQA 64q/1kv fp8 B8 32K,MQA 64q/1kv head_dim 64 B8 32K,64q/4kv B64 4K,16q/1kv B32 8K" --variants "page_runs=True;page_runs=True kv_per_cta=4;heads_in_m=False" > $OUT/sweep.txt 2>&1
grep "^| [M61]" $OUT/sweep.txt | sed -E 's/\(bulk=([A-Za-z]+).*stages=([A-Za-z0-9]+), kv_per_cta=([A-Za-z0-9]+).*lazy_rescale=([A-Za-z]+), heads_in_m=([A-Za-z]+), page_runs=([A-Za-z]+).*\)/kh=\3 hm=\5 runs=\6/' | cut -c1-150
