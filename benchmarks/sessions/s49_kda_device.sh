#!/usr/bin/env bash
# Session 49 (branch s49-kda; prepared without a GPU, run by a later session with one): verify runs Kimi Linear
# (moonshotai/Kimi-Linear-48B-A3B-Instruct: Kimi Delta Attention as a float32 torch stand-in labelled NOT a CUDA
# kernel, so decode is not judged; MLA without RoPE through the bundled MLA kernel over 1,920-token blocks read as
# 128-token pages; 256 experts + 1 shared). In order of what matters most if time runs out: the KDA GPU tests and the
# tiny Kimi Linear on the GPU against the float64 reference (eager and CUDA graph), then `kvplan verify` of the real
# model at tp 1 on one H200 (91.5 GiB of weights) at 8K and 32K. Timeouts sum to 560 s.
# Device: bash benchmarks/sessions/s49_kda_device.sh   (writes $OUT/s49_kda_h200.txt, $OUT/results.jsonl, $OUT/progress.txt)
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 COLUMNS=100
OUT=${OUT:-/tmp/kvplan-s49-kda}
mkdir -p "$OUT"
LOG=$OUT/s49_kda_h200.txt
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$LOG"
echo "== KDA tests (GPU ones included) and the tiny Kimi Linear on the GPU (eager, graph)" | tee -a "$LOG"
timeout 100 python3 -m pytest -q -p no:cacheprovider -rfs tests/test_verify_kda.py tests/test_verify_gpu.py \
  -k "kda or kimi" 2>&1 | tail -15 | tee -a "$LOG"
for ctx in 8192 32768; do
  echo "== kvplan verify moonshotai/Kimi-Linear-48B-A3B-Instruct --context $ctx (tp 1)" | tee -a "$LOG"
  python3 - "$ctx" "$OUT" <<'PY' 2>&1 | tee -a "$LOG"
import json, subprocess, sys, time
ctx, out = sys.argv[1], sys.argv[2]
args = ["moonshotai/Kimi-Linear-48B-A3B-Instruct", "--context", ctx]
t0 = time.monotonic()
try:
    p = subprocess.run([sys.executable, "-m", "kvplan", "verify", *args, "--format", "json"], capture_output=True,
                       text=True, timeout=240 if ctx == "8192" else 220)
    rc, stdout, stderr = p.returncode, p.stdout, p.stderr
except subprocess.TimeoutExpired as exc:
    rc, stdout = "timeout", ""
    stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
wall = time.monotonic() - t0
try:
    res = json.loads(stdout) if stdout.strip() else None
except json.JSONDecodeError:
    res = None
open(f"{out}/progress.txt", "a").write(f"==== kimi-linear-{ctx} (rc {rc}, {wall:.0f} s)\n{stderr}\n")
open(f"{out}/results.jsonl", "a").write(json.dumps({"name": f"kimi-linear-{ctx}", "args": args, "rc": rc,
                                                    "wall_s": wall, "result": res,
                                                    "stderr_tail": stderr[-3000:]}) + "\n")
print("rc", rc, f"wall {wall:.0f} s")
if res is None:
    print(stderr[-2500:])
    sys.exit()
print("verdict", json.dumps(res.get("verdict"))[:1500])
print("forward", json.dumps(res.get("forward"))[:1800])
print("allocation", json.dumps(res.get("allocation"))[:600])
print("layout", json.dumps(res.get("layout"))[:900])
for row in res.get("terms", []):
    print(" ", row.get("term"), row.get("predicted_bytes"), row.get("measured_bytes"))
print("decode", json.dumps((res.get("decode") or {}).get("points"))[:1200])
print("prefill", json.dumps(res.get("prefill"))[:400])
PY
done
python3 benchmarks/verify_summary_md.py "$OUT/results.jsonl" 2>&1 | head -30 | tee -a "$LOG"
