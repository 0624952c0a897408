# GEMV and verify GPU tests (stop on a failure), then verify on Llama-3.1-8B, Qwen3-14B, Llama-3.2-1B: weight stream %
# of read per batch, which form each (shape, batch) took, decode step at batch 1 and max. Called by the sNN_callM
# device scripts that time a change of verify's matmul forms (s21 call 8, s22 calls 5 and 8).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_gemv_stream_gpu.py tests/test_verify_gpu.py > $OUT/t.txt 2>&1
tail -1 $OUT/t.txt | tee $OUT/log.txt
grep -qE "[0-9]+ (failed|errors?)" $OUT/t.txt && { grep -m5 -B2 -A30 "^____" $OUT/t.txt > $OUT/fail.txt; exit 1; }
OUT=$OUT/v timeout 200 python3 benchmarks/verify_device_run.py models --only=llama8b-8k,qwen3-14b,llama1b --budget=190 > /dev/null 2>&1
python3 - $OUT/v/results.jsonl <<'PY' | tee -a $OUT/log.txt
import collections, json, sys
for line in open(sys.argv[1]):
    run = json.loads(line); res = run.get("result") or {}; gemm = res.get("gemm") or {}
    stream = " / ".join(f"{100 * v['fraction_of_read']:.1f}" for v in (gemm.get("stream") or {}).values())
    steps = "; ".join(f"b{p['batch']} {p['measured_ms']:.3f} ms" for p in (res.get("decode") or {}).get("points") or [])
    chosen = collections.Counter(r["chosen"] for r in gemm.get("shapes") or [])
    print(f"{run['name']} rc {run['rc']} {run['wall_s']:.0f} s; stream b1/2/4/8 {stream}; decode {steps}; {dict(chosen)}")
    for r in gemm.get("shapes") or []:
        print("   ", r["shape"], r["batch"], r["chosen"][:40], {k[:-5][-12:]: round(v, 2) for k, v in r.items() if k.endswith("TB/s")})
PY
