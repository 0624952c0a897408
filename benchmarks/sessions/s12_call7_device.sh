# Session 12 call 7: two groups with immediate named-barrier ids: racecheck of the MLA cases (the groups case last),
# then one group vs one group + lazy rescale vs two groups + lazy rescale on every 16-head bf16 shape.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
SAN="compute-sanitizer --report-api-errors no --error-exitcode 1"
timeout 120 $SAN --tool racecheck python3 benchmarks/kernel_memcheck.py --mla > $OUT/racecheck.txt 2>&1; grep -v "^=========     " $OUT/racecheck.txt | tail -12
timeout 100 python3 -m pytest -q -x -p no:cacheprovider tests/test_kernel_mla_gpu.py -k "heads_in_m" > $OUT/t.txt 2>&1; tail -2 $OUT/t.txt
timeout 300 python3 benchmarks/mla_probe.py "lazy_rescale=True;groups=2 lazy_rescale=True" "16h B1 4K,16h B1 32K,16h B32 8K,16h B128 4K,16h B8 32K" > $OUT/probe.txt 2>&1; cat $OUT/probe.txt
