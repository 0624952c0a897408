# session 27 call 5: every racecheck report of the two e4m3 MLA sanitizer cases, grouped by (address, write site,
# read site) with source lines (NVRTC -lineinfo): which hand-overs racecheck flags and which it does not
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
export KVPLAN_NVRTC_LINEINFO=1
for i in 18 17; do
  echo "=== racecheck $i: count, hazard, address, write site, read site"
  timeout 200 compute-sanitizer --report-api-errors no --tool racecheck --racecheck-report hazard --print-limit 100000 \
    python3 benchmarks/kernel_memcheck.py --mla $i > /tmp/rc$i.txt 2>&1
  awk '/Potential/ {h=$4; a=$9} /Write Thread|Read Thread/ {split($NF, s, ":"); site[$2]=s[2]}
       /Current Value/ {print h, "write:" site["Write"], "read:" site["Read"], a}' /tmp/rc$i.txt | sort |
    awk '{k=$1" "$2" "$3} k!=p {if (p!="") print n, p, lo, hi; p=k; n=0; lo=$4} {n++; hi=$4} END {print n, p, lo, hi}'
  grep -E "RACECHECK SUMMARY" /tmp/rc$i.txt
done
