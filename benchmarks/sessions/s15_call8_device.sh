# Session 15 call 8 (ran at commit c2559d5, kept on branch `deltanet-chunks`; main removed the kernel as slower):
# the DeltaNet chunk kernel (deltanet_chunks.cu): its GPU tests and the DeltaNet/verify GPU tests,
# memcheck and racecheck of its cases, Qwen3-Next's prefill kernel by kernel, then verify of Qwen3-Next tp 2.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc
python3 -m kvplan.kernels.batch sm_90 > /dev/null 2>&1
timeout 90 python3 -m pytest -q -p no:cacheprovider tests/test_deltanet_chunks.py tests/test_deltanet_step.py tests/test_verify_gpu.py > $OUT/t.txt 2>&1; tail -3 $OUT/t.txt
for tool in memcheck racecheck; do
  timeout 60 compute-sanitizer --report-api-errors no --error-exitcode 1 --tool $tool python3 benchmarks/kernel_memcheck.py --dn > $OUT/$tool.txt 2>&1
  echo "$tool rc=$? $(grep -h 'SUMMARY\|OK' $OUT/$tool.txt | tr '\n' ' ')"
done
timeout 80 python3 benchmarks/prefill_profile.py Qwen/Qwen3-Next-80B-A3B-Thinking --tp 2 --top 14 2>&1 | grep -v "Warn\|_warn_once" | cut -c1-170 | tee $OUT/prefill.txt
timeout 80 python3 benchmarks/verify_device_run.py models --only=qwen3next-tp2 --budget=70 > /dev/null 2>&1; tail -2 $OUT/summary.txt
python3 benchmarks/verify_verdict_lines.py $OUT/results.jsonl 2>&1 | cut -c1-400
