# session 31 call 6: where racecheck's hazards in the warpgroup-MMA decode are (call 5: 256 + 16 on small launches),
# with source lines, one warpgroup and two apart
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
export KVPLAN_NVRTC_LINEINFO=1
O=$OUT/s31_call6_h200_2026-12-03.txt
{
for w in 1 2; do
  echo "## warpgroups $w"
  timeout 120 compute-sanitizer --report-api-errors no --tool racecheck --racecheck-report hazard \
    python3 benchmarks/probes/decode_wg_sanitize.py $w 2>&1 | grep -vE "^=========\s+$" | head -40
done
} 2>&1 | tee $O
