"""Where the e4m3 MLA kernel's step time goes: mla_probe.py with probe macros compiled into the e4m3 path
(paged_mla_wg.cu: KVP_MLA_PROBE 1 the values warpgroups skip PV, 2 the scores warpgroup skips QK, both giving wrong
results and timing one side's share; W values warpgroups instead of limits.MLA_WG_E4M3_VALUE_WGS, B P buffers instead
of limits.MLA_WG_E4M3_P_BUFFERS).

python3 benchmarks/mla_e4m3_probe.py P[,W[,B]] [VARIANTS] [SHAPES]   (VARIANTS and SHAPES as mla_probe.py's)
"""
import sys

sys.path.insert(0, ".")
sys.path.insert(0, "benchmarks")
from kvplan.kernels import configs, limits  # noqa: E402

PROBE, _, REST = sys.argv.pop(1).partition(",")
WGS, _, PBUF = REST.partition(",")
if WGS:
    limits.MLA_WG_E4M3_VALUE_WGS, limits.MLA_WG_E4M3_THREADS = int(WGS), 128 * (1 + int(WGS))
if PBUF:
    limits.MLA_WG_E4M3_P_BUFFERS = int(PBUF)
_macros, _name = configs.MLAWgConfig.macros, configs.MLAWgConfig.name.fget
configs.MLAWgConfig.macros = lambda self: _macros(self) + ([("KVP_MLA_PROBE", PROBE)] if self.e4m3_mma else [])
configs.MLAWgConfig.name = property(lambda self: _name(self) + (f"_probe{PROBE}w{WGS}b{PBUF}" if self.e4m3_mma else ""))

import mla_probe  # noqa: E402

if __name__ == "__main__":
    mla_probe.main()
