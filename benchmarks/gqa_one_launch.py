"""One paged-decode launch set for a profiler: Llama-3-8B layout (32 q / 8 kv heads, head_dim 128, block 16,
shuffled pages), default launch.     python3 benchmarks/gqa_one_launch.py [batch] [context] [head_dim]"""
import sys

import torch

sys.path.insert(0, ".")
from kvplan.kernels import paged_decode_plan  # noqa: E402

DEV = torch.device("cuda")
B = int(sys.argv[1]) if len(sys.argv) > 1 else 64
ctx = int(sys.argv[2]) if len(sys.argv) > 2 else 8192
D = int(sys.argv[3]) if len(sys.argv) > 3 else 128
Hq, Hkv, BS = (32, 8, 16) if D == 128 else (32, 8, 16)
nb = B * ctx // BS
k = torch.randn(nb, BS, Hkv, D, device=DEV).to(torch.bfloat16)
v = torch.randn(nb, BS, Hkv, D, device=DEV).to(torch.bfloat16)
bt = torch.randperm(nb, device=DEV).to(torch.int32).view(B, ctx // BS).contiguous()
q = torch.randn(B, Hq, D, device=DEV).to(torch.bfloat16)
sl = torch.full((B,), ctx, dtype=torch.int32, device=DEV)
plan = paged_decode_plan(Hq, Hkv, D, BS, torch.bfloat16, torch.bfloat16, B, ctx // BS, DEV)
print(plan.launch_for(B))
for _ in range(3):
    plan.run(q, k, v, bt, sl)
torch.cuda.synchronize()
