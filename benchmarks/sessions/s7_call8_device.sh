# Session 7 call 8: the MoE router kernel: its GPU tests and verify's tiny-model forward tests (MoE models route
# through it), gpt-oss-20b's step kernel by kernel, verify on the four MoE models.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_router.py tests/test_verify_gpu.py > $OUT/pytest.txt 2>&1
tail -2 $OUT/pytest.txt
timeout 80 python3 benchmarks/forward_profile.py openai/gpt-oss-20b --batch 1 --context 4096 --top 16 > $OUT/forward_profile.txt 2>&1
python3 benchmarks/verify_device_run.py models --only=gpt-oss-20b,dsv2-lite,mixtral-tp2,qwen3next-tp2 --budget=150 > /dev/null 2>&1
cat $OUT/summary.txt
