# Session 12 call 8 (final tree): every kernel GPU test, memcheck + racecheck over the 22 GQA + 10 MLA cases, the MLA
# rows of the standing table (kernel_vs_flashinfer --mla-only), and kvplan verify of DeepSeek-V2-Lite.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
timeout 400 python3 benchmarks/kernel_device_run.py tests sanitize > $OUT/run.txt 2>&1; tail -8 $OUT/run.txt
timeout 120 python3 benchmarks/kernel_vs_flashinfer.py --no-flashinfer --mla-only --json $OUT/mla.json > $OUT/mla.txt 2>&1; tail -14 $OUT/mla.txt
timeout 100 python3 benchmarks/verify_device_run.py models --only=dsv2-lite --budget=90 > /dev/null 2>&1; tail -2 $OUT/summary.txt
python3 -c "import json; [print(json.loads(l)['result']['verdict']['decode_reason']) for l in open('$OUT/results.jsonl')]"
