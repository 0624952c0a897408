"""The GQA split merge fused into each group's last CTA (KernelOptions(fuse_merge=True)) against the merge launch,
on the standing table's split shapes, block tables shuffled and sorted once (plan.sorted_block_table); the plans
alternate on the same tensors (kernel_vs_flashinfer.time_alternating), CUDA graphs, µs.

    python3 benchmarks/probes/fuse_merge_ab.py
"""

from __future__ import annotations

import sys

import torch

sys.path.insert(0, ".")
sys.path.insert(0, "benchmarks")
import kernel_vs_flashinfer as kvf  # noqa: E402

from kvplan.kernels import KernelOptions, paged_decode_plan, probes  # noqa: E402

DEV = torch.device("cuda")
BF, F8 = torch.bfloat16, torch.float8_e4m3fn
SHAPES = [("B64 8K", 64, 8192, kvf.LLAMA, BF), ("B16 32K", 16, 32768, kvf.LLAMA, BF),
          ("B32 4K", 32, 4096, kvf.LLAMA, BF), ("B8 8K", 8, 8192, kvf.LLAMA, BF),
          ("B1 128K", 1, 131072, kvf.LLAMA, BF), ("64q/4kv B16 16K", 16, 16384, (64, 4, 128), BF),
          ("head_dim 64 B16 32K", 16, 32768, (32, 8, 64), BF), ("fp8 B64 8K", 64, 8192, kvf.LLAMA, F8),
          ("fp8 B16 32K", 16, 32768, kvf.LLAMA, F8)]


def main():
    read = probes.read_bandwidth().bytes_per_s
    l2 = torch.cuda.get_device_properties(DEV).L2_cache_size
    print(f"# {torch.cuda.get_device_name()}, read {read / 1e12:.3f} TB/s; µs, two alternating rounds\n"
          "| shape (splits) | table | merge launch | fused | fused / launch | fused rel err vs launch |\n"
          "|---|---|---|---|---|---|")
    for label, B, ctx, (hq, hkv, d), kvd in SHAPES:
        kv_bytes, copies, k, v, bts, qs, outs, sl = kvf.gqa_tensors(B, ctx, hq, hkv, d, kvd, l2)
        plans = {"launch": paged_decode_plan(hq, hkv, d, 16, kvd, BF, B, ctx // 16, DEV),
                 "fused": paged_decode_plan(hq, hkv, d, 16, kvd, BF, B, ctx // 16, DEV,
                                            options=KernelOptions(fuse_merge=True))}
        sorted_bts = [plans["launch"].sorted_block_table(bt, sl) for bt in bts]
        a = plans["launch"].run(qs[0], k, v, bts[0], sl).float()
        err = kvf.rel(plans["fused"].run(qs[0], k, v, bts[0], sl), a)
        for name, tables in (("shuffled", bts), ("sorted", sorted_bts)):
            ts = kvf.time_alternating(plans, qs, k, v, tables, sl, outs)
            m, f = sum(ts["launch"]) / 2, sum(ts["fused"]) / 2
            print(f"| {label} ({plans['launch'].launch_for(B).splits}) | {name} | "
                  f"{' / '.join(f'{t:.1f}' for t in ts['launch'])} | {' / '.join(f'{t:.1f}' for t in ts['fused'])} | "
                  f"{f / m:.3f} | {err:.1e} |", flush=True)
        del k, v, qs, outs, bts, sorted_bts
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
