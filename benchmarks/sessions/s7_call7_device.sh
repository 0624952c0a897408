# Session 7 call 7: the by-expert MoE kernels (64 pairs a pass): GPU tests, gpt-oss experts above 16 tokens
# against 16 / 32 pairs a pass and the pair-slot chunks, verify on gpt-oss-20b.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_skinny_gpu.py > $OUT/pytest.txt 2>&1
tail -2 $OUT/pytest.txt
timeout 120 python3 benchmarks/skinny_gemm.py --moe-large > $OUT/moe_large.txt 2>&1
cat $OUT/moe_large.txt
python3 benchmarks/verify_device_run.py models --only=gpt-oss-20b --budget=90 > /dev/null 2>&1
cat $OUT/summary.txt
