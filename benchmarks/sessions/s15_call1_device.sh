# Session 15 call 1: where TTFT goes (eager prefill of one 8,192-token prompt, kernel by kernel) on five models;
# Qwen3-Next's DeltaNet prefill A/B (session 14's chunked loop vs one batched matmul a chunk; chunk 64 / 128);
# then the verify GPU tests.
# (The "old" run needs benchmarks/old_deltanet_s14.py: `git show 81d2722:kvplan/gpu/deltanet.py` with its relative
# import made absolute, `from kvplan.gpu.ops import ...`; not committed.)
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc
python3 -m kvplan.kernels.batch sm_90 > /dev/null 2>&1
Q=Qwen/Qwen3-Next-80B-A3B-Thinking
p() { timeout 90 python3 benchmarks/prefill_profile.py "$@" 2>&1 | grep -v Warn | cut -c1-170 | tee -a $OUT/prefill.txt; }
p $Q --tp 2 --old-deltanet old_deltanet_s14 --top 12
p $Q --tp 2 --top 12
p $Q --tp 2 --chunk 128 --top 6
p openai/gpt-oss-20b --top 12
p deepseek-ai/DeepSeek-V2-Lite --top 12
p meta-llama/Llama-3.2-1B-Instruct --top 8
p google/gemma-3-27b-it --top 8
timeout 150 python3 -m pytest -q -x -p no:cacheprovider tests/test_verify_gpu.py > $OUT/t.txt 2>&1; tail -2 $OUT/t.txt
