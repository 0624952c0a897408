# Session 11 call 3: 16- and 32-byte output stores (heads-in-M store and the default one-slice store, which wrote
# 4-byte / 8-byte scattered stores: ncu call 2 counted 80% / 63% excessive sectors, lg_throttle 12% of the
# heads-in-M samples). The working tree's kernel GPU tests + racecheck of two cases, an A/B of the default launch
# against HEAD's paged_decode.cu (paged_decode_old.cu, new / old / new), then the heads-in-M variants.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
S="MQA 64q/1kv B8 32K,64q/4kv B16 16K,B64 8K,B16 32K,head_dim 64 B16 32K,fp8 B64 8K,B8 8K,B1 32K" CASES="8 25" \
  OLD=paged_decode_old.cu bash benchmarks/kernel_ab_device.sh
cat $OUT/log.txt
KVPLAN_CACHE_DIR=/tmp/kc_new timeout 120 python3 benchmarks/kernel_vs_flashinfer.py --no-flashinfer --sweep --sweep-only "MQA 64q/1kv B8 32K,64q/4kv B16 16K" --variants "heads_in_m=True;heads_in_m=True lazy_rescale=False;heads_in_m=True page_runs=True;heads_in_m=True kv_per_cta=4 page_runs=True;heads_in_m=True lazy_rescale=False stages=3" > $OUT/hm_sweep.txt 2>&1
grep "^| [M6]" $OUT/hm_sweep.txt | sed -E 's/\(bulk=None.*lazy_rescale=([A-Za-z]+), heads_in_m=([A-Za-z]+), page_runs=([A-Za-z]+).*\)/lazy=\1 hm=\2 runs=\3/'
