# session 25 call 7: the e4m3 MLA kernel at its chosen launch (one values warpgroup, two P buffers): MLA GPU tests;
# Nsight Compute warp-state sampling of its B32 8K launch (results under $OUT/ncu); the MLA rows of the table
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
python3 -m pytest -q tests/test_kernel_mla_gpu.py tests/test_kernel_mla_launch.py 2>&1 | tail -2
NCU_OUT=$OUT/ncu NCU_CLOCK=none bash benchmarks/ncu_kernel_device.sh kvp_mla_wg benchmarks/probes/mla_one_launch.py - - fp8
head -30 $OUT/ncu/stall_reasons.txt; head -45 $OUT/ncu/top_stalls.txt
export PYTHONPATH=$PWD
python3 benchmarks/kernel_vs_flashinfer.py --mla-only --no-flashinfer --json $OUT/mla_table.json 2>&1 | grep -v Warn | tail -14
