# Session 12 call 5: every kernel GPU test (GQA untouched, MLA with heads in M by default) and memcheck + racecheck
# over the 22 GQA + 9 MLA cases; then the MLA standing rows (kernel_vs_flashinfer --mla-only).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
timeout 420 python3 benchmarks/kernel_device_run.py tests sanitize > $OUT/run.txt 2>&1; tail -12 $OUT/run.txt
timeout 150 python3 benchmarks/kernel_vs_flashinfer.py --no-flashinfer --mla-only --json $OUT/mla.json > $OUT/mla.txt 2>&1; tail -16 $OUT/mla.txt
