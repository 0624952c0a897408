"""An MoE layer's routed experts at one token as two streaming GEMVs (gemv_stream.cu's gather form, sm_90):

    plan = one_token_moe_plan(experts, hidden, inter, pairs, torch.bfloat16, device=0)
    y = plan.run(x, wts, ids, w13, w2)   # x [1, hidden], wts float32 / ids int32 [1, pairs] -> y [1, hidden]

The gate/up stage is one GEMV over the token's experts' [2I, hidden] matrices stacked (a tile of 64 rows in one
expert, found through ids by the TMA copy), then the down stage as one GEMV whose k runs over the experts'
activations laid end to end, each expert's sums times its routing weight before they are added: the weighted sum
over the experts leaves the down launch, with no combine launch: three launches a layer. (The activation taken into
the down launch, made from the gate/up output in every MMA warp as it was read, ran slower: H200, session 43,
GLM-4.7-Flash 56 against 36 us a layer; so did the down launch reading the ids before its wait, which needs the
gate/up launch to release its dependents only after its own wait: 41 us.) Why: at one token the pair-slot
kernel (skinny_gemm.cu) gives each (pair, 32 rows) a CTA of a few k steps, and a launch of such CTAs leaves the
memory system waiting (H200: DeepSeek-V3's experts at tp 8 32% of read, GLM-4.7-Flash's 44%,
benchmarks/RESULTS.md sessions 39 and 41); the streaming GEMV keeps a ring of 8 KB TMA boxes per SM over the stage.

Weights: 16-bit (w13 [experts, 2I or I, hidden], w2 [experts, hidden, I]) or ``weight_format="fp8"``, DeepSeek-V3's
block-scaled e4m3 as (values, scales) pairs; then x and the activations are quantised per 128 values first
(fp8_quant.cu's group kernel: W8A8 as vLLM runs those experts): five launches. ``gated=False``: experts without
a gate (Nemotron-H's squared ReLU). Bad arguments raise ``ValueError`` naming the argument; no CUDA / NVRTC or a GPU
other than sm_90 raises ``KernelUnavailableError``.
"""

from __future__ import annotations

FORMATS = ("16bit", "fp8")


def one_token_moe_plan(experts, hidden, inter, pairs, dtype, weight_format="16bit", activation="silu", gated=True,
                       device=None) -> "OneTokenMoEPlan":
    return OneTokenMoEPlan(experts, hidden, inter, pairs, dtype, weight_format, activation, gated, device)


class OneTokenMoEPlan:
    """Both stages' GEMV plans (each with its own small workspace: one stream at a time)."""

    def __init__(self, experts, hidden, inter, pairs, dtype, weight_format="16bit", activation="silu", gated=True,
                 device=None):
        import torch

        from .gated_act import ACTIVATIONS, UNGATED
        from .gemv_stream import gemv_stream_plan

        if weight_format not in FORMATS:
            raise ValueError(f"weight_format must be one of {FORMATS}, got {weight_format!r}")
        if dtype not in (torch.bfloat16, torch.float16) or (weight_format == "fp8" and dtype != torch.bfloat16):
            raise ValueError(f"dtype must be bfloat16 or float16 (bfloat16 with fp8 weights), got {dtype}")
        kinds = ACTIVATIONS if gated else UNGATED
        if activation not in kinds:
            raise ValueError(f"activation must be one of {', '.join(kinds)} for {'' if gated else 'un'}gated experts, "
                             f"got {activation!r}")
        self.fp8 = weight_format == "fp8"
        self.dtype, self.activation, self.gated = dtype, activation, gated
        self.pairs, self.inter, self.up_rows = pairs, inter, (2 if gated else 1) * inter
        w = torch.float8_e4m3fn if self.fp8 else dtype
        common = dict(max_batch=1, device=device, experts=experts, pairs=pairs, block_scaled=self.fp8)
        self.up = gemv_stream_plan(self.up_rows, hidden, w, gather="rows", **common)
        self.down = gemv_stream_plan(hidden, inter, w, gather="k", **common)

    def run(self, x, wts, ids, w13, w2, out=None):
        """x [1, hidden]; wts float32 and ids int32, [1, pairs] (the router's); w13, w2 the layer's experts (fp8:
        (values, scales) pairs); out [1, hidden] or None."""
        from .gated_act import gated_act, ungated_act

        ids, wts = ids.reshape(-1), wts.reshape(-1)
        if self.fp8:
            (q13, s13), (q2, s2) = w13, w2
            qx, sx = self._quant(x)
            y13 = self.up.run(qx, q13, w_scales=s13, x_scales=sx, ids=ids)
        else:
            y13 = self.up.run(x, w13, ids=ids)
        rows = y13.view(self.pairs, self.up_rows)
        h = (gated_act if self.gated else ungated_act)(rows, self.activation).view(1, self.pairs * self.inter)
        if self.fp8:
            qh, sh = self._quant(h)
            return self.down.run(qh, q2, out, w_scales=s2, x_scales=sh, ids=ids, wts=wts)
        return self.down.run(h, w2, out, ids=ids, wts=wts)

    @staticmethod
    def _quant(x):
        from .fp8_quant import fp8_group_quant

        return fp8_group_quant(x)
