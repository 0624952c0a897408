"""Block-scaled fp8 pieces one by one on the GPU against float64 (a diagnostic for session 40): the group
quantisation kernel against its torch reference (where they differ), verify's Matmul.block at decode and prefill
row counts (the skinny kernel's fp8 form, the quantisation + cuBLAS form), and the tiny DeepSeek-V3 fp8 model's
layers compared with the CPU forward on the same weights.

    python3 benchmarks/probes/block_fp8_check.py
"""

from __future__ import annotations

import torch

from kvplan.gpu import fp8
from kvplan.gpu.ops import Matmul


def quant_diff():
    from kvplan.kernels.fp8_quant import fp8_group_quant, group_quant_reference

    g = torch.Generator(device="cuda").manual_seed(0)
    for t, k in ((1, 128), (1, 7168), (5, 7168), (300, 7168)):
        x = (torch.randn(t, k, device="cuda", generator=g) * 3).bfloat16()
        q, s = fp8_group_quant(x, rows=max(t, 16))
        wq, ws = group_quant_reference(x, rows=max(t, 16))
        dq = (q.view(torch.uint8) != wq.view(torch.uint8)).nonzero()
        ds = (s != ws).nonzero()
        print(f"quant t={t} k={k}: {len(dq)} q bytes differ, {len(ds)} scales differ")
        for r, c in dq[:4].tolist():
            print(f"   q[{r},{c}] kernel {q.view(torch.uint8)[r, c].item()} ref {wq.view(torch.uint8)[r, c].item()} "
                  f"x {x[min(r, t - 1), c].item():.6g} s kernel {s[r, c // 128].item():.6g} ref "
                  f"{ws[r, c // 128].item():.6g}")
        for r, c in ds[:4].tolist():
            print(f"   s[{r},{c}] kernel {s[r, c].item():.6g} ref {ws[r, c].item():.6g}")


def block_weight(n, k, gen):
    q = (torch.randn(n, k, device="cuda", generator=gen) * 16).clamp(-448, 448).to(fp8.E4M3)
    s = torch.rand(fp8.block_rows(n), fp8.block_rows(k), device="cuda", generator=gen) * 2e-3 + 1e-3
    return q, s


def matmul_check():
    gen = torch.Generator(device="cuda").manual_seed(1)
    mm = Matmul()
    for n, k in ((704, 128), (512, 128), (128, 256), (2112, 7168), (7168, 2048)):
        q, s = block_weight(n, k, gen)
        mm.register_block(q, s)
        ref_w = fp8.dequantize_blocks(q, s, torch.float64)
        for t in (1, 2, 16, 17, 37):
            x = torch.randn(t, k, device="cuda", generator=gen).bfloat16()
            got = mm(x, q).double()
            want = x.double() @ ref_w.t()
            err = float((got - want).abs().max() / want.abs().max())
            plan = mm.block_plans.get((n, k))
            form = "skinny" if t <= 16 and not isinstance(plan, str) and plan is not None else "cuBLAS"
            print(f"block {n}x{k} t={t} ({form}): rel err {err:.3e}" + (f" plan refused: {plan}" if
                                                                          isinstance(plan, str) else ""))


def main():
    print(torch.__version__, torch.cuda.get_device_name())
    quant_diff()
    matmul_check()


if __name__ == "__main__":
    main()
