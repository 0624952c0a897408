"""The gather-sum kernel (moe_gather_sum.cu) inside a tiny MoE forward against torch's combine on the same tensors,
call by call: shapes, strides, dtypes and the largest difference (tests/test_verify_gpu.py's _run_tiny).

    python3 benchmarks/gather_sum_check.py nemotron_h_moe
"""

import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from kvplan.kernels import moe_gather_sum  # noqa: E402
from test_verify_gpu import _run_tiny  # noqa: E402

kernel = moe_gather_sum.gather_sum


def checked(y, where, weights, extra=None, gate=None, out=None):
    got = kernel(y, where, weights, extra, gate, out)
    t, k = weights.shape
    want = torch.bmm(weights[:, None, :].to(y.dtype), y.index_select(0, where).view(t, k, -1))[:, 0].float()
    if extra is not None:
        want = want + extra.float() * (torch.sigmoid(gate.float()).view(t, 1) if gate is not None else 1.0)
    diff = float((got.float() - want).abs().max() / want.abs().max().clamp_min(1e-30))
    print(f"tokens {t} k {k} y {tuple(y.shape)}{y.stride()} where {where.dtype}{tuple(where.shape)} weights "
          f"{weights.dtype}{weights.stride()} extra {None if extra is None else (tuple(extra.shape), extra.stride(), extra.dtype, extra.data_ptr() % 16)} "
          f"gate {None if gate is None else gate.shape}: max rel diff {diff:.2e}", flush=True)
    return got


moe_gather_sum.gather_sum = checked
for name in sys.argv[1:]:
    worst, _ = _run_tiny(name, False)
    print(f"{name}: worst {worst:.4f}")
