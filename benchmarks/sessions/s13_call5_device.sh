# Session 13 call 5 (final code): the mxfp4 GPU tests at the final threshold (320 tokens), then verify of all ten
# models (verify's defaults; the TMA MLA default and the gpt-oss grouped path are the session's changes).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc
python3 -m kvplan.kernels.batch sm_90 > /dev/null 2>&1
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_mxfp4_gpu.py tests/test_verify_gpu.py > $OUT/t.txt 2>&1; tail -3 $OUT/t.txt
timeout 420 python3 benchmarks/verify_device_run.py models --budget=400 > /dev/null 2>&1; tail -12 $OUT/summary.txt
tar czf $OUT/logs.tgz -C $OUT t.txt summary.txt results.jsonl 2>/dev/null
