# Session 8 call 7: stacked projections (q + kv_a, qkvz + ba, router + shared gate as one matmul): the forward's
# GPU tests (tiny models, weights stacked as verify allocates them), verify on the two models it changes, and
# their decode step kernel by kernel.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
timeout 90 python3 -m pytest -q -x -p no:cacheprovider tests/test_verify_gpu.py tests/test_router.py > $OUT/pytest.txt 2>&1
tail -3 $OUT/pytest.txt
python3 benchmarks/verify_device_run.py models --only=dsv2-lite,qwen3next-tp2 --budget=100 > /dev/null 2>&1
cat $OUT/summary.txt
for m in deepseek-ai/DeepSeek-V2-Lite "Qwen/Qwen3-Next-80B-A3B-Thinking --tp 2"; do
  timeout 45 python3 benchmarks/forward_profile.py $m --batch 1 --context 4096 --top 10 >> $OUT/forward_profile.txt 2>&1
done
grep "graph step" $OUT/forward_profile.txt
