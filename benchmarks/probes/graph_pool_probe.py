import torch, json
from kvplan.kernels.gemv_stream import gemv_stream_plan
from kvplan.gpu.timing import capture
n, k, L = 6144, 4096, 32
ws = [torch.randn(n, k, device="cuda", dtype=torch.bfloat16) for _ in range(L)]
for name, opts in (("own 2x6", dict(own=True, ctas_per_sm=2, depth=6)),
                   ("own 3x5", dict(own=True, ctas_per_sm=3, depth=5)), ("in-order", {})):
    plan = gemv_stream_plan(n, k, torch.bfloat16, max_batch=8, device=0, **opts)
    for w in ws:
        plan.run(torch.randn(1, k, device="cuda", dtype=torch.bfloat16), w)
    torch.cuda.synchronize(); torch.cuda.empty_cache()
    r0, u0 = torch.cuda.memory_reserved(), torch.cuda.mem_get_info()[0]
    pool = torch.cuda.graph_pool_handle(); graphs = []
    for b in (8, 4, 2, 1) * 4:
        x = torch.randn(b, k, device="cuda", dtype=torch.bfloat16)
        graphs.append(capture(lambda x=x: [plan.run(x, w) for w in ws], pool))
    torch.cuda.synchronize(); torch.cuda.empty_cache()
    print(json.dumps({"form": name, "ctas": plan.ctas, "per_cta": plan.per_cta,
                      "reserved_MiB": (torch.cuda.memory_reserved() - r0) / 2**20,
                      "used_MiB": (u0 - torch.cuda.mem_get_info()[0]) / 2**20}), flush=True)
    del graphs
    torch.cuda.synchronize(); torch.cuda.empty_cache()
