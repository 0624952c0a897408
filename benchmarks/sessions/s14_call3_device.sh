# Session 14 call 3: where Qwen3-Next's step at max concurrency goes now (row-tile MoE kernel with joined experts),
# kernel by kernel, and the same for DeepSeek-V2-Lite at its max concurrency (grouped GEMMs).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc
python3 -m kvplan.kernels.batch sm_90 > /dev/null 2>&1
timeout 200 python3 benchmarks/forward_profile.py Qwen/Qwen3-Next-80B-A3B-Thinking --tp 2 --batch 437 --context 8192 --top 16 > $OUT/prof_qwen.txt 2>&1; grep -v Warn $OUT/prof_qwen.txt | tail -24 | cut -c1-200
