# Session 12 call 12 (final tree, TMA the default for heads-in-M MLA): every kernel GPU test, memcheck + racecheck
# over the 22 GQA + 12 MLA cases, then the MLA rows of the standing table.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
timeout 170 python3 benchmarks/kernel_device_run.py tests sanitize > $OUT/run.txt 2>&1; tail -6 $OUT/run.txt
timeout 40 python3 benchmarks/kernel_vs_flashinfer.py --no-flashinfer --mla-only --json $OUT/mla.json > $OUT/mla.txt 2>&1; tail -14 $OUT/mla.txt
