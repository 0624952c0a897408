# Session 10 call 5: memcheck and racecheck over the decode kernel's case list (head tiles now share a bulk ring on
# sm_90), then the final MoE policy (row tiles at <= 8 pairs per expert, joined experts <= 32 tokens): skinny and
# verify GPU tests, verify on the three 16-bit MoE models.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
timeout 330 python3 benchmarks/kernel_device_run.py sanitize > $OUT/run.txt 2>&1
tail -8 $OUT/run.txt; grep -E "ERROR SUMMARY|RACECHECK SUMMARY|hazard|cases OK" $OUT/memcheck.log $OUT/racecheck.log | head
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_skinny_gpu.py tests/test_verify_gpu.py -k "moe or by_expert or forward" > $OUT/pytest_moe.txt 2>&1
tail -2 $OUT/pytest_moe.txt
python3 benchmarks/verify_device_run.py models --only=qwen3next-tp2,dsv2-lite,mixtral-tp2 --budget=150 > /dev/null 2>&1
cat $OUT/summary.txt
