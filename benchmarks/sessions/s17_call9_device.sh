# Session 17 call 9: the streaming GEMV as a fourth matmul form of verify's start-up choice (kvplan/gpu/gemm.py):
# GPU tests of the GEMV (128-byte L2 promotion now the default) and of verify's forward, then verify of
# Llama-3.1-8B, Qwen3-14B and Llama-3.2-1B (which form each shape takes, the weight stream, the decode step).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
python3 -m kvplan.kernels.batch sm_90 > /dev/null 2>&1
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_gemv_stream_gpu.py tests/test_verify_gpu.py > $OUT/t.txt 2>&1; tail -3 $OUT/t.txt
timeout 260 python3 benchmarks/verify_device_run.py models --only=llama8b-8k,qwen3-14b,llama1b --budget=250 > /dev/null 2>&1; tail -5 $OUT/summary.txt
python3 benchmarks/probes/verify_forms_summary.py
