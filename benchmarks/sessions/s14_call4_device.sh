# Session 14 call 4: 16-bit sort keys for the pairs' order (2 radix passes instead of 8) and stacked weight pairs
# padded to a multiple of 8 rows (Qwen3-Next's router + shared-expert gate: 513 rows took cuBLAS's align-1 kernel):
# verify's and the MoE GPU tests, Qwen3-Next's step kernel by kernel, then verify of the four MoE models.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc
python3 -m kvplan.kernels.batch sm_90 > /dev/null 2>&1
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_verify_gpu.py tests/test_skinny_gpu.py tests/test_mxfp4_gpu.py > $OUT/t.txt 2>&1; tail -2 $OUT/t.txt
timeout 120 python3 benchmarks/forward_profile.py Qwen/Qwen3-Next-80B-A3B-Thinking --tp 2 --batch 437 --context 8192 --top 14 > $OUT/prof_qwen.txt 2>&1; grep -v Warn $OUT/prof_qwen.txt | tail -16 | cut -c1-160
timeout 200 python3 benchmarks/verify_device_run.py models --only=qwen3next-tp2,dsv2-lite,mixtral-tp2,gpt-oss-20b --budget=190 > /dev/null 2>&1; tail -5 $OUT/summary.txt
python3 benchmarks/verify_verdict_lines.py $OUT/results.jsonl 2>&1 | cut -c1-900
