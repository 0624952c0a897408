# Racecheck with source lines: the whole case list twice, then case 4 (32 heads on 1 KV head) six times.
# Device: bash benchmarks/sessions/kernel_racecheck_lines.sh   (writes $OUT/race_*.txt)
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 KVPLAN_NVRTC_LINEINFO=1 KVPLAN_CACHE_DIR=/tmp/kc-line
san="compute-sanitizer --report-api-errors no --tool racecheck --racecheck-report all --print-limit 30"
python3 -m kvplan.kernels.batch sm_90 > /dev/null 2>&1
for i in 1 2; do timeout 100 $san python3 benchmarks/kernel_memcheck.py > $OUT/race_all_$i.txt 2>&1; echo "all $i: $(grep -c 'Race reported' $OUT/race_all_$i.txt) races; $(tail -3 $OUT/race_all_$i.txt | grep SUMMARY)"; done
for i in 1 2 3 4 5 6; do timeout 40 $san python3 benchmarks/kernel_memcheck.py 4 >> $OUT/race_case4.txt 2>&1; done
echo "case 4 x6: $(grep -c 'Race reported' $OUT/race_case4.txt) races"; grep -h -A6 'Race reported' $OUT/race_*.txt | head -60
