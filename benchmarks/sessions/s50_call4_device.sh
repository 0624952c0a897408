#!/usr/bin/env bash
# Session 50, call 4: the GPU tests call 1 failed, fixed (Gemma 4 / 3n against their CPU bf16 noise floor with
# unit-variance attention logits; MiMo's graph without a copy in the capture) with the attention-free and Gemma 3n
# forwards new this session; MiMo's end-to-end failure with its traceback; where the DSA tiny models part between the
# CPU and the GPU in float32; then verify on Falcon-Mamba-7B and
# Gemma-3n-E2B. Timeouts sum to 550 s.
# Device: bash benchmarks/sessions/s50_call4_device.sh   (writes $OUT/s50_call4_h200.txt and the files beside it)
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 COLUMNS=100
LOG=$OUT/s50_call4_h200.txt
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$LOG"
echo "== GPU tests" | tee -a "$LOG"
timeout 200 python3 -m pytest -q -p no:cacheprovider -rfE tests/test_verify_gemma4.py tests/test_verify_gemma3n.py \
  tests/test_verify_attention_free.py tests/test_verify_mimo_v2.py tests/test_verify_gpu.py \
  -k "on_the_gpu or cuda_graph or noise_floor or falcon_mamba_verify or (on_gpu_matches and (gemma or mamba or jamba or mimo))" \
  > "$OUT/tests.txt" 2>&1
grep -E "passed|failed|^FAILED|^ERROR" "$OUT/tests.txt" | tail -20 | tee -a "$LOG"
echo "== MiMo end to end, traceback" | tee -a "$LOG"
timeout 80 python3 -m pytest -q -p no:cacheprovider -x --tb=long \
  tests/test_verify_mimo_v2.py::test_small_mimo_end_to_end > "$OUT/mimo_e2e.txt" 2>&1
tail -3 "$OUT/mimo_e2e.txt" | tee -a "$LOG"
echo "== DSA float32, CPU against GPU (session 51: benchmarks/probes/s51_dsa_float32_ops.py, which replaced the script run here)" | tee -a "$LOG"
timeout 50 python3 benchmarks/probes/s51_dsa_float32_ops.py 2>&1 | tail -40 | tee -a "$LOG"
echo "== verify tiiuae/falcon-mamba-7b" | tee -a "$LOG"
timeout 110 python3 -m kvplan verify tiiuae/falcon-mamba-7b --format json > "$OUT/fmamba.json" 2> "$OUT/fmamba.err"
echo "rc $?" | tee -a "$LOG"
tail -3 "$OUT/fmamba.err" | cut -c1-300 | tee -a "$LOG"
echo "== verify google/gemma-3n-E2B --context 8192" | tee -a "$LOG"
timeout 110 python3 -m kvplan verify google/gemma-3n-E2B --context 8192 --format json > "$OUT/g3n.json" 2> "$OUT/g3n.err"
echo "rc $?" | tee -a "$LOG"
tail -3 "$OUT/g3n.err" | cut -c1-300 | tee -a "$LOG"
