#!/usr/bin/env bash
# Session 42, call 2: why DeepSeek-V3's fp8 experts by expert read at 12-26% of read (call 1): both by-expert
# kernels, with and without the joined expert dealt over CTA rows, ring depths (fp8_experts_probe.py); ncu's
# duration, DRAM throughput, occupancy and stall reasons per launch (up, down) at 84 tokens; racecheck of the row
# tiles (call 1 ran out of time); the batch-84 step with the row tiles.
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s42_call2_h200_2026-12-04.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
timeout 150 python3 benchmarks/probes/fp8_experts_probe.py 2>&1 | grep -v -i warn | tee -a "$LOG"
S=smsp__average_warps_issue_stalled
M=gpu__time_duration.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed
M=$M,sm__warps_active.avg.pct_of_peak_sustained_active
M=$M,launch__grid_size,launch__registers_per_thread,launch__occupancy_limit_registers,launch__occupancy_limit_shared_mem
for r in long_scoreboard short_scoreboard barrier wait math_pipe_throttle lg_throttle mio_throttle no_instruction \
  not_selected selected membar drain imc_miss branch_resolving dispatch_stall; do
  M=$M,${S}_${r}_per_issue_active.ratio; done
for v in "k split, joined" "rows, joined"; do
  echo "== ncu: $v, 84 tokens (run 2 of 3: up, then down)" | tee -a "$LOG"
  timeout 150 ncu --clock-control none --kernel-name regex:kvp_skinny_fp8 --launch-skip 2 --launch-count 2 \
    --metrics $M python3 benchmarks/probes/fp8_experts_probe.py --one="$v" > "$OUT/ncu.txt" 2>&1
  grep -E "kvp_skinny|duration|dram__|warps_active|launch__|stalled" "$OUT/ncu.txt" | grep -v "^==PROF" \
    | sed -e "s/smsp__average_warps_issue_stalled_//" -e "s/_per_issue_active.ratio//" | tee -a "$LOG"
done
echo "== racecheck (fp8 row tiles)" | tee -a "$LOG"
timeout 150 compute-sanitizer --report-api-errors no --tool racecheck python3 -m pytest -q -x -p no:cacheprovider \
  tests/test_skinny_gpu.py -k "test_moe_by_expert_rows_fp8 and (300 or deepseek)" 2>&1 | tail -2 | tee -a "$LOG"
echo "== DeepSeek-V3 tp 8 (one rank), batch 84, 8K context, fp8 experts by expert: rows" | tee -a "$LOG"
timeout 100 python3 benchmarks/probes/with_fp8_expert_rows.py benchmarks/forward_profile.py deepseek-ai/DeepSeek-V3 --tp 8 \
  --batch 84 --context 8192 --top 8 2>&1 | grep -v -i warn | tail -11 | tee -a "$LOG"
