# Session 20 (issue 13): call 4 found the GEMV's default (two CTAs per SM for tall weights, one otherwise) far
# slower in a whole-model chain than either launch alone (Llama-8B b1 67.7% of read against 84.8 / 83.7), below even
# the chain without PDL. Suspect: the L1 / shared-memory carveout the driver picks per kernel differs between the two
# cubins, and an SM runs kernels of different carveouts only one after the other. Timed: the chain's forms with the
# driver's carveout and with every kvplan kernel at the maximum (KVPLAN_SMEM_CARVEOUT=100), then verify's decode step
# of Llama-3.1-8B and Llama-3.2-1B (norm, attention and matmul kernels of different shared memory between the GEMVs)
# both ways.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
export ROOT=$OUT
for i in 1 2; do
  for cv in driver 100; do
    [ $cv = driver ] && unset KVPLAN_SMEM_CARVEOUT || export KVPLAN_SMEM_CARVEOUT=$cv
    echo "== carveout $cv run $i" | tee -a $ROOT/log.txt
    timeout 100 python3 benchmarks/skinny_gemm.py --gemv --forms "gemv,c1 d8,c2 d6" 2>&1 | grep " b[18]:" \
      | cut -c1-120 | tee -a $ROOT/log.txt
  done
done
for cv in driver 100; do
  [ $cv = driver ] && unset KVPLAN_SMEM_CARVEOUT || export KVPLAN_SMEM_CARVEOUT=$cv
  mkdir -p $ROOT/v_$cv
  OUT=$ROOT/v_$cv timeout 100 python3 benchmarks/verify_device_run.py models --only=llama8b-8k,llama1b \
    --budget=95 > /dev/null 2>&1
done
unset KVPLAN_SMEM_CARVEOUT
python3 - <<'PY' | tee -a $ROOT/log.txt
import glob, json, os
for d in sorted(glob.glob(os.path.join(os.environ["ROOT"], "v_*"))):
    for line in open(os.path.join(d, "results.jsonl")):
        r = json.loads(line)
        res = r.get("result") or {}
        pts = (res.get("decode") or {}).get("points") or []
        print(os.path.basename(d), r["name"], [(p.get("batch"), round(p["measured_ms"], 3)) for p in pts])
PY
