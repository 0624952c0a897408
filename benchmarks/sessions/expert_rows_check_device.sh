# The first GPU run of the opt-in row-tile MoE kernel (skinny_by_expert_rows, MoEPairsPlan(expert_rows=True);
# written in session 9, compiled for sm_80/89/90, never run: the session's device time ran out). Its tests, then
# --moe-batch: grouped GEMMs vs the k-split and row-tile kernels by expert. If the row-tile kernel is right and beats
# the grouped GEMMs at Qwen3-Next's 440 tokens, make it the 16-bit default (skinny.py) and rerun
# `python3 benchmarks/verify_device_run.py models --only=qwen3next-tp2,dsv2-lite,mixtral-tp2`.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
timeout 120 python3 -m pytest -q -x -p no:cacheprovider tests/test_skinny_gpu.py -k "by_expert" > $OUT/pytest.txt 2>&1
tail -3 $OUT/pytest.txt
timeout 120 python3 benchmarks/skinny_gemm.py --moe-batch > $OUT/moe_batch.txt 2>&1
grep -v Warn $OUT/moe_batch.txt | cut -c1-300
