# One device call for the stream-K / PDL skinny kernel and the named-barrier padding (session 5):
# GPU tests, the dense weight-stream table, racecheck on case 4 (32q/1kv, lengths [250, 1]) eight times and the
# whole case list once, then verify on the dense models.      Device: bash benchmarks/skinny_streamk_device.sh
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc
python3 -m kvplan.kernels.batch sm_90 > /dev/null 2>&1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > $OUT/log.txt
timeout 150 python3 -m pytest -q -x tests/test_skinny_gpu.py 2>&1 | tail -5 >> $OUT/log.txt
san="compute-sanitizer --report-api-errors no --tool racecheck --racecheck-report all --print-limit 30"
for i in 1 2 3 4 5 6 7 8; do timeout 120 $san python3 benchmarks/kernel_memcheck.py 4 > /tmp/race4_$i.txt 2>&1 & done
timeout 150 $san python3 benchmarks/kernel_memcheck.py > /tmp/race_all.txt 2>&1 &
timeout 200 python3 benchmarks/skinny_gemm.py --dense-only --out $OUT/skinny_dense.json > /tmp/skinny.txt 2>&1
wait
for f in /tmp/race4_*.txt /tmp/race_all.txt; do echo "$f: $(grep -c 'Race reported' $f) races; $(grep SUMMARY $f)"; done >> $OUT/log.txt
grep -h -A6 'Race reported' /tmp/race*.txt | head -40 >> $OUT/log.txt
tail -3 /tmp/skinny.txt >> $OUT/log.txt
timeout 200 python3 benchmarks/verify_device_run.py models --only=llama8b-8k,llama1b,qwen3-14b --budget=190 > /dev/null 2>&1
cp $OUT/summary.txt /dev/null 2>&1; ls $OUT >> $OUT/log.txt
