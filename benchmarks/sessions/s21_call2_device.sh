# Ran at commit c76d917 (KVP_GV_RELEASE_COUNT existed there; removed after: level). Results: RESULTS.md "Session 21".
# Session 21, call 2 (issue 13): the GEMV's timeline with three more stamps per CTA (first stage full, last step
# done before counting the split tiles, producer done), for main's file and for KVP_GV_RELEASE_COUNT=1 (a release
# atomic instead of a full fence before counting): GPU tests of each (stop on a failure), then gemv_trace.py on 8B b1
# and 1B b1 (forms c1 and auto), each file twice.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
F=kvplan/kernels/gemv_stream.cu
mkdir -p /tmp/base /tmp/rel && cp $F /tmp/base/ && sed 's/#define KVP_GV_RELEASE_COUNT 0/#define KVP_GV_RELEASE_COUNT 1/' $F > /tmp/rel/gemv_stream.cu
for form in base rel; do
  cp /tmp/$form/gemv_stream.cu $F
  timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_gemv_stream_gpu.py > $OUT/t_$form.txt 2>&1
  tail -1 $OUT/t_$form.txt | sed "s/^/$form tests: /" | tee -a $OUT/log.txt
  grep -qE "[0-9]+ (failed|errors?)" $OUT/t_$form.txt && { grep -m5 -B2 -A25 "^____" $OUT/t_$form.txt > $OUT/fail_$form.txt; cp /tmp/base/gemv_stream.cu $F; exit 1; }
done
for i in 1 2; do
  for form in base rel; do
    cp /tmp/$form/gemv_stream.cu $F
    echo "######## $form $i" | tee -a $OUT/log.txt
    timeout 100 python3 benchmarks/gemv_trace.py --model Llama-3.1-8B --batch 1 --forms c1,auto --out $OUT/tr_8b_${form}_$i.json 2>&1 | tee -a $OUT/log.txt
    timeout 100 python3 benchmarks/gemv_trace.py --model Llama-3.2-1B --layers 12 --forms c1,auto --out $OUT/tr_1b_${form}_$i.json 2>&1 | tee -a $OUT/log.txt
  done
done
cp /tmp/base/gemv_stream.cu $F
