# Session 13 call 4: the mxfp4 -> bf16 kernel with a per-group PRMT lookup (scales 2..252): its GPU tests (bit for
# bit against torch), memcheck, by expert vs dequant + grouped per layer, verify gpt-oss-20b and DeepSeek-V2-Lite.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc
python3 -m kvplan.kernels.batch sm_90 > /dev/null 2>&1
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_mxfp4_gpu.py tests/test_skinny_gpu.py tests/test_verify_gpu.py > $OUT/t.txt 2>&1; tail -15 $OUT/t.txt | grep -v "^$" | tail -6
timeout 120 compute-sanitizer --report-api-errors no --error-exitcode 1 --tool memcheck python3 -m pytest -q -p no:cacheprovider tests/test_mxfp4_gpu.py -k "bit_for_bit or every_byte or grouped_from" > $OUT/mc.txt 2>&1; echo "memcheck rc=$?"; grep "ERROR SUMMARY\|passed\|failed" $OUT/mc.txt | tail -3
timeout 150 python3 benchmarks/skinny_gemm.py --moe-large --dequant > $OUT/moe_large.txt 2>&1; grep "^{" $OUT/moe_large.txt
timeout 200 python3 benchmarks/verify_device_run.py models --only=gpt-oss-20b,dsv2-lite --budget=190 > /dev/null 2>&1; tail -4 $OUT/summary.txt
python3 benchmarks/verify_verdict_lines.py $OUT/results.jsonl 2>&1 | cut -c1-1500
tar czf $OUT/logs.tgz -C $OUT t.txt mc.txt moe_large.txt summary.txt results.jsonl 2>/dev/null
