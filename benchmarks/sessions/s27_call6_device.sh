# session 27 call 6: are racecheck's e4m3 MLA reports confined to CTAs of one 64-token step? The same kernel on
# single sequences: 1 step (40, 64 tokens), 2 steps (100), 11 steps (700), one split each; reports grouped by site
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
export KVPLAN_NVRTC_LINEINFO=1
cat > /tmp/one.py <<'PY'
import sys, torch
sys.path.insert(0, "benchmarks")
from kernel_memcheck import mla_case
from kvplan.kernels import paged_mla_decode_plan
lens = [int(x) for x in sys.argv[1].split(",")]
qn, qr, lat, bt, sl = mla_case(16, 64, lens, torch.float8_e4m3fn)
plan = paged_mla_decode_plan(16, 512, 64, 64, torch.float8_e4m3fn, len(lens), bt.shape[1], "cuda", num_splits=1)
plan.run(qn, qr, lat, bt, sl, scale=0.1); torch.cuda.synchronize(); print("ran", lens)
PY
for lens in 40 64 100 700 "700,40"; do
  timeout 60 compute-sanitizer --report-api-errors no --tool racecheck --racecheck-report hazard --print-limit 100000 \
    python3 /tmp/one.py $lens > /tmp/rc.txt 2>&1
  echo "=== lens $lens: $(grep -E 'RACECHECK SUMMARY|^ran' /tmp/rc.txt | tr '\n' ' ')"
  awk '/Potential/ {h=$4; a=$9; b=$12} /Write Thread|Read Thread/ {split($NF, s, ":"); site[$2]=s[2]}
       /Current Value/ {print h, "write:" site["Write"], "read:" site["Read"], b, a}' /tmp/rc.txt | sort |
    awk '{k=$1" "$2" "$3" "$4} k!=p {if (p!="") print n, p, lo, hi; p=k; n=0; lo=$5} {n++; hi=$5} END {print n, p, lo, hi}'
done
