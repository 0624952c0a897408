"""One MoE pairs-kernel call set for a profiler: a model's routed experts at `tokens` tokens (the up launch, then
the down launch, then the combine; three times).

    python3 benchmarks/probes/moe_one_launch.py [tokens] [gpt-oss | qwen3-next | dsv2-lite]

gpt-oss-20b: 32 x mxfp4 [5760, 2880] + [2880, 2880], top 4; Qwen3-Next-80B at tp 2: 512 x bf16 [512, 2048] +
[2048, 256], top 10; DeepSeek-V2-Lite: 64 x bf16 [2816, 2048] + [2048, 1408], top 6."""
import sys

import torch

sys.path.insert(0, ".")
from kvplan.kernels.skinny import moe_pairs_plan  # noqa: E402

T = int(sys.argv[1]) if len(sys.argv) > 1 else 1
MODEL = sys.argv[2] if len(sys.argv) > 2 else "gpt-oss"
E, H, I, K, FMT = {"gpt-oss": (32, 2880, 2880, 4, "mxfp4"), "qwen3-next": (512, 2048, 256, 10, "bf16"),
                   "dsv2-lite": (64, 2048, 1408, 6, "bf16")}[MODEL]
dev = "cuda"
if FMT == "mxfp4":
    w13 = (torch.randint(0, 256, (E, 2 * I, H // 2), dtype=torch.uint8, device=dev),
           torch.randint(119, 125, (E, 2 * I, H // 32), dtype=torch.uint8, device=dev))
    w2 = (torch.randint(0, 256, (E, H, I // 2), dtype=torch.uint8, device=dev),
          torch.randint(119, 125, (E, H, I // 32), dtype=torch.uint8, device=dev))
else:
    w13 = torch.randn(E, 2 * I, H, dtype=torch.bfloat16, device=dev) * H ** -0.5
    w2 = torch.randn(E, H, I, dtype=torch.bfloat16, device=dev) * I ** -0.5
plan = moe_pairs_plan(E, H, I, K, dtype=torch.bfloat16, weight_format=FMT, activation="silu")
x = torch.randn(T, H, dtype=torch.bfloat16, device=dev)
ids = torch.rand(T, E, device=dev).topk(K, dim=-1).indices
wts = torch.softmax(torch.rand(T, K, device=dev), -1)
for _ in range(3):
    plan.run(x, wts, ids, w13, w2)
torch.cuda.synchronize()
