#!/usr/bin/env bash
# Session 79, second call (H100): verify's GPU tests on the tree after the graph decision by engine (V0 / V1) and
# use_cudagraph were merged, then verify through the flags that now turn graphs off before vLLM 0.12 (eager decode
# timed), beside the same model with graphs.   bash benchmarks/sessions/s79_h100_verify.sh [LIMIT]
set -u
session=s79b mode=h100
source "$(dirname "$0")/../device_verify_lib.sh"
limit=${1:-330}
run_verify_tests 230
run_json l1b_graphs meta-llama/Llama-3.2-1B-Instruct -c 8192 --engine vllm==0.11.0
run_json l1b_O0 meta-llama/Llama-3.2-1B-Instruct -c 8192 --engine vllm==0.11.0 -O0
run_json l1b_no_cudagraph meta-llama/Llama-3.2-1B-Instruct -c 8192 --engine vllm==0.10.1 \
  --compilation-config '{"use_cudagraph": false}'
echo "stopped at $(date -u)" | tee -a "$LOG"
pack_runs
