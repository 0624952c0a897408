# Session 10 call 3: an expert's row-tile passes dealt over CTAs (grid z; a joined shared expert sees every token),
# the lazy rescale on by default for 16-heads-per-warp configs. Skinny + verify GPU tests, verify on the three
# 16-bit MoE models, the MoE batch comparison for Qwen3-Next, then the decode kernel's GPU tests.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_skinny_gpu.py tests/test_verify_gpu.py -k "by_expert or forward" > $OUT/pytest_moe.txt 2>&1
tail -2 $OUT/pytest_moe.txt
python3 benchmarks/verify_device_run.py models --only=qwen3next-tp2,dsv2-lite,mixtral-tp2 --budget=200 > /dev/null 2>&1
cat $OUT/summary.txt
timeout 60 python3 benchmarks/skinny_gemm.py --moe-batch --only "Qwen3-Next-80B tp2" > $OUT/moe_batch.txt 2>&1
grep -v Warn $OUT/moe_batch.txt | cut -c1-250 | tail -8
timeout 230 python3 -m pytest -q -p no:cacheprovider tests/test_kernel_gpu.py tests/test_kernel_reference.py > $OUT/pytest_kernel.txt 2>&1
tail -4 $OUT/pytest_kernel.txt
