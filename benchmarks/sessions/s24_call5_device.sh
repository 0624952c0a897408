# session 24 call 5: every MLA GPU test with the e4m3 path in; the fp8 16-head shapes per path
set -x
python3 -m pytest -q tests/test_kernel_mla_gpu.py 2>&1 | tail -4
python3 benchmarks/mla_probe.py "wgmma=True;wgmma=True e4m3_mma=True" \
  "16h fp8 B1 4K,16h fp8 B1 32K,16h fp8 B8 32K,16h fp8 B32 8K,16h fp8 B128 4K,16h fp8 B64 16K,8h fp8 B32 8K" 2>&1 | grep -v Warn
