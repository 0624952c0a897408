# Session 12 call 10: is the DRAM - L2 gap of heads-in-M MLA the copy size? Rows back to back and one bulk copy
# Ran at commit e81229f; the `dense_rows` option was removed after this measurement (RESULTS.md, session 12).
# per step inside a page (dense_rows: the fragment reads then have bank conflicts) against the default.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
timeout 100 python3 -m pytest -q -x -p no:cacheprovider tests/test_kernel_mla_gpu.py -k "heads_in_m" > $OUT/t.txt 2>&1; tail -3 $OUT/t.txt
timeout 200 python3 benchmarks/mla_probe.py "dense_rows=True;dense_rows=True lazy_rescale=True" "16h B32 8K,16h B128 4K,16h B8 32K" > $OUT/probe.txt 2>&1; cat $OUT/probe.txt
