#!/usr/bin/env bash
# Session 51, call 1: (1) which torch call of the tiny DSA models' float32 GPU forward rounds coarser than float32
# (benchmarks/probes/s51_dsa_float32_ops.py); (2) where GLM-4.5-Air's and GLM-4.6's shapes spend their batch-1 decode step
# (session 50: 59-71 us a layer above the roofline against the 37.6 fitted), kernel by kernel, with Llama-3.1-8B as the
# dense control (benchmarks/forward_profile.py). Timeouts sum to 570 s.
# Device: bash benchmarks/sessions/s51_call1_device.sh   (writes $OUT/s51_call1_h200.txt and $OUT/s51_profile_*.json)
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
LOG=$OUT/s51_call1_h200.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
python3 -c "import torch; print('torch', torch.__version__, torch.version.cuda)" | tee -a "$LOG"
echo "== DSA float32 op by op" | tee -a "$LOG"
timeout 150 python3 benchmarks/probes/s51_dsa_float32_ops.py 2>&1 | tail -60 | tee -a "$LOG"
prof() {  # name, model, tp, timeout
  echo "== forward_profile $2 tp $3 batch 1 context 8192" | tee -a "$LOG"
  timeout "$4" python3 benchmarks/forward_profile.py "$2" --tp "$3" --batch 1 --context 8192 --top 32 \
    --json "$OUT/s51_profile_$1.json" 2>&1 | tail -40 | tee -a "$LOG"
}
prof air_tp4 benchmarks/configs/zai-org--GLM-4.5-Air-shape.json 4 180
prof glm46_tp8 benchmarks/configs/zai-org--GLM-4.6-shape.json 8 180
prof llama8b meta-llama/Llama-3.1-8B-Instruct 1 60
