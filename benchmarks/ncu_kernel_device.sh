# Nsight Compute warp-state sampling of one launch: bash benchmarks/ncu_kernel_device.sh KERNEL SCRIPT [ARGS...]
# e.g. bash benchmarks/ncu_kernel_device.sh kvp_decode benchmarks/gqa_one_launch.py 64 8192
# Results land in $NCU_OUT (default $OUT). NCU_CLOCK=none profiles at the boost clock the benchmarks run at (default: base).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 KVPLAN_CACHE_DIR=/tmp/kc-line KVPLAN_NVRTC_LINEINFO=1
NCU=/usr/local/cuda/bin/ncu
D=${NCU_OUT:-$OUT}; mkdir -p $D
kern=$1; shift
timeout 200 $NCU -f -o /tmp/prof --clock-control ${NCU_CLOCK:-base} --kernel-name $kern --launch-skip ${NCU_SKIP:-2} --launch-count 1 --section WarpStateStats \
  --section SourceCounters --section MemoryWorkloadAnalysis_Tables --section SpeedOfLight --section Occupancy --section LaunchStats python3 "$@" > $D/ncu_run.txt 2>&1
$NCU --import /tmp/prof.ncu-rep --page details > $D/ncu_details.txt 2>&1
$NCU --import /tmp/prof.ncu-rep --page raw --csv 2>/dev/null | python3 -c "
import csv,sys
r=list(csv.reader(sys.stdin)); h=r[0]; v=r[-1]
for a,b in zip(h,v):
    if 'smsp__pcsamp_warps_issue_stalled' in a and not a.endswith('not_issued'):
        try:
            if float(b.replace(',',''))>0: print(a,b)
        except ValueError: pass
" > $D/stall_reasons.txt
$NCU --import /tmp/prof.ncu-rep --page source --csv --print-source sass > /tmp/src.csv 2> /dev/null
python3 benchmarks/ncu_top_stalls.py /tmp/src.csv 40 > $D/top_stalls.txt 2>&1
