# Prepared in session 20, not yet run (issue 13): the streaming GEMV's timeline (trace=True form, never run on a
# GPU yet). GPU tests of the GEMV (the trace test among them; stops on a failure), then benchmarks/gemv_trace.py on
# Llama-3.1-8B (batch 1 and 8) and Llama-3.2-1B (batch 1): per shape, when each launch's CTAs enter, see their wait
# return and end, relative to the previous launch's end, for one launch everywhere (c1), the default (auto: two CTAs
# per SM for the tall gate_up) and two everywhere (c2). Questions it answers: how much of the 4-6 us lost per launch
# is the handoff (wait returning after the previous end), how much the CTAs' uneven ends; and where the mixed
# chain's extra time goes (session 20: 67.7% of read against 84.8 / 83.7 for either launch alone).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_gemv_stream_gpu.py > $OUT/t.txt 2>&1
tail -1 $OUT/t.txt | tee $OUT/log.txt
grep -qE "[0-9]+ (failed|errors?)" $OUT/t.txt && { grep -m5 -B2 -A25 "^____" $OUT/t.txt > $OUT/fail.txt; exit 1; }
timeout 100 python3 benchmarks/gemv_trace.py --model Llama-3.1-8B --batch 1 --out $OUT/trace_8b_b1.json 2>&1 | tee -a $OUT/log.txt
timeout 100 python3 benchmarks/gemv_trace.py --model Llama-3.1-8B --batch 8 --out $OUT/trace_8b_b8.json 2>&1 | tee -a $OUT/log.txt
timeout 100 python3 benchmarks/gemv_trace.py --model Llama-3.2-1B --layers 12 --out $OUT/trace_1b_b1.json 2>&1 \
  | tee -a $OUT/log.txt
