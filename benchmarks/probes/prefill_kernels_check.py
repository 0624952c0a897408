"""Small launches of the prefill kernels (deltanet_prefill.cu's five, moe_gather_sum.cu, ssd_prefill.cu's five), for
compute-sanitizer (memcheck, racecheck, synccheck):

    compute-sanitizer --tool racecheck python3 benchmarks/probes/prefill_kernels_check.py
"""

import sys

import torch

sys.path.insert(0, ".")
from kvplan.kernels.deltanet_prefill import conv_chunks, gated_norm, scan_states, solve_chunks  # noqa: E402
from kvplan.kernels.moe_gather_sum import gather_sum  # noqa: E402
from kvplan.kernels.ssd_prefill import causal_conv, ssd_chunks_kernel  # noqa: E402


def main() -> None:
    dev = "cuda"
    rows = torch.randn(2 * 150, 4 * 64 + 2 * 2 * 128 + 8, device=dev, dtype=torch.bfloat16)  # 2 prompts of 150
    conv = causal_conv(rows[:, :-8], torch.randn(rows.shape[1] - 8, 4, device=dev, dtype=torch.bfloat16), None, 150)
    xs, bs, cs = conv.split([4 * 64, 2 * 128, 2 * 128], dim=-1)
    ssd_chunks_kernel(xs.view(2, 150, 4, 64), torch.rand(2, 150, 4, device=dev) * 0.2, -torch.rand(4, device=dev),
                      bs.view(2, 150, 2, 128), cs.view(2, 150, 2, 128), torch.randn(4, device=dev))
    m = torch.randn(5, 2, 128, 128, device=dev) / 64
    states = torch.randn(6, 2, 128, 32, device=dev)
    scan_states(m, states)
    kc = torch.randn(3, 2, 64, 128, device=dev)
    u, w = solve_chunks(kc @ kc.transpose(-1, -2) / 128, kc, torch.randn(3, 2, 64, 96, device=dev),
                        (-torch.rand(3, 2, 64, device=dev)).cumsum(-1), torch.rand(3, 2, 64, device=dev))
    x = torch.randn(2 * 37, 3 * 128 + 8, device=dev, dtype=torch.bfloat16)[:, :3 * 128]
    q, k, v = conv_chunks(x, torch.randn(3 * 128, 4, device=dev, dtype=torch.bfloat16), 37, 1, 1, 0.1, 16)
    o = torch.randn(3, 2, 1, 16, 128, device=dev)
    z = torch.randn(2 * 37, 128, device=dev, dtype=torch.bfloat16)
    gated_norm(o, z, torch.ones(128, device=dev, dtype=torch.bfloat16), 2, 37, 1e-6)
    y = torch.randn(40, 64, device=dev, dtype=torch.bfloat16)
    out = gather_sum(y, torch.randperm(40, device=dev)[:30], torch.rand(10, 3, device=dev),
                     torch.randn(10, 64, device=dev, dtype=torch.bfloat16), torch.randn(10, 1, device=dev,
                                                                                          dtype=torch.bfloat16))
    torch.cuda.synchronize()
    print("ok", float(states.abs().sum() + u.abs().sum() + w.abs().sum()), float(q.abs().sum() + k.abs().sum()
                                                                                 + v.abs().sum()),
          float(out.float().abs().sum()))


if __name__ == "__main__":
    main()
