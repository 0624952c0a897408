#!/usr/bin/env bash
# Session 53 (prepared, not run: no GPU lent): verify --engine, Llama-3.1-8B-Instruct under vLLM 0.32 and 0.34 (sized
# after warmup: baseline, persistent profile memory, margin, 2 MiB granules), then the GPU tests. Timeouts: 560 s.
# Device: bash benchmarks/sessions/s53_device.sh   (writes $OUT/s53_gpu.txt and the results beside it)
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
LOG=$OUT/s53_gpu.txt
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$LOG"
for release in 0.32.0 0.34.0; do
  echo "== verify meta-llama/Llama-3.1-8B-Instruct --engine vllm==$release" | tee -a "$LOG"
  out=$OUT/s53_verify_llama8b_$release
  timeout 120 python3 -m kvplan verify meta-llama/Llama-3.1-8B-Instruct -c 8192 --engine "vllm==$release" \
    --format json >"$out.json" 2>"$out.err"
  echo "rc=$?" | tee -a "$LOG"
  tail -3 "$out.err" | tee -a "$LOG"
  python3 benchmarks/probes/verify_result_summary.py "$out.json" 2>&1 | head -12 | tee -a "$LOG"
  python3 -c "import json,sys; b=json.load(open(sys.argv[1]))['budget']; print('sizing', b.get('sizing'),
    b.get('extensible'))" "$out.json" 2>&1 | tee -a "$LOG"
done
echo "== 0.34 table" | tee -a "$LOG"
timeout 100 python3 -m kvplan verify meta-llama/Llama-3.1-8B-Instruct -c 8192 --engine vllm==0.34.0 \
  >"$OUT/s53_verify_llama8b_0.34.0.txt" 2>&1
echo "rc=$?" | tee -a "$LOG"
grep -E "^ *(baseline|margin|KV budget)|sized after warmup|cuBLAS handles|Options" -A2 "$OUT/s53_verify_llama8b_0.34.0.txt" \
  | head -20 | tee -a "$LOG"
echo "== GPU tests: --engine (0.34 on the GPU), then verify's own" | tee -a "$LOG"
timeout 100 python3 -m pytest -q -p no:cacheprovider -rf tests/test_verify_engine.py 2>&1 | tail -5 | tee -a "$LOG"
timeout 120 python3 -m pytest -q -p no:cacheprovider -rf tests/test_verify_gpu.py 2>&1 | tail -8 | tee -a "$LOG"
