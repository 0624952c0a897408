# Prepared in session 19, not yet run (issue 13): the skinny GEMM / MoE kernels' weight loads (skinny_gemm.cu:
# ld.global.nc and the row-tile kernel's cp.async) marked L2 evict-first, as the GEMV's and the decode kernels'
# copies are since session 19. "ef" = the file `benchmarks/evict_first_patch.py skinny` writes. GPU tests of the skinny
# and mxfp4 kernels on it (stops on a failure), then verify of the four MoE models, main's file and ef alternating
# twice; the decode step (batch 1, max concurrency) and the stream per run at the end.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
F=kvplan/kernels/skinny_gemm.cu
export ROOT=$OUT
mkdir -p /tmp/base && cp $F /tmp/base/ && python3 benchmarks/evict_first_patch.py skinny /tmp/ef || exit 1
cp /tmp/ef/skinny_gemm.cu $F
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_skinny_gpu.py tests/test_mxfp4_gpu.py > $ROOT/t.txt 2>&1
tail -1 $ROOT/t.txt | tee $ROOT/log.txt
grep -qE "[0-9]+ (failed|errors?)" $ROOT/t.txt && { grep -m5 -B2 -A25 "^____" $ROOT/t.txt > $ROOT/fail.txt; cp /tmp/base/skinny_gemm.cu $F; exit 1; }
for i in 1 2; do
  for form in base ef; do
    cp /tmp/$form/skinny_gemm.cu $F
    mkdir -p $ROOT/v_${form}_$i
    OUT=$ROOT/v_${form}_$i timeout 100 python3 benchmarks/verify_device_run.py models \
      --only=mixtral-tp2,dsv2-lite,qwen3next-tp2,gpt-oss-20b --budget=95 > /dev/null 2>&1
  done
done
cp /tmp/base/skinny_gemm.cu $F
python3 - <<'PY' | tee -a $ROOT/log.txt
import glob, json, os
for d in sorted(glob.glob(os.path.join(os.environ["ROOT"], "v_*"))):
    for line in open(os.path.join(d, "results.jsonl")):
        r = json.loads(line)
        res = r.get("result") or {}
        pts = (res.get("decode") or {}).get("points") or []
        print(os.path.basename(d), r["name"], [round(p["measured_ms"], 3) for p in pts])
PY
