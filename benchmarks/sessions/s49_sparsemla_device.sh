#!/usr/bin/env bash
# Session 49 (branch s49-sparsemla; prepared without a GPU, for a later session with one): verify runs DeepSeek sparse
# attention (kvplan/gpu/sparse_mla.py: lightning indexer, top-k, sparse MLA, all torch labelled NOT a CUDA kernel, so
# the decode step is timed but not judged; capacity and budget are). In order of what matters most if time runs out:
# the GPU tests (tiny V3.2 / GLM shared-indexer forms in float32 with a graphed decode, the key cache round trip, the
# bf16 tiny forwards with a wide top-k), DeepSeek-V3.2 at tp 8 (one rank of eight simulated on one H200: 80.2 GiB of
# weights, 61 latent + 61 indexer-key pools), then GLM-5.2 at tp 16 (89.3 GiB a rank; tp 8 would hold 176 GiB) if
# time is left. ~9.5 minutes at most (timeouts sum to 550 s).
# Device: bash benchmarks/sessions/s49_sparsemla_device.sh   (writes $OUT/s49_sparsemla_h200.txt and the verify JSON files)
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 COLUMNS=100
LOG=$OUT/s49_sparsemla_h200.txt
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$LOG"
echo "== GPU tests: tests/test_verify_sparse_mla.py, the tiny DSA models in tests/test_verify_gpu.py" | tee -a "$LOG"
timeout 90 python3 -m pytest -q -p no:cacheprovider -rf tests/test_verify_sparse_mla.py 2>&1 | tail -8 \
  | tee -a "$LOG"
timeout 60 python3 -m pytest -q -p no:cacheprovider -rf tests/test_verify_gpu.py -k "deepseek_v32 or glm_dsa" 2>&1 \
  | tail -8 | tee -a "$LOG"
summary() {  # the parts of a verify JSON this change is about
  python3 - "$1" <<'PY' 2>&1 | tee -a "$LOG"
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except Exception as exc:
    sys.exit(f"no JSON result ({exc})")
a, b = r["allocation"], r["boundary"]
print("verdict", json.dumps(r["verdict"])[:900])
print("labels", json.dumps(r["forward"]["labels"])[:1500])
print("weights a rank", r["rank"]["arch_weights_bytes"], "estimate", r["rank"]["weights_bytes_per_gpu"])
print("pools", [(g["name"], g["layers"], g["tensor_shapes"][0], g["dtype"], g["bytes"]) for g in r["layout"]])
print("allocation layout", a["layout_bytes"], "torch", a["torch_bytes"], "errors", a["torch_error"], a["nvml_error"])
print("boundary", b["served"], "admitted, next refused", b["refused_next"], "confirmed", b["confirmed"])
for p in r["decode"]["points"]:
    print("decode batch", p["batch"], "measured ms", round(p["measured_ms"], 3), "estimate ms", p.get("estimate_ms"))
print("prefill", json.dumps(r["prefill"])[:400])
print("terms", [(t["term"], t.get("predicted_bytes"), t.get("measured_bytes")) for t in r["terms"]])
PY
}
echo "== kvplan verify deepseek-ai/DeepSeek-V3.2 --tp 8 --context 8192" | tee -a "$LOG"
timeout 270 python3 -m kvplan verify deepseek-ai/DeepSeek-V3.2 --tp 8 --context 8192 --format json \
  > "$OUT/s49_verify_dsv32_tp8.json" 2> "$OUT/s49_verify_dsv32_tp8.err"
echo "rc $?; $(tail -2 "$OUT/s49_verify_dsv32_tp8.err" | tr '\n' ' ')" | tee -a "$LOG"
summary "$OUT/s49_verify_dsv32_tp8.json"
echo "== kvplan verify zai-org/GLM-5.2 --tp 16 --context 8192 (21 indexers, 57 layers reusing their top-k)" \
  | tee -a "$LOG"
timeout 130 python3 -m kvplan verify zai-org/GLM-5.2 --tp 16 --context 8192 --format json \
  > "$OUT/s49_verify_glm52_tp16.json" 2> "$OUT/s49_verify_glm52_tp16.err"
echo "rc $?; $(tail -2 "$OUT/s49_verify_glm52_tp16.err" | tr '\n' ' ')" | tee -a "$LOG"
summary "$OUT/s49_verify_glm52_tp16.json"
