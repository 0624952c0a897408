# Session 19 call 3 (issue 13): the streaming GEMV with what calls 1-2 kept (both cut tiles of a warp counted with
# one fence and one atomic instruction; evict-first weights) as its only form: GPU tests of the GEMV and of
# verify's forward, memcheck and racecheck of the GEMV, the forms against it (the default L2 policy, rings of 6
# and 10), then verify of Llama-3.1-8B, Qwen3-14B and Llama-3.2-1B (each shape's form, the stream, the decode step).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
python3 -m kvplan.kernels.batch sm_90 > /dev/null 2>&1
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_gemv_stream_gpu.py tests/test_verify_gpu.py > $OUT/t.txt 2>&1
tail -2 $OUT/t.txt | tee $OUT/log.txt
grep -qE "[0-9]+ (failed|errors?)" $OUT/t.txt && { grep -m5 -B2 -A25 "^____" $OUT/t.txt > $OUT/fail.txt; exit 1; }
timeout 90 compute-sanitizer --tool memcheck --report-api-errors no python3 -m pytest -q -x -p no:cacheprovider \
  tests/test_gemv_stream_gpu.py -k "cut_at_both or chain" 2>&1 | grep -E "ERROR SUMMARY|passed|failed" | tail -2 | tee -a $OUT/log.txt
timeout 90 compute-sanitizer --tool racecheck --racecheck-report all --report-api-errors no python3 -m pytest -q -x \
  -p no:cacheprovider tests/test_gemv_stream_gpu.py -k "16-64 or 3-192 or chain" 2>&1 \
  | grep -E "RACECHECK SUMMARY|hazard|passed|failed" | tail -3 | tee -a $OUT/log.txt
timeout 120 python3 benchmarks/skinny_gemm.py --gemv --forms "gemv d8,no ef,d10,d6" --out $OUT/gemv.json 2>&1 \
  | tee -a $OUT/log.txt
timeout 250 python3 benchmarks/verify_device_run.py models --only=llama8b-8k,qwen3-14b,llama1b --budget=240 \
  > /dev/null 2>&1; tail -5 $OUT/summary.txt | tee -a $OUT/log.txt
python3 benchmarks/probes/verify_forms_summary.py
