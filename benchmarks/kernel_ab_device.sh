# A/B of two builds of the decode kernel in one device call (machine-to-machine spread is ~2%, more than most
# effects): OLD = a copy of paged_decode.cu to compare against, put in the tree (untracked, not ignored, so it
# travels) before the call, e.g.  git show HEAD:kvplan/kernels/paged_decode.cu > paged_decode_old.cu
# Runs the working tree's kernel tests + racecheck of a few cases (skip with SKIP_CHECKS=1), then the sweep's
# default launch on S shapes in the order new, old, new, and prints them side by side.
#     Device: OLD=paged_decode_old.cu bash benchmarks/kernel_ab_device.sh
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 KVPLAN_REQUIRE_NVRTC=1
S=${S:-"B64 8K,B16 32K,B32 4K,head_dim 64 B16 32K,fp8 B64 8K,B8 8K,B1 32K,8kv B128 2K"}
SRC=kvplan/kernels/paged_decode.cu
cp $SRC /tmp/paged_decode_new.cu
sw() { cp $3 $SRC; KVPLAN_CACHE_DIR=/tmp/kc_$1 python3 -m kvplan.kernels.batch sm_90 > /dev/null 2>&1
  KVPLAN_CACHE_DIR=/tmp/kc_$1 timeout 90 python3 benchmarks/kernel_vs_flashinfer.py --no-flashinfer --sweep \
    --sweep-only "$S" --variants "stages=None" --json $OUT/sweep_$1_$2.json > /dev/null 2>&1; }
KVPLAN_CACHE_DIR=/tmp/kc_new python3 -m kvplan.kernels.batch sm_90 > /dev/null 2>&1
[ -n "$SKIP_CHECKS" ] || KVPLAN_CACHE_DIR=/tmp/kc_new timeout 150 python3 -m pytest -q -x tests/test_kernel_gpu.py 2>&1 | tail -2 > $OUT/log.txt
san="compute-sanitizer --report-api-errors no --error-exitcode 1 --tool racecheck"
[ -n "$SKIP_CHECKS" ] || for c in ${CASES:-8 11 19 2}; do KVPLAN_CACHE_DIR=/tmp/kc_new timeout 60 $san python3 benchmarks/kernel_memcheck.py $c > /tmp/r.txt 2>&1; echo "race $c rc=$? $(grep SUMMARY /tmp/r.txt)" >> $OUT/log.txt; done
sw new 1 /tmp/paged_decode_new.cu
sw old 1 "$OLD"
sw new 2 /tmp/paged_decode_new.cu
python3 - <<'PY' >> $OUT/log.txt
import json, os
o = os.environ["OUT"]
runs = {k: json.load(open(f"{o}/sweep_{k}.json"))["sweep"] for k in ("new_1", "old_1", "new_2")}
for i, r in enumerate(runs["new_1"]):
    if "us" in r:
        print(f"{r['shape']:24s} " + " ".join(f"{k} {runs[k][i].get('us', 0):7.1f}" for k in runs))
PY
