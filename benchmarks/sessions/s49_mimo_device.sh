#!/usr/bin/env bash
# Session 49 (branch s49-mimo; prepared without a GPU, run by a later session with one): verify runs MiMo-V2
# (XiaomiMiMo/MiMo-V2-Flash: full and sliding layers with their own KV heads, keys 192 wide and values 128, a sink
# a query head on the sliding layers, block-scaled fp8 with o_proj 16-bit). Its decode attention is a torch stand-in
# (labelled NOT a CUDA kernel: the decode verdict is "not judged"); the capacity and budget verdicts are measured.
# In order of what matters most if time runs out: the tiny MiMo-V2 (bf16, block fp8) on the GPU against the float64
# reference (eager and CUDA graph) and this branch's GPU tests of the sink prefill and the stand-in decode; the real
# model at tp 4 (one rank of four simulated on one H200: 72.75 GiB of weights, weight_bytes); a 6-layer MiMo-V2
# end to end. Timeouts sum to 570 s.
# Device: bash benchmarks/sessions/s49_mimo_device.sh   (writes $OUT/s49_mimo_h200.txt and $OUT/s49_mimo_flash_tp4.json)
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 COLUMNS=100
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
LOG=$OUT/s49_mimo_h200.txt
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$LOG"
echo "== the tiny MiMo-V2 on the GPU; the sink prefill and stand-in decode at Flash's widths" | tee -a "$LOG"
timeout 120 python3 -m pytest -q -p no:cacheprovider -rf tests/test_verify_gpu.py tests/test_verify_mimo_v2.py \
  -k mimo_v2 --deselect tests/test_verify_mimo_v2.py::test_small_mimo_end_to_end 2>&1 | tail -12 | tee -a "$LOG"
echo "== kvplan verify XiaomiMiMo/MiMo-V2-Flash --tp 4" | tee -a "$LOG"
timeout 330 python3 -m kvplan verify XiaomiMiMo/MiMo-V2-Flash --tp 4 --format json \
  > "$OUT/s49_mimo_flash_tp4.json" 2> "$OUT/s49_mimo_flash_tp4_progress.txt"
echo "rc $?" | tee -a "$LOG"
tail -4 "$OUT/s49_mimo_flash_tp4_progress.txt" | tee -a "$LOG"
python3 - "$OUT/s49_mimo_flash_tp4.json" <<'PY' 2>&1 | tee -a "$LOG"
import json, sys
r = json.load(open(sys.argv[1]))
print("weights a rank", r["rank"]["arch_weights_bytes"], "planned", r["rank"]["weights_bytes_per_gpu"])
print("terms", json.dumps(r["terms"])[:1500])
print("allocation", json.dumps(r["allocation"])[:600])
print("labels", json.dumps(r["forward"]["labels"])[:1500])
print("decode", json.dumps(r["decode"]["points"])[:800], "prefill", json.dumps(r["prefill"])[:300])
print("verdict", json.dumps(r["verdict"])[:2000])
PY
echo "== a 6-layer MiMo-V2 end to end" | tee -a "$LOG"
timeout 120 python3 -m pytest -q -p no:cacheprovider -rf \
  tests/test_verify_mimo_v2.py::test_small_mimo_end_to_end 2>&1 | tail -12 | tee -a "$LOG"
