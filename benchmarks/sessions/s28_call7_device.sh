# racecheck twice more and memcheck once over every sanitizer case of main (GQA and MLA): "several runs"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
SAN="compute-sanitizer --report-api-errors no"
for i in 1 2; do
  timeout 150 $SAN --tool racecheck --racecheck-report all --print-limit 3 python3 benchmarks/kernel_memcheck.py 2>&1 \
    | grep -E "RACECHECK SUMMARY|Potential|cases OK|rror" | head -4 | sed "s/^/racecheck run $i: /"
done
timeout 150 $SAN --tool memcheck python3 benchmarks/kernel_memcheck.py 2>&1 | grep -E "ERROR SUMMARY|cases OK" | sed "s/^/memcheck: /"
