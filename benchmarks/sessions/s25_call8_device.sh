# session 25 call 8: both warpgroup-MMA MLA kernels with their block-table loads a step ahead of the copies
# (StepCopies): MLA GPU tests,
# sanitizers over its two cases and memcheck over every MLA case, the fp8 shapes, ncu stall reasons, the MLA table
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
SAN="compute-sanitizer --report-api-errors no"
python3 -m pytest -q tests/test_kernel_mla_gpu.py 2>&1 | tail -2
for i in 17 18; do
  timeout 90 $SAN --tool racecheck --racecheck-report all --print-limit 1 python3 benchmarks/kernel_memcheck.py --mla $i 2>&1 | grep -E "SUMMARY|hazard detected|Thread" | head -4
  timeout 60 $SAN --tool synccheck python3 benchmarks/kernel_memcheck.py --mla $i 2>&1 | grep -E "ERROR SUMMARY"
done
timeout 150 $SAN --tool memcheck --error-exitcode 1 python3 benchmarks/kernel_memcheck.py --mla 2>&1 | tail -2
python3 benchmarks/mla_probe.py "" "16h fp8 B1 4K,16h fp8 B1 32K,16h fp8 B8 32K,16h fp8 B32 8K,16h fp8 B128 4K,16h fp8 B64 16K,8h fp8 B32 8K,64h fp8 B32 8K,128h fp8 B8 8K,128h fp8 B32 4K" 2>&1 | grep -v Warn
python3 benchmarks/mla_probe.py "wgmma=True" "16h B32 8K,16h B128 4K,16h B8 32K" 2>&1 | grep -v Warn
NCU_OUT=$OUT/ncu NCU_CLOCK=none bash benchmarks/ncu_kernel_device.sh kvp_mla_wg benchmarks/probes/mla_one_launch.py - - fp8
cat $OUT/ncu/stall_reasons.txt; head -12 $OUT/ncu/top_stalls.txt; grep -E "Duration|Warp Cycles Per Issued" $OUT/ncu/ncu_details.txt
python3 benchmarks/kernel_vs_flashinfer.py --mla-only --no-flashinfer --json $OUT/mla_table.json 2>&1 | grep -v Warn | tail -14
