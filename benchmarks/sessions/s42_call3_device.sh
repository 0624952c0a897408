#!/usr/bin/env bash
# Session 42, call 3: fp8 experts take the row-tile kernel by default above the pair slots (call 2: 2.3-2.6x the
# k-split kernel), and its x loads are issued once per chunk for both row tiles, before the dequantisation (call 2's
# ncu: long-scoreboard stalls first). GPU tests, memcheck, the probe (a joined expert's passes one per CTA row),
# ncu again, verify on DeepSeek-V3 / R1 at tp 8, the batch-84 step kernel by kernel.
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s42_call3_h200_2026-12-04.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_skinny_gpu.py -k "fp8 or rows" 2>&1 | tail -3 \
  | tee -a "$LOG"
echo "== memcheck (fp8 row tiles)" | tee -a "$LOG"
timeout 100 compute-sanitizer --report-api-errors no --tool memcheck python3 -m pytest -q -x -p no:cacheprovider \
  tests/test_skinny_gpu.py -k "test_moe_by_expert_rows_fp8" 2>&1 | tail -2 | tee -a "$LOG"
timeout 150 python3 benchmarks/probes/fp8_experts_probe.py 2>&1 | grep -v -i warn | tee -a "$LOG"
S=smsp__average_warps_issue_stalled
M=gpu__time_duration.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed
M=$M,sm__warps_active.avg.pct_of_peak_sustained_active
for r in long_scoreboard short_scoreboard barrier wait math_pipe_throttle not_selected selected; do
  M=$M,${S}_${r}_per_issue_active.ratio; done
echo "== ncu: rows, joined, 84 tokens (up, then down)" | tee -a "$LOG"
timeout 120 ncu --clock-control none --kernel-name regex:kvp_skinny_fp8 --launch-skip 2 --launch-count 2 \
  --metrics $M python3 benchmarks/probes/fp8_experts_probe.py --one="rows, joined" > "$OUT/ncu.txt" 2>&1
grep -E "kvp_skinny|duration|dram__|warps_active|stalled" "$OUT/ncu.txt" | grep -v "^==PROF" \
  | sed -e "s/smsp__average_warps_issue_stalled_//" -e "s/_per_issue_active.ratio//" | tee -a "$LOG"
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_verify_gpu.py -k "deepseek" 2>&1 | tail -2 \
  | tee -a "$LOG"
python3 benchmarks/verify_device_run.py models --budget=150 --only=dsv3-tp8,dsr1-tp8 2>&1 | tail -3 | tee -a "$LOG"
python3 benchmarks/verify_summary_md.py "$OUT/results.jsonl" 2>&1 | head -8 | tee -a "$LOG"
cp "$OUT/results.jsonl" "$OUT/verify_h200_2026-12-04_s42_call3.jsonl" 2>/dev/null
echo "== DeepSeek-V3 tp 8 (one rank), batch 84, 8K context" | tee -a "$LOG"
timeout 100 python3 benchmarks/forward_profile.py deepseek-ai/DeepSeek-V3 --tp 8 --batch 84 --context 8192 --top 8 \
  2>&1 | grep -v -i warn | tail -11 | tee -a "$LOG"
