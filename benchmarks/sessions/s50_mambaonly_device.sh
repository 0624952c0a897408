#!/usr/bin/env bash
# Session 50, attention-free verify: the GPU tests of tests/test_verify_attention_free.py (tiny Falcon-Mamba, Mamba,
# Mamba-2 in bf16 through the bundled kernels vs the float64 reference; Falcon-Mamba-7B end to end at max_num_seqs 8)
# and test_verify_gpu.py's Mamba and Jamba forwards (Jamba's mixer code changed too), then `kvplan verify
# tiiuae/falcon-mamba-7b` (defaults: context 8192) beside `kvplan estimate` of the same model, GPU and context.
# Run: bash benchmarks/sessions/s50_mambaonly_device.sh (results in $OUT).
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
LOG=$OUT/s50_mambaonly.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
echo "== GPU tests" | tee -a "$LOG"
timeout 240 python3 -m pytest -q -p no:cacheprovider -rs tests/test_verify_attention_free.py tests/test_verify_gpu.py \
  -k "mamba or jamba" > "$OUT/tests.txt" 2>&1
tail -3 "$OUT/tests.txt" | tee -a "$LOG"
grep -qE "[0-9]+ (failed|errors?)" "$OUT/tests.txt" && grep -m4 -A40 "^____" "$OUT/tests.txt" > "$OUT/fail.txt"
echo "== verify tiiuae/falcon-mamba-7b" | tee -a "$LOG"
timeout 330 python3 -m kvplan verify tiiuae/falcon-mamba-7b --format json > "$OUT/verify.json" 2> "$OUT/verify.err"
echo "rc $?" | tee -a "$LOG"
tail -3 "$OUT/verify.err" | tee -a "$LOG"
python3 -m kvplan estimate tiiuae/falcon-mamba-7b --gpu h200 --max-model-len 8192 --format json > "$OUT/estimate.json"
[ -s "$OUT/verify.json" ] && python3 - "$OUT/verify.json" "$OUT/estimate.json" <<'PY' 2>&1 | tee -a "$LOG"
import json, sys
r, e = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))["plans"][0]
print("estimate: weights", e["budget"]["weights_bytes_per_gpu"], "blocks", e["engine"]["num_gpu_blocks"],
      "resident", e["engine"]["resident_sequences"], "max_concurrency", e["max_concurrency"],
      "decode", [(p["batch"], round(p["itl_ms"], 3)) for p in e["decode"]["points"]])
print("labels", r["forward"]["labels"])
for t in r["terms"]:
    print(" ", t["term"], t["predicted_bytes"], t["measured_bytes"], t["error"])
print("layout", [(g["name"], g["layers"], g["num_blocks"], g["tensor_shapes"], g["bytes"]) for g in r["layout"]])
print("allocation", {k: r["allocation"][k] for k in ("layout_bytes", "torch_error", "nvml_error")})
print("measured_plan", r["measured_plan"])
for p in r["decode"]["points"]:
    print("decode", p["batch"], round(p["measured_ms"], 3), "estimate", round(p["estimate_ms"], 3))
print("prefill", r["prefill"])
print("verdict", json.dumps(r["verdict"], indent=1))
PY
