# Session 13 call 7: the grouped MoE path's combine as index_copy + one batched matmul (was index_add_ over the sorted
# rows): verify's GPU tests and the mxfp4 tests, then verify of the four MoE models.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc
python3 -m kvplan.kernels.batch sm_90 > /dev/null 2>&1
timeout 90 python3 -m pytest -q -p no:cacheprovider tests/test_verify_gpu.py tests/test_mxfp4_gpu.py > $OUT/t.txt 2>&1; tail -2 $OUT/t.txt
timeout 130 python3 benchmarks/verify_device_run.py models --only=qwen3next-tp2,mixtral-tp2,dsv2-lite,gpt-oss-20b --budget=120 > /dev/null 2>&1; tail -5 $OUT/summary.txt
python3 benchmarks/verify_verdict_lines.py $OUT/results.jsonl 2>&1 | cut -c1-1500
