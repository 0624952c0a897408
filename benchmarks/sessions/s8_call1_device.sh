# Session 8 call 1: where the decode step goes, kernel by kernel, for the models whose batch-1 step is furthest
# from the estimate (Qwen3-Next tp 2, DeepSeek-V2-Lite) and two dense ones (Llama-1B, Llama-8B).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
for m in "Qwen/Qwen3-Next-80B-A3B-Thinking --tp 2" deepseek-ai/DeepSeek-V2-Lite meta-llama/Llama-3.2-1B-Instruct meta-llama/Llama-3.1-8B-Instruct; do
  echo "=== $m" >> $OUT/forward_profile.txt
  timeout 110 python3 benchmarks/forward_profile.py $m --batch 1 --context 4096 --top 30 >> $OUT/forward_profile.txt 2>&1
done
tail -c 3000 $OUT/forward_profile.txt
