"""`kvplan verify` with the router's matmul apart from the router kernel, as before session 65: the baseline of an
A/B against the fused router (kernels/router.py FusedRouterPlan). Every MoE layer's fused plan is withheld
(gpu/ffn.py MoE._fused_router_plan returns None), nothing else changes.

    python3 benchmarks/router_fused_ab.py verify openai/gpt-oss-20b -c 8192 -f json   # the baseline
    python3 -m kvplan verify openai/gpt-oss-20b -c 8192 -f json                       # the fused router
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kvplan.gpu.ffn import MoE  # noqa: E402

MoE._fused_router_plan = lambda self: None

if __name__ == "__main__":
    from kvplan.__main__ import entry

    entry()
