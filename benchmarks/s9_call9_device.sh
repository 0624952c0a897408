# Session 9 call 9: MoE by expert with a row tile per warp (16-bit experts, skinny_by_expert_rows) and the policy
# that sends few pairs per expert to it: its GPU tests, --moe-batch on Qwen3-Next's experts, verify on Qwen3-Next.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
timeout 70 python3 -m pytest -q -x -p no:cacheprovider tests/test_skinny_gpu.py -k "by_expert" > $OUT/pytest.txt 2>&1
tail -3 $OUT/pytest.txt
timeout 40 python3 benchmarks/skinny_gemm.py --moe-batch --only "Qwen3-Next-80B tp2" > $OUT/moe_batch.txt 2>&1
grep -v Warn $OUT/moe_batch.txt | cut -c1-260
python3 benchmarks/verify_device_run.py models --only=qwen3next-tp2 --budget=70 > /dev/null 2>&1
cat $OUT/summary.txt
