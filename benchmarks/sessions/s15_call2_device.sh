# Session 15 call 2 (commit 5918b71): the verify GPU tests, TTFT kernel by kernel after the prefill changes
# (DeltaNet one matmul a chunk with its inverse, windowed SDPA in query blocks, vectorised prefill slots), then
# verify of all ten models.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc
python3 -m kvplan.kernels.batch sm_90 > /dev/null 2>&1
timeout 100 python3 -m pytest -q -p no:cacheprovider tests/test_verify_gpu.py > $OUT/t.txt 2>&1; tail -2 $OUT/t.txt
p() { timeout 80 python3 benchmarks/prefill_profile.py "$@" 2>&1 | grep -v Warn | cut -c1-170 | tee -a $OUT/prefill.txt; }
p Qwen/Qwen3-Next-80B-A3B-Thinking --tp 2 --top 14
p openai/gpt-oss-20b --top 10
p google/gemma-3-27b-it --top 6
p deepseek-ai/DeepSeek-V2-Lite --top 3
p meta-llama/Llama-3.2-1B-Instruct --top 3
timeout 330 python3 benchmarks/verify_device_run.py models --budget=320 > /dev/null 2>&1; tail -12 $OUT/summary.txt
