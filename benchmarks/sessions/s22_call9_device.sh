# Session 22, call 9 (issue 13): verify on all ten models with the row-owned GEMV at two CTAs per SM, rings of 6 (call 8 ran
# it on three), the summary tables from verify_summary_md.py.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
OUT=$OUT/v timeout 340 python3 benchmarks/verify_device_run.py models --budget=330 > /dev/null 2>&1
cp $OUT/v/results.jsonl $OUT/results.jsonl; python3 benchmarks/verify_summary_md.py $OUT/results.jsonl | tee $OUT/log.txt
