"""One MLA decode launch set (16 heads, B32 8K) for a profiler:
python3 benchmarks/probes/mla_one_launch.py [tokens|-] [stages|-] [fp8]   ("-": the default; fp8: fp8 e4m3 latents)"""
import torch, sys
sys.path.insert(0, ".")
from kvplan.kernels import paged_mla_decode_plan
DEV = torch.device("cuda")
B, ctx, H = 32, 8192, 16
tokens = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else None
stages = int(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2].isdigit() else None
kvd = torch.float8_e4m3fn if sys.argv[3:] == ["fp8"] else torch.bfloat16
nb = B * ctx // 64
lat = torch.randn(nb, 64, 576, device=DEV).to(kvd)
bt = torch.randperm(nb, device=DEV).to(torch.int32).view(B, ctx // 64).contiguous()
qn = torch.randn(B, H, 512, device=DEV).to(torch.bfloat16)
qr = torch.randn(B, H, 64, device=DEV).to(torch.bfloat16)
sl = torch.full((B,), ctx, dtype=torch.int32, device=DEV)
plan = paged_mla_decode_plan(H, 512, 64, 64, kvd, B, ctx // 64, DEV, tokens=tokens, stages=stages)
for _ in range(3):
    plan.run(qn, qr, lat, bt, sl, scale=0.07)
torch.cuda.synchronize()
