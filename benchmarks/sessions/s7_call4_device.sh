# Session 7 call 4: GPU tests of the by-expert MoE launch and the two-pass split merge, the kernel table without
# FlashInfer (quick), gpt-oss experts above 16 tokens, verify on gpt-oss-20b and DeepSeek-V2-Lite.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
timeout 240 python3 -m pytest -q -x -p no:cacheprovider tests/test_skinny_gpu.py tests/test_kernel_gpu.py tests/test_kernel_mla_gpu.py tests/test_verify_gpu.py > $OUT/pytest.txt 2>&1
tail -2 $OUT/pytest.txt
timeout 60 python3 benchmarks/skinny_gemm.py --moe-large > $OUT/moe_large.txt 2>&1
python3 benchmarks/verify_device_run.py models --only=gpt-oss-20b,dsv2-lite --budget=120 > /dev/null 2>&1
timeout 120 python3 benchmarks/kernel_vs_flashinfer.py --no-flashinfer --quick --json $OUT/kernels.json > $OUT/kernels.txt 2>&1
