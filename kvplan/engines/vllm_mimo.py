"""MiMo-V2's cache as vLLM pages it, by release. The model's keys are wider than its values (MiMo-V2-Flash: 192 and
128, on both its full and its sliding layers); the config reader keeps both widths (model/layers.py mimo_attention),
and what vLLM stores of the value is a release's choice:

- 0.14.0 (the first to list MiMoV2FlashForCausalLM) to 0.19.x pad each value to the key's width before attention and
  build the layer with one head size (model_executor/models/mimo_v2_flash.py MiMoV2Attention.forward:
  torch.nn.functional.pad(v, [0, head_dim - v_head_dim]), 0.14.0:314, 0.16.0:315, 0.19.0:314-316; its Attention has
  no head_size_v, 0.19.0:288-299), so every KV head stores two key-wide vectors a token: 2 x 192 where the config
  says 192 + 128.
- 0.20.0 on passes head_size_v (mimo_v2_flash.py 0.20.0:302-315 on FlashAttentionDiffKVBackend; mimo_v2.py from
  0.21.0, 0.32.0 :325-339) and the cache specs count head_size + head_size_v (v1/kv_cache_interface.py 0.20.0:174-184,
  :262-272 AttentionSpec.real_page_size_bytes): the config's widths.
"""

from __future__ import annotations

from dataclasses import replace

from ..model.kinds import FullAttention
from ..model.layers import MIMO_ARCHITECTURES
from .vllm_versions import parse_version

VALUE_WIDTH_SINCE = (0, 20)  # the first release whose MiMo-V2 layers cache the value at its own width


def served_layers(spec, version: str):
    """`spec` as vLLM `version` pages its caches: MiMo-V2's values at the key's width before VALUE_WIDTH_SINCE,
    any other model (and MiMo from 0.20) as it is."""
    if spec.architecture not in MIMO_ARCHITECTURES or parse_version(version) >= VALUE_WIDTH_SINCE:
        return spec
    return replace(spec, layers=tuple(padded_value(layer) for layer in spec.layers))


def padded_value(layer):
    """A layer whose value is stored at the key's width (FullAttention.value_dim then falls back to head_dim)."""
    if isinstance(layer, FullAttention) and layer.value_dim != layer.head_dim:
        return replace(layer, v_head_dim=None)
    return layer
