#!/usr/bin/env bash
# Session 80, an H100 while no H200 comes: verify's GPU tests after this session's graph-mode changes (breakable
# graphs, the pooler config's downgrade, splitting_ops, stock torch.compile: verify/planned.py graph_flags reads them),
# boxed at 330 s (a cold kernel cache took ~300 s in session 79), then Llama-3.1-8B at 8K on the default flags.
#   bash benchmarks/sessions/s80_h100_verify.sh [LIMIT]   (default 400; kind nvidia-h100-x1)
set -u
session=s80 mode=h100
source "$(dirname "$0")/../device_verify_lib.sh"
limit=${1:-400}
run_verify_tests 330
[ "$(left)" -gt 30 ] && run_json llama8b meta-llama/Llama-3.1-8B-Instruct -c 8192
echo "stopped at $(date -u)" | tee -a "$LOG"
pack_runs
