"""Where verify's TTFT goes: one rank of a bundled model (dummy weights of its real shapes), the eager prefill of
one prompt of `tokens` tokens into a paged cache (as verify's `time_prefill` runs it), timed with CUDA events and
profiled with torch.profiler (GPU time per kernel name, launches, and the host time of the whole call).

    python3 benchmarks/prefill_profile.py MODEL [--tokens 8192] [--tp 1] [--top 20] [--chunk N] [--old-deltanet M]
                                                [--torch-deltanet] [--torch-combine] [--tf32]

`--chunk` sets the DeltaNet prefill's chunk length; `--old-deltanet M` takes `chunked_delta_rule` from module M
(an older copy, for an A/B on the same machine). `--torch-deltanet` (in session 33 call 1 `--torch-scan`, the scan
alone) / `--torch-combine` run the torch forms in place of the DeltaNet prefill kernels / the MoE gather-sum kernel
(their refusal path); `--tf32` lets every fp32 matmul use TF32 (session 33 call 1 measured what the chunked
DeltaNet's fp32 GEMMs gain by it; they have used TF32 since)."""

from __future__ import annotations

import argparse
import importlib
import sys
import time

import torch

sys.path.insert(0, ".")
sys.path.insert(0, "benchmarks")
from forward_profile import BLOCK, build, kernel_rows  # noqa: E402
from kvplan.gpu import deltanet  # noqa: E402
from kvplan.gpu.generate import prefill  # noqa: E402
from kvplan.gpu.timing import time_replays  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--tokens", type=int, default=8192)
    ap.add_argument("--tp", type=int, default=1)
    ap.add_argument("--top", type=int, default=20)
    ap.add_argument("--chunk", type=int)
    ap.add_argument("--old-deltanet")
    ap.add_argument("--torch-deltanet", "--torch-scan", dest="torch_deltanet", action="store_true")
    ap.add_argument("--torch-combine", action="store_true")
    ap.add_argument("--tf32", action="store_true")
    a = ap.parse_args()
    if a.torch_deltanet:
        from kvplan.kernels import deltanet_prefill

        deltanet_prefill.scan_supported = lambda *args: "--torch-deltanet"
        deltanet_prefill.conv_supported = lambda *args: "--torch-deltanet"
    if a.torch_combine:
        from kvplan.kernels import moe_gather_sum

        moe_gather_sum.gather_sum_supported = lambda *args: "--torch-combine"
    torch.backends.cuda.matmul.allow_tf32 = a.tf32
    if a.chunk:
        deltanet.CHUNK = a.chunk
    if a.old_deltanet:
        deltanet.chunked_delta_rule = importlib.import_module(a.old_deltanet).chunked_delta_rule
    arch, _, model, tables = build(a.model, a.tp, 1, a.tokens)
    host = {g: [t[0].tolist()] for g, t in tables.items()}
    slots = torch.zeros(1, dtype=torch.int64, device="cuda")
    ids = torch.randint(0, arch.vocab, (1, a.tokens), device="cuda")

    def run():
        return prefill(model, ids, host, slots).argmax(-1)

    timing = time_replays(run, reps=3, warmup=1)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        run()
        torch.cuda.synchronize()
    host_ms = (time.perf_counter() - t0) * 1e3
    table = kernel_rows(prof)
    print(f"{a.model} tp {a.tp} prefill of {a.tokens:,} tokens (chunk {deltanet.CHUNK}, "
          f"{'old' if a.old_deltanet else 'current'} DeltaNet, DeltaNet kernels {'off' if a.torch_deltanet else 'on'}, "
          f"combine {'torch' if a.torch_combine else 'kernel'}, tf32 {a.tf32}): {timing['ms']:.1f} ms "
          f"(min {timing['ms_min']:.1f}), "
          f"GPU kernel time {sum(r[2] for r in table) / 1e3:.1f} ms in {sum(r[1] for r in table):,.0f} launches, "
          f"profiled call {host_ms:.1f} ms (block {BLOCK})")
    for name, count, us in table[:a.top]:
        print(f"{us / 1e3:9.2f} ms {count:7.0f}  {name[:110]}")


if __name__ == "__main__":
    main()
