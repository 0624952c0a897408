# Session 21, call 3 (issue 13): the GEMV's opt-in tail prefetch (ahead=True: at its end, each launch prefetches into
# L2 the next launch's steps after its rings). GPU tests (stop on a failure), then gemv_trace.py on 8B b1 / b8 and
# 1B b1 for one launch and the default, without and with 4 / 8 / 16 steps ahead; then the same with
# KVP_GV_AHEAD_LANDED=1 (prefetch only once the CTA's own last stage has landed) for 8 / 16 steps.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
F=kvplan/kernels/gemv_stream.cu
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_gemv_stream_gpu.py > $OUT/t.txt 2>&1
tail -1 $OUT/t.txt | tee $OUT/log.txt
grep -qE "[0-9]+ (failed|errors?)" $OUT/t.txt && { grep -m5 -B2 -A25 "^____" $OUT/t.txt > $OUT/fail.txt; exit 1; }
run() {  # tag, forms
  timeout 120 python3 benchmarks/gemv_trace.py --model Llama-3.1-8B --batch 1 --forms $2 --out $OUT/tr_8b1_$1.json 2>&1 | tee -a $OUT/log.txt
  timeout 120 python3 benchmarks/gemv_trace.py --model Llama-3.1-8B --batch 8 --forms $2 --out $OUT/tr_8b8_$1.json 2>&1 | tee -a $OUT/log.txt
  timeout 120 python3 benchmarks/gemv_trace.py --model Llama-3.2-1B --layers 12 --forms $2 --out $OUT/tr_1b1_$1.json 2>&1 | tee -a $OUT/log.txt
}
echo "######## issued" | tee -a $OUT/log.txt
run issued c1,c1+a4,c1+a8,c1+a16,auto,auto+a8
cp $F /tmp/base.cu
sed -i 's/#define KVP_GV_AHEAD_LANDED 0/#define KVP_GV_AHEAD_LANDED 1/' $F
echo "######## landed" | tee -a $OUT/log.txt
run landed c1,c1+a8,c1+a16
cp /tmp/base.cu $F
