"""Small launches of session 34's prefill glue, for compute-sanitizer (memcheck, racecheck, synccheck): the gated
activation (gated_act.cu), both RoPE + cache entries (one value and eight values a thread, GQA and MLA, decode and
prefill forms, slots of -1, fp8 caches) and every entry of the add + RMS norm (norm.cu):

    compute-sanitizer --tool memcheck python3 benchmarks/probes/prefill_glue_check.py
"""

import sys

import torch

sys.path.insert(0, ".")
from kvplan.gpu.ops import Rope  # noqa: E402
from kvplan.kernels.gated_act import gated_act, ungated_act  # noqa: E402
from kvplan.kernels.norm import AddRmsNormPlan  # noqa: E402
from kvplan.kernels.rope_cache import MlaRopeCachePlan, RopeCachePlan  # noqa: E402


def main() -> None:
    dev, bf = "cuda", torch.bfloat16
    total = 0.0
    for name in ("silu", "gelu_tanh"):
        h = torch.randn(37, 2 * 72 + 16, device=dev, dtype=bf)[:, :2 * 72]
        total += float(gated_act(h, name).float().abs().sum())
    total += float(ungated_act(torch.randn(37, 88, device=dev, dtype=bf)[:, :72], "relu2").float().sum())
    t = 21
    cos, sin = {}, {}
    for rot in (64, 24):
        cos[rot], sin[rot] = Rope(rot, dev, bf).tables(torch.arange(t, device=dev), 10000.0)
    slots = torch.randperm(8 * 16, device=dev)[:t]
    slots[::3] = -1
    for d, rot, fp8, shift in ((64, 64, False, 0), (64, 64, True, 0), (72, 24, False, 0), (64, 64, True, 1)):
        cdt = torch.float8_e4m3fn if fp8 else bf
        qkv = torch.randn(t, 6 * d + shift, device=dev, dtype=bf)[:, shift:]
        q, k, v = (p.view(t, -1, d) for p in qkv.split([4 * d, d, d], dim=-1))
        kc, vc = (torch.zeros(8, 16, 1, d, device=dev, dtype=cdt) for _ in range(2))
        plan = RopeCachePlan(4, 1, d, rot, "bfloat16", fp8)
        total += float(plan.run(q, k, v, cos[rot], sin[rot], kc, vc, slots).float().abs().sum())
        q2, k2 = plan.run(q, k, v, cos[rot], sin[rot], None, None, None, keys_out=True)
        total += float(q2.float().abs().sum() + k2.float().abs().sum() + kc.float().abs().sum())
    for rot, fp8 in ((64, False), (24, True)):
        cdt = torch.float8_e4m3fn if fp8 else bf
        q = torch.randn(t, 3, 128 + rot, device=dev, dtype=bf)
        kv = torch.randn(t, 96 + rot, device=dev, dtype=bf)
        cache = torch.zeros(8, 16, 96 + rot, device=dev, dtype=cdt)
        plan = MlaRopeCachePlan(3, 96, rot, "bfloat16", fp8)
        w = torch.ones(96, device=dev, dtype=bf)
        total += float(plan.run(q, kv, w, 1e-6, cos[rot], sin[rot], cache, slots).float().abs().sum())
        whole, latent, k_pe = plan.run(q, kv, w, 1e-6, cos[rot], sin[rot], cache, slots, prefill=True)
        total += float(whole.float().abs().sum() + latent.float().abs().sum() + k_pe.float().abs().sum())
    for hidden in (12, 2048, 2880, 8192, 16384):
        x, h = (torch.randn(3, hidden, device=dev, dtype=bf) for _ in range(2))
        s, y = AddRmsNormPlan(hidden, "bfloat16").run(x, h, torch.ones(hidden, device=dev, dtype=bf), 1e-6)
        total += float(y.float().abs().sum())
    torch.cuda.synchronize()
    print("ok", total)


if __name__ == "__main__":
    main()
