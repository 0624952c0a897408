# Session 10 call 7: which of this session's two loop edits to the shared bulk ring (the empty barrier's parity without a
# division; 32 / R hoisted) cost head_dim 64 B16 32K 6% (call 6: 254 -> 269 us). Variants copied to _ab_{old,b,c,bc}/
# (not committed): old = ae45d7b, b = the division back, c = 32 / R inline again, bc = both; main = this tree.
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
S="head_dim 64 B16 32K,fp8 B64 8K,B64 8K,B1 128K"
for round in 1 2; do
  for v in old b c bc main; do
    d=_ab_$v; [ $v = main ] && d=.
    KVPLAN_CACHE_DIR=/tmp/kc-$v timeout 100 python3 $d/benchmarks/kernel_vs_flashinfer.py --no-flashinfer --sweep --sweep-only "$S" --variants "" > $OUT/$v$round.txt 2>&1
    grep "^{" $OUT/$v$round.txt | python3 -c "
import json,sys
seen=set()
for l in sys.stdin:
    d=json.loads(l)
    if d['shape'] in seen: continue
    seen.add(d['shape']); print('$v$round', d['shape'].ljust(22), round(d.get('us',0),1))
"
  done
done
