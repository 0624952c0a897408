# Session 9 call 2: shared experts joined to the routed ones (weights.join_shared_experts; router kernel's shared
# columns) with PDL on every kernel. GPU tests, the decode step of the two models it moves, verify on all ten.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_router.py tests/test_skinny_gpu.py \
  tests/test_verify_gpu.py > $OUT/pytest.txt 2>&1
tail -4 $OUT/pytest.txt
for m in deepseek-ai/DeepSeek-V2-Lite "Qwen/Qwen3-Next-80B-A3B-Thinking --tp 2"; do
  timeout 60 python3 benchmarks/forward_profile.py $m --batch 1 --context 4096 --top 16 >> $OUT/forward_profile.txt 2>&1
done
grep "graph step" $OUT/forward_profile.txt
python3 benchmarks/verify_device_run.py models --budget=300 > /dev/null 2>&1
cat $OUT/summary.txt
