# session 24 call 3: MLA 16 heads, DRAM vs L2-resident per path; the warpgroup kernel's copy pattern alone
set -x
python3 benchmarks/mla_probe.py "wgmma=True;wgmma=True num_splits=8;wgmma=True num_splits=2" \
  "16h B32 8K,16h B8 32K,16h B128 4K,16h fp8 B32 8K" 2>&1 | grep -v Warn
python3 benchmarks/probes/s24_walk_probe.py 2>&1 | grep -v Warn
