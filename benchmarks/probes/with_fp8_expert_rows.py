"""Run another benchmark script with fp8 experts above the pair slots on the row-tile kernel (kvp_skinny_fp8_er)
instead of the k-split one, so both can be profiled in the same forward before one becomes the default (session 42
calls 1-2; the row tiles are the default since, so this changes nothing now, and is kept for those scripts):

    python3 benchmarks/probes/with_fp8_expert_rows.py benchmarks/forward_profile.py deepseek-ai/DeepSeek-V3 --tp 8 ...
"""

import runpy
import sys

import kvplan.kernels.skinny as skinny

_plain_plan = skinny.moe_pairs_plan


def _rows_plan(*args, expert_rows=None, **kwargs):
    if expert_rows is None and kwargs.get("weight_format") == "fp8":
        expert_rows = True
    return _plain_plan(*args, expert_rows=expert_rows, **kwargs)


if __name__ == "__main__":
    skinny.moe_pairs_plan = _rows_plan
    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__")
