#!/usr/bin/env bash
# Session 38, call 7: the prefill convolutions' shared eight-channel tap loop (kvp_conv8.cuh): deltanet_prefill.cu's
# sm_90 SASS is identical to the tested one (nvdisasm); ssd_prefill.cu's convolution changed its registers: its GPU
# tests and the tiny Nemotron-H forwards, memcheck over the SSD launches.
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s38_call7_h200_2026-12-03.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
python3 -m pytest -q tests/test_ssd_prefill.py tests/test_prefill_kernels.py tests/test_verify_gpu.py -k \
  "ssd or conv or nemotron or compiles" 2>&1 | tail -3 | tee -a "$LOG"
timeout 90 compute-sanitizer --report-api-errors no --tool memcheck python3 benchmarks/probes/prefill_kernels_check.py 2>&1 \
  | tail -2 | tee -a "$LOG"
