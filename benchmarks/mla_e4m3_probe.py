"""Where the e4m3 MLA kernel's step time goes: mla_probe.py with the probe macro KVP_MLA_PROBE=N compiled into the
e4m3 path (paged_mla_wg.cu: 1 the values warpgroup skips PV, 2 the scores warpgroup skips QK, 3 QK in two
accumulator chains; 1 and 2 give wrong results and time one warpgroup's share).

python3 benchmarks/mla_e4m3_probe.py N [VARIANTS] [SHAPES]   (arguments after N as mla_probe.py's)
"""
import sys

sys.path.insert(0, ".")
sys.path.insert(0, "benchmarks")
from kvplan.kernels import configs  # noqa: E402

PROBE = sys.argv.pop(1)
_macros, _name = configs.MLAWgConfig.macros, configs.MLAWgConfig.name.fget
configs.MLAWgConfig.macros = lambda self: _macros(self) + ([("KVP_MLA_PROBE", PROBE)] if self.e4m3_mma else [])
configs.MLAWgConfig.name = property(lambda self: _name(self) + (f"_probe{PROBE}" if self.e4m3_mma else ""))

import mla_probe  # noqa: E402

if __name__ == "__main__":
    mla_probe.main()
