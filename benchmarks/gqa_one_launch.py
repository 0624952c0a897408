"""One paged-decode launch set for a profiler: Llama-3-8B layout by default (32 q / 8 kv heads, head_dim 128,
block 16, shuffled pages), default launch; MQA and other groups through the head counts, fp8 through the dtype.
    python3 benchmarks/gqa_one_launch.py [batch] [context] [head_dim] [q_heads] [kv_heads] [bf16|fp8] ["k=v ..."]
The last argument, kernel options as kernel_vs_flashinfer.py's --variants spells one (e.g. "heads_in_m=True").
KVP_ORDERED_PAGES=1: block tables in address order instead of shuffled."""
import os
import sys

import torch

sys.path.insert(0, ".")
sys.path.insert(0, "benchmarks")
from kernel_vs_flashinfer import parse_variants  # noqa: E402
from kvplan.kernels import paged_decode_plan  # noqa: E402

DEV = torch.device("cuda")
args = sys.argv[1:] + [None] * 7
B = int(args[0] or 64)
ctx = int(args[1] or 8192)
D = int(args[2] or 128)
Hq, Hkv, BS = int(args[3] or 32), int(args[4] or 8), 16
kv_dtype = torch.float8_e4m3fn if args[5] == "fp8" else torch.bfloat16
nb = B * ctx // BS
k = torch.randn(nb, BS, Hkv, D, device=DEV).to(kv_dtype)
v = torch.randn(nb, BS, Hkv, D, device=DEV).to(kv_dtype)
order = torch.arange(nb, device=DEV) if os.environ.get("KVP_ORDERED_PAGES") else torch.randperm(nb, device=DEV)
bt = order.to(torch.int32).view(B, ctx // BS).contiguous()
q = torch.randn(B, Hq, D, device=DEV).to(torch.bfloat16)
sl = torch.full((B,), ctx, dtype=torch.int32, device=DEV)
plan = paged_decode_plan(Hq, Hkv, D, BS, kv_dtype, torch.bfloat16, B, ctx // BS, DEV,
                         options=parse_variants(args[6] or "")[-1])
print(plan.launch_for(B))
for _ in range(3):
    plan.run(q, k, v, bt, sl)
torch.cuda.synchronize()
