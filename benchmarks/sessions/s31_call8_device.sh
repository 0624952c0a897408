# session 31 call 8: the first warpgroup meets its own warps after the row sums (call 7's racecheck: its reads of the
# other warps' parts raced the stores, with the __syncthreads gone from its path): the wg GPU tests, racecheck
# (source lines) and memcheck of two warpgroups
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
O=$OUT/s31_call8_h200_2026-12-03.txt
{
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_kernel_gpu.py -k "warpgroup or mqa" 2>&1 | tail -2
KVPLAN_NVRTC_LINEINFO=1 timeout 100 compute-sanitizer --report-api-errors no --tool racecheck \
  python3 benchmarks/probes/decode_wg_sanitize.py 2 2>&1 | grep -E "RACECHECK SUMMARY|decode_wg_sanitize|hazard|Thread" | head -12
timeout 60 compute-sanitizer --report-api-errors no --tool memcheck python3 benchmarks/probes/decode_wg_sanitize.py 2 2>&1 \
  | grep -E "ERROR SUMMARY|decode_wg_sanitize" | sed "s/^/memcheck: /"
} 2>&1 | tee $O
