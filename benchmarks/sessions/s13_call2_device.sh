# Session 13 call 2 (and call 3, after the kernel's stores were made contiguous and its arithmetic integer): mxfp4 experts -> bf16 by the bundled kernel then grouped GEMMs (gpt-oss above 256 tokens):
# its GPU tests, memcheck of the kernel tests, the by-expert kernel vs dequant + grouped per layer, verify gpt-oss-20b.
# (the verdict lines are printed by benchmarks/verify_verdict_lines.py since session 13's end; the calls ran the same
# printing inline)
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc
python3 -m kvplan.kernels.batch sm_90 > /dev/null 2>&1
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_mxfp4_gpu.py tests/test_skinny_gpu.py tests/test_verify_gpu.py > $OUT/t.txt 2>&1; tail -15 $OUT/t.txt | grep -v "^$" | tail -10
timeout 120 compute-sanitizer --report-api-errors no --error-exitcode 1 --tool memcheck python3 -m pytest -q -p no:cacheprovider tests/test_mxfp4_gpu.py -k "bit_for_bit or grouped_from" > $OUT/mc.txt 2>&1; echo "memcheck rc=$?"; grep "ERROR SUMMARY\|passed\|failed" $OUT/mc.txt | tail -3
timeout 150 python3 benchmarks/skinny_gemm.py --moe-large --dequant > $OUT/moe_large.txt 2>&1; grep "^{" $OUT/moe_large.txt
timeout 150 python3 benchmarks/verify_device_run.py models --only=gpt-oss-20b --budget=140 > /dev/null 2>&1; tail -3 $OUT/summary.txt
python3 benchmarks/verify_verdict_lines.py $OUT/results.jsonl 2>&1 | cut -c1-1500
tar czf $OUT/logs.tgz -C $OUT t.txt mc.txt moe_large.txt summary.txt results.jsonl 2>/dev/null
