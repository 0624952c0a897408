# Session 9 final call: verify's GPU tests and verify on all ten models on the final code (PDL on every kernel, shared
# experts allocated joined to the routed ones, torch's cache handed back before the pools' free-memory check).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_verify_gpu.py tests/test_router.py > $OUT/pytest.txt 2>&1
tail -3 $OUT/pytest.txt
python3 benchmarks/verify_device_run.py models --budget=330 > /dev/null 2>&1
cat $OUT/summary.txt
