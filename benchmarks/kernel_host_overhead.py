"""Host time of one `paged_decode_attention` call from Python, and where it goes.

    python benchmarks/kernel_host_overhead.py

Eager callers (and kernel.md's per-call timing) pay this on every call; inside a CUDA graph it is gone.
Times a B=1 4K Llama-3-8B layer call (GPU time ~13 µs, so the loop is host-bound), its parts, and prints
a cProfile of 300 calls.
"""

import cProfile
import pstats
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kvplan.kernels import paged_decode as pd  # noqa: E402
from kvplan.kernels import paged_decode_attention  # noqa: E402


def per_call_us(fn, n=500):
    for _ in range(20):
        fn()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(n):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t) / n * 1e6


def main():
    dev = torch.device("cuda")
    B, ctx, Hq, Hkv, D, BS = 1, 4096, 32, 8, 128, 16
    nb = B * ctx // BS
    q = torch.randn(B, Hq, D, device=dev, dtype=torch.bfloat16)
    k = torch.randn(nb, BS, Hkv, D, device=dev, dtype=torch.bfloat16)
    v = torch.randn_like(k)
    bt = torch.randperm(nb, device=dev, dtype=torch.int32).view(B, -1)
    sl = torch.full((B,), ctx, dtype=torch.int32, device=dev)
    out = torch.empty_like(q)
    kc = k[bt[0].long()].reshape(1, ctx, Hkv, D).transpose(1, 2).contiguous()
    vc = v[bt[0].long()].reshape(1, ctx, Hkv, D).transpose(1, 2).contiguous()
    print(torch.cuda.get_device_name(0), "torch", torch.__version__)
    rows = [
        ("call, defaults (table checked: one sync)", lambda: paged_decode_attention(q, k, v, bt, sl)),
        ("call, check_block_ids=False, out=", lambda: paged_decode_attention(q, k, v, bt, sl, out=out,
                                                                            check_block_ids=False)),
        ("torch SDPA on the contiguous cache", lambda: F.scaled_dot_product_attention(q.unsqueeze(2), kc, vc,
                                                                                      enable_gqa=True)),
        ("torch.empty of the split partials", lambda: torch.empty((B, Hq, 16, D), dtype=torch.float32, device=dev)),
    ]
    a = pd.validate(q, k, v, bt, sl, None, 1.0, 1.0, None, require_cuda=True)
    d = pd._device(0)
    launch, ld = pd.plan(a, d, ctx)
    rows += [
        ("validate()", lambda: pd.validate(q, k, v, bt, sl, None, 1.0, 1.0, None, require_cuda=True)),
        ("check_table() (sync)", lambda: pd.check_table(a, bt, sl)),
        ("plan()", lambda: pd.plan(a, d, ctx)),
        ("_launch() (both kernels)", lambda: pd._launch(a, launch, ld, q, k, v, bt, sl, out, False, True)),
    ]
    for name, fn in rows:
        print(f"{name:45s} {per_call_us(fn):8.1f} us", flush=True)
    prof = cProfile.Profile()
    fn = rows[1][1]
    prof.enable()
    for _ in range(300):
        fn()
    prof.disable()
    torch.cuda.synchronize()
    pstats.Stats(prof).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
