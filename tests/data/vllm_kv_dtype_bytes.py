"""Make tests/data/vllm_kv_dtype_bytes.json: vLLM's --kv-cache-dtype values (CacheDType) and bytes per token per KV
head (K and V) and per MLA latent entry for every --kv-cache-dtype, as vLLM's own code computes them. Run with vLLM
installed (vLLM 0.32.0 CPU first; now the pure-python import of the vLLM 0.34.0 source release, CPU torch):

    PYTHONPATH=/tmp/s52/sd/vllm-0.34.0 /tmp/v34/bin/python tests/data/vllm_kv_dtype_bytes.py \
        > tests/data/vllm_kv_dtype_bytes.json

Per-token-head and TurboQuant come from the backends' customize_spec (the page size of a 16-token block of 8 KV
heads, divided by 16 x 8); NVFP4 from vllm.utils.torch_utils.nvfp4_kv_cache_full_dim (FlashInfer, which the
page needs, is not installable on CPU); UltraQuant from v1/attention/ops/ultraquant/format.py slot_size (its
backend imports GPU-only Triton); Octave (0.33+) from ROCm's RocmOctaveAttentionBackend.customize_spec with 64 rotary
dims registered (the only width its kernels take); MLA from MLAAttentionSpec with MLACommonBackend.customize_spec."""

import json

import torch
from vllm import __version__
from vllm.utils.torch_utils import nvfp4_kv_cache_full_dim
from vllm.v1.attention.backends.triton_attn import TritonAttentionBackend
from vllm.v1.kv_cache_interface import FullAttentionSpec, MLAAttentionSpec, get_kv_quant_mode

HEAD_DIMS = (64, 128, 256)


def per_head(backend, name, head_dim):
    spec = FullAttentionSpec(block_size=16, num_kv_heads=8, head_size=head_dim, dtype=torch.uint8,
                             kv_quant_mode=get_kv_quant_mode(name))
    return backend.customize_spec(spec).page_size_bytes // (16 * 8)


def main():
    from typing import get_args

    from vllm.config.cache import CacheDType

    out = {"vllm": __version__, "cache_dtypes": list(get_args(CacheDType)), "head": {}, "mla_576": {}}
    for name in ("int8_per_token_head", "int4_per_token_head", "fp8_per_token_head"):
        out["head"][name] = {str(d): per_head(TritonAttentionBackend, name, d) for d in HEAD_DIMS}
    try:
        from vllm.v1.attention.backends.turboquant_attn import TurboQuantAttentionBackend
        for name in ("turboquant_k8v4", "turboquant_4bit_nc", "turboquant_k3v4_nc", "turboquant_3bit_nc"):
            out["head"][name] = {str(d): per_head(TurboQuantAttentionBackend, name, d) for d in HEAD_DIMS}
    except Exception as exc:  # noqa: BLE001
        out["turboquant_error"] = repr(exc)
    try:
        from vllm.v1.attention.backends.rocm_octave_attn import RocmOctaveAttentionBackend
        from vllm.v1.attention.ops import rocm_octave
        for d in HEAD_DIMS:
            rocm_octave.register_rope_dim(d, 64)
        for name in ("octave_k3v4", "octave_k3v3", "octave_k3v3_compact"):
            out["head"][name] = {str(d): per_head(RocmOctaveAttentionBackend, name, d) for d in HEAD_DIMS}
    except ImportError as exc:  # before 0.33
        out["octave_error"] = repr(exc)
    for name in ("nvfp4", "nvfp4_4over6"):
        out["head"][name] = {str(d): 2 * nvfp4_kv_cache_full_dim(d) for d in HEAD_DIMS}
    from vllm.v1.attention.ops.ultraquant.format import slot_size
    out["head"]["ultraquant_4bit"] = {str(d): slot_size(d) for d in HEAD_DIMS}
    from vllm.model_executor.layers.attention.mla_attention import MLACommonBackend
    for name in ("fp8_per_token_head", "int8_per_token_head", "int4_per_token_head"):
        spec = MLAAttentionSpec(block_size=16, num_kv_heads=1, head_size=576, dtype=torch.uint8,
                                kv_quant_mode=get_kv_quant_mode(name))
        out["mla_576"][name] = MLACommonBackend.customize_spec(spec).page_size_bytes // 16
    print(json.dumps(out, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
