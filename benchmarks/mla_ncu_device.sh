# Nsight Compute on the MLA decode kernel (16 heads, B32 8K, the default launch): where its warps stall, by SASS
# instruction.      Device: bash benchmarks/mla_ncu_device.sh
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 KVPLAN_CACHE_DIR=/tmp/kc-line KVPLAN_NVRTC_LINEINFO=1
NCU=/usr/local/cuda/bin/ncu
timeout 200 $NCU -f -o /tmp/mla --import-source yes --kernel-name kvp_mla_decode --launch-skip 2 --launch-count 1 \
  --section WarpStateStats --section SourceCounters --section SpeedOfLight python3 benchmarks/mla_one_launch.py > $OUT/ncu_run.txt 2>&1
$NCU --import /tmp/mla.ncu-rep --page details --section WarpStateStats > $OUT/ncu_details.txt 2>&1
$NCU --import /tmp/mla.ncu-rep --page raw --csv 2>/dev/null | python3 -c "
import csv,sys
r=list(csv.reader(sys.stdin)); h=r[0]; v=r[-1]
for a,b in zip(h,v):
    if 'smsp__pcsamp_warps_issue_stalled' in a and not a.endswith('not_issued'):
        try:
            if float(b.replace(',',''))>0: print(a,b)
        except ValueError: pass
" > $OUT/stall_reasons.txt
$NCU --import /tmp/mla.ncu-rep --page source --csv --print-source sass > /tmp/src.csv 2> $OUT/src_err.txt
python3 benchmarks/ncu_top_stalls.py /tmp/src.csv 60 > $OUT/top_stalls.txt 2>&1
head -5 /tmp/src.csv | cut -c1-600 > $OUT/src_head.txt
