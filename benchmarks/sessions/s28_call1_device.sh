# (branch e4m3-mbar-handover, for the next session) the e4m3 MLA kernel's hand-overs between warpgroups through
# mbarriers (READY / FREE per P buffer) instead of named barriers, L and M with the last step's P: its GPU tests,
# synccheck, racecheck by steps per CTA and of every MLA sanitizer case, memcheck, fp8 times
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_kernel_mla_gpu.py 2>&1 | tail -1
bash benchmarks/sessions/s27_call6_device.sh 2>&1
SAN="compute-sanitizer --report-api-errors no"
for i in 17 18; do
  timeout 60 $SAN --tool synccheck python3 benchmarks/kernel_memcheck.py --mla $i 2>&1 | grep -E "ERROR SUMMARY" | sed "s/^/synccheck $i: /"
done
timeout 150 $SAN --tool racecheck --racecheck-report all --print-limit 3 python3 benchmarks/kernel_memcheck.py --mla 2>&1 | grep -E "RACECHECK SUMMARY|Potential|cases OK" | head -4 | sed "s/^/racecheck all MLA cases: /"
timeout 100 $SAN --tool memcheck python3 benchmarks/kernel_memcheck.py --mla 2>&1 | grep -E "ERROR SUMMARY|cases OK" | sed "s/^/memcheck all MLA cases: /"
timeout 60 python3 benchmarks/mla_probe.py "" "16h fp8 B32 8K,16h fp8 B8 32K,16h fp8 B128 4K,16h fp8 B1 32K" 2>&1 | grep -v Warn
