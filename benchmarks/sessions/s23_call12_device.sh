# Session 23, last call: the MLA GPU tests with the plan's named path, and verify on DeepSeek-V2-Lite (its MLA
# layers through the bundled kernel; the report's attention label names the kernel).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_kernel_mla_gpu.py 2>&1 | tail -2 | tee $OUT/log.txt
OUT=$OUT/v timeout 150 python3 benchmarks/verify_device_run.py models --only=dsv2-lite > /dev/null 2>&1
echo "verify rc $?" | tee -a $OUT/log.txt
python3 benchmarks/verify_summary_md.py $OUT/v/results.jsonl 2>&1 | tail -8 | tee -a $OUT/log.txt
grep -o '"mla": "[^"]*"' $OUT/v/results.jsonl | head -2 | tee -a $OUT/log.txt
