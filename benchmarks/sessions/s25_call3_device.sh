# session 25 call 3: the e4m3 MLA path with non-.aligned named barriers and converged wgmmas, now the fp8 default
# at <= 16 heads: MLA GPU tests; racecheck + synccheck of its two sanitizer cases; memcheck of every MLA case;
# fp8 shapes per path (head tiles / widened / e4m3, and e4m3 at 16 heads a CTA for 64 and 128 heads); MLA table
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
SAN="compute-sanitizer --report-api-errors no"
python3 -m pytest -q tests/test_kernel_mla_gpu.py tests/test_kernel_mla_launch.py 2>&1 | tail -3
for i in 17 18; do
  timeout 90 $SAN --tool racecheck --racecheck-report all --print-limit 3 python3 benchmarks/kernel_memcheck.py --mla $i 2>&1 | grep -E "RACECHECK SUMMARY|hazard detected|Thread|memcheck cases" | head -8
  timeout 60 $SAN --tool synccheck --print-limit 3 python3 benchmarks/kernel_memcheck.py --mla $i 2>&1 | grep -E "ERROR SUMMARY|Barrier|at kvp|memcheck cases" | head -6
done
timeout 150 $SAN --tool memcheck --error-exitcode 1 python3 benchmarks/kernel_memcheck.py --mla 2>&1 | tail -2; echo "memcheck rc=$?"
python3 benchmarks/mla_probe.py "wgmma=False;wgmma=True e4m3_mma=False;wgmma=True head_group=16 e4m3_mma=True" \
  "16h fp8 B1 4K,16h fp8 B1 32K,16h fp8 B8 32K,16h fp8 B32 8K,16h fp8 B128 4K,16h fp8 B64 16K,8h fp8 B32 8K,64h fp8 B32 8K,128h fp8 B8 8K,128h fp8 B32 4K" 2>&1 | grep -v Warn
python3 benchmarks/kernel_vs_flashinfer.py --mla-only --no-flashinfer --json $OUT/mla_table.json 2>&1 | grep -v Warn | tail -16
