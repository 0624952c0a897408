# session 24 call 4: the e4m3-MMA MLA path (fp8 latents, 16 heads): GPU tests, then DRAM vs L2 time
set -x
python3 -m pytest -x -q tests/test_kernel_mla_gpu.py -k "e4m3 or fp8_q_beyond or long_context" 2>&1 | tail -15
python3 benchmarks/mla_probe.py "wgmma=True;wgmma=True e4m3_mma=True;wgmma=True e4m3_mma=True num_splits=8;wgmma=True e4m3_mma=True num_splits=2" "16h fp8 B32 8K" 2>&1 | grep -v Warn
