# Session 7 call 2: GPU tests of the rope/cache-write and router changes, the MLA split sweep at small batch,
# the MoE pairs-kernel variant sweep, gpt-oss-20b's decode step kernel by kernel.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
python3 -m pytest -q -x -p no:cacheprovider tests/test_rope_cache.py tests/test_verify_gpu.py > $OUT/pytest.txt 2>&1
tail -3 $OUT/pytest.txt
timeout 150 python3 benchmarks/probes/mla_splits.py --json $OUT/mla_splits.json > $OUT/mla_splits.txt 2>&1
timeout 200 python3 benchmarks/skinny_gemm.py --moe-sweep > $OUT/moe_sweep.txt 2>&1
timeout 100 python3 benchmarks/forward_profile.py openai/gpt-oss-20b --batch 1 --context 4096 --top 14 > $OUT/forward_profile.txt 2>&1
