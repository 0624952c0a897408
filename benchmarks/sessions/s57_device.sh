#!/usr/bin/env bash
# Session 57, one call: the merged tree (pooling runner, e5m2 and mxfp4-padding rules, rewrapped kernel modules)
# through verify on two models whose budget rules moved nearest today's changes (gpt-oss-20b: MXFP4 experts;
# Llama-3.2-1B), a pooling model's one-line refusal, then verify's and the kernels' GPU test files ($OUT/s57.txt).
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
LOG=$OUT/s57.txt
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$LOG"
for m in openai/gpt-oss-20b meta-llama/Llama-3.2-1B-Instruct; do
  out="$OUT/v_$(basename "$m").txt"
  timeout 75 python3 -m kvplan verify "$m" -c 8192 >"$out" 2>&1
  echo "$m rc=$?" | tee -a "$LOG"
  grep -E "^Verdict|^Capacity|^Budget|^Decode|^TTFT" "$out" | cut -c1-160 | tee -a "$LOG"
done
mkdir -p /tmp/pool && python3 - <<'PY'
import json, yaml
c = yaml.safe_load(open("model_specs/Qwen--Qwen3-8B.yaml"))["config"]
c["architectures"] = ["Qwen3ForSequenceClassification"]
json.dump(c, open("/tmp/pool/config.json", "w"))
PY
python3 -m kvplan verify /tmp/pool 2>&1 | tail -2 | tee -a "$LOG"
files=$(grep -l "kernel_torch\|cuda.is_available\|needs a CUDA" tests/test_verify_*.py)
timeout 260 python3 -m pytest -q -p no:cacheprovider -rfE -x $files 2>&1 | tail -6 | tee -a "$LOG"
timeout 120 python3 -m pytest -q -p no:cacheprovider -rfE tests/test_kernel_gpu.py tests/test_kernel_mla_gpu.py \
  2>&1 | tail -4 | tee -a "$LOG"
