# One device call for the MLA stage-size option (session 5): the MLA GPU tests, then the MLA table and the MLA
# launch sweep (tokens per stage x stages), kvplan and SDPA only.     Device: bash benchmarks/sessions/mla_stages_device.sh
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
python3 -m kvplan.kernels.batch sm_90 > /dev/null 2>&1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > $OUT/log.txt
timeout 200 python3 -m pytest -q -x tests/test_kernel_mla_gpu.py tests/test_kernel_mla_fragments.py 2>&1 | tail -8 >> $OUT/log.txt
timeout 300 python3 benchmarks/kernel_vs_flashinfer.py --no-flashinfer --mla-only --sweep --json $OUT/mla.json > $OUT/mla_bench.txt 2>&1
tail -45 $OUT/mla_bench.txt >> $OUT/log.txt
san="compute-sanitizer --report-api-errors no --error-exitcode 1"
timeout 120 $san --tool memcheck python3 benchmarks/kernel_memcheck.py > /tmp/memcheck.txt 2>&1; echo "memcheck rc=$? $(grep -c 'Invalid' /tmp/memcheck.txt) invalid; $(grep SUMMARY /tmp/memcheck.txt)" >> $OUT/log.txt
timeout 150 $san --tool racecheck --racecheck-report all python3 benchmarks/kernel_memcheck.py > /tmp/race.txt 2>&1; echo "racecheck rc=$? $(grep -c 'Race reported' /tmp/race.txt) races; $(grep SUMMARY /tmp/race.txt)" >> $OUT/log.txt
