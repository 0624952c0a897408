# Session 11 call 7: fp8 caches at large batch (90.0 / 91.2% of read in call 6): ring depth and KV heads per CTA of
# the shared bulk ring, the lazy rescale, the L2 prefetch hint.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
timeout 200 python3 benchmarks/kernel_vs_flashinfer.py --no-flashinfer --sweep --sweep-only "fp8 B64 8K,fp8 B16 32K" --variants "kv_per_cta=8 stages=3;kv_per_cta=8 stages=4;kv_per_cta=4;kv_per_cta=4 stages=3;lazy_rescale=True;l2_prefetch=0;kv_per_cta=8 stages=2 num_splits=8" > $OUT/sweep.txt 2>&1
grep "^| fp8" $OUT/sweep.txt | sed -E 's/\(bulk=([A-Za-z]+).*num_splits=([A-Za-z0-9]+).*stages=([A-Za-z0-9]+), kv_per_cta=([A-Za-z0-9]+).*min_split_tokens=256, l2_prefetch=([0-9]).*lazy_rescale=([A-Za-z]+).*\)/ns=\2 st=\3 kh=\4 pf=\5 lazy=\6/' | cut -c1-150
