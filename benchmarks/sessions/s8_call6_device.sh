# Session 8 call 6 (final): GPU tests of this session's kernels on the final code (the row-group experiment of
# call 5 reverted), verify on all ten models, the decode step kernel by kernel on the three MoE models it moved.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_norm.py tests/test_rope_cache.py tests/test_router.py tests/test_verify_gpu.py > $OUT/pytest.txt 2>&1
tail -3 $OUT/pytest.txt
python3 benchmarks/verify_device_run.py models --budget=330 > /dev/null 2>&1
cat $OUT/summary.txt
for m in deepseek-ai/DeepSeek-V2-Lite "Qwen/Qwen3-Next-80B-A3B-Thinking --tp 2" openai/gpt-oss-20b; do
  timeout 60 python3 benchmarks/forward_profile.py $m --batch 1 --context 4096 --top 14 >> $OUT/forward_profile.txt 2>&1
done
grep "graph step" $OUT/forward_profile.txt
