# Session 12 call 6: heads-in-M MLA after the FFMA fold of the score scale, against the lazy rescale, the early
# refill (one more barrier a step) and both; two groups with the lazy rescale. Tests of every variant first.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
SAN="compute-sanitizer --report-api-errors no --error-exitcode 1"
timeout 150 python3 -m pytest -q -x -p no:cacheprovider tests/test_kernel_mla_gpu.py -k "heads_in_m or long_context" > $OUT/t.txt 2>&1; tail -3 $OUT/t.txt
timeout 300 python3 benchmarks/mla_probe.py "lazy_rescale=True;early_refill=True;lazy_rescale=True early_refill=True;groups=2 lazy_rescale=True" "16h B32 8K,16h B128 4K,16h B8 32K" > $OUT/probe.txt 2>&1; cat $OUT/probe.txt
