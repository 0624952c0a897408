"""The Mamba (linear-attention) states in vLLM: their dtypes, and the pages a hybrid sizes its block by.

Rules and where vLLM has them (paths under vllm/):
- the conv state in --mamba-cache-dtype or the model dtype; the temporal (SSM) state in --mamba-ssm-cache-dtype,
  whose 'auto' a config handler may set (NEMOTRON_H_SSM_HANDLER, QWEN3_5_SSM_HANDLER: model_executor/models/config.py),
  float32 for Kimi Delta Attention (ssm_state_dtype: model_executor/layers/mamba/mamba_utils.py _mamba_state_dtype);
  the flags themselves: vllm_cache_flags.py.
- a hybrid's pages: the largest state page and the first attention layer's bytes a token, which the attention
  block is raised to hold a state (hybrid_pages: models/config.py HybridAttentionMambaModelConfig; the raise:
  vllm_specs.hybrid_block_size). Prefix caching's Mamba modes: vllm_mamba_mode.py.
"""

from __future__ import annotations

from ..model.kinds import FullAttention, MLALatent
from ..model.precision import DTYPE_BYTES, normalize_dtype_name
from .vllm_registry import served_architecture
from .vllm_specs import mamba_page
from .vllm_versions import PINNED, parse_version, release_rule

# The Mamba temporal (SSM) state's dtype. vLLM's --mamba-ssm-cache-dtype is 'auto' by default (config/cache.py
# 0.11.0:100, 0.34.0:310; engines/vllm_cache_flags.py), which keeps it in the model dtype (mamba_utils.py
# _mamba_state_dtype, 0.12.0:57-63) unless the model's config handler sets it (config/vllm.py
# try_verify_and_update_config picks the handler by the architecture vLLM registers: 0.13.0:1232-1242, 0.34.0:
# 2825-2843). NemotronHForCausalLMConfig sets 'auto' to the config's own mamba_ssm_cache_dtype, else its default:
# float16 from 0.13.0 to 0.19.1 (getattr(hf_config, "mamba_ssm_cache_dtype", "float16"): models/config.py
# 0.13.0:500-510, 0.15.1:573-582, 0.19.1:491-500), float32 from 0.20.0 (DEFAULT_MAMBA_SSM_CACHE_DTYPE, 0.20.0:410,
# 0.34.0:1144). Architectures mapped to it (MODELS_CONFIG_MAP), by the release that first does so:
NEMOTRON_H_SSM_HANDLER = {
    "NemotronHForCausalLM": (0, 13),  # models/config.py 0.13.0:530 (0.11.x-0.12.0 have no handler: 'auto')
    "NemotronHPuzzleForCausalLM": (0, 16),  # 0.16.0:613
    # mapped from 0.18.0 (:668) to a handler that only sets a video backend (:434-440); from 0.20.0 it updates the
    # dtype from text_config (:439-445)
    "NemotronH_Nano_VL_V2": (0, 20),
    **dict.fromkeys(("NemotronH_Nano_Omni_Reasoning_V3", "NemotronH_Super_Omni_Reasoning_V3",
                     "NemotronH_Omni_Reasoning_V3", "Nemotron3_5TranscribeForConditionalGeneration"),
                    (0, 34)),  # 0.34.0:1591-1596 (not in 0.33.0's map, :1251-1253)
}
NEMOTRON_H_SSM_DEFAULTS = (((0, 20), "float32"), ((0, 13), "float16"))  # (first release, the handler's default)
# Not mirrored: the handler's getattr also finds a default the config class itself declares. A checkpoint's own
# configuration_nemotron_h.py (--trust-remote-code; vLLM's tests load Nemotron-H that way: tests/models/registry.py
# 0.19.1:439) declares none; transformers' own NemotronHConfig (transformers 5.5.1 on, which 0.19.1 allows and tests
# with: requirements/test.txt 0.19.1:1270, 5.5.3) declares float32 (configuration_nemotron_h.py:121), so 0.19.1
# without --trust-remote-code keeps float32. 0.13.0-0.19.0 need transformers < 5 (requirements/common.txt:10), which
# has no nemotron_h: the checkpoint's class.

# Qwen3_5ForConditionalGenerationConfig sets 'auto' to the language model's own mamba_ssm_dtype as written
# (getattr(hf_text_config, "mamba_ssm_dtype", None): models/config.py 0.17.0:634-638, 0.26.0:753-757, 0.32.0:862-866;
# kvplan reads the MambaDType values: ModelSpec.config_ssm_dtype), and leaves 'auto' where the config names none; an
# explicit flag wins, with a warning (0.32.0:867-877). Architectures mapped to it, by the release that first does so
# (each the release whose registry first lists the name): the ConditionalGeneration pair 0.17.0:685-686 (registry.py
# 0.17.0:496-503; none in 0.16.0), ColQwen3_5 0.19.0:719 (registry.py 0.19.0:279; from 0.24.0 through the subclass
# ColQwen3_5Config, 0.32.0:981, :1065), the CausalLM pair 0.27.0:959-962 through the subclass Qwen3_5ForCausalLMConfig
# (:826-829; not in 0.26.0's map, :863-864; registry.py 0.27.0:201-202); 0.32.0:1104-1107. The gated DeltaNet reads
# the dtype it sets from 0.17 (vllm_cache_flags.GDN_READS_SSM_FLAG).
# Not mirrored: Qwen4Exp's handlers (from 0.29.0) call it too; kvplan refuses that layout (model/unmodelled.py).
QWEN3_5_SSM_HANDLER = {**dict.fromkeys(("Qwen3_5ForConditionalGeneration", "Qwen3_5MoeForConditionalGeneration"),
                                       (0, 17)),
                       "ColQwen3_5": (0, 19),
                       **dict.fromkeys(("Qwen3_5ForCausalLM", "Qwen3_5MoeForCausalLM"), (0, 27))}


def handled_by(handlers: dict, spec, version: str) -> bool:
    """Whether vLLM `version` runs one of `handlers` (architecture: first release mapping it) for `spec`: the
    architecture it serves (served_architecture) mapped there by then (config/vllm.py try_verify_and_update_config,
    MODELS_CONFIG_MAP.get(model_config.architecture): 0.17.0:1577-1588, 0.32.0:2638-2658)."""
    since = handlers.get(served_architecture(spec, version))
    return since is not None and parse_version(version) >= since


def ssm_state_dtype(spec, version: str = PINNED) -> tuple:
    """(kvplan's dtype name, vLLM's log line or '') of a Mamba layer's temporal state in vLLM `version`:
    --mamba-ssm-cache-dtype where the layers read it (vllm_cache_flags.asked_ssm_dtype), else, while that is 'auto',
    what the Qwen3.5 handler (QWEN3_5_SSM_HANDLER) sets it to from the config (spec.config_ssm_dtype) where the layers
    read it, or what the NemotronH handler (NEMOTRON_H_SSM_HANDLER) sets it to from the config (spec.ssm_cache_dtype)
    or its default, logging it (models/config.py 0.15.1:578-581, 0.34.0:1159-1162); 'auto' is the conv state's dtype,
    --mamba-cache-dtype or the model's (mamba_utils.py _mamba_state_dtype, 0.32.0:104-108), but float32 for Kimi
    Delta Attention (kda_state_dtype: mamba_utils.py 0.29.0:137-138, 0.30.0:140-141)."""
    from .vllm_cache_flags import asked_ssm_dtype, conv_state_dtype, has_kda, reads_ssm

    conv, asked = conv_state_dtype(spec), asked_ssm_dtype(spec, version)
    if asked != "auto":  # the handlers leave an explicit value alone (0.32.0:724, :864 `== "auto"`)
        return normalize_dtype_name(asked), ""
    if has_kda(spec):
        return "fp32", ""
    if handled_by(QWEN3_5_SSM_HANDLER, spec, version):
        named = getattr(spec, "config_ssm_dtype", "")
        return (normalize_dtype_name(named) if named not in ("", "auto") and reads_ssm(spec, version) else conv), ""
    if not handled_by(NEMOTRON_H_SSM_HANDLER, spec, version):
        return conv, ""
    named = getattr(spec, "ssm_cache_dtype", "") or release_rule(NEMOTRON_H_SSM_DEFAULTS, version)
    dtype = conv if named == "auto" else normalize_dtype_name(named)
    return dtype, f"Updating mamba_ssm_cache_dtype to '{named}' for NemotronH model"


def mamba_state_dtypes(spec, version: str = PINNED) -> tuple:
    """(conv, temporal) kvplan dtype names of `spec`'s Mamba states in vLLM `version`: --mamba-cache-dtype or the
    model dtype (vllm_cache_flags.conv_state_dtype), the temporal one as ssm_state_dtype says."""
    from .vllm_cache_flags import conv_state_dtype

    return conv_state_dtype(spec), ssm_state_dtype(spec, version)[0]


def mamba_state_bytes(spec, version: str = PINNED) -> tuple:
    """(conv, temporal) bytes per element of `spec`'s Mamba states in vLLM `version` (mamba_state_dtypes)."""
    return tuple(DTYPE_BYTES[name] for name in mamba_state_dtypes(spec, version))


def hybrid_pages(spec, tp: int, precision, version: str = PINNED) -> tuple:
    """(the attention layer a Mamba hybrid's state page is padded to, its bytes a token on one GPU at the cache
    `precision`, the largest state page): vLLM sizes both from the first attention layer (models/config.py
    HybridAttentionMambaModelConfig); (None, 0, the page) for a model with no attention, (None, 0, 0) for no state."""
    mamba = spec.linear_layers
    # the state dtypes are the model's, and equal layers are one kind (frozen): each priced once, not per layer
    state_bytes = mamba_state_bytes(spec, version)
    page = max((mamba_page(layer, tp, *state_bytes) for layer in dict.fromkeys(mamba)), default=0)
    attention = next((layer for layer in spec.layers if isinstance(layer, (FullAttention, MLALatent))), None)
    if not mamba or attention is None:
        return None, 0, page
    return attention, attention.bytes_per_token(tp, precision), page
