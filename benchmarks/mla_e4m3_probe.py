"""Where the e4m3 MLA kernel's step time goes: mla_probe.py with probe macros compiled into the e4m3 path
(paged_mla_wg.cu: KVP_MLA_PROBE 1 the values warpgroups skip PV, 2 the scores warpgroup skips QK, both giving wrong
results and timing one side's share; W values warpgroups instead of limits.MLA_WG_E4M3_VALUE_WGS).

python3 benchmarks/mla_e4m3_probe.py P[,W] [VARIANTS] [SHAPES]   (VARIANTS and SHAPES as mla_probe.py's)
"""
import sys

sys.path.insert(0, ".")
sys.path.insert(0, "benchmarks")
from kvplan.kernels import configs, limits  # noqa: E402

PROBE, _, WGS = sys.argv.pop(1).partition(",")
if WGS:
    limits.MLA_WG_E4M3_VALUE_WGS, limits.MLA_WG_E4M3_THREADS = int(WGS), 128 * (1 + int(WGS))
_macros, _name = configs.MLAWgConfig.macros, configs.MLAWgConfig.name.fget
configs.MLAWgConfig.macros = lambda self: _macros(self) + ([("KVP_MLA_PROBE", PROBE)] if self.e4m3_mma else [])
configs.MLAWgConfig.name = property(lambda self: _name(self) + (f"_probe{PROBE}w{WGS}" if self.e4m3_mma else ""))

import mla_probe  # noqa: E402

if __name__ == "__main__":
    mla_probe.main()
