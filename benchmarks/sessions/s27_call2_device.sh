# session 27 call 2: where racecheck's RAW report on the e4m3 MLA kernel points (source lines: NVRTC -lineinfo),
# the whole report of the two e4m3 sanitizer cases (write and read threads, sites)
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
export KVPLAN_NVRTC_LINEINFO=1
SAN="compute-sanitizer --report-api-errors no"
for i in 18 17; do
  echo "=== racecheck $i"
  timeout 120 $SAN --tool racecheck --racecheck-report hazard --print-limit 12 python3 benchmarks/kernel_memcheck.py --mla $i 2>&1 | grep -v Warn | head -120
done
