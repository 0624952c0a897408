# session 32 call 6: (1) where Qwen3-Next's TTFT goes today (prefill_profile.py, 8,192 tokens, one rank of tp 2; last
# profiled in session 15); (2) split counts for the large-batch GQA rows with the sorted tables' neighbours
# (kernel_vs_flashinfer.py --sweep, shuffled pages)
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
{
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 150 python3 benchmarks/prefill_profile.py Qwen/Qwen3-Next-80B-A3B-Thinking --tp 2 --top 30 2>&1 \
  | grep -v "Warn\|_warn_once" | cut -c1-190
timeout 200 python3 benchmarks/kernel_vs_flashinfer.py --no-flashinfer --sweep --sweep-only "B32 4K,B64 8K,B16 32K" \
  --variants "num_splits=1;num_splits=2;num_splits=3;num_splits=5;num_splits=6" 2>&1 | tail -22
} | tee $OUT/s32_call6_h200_2026-12-03.txt
