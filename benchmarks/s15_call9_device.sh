# Session 15 call 9: the DeltaNet chunk kernel with its loads batched and the next chunk prefetched: its GPU tests,
# Qwen3-Next's prefill kernel by kernel and verify of Qwen3-Next tp 2, then memcheck of its cases.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc
timeout 40 python3 -m pytest -q -p no:cacheprovider tests/test_deltanet_chunks.py > $OUT/t.txt 2>&1; tail -1 $OUT/t.txt
timeout 60 python3 benchmarks/prefill_profile.py Qwen/Qwen3-Next-80B-A3B-Thinking --tp 2 --top 6 2>&1 | grep -v "Warn\|_warn_once" | cut -c1-170 | tee $OUT/prefill.txt
timeout 45 python3 benchmarks/verify_device_run.py models --only=qwen3next-tp2 --budget=40 > /dev/null 2>&1; tail -2 $OUT/summary.txt
python3 benchmarks/verify_verdict_lines.py $OUT/results.jsonl 2>&1 | cut -c1-300
timeout 30 compute-sanitizer --report-api-errors no --error-exitcode 1 --tool memcheck python3 benchmarks/kernel_memcheck.py --dn > $OUT/memcheck.txt 2>&1; echo "memcheck rc=$? $(grep -h 'SUMMARY\|OK' $OUT/memcheck.txt | tr '\n' ' ')"
