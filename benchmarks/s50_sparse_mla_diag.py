"""Session 50: why the tiny DSA models in float32 on the GPU are 0.3-0.6% off float64 (the CPU: 1e-6). Runs the test's
prompts and decode on the CPU and the GPU with the same weights, records every indexer selection (prefill masks,
decode top-k) and scores, and prints where the two devices first part."""
import random
import sys

import torch

sys.path.insert(0, "tests")
import test_verify_sparse_mla as T  # noqa: E402
from kvplan.gpu import sparse_mla as S  # noqa: E402

RECORD = []
orig_select, orig_scores = S.select, S.index_scores


def select(scores, valid, topk):
    out = orig_select(scores, valid, topk)
    RECORD.append(("select", scores.detach().double().cpu(), out.detach().cpu()))
    return out


def index_scores(q, weights, keys, key_scales):
    out = orig_scores(q, weights, keys, key_scales)
    RECORD.append(("scores", q.detach().double().cpu(), keys.detach().double().cpu()))
    return out


S.select, S.index_scores = select, index_scores


def run(name, device):
    RECORD.clear()
    arch = T.tiny(name)
    weights = T.full_weights(arch, 0)
    model = T.Transformer(arch, {k: v.to(device) for k, v in weights.items()}, T.Runtime(device))
    model.caches = T.small_caches(arch, 64, 16, 2, torch.float32, device)
    lens, ids = [37, 20], list(range(64))
    random.Random(1).shuffle(ids)
    rows = [ids[:4], ids[4:8]]
    groups = {c.group for c in model.caches.values()}
    gen = torch.Generator().manual_seed(2)
    outs = []
    for i, n in enumerate(lens):
        prompt = torch.randint(0, arch.vocab, (n,), generator=gen)
        outs.append(T.prefill(model, prompt[None].to(device), {g: [rows[i]] for g in groups}).double().cpu())
    tables = {g: torch.tensor(rows, dtype=torch.int32, device=device) for g in groups}
    tokens = torch.randint(0, arch.vocab, (2,), generator=gen).to(device)
    outs.append(T.decode(model, tokens, torch.tensor(lens, device=device), tables).double().cpu())
    return list(RECORD), outs


for name in ("deepseek_v32", "glm_dsa"):
    cpu, cpu_out = run(name, "cpu")
    gpu, gpu_out = run(name, "cuda")
    print(name, "records", len(cpu), len(gpu))
    for i, (a, b) in enumerate(zip(cpu, gpu)):
        if a[0] == "select":
            same = torch.equal(a[2], b[2])
            d = float((a[1] - b[1]).abs().nan_to_num(0).max())
            print(f"  {i} select same={same} max|score diff|={d:.3g}", "" if same else
                  f"rows differ: {int((a[2] != b[2]).any(-1).sum())}")
        else:
            print(f"  {i} scores |q diff| {float((a[1] - b[1]).abs().max()):.3g} "
                  f"|keys diff| {float((a[2] - b[2]).abs().nan_to_num(0).max()):.3g}")
    for j, (a, b) in enumerate(zip(cpu_out, gpu_out)):
        print(f"  out {j}: max|cpu - gpu| / max = {float((a - b).abs().max() / a.abs().max()):.3g}")
