# (1) the MLA kernel's one-wave shapes on 132 SMs against 128 (benchmarks/probes/mla_sm_count.py); (2) single sequences and
# B8 through the shared ring of 8 KV heads (what the large batches run at 94% of read) instead of 8 token slices of
# one head: B1 128K at 88.6%, where SDPA reads 93.6%
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 200 python3 benchmarks/probes/mla_sm_count.py 2>&1 | grep -v Warning
V="num_splits=None;kv_per_cta=8 stages=2 num_splits=64;kv_per_cta=8 stages=2 num_splits=128"
V="$V;kv_per_cta=8 stages=2 num_splits=132;kv_per_cta=8 stages=3 num_splits=128;num_splits=None"
timeout 300 python3 benchmarks/kernel_vs_flashinfer.py --no-flashinfer --sweep --json $OUT/s29_call3_sweep.json \
  --sweep-only "B1 128K,B1 32K,B8 8K" --variants "$V" 2>&1 | grep -E "^\| [Bfh8]|^#|rror" \
  | sed -E "s/\(bulk=.*launcher='driver'\)/(opts)/"
