# Session 10 call 8: the final decode kernel (the rescale interleaved again where not lazy, 32 / R not hoisted: call 7's
# variant c, byte-identical cubin at head_dim 64) through its GPU tests, and the defaults on three shapes.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_kernel_gpu.py tests/test_kernel_reference.py > $OUT/pytest.txt 2>&1
tail -2 $OUT/pytest.txt
timeout 60 python3 benchmarks/kernel_vs_flashinfer.py --no-flashinfer --sweep --sweep-only "head_dim 64 B16 32K,MQA 64q/1kv B8 32K,64q/4kv B16 16K,B64 8K" --variants "" > $OUT/sweep.txt 2>&1
grep "^|" $OUT/sweep.txt | cut -c1-40,200-400 | tail -6
