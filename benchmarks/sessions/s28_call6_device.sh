# racecheck over every sanitizer case of main (GQA and MLA, kernel_memcheck.py), after the e4m3 mbarrier hand-overs
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 420 compute-sanitizer --report-api-errors no --tool racecheck --racecheck-report all --print-limit 3 \
  python3 benchmarks/kernel_memcheck.py 2>&1 | grep -E "RACECHECK SUMMARY|Potential|cases OK|rror" | head -6
