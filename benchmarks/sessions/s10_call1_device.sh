# Session 10 call 1: (a) head tiles sharing one bulk ring (MQA-like groups) and the lazy rescale: GPU tests, then a
# sweep on the MQA 64q/1kv B8 32K and 64q/4kv B16 16K shapes; (b) the row-tile MoE kernel's first GPU run (tests,
# then --moe-batch).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 200 python3 -m pytest -q -x -p no:cacheprovider tests/test_kernel_gpu.py -k "head_tiles or build_variants or mqa or bulk_variant" > $OUT/pytest_kernel.txt 2>&1
tail -3 $OUT/pytest_kernel.txt
V="bulk=False;stages=2;stages=3;stages=6;heads_per_warp=8;heads_per_warp=8 stages=2;heads_per_warp=8 stages=6;lazy_rescale=True;lazy_rescale=True stages=6;lazy_rescale=True heads_per_warp=8;num_splits=16;num_splits=64"
timeout 200 python3 benchmarks/kernel_vs_flashinfer.py --no-flashinfer --sweep --sweep-only "MQA 64q/1kv B8 32K,64q/4kv B16 16K" --variants "$V" > $OUT/sweep.txt 2>&1
grep -v "^{" $OUT/sweep.txt | tail -32
timeout 150 python3 -m pytest -q -x -p no:cacheprovider tests/test_skinny_gpu.py -k "by_expert" > $OUT/pytest_skinny.txt 2>&1
tail -3 $OUT/pytest_skinny.txt
timeout 150 python3 benchmarks/skinny_gemm.py --moe-batch > $OUT/moe_batch.txt 2>&1
grep -v Warn $OUT/moe_batch.txt | cut -c1-300 | tail -30
