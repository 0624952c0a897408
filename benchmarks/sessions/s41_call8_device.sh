#!/usr/bin/env bash
# Session 41, call 8: the chunked block-fp8 experts with the prompt in slices of 2,048 tokens (call 7: the whole
# prompt's sorted rows and outputs put the profile peak at 3.2 GiB). GPU tests of the dequantisation; one MoE layer
# by expert vs in chunks (slices of 1,024 / 2,048 / the whole prompt) over 128-8,192 tokens; verify on DeepSeek-V3.
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s41_call8_h200_2026-12-04.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_fp8_quant.py 2>&1 | tail -2 | tee -a "$LOG"
timeout 150 python3 benchmarks/probes/block_gemv_probe.py --prefill 2>&1 | grep -v -i warn | tail -12 | tee -a "$LOG"
python3 benchmarks/verify_device_run.py models --budget=120 --only=dsv3-tp8 2>&1 | tail -3 | tee -a "$LOG"
python3 benchmarks/verify_summary_md.py "$OUT/results.jsonl" 2>&1 | head -8 | tee -a "$LOG"
cp "$OUT/results.jsonl" "$OUT/verify_h200_2026-12-04_s41_call8.jsonl" 2>/dev/null
