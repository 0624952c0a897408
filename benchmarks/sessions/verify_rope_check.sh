# Device: the fused RoPE + cache-write kernel tests, verify tiny forwards, then 7 verify runs (RESULTS.md, session 4).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
python3 -m kvplan.kernels.batch sm_90 > /dev/null 2>&1
timeout 100 python3 -m pytest -q -p no:cacheprovider tests/test_rope_cache.py tests/test_verify_gpu.py -k "matches or forward" > $OUT/pytest.txt 2>&1; rc=$?
tail -4 $OUT/pytest.txt
if [ $rc -eq 0 ]; then python3 benchmarks/verify_device_run.py models --only=llama1b,llama8b-8k,llama8b-32k-fp8,mixtral-tp2,qwen3-14b,gemma3-27b,llama70b-tp2 --budget=200; else grep -B2 -A12 'Error\|assert' $OUT/pytest.txt | head -60; fi
