# Session 20 (issue 13): does the GEMV's per-shape launch (two CTAs per SM for tall weights) help or hurt verify's
# real decode step, where norm, attention and activation kernels sit between the matmuls? Calls 4 and 6 measured a
# chain of GEMVs alone mixing the two launches as far slower than either. "c1" = gemv_stream_config.TALL patched so
# no shape is tall (one CTA per SM, ring of 8 everywhere, as before session 20); "auto" = main. Verify of three
# dense models, alternating twice; decode step at batch 1 and max concurrency, and verify's stream figure.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
export ROOT=$OUT
F=kvplan/kernels/gemv_stream_config.py
mkdir -p /tmp/auto /tmp/c1 && cp $F /tmp/auto/ && sed 's/^TALL = 4$/TALL = 1 << 30/' $F > /tmp/c1/gemv_stream_config.py
grep -q "TALL = 1 << 30" /tmp/c1/gemv_stream_config.py || exit 1
for i in 1 2; do
  for form in c1 auto; do
    cp /tmp/$form/gemv_stream_config.py $F
    mkdir -p $ROOT/v_${form}_$i
    OUT=$ROOT/v_${form}_$i timeout 90 python3 benchmarks/verify_device_run.py models \
      --only=llama8b-8k,llama1b,qwen3-14b --budget=85 > /dev/null 2>&1
  done
done
cp /tmp/auto/gemv_stream_config.py $F
python3 - <<'PY' | tee -a $ROOT/log.txt
import glob, json, os
for d in sorted(glob.glob(os.path.join(os.environ["ROOT"], "v_*"))):
    for line in open(os.path.join(d, "results.jsonl")):
        r = json.loads(line)
        res = r.get("result") or {}
        pts = (res.get("decode") or {}).get("points") or []
        print(os.path.basename(d), r["name"], [(p.get("batch"), round(p["measured_ms"], 3)) for p in pts])
PY
