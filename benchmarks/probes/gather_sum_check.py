"""The gather-sum kernel (moe_gather_sum.cu) inside a tiny MoE forward against torch's combine on the same tensors,
call by call: shapes, strides, dtypes and the largest difference (tests/test_verify_gpu.py's _run_tiny). Then the
forward's error with the kernel launched but torch's result returned ("launch, torch's result"), with the kernel's
result cloned ("kernel's result, cloned"), and whether a returned result changed after the call.

    python3 benchmarks/probes/gather_sum_check.py nemotron_h_moe
"""

import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests"))

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
    shared = None if extra is None else (tuple(extra.shape), extra.stride(), extra.dtype, extra.data_ptr() % 16)
    print(f"tokens {t} k {k} y {tuple(y.shape)}{y.stride()} where {where.dtype}{tuple(where.shape)} weights "
          f"{weights.dtype}{weights.stride()} extra {shared} gate {None if gate is None else gate.shape}: "
          f"max rel diff {diff:.2e}", flush=True)
    return got


MODE = {"name": "kernel's result"}
KEPT = []


def variant(y, where, weights, extra=None, gate=None, out=None):
    got = kernel(y, where, weights, extra, gate, out)
    t, k = weights.shape
    want = torch.bmm(weights[:, None, :].to(y.dtype), y.index_select(0, where).view(t, k, -1))[:, 0]
    if extra is not None:
        want = want + extra * (torch.sigmoid(gate).view(t, 1) if gate is not None else 1)
    if MODE["name"] == "launch, torch's result":
        return want
    if MODE["name"] == "kernel's result, cloned":
        return got.clone()
    KEPT.append((got, got.clone()))
    return got


for name in sys.argv[1:]:
    moe_gather_sum.gather_sum = checked
    worst, _ = _run_tiny(name, False)
    print(f"{name}: worst {worst:.4f}")
    moe_gather_sum.gather_sum = variant
    for mode in ("kernel's result", "launch, torch's result", "kernel's result, cloned"):
        MODE["name"] = mode
        KEPT.clear()
        worst, _ = _run_tiny(name, False)
        changed = sum(not torch.equal(a, b) for a, b in KEPT)
        print(f"{name} {mode}: worst {worst:.4f}; returned results changed afterwards: {changed} of {len(KEPT)}",
              flush=True)
