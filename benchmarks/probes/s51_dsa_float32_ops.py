"""Session 51: which step of the tiny DSA models' float32 GPU forward rounds coarser than float32 (session 50: the
H200 ran 0.3-0.6% off float64 with every indexer selection the same as the CPU's; the CPU 1e-6).

Three views, same weights and prompts as tests/test_verify_sparse_mla.py's graphed test, run eagerly:
1. every torch call of the GPU forward re-run on the CPU in float64 on the same inputs (a TorchFunctionMode):
   calls whose float32 result is > 1e-5 (relative to the result's largest value) off their own float64 re-run;
2. each decoder layer's output on the GPU against the CPU's (where the two devices first part);
3. the end-to-end difference with SDPA held to its math backend, and with float32 matmuls at "highest".
Work done by kvplan's own CUDA kernels (not torch calls) shows in view 2 only.

    python3 benchmarks/probes/s51_dsa_float32_ops.py
"""
import collections
import random
import sys

import torch
from torch.overrides import TorchFunctionMode

sys.path.insert(0, "tests")
import test_verify_sparse_mla as T  # noqa: E402
from kvplan.gpu import model as M  # noqa: E402

SKIP = ("rand", "normal_", "uniform_", "empty", "manual_seed", "data_ptr")


def to_cpu(value):
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        return value.double() if value.is_floating_point() and value.dtype != torch.float64 else value
    if isinstance(value, torch.device) or value == "cuda":
        return torch.device("cpu")
    if isinstance(value, (list, tuple)):
        return type(value)(to_cpu(v) for v in value)
    if isinstance(value, dict):
        return {k: to_cpu(v) for k, v in value.items()}
    return value


def first_float(value):
    if isinstance(value, torch.Tensor):
        return value if value.is_floating_point() else None
    if isinstance(value, (list, tuple)):
        return next((t for t in map(first_float, value) if t is not None), None)
    return None


class Recheck(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.flagged = collections.defaultdict(list)
        self.checked = collections.Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = getattr(func, "__qualname__", None) or getattr(func, "__name__", str(func))
        got = first_float(out)
        if got is None or not got.is_cuda or got.dtype != torch.float32 or not got.numel() or \
                any(s in name for s in SKIP):
            return out
        try:
            ref = first_float(func(*to_cpu(args), **to_cpu(kwargs)))
        except Exception:  # noqa: BLE001 - a call that will not run on CPU copies is just not checked
            return out
        if ref is None or ref.shape != got.shape:
            return out
        self.checked[name] += 1
        got, ref = got.detach().double().cpu().nan_to_num(0), ref.double().nan_to_num(0)
        scale = float(ref.abs().max())
        err = float((got - ref).abs().max()) / scale if scale else 0.0
        if err > 1e-5:
            self.flagged[name].append((tuple(got.shape), err))
        return out


def run(name, device, mode=None, layers=None):
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
    saved = M.Block.__call__

    def recording(self, *a, **k):
        x, h = saved(self, *a, **k)
        if layers is not None:
            layers.append((self.index, (x + h).detach().double().cpu()))
        return x, h

    M.Block.__call__ = recording
    try:
        ctx = mode if mode is not None else torch.autograd.grad_mode.no_grad()
        with ctx:
            for i, n in enumerate(lens):
                prompt = torch.randint(0, arch.vocab, (n,), generator=gen)
                outs.append(T.prefill(model, prompt[None].to(device), {g: [rows[i]] for g in groups}).double().cpu())
            tables = {g: torch.tensor(rows, dtype=torch.int32, device=device) for g in groups}
            tokens = torch.randint(0, arch.vocab, (2,), generator=gen).to(device)
            outs.append(T.decode(model, tokens, torch.tensor(lens, device=device), tables).double().cpu())
    finally:
        M.Block.__call__ = saved
    return outs, dict(model.rt.labels), dict(model.rt.paged.labels)


def worst(a_outs, b_outs):
    return max(float((a - b).abs().max() / a.abs().max()) for a, b in zip(a_outs, b_outs))


print("flags: matmul.allow_tf32", torch.backends.cuda.matmul.allow_tf32, "cudnn.allow_tf32",
      torch.backends.cudnn.allow_tf32, "float32_matmul_precision", torch.get_float32_matmul_precision())
for name in ("deepseek_v32", "glm_dsa"):
    cpu_layers, gpu_layers = [], []
    cpu, _, _ = run(name, "cpu", layers=cpu_layers)
    gpu, labels, paged = run(name, "cuda", layers=gpu_layers)
    print(f"== {name}: GPU vs CPU end to end {worst(cpu, gpu):.3g}")
    print("  labels", labels, paged)
    for (i, a), (_, b) in list(zip(cpu_layers, gpu_layers))[:12]:
        print(f"  layer {i} output {float((a - b).abs().max() / a.abs().max()):.3g}")
    check = Recheck()
    run(name, "cuda", mode=check)
    print(f"  torch calls re-run in float64: {sum(check.checked.values())} in {len(check.checked)} kinds")
    for func, hits in sorted(check.flagged.items(), key=lambda kv: -max(e for _, e in kv[1])):
        print(f"  > 1e-5: {func} x{len(hits)} of {check.checked[func]}, worst {max(e for _, e in hits):.3g} "
              f"{hits[0][0]}")
    from torch.nn.attention import SDPBackend, sdpa_kernel
    with sdpa_kernel(SDPBackend.MATH):
        math_gpu, _, _ = run(name, "cuda")
    print(f"  SDPA math backend: GPU vs CPU {worst(cpu, math_gpu):.3g}")
    torch.set_float32_matmul_precision("highest")
    highest, _, _ = run(name, "cuda")
    print(f"  float32 matmul precision highest: GPU vs CPU {worst(cpu, highest):.3g}")
