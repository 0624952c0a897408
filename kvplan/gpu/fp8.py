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
