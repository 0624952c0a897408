"""Feed-forward blocks: the dense (gated) MLP and the mixture of experts. The MoE routes each token to its
top-k experts with a real router (on a GPU one launch of kvplan/kernels/router.cu), sorts the (token, expert)
pairs by expert as engines do, and runs every expert's tokens through grouped GEMMs (torch._grouped_mm: one
launch over all experts, each reading only its own weights, no host sync, so it captures in a CUDA graph). At decode
batches (<= 16 tokens) on a GPU the bundled MoE pairs kernel (kvplan/kernels/skinny.py) runs the routed experts instead:
three launches that read each distinct routed expert's weights once (mxfp4 experts as packed bytes, dequantised in
registers); mxfp4 experts (gpt-oss) take the same kernel by expert above 16 tokens (16-bit experts too while they see
few pairs each: BY_EXPERT_PAIRS) up to MXFP4_GROUPED_TOKENS, beyond that every expert dequantised to bf16 by the bundled
mxfp4 kernel, then the grouped GEMMs. Without the kernels mxfp4 experts are dequantised in torch first: a clearly
labelled path."""

from __future__ import annotations

import torch

from ..errors import KvplanError
from . import fp8
from .ops import mlp_activation, stacked_rows
from .weights import dequantize_mxfp4

GROUPED_LABEL = ("tokens sorted by expert, grouped GEMMs (torch._grouped_mm) when the routed (token, expert) pairs "
                 "are a quarter of the experts or more; below that each pair's expert weights gathered, then bmm")
MXFP4_LABEL = ("mxfp4 experts dequantised to bf16 in torch (the routed pairs' experts when few, else every expert), "
               "then the GEMMs above")
FP8_LABEL = ("block-scaled fp8 experts dequantised in torch (the routed pairs' experts when few, else every expert), "
             "then the GEMMs above")
# Gathering a pair's expert reads its weights, writes a copy and reads that (3x its bytes) plus the launches: on the
# H200 (2026-12-01) DeepSeek-V2-Lite's 6 pairs of 64 experts ran faster gathered, Mixtral's 2 pairs of 8 slower.
SLOT_FACTOR = 4
# 16-bit experts above the pairs kernel's token count run through the same kernel by expert (a row tile per warp,
# joined shared experts' passes spread over CTA rows that start first) while the pairs per expert average at most
# BY_EXPERT_PAIRS, else grouped GEMMs: the kernel streams each expert's weights once per pass of 32 pairs, a grouped
# GEMM wins once experts see many tokens. H200, `skinny_gemm.py --moe-batch`, ms per layer, row tiles vs grouped
# GEMMs, joined experts routed as verify routes them (benchmarks/RESULTS.md, session 14): Qwen3-Next tp 2 at 5.5 /
# 9.4 / 22 pairs per expert 0.52 vs 0.72, 0.58 vs 0.77, 0.69 vs 0.87; DeepSeek-V2-Lite at 15.5 0.40 vs 0.49, at 49
# 0.78 vs 0.54; Mixtral tp 2 at 16 0.48 vs 0.55, at 41.5 0.90 vs 0.58.
BY_EXPERT_PAIRS = 24
MXFP4_CHUNKS_LABEL = ("the same kernel by expert: the pairs sorted by expert, each expert's packed bytes read once per "
                      "{chunk:,} tokens and its pairs taken 64 at a time")
ROWS_LABEL = ("the same kernel by expert: the pairs sorted by expert, a row tile per warp, each expert's {bytes} "
              "read once per {pairs} pairs")
# mxfp4 experts from MXFP4_GROUPED_TOKENS tokens on: every expert of the layer dequantised to bf16 by the bundled
# kernel (kvplan/kernels/mxfp4.cu) into one scratch the layers share, then the grouped GEMMs. The by-expert kernel
# runs its MMAs on values dequantised per warp. H200, `skinny_gemm.py --moe-large --dequant` (gpt-oss-20b, ms a
# layer, by expert vs dequantised + grouped; benchmarks/RESULTS.md, session 13): 256 tokens 1.04 vs 1.18, 384 1.36
# vs 1.18, 599 2.18 vs 1.20, 8192 27.4 vs 4.6 (the dequantisation alone 0.50). H100, session 64, the row-tile
# kernel's passes of 64 pairs: 295 tokens 0.90 vs 1.37, 384 1.10 vs 1.37, 512 1.47 vs 1.38, 1,024 2.72 vs 1.64 (not
# yet timed on an H200).
# The scratch costs one projection's experts in bf16 (gpt-oss-20b: 1.06 GB), allocated at the first call that uses
# it (verify's profile run, so its activation peak includes it).
MXFP4_GROUPED_TOKENS = 448
MXFP4_GROUPED_LABEL = ("; from {tokens} tokens on every expert dequantised to bf16 by the bundled mxfp4 kernel "
                       "(mxfp4.cu) into one scratch the layers share, then the grouped GEMMs")
# Block-scaled fp8 experts from FP8_GROUPED_TOKENS tokens on: FP8_CHUNK_EXPERTS experts at a time dequantised to
# bf16 by the bundled kernel (kvplan/kernels/fp8_quant.cu) into one scratch the layers share, then the grouped GEMMs
# over those experts' rows (the by-expert kernel reads each expert once per 1,024 tokens and runs its MMAs on values
# scaled in registers: DeepSeek-V3 tp 8, 8,192 tokens, 2.8 s of prefill, H200 session 40). A chunk, not the layer:
# 256 experts of [512, 7,168] in bf16 are 1.9 GB, 32 of them 235 MB (the profile run's peak holds it). Each chunk's
# outputs overwrite its own sorted rows (8,192 tokens x 9 pairs x 7,168 bf16: 1.06 GB, once), and a prompt longer
# than FP8_SLICE_TOKENS runs in slices with their own dequantisations. At 8,192 tokens that holds ~1.5 GB, under
# what vLLM 0.32 itself holds for the same forward: its fused-MoE workspace (fused_moe/modular_kernel.py
# _allocate_buffers, TritonExperts.workspace_shapes: M x topk x max(I, H) and M x topk x max(2I, H) in bf16) is
# 1.88 GB for DeepSeek-V3 at tp 8, M = 8,192, top 8. (With a second buffer for the outputs the peak was 3.2 GiB.)
# H200, session 41, one DeepSeek-V3 tp 8 layer, ms (benchmarks/probes/block_gemv_probe.py --prefill), by expert / chunks
# in slices of 2,048 / the whole prompt at once: 256 tokens 3.18 / 3.35, 384 3.51 / 3.37, 512 4.16 / 3.40, 1,024
# 6.11 / 3.47, 2,048 11.9 / 3.65, 8,192 47.2 / 14.4 / 5.79.
FP8_GROUPED_TOKENS = 384
FP8_CHUNK_EXPERTS = 32
FP8_SLICE_TOKENS = 8192  # vLLM's default max_num_batched_tokens: its own forwards are no longer
FP8_GROUPED_LABEL = ("; from {tokens} tokens on, {slice:,} tokens at a time, {chunk} experts at a time dequantised to "
                     "bf16 by the bundled kernel (fp8_quant.cu) into one scratch the layers share, then the grouped "
                     "GEMMs")
PAIRS_LABEL = ("bundled MoE pairs kernel (NVRTC, kvplan/kernels/skinny_gemm.cu) at <= {tokens} tokens: each distinct "
               "routed expert read once{mxfp4}, activation fused, weighted sum in a third launch; above that ")
# One token (a batch-1 decode step) on Hopper, 16-bit experts of at least ONE_TOKEN_MIN_INTER intermediate values
# per rank: the routed experts as two streaming GEMVs over the token's experts (kvplan/kernels/moe_one_token.py,
# gemv_stream.cu's gather form), the activation between, the routing weights inside the down launch. H200, session
# 43 (benchmarks/probes/moe_one_token_probe.py, 8 layers in a graph, us a layer, pairs kernel against the GEMVs):
# GLM-4.7-Flash (I 1,536) 41.6 / 36.2, Nemotron-3-Nano (1,856, no gate) 51.5 / 49.5, Mixtral tp 2 (7,168) 104.3 / 101.3,
# DeepSeek-V2-Lite (1,408) 47.9 / 48.0, Qwen3-Next tp 2 (256) 19.3 / 22.9: three launches of a few MB each lose to
# the pairs kernel's. Block-scaled fp8 experts keep the pairs kernel: with x and the activations quantised per 128
# values first (five launches) DeepSeek-V3's at tp 8 ran 40.9 against 33.5, and 33.4 against 33.0 once the GEMV's
# launches were padded to their CTAs an SM (session 46): a tie. ONE_TOKEN_GEMV False: the pairs kernel
# everywhere (benchmarks' A/B).
ONE_TOKEN_GEMV = True
ONE_TOKEN_MIN_INTER = 1536
ONE_TOKEN_LABEL = ("; at one token the streaming GEMV over the token's experts instead (kvplan/kernels/"
                   "moe_one_token.py: gate/up and down a launch each, the activation between, the routing weights "
                   "applied in the down launch)")
BY_EXPERT_LABEL = ("the same kernel by expert (the pairs sorted by expert, a row tile per warp, each expert's weights "
                   "read once per 32 pairs{joined}) while the pairs per expert average <= {pairs}, beyond that ")


def grouped_mm(x, w, offsets):
    """x [N, K] rows sorted by group; w [E, M, K] one weight per group; offsets [E] int32 cumulative row ends ->
    [N, M]: rows of group e times w[e]^T."""
    fn = getattr(torch, "_grouped_mm", None)
    if fn is None:
        raise KvplanError(f"torch {torch.__version__} has no torch._grouped_mm; verify's MoE needs torch >= 2.8.")
    if x.dtype in (torch.float32, torch.float64) and x.is_cuda:
        return _gathered_mm(x, w, offsets)
    return fn(x, w.transpose(-1, -2), offs=offsets)


def _gathered_mm(x, w, offsets):
    """grouped_mm in x's own float precision on a GPU (the tests' float32 / float64 runs): torch._grouped_mm takes
    16-bit rows only there, and rounding through bf16 put the float32 MoE forwards 0.3-0.6% off float64 (H200,
    session 51: benchmarks/probes/s51_dsa_float32_ops.py). Each row's weight gathered, one batched matmul; no host sync,
    so a CUDA graph captures it."""
    rows = torch.arange(x.shape[0], device=x.device, dtype=offsets.dtype)
    group = torch.searchsorted(offsets, rows, right=True).clamp_(max=w.shape[0] - 1)
    return torch.bmm(w[group].to(x.dtype), x.unsqueeze(-1)).squeeze(-1)


def route_torch(r, top_k: int, logits, correction=None, logit_bias=None):
    """(weights [T, k] float32, expert ids [T, k]) of `logits` [T, E] by Routing `r` (kvplan/model/routing.py), in
    torch; `correction` the float32 correction bias, `logit_bias` the router's own bias, where the rule has them."""
    logits = logits.float() + (logit_bias.float() if r.logit_bias else 0)
    scores = torch.softmax(logits, dim=-1) if r.scoring == "softmax" else torch.sigmoid(logits)
    choose = scores + correction.float() if r.correction_bias else scores
    if r.grouped:
        t = choose.shape[0]
        runs = choose.view(t, r.groups, -1)
        best = runs.topk(2, dim=-1).values.sum(-1) if r.correction_bias else runs.amax(-1)
        allowed = torch.zeros_like(best, dtype=torch.bool).scatter_(1, best.topk(r.topk_groups, -1).indices, True)
        choose = choose.masked_fill(~allowed.repeat_interleave(runs.shape[2], dim=1), float("-inf"))
    # unsorted: the pairs are summed, so the order of a token's k experts does not matter, and the sort
    # after the selection was a second kernel per layer (H200: 3.8 us of 8.1 per layer at batch 1)
    ids = torch.topk(choose, top_k, dim=-1, sorted=False).indices
    weights = scores.gather(1, ids)
    if r.renormalize:
        weights = weights / weights.sum(-1, keepdim=True)
    return weights * r.scale, ids


def _plus_shared(out, shared, gate):
    """The routed experts' sum plus the shared expert's rows times sigmoid(gate) (times 1 without a gate)."""
    if shared is None:
        return out
    return out + (shared * torch.sigmoid(gate) if gate is not None else shared)


class MLP:
    def __init__(self, arch, w: dict, rt, prefix: str = "mlp"):
        self.arch, self.rt = arch, rt
        self.gate_up, self.down = w[f"{prefix}.gate_up"], w[f"{prefix}.down"]
        # a per-tensor fp8 down projection takes e4m3 rows from the activation's launch; a block-scaled one bf16
        self.quant = self.down.dtype == fp8.E4M3 and arch.linear_format == "fp8"

    def partial(self, x):
        """This rank's share of the output (before the all-reduce)."""
        h = mlp_activation(self.arch.activation, self.rt.mm(x, self.gate_up), self.arch.gated_mlp, self.rt.labels,
                           quant=self.quant)
        return self.rt.mm(h, self.down)

    def __call__(self, x):
        return self.rt.comm.all_reduce(self.partial(x))


class MoE:
    def __init__(self, arch, w: dict, rt):
        self.arch, self.w, self.rt = arch, w, rt
        # the shared expert joined to the routed ones as `joined` more experts (weights.join_shared_experts), or
        # an MLP of its own
        self.joined = w["w13"].shape[0] - arch.experts if "w13" in w else 0
        if self.joined and arch.routing.on_input:  # the joined pairs would read the routed experts' scaled input
            raise ValueError("a shared expert joined to routed experts whose weight scales their input (Llama 4): "
                             "lay the weights out with engine_layout(..., join_shared=False)")
        self.shared = MLP(arch, w, rt, "shared") if arch.shared_intermediate and not self.joined else None
        # the router and the shared expert's gate in one matmul where stacked (weights.py JOINT_ROWS)
        self.router_gate = stacked_rows(w["router"], w.get("shared_gate")) if arch.shared_gate else None
        self.mxfp4 = arch.experts_format == "mxfp4"
        self.fp8 = arch.experts_format == "fp8_block"  # e4m3 experts with a float32 scale per 128 x 128 block
        # the correction bias in float32 whatever the weights' dtype (vLLM keeps it so; the router kernel takes it)
        self.correction = w["router_correction"].float().contiguous() if "router_correction" in w else None
        self.rule = arch.routing.describe()  # the router's label, once (route() runs every layer of every step)
        self.pairs, self.pairs_refused, self.mx_dequant, self.one_token = None, None, None, None
        if w["router"].is_cuda:
            self.pairs = self._pairs_plan()
            self.one_token = self._one_token_plan()
            if isinstance(self.pairs, str):
                self.pairs, self.pairs_refused = None, self.pairs
            if self.mxfp4 and self.dtype == torch.bfloat16:
                self.mx_dequant = self._mx_dequant_plan(w["router"].device)
        rt.labels["moe"] = self.label()

    @property
    def dtype(self):
        """The activations' dtype: the norm's before the layer (the router's where it is not given: a float32
        router, MiniMax-M2's, is not the activations')."""
        return self.w.get("ffn_norm", self.w["router"]).dtype

    def _pairs_plan(self):
        """The bundled kernel's plan for this layer's experts, or the sentence saying why it cannot run them."""
        a, w = self.arch, self.w
        try:
            from ..kernels.skinny import moe_pairs_plan

            dtype = self.dtype
            fmt = "mxfp4" if self.mxfp4 else "fp8" if self.fp8 else ("bf16" if dtype == torch.bfloat16 else "fp16")
            inter = w["w2_blocks"].shape[-1] * 2 if self.mxfp4 else w["w2"].shape[-1]
            experts, top_k = a.experts + self.joined, a.top_k + self.joined
            key = (experts, a.hidden, inter, top_k, dtype, fmt, a.activation, self.joined, a.gated_mlp)
            plans = vars(self.rt).setdefault("moe_plans", {})  # one plan (and scratch) for every layer of the shape
            if key not in plans:
                plans[key] = moe_pairs_plan(experts, a.hidden, inter, top_k, dtype=dtype, weight_format=fmt,
                                            activation=a.activation, joined=self.joined, gated=a.gated_mlp)
            return plans[key]
        except (ValueError, RuntimeError, ImportError) as exc:
            return str(exc)

    def _one_token_plan(self):
        """The streaming GEMV's plan for this layer's experts at one token, or None where it does not run them (not
        Hopper, quantised experts, shapes off its tiles: the pairs kernel then)."""
        a, w = self.arch, self.w
        if not ONE_TOKEN_GEMV or self.mxfp4 or self.fp8 or w["w2"].shape[-1] < ONE_TOKEN_MIN_INTER:
            return None
        dtype, inter = self.dtype, w["w2"].shape[-1]
        experts, pairs = a.experts + self.joined, a.top_k + self.joined
        key = ("one_token", experts, a.hidden, inter, pairs, dtype, a.activation, a.gated_mlp)
        plans = vars(self.rt).setdefault("moe_plans", {})
        if key not in plans:
            try:
                from ..kernels.moe_one_token import one_token_moe_plan

                plans[key] = one_token_moe_plan(experts, a.hidden, inter, pairs, dtype, activation=a.activation,
                                                gated=a.gated_mlp, device=w["router"].device.index)
            except (ValueError, RuntimeError, ImportError):
                plans[key] = None
        return plans[key]

    def _mx_dequant_plan(self, device):
        """The mxfp4 -> bf16 kernel's plan, shared by the layers, or None where it cannot build (torch then)."""
        plans = vars(self.rt).setdefault("moe_plans", {})
        key = ("mxfp4_dequant", device.index)
        if key not in plans:
            try:
                from ..kernels.mxfp4 import Mxfp4DequantPlan

                plans[key] = Mxfp4DequantPlan(device)
            except (ValueError, RuntimeError, ImportError):
                plans[key] = None
        return plans[key]

    def _dequantized(self, name: str, dtype):
        """This layer's `name` experts (w13 / w2) in `dtype`: by the bundled kernel into the scratch every layer
        shares (each projection in turn: the GEMM before it on the stream has read it), else in torch."""
        if self.fp8:
            return fp8.dequantize_blocks(self.w[name], self.w[f"{name}_scale"], dtype)
        blocks, scales = self.w[f"{name}_blocks"], self.w[f"{name}_scales"]
        if self.mx_dequant is None or dtype != torch.bfloat16:
            return dequantize_mxfp4(blocks, scales, dtype)
        shape = (*blocks.shape[:-1], blocks.shape[-1] * 2)
        need = max(self.w[f"{n}_blocks"].numel() * 2 for n in ("w13", "w2"))
        scratch = vars(self.rt).setdefault("mxfp4_scratch", {})
        key = blocks.device.index
        if key not in scratch or scratch[key].numel() < need:
            scratch[key] = torch.empty(need, dtype=torch.bfloat16, device=blocks.device)
        out = scratch[key][:blocks.numel() * 2].view(shape)
        return self.mx_dequant.run(blocks, scales, out)

    def label(self) -> str:
        """What runs the routed experts, in the words verify reports."""
        rest = MXFP4_LABEL if self.mxfp4 else FP8_LABEL if self.fp8 else GROUPED_LABEL
        joined = (f"; the shared expert as {self.joined} more expert(s) of every token in the same launches (its "
                  f"weights joined to the routed experts', as SGLang's shared-experts fusion)") if self.joined else ""
        rest += joined
        if self.pairs is None:
            return rest + (f" (the bundled MoE kernel refused: {self.pairs_refused})" if self.pairs_refused else "")
        if self.mxfp4 or self.fp8:
            from ..kernels.skinny_config import EXPERT_CHUNK_TOKENS, row_pass

            rest = (ROWS_LABEL.format(bytes="e4m3 bytes" if self.fp8 else "packed bytes",
                                      pairs=row_pass("fp8" if self.fp8 else "mxfp4")) if self.pairs.expert_rows
                    else MXFP4_CHUNKS_LABEL.format(chunk=EXPERT_CHUNK_TOKENS)) + joined
            if self.mx_dequant is not None:
                rest += MXFP4_GROUPED_LABEL.format(tokens=MXFP4_GROUPED_TOKENS)
            if self.fp8 and self._fp8_dequant_ok():
                rest += FP8_GROUPED_LABEL.format(tokens=FP8_GROUPED_TOKENS, slice=FP8_SLICE_TOKENS,
                                                 chunk=FP8_CHUNK_EXPERTS)
        elif self.pairs.expert_rows:
            joined = ", the joined shared expert's passes spread over CTAs that start first" if self.joined else ""
            rest = BY_EXPERT_LABEL.format(pairs=BY_EXPERT_PAIRS, joined=joined) + rest
        packed = ", mxfp4 as packed bytes dequantised in registers" if self.mxfp4 else \
            ", e4m3 bytes times their block scales in registers" if self.fp8 else ""
        one = ONE_TOKEN_LABEL if self.one_token is not None else ""
        return PAIRS_LABEL.format(tokens=self.pairs.max_tokens, mxfp4=packed) + rest + one

    def route(self, logits, gate=None):
        """(weights [T, k + joined] float32, expert ids [T, k + joined]) from the router's logits by the model's rule
        (arch.routing, kvplan/model/routing.py: scores, correction bias, groups, top k, renormalised where the model
        does so, times the routed scaling factor); then the joined shared expert's parts (ids E, E + 1, ...) at
        weight sigmoid(gate), or 1 without a gate. On a GPU in one launch of the bundled router kernel
        (kvplan/kernels/router.cu), else in torch."""
        a, r = self.arch, self.arch.routing
        plan = self._router_plan(logits)
        if plan is not None:
            return plan.run(logits, gate if self.joined else None, correction=self.correction,
                            logit_bias=self.w.get("router_bias"))
        weights, ids = route_torch(r, a.top_k, logits, self.correction, self.w.get("router_bias"))
        if self.joined:
            t = logits.shape[0]
            share = torch.sigmoid(gate.float()).reshape(t, 1) if gate is not None else weights.new_ones(t, 1)
            weights = torch.cat([weights, share.expand(t, self.joined)], dim=1)
            ids = torch.cat([ids, torch.arange(a.experts, a.experts + self.joined, device=ids.device,
                                               dtype=ids.dtype).expand(t, self.joined)], dim=1)
        return weights, ids

    def _router_plan(self, logits):
        """The router kernel's plan for this layer's shape (shared by the layers), or None: CPU, or refused (the
        label says why)."""
        a, r = self.arch, self.arch.routing
        rule = self.rule
        if not logits.is_cuda:
            self.rt.labels["router"] = f"torch: {rule}"
            return None
        key = ("router", a.experts, a.top_k, logits.dtype, r, self.joined)
        plans = vars(self.rt).setdefault("moe_plans", {})
        if key not in plans:
            try:
                from ..kernels._checks import dtype_name
                from ..kernels.router import RouterPlan

                # int32 ids: what the pairs kernel takes (int64 cost a conversion launch per layer)
                plans[key] = RouterPlan(a.experts, a.top_k, dtype_name(logits.dtype), r.renormalize, r.scale,
                                        logits.device.index, ids_dtype="int32", shared=self.joined,
                                        scoring=r.scoring, groups=r.groups, topk_groups=r.topk_groups,
                                        correction=r.correction_bias, logit_bias=r.logit_bias)
            except (ValueError, RuntimeError, ImportError) as exc:
                plans[key] = str(exc)
        plan = plans[key]
        if isinstance(plan, str):
            self.rt.labels["router"] = f"torch: {rule} (the router kernel refused: {plan})"
            return None
        self.rt.labels["router"] = f"bundled router kernel (router.cu), one launch: {rule}"
        return plan

    def experts(self, x, weights, ids, shared=None, gate=None):
        """Every (token, expert) pair through its expert, plus `shared` (the shared expert's output) times
        sigmoid(gate) where given. With few pairs (SLOT_FACTOR x pairs < experts) each pair's expert weights are
        gathered and multiplied by its token (cost ~ the routed pairs); otherwise the pairs are sorted by expert
        and run as grouped GEMMs (cost ~ every expert: the grouped kernel does each expert's tile work even for
        the experts no token chose). The bundled kernel, where it takes the pairs (_kernel_takes), adds the shared
        expert in its combine launch."""
        if self.one_token is not None and ids.shape[0] == 1 and x.dtype == self.one_token.dtype:
            out = self.one_token.run(x.contiguous(), weights, ids.to(torch.int32), self.w["w13"], self.w["w2"])
            return _plus_shared(out, shared, gate)
        if self._kernel_takes(x, ids):
            w = self.w
            if self.mxfp4:
                w13, w2 = (w["w13_blocks"], w["w13_scales"]), (w["w2_blocks"], w["w2_scales"])
            elif self.fp8:
                w13, w2 = (w["w13"], w["w13_scale"]), (w["w2"], w["w2_scale"])
            else:
                w13, w2 = w["w13"], w["w2"]
            return self.pairs.run(x.contiguous(), weights, ids, w13, w2, shared=shared, shared_gate=gate)
        if (self.fp8 and ids.shape[0] >= FP8_GROUPED_TOKENS and self._fp8_dequant_ok(x)
                and not torch.cuda.is_current_stream_capturing()):  # (the chunks' rows are read back to the host)
            def part(tensor, s):
                return None if tensor is None else tensor[s:s + FP8_SLICE_TOKENS]

            if ids.shape[0] <= FP8_SLICE_TOKENS:
                return self._grouped(x, weights, ids, shared, gate, chunk=FP8_CHUNK_EXPERTS)
            out = torch.empty_like(x)
            for s in range(0, ids.shape[0], FP8_SLICE_TOKENS):
                out[s:s + FP8_SLICE_TOKENS] = self._grouped(part(x, s), part(weights, s), part(ids, s), part(shared, s),
                                                            part(gate, s), chunk=FP8_CHUNK_EXPERTS)
            return out
        if SLOT_FACTOR * ids.numel() >= self.arch.experts:
            return self._grouped(x, weights, ids, shared, gate)
        return _plus_shared(self._pairs(x, weights, ids), shared, gate)

    def _kernel_takes(self, x, ids) -> bool:
        """Whether the bundled kernel runs these pairs: up to its max_tokens tokens in pair slots; above, by expert,
        for mxfp4 experts below MXFP4_GROUPED_TOKENS (always where the dequantisation kernel is missing), for 16-bit
        ones (the plan's row-tile kernel, on by default) while the pairs per expert average at most
        BY_EXPERT_PAIRS."""
        p = self.pairs
        if p is None or x.dtype != p.dtype:
            return False
        t = ids.shape[0]
        if t <= p.max_tokens:
            return True
        if self.mxfp4:
            return self.mx_dequant is None or t < MXFP4_GROUPED_TOKENS
        if self.fp8:  # by expert up to FP8_GROUPED_TOKENS, where the dequantisation cannot run, or in a graph capture
            return t < FP8_GROUPED_TOKENS or not self._fp8_dequant_ok(x) or torch.cuda.is_current_stream_capturing()
        return p.expert_rows and ids.numel() <= BY_EXPERT_PAIRS * p.experts

    def _pairs(self, x, weights, ids):
        a, w = self.arch, self.w
        t, k = ids.shape
        flat = ids.reshape(-1)
        if self.mxfp4:
            w13 = dequantize_mxfp4(w["w13_blocks"][flat], w["w13_scales"][flat], x.dtype)
            w2 = dequantize_mxfp4(w["w2_blocks"][flat], w["w2_scales"][flat], x.dtype)
        elif self.fp8:
            w13 = fp8.dequantize_blocks(w["w13"][flat], w["w13_scale"][flat], x.dtype)
            w2 = fp8.dequantize_blocks(w["w2"][flat], w["w2_scale"][flat], x.dtype)
        else:
            w13, w2 = w["w13"][flat], w["w2"][flat]
        rows = x.repeat_interleave(k, dim=0)
        h = mlp_activation(a.activation, torch.bmm(w13, rows[:, :, None])[..., 0], a.gated_mlp, self.rt.labels)
        y = torch.bmm(w2, h[:, :, None].to(w2.dtype))[..., 0]
        return (y.view(t, k, -1) * weights[..., None].to(y.dtype)).sum(1).to(x.dtype)

    def _fp8_dequant_ok(self, x=None) -> bool:
        """Whether the bundled fp8 -> bf16 kernel takes this layer's experts, both projections (and x's dtype: bf16)."""
        from ..kernels.fp8_quant import fp8_block_dequant_supported

        return (x is None or x.dtype == torch.bfloat16) and all(fp8_block_dequant_supported(self.w[n]) is None
                                                                  for n in ("w13", "w2"))

    def _fp8_chunk(self, name: str, e0: int, e1: int):
        """Experts e0..e1-1 of `name` (w13 / w2) in bf16, by the bundled kernel into the scratch every layer shares
        (each projection in turn: the GEMM before it on the stream has read it); torch's form off the GPU."""
        from ..kernels.fp8_quant import fp8_block_dequant

        q = self.w[name][e0:e1]
        if not q.is_cuda:
            return fp8.dequantize_blocks(q, self.w[f"{name}_scale"][e0:e1], torch.bfloat16)
        need = max(self.w[n][0].numel() for n in ("w13", "w2")) * FP8_CHUNK_EXPERTS
        scratch = vars(self.rt).setdefault("fp8_scratch", {})
        key = q.device.index
        if key not in scratch or scratch[key].numel() < need:
            scratch[key] = torch.empty(need, dtype=torch.bfloat16, device=q.device)
        return fp8_block_dequant(q, self.w[f"{name}_scale"][e0:e1], scratch[key][:q.numel()].view(q.shape))

    def _grouped(self, x, weights, ids, shared=None, gate=None, chunk=None):
        """`chunk`: block-fp8 experts that many at a time through the bundled dequantisation (_fp8_chunk); the
        chunks' row ranges are read back to the host once a layer (prefill only: decode takes the pairs kernel)."""
        a, w = self.arch, self.w
        t, k = ids.shape
        flat = ids.reshape(-1)
        # 16-bit keys: two radix passes, not four (int32) or eight (int64); see kernels/skinny.py pairs_by_expert
        order = torch.argsort(flat.to(torch.int16) if a.experts + self.joined < 2**15 else flat, stable=True)
        counts = torch.zeros(a.experts + self.joined, dtype=torch.int32, device=x.device)
        counts.scatter_add_(0, flat.to(torch.int64), torch.ones_like(flat, dtype=torch.int32))
        offsets = torch.cumsum(counts, 0, dtype=torch.int32)
        token = order // k
        rows = x[token]
        if chunk:  # each chunk's outputs into its own rows once its up projection has read them: no second buffer
            y = rows
            ends = [0] + offsets.tolist()
            for e0 in range(0, len(ends) - 1, chunk):
                e1 = min(len(ends) - 1, e0 + chunk)
                r0, r1 = ends[e0], ends[e1]
                if r1 > r0:
                    offs = offsets[e0:e1] - r0
                    h = mlp_activation(a.activation, grouped_mm(rows[r0:r1], self._fp8_chunk("w13", e0, e1), offs),
                                       a.gated_mlp, self.rt.labels)
                    y[r0:r1] = grouped_mm(h, self._fp8_chunk("w2", e0, e1), offs)
        else:
            w13 = self._dequantized("w13", x.dtype) if self.mxfp4 or self.fp8 else w["w13"]
            h = mlp_activation(a.activation, grouped_mm(rows, w13, offsets), a.gated_mlp, self.rt.labels)
            w2 = self._dequantized("w2", x.dtype) if self.mxfp4 or self.fp8 else w["w2"]  # (the scratch w13 was in)
            y = grouped_mm(h.to(rows.dtype), w2, offsets).to(x.dtype)
        # each token's k rows, where the sort left them, weighted and summed (no atomics: index_add_ over the
        # sorted rows took 3.5 ms of Qwen3-Next's 60 ms step at 440 tokens x 11 pairs, H200, session 9); on a GPU
        # one launch of the bundled gather-sum reads each row once, with the shared expert added in it
        where = torch.empty_like(order)
        where[order] = torch.arange(order.numel(), device=order.device, dtype=order.dtype)
        if y.is_cuda:
            from ..kernels.moe_gather_sum import gather_sum, gather_sum_supported

            why = gather_sum_supported(y, where, weights, shared, gate)
            self.rt.labels["moe combine"] = "bundled gather-sum (moe_gather_sum.cu)" if why is None else \
                f"torch gather + batched matmul (the gather-sum kernel refused: {why})"
            if why is None:
                return gather_sum(y, where, weights, shared, gate)
        rows_tk = y.index_select(0, where).view(t, k, -1)
        out = torch.bmm(weights[:, None, :].to(y.dtype), rows_tk)[:, 0].to(x.dtype)
        return _plus_shared(out, shared, gate)

    def __call__(self, x):
        if self.arch.shared_gate:
            logits, gate = self.rt.mm.pair(x, self.w["router"], self.w["shared_gate"], self.router_gate)
        else:
            # in the router's dtype: a float32 router (MiniMax-M2) gives float32 logits from x in float32, as vLLM's
            # GateLinear(params_dtype=float32, out_dtype=float32); the router kernel takes them as they come
            logits, gate = self.rt.mm(x.to(self.w["router"].dtype), self.w["router"]), None
        weights, ids = self.route(logits, gate)
        routed = x
        if self.arch.routing.on_input:  # Llama 4 (top 1): the weight scales what the expert reads, not its output
            routed = (x * weights.to(x.dtype)).contiguous()
            weights = torch.ones_like(weights)
        if self.shared is None:  # none, or joined to the routed experts (its gate is in `weights`)
            return self.rt.comm.all_reduce(self.experts(routed, weights, ids))
        return self.rt.comm.all_reduce(self.experts(routed, weights, ids, self.shared.partial(x).contiguous(), gate))
