"""fp8 linears of a per-tensor checkpoint (Arch.linear_format "fp8"), as vLLM's Fp8LinearMethod runs them on
fp8 tensor cores (model_executor/layers/quantization/fp8.py, activation_scheme static): the weight is stored in
e4m3 with one float32 scale, the activation is quantised to e4m3 with the layer's static input scale, and the
product is accumulated in fp32 and scaled by both: y = s_x s_w (q(x / s_x) @ W_q^T).

Dummy weights carry one scale for every matrix, so the stacked QKV and gate/up parts share it (vLLM requantises
a fused layer's parts to their largest scale, requantize_with_max_scale): values drawn from N(0, fan_in^-0.5) are
stored as multiples of WEIGHT_SCALE. Timing does not depend on the scales; the float64 reference applies the same
ones."""

from __future__ import annotations

import torch

LABEL = ("W8A8 (e4m3 weights, one scale each): rows quantised to e4m3 by the norm or gated-activation launch before "
         "(o's input by fp8_quant.cu; torch's ops where the GPU cannot convert), then cuBLAS's fp8 GEMM "
         "(torch._scaled_mm) or the streaming GEMV's e4m3 kernel, the faster per shape and batch")
E4M3 = torch.float8_e4m3fn
E4M3_MAX = 448.0
WEIGHT_SCALE = 2.0 ** -10  # N(0, fan_in^-0.5) at fan_in 1K-64K lands on values of about 4-32 (of 448)
INPUT_SCALE = 2.0 ** -5  # activations up to 14 in magnitude (RMS-normed rows: ~1); larger ones saturate


def quantize(x, scale: float = INPUT_SCALE):
    """x / scale in e4m3, saturating at +-448 (as vLLM's scaled_fp8_quant): the bundled kernel on a GPU that takes
    it (one launch, no float32 copy), torch's four ops otherwise."""
    if x.is_cuda:
        from ..kernels.fp8_quant import fp8_quant, fp8_quant_supported

        if fp8_quant_supported(x) is None:
            return fp8_quant(x, 1.0 / scale)
    return (x.float() / scale).clamp_(-E4M3_MAX, E4M3_MAX).to(E4M3)


def store_weights(t, values) -> None:
    """Write float `values` into the e4m3 tensor `t` as multiples of WEIGHT_SCALE."""
    t.copy_((values / WEIGHT_SCALE).clamp_(-E4M3_MAX, E4M3_MAX))


def scales(device) -> tuple:
    """(s_x, s_w) as the float32 tensors torch._scaled_mm takes; the caller keeps them (a model's Matmul), so that
    they are made outside any CUDA-graph capture and released with the model."""
    return (torch.tensor(INPUT_SCALE, dtype=torch.float32, device=device),
            torch.tensor(WEIGHT_SCALE, dtype=torch.float32, device=device))


def _quantized(x):
    return x if x.dtype == E4M3 else quantize(x)


def linear(x, w, out_dtype, scale_tensors):
    """x [tokens, in] (16-bit, or e4m3 at INPUT_SCALE: a norm quantised it) times the e4m3 weight w [out, in], in
    `out_dtype`: cuBLAS's fp8 GEMM (torch._scaled_mm), W8A8 as the engine runs it; `scale_tensors` from scales()."""
    return torch._scaled_mm(_quantized(x), w.t(), *scale_tensors, out_dtype=out_dtype)


def gemv(plan, x, w, out_dtype):
    """The same product through the streaming GEMV's e4m3 kernel (kvplan/kernels/gemv_stream.py); it writes
    bf16."""
    out = plan.run(_quantized(x), w, scale=INPUT_SCALE * WEIGHT_SCALE)
    return out if out.dtype == out_dtype else out.to(out_dtype)


# ---- block-scaled fp8 (Arch.linear_format / experts_format "fp8_block": DeepSeek-V3 / R1, Qwen3-FP8) ------------
# The checkpoint stores e4m3 values with one float32 scale per BLOCK x BLOCK tile of each matrix (weight_block_size
# [128, 128]): W[r, c] = q[r, c] * s[r // 128, c // 128]. vLLM runs these as W8A8 (model_executor/layers/
# quantization/utils/fp8_utils.py: the activation quantised per token per 128 columns, then a block-scaled GEMM).
# verify: up to SKINNY_TOKENS rows through the bundled skinny kernel's fp8 format (bf16 x against the e4m3 weights
# dequantised in registers, W8A16: the same weight bytes streamed), more rows through the per-token-group
# quantisation and cuBLAS's block-scaled fp8 GEMM (torch._scaled_mm), which refuses fewer than 8 rows on the H200
# (benchmarks/RESULTS.md, session 40), so the rows are padded to a multiple of ROW_PAD.

BLOCK = 128
SKINNY_TOKENS = 16
ROW_PAD = 16
# cuBLAS's block-scaled GEMM returned garbage for K = 128 (one scale per row: 700x off) and was right for K >= 256
# (H200, torch 2.11 + CUDA 13, benchmarks/probes/block_fp8_check.py, session 40); such a K takes the dequantised weight
CUBLAS_MIN_K = 2 * BLOCK
BLOCK_LABEL = ("block-scaled fp8 (e4m3 weights, a float32 scale per 128 x 128 block): up to {tokens} tokens the "
               "bundled skinny kernel's fp8 format (x in bf16, the weights dequantised in registers) or, where it "
               "measured faster at 1-8 tokens, x quantised per token per 128 columns and the bundled streaming "
               "GEMV's block-scaled e4m3 kernel; beyond that x "
               "quantised per token per 128 columns (the bundled fp8_quant.cu where the GPU takes it) and cuBLAS's "
               "block-scaled fp8 GEMM (torch._scaled_mm), "
               "W8A8 as vLLM runs it")


def block_rows(rows: int) -> int:
    """Scale rows (or columns) of a matrix dimension: one per started block."""
    return -(-rows // BLOCK)


def dequantize_blocks(q, s, dtype=torch.float32):
    """q [..., rows, cols] e4m3 and s [..., ceil(rows / 128), ceil(cols / 128)] float32 -> [..., rows, cols] in
    `dtype` (torch ops: the CPU forward, its reference and the torch fallbacks). Whole blocks: in place in the
    output, no float32 transient (MLA's kv_b at start: transients left verify's pools 3% short of their NVML
    figure, H200 session 40); part blocks: through float32 copies of the scales."""
    rows, cols = q.shape[-2:]
    if rows % BLOCK == 0 and cols % BLOCK == 0:
        out = q.to(dtype)
        blocks = out.view(*q.shape[:-2], rows // BLOCK, BLOCK, cols // BLOCK, BLOCK)
        blocks.mul_(s[..., :, None, :, None])
        return out
    full = s.float().repeat_interleave(BLOCK, dim=-2)[..., :rows, :].repeat_interleave(BLOCK, dim=-1)[..., :cols]
    return (q.float() * full).to(dtype)


def quantize_groups(x, rows: int):
    """x [T, K] (K a multiple of 128) -> (e4m3 [rows, K], float32 scales [rows, K / 128] with strides (1, rows)):
    each token's 128-column groups at their own scale, amax / 448; rows >= T, the padding rows zero at scale 1 (what
    cuBLAS's block-scaled GEMM takes). The bundled kernel where it runs (one launch), torch's ops otherwise."""
    if x.is_cuda:
        from ..kernels.fp8_quant import fp8_group_quant, fp8_group_quant_supported

        if fp8_group_quant_supported(x) is None:
            return fp8_group_quant(x, rows=rows)
    from ..kernels.fp8_quant import group_quant_reference

    return group_quant_reference(x, rows=rows)


def block_gemv(plan, x, w, s):
    """x [T <= 8, K] bf16 times the block-scaled e4m3 weight w (scales s) through the streaming GEMV's block-scaled
    kernel (kvplan/kernels/gemv_stream.py): x quantised per token per 128 values first (W8A8, as vLLM); bf16 out."""
    q, qs = quantize_groups(x.contiguous(), x.shape[0])
    return plan.run(q, w, w_scales=s, x_scales=qs)


def block_linear(x, w, s, out_dtype):
    """x [T, K] times the block-scaled e4m3 weight w [N, K] (scales s [ceil(N / 128), K / 128]) -> [T, N] in
    `out_dtype`: W8A8 through cuBLAS on a GPU (rows padded to ROW_PAD), the dequantised weight in torch elsewhere
    (and where K is not whole blocks, which cuBLAS and the quantisation refuse, or one block, CUBLAS_MIN_K)."""
    if not x.is_cuda or x.shape[1] % BLOCK or x.shape[1] < CUBLAS_MIN_K:  # tiny test models only
        return (x.float() @ dequantize_blocks(w, s).t()).to(out_dtype)
    t = x.shape[0]
    q, qs = quantize_groups(x.contiguous(), -(-t // ROW_PAD) * ROW_PAD)
    return torch._scaled_mm(q, w.t(), qs, s.t(), out_dtype=out_dtype)[:t]
