"""A tiny model's prompts then one decode step in bf16 on a device, against the float64 reference: the GPU tests of
the Gemma families run it on CUDA (bundled kernels, eager or in a CUDA graph) and their CPU twins on the CPU, where
the same bf16 rounding shows what the tolerance must allow."""

import random

import torch

from kvplan.gpu.caches import small_caches
from kvplan.gpu.generate import decode, prefill
from kvplan.gpu.model import Runtime, Transformer
from kvplan.gpu.reference import Reference


def unit_attention_logits(arch, full: dict) -> dict:
    """Gemma 3n / 4 attend at scale 1.0 behind q and k norms: at the tiny's unit norm weights a logit q.k has a
    standard deviation of sqrt(head_dim) (8), softmax is near one-hot, and bf16's rounding of q and k moves the
    tiny Gemma 4's logits by 0.18-0.34 of their largest (the CPU and the H200 alike, session 50). q and k norm
    weights of head_dim^-1/4 give unit-variance logits."""
    if arch.attn_scale != 1.0:
        return full
    return {k: v * arch.head_dim ** -0.25 if k.endswith(("q_norm", "k_norm")) else v for k, v in full.items()}


def worst_bf16_error(arch, full: dict, device: str, graph: bool = False, keep=("altup_output_scale",)):
    """(the worst relative error of the two sequences' decode logits, the labels): float32 weights in bf16 but the
    names ending in `keep`, two prompts of 37 and 20 tokens on shuffled pages, then one decode step."""
    weights = {k: v.to(device, torch.bfloat16 if v.dtype == torch.float32 and not k.endswith(keep) else v.dtype)
               for k, v in full.items()}
    rt = Runtime(device)
    model = Transformer(arch, weights, rt)
    model.caches = small_caches(arch, 64, 16, 2, torch.bfloat16, device)
    ids = list(range(64))
    random.Random(1).shuffle(ids)
    rows, lens = [ids[:8], ids[8:16]], [37, 20]
    groups = {c.group for c in model.caches.values()}
    refs = [Reference(arch, {k: v.double() for k, v in full.items()}) for _ in lens]
    gen = torch.Generator().manual_seed(2)
    for i, n in enumerate(lens):
        prompt = torch.randint(0, arch.vocab, (n,), generator=gen)
        prefill(model, prompt[None].to(device), {g: [rows[i]] for g in groups})
        for t in prompt.tolist():
            refs[i].step(t)
    tables = {g: torch.tensor(rows, dtype=torch.int32, device=device) for g in groups}
    tokens = torch.randint(0, arch.vocab, (2,), generator=gen).to(device)
    positions = torch.tensor(lens, device=device)
    if graph:
        from kvplan.gpu.timing import capture

        g, out = capture(lambda: decode(model, tokens, positions, tables), warm=False)
        g.replay()
    else:
        out = decode(model, tokens, positions, tables)
    if device == "cuda":
        torch.cuda.synchronize()
    worst = 0.0
    for i in range(2):
        want = refs[i].step(int(tokens[i]))
        worst = max(worst, float((out[i].double().cpu() - want).abs().max() / want.abs().max()))
    return worst, {**rt.paged.labels, **rt.labels}
