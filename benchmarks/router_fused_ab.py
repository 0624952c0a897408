"""kvplan with the router's matmul apart from the router kernel, as before session 65: the baseline of an A/B
against the fused router (kernels/router.py FusedRouterPlan). Every MoE layer's fused plan is withheld
(gpu/ffn.py MoE._fused_router_plan returns None), nothing else changes.

    python3 benchmarks/router_fused_ab.py verify openai/gpt-oss-20b -c 8192 -f json   # kvplan's command line
    python3 benchmarks/router_fused_ab.py benchmarks/forward_profile.py openai/gpt-oss-20b --batch 1   # a script
"""

import runpy
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kvplan.gpu.ffn import MoE  # noqa: E402

MoE._fused_router_plan = lambda self: None

if __name__ == "__main__":
    if sys.argv[1:2] and sys.argv[1].endswith(".py"):
        sys.argv = sys.argv[1:]
        runpy.run_path(sys.argv[0], run_name="__main__")
    else:
        from kvplan.__main__ import entry

        entry()
