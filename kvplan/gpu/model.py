"""verify's forward pass of a decoder-only model, one TP rank, read top to bottom:

    tokens -> embedding (vocabulary split across ranks, all-reduced)
           -> per layer: norm -> mixer (attention | MLA | DSA | DeltaNet | KDA | Mamba-2 | Mamba-1) -> [norm] -> +
                         norm -> feed-forward (MLP | MoE)                                                 -> [norm] -> +
              (a Nemotron-H block has one of the two: its mixer or its feed-forward; Gemma 4's blocks are
              kvplan/gpu/gemma4.py's, Gemma 3n's kvplan/gpu/gemma3n.py's over its AltUp streams)
           -> final norm -> LM head (logits gathered across ranks, soft-capped where the model caps them)

Decode processes one new token per sequence against the paged caches; prefill processes R sequences of L
tokens with SDPA and stores their K/V. DSA is DeepSeek sparse attention: MLA over the latents a lightning indexer
picks (kvplan/gpu/sparse_mla.py). The same code runs on the CPU with tiny shapes (the tests compare it
with kvplan/gpu/reference.py) and on the GPU with the model's real shapes."""

from __future__ import annotations

import torch

from . import fp8
from .comm import LocalComm
from .deltanet import GatedDeltaNet
from .ffn import MLP, MoE
from .gemma3n import AltUpStreams, Gemma3nBlock, Gemma3nPerLayerInputs
from .gemma4 import Gemma4Block, Gemma4Rope, PerLayerInputs
from .kda import KimiDeltaAttention
from .mamba import Mamba2
from .mamba1 import Mamba1
from .mixers import Attention, MLAttention
from .ops import Matmul, Norms, Rope, stacked_rows, vocab_parallel_embedding
from .paged import PagedAttention
from .sparse_mla import SparseMLAttention
from .weights import JOINT_ROWS, block_joint

MIXERS = {"attention": Attention, "mla": MLAttention, "linear": GatedDeltaNet, "kda": KimiDeltaAttention,
          "mamba": Mamba2, "mamba1": Mamba1}
FFNS = {"dense": MLP, "moe": MoE}


class Runtime:
    """What every layer shares: the matmul and its chosen forms, the paged attention, the collectives."""

    def __init__(self, device, comm=None):
        self.device = torch.device(device)
        self.mm = Matmul()
        self.paged = PagedAttention(self.device)
        self.comm = comm or LocalComm()
        self.labels: dict = {}  # layer part -> what runs it (beside the attention's, in rt.paged.labels)
        self.norms = Norms(self.device, self.labels)
        self.moe_plans: dict = {}  # the MoE pairs kernel's plan per expert shape, shared by the layers


def layer_weights(weights: dict, index: int) -> dict:
    prefix = f"layers.{index}."
    return {name[len(prefix):]: t for name, t in weights.items() if name.startswith(prefix)}


class Block:
    """One decoder layer. The residual stream x enters with the previous layer's output h not yet added: each add
    is fused into the norm after it (rt.norms), as engines fuse it."""

    def __init__(self, arch, layer, w: dict, rt: Runtime):
        self.arch, self.index, self.cache, self.w, self.rt = arch, layer.index, layer.cache, w, rt
        mixer = SparseMLAttention if layer.mixer == "mla" and arch.index_topk else MIXERS.get(layer.mixer)
        self.mixer = mixer(arch, layer, w, rt) if mixer is not None else None
        self.keys = layer.keys  # a sparse MLA layer's indexer key cache (its place in spec.layers)
        self.ffn = FFNS[layer.ffn](arch, w, rt) if layer.ffn != "none" else None
        # an fp8 checkpoint's norms feed fp8 linears only (QKV, gate/up: arch.py refuses other layers in fp8): they
        # hand over e4m3 rows, as vLLM's fused RMSNorm + quant does
        self.fp8_inputs = arch.linear_format == "fp8"

    def add_norm(self, x, h, name: str, quant: bool = False):
        return self.rt.norms.add_norm(x, h, self.w[name], self.arch.norm_eps, self.arch.norm_plus_one, quant)

    def norm(self, x, name: str):
        return self.add_norm(x, None, name)[1]

    def __call__(self, x, h, step, cache, keys=None):
        if self.mixer is not None:
            x, n = self.add_norm(x, h, "attn_norm", self.fp8_inputs)
            h = self.mixer(n, step, cache) if self.keys is None else self.mixer(n, step, cache, keys)
            if self.arch.sandwich_norms:
                h = self.norm(h, "post_attn_norm")
        if self.ffn is not None:
            x, n = self.add_norm(x, h, "ffn_norm", self.fp8_inputs)
            h = self.ffn(n)
            if self.arch.sandwich_norms:
                h = self.norm(h, "post_ffn_norm")
        return x, h


def register_block_scales(mm, weights: dict) -> None:
    """Tell the model's Matmul which e4m3 weights are block-scaled, and by what: every `{name}` with a
    `{name}_scale`, and the stacked JOINT_ROWS pairs' joint weights (the view decode multiplies by)."""
    for name, scale in weights.items():
        base = name[:-len("_scale")]
        if name.endswith("_scale") and base in weights and weights[base].dtype == fp8.E4M3:
            mm.register_block(weights[base], scale)
    for name, w in weights.items():
        prefix, _, base = name.rpartition(".")
        for first, second in JOINT_ROWS:
            if base == first:
                joint = stacked_rows(w, weights.get(f"{prefix}.{second}"))
                scale = block_joint(joint, weights, prefix + ".", first)
                if scale is not None:
                    mm.register_block(joint, scale)


class Transformer:
    def __init__(self, arch, weights: dict, rt: Runtime):
        self.arch, self.w, self.rt = arch, weights, rt
        block = Gemma4Block if arch.is_gemma4 else Gemma3nBlock if arch.is_gemma3n else Block
        self.blocks = [block(arch, layer, layer_weights(weights, layer.index), rt) for layer in arch.layers]
        dtype = weights["norm"].dtype if weights["norm"].is_floating_point() else None
        rt.mm.out_dtype = dtype or rt.mm.out_dtype  # what fp8 linears over e4m3 rows return
        if arch.linear_format == "fp8":
            rt.labels["fp8 linears"] = fp8.LABEL
        if arch.linear_format == "fp8_block":
            register_block_scales(rt.mm, weights)
            rt.labels["fp8 linears"] = fp8.BLOCK_LABEL.format(tokens=fp8.SKINNY_TOKENS)
        self.rope = Rope(arch.qk_rope_dim if "mla" in arch.mixers else arch.rope_dim, rt.device, dtype)
        self.thetas = sorted({layer.rope_theta for layer in arch.layers})
        # Gemma 4 and 3n: tables per layer shape and rotation, and the per-layer inputs (kvplan/gpu/gemma4.py);
        # Gemma 3n's AltUp streams (kvplan/gpu/gemma3n.py)
        self.layer_rope = Gemma4Rope(arch, rt.device, dtype) if arch.is_gemma4 or arch.is_gemma3n else None
        inputs = Gemma3nPerLayerInputs if arch.is_gemma3n else PerLayerInputs
        self.per_layer = inputs(arch, weights, rt) if arch.per_layer_input else None
        self.streams = AltUpStreams(arch, weights, rt) if arch.is_gemma3n else None
        self.caches: dict = {}  # cache index (LayerArch.cache) -> LayerCache (none during the profile run)

    def embed(self, tokens):
        a, comm = self.arch, self.rt.comm
        table = self.w["embed"]
        x = vocab_parallel_embedding(tokens, table, a.vocab_rank, a.tp, comm)
        return x * a.embed_scale if a.embed_scale != 1.0 else x

    def logits(self, x):
        head = self.w.get("lm_head", self.w["embed"])
        out = self.rt.comm.all_gather_last(self.rt.mm(x, head))[:, :self.arch.vocab]
        cap = self.arch.logit_softcap  # vLLM LogitsProcessor(soft_cap=...): tanh(logits / cap) x cap
        return torch.tanh(out / cap) * cap if cap else out

    def forward(self, tokens, step):
        """tokens [T] -> logits [rows, vocab]: one row per decode sequence, or the last token of each prefill
        sequence."""
        if self.layer_rope is not None:  # Gemma 4 and 3n: a table per rotation of their layers
            step.rope = self.layer_rope.tables(step.positions)
        else:
            # MLA without RoPE (Kimi Linear): every position's rotation by angle 0, so that the rotary parts pass
            # unrotated through the same code (and the fused latent kernel) as a rotated MLA's
            positions = step.positions if self.arch.mla_rope else torch.zeros_like(step.positions)
            step.rope = {theta: self.rope.tables(positions, theta) for theta in self.thetas}
        x, h = self.embed(tokens), None
        if self.per_layer is not None:
            step.per_layer = self.per_layer(tokens, x)
        if self.streams is not None:  # Gemma 3n: the blocks take and return its AltUp streams
            x = self.streams.embed(x)
        for block in self.blocks:
            x, h = block(x, h, step, self.caches.get(block.cache), self.caches.get(block.keys))
        if self.streams is not None:
            x = self.streams.unembed(x)
        x = self.rt.norms.add_norm(x, h, self.w["norm"], self.arch.norm_eps, self.arch.norm_plus_one)[1]
        if not step.decode:
            x = x.view(step.seqs, step.seq_len, -1)[:, -1]
        return self.logits(x)

    __call__ = forward
