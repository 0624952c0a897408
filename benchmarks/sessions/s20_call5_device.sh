# Session 20 (issue 14): the split count of the single-sequence and small-batch shapes. choose_splits takes the
# fewest splits within 5% of the best wave-quantised cost: B1 128K / 32K run 16 splits x 8 KV heads = 128 CTAs on
# 132 SMs (four idle). Timed here: more splits (two or more CTAs' chunks per SM) on the B1 shapes, and around the
# chosen count on B8 8K, B32 4K and MQA B8 32K. No table, no FlashInfer; same tensors per shape.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
timeout 200 python3 benchmarks/kernel_vs_flashinfer.py --no-flashinfer --sweep --sweep-only "B1 128K,B1 32K,B1 4K" \
  --variants "num_splits=16;num_splits=24;num_splits=33;num_splits=48;num_splits=66;num_splits=132" \
  --json $OUT/b1.json 2>&1 | grep "^|" | tee $OUT/log.txt
timeout 200 python3 benchmarks/kernel_vs_flashinfer.py --no-flashinfer --sweep \
  --sweep-only "B8 8K,B32 4K,MQA 64q/1kv B8 32K,64q/4kv B16 16K" \
  --variants "num_splits=1;num_splits=2;num_splits=4;num_splits=8;num_splits=16;num_splits=32" \
  --json $OUT/bn.json 2>&1 | grep "^| [^s-]" | tee -a $OUT/log.txt
