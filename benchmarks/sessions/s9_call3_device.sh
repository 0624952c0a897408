# Session 9 call 3: Qwen3-Next verify after allocate_weights hands the replaced tensors back (empty_cache); the large
# batch steps of the two MoE models that still miss, kernel by kernel.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
python3 benchmarks/verify_device_run.py models --only=qwen3next-tp2 --budget=120 > /dev/null 2>&1
cat $OUT/summary.txt
timeout 100 python3 benchmarks/forward_profile.py Qwen/Qwen3-Next-80B-A3B-Thinking --tp 2 --batch 440 --context 4096 \
  --top 20 >> $OUT/forward_profile.txt 2>&1
timeout 100 python3 benchmarks/forward_profile.py openai/gpt-oss-20b --batch 599 --context 4096 --top 20 \
  >> $OUT/forward_profile.txt 2>&1
grep -v Warn $OUT/forward_profile.txt | grep -v _warn_once
