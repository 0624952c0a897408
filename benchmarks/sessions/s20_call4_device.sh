# Session 20 (issue 13): the GEMV's launch chosen per shape (gemv_stream_config.launch_shape: two CTAs per SM with
# rings of 6 for tall weights, n >= 4 k). GPU tests (stops on a failure), the whole-model stream of the default
# ("gemv") against one CTA with 8 stages everywhere ("c1 d8"), LM-head-like shapes (tall too: n = 31-49 k) one
# form against the other, and verify of the dense models that have tall gate_up shapes (the weight stream figure).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_gemv_stream_gpu.py > $OUT/t.txt 2>&1
tail -1 $OUT/t.txt | tee $OUT/log.txt
grep -qE "[0-9]+ (failed|errors?)" $OUT/t.txt && { grep -m5 -B2 -A25 "^____" $OUT/t.txt > $OUT/fail.txt; exit 1; }
timeout 150 python3 benchmarks/skinny_gemm.py --gemv --per-shape-all --forms "gemv,c1 d8,c2 d6" \
  --out $OUT/gemv.json 2>&1 | tee -a $OUT/log.txt
timeout 100 python3 benchmarks/probes/gemv_lm_head.py 2>&1 | tee -a $OUT/log.txt
export ROOT=$OUT
OUT=$ROOT/v timeout 150 python3 benchmarks/verify_device_run.py models --only=llama1b,llama8b-8k,qwen3-14b \
  --budget=140 > /dev/null 2>&1
python3 benchmarks/probes/verify_forms_summary.py $ROOT/v/results.jsonl 2>&1 | tee -a $ROOT/log.txt
