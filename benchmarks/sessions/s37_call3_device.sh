#!/usr/bin/env bash
# Session 37, call 3: why the tiny DeepSeek-V3 / Llama 4 / Nemotron-H MoE forwards depart from the reference on the
# GPU (each bundled MoE piece switched off in turn), then the GPU forward tests again with the labels' new rules.
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s37_call3_h200_2026-12-03.txt
python3 benchmarks/probes/moe_forward_diagnose.py deepseek_v3_groups llama4 nemotron_h_moe 2>&1 | grep -v Warn | tail -20 \
  | tee "$LOG"
python3 -m pytest -q -p no:cacheprovider tests/test_verify_gpu.py --tb=line -k "deepseek_v3_groups or llama4 or nemotron" \
  2>&1 | grep -E "Error|passed|failed|^/" | cut -c1-400 | tail -20 | tee -a "$LOG"
