# Session 10 call 6: A/B of the decode kernel before this session (ae45d7b, copied to _ab_old/, not committed) and now,
# on the shapes of the standing table that did not run changed code paths, and the lazy rescale on them.
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
S="B64 8K,B16 32K,B32 4K,head_dim 64 B16 32K,64q/4kv B16 16K,fp8 B64 8K,fp8 B16 32K,B1 128K"
for round in 1 2; do
  KVPLAN_CACHE_DIR=/tmp/kc-old timeout 120 python3 _ab_old/benchmarks/kernel_vs_flashinfer.py --no-flashinfer --sweep --sweep-only "$S" --variants "" > $OUT/old$round.txt 2>&1
  KVPLAN_CACHE_DIR=/tmp/kc-new timeout 150 python3 benchmarks/kernel_vs_flashinfer.py --no-flashinfer --sweep --sweep-only "$S" --variants "lazy_rescale=True" > $OUT/new$round.txt 2>&1
done
for f in old1 new1 old2 new2; do echo "== $f"; grep "^{" $OUT/$f.txt | python3 -c "
import json,sys
for l in sys.stdin:
    d=json.loads(l); print(f\"{d['shape']:24s} {'lazy' if 'lazy_rescale=True' in d.get('variant','') else 'default':8s} {d.get('us',0):8.1f} {d.get('pct_read',0):5.1f}%\")
"; done
