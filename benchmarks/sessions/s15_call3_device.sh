# Session 15 call 3: the paged read probe (what scattered blocks cost a pure read), the grouped MoE combine as a
# gather (prefill profiles of Qwen3-Next and DeepSeek-V2-Lite), verify of the four MoE models, and the GPU tests
# of what changed.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc
python3 -m kvplan.kernels.batch sm_90 > /dev/null 2>&1
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_verify_gpu.py tests/test_mxfp4_gpu.py "tests/test_kernel_gpu.py::test_paged_read_probe_reads_pages_in_either_order" > $OUT/t.txt 2>&1; tail -2 $OUT/t.txt
timeout 120 python3 benchmarks/page_scatter_probe.py 2>&1 | tee $OUT/scatter.txt
p() { timeout 80 python3 benchmarks/prefill_profile.py "$@" 2>&1 | grep -v "Warn\|_warn_once" | cut -c1-170 | tee -a $OUT/prefill.txt; }
p Qwen/Qwen3-Next-80B-A3B-Thinking --tp 2 --top 30
p deepseek-ai/DeepSeek-V2-Lite --top 5
timeout 150 python3 benchmarks/verify_device_run.py models --only=qwen3next-tp2,dsv2-lite,mixtral-tp2,gpt-oss-20b --budget=140 > /dev/null 2>&1; tail -5 $OUT/summary.txt
