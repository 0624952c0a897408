"""Gemma 3n's decoder layer, AltUp streams and per-layer inputs, as vLLM 0.32.0 model_executor/models/gemma3n.py
runs them (the shapes and the lines cited: kvplan/verify/arch.py, its Gemma 3n section). kvplan/gpu/model.py
builds these for a Gemma 3n Arch:

    embedding x0 -> streams [x0, rescaled altup_proj_i(x0) ...]                       (altup_embed)
    per layer:  p = predict(streams)  (each stream plus a mix of all, by coefficients routed off the active one)
                a = p[active]; n = input_norm(a)
                x = (post_attn_norm(attention(n)) + a + n + laurel_norm(right(left(n)))) / sqrt(2)
                x = x + post_ffn_norm(MLP(ffn_norm(x)))      (activation-sparse where the layer says)
                c = correct(p, x)  (every stream plus its coefficient x (x - a))
                c[1:] += ple_norm(ple_proj(gelu(ple_gate(c[active] x output_scale)) x this layer's per-layer input))
    streams -> [s0, rescaled altup_unembed_i(s_i) ...] averaged -> final norm -> logits (soft-capped)

Attention is Gemma 4's layer (kvplan/gpu/gemma4.py Gemma4Attention: q and k RMS-normed with weights, v without,
scaling 1.0, KV-sharing layers projecting q alone over their target's cache); head_dim 256 runs the bundled decode
kernel and the fused RoPE + cache-write kernel on a GPU."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .ffn import MLP
from .gemma4 import Gemma4Attention, PerLayerInputs
from .ops import activation, rms_norm
from .weights import torch_dtype

SPARSE_LABEL = ("torch mean, std, relu and tanh-GELU x up over each rank's share of the gate (some 8 launches; vLLM "
                "0.32 runs one Triton kernel, kernels/triton/activation.py _gelu_and_mul_sparse_kernel); NOT a CUDA "
                "kernel")


def held(value: float, arch) -> float:
    """`value` as vLLM holds such a constant: a tensor of the model's dtype (gemma3n.py's buffers), whatever dtype
    the activations run in (the tests' float32: the same rounded constants as on the GPU)."""
    return torch.tensor(value, dtype=torch_dtype(arch.dtype)).item()


def std_normal_quantile(p: float) -> float:
    """The standard normal's quantile at `p`, as GeluAndMulSparse takes it (layers/activation.py:337-339: float32
    Normal(0, 1).icdf)."""
    return torch.distributions.normal.Normal(0, 1).icdf(torch.tensor(p, dtype=torch.float32)).item()


def rms(x):
    """Each row's root mean square, in float32 at least (altup_embed / altup_unembed's magnitudes)."""
    return x.to(torch.promote_types(x.dtype, torch.float32)).pow(2).mean(-1, keepdim=True).sqrt()


class Gemma3nPerLayerInputs(PerLayerInputs):
    """Gemma 4's per-layer inputs with Gemma 3n's scales (gemma3n.py:619-707): the table times sqrt(width) and the
    sum times rsqrt(2), both held in the model dtype; the projection normed as it comes (vLLM registers a
    per_layer_projection_scale and never applies it). vLLM's Gemma3nForCausalLM is called without the table's part
    (gemma3n.py:701-706: the model runner passes no per_layer_inputs): the normed projection alone."""

    def __init__(self, arch, w: dict, rt):
        super().__init__(arch, w, rt)
        self.table_scale = held(arch.per_layer_input ** 0.5, arch)
        self.projection_scale, self.sum_scale = 1.0, held(2 ** -0.5, arch)

    def __call__(self, tokens, x):
        if self.arch.per_layer_table:
            return super().__call__(tokens, x)
        a = self.arch
        projected = self.rt.comm.all_gather_last(self.rt.mm(x, self.w["ple_model_proj"]))
        width = len(a.layers) * a.per_layer_input
        if projected.shape[-1] < width:  # one simulated rank of a larger group: its share again
            projected = projected.repeat(1, width // projected.shape[-1])
        return rms_norm(projected.view(x.shape[0], len(a.layers), a.per_layer_input), self.w["ple_proj_norm"],
                        a.norm_eps)


class AltUpStreams:
    """The model's AltUp embed and unembed (gemma3n.py:712-723, 1047-1067): streams [N, T, hidden]. Each projection
    is column-parallel with its output gathered (one rank simulated alone: its share stands in for the others')."""

    def __init__(self, arch, w: dict, rt):
        self.arch, self.rt = arch, rt
        self.embeds = [w[f"altup_proj.{i}"] for i in range(arch.altup_inputs - 1)]
        self.unembeds = [w[f"altup_unembed.{i}"] for i in range(arch.altup_inputs - 1)]

    def _projected(self, x, weight, target):
        """weight x, gathered, rescaled to the RMS `target`. vLLM divides by max(RMS, EPS) with EPS = finfo().min, a
        negative number (gemma3n.py:61, 721): the RMS itself; a floor at the smallest positive float instead keeps a
        row of zeros (a simulated rank's ids past its vocabulary slice) zeros, where vLLM's would be 0 / 0."""
        out = self.rt.comm.all_gather_last(self.rt.mm(x, weight))
        if out.shape[-1] < self.arch.hidden:
            out = out.repeat(1, self.arch.hidden // out.shape[-1])
        return (out * (target / rms(out).clamp(min=torch.finfo(torch.float32).tiny))).to(x.dtype)

    def embed(self, x):
        target = rms(x)
        return torch.stack([x] + [self._projected(x, weight, target) for weight in self.embeds])

    def unembed(self, streams):
        target = rms(streams[0])
        parts = [streams[0]] + [self._projected(streams[i + 1], weight, target) for i, weight in
                                enumerate(self.unembeds)]
        return torch.stack(parts).mean(0)


class AltUp:
    """A layer's AltUp (gemma3n.py:64-184 Gemma3nAltUp): the modality router reads a stream RMS-normed (with a
    weight) times 1/hidden, tanh in float32; predict mixes the streams by N x N coefficients a token, correct adds
    each stream's coefficient (+ 1) times the innovation."""

    def __init__(self, arch, w: dict, rt):
        self.arch, self.w, self.rt = arch, w, rt
        self.n, self.active = arch.altup_inputs, arch.altup_active
        self.router_scale = held(1.0 / arch.hidden, arch)

    def modalities(self, x):
        normed = rms_norm(x, self.w["altup_router_norm"], self.arch.norm_eps) * self.router_scale
        return torch.tanh(self.rt.mm(normed, self.w["altup_router"]).float()).to(x.dtype)

    def predict(self, streams):
        t = streams.shape[1]
        coefs = self.rt.mm(self.modalities(streams[self.active]), self.w["altup_prediction"]).view(t, self.n, self.n)
        mixed = torch.matmul(streams.permute(1, 2, 0), coefs.transpose(1, 2))  # [T, hidden, N]
        return (mixed.permute(2, 0, 1) + streams).contiguous()

    def correct(self, predictions, activated):
        coefs = self.rt.mm(self.modalities(activated), self.w["altup_correction"]) + 1.0  # [T, N]
        innovation = activated - predictions[self.active]
        return predictions + coefs.t()[:, :, None] * innovation[None]

    def scaled_output(self, x):
        scale = self.w["altup_output_scale"]
        return (x.to(torch.promote_types(x.dtype, scale.dtype)) * scale).to(x.dtype)


class SparseMLP(MLP):
    """Gemma3nMLP (gemma3n.py:229-273): the gated tanh-GELU MLP of the layer's width; where the layer's sparsity s
    > 0, GeluAndMulSparse (vllm/ir/ops/activation.py gelu_and_mul_sparse): the gate less (its mean + its population
    std x the standard normal's quantile at s), clipped at 0, before the GELU, the statistics over this rank's share
    of the gate (vLLM keeps them local to a rank)."""

    def __init__(self, arch, layer, w: dict, rt):
        super().__init__(arch, w, rt)
        self.multiplier = std_normal_quantile(layer.sparsity) if layer.sparsity else None
        if self.multiplier is not None and self.gate_up.is_cuda:
            rt.labels["activation-sparse MLPs"] = SPARSE_LABEL

    def partial(self, x):
        if self.multiplier is None:
            return super().partial(x)
        gate, up = self.rt.mm(x, self.gate_up).chunk(2, dim=-1)
        cutoff = gate.mean(-1, keepdim=True) + gate.std(-1, keepdim=True, unbiased=False) * self.multiplier
        return self.rt.mm(activation("gelu_tanh", F.relu(gate - cutoff)) * up, self.down)


class Gemma3nBlock:
    """One Gemma 3n decoder layer (gemma3n.py Gemma3nDecoderLayer.forward). It takes and returns the streams
    [N, T, hidden] (x, None: nothing left for the next norm to add)."""

    def __init__(self, arch, layer, w: dict, rt):
        self.arch, self.index, self.w, self.rt = arch, layer.index, w, rt
        self.cache = layer.cache if layer.reads is None else layer.reads  # the cache it writes, or reads
        self.keys = None  # no indexer key cache (Block.keys: sparse MLA's)
        self.altup = AltUp(arch, w, rt)
        self.mixer = Gemma4Attention(arch, layer, w, rt)
        self.ffn = SparseMLP(arch, layer, w, rt)
        self.sqrt2 = 2.0 ** 0.5  # gemma3n.py:555 torch.sqrt(torch.tensor(2.0)): float32

    def norm(self, x, name: str):
        return self.rt.norms.add_norm(x, None, self.w[name], self.arch.norm_eps)[1]

    def laurel(self, x):
        """Gemma3nLaurelBlock: x + norm(linear_right(linear_left(x))), a column- then row-parallel pair."""
        partial = self.rt.mm(self.rt.mm(x, self.w["laurel_left"]), self.w["laurel_right"])
        return x + self.norm(self.rt.comm.all_reduce(partial), "laurel_norm")

    def __call__(self, streams, h, step, cache, keys=None):
        w, rt, active = self.w, self.rt, self.arch.altup_active
        predictions = self.altup.predict(streams)
        a = predictions[active]
        n = self.norm(a, "attn_norm")
        x = (self.norm(self.mixer(n, step, cache), "post_attn_norm") + a + self.laurel(n)) / self.sqrt2
        x = x + self.norm(self.ffn(self.norm(x, "ffn_norm")), "post_ffn_norm")
        corrected = self.altup.correct(predictions, x)
        gate = activation("gelu_tanh", rt.mm(self.altup.scaled_output(corrected[active]), w["ple_gate"]))
        gated = gate * step.per_layer[:, self.index]
        corrected[1:] += self.norm(rt.mm(gated, w["ple_proj"]), "ple_norm")
        return corrected, None
