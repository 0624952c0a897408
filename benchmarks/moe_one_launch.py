"""One MoE pairs-kernel call set for a profiler: gpt-oss-20b's routed experts (32 x mxfp4 [5760, 2880] +
[2880, 2880], top 4) at `tokens` tokens.     python3 benchmarks/moe_one_launch.py [tokens]"""
import sys

import torch

sys.path.insert(0, ".")
from kvplan.kernels.skinny import moe_pairs_plan  # noqa: E402

T = int(sys.argv[1]) if len(sys.argv) > 1 else 1
E, H, I, K = 32, 2880, 2880, 4
dev = "cuda"
w13 = (torch.randint(0, 256, (E, 2 * I, H // 2), dtype=torch.uint8, device=dev),
       torch.randint(119, 125, (E, 2 * I, H // 32), dtype=torch.uint8, device=dev))
w2 = (torch.randint(0, 256, (E, H, I // 2), dtype=torch.uint8, device=dev),
      torch.randint(119, 125, (E, H, I // 32), dtype=torch.uint8, device=dev))
plan = moe_pairs_plan(E, H, I, K, dtype=torch.bfloat16, weight_format="mxfp4", activation="silu")
x = torch.randn(T, H, dtype=torch.bfloat16, device=dev)
ids = torch.rand(T, E, device=dev).topk(K, dim=-1).indices
wts = torch.softmax(torch.rand(T, K, device=dev), -1)
for _ in range(3):
    plan.run(x, wts, ids, w13, w2)
torch.cuda.synchronize()
