"""Which block-scaled fp8 matmul torch offers on this GPU, and how fast (DeepSeek-V3's 128x128 weight blocks and
1x128 activation groups, vLLM's W8A8 block-fp8 linear). Prints, per API and scale layout, whether it runs and its
error against the product of the dequantised operands; then graph-timed products over DeepSeek-V3's per-rank
shapes at TP 8 against bf16 F.linear over the same matrix and a dequantise-then-F.linear form.

    python3 benchmarks/probes/block_fp8_probe.py
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

E4M3 = torch.float8_e4m3fn
BLOCK = 128
SHAPES = {"q_a+kv_a": (2112, 7168), "q_b": (3072, 1536), "o": (7168, 2048), "mlp gate_up": (4608, 7168),
          "mlp down": (7168, 2304), "shared gate_up": (512, 7168), "shared down": (7168, 256)}
TOKENS = (1, 4, 16, 64, 512, 8192)


def quant_groups(x):
    """x [M, K] -> (e4m3 [M, K], fp32 scales [M, K/128]): per token, per 128 columns."""
    m, k = x.shape
    g = x.float().view(m, k // BLOCK, BLOCK)
    s = g.abs().amax(-1).clamp_min(1e-12) / 448.0
    return (g / s[..., None]).to(E4M3).view(m, k), s


def weight(n, k, dev):
    w = torch.randn(n, k, device=dev) * k ** -0.5
    rows, cols = -(-n // BLOCK), k // BLOCK
    pad = torch.zeros(rows * BLOCK, k, device=dev)
    pad[:n] = w
    s = pad.view(rows, BLOCK, cols, BLOCK).abs().amax((1, 3)).clamp_min(1e-12) / 448.0
    q = (pad.view(rows, BLOCK, cols, BLOCK) / s[:, None, :, None]).to(E4M3).view(rows * BLOCK, k)[:n].contiguous()
    return q, s


def dequant_w(q, s):
    n, k = q.shape
    rows = s.shape[0]
    full = torch.zeros(rows * BLOCK, k, device=q.device)
    full[:n] = q.float()
    return (full.view(rows, BLOCK, -1, BLOCK) * s[:, None, :, None]).view(rows * BLOCK, k)[:n]


def attempts(xq, xs, wq, ws):
    """(label, thunk) for each API / layout tried."""
    from torch.nn.functional import ScalingType

    col = torch.empty(xs.shape[1], xs.shape[0], device=xs.device).t()  # strides (1, M), M = 1 included
    col.copy_(xs)
    a_layouts = {"sa col-major": col}
    b_layouts = {"sb [K/128,N/128] view": ws.t()}
    out = []
    for an, sa in a_layouts.items():
        for bn, sb in b_layouts.items():
            out.append((f"F.scaled_mm {an}, {bn}", lambda sa=sa, sb=sb: F.scaled_mm(
                xq, wq.t(), sa, ScalingType.BlockWise1x128, sb, ScalingType.BlockWise128x128,
                output_dtype=torch.bfloat16)))
            out.append((f"torch._scaled_mm {an}, {bn}", lambda sa=sa, sb=sb: torch._scaled_mm(
                xq, wq.t(), sa, sb, out_dtype=torch.bfloat16)))
    return out


def graph_time(fn, reps=50):
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        for _ in range(3):
            fn()
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for _ in range(reps):
            fn()
    g.replay()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(5):
        g.replay()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) * 1000 / (5 * reps)


def main():
    dev = torch.device("cuda")
    torch.manual_seed(0)
    print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name())
    works = {}
    for m in (1, 2, 3, 8, 16, 256):
        n, k = 2112, 7168
        wq, ws = weight(n, k, dev)
        x = torch.randn(m, k, device=dev, dtype=torch.bfloat16)
        xq, xs = quant_groups(x)
        ref = (xq.float().view(m, -1, BLOCK) * xs[..., None]).view(m, k) @ dequant_w(wq, ws).t()
        for label, fn in attempts(xq, xs, wq, ws):
            try:
                y = fn()
                torch.cuda.synchronize()
                err = ((y.float() - ref).abs().max() / ref.abs().max()).item()
                print(f"M={m} {label}: runs, max err / max {err:.2e}")
                if err < 2e-2:
                    works.setdefault(label, []).append(m)
            except Exception as exc:  # noqa: BLE001 - the probe reports every refusal
                print(f"M={m} {label}: {type(exc).__name__}: {str(exc).splitlines()[0][:160]}")
    print("working:", works)
    good = [lbl for lbl, ms in works.items() if len(ms) == 6]
    if not good:
        print("no block-scaled API ran at every M")
    read = None
    try:
        buf = torch.empty(2 ** 31, dtype=torch.uint8, device=dev)
        t = graph_time(lambda: buf.view(torch.int64).sum(), reps=5)
        read = buf.numel() / t / 1e6
        del buf
        print(f"read bandwidth (int64 sum over 2 GiB): {read:.3f} TB/s")
    except Exception as exc:  # noqa: BLE001
        print("read probe failed", exc)
    print(f"{'shape':>16} {'M':>5} | {'bf16 F.linear us':>16} | {'block fp8 us':>12} {'% read':>7} | "
          f"{'quant us':>8} | {'dequant+linear us':>17}")
    for name, (n, k) in SHAPES.items():
        wq, ws = weight(n, k, dev)
        wb = dequant_w(wq, ws).bfloat16()
        scratch = torch.empty_like(wb)
        for m in TOKENS:
            x = torch.randn(m, k, device=dev, dtype=torch.bfloat16)
            xq, xs = quant_groups(x)
            row = [graph_time(lambda: F.linear(x, wb))]
            if good:
                fn = dict(attempts(xq, xs, wq, ws))[good[0]]
                row.append(graph_time(fn))
            else:
                row.append(float("nan"))
            row.append(graph_time(lambda: quant_groups(x)))

            def deq():
                scratch.copy_(wq)
                rows = ws.shape[0]
                if n == rows * BLOCK:
                    scratch.view(rows, BLOCK, k // BLOCK, BLOCK).mul_(ws[:, None, :, None])
                return F.linear(x, scratch)
            row.append(graph_time(deq))
            pct = (n * k + ws.numel() * 4) / row[1] / 1e6 / read * 100 if read and row[1] == row[1] else float("nan")
            print(f"{name:>16} {m:>5} | {row[0]:16.1f} | {row[1]:12.1f} {pct:6.1f}% | {row[2]:8.1f} | {row[3]:17.1f}")
    e, i, h = 256, 256, 7168
    w13 = torch.randn(e, 2 * i, h, device=dev).to(E4M3)
    s13 = torch.rand(e, 2 * i // BLOCK, h // BLOCK, device=dev)
    out = torch.empty(e, 2 * i, h, device=dev, dtype=torch.bfloat16)

    def expert_dequant():
        out.copy_(w13)
        out.view(e, 2 * i // BLOCK, BLOCK, h // BLOCK, BLOCK).mul_(s13[:, :, None, :, None])
    us = graph_time(expert_dequant, 5)
    print(f"256 experts' w13 [256, 512, 7168] dequantised in torch (copy_ + mul_): {us:.0f} us")


if __name__ == "__main__":
    main()
