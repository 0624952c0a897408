"""Small tensor operations of the forward pass: norms, rotary embeddings, activations, and the matrix
multiply whose form (x @ W^T or W @ x^T) is chosen per weight shape and token count on the GPU."""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

from . import fp8

STACK_ROWS_ALIGN = 8  # a stacked pair's rows padded with zero rows to a multiple of this (16 bytes of 16-bit output)

# F.linear, torch.mm(W, x^T), the bundled NVRTC kernels (kvplan/kernels/skinny.py, kvplan/kernels/gemv_stream.py;
# the GEMV three ways: CTAs in order; rotated, which wins on some shapes and loses on others, H200 session 21; and
# whole 16-row slices a CTA, no tile cut between CTAs, session 22; and rows owned by two CTAs per SM with rings of
# 8, 128 KB in flight per SM, which gains ~1 point on most shapes and loses on some, session 22 call 10)
MM_FORMS = ("x @ W^T", "W @ x^T", "kvplan skinny kernel", "kvplan streaming GEMV", "kvplan streaming GEMV, rotated",
            "kvplan streaming GEMV, rows owned", "kvplan streaming GEMV, rows owned, deep rings",
            "kvplan streaming GEMV, rows owned, three CTAs an SM")
# Block-scaled fp8 weights at decode batches: the skinny kernel's fp8 form (W8A16, the default), or x quantised per
# token per 128 values and the streaming GEMV's block-scaled e4m3 kernel (W8A8 as vLLM runs it), in order or
# rotated (kvplan/gpu/gemm.py times them per shape and batch)
BLOCK_FORMS = ("kvplan skinny kernel, fp8 form", "kvplan streaming GEMV, block-scaled",
               "kvplan streaming GEMV, block-scaled, rotated")


def rms_norm(x, weight, eps: float, plus_one: bool = False):
    """RMSNorm (torch's own op: statistics in float32), back to x's dtype; Gemma scales by (1 + w)."""
    return F.rms_norm(x, (x.shape[-1],), weight + 1 if plus_one else weight, eps)


def whole_qk_norm(q, k, q_weight, k_weight, eps: float, comm):
    """MiniMax-M2's q and k norms over the whole projections, q [T, heads x head_dim] and k [T, kv_heads x head_dim]
    (this rank's shares), as vLLM 0.32.0 layers/minimax_rms_norm/rms_norm_tp.py runs them: each token's mean square of
    q and of k in float32, the pair all-reduced across the TP group and divided by its size (the mean over every
    rank's share; KV heads replicated over ranks count once per copy, the same mean), then x * rsqrt(mean + eps) * w,
    back to x's dtype. One rank of a larger group simulated alone (LocalComm, size 1) runs no collective: its own
    share's mean stands in for the group's (the same work and bytes on the rank, the [T, 2] all-reduce skipped, as
    every other all-reduce is there)."""
    qf, kf = q.float(), k.float()
    mean_sq = torch.stack([qf.square().mean(-1), kf.square().mean(-1)], dim=-1)  # [T, 2] float32
    if comm.size > 1:
        mean_sq = comm.all_reduce(mean_sq) / comm.size
    inv = torch.rsqrt(mean_sq + eps)
    return (qf * inv[:, :1] * q_weight).to(q.dtype), (kf * inv[:, 1:] * k_weight).to(k.dtype)


def vocab_parallel_embedding(tokens, table, rows: int, tp: int, comm):
    """The rows of `tokens` in a table split by vocabulary over tp ranks (this rank's `rows`, from comm.rank x rows),
    summed over the group: at tp 1 a plain lookup. One rank simulated alone (comm of size 1, tp > 1) keeps its slice,
    so ids outside it read zeros as a real rank's do (never an index past the table)."""
    if tp == 1:
        return F.embedding(tokens, table)
    local = tokens - comm.rank * rows
    inside = (local >= 0) & (local < rows)
    return comm.all_reduce(F.embedding(local.clamp(0, rows - 1), table) * inside[:, None].to(table.dtype))


def stacked_rows(a, b):
    """The [rows_a + rows_b (+ pad), cols] weight spanning a and b when b's rows follow a's in one buffer (weights.py
    stack_rows), else None: one matmul then serves both. The zero rows stack_rows pads the buffer with to a multiple
    of STACK_ROWS_ALIGN are spanned too where the buffer holds them (the output's rows stay 16-byte aligned)."""
    if a is None or b is None or a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[1] or a.dtype != b.dtype \
            or not (a.is_contiguous() and b.is_contiguous()) or a.device != b.device \
            or a.untyped_storage().data_ptr() != b.untyped_storage().data_ptr() \
            or b.data_ptr() != a.data_ptr() + a.numel() * a.element_size():
        return None
    rows = a.shape[0] + b.shape[0]
    padded = rows + (-rows % STACK_ROWS_ALIGN)
    if (a.storage_offset() + padded * a.shape[1]) * a.element_size() <= a.untyped_storage().nbytes():
        rows = padded
    return a.as_strided((rows, a.shape[1]), (a.shape[1], 1))


class Norms:
    """RMS norms of the residual stream with the residual add before them: kvplan's add + RMS norm kernel
    (kvplan/kernels/norm.cu, one launch) on a GPU where it takes the row, torch's add and F.rms_norm elsewhere.
    `add_norm(x, h, w, eps)` -> (x + h, its norm); h None: (x, norm of x). labels["norm"] says which ran."""

    KERNEL = "kvplan add + RMS norm kernel (norm.cu), one launch per norm"
    TORCH = "torch add + F.rms_norm"

    def __init__(self, device, labels: dict):
        self.cuda = torch.device(device).type == "cuda"
        self.labels = labels
        self._plans: dict = {}

    def _plan(self, x):
        key = (x.shape[-1], x.dtype)
        if key not in self._plans:
            self._plans[key] = None
            if self.cuda:
                from ..kernels import kernel_unavailable_reason
                from ..kernels._checks import dtype_name
                from ..kernels.norm import AddRmsNormPlan, norm_unsupported

                act = dtype_name(x.dtype)
                if kernel_unavailable_reason() is None and norm_unsupported(x.shape[-1], act) is None:
                    self._plans[key] = AddRmsNormPlan(x.shape[-1], act, x.device)
        return self._plans[key]

    def add_norm(self, x, h, weight, eps: float, plus_one: bool = False, quant: bool = False):
        """quant: the norm in e4m3 for the fp8 linear it feeds (kvplan/gpu/fp8.py quantize), in the same launch where
        the kernel converts to e4m3."""
        plan = self._plan(x) if (x.dim() == 2 and x.is_contiguous() and x.data_ptr() % 8 == 0
                                 and weight.dtype == x.dtype) else None
        if plan is not None and (h is None or (h.is_contiguous() and h.data_ptr() % 8 == 0)):
            self.labels["norm"] = self.KERNEL
            if quant and plan.e4m3:
                return plan.run(x, h, weight, eps, plus_one, quant_inv=1.0 / fp8.INPUT_SCALE)
            s, y = plan.run(x, h, weight, eps, plus_one)
            return s, fp8.quantize(y) if quant else y
        self.labels["norm"] = self.TORCH
        if h is not None:
            x = x + h
        y = rms_norm(x, weight, eps, plus_one)
        return x, fp8.quantize(y) if quant else y


def l2_norm(x, eps: float = 1e-6):
    return x * torch.rsqrt(x.pow(2).sum(-1, keepdim=True) + eps)


@contextlib.contextmanager
def tf32_matmuls(on: bool):
    """fp32 matmuls through TF32 tensor cores while inside (on a GPU): the linear-attention prefills' chunk products
    (gated DeltaNet, Mamba-2) ran as SIMT fp32 GEMMs, ~25 of Qwen3-Next's 280 prefill ms (H200, session 33; TF32
    took 10 ms off). The engines' own kernels (vLLM's fla chunk_gated_delta_rule, its Mamba-2 SSD) multiply in
    bf16, coarser still; the DeltaNet state recurrence stays fp32 (scan kernel)."""
    before = torch.get_float32_matmul_precision()
    if on:
        torch.set_float32_matmul_precision("high")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(before)


def activation(name: str, x):
    if name == "relu2":  # Nemotron-H's squared ReLU (vLLM ReLUSquaredActivation)
        return torch.square(F.relu(x))
    if name == "gelu":  # Falcon's exact (erf) GELU
        return F.gelu(x)
    return F.gelu(x, approximate="tanh") if name == "gelu_tanh" else F.silu(x)


GATED_KERNEL = "bundled act(gate) * up kernel (gated_act.cu), one launch"
UNGATED_KERNEL = "bundled act(h) kernel (gated_act.cu: squared ReLU), one launch"


def mlp_activation(name: str, h, gated: bool, labels: dict | None = None, quant: bool = False):
    """act(gate) * up of a fused [.., 2I] gate/up output (gated MLPs), act(h) otherwise. On a GPU the gated form,
    and the squared ReLU, is one launch of kvplan/kernels/gated_act.cu (as engines fuse it); labels["activation"]
    says which ran.
    quant: in e4m3 for an fp8 down projection (kvplan/gpu/fp8.py), in the same launch where the kernel can."""
    if h.is_cuda:
        from ..kernels import gated_act as kernel
        from ..kernels._runtime import device_info
        from ..kernels.configs import E4M3_ARCHS

        run, why = (kernel.gated_act, kernel.gated_act_supported(h, name)) if gated else \
            (kernel.ungated_act, kernel.ungated_act_supported(h, name))
        if labels is not None:
            torch_form = "act(gate) * up" if gated else name
            labels["activation"] = (GATED_KERNEL if gated else UNGATED_KERNEL) if why is None else \
                f"torch {torch_form} (the kernel refused: {why})"
        if why is None:
            if quant and device_info(h.device.index).arch in E4M3_ARCHS:
                return run(h, name, quant_inv=1.0 / fp8.INPUT_SCALE)
            out = run(h, name)
            return fp8.quantize(out) if quant else out
    if gated:
        gate, up = h.chunk(2, dim=-1)
        out = activation(name, gate) * up
    else:
        out = activation(name, h)
    return fp8.quantize(out) if quant else out


class Rope:
    """Rotary embeddings of `dim` leading dims of each head, one inverse-frequency table per base: `apply` turns
    pairs (i, i + dim/2) (the rotate-half, NeoX form), `apply_interleaved` pairs (2i, 2i + 1) (GPT-J's, ERNIE-4.5's),
    both by angle position x theta^(-2i/dim). `tables(positions)` is computed once per forward and shared by the
    layers: cos and sin [tokens, 1, dim] in the activations' dtype (the angles twice over: [a_0 .. a_{dim/2-1},
    a_0 .. a_{dim/2-1}]), so that each application is five elementwise kernels."""

    def __init__(self, dim: int, device, dtype=torch.float32):
        self.dim, self.device, self.dtype = dim, device, dtype
        self.inv: dict = {}

    def tables(self, positions, theta: float) -> tuple:
        inv = self.inv.get(theta)
        if inv is None:
            exponents = torch.arange(0, self.dim, 2, dtype=torch.float64, device=self.device) / self.dim
            inv = self.inv[theta] = (1.0 / theta ** exponents).float()
        angles = positions.float()[:, None] * inv[None, :]
        angles = torch.cat([angles, angles], dim=-1)[:, None, :]
        return torch.cos(angles).to(self.dtype), torch.sin(angles).to(self.dtype)

    @staticmethod
    def apply(x, cos, sin):
        """x [tokens, heads, head_dim]: rotate its first cos.shape[-1] dims (pairs i, i + dim/2)."""
        dim = cos.shape[-1]
        rot = x[..., :dim]
        first, second = rot.chunk(2, dim=-1)
        out = rot * cos + torch.cat([-second, first], dim=-1) * sin
        return torch.cat([out, x[..., dim:]], dim=-1) if dim < x.shape[-1] else out

    @staticmethod
    def apply_interleaved(x, cos, sin):
        """x [tokens, heads, head_dim]: rotate its first cos.shape[-1] dims as interleaved pairs (2i, 2i + 1), each
        by the tables' angle i, as vLLM 0.32.0 rotary_embedding/common.py:134-172 ApplyRotaryEmb.forward_static
        runs is_neox_style=False: x1 = x[..., ::2], x2 = x[..., 1::2], then (x1 cos - x2 sin, x2 cos + x1 sin)
        interleaved back."""
        dim = cos.shape[-1]
        c, s = cos[..., :dim // 2], sin[..., :dim // 2]
        even, odd = x[..., 0:dim:2], x[..., 1:dim:2]
        out = torch.stack([even * c - odd * s, odd * c + even * s], dim=-1).flatten(-2)
        return torch.cat([out, x[..., dim:]], dim=-1) if dim < x.shape[-1] else out


class Matmul:
    """x [tokens, in] times a weight W [out, in]. cuBLAS picks its kernel by shape, and for skinny batches the
    ways of writing the product stream the weight at different speeds; `forms` maps (out, in, tokens) to the
    fastest (kvplan/gpu/gemm.py measures it at start): F.linear otherwise. The bundled kernels' plans, one per
    weight shape, live in `skinny` and `stream`."""

    def __init__(self):
        self.forms: dict = {}
        self.skinny: dict = {}  # (out, in) -> kvplan.kernels.skinny.SkinnyGemmPlan
        self.stream: dict = {}  # (out, in) -> kvplan.kernels.gemv_stream.GemvStreamPlan
        self.rotated: dict = {}  # (out, in) -> the same with rotate=True
        self.owned: dict = {}  # (out, in) -> the same with own=True
        self.owned_deep: dict = {}  # (out, in) -> the same with own=True, two CTAs per SM, rings of 8
        self.owned_three: dict = {}  # (out, in) -> own=True on a grid of three CTAs an SM, rings of 5
        self.out_dtype = torch.bfloat16  # fp8 linears over e4m3 rows: the activations' dtype (model.Transformer)
        self.fp8_scales: dict = {}  # device -> fp8.scales(device), made at the first fp8 product (eager: prefill)
        self.block_scales: dict = {}  # (data_ptr, rows, cols) of a block-scaled e4m3 weight -> its scales
        self.block_plans: dict = {}  # (rows, cols) -> the skinny kernel's fp8 plan, or why it cannot run the shape
        self.block_streams: dict = {}  # (BLOCK_FORMS[1 or 2], rows, cols) -> the GEMV's block-scaled plan

    def register_block(self, w, scales) -> None:
        """Mark the e4m3 weight `w` as block-scaled by `scales` (kvplan/gpu/fp8.py block_linear)."""
        self.block_scales[(w.data_ptr(), *w.shape)] = scales

    def block_scale(self, w):
        """The block scales of weight `w`, or None (a 16-bit or per-tensor fp8 weight)."""
        return self.block_scales.get((w.data_ptr(), *w.shape)) if w.dtype == fp8.E4M3 else None

    def kind(self, w) -> str:
        """What runs weight `w`: "" (16-bit), "e4m3" (per-tensor fp8) or "block" (block-scaled fp8)."""
        return "block" if self.block_scale(w) is not None else "e4m3" if w.dtype == fp8.E4M3 else ""

    def form_key(self, w, tokens: int) -> tuple:
        """The key of `forms` for `w` at `tokens` rows: (out, in, tokens), and w's kind beside them for fp8. One shape
        can hold two kinds (MiMo-V2-Flash: a 16-bit o_proj and block-scaled down_proj of the same shape), and each
        kind has forms of its own (H200, session 50: a block-scaled weight timed through a 16-bit plan refused)."""
        kind = self.kind(w)
        return (w.shape[0], w.shape[1], tokens) + ((kind,) if kind else ())

    def plan_key(self, w) -> tuple:
        """The key of the bundled kernels' plans for `w`: (out, in), and "e4m3" for an e4m3 weight's (W8A8) plans."""
        return (w.shape[0], w.shape[1]) + (("e4m3",) if w.dtype == fp8.E4M3 else ())

    def block_plan(self, w, tokens: int):
        """The skinny kernel's fp8 plan for `w`'s shape at `tokens` rows, or None: more rows than it takes, the CPU,
        or a shape it refuses (made at the first call outside graph capture; the forms' timing makes them at
        start)."""
        if tokens > fp8.SKINNY_TOKENS or not w.is_cuda:
            return None
        key = tuple(w.shape)
        if key not in self.block_plans and not torch.cuda.is_current_stream_capturing():
            try:
                from ..kernels.skinny import skinny_gemm_plan

                self.block_plans[key] = skinny_gemm_plan(key[0], key[1], torch.bfloat16, max_batch=fp8.SKINNY_TOKENS,
                                                         device=w.device, weight_format="fp8")
            except (ValueError, RuntimeError, ImportError) as exc:  # KernelUnavailableError is a RuntimeError
                self.block_plans[key] = str(exc)
        plan = self.block_plans.get(key)
        return None if isinstance(plan, str) else plan

    def kernel_plans(self, form: str) -> dict:
        """plan_key(w) -> plan, for one of the bundled kernels' forms (MM_FORMS[2:])."""
        return {MM_FORMS[2]: self.skinny, MM_FORMS[3]: self.stream, MM_FORMS[4]: self.rotated,
                MM_FORMS[5]: self.owned, MM_FORMS[6]: self.owned_deep, MM_FORMS[7]: self.owned_three}[form]

    def __call__(self, x, w, bias=None):
        form = self.forms.get(self.form_key(w, x.shape[0]))
        scales = self.block_scale(w)
        if scales is not None:
            out = self.block(x, w, scales)
            return out + bias if bias is not None else out
        if w.dtype == fp8.E4M3:
            out = self.fp8(form, x, w)
            return out + bias if bias is not None else out
        if form in MM_FORMS[2:] and x.dtype == w.dtype:
            out = self.kernel_plans(form)[self.plan_key(w)].run(x.contiguous(), w)
            return out + bias if bias is not None else out
        if form == MM_FORMS[1]:
            out = torch.mm(w, x.t()).t().contiguous()
            return out + bias if bias is not None else out
        return F.linear(x, w, bias)

    def fp8(self, form, x, w):
        """x @ W^T for an e4m3 weight, W8A8: the streaming GEMV's e4m3 kernel in its `form` (MM_FORMS[3:]) where
        it has a plan for the shape, cuBLAS's fp8 GEMM (torch._scaled_mm) otherwise."""
        plan = self.kernel_plans(form).get(self.plan_key(w)) if form in MM_FORMS[3:] else None
        out_dtype = self.out_dtype if x.dtype == fp8.E4M3 else x.dtype
        if plan is not None:
            return fp8.gemv(plan, x, w, out_dtype)
        if w.device not in self.fp8_scales:
            self.fp8_scales[w.device] = fp8.scales(w.device)
        return fp8.linear(x, w, out_dtype, self.fp8_scales[w.device])

    def block(self, x, w, scales):
        """x @ W^T for a block-scaled e4m3 weight (kvplan/gpu/fp8.py): the skinny kernel's fp8 form at decode batches,
        W8A8 through cuBLAS above, the dequantised weight on the CPU."""
        if x.dtype == torch.bfloat16:
            stream = self.block_streams.get((self.forms.get(self.form_key(w, x.shape[0])), *w.shape))
            if stream is not None:
                return fp8.block_gemv(stream, x, w, scales)
        plan = self.block_plan(w, x.shape[0]) if x.dtype == torch.bfloat16 else None
        if plan is not None:
            return plan.run(x.contiguous(), (w, scales))
        return fp8.block_linear(x, w, scales, x.dtype if x.dtype != fp8.E4M3 else self.out_dtype)

    def pair(self, x, a, b, joint=None):
        """(x @ a^T, x @ b^T): one matmul over `joint` (stacked_rows(a, b)) where given, its output split."""
        if joint is None:
            return self(x, a), self(x, b)
        out = self(x, joint)  # its last columns are the padding rows' (zeros), if any
        return out[..., :a.shape[0]], out[..., a.shape[0]:a.shape[0] + b.shape[0]]
