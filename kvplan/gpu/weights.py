"""Dummy weights of a rank: the real shapes and stored precision (kvplan/verify/arch.py), random values of a
sane scale (never zeros: they hide bugs and can run faster than real data). Also the tests' way to make one
set of full weights and cut a rank's shard of it with vLLM's sharding."""

from __future__ import annotations

import torch

from ..verify.arch import Arch
from . import fp8
from .ops import STACK_ROWS_ALIGN
from ..verify.shards import WeightSpec, rank_weights, shard_slices

FP4_VALUES = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0)
E8M0_BIAS = 127
FILL_ROWS = 4096  # rows of an fp8 matrix drawn in float32 at once
SCALE_BYTES = (119, 124)  # E8M0 scales 2^-8 .. 2^-4 keep dequantised experts near fan_in^-0.5


def torch_dtype(name: str):
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[name]


def _stored(spec: WeightSpec, dtype):
    """The torch dtype of a WeightSpec: packed bytes, e4m3, float32, or the model's `dtype`."""
    return {"u8": torch.uint8, "fp8": fp8.E4M3, "fp32": torch.float32}.get(spec.dtype, dtype)


def _fill(spec: WeightSpec, t, plus_one: bool, generator=None) -> None:
    """Values by what the tensor is: norms near 1 (near 0 where the model adds 1), DeltaNet's decay terms in
    their trained range, packed fp4 bytes uniform and their scales in a narrow band, matrices ~N(0, 1/fan_in)."""
    base = spec.name.rsplit(".", 1)[-1]
    if t.dtype == torch.uint8:
        low, high = SCALE_BYTES if base.endswith("scales") else (0, 256)
        t.random_(low, high, generator=generator)
    elif base.endswith("norm"):
        t.normal_(0.0 if plus_one else 1.0, 0.1, generator=generator)
    elif base == "A_log":
        t.uniform_(0.0, 2.7, generator=generator)  # log(1) .. log(16)
    elif base in ("layer_scalar", "router_per_expert", "altup_output_scale"):
        # Gemma 4's scalars on a layer's output, an expert's weight; Gemma 3n's on its corrected active stream
        t.uniform_(0.8, 1.2, generator=generator)
    elif base in ("dt_bias", "qkv_bias", "router_bias", "router_correction", "idx_k_norm_bias"):
        t.normal_(0.0, 0.1, generator=generator)
    elif base.endswith("_scale"):  # block scales (fp8.py): around the scale the e4m3 values were drawn at, not 2^k
        t.uniform_(0.75 * fp8.WEIGHT_SCALE, 1.25 * fp8.WEIGHT_SCALE, generator=generator)
    else:
        fan_in = spec.full_shape[-1] if len(spec.full_shape) > 1 else 1
        if t.dtype != fp8.E4M3:
            t.normal_(0.0, fan_in ** -0.5, generator=generator)
            return
        for row in range(0, t.shape[0], FILL_ROWS):  # through float32 a slice at a time (no whole-matrix copy)
            part = t[row:row + FILL_ROWS]
            values = torch.empty(part.shape, dtype=torch.float32, device=t.device)
            fp8.store_weights(part, values.normal_(0.0, fan_in ** -0.5, generator=generator))


def allocate_weights(arch: Arch, device, dtype=None, fill: bool = True) -> dict:
    """name -> tensor of this rank's shape, on `device`, in the model dtype (or `dtype`), filled at random, laid out
    as decode runs them (engine_layout): the JOINT_ROWS pairs stacked in one buffer each, and each shared expert that
    can join its routed experts allocated as their last experts (no shared.* tensors)."""
    dtype = dtype or torch_dtype(arch.dtype)
    specs = rank_weights(arch)
    shapes = {spec.name: spec.shape(arch.tp) for spec in specs}
    # shared experts are allocated joined to the routed experts at once: joining them afterwards left each layer's
    # replaced tensors as partly reused blocks torch cannot release (Qwen3-Next at tp 2: 24 GiB reserved, unusable)
    # (not where the router's weight scales the routed experts' input, Llama 4: the shared expert reads it unscaled)
    joined = {} if arch.routing.on_input else shared_expert_parts(shapes)
    weights = {}
    for spec in specs:
        prefix, base = _layer_part(spec.name)
        shape = shapes[spec.name]
        if prefix in joined:
            if base.startswith(("shared.gate_up", "shared.down")):  # the matrices and their block scales
                continue
            if base in ("w13", "w2", "w13_scale", "w2_scale"):
                shape = (shape[0] + joined[prefix], *shape[1:])
        t = torch.empty(shape, dtype=_stored(spec, dtype), device=device)
        if fill:
            _fill(spec, t, arch.norm_plus_one)
        weights[spec.name] = t
    return engine_layout(weights, join_shared=not arch.routing.on_input)


def engine_layout(weights: dict, join_shared: bool = True) -> dict:
    """`weights`, in place, laid out as decode runs them: the JOINT_ROWS pairs stacked (stack_rows) and each MoE
    layer's shared expert joined to its routed experts (join_shared_experts) unless `join_shared` is False."""
    stack_rows(weights)
    return join_shared_experts(weights) if join_shared else weights


# Weights of a layer that multiply the same input, stacked row-wise in one buffer so that decode runs one matmul for
# both (kvplan/gpu/ops.py stacked_rows): DeepSeek's q (or q_a) and kv_a projections (vLLM fuses q_a + kv_a as
# fused_qkv_a_proj), DeltaNet's qkvz and ba projections, the MoE router and Qwen's shared-expert gate (a [1, hidden]
# GEMV alone was two cuBLAS launches). Block-scaled pairs stack their scales too (`block_joint`), where the first
# one's rows are whole blocks.
JOINT_ROWS = (("q", "kv_a"), ("q_a", "kv_a"), ("qkvz", "ba"), ("router", "shared_gate"))
SCALED_JOINT_ROWS = tuple((f"{a}_scale", f"{b}_scale") for a, b in JOINT_ROWS)


def stack_rows(weights: dict) -> dict:
    """`weights`, in place, with each JOINT_ROWS pair of a layer copied into one [rows_a + rows_b, cols] buffer and
    replaced by its two row views (names and order kept). In place so that each pair's separate tensors are
    released as it is stacked: the transient is one pair, not every pair (a model sized near the GPU's memory).
    The buffer ends in zero rows up to a multiple of STACK_ROWS_ALIGN, so that the joint matmul's output rows are
    16-byte aligned: Qwen3-Next's 512 router rows + 1 shared-expert gate row made cuBLAS take an align-1 kernel
    (H200, batch 437: 21.9 us a layer, benchmarks/RESULTS.md session 14)."""
    for name in list(weights):
        prefix, _, base = name.rpartition(".")
        for first, second in JOINT_ROWS + SCALED_JOINT_ROWS:
            a, b = weights[name], weights.get(f"{prefix}.{second}")
            if base != first or b is None or a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[1] \
                    or a.dtype != b.dtype or a.device != b.device or not _blocks_align(weights, prefix, first):
                continue
            pad = -(a.shape[0] + b.shape[0]) % STACK_ROWS_ALIGN
            both = torch.cat([a, b, a.new_zeros(pad, a.shape[1])])
            weights[name], weights[f"{prefix}.{second}"] = both[:a.shape[0]], both[a.shape[0]:a.shape[0] + b.shape[0]]
            del a, b
    return weights


def _blocks_align(weights: dict, prefix: str, first: str) -> bool:
    """Whether a JOINT_ROWS pair (or its scales) may stack: always for unscaled weights; block-scaled ones only where
    the first weight's rows are whole blocks, so that the second's scale rows start a block of the joint."""
    base = first[:-len("_scale")] if first.endswith("_scale") else first
    if f"{prefix}.{base}_scale" not in weights:
        return True
    return weights[f"{prefix}.{base}"].shape[0] % fp8.BLOCK == 0


def block_joint(joint, weights: dict, prefix: str, first: str):
    """The block scales of a stacked pair's joint weight (ops.stacked_rows of `first` and its partner in layer
    `prefix`): the first's scale rows and the partner's, one per started block of the joint's rows (not the zero
    padding rows stack_rows adds to the scales), or None where the pair is not block-scaled or not stacked."""
    scale = weights.get(f"{prefix}{first}_scale")
    if joint is None or scale is None:
        return None
    rows = fp8.block_rows(joint.shape[0])
    if scale.untyped_storage().nbytes() < (scale.storage_offset() + rows * scale.shape[1]) * scale.element_size():
        return None
    return scale.as_strided((rows, scale.shape[1]), (scale.shape[1], 1))


def join_shared_experts(weights: dict) -> dict:
    """`weights`, in place, with each MoE layer's shared expert (16-bit `shared.gate_up` [2 S I, hidden] and
    `shared.down` [hidden, S I], S I a multiple of the routed experts' I) appended to `w13` [E, 2I, hidden] and `w2`
    [E, hidden, I] as S more experts of I (gate rows s I.., then the same up rows; down's columns s I..), and the
    `shared.*` entries removed: the MoE then runs the shared expert as S more pairs of every token in the routed
    experts' launches (SGLang's shared-experts fusion) instead of an MLP of its own. The same function: the down
    projection's sum over the intermediate splits into the S parts. Bytes unchanged. Block-scaled fp8 experts join
    with their `*_scale` tensors the same way, in 128-row blocks."""
    for prefix, s in shared_expert_parts({k: tuple(v.shape) for k, v in weights.items()}).items():
        if weights[prefix + "shared.gate_up"].dtype != weights[prefix + "w13"].dtype:
            continue
        inter = weights[prefix + "w13"].shape[1] // 2
        for suffix, step in (("", 1), ("_scale", fp8.BLOCK)):  # the matrices, then block scales (fp8_block) if any
            if prefix + "w13" + suffix not in weights:
                continue
            w13, w2 = weights[prefix + "w13" + suffix], weights[prefix + "w2" + suffix]
            up_gate, down = weights[prefix + "shared.gate_up" + suffix], weights[prefix + "shared.down" + suffix]
            part = inter // step
            gate, up = up_gate[:s * part].view(s, part, -1), up_gate[s * part:].view(s, part, -1)
            weights[prefix + "w13" + suffix] = torch.cat([w13, torch.cat([gate, up], dim=1)])
            weights[prefix + "w2" + suffix] = torch.cat([w2, down.view(down.shape[0], s, part).transpose(0, 1)])
            del weights[prefix + "shared.gate_up" + suffix], weights[prefix + "shared.down" + suffix]
            del w13, w2, down, up_gate, gate, up
    return weights


def shared_expert_parts(shapes: dict) -> dict:
    """{layer prefix: S} for each MoE layer (by weight name -> shape) whose 16-bit shared expert joins its routed
    experts as S more (join_shared_experts): shared.gate_up [2 S I, hidden], shared.down [hidden, S I], w13
    [E, 2I, hidden], w2 [E, hidden, I]; block-scaled ones (`w13_scale`) only where I is whole 128-row blocks."""
    out = {}
    for name, gate_up in shapes.items():
        prefix, base = _layer_part(name)
        if base != "shared.gate_up":
            continue
        w13, w2, down = (shapes.get(prefix + n) for n in ("w13", "w2", "shared.down"))
        if w13 is None or w2 is None or down is None or len(w13) != 3 or len(down) != 2:
            continue
        inter, width = w13[1] // 2, down[1]
        if prefix + "w13_scale" in shapes and inter % fp8.BLOCK:
            continue
        if inter and not width % inter and tuple(gate_up) == (2 * width, w13[2]) and down[0] == w2[1]:
            out[prefix] = width // inter
    return out


def _layer_part(name: str) -> tuple:
    """("layers.3.", "shared.gate_up") from "layers.3.shared.gate_up"; ("", name) outside a layer."""
    head, dot, rest = name.partition(".")
    if head == "layers" and dot:
        index, _, part = rest.partition(".")
        return f"layers.{index}.", part
    return "", name


def full_weights(arch: Arch, seed: int, dtype=torch.float32) -> dict:
    """The whole model's weights (tp 1 shapes) on the CPU from a seed: what the tests shard and check against."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for spec in rank_weights(arch):
        t = torch.empty(spec.full_shape, dtype=_stored(spec, dtype))
        _fill(spec, t, arch.norm_plus_one, gen)
        out[spec.name] = t
    return out


def shard_weights(full: dict, arch: Arch, rank: int) -> dict:
    """Rank `rank`'s shard of `full` (tp 1 weights) for arch.tp ranks."""
    out = {}
    for spec in rank_weights(arch):
        t = full[spec.name]
        if spec.axis is None or arch.tp == 1:
            out[spec.name] = t.clone()
            continue
        pieces = []
        for (start, stop), (length, units) in zip(shard_slices(spec, rank, arch.tp), spec.segments):
            piece = t.narrow(spec.axis, start, stop - start)
            pad = spec.segment_share(length, units, arch.tp) - (stop - start)
            if pad:  # zero columns past the rank's share (WeightSpec.min_share), as vLLM zero-fills them
                shape = list(piece.shape)
                shape[spec.axis] = pad
                piece = torch.cat([piece, piece.new_zeros(shape)], dim=spec.axis)
            pieces.append(piece)
        out[spec.name] = torch.cat(pieces, dim=spec.axis).contiguous()
        assert tuple(out[spec.name].shape) == spec.shape(arch.tp), spec.name
    return out


_FP4_TABLES: dict = {}


def _fp4_table(device, dtype):
    """The 16 e2m1 values on the device, made once (a host-to-device copy cannot happen inside graph capture)."""
    key = (str(device), dtype)
    if key not in _FP4_TABLES:
        _FP4_TABLES[key] = torch.tensor(FP4_VALUES, dtype=dtype, device=device)
    return _FP4_TABLES[key]


def dequantize_mxfp4(blocks, scales, dtype):
    """[E, rows, cols/2] packed e2m1 pairs (low nibble first) and [E, rows, cols/32] E8M0 scales -> [E, rows,
    cols] in `dtype`, one expert at a time (the transient stays one expert's size). Both factors are exact in
    bf16: fp4 values have two significant bits, E8M0 scales are powers of two."""
    lut = _fp4_table(blocks.device, dtype)
    experts, rows, half = blocks.shape
    out = torch.empty(experts, rows, half * 2, dtype=dtype, device=blocks.device)
    for e in range(experts):
        pairs = out[e].view(rows, half, 2)
        pairs[..., 0] = lut[(blocks[e] & 0x0F).to(torch.int32)]
        pairs[..., 1] = lut[(blocks[e] >> 4).to(torch.int32)]
        scale = torch.exp2(scales[e].to(torch.float32) - E8M0_BIAS).to(dtype)
        out[e].view(rows, scales.shape[-1], -1).mul_(scale[..., None])
    return out
