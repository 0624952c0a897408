"""What vLLM's KV cache stores (pinned 0.32.0; other releases by the rule tables): the dtype the attention layers
are built with for a --kv-cache-dtype (cache_precision), what `auto` names (auto_kv_dtype, gpu_auto_kv_dtype) and
the model as a release views it (release_view, unviewed).

Rules and where vLLM has them (paths under vllm/):
- family quirks: attention layers built without cache_config keep the model dtype whatever is asked
  (KV_DTYPE_QUIRKS: model_executor/models/falcon.py, clip.py).
- a checkpoint's own KV cache (ModelOpt, a compressed-tensors kv_cache_scheme), by release and for which
  --kv-cache-dtype (CHECKPOINT_KV: engine/arg_utils.py, utils/torch_utils.py, model_executor/layers/attention/).
- sparse MLA (DeepSeek-V3.2, GLM-5.x): `auto` by release (SPARSE_MLA_AUTO), an fp8 cache as the backend stores it
  (sparse_choice over vllm_sparse.py); DeepSeek-V4's fp8_ds_mla layout (cache_precision).
The refusals of a cache dtype: vllm_backend_refusals.py; the model's own dtype on each GPU: vllm_model_dtype.py; the
Mamba states' dtypes: vllm_mamba_state.py.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

from ..errors import FieldError
from ..model.kinds import V4_KINDS
from ..model.precision import DTYPE_BYTES, PRECISIONS, kv_dtype_name, vllm_name
from .vllm_e5m2 import attention_without_quant_config
from .vllm_registry import served_architecture
from .vllm_sparse import auto_on_gpu, is_rocm_platform, sm120_sparse, sparse_cache
from .vllm_versions import PINNED, release_rule

# Family quirks, keyed by the config's model_type, each with the vLLM 0.32.0 source line it comes from.
# Attention layers that keep the model dtype whatever --kv-cache-dtype says:
_FALCON = ("vllm/model_executor/models/falcon.py:173-197: FalconAttention builds Attention without cache_config on "
           "its rotary and ALiBi paths, so model_executor/layers/attention/attention.py:276-279 falls back to "
           "kv_cache_dtype 'auto' (the RefinedWeb model types ran the same class until vLLM 0.28)")
# CLIP's text tower (the language model kvplan reads: model_type clip_text_model) is causal, built of plain decoder
# Attention with a KV cache but no cache_config (clip.py 0.11.1:392-397 and 0.34.0:404-409 CLIPAttention, the text
# encoder's attn_cls=Attention at 0.11.1:557 and 0.34.0:587; 'auto' without it: attention/layer.py 0.11.1:255-260,
# layers/attention/attention.py 0.32.0:276-279), in every release that lists CLIPModel (0.11.1 on); its vision
# tower's MMEncoderAttention keeps none
_CLIP = "vllm/model_executor/models/clip.py 0.34.0:404-409, :587: Attention without cache_config"
KV_DTYPE_QUIRKS = {"falcon": _FALCON, "refinedweb": _FALCON, "refinedwebmodel": _FALCON, "clip_text_model": _CLIP,
                   "clip": _CLIP}


# Sparse MLA (DeepSeek-V3.2) on Hopper: `--kv-cache-dtype fp8` runs on FLASHMLA_SPARSE, which stores any quantized
# dtype in its own 656-byte fp8_ds_mla entry (model_executor/layers/attention/mla_attention.py
# _canonicalize_sparse_mla_kv_cache_dtype; the format: v1/attention/backends/mla/flashmla_sparse.py); `fp8_e4m3`,
# which FLASHMLA_SPARSE does not list, runs on FlashInfer's SM90 backend from 0.30 (vllm_sparse.py); a 16-bit one
# stays the model dtype (model_executor/models/config.py DeepseekV32ForCausalLM.verify_and_update_config turns
# 'bfloat16' into 'auto').
SPARSE_MLA_FP8 = "fp8_ds_mla"
# What `--kv-cache-dtype auto` stores for DeepSeek-V3.2's latent, by the first release of each rule (newest first);
# what an fp8 dtype stores is vllm_sparse.py's (models/config.py turns every fp8* into fp8_ds_mla up to 0.17, the
# backend decides from 0.18), and the indexer's keys are 132 raw bytes in all of them (models/deepseek_v2.py
# DeepseekV32IndexerCache, uint8)
SPARSE_MLA_AUTO = (
    ((0, 11, 1), "", "0.11.1 model_executor/models/config.py:478 DeepseekV32ForCausalLM.verify_and_update_config: "
                     "fp8* only becomes fp8_ds_mla, auto keeps the model dtype (so to 0.32.0)"),
    ((0, 11, 0), SPARSE_MLA_FP8, "0.11.0 model_executor/models/config.py:419-421: 'auto' or fp8* becomes "
                                 "fp8_ds_mla ('we use a custom fp8 format as default')"),
)

# What `--kv-cache-dtype auto` stores for DeepSeek-V4, by first release (newest first). Its attention layer reads
# cache_config.cache_dtype as it is built and, under the fp8_ds_mla layout of every class vLLM picks without
# --attention-backend (Hopper, SM10x, SM12x, ROCm), refuses what does not start with "fp8"
# (vllm_backend_refusals.V4_DTYPE_REFUSALS). Nothing before it rewrites `auto` in 0.20-0.29: the CacheConfig gets
# resolve_kv_cache_dtype_string's answer (engine/arg_utils.py 0.20.0:1643-1645, 0.29.0:2070), which reads a
# ModelOpt checkpoint's kv_cache_quant_algo only (utils/torch_utils.py 0.20.0:288-289, 0.29.0:451-452; V4's
# quantization_config is quant_method fp8, no kv field); the DeepseekV4ForCausalLM config handler renames that
# method to deepseek_v4_fp8 and touches no cache setting (model_executor/models/config.py 0.20.0:110-132, 0.27.0
# :317-339; MODELS_CONFIG_MAP keys DeepseekV32ForCausalLM's handler, the only one that rewrites a cache dtype
# (bfloat16 -> auto), by V3.2's name: 0.20.0 :663-664, 0.29.0 :1004-1005); platforms/cuda.py and config/vllm.py
# assign no cache_dtype. So `auto` reaches the layer as "auto" and is refused until 0.30 turns it into fp8 there.
V4_AUTO = (
    ((0, 30), SPARSE_MLA_FP8, "0.30.0 models/deepseek_v4/attention.py:109-110 _resolve_dsv4_kv_cache_dtype: auto -> "
                              "fp8 -> fp8_ds_mla (0.34.0 :110-111)"),
    ((0, 20), "", "0.20.0 model_executor/layers/deepseek_v4_attention.py:595-600 ... 0.29.0 models/deepseek_v4/"
                  "attention.py:103-108: auto kept, then refused"),
)


# What vLLM makes of the KV cache a checkpoint names (ModelSpec.checkpoint_kv_dtype), by the first release of each
# rule (newest first): for each method family, the caches it stores and for which --kv-cache-dtype ("auto": `auto`
# only; "any": whatever is asked, an explicit value too). Before a release that lists a family, `auto` is the model
# dtype whatever the checkpoint names.
# - modelopt* (params.modelopt_kv_cache): EngineArgs.create_engine_config resolves auto through
#   resolve_kv_cache_dtype_string before it builds the CacheConfig (engine/arg_utils.py 0.14.0:1397-1400, 0.34.0
#   :2329-2332), whose map holds fp8 from 0.14.0 and nvfp4 from 0.20.0 (utils/torch_utils.py
#   MODELOPT_TO_VLLM_KV_CACHE_DTYPE_MAP 0.14.0:57-62, 0.19.1 the same, 0.20.0:62-65, 0.34.0:90-93); an explicit
#   value is kept (:2329, `!= "auto"` returns it).
# - compressed-tensors with a kv_cache_scheme (params.compressed_kv_cache; an ordinary Attention layer reads it): the
#   layer sets kv_cache_dtype and cache_config.cache_dtype to "fp8" whatever was asked from 0.15.0 (attention/layer.py
#   0.15.0 and 0.15.1 :198-203; model_executor/layers/attention/attention.py 0.16.0:231-236, 0.17.0-0.21.0 :231-237),
#   only under auto from 0.22.0 (0.22.0 :237-241, 0.32.0 :288-291, 0.34.0 :308-312); 0.11.0-0.14.1 have no such step
#   (attention/layer.py 0.14.1:190-198 keeps cache_config.cache_dtype). Not for an architecture whose attention
#   layers get no quant_config (vllm_e5m2.NO_QUANT_CONFIG_ATTENTION): they never see the scheme.
CHECKPOINT_KV = (
    ((0, 22), {"modelopt": (("fp8_e4m3", "nvfp4"), "auto"), "compressed-tensors": (("fp8",), "auto")},
     "0.22.0 attention.py:237-241 (auto only)"),
    ((0, 20), {"modelopt": (("fp8_e4m3", "nvfp4"), "auto"), "compressed-tensors": (("fp8",), "any")},
     "0.20.0 utils/torch_utils.py:62-65"),
    ((0, 15), {"modelopt": (("fp8_e4m3",), "auto"), "compressed-tensors": (("fp8",), "any")},
     "0.15.0 attention/layer.py:198-203"),
    ((0, 14), {"modelopt": (("fp8_e4m3",), "auto")},
     "0.14.0 utils/torch_utils.py:57-62, engine/arg_utils.py:1397-1400"),
)


def checkpoint_kv(spec, version: str = PINNED) -> tuple:
    """(cache, scope): the cache vLLM `version` stores for the KV cache `spec`'s checkpoint names, and for which
    --kv-cache-dtype ("auto" or "any": CHECKPOINT_KV); ("", "") where the release does not read it."""
    named = getattr(spec, "checkpoint_kv_dtype", "")
    method = getattr(spec, "quantization", "")
    family = "modelopt" if method.startswith("modelopt") else method
    if family == "compressed-tensors" and attention_without_quant_config(spec, version):
        return "", ""  # the layer's own step, which these layers never take
    caches, scope = release_rule(CHECKPOINT_KV, version, {}).get(family, ((), ""))
    return (named, scope) if named and named in caches else ("", "")


def auto_kv_dtype(spec, version: str = PINNED) -> str:
    """The cache `--kv-cache-dtype auto` names for `spec` in vLLM `version` ("" for the model dtype): the checkpoint's
    own KV cache where the release stores it (checkpoint_kv), else ModelSpec.auto_kv_dtype, or DeepSeek-V3.2's
    fp8_ds_mla where the release defaults to it (SPARSE_MLA_AUTO); DeepSeek-V4's by release (V4_AUTO)."""
    if is_v4(spec):
        return release_rule(V4_AUTO, version, "")
    named, _ = checkpoint_kv(spec, version)
    if named:
        return named
    own = "" if getattr(spec, "checkpoint_kv_dtype", "") else spec.auto_kv_dtype  # the parser's: the pinned release's
    # the handler MODELS_CONFIG_MAP picks by the name vLLM resolved (config/vllm.py 0.32.0:2638-2659)
    if served_architecture(spec, version) != "DeepseekV32ForCausalLM" or own:
        return own
    return release_rule(SPARSE_MLA_AUTO, version, "")  # older: refused


def checkpoint_kv_words(spec, version: str) -> str:
    """What vLLM `version` makes of the checkpoint's KV cache, in words (checkpoint_kv), for the model's note."""
    named, scope = checkpoint_kv(spec, version)
    if scope == "any":
        return f"vLLM {version} stores {named} whatever --kv-cache-dtype asks (its attention layers overwrite it)"
    if named:
        return f"vLLM {version} stores it for --kv-cache-dtype auto"
    return f"vLLM {version} does not read it: --kv-cache-dtype auto is the model dtype"


# Sparse MLA's cache by release, GPU and --kv-cache-dtype spelling: vllm_sparse.py (FLASHMLA_SPARSE keeps the 656-byte
# fp8_ds_mla entry, FlashInfer's sparse backends a plain 576-byte fp8 latent; `fp8` and `fp8_e4m3` are listed apart).


def is_sparse(spec) -> bool:
    return _layers_have(spec.layers, "sparse")


# (id of a layers tuple) -> (that tuple, any sparse layer, any DeepSeek-V4 layer): asked for every configuration
# refusal a remedy search tries, over every layer of the model each time
_LAYER_KINDS: dict = {}


def _layers_have(layers, kind: str) -> bool:
    held = _LAYER_KINDS.get(id(layers))
    if held is None or held[0] is not layers:
        if len(_LAYER_KINDS) > 1000:
            _LAYER_KINDS.clear()
        held = (layers, any(getattr(layer, "sparse", False) for layer in layers),
                any(isinstance(layer, V4_KINDS) for layer in layers))
        _LAYER_KINDS[id(layers)] = held
    return held[1] if kind == "sparse" else held[2]


def _sparse_layer_args(spec, tp: Optional[int], version: str) -> tuple:
    """(query heads a rank, latent shape, architecture) of `spec`'s sparse MLA layers, as vllm_sparse's rules read
    them (models/config.py rewrites the dtype by architecture before 0.18: vllm_sparse.CONFIG_REWRITE, the handler
    MODELS_CONFIG_MAP picks by the top-level name vLLM resolved, config/vllm.py 0.32.0:2638-2659)."""
    layer = next(layer for layer in spec.layers if getattr(layer, "sparse", False))
    heads = spec.num_attention_heads // tp if tp else None
    shape = {"kv_lora_rank": layer.kv_lora_rank, "qk_rope_head_dim": layer.qk_rope_head_dim}
    return heads, shape, served_architecture(spec, version)


def sparse_choice(spec, precision, capability=(), version: str = PINNED, tp: Optional[int] = None):
    """vllm_sparse.sparse_cache for `spec`'s sparse MLA layers asked for `precision` (as spelled), `tp` ranks
    splitting its query heads (None: unknown)."""
    return sparse_cache(precision.vllm_dtype, capability, version, *_sparse_layer_args(spec, tp, version))


def gpu_auto_kv_dtype(spec, capability=(), version: str = PINNED) -> str:
    """The cache `--kv-cache-dtype auto` names for `spec` on a GPU of `capability` in `version`
    (vllm_sparse.SM10X_AUTO)."""
    if spec.auto_kv_dtype:
        return spec.auto_kv_dtype
    return auto_on_gpu(served_architecture(spec, version), capability, version)  # SM10X_AUTO: a handler's, as above


# What models/config.py logs as it rewrites the cache dtype (VllmConfig.__post_init__, before every start-up line
# kvplan writes; its `logger.info` / `info_once` lines, verbatim):
# - GLM-5.x's `auto` on SM10x (SM10X_AUTO): 0.32.0:55, 0.33.0:101, 0.34.0:175;
# - DeepSeek-V3.2's fp8_ds_mla rewrite (vllm_sparse.CONFIG_REWRITE: fp8*, and `auto` in 0.11.0, SPARSE_MLA_AUTO):
#   0.11.0:422, 0.11.1:480, 0.17.0:599 (none from 0.18.0);
# - DeepSeek-V3.2's bfloat16 -> auto, from its first release: 0.11.0:425, 0.17.0:602, 0.18.0:42, 0.32.0:40, 0.34.0:93.
SM10X_AUTO_LINE = "Using fp8 kv-cache for {architecture} on SM10x"
DS_MLA_LINE = "Using custom fp8 kv-cache format for DeepSeekV3.2"
BF16_AS_AUTO_LINE = "Using bfloat16 kv-cache for DeepSeekV3.2"
BF16_AS_AUTO = "DeepseekV32ForCausalLM"  # the one architecture whose hook turns bfloat16 into auto (0.11.0 on)


def config_hook_line(spec, precision, capability=(), version: str = PINNED) -> str:
    """The line vLLM `version`'s config hook for `spec` logs as it rewrites the cache asked for as `precision` on a
    GPU of `capability`; "" where it rewrites nothing."""
    from .vllm_sparse import BLACKWELL, CONFIG_REWRITE, SM10X_AUTO, major_of

    architecture = served_architecture(spec, version)
    spelled = precision.spelling or precision.vllm_dtype
    if precision.auto:
        if architecture in release_rule(SM10X_AUTO, version, {}) and major_of(capability) == BLACKWELL \
                and not is_rocm_platform(capability):
            return SM10X_AUTO_LINE.format(architecture=architecture)
        rewrites_auto = architecture == BF16_AS_AUTO and release_rule(SPARSE_MLA_AUTO, version) == SPARSE_MLA_FP8
        return DS_MLA_LINE if rewrites_auto else ""
    if architecture != BF16_AS_AUTO or release_rule(SPARSE_MLA_AUTO, version) is None:  # before 0.11.0: no hook
        return ""
    if spelled == "bfloat16":
        return BF16_AS_AUTO_LINE
    return DS_MLA_LINE if spelled.startswith("fp8") and architecture in release_rule(CONFIG_REWRITE, version, ()) \
        else ""


def release_view(spec, version: str):
    """`spec` as vLLM `version` builds it, where that differs from 0.32.0: what `--kv-cache-dtype auto` stores
    (auto_kv_dtype), the note on the checkpoint's KV cache saying what this release makes of it, the model's
    length as this release scales it by the RoPE factor (vllm_rope_len.rope_view), its sparse layers' indexers
    as this release builds them (vllm_index_share.index_view), --quantization mxfp4's linear layers where the
    release quantises them online (vllm_mxfp4_online.online_view), Gemma 2's window where the release turns it
    off (vllm_gemma2_window.window_view: its layers full, its length capped), and DeepSeek-V2/V3's MLA layers as
    every head's K and V where the release caches no latent (vllm_premla.per_head_view)."""
    from .vllm_gemma2_window import unwindowed, window_view
    from .vllm_index_share import index_view
    from .vllm_mxfp4_online import online_view
    from .vllm_premla import per_head_view
    from .vllm_rope_len import rope_view

    # the window's cap after the RoPE factor: a release that turns the window off refuses a factor it would apply
    # (vllm_rope_len.window_pair_refused), so the order changes no length served
    spec = window_view(online_view(index_view(rope_view(unwindowed(spec), version), version), version), version)
    spec = per_head_view(spec, version)
    auto = auto_kv_dtype(spec, version)
    notes = _checkpoint_kv_note(spec, version)
    if (auto, notes) == (spec.auto_kv_dtype, spec.notes):
        return spec
    return replace(spec, auto_kv_dtype=auto, notes=notes)


def _checkpoint_kv_note(spec, version: str) -> tuple:
    """spec.notes with the parser's note on the checkpoint's KV cache (params.checkpoint_kv_note) ending in this
    release's words (checkpoint_kv_words); unchanged where the checkpoint names none."""
    named = getattr(spec, "checkpoint_kv_dtype", "")
    if not named:
        return spec.notes
    from ..model.params import checkpoint_kv_note

    base = checkpoint_kv_note(spec.quantization, named)
    words = f"{base}: {checkpoint_kv_words(spec, version)}"
    return tuple(words if note.startswith(base) else note for note in spec.notes)


def unviewed(spec):
    """`spec` before release_view: the one thing it changes for a release is `auto`, which the parser set to the
    checkpoint's own KV cache (CHECKPOINT_KV: the model dtype before 0.14) or, for DeepSeek-V3.2, to nothing
    (fp8_ds_mla in 0.11.0 only, SPARSE_MLA_AUTO), which that architecture's config never names itself; for
    DeepSeek-V4, to fp8_ds_mla (V4_AUTO: the model dtype, refused, before 0.30)."""
    named = getattr(spec, "checkpoint_kv_dtype", "")
    if named:
        return spec if spec.auto_kv_dtype == named else replace(spec, auto_kv_dtype=named)
    if is_v4(spec):  # the parser's fp8_ds_mla, V4_AUTO's newest row
        return spec if spec.auto_kv_dtype == SPARSE_MLA_FP8 else replace(spec, auto_kv_dtype=SPARSE_MLA_FP8)
    if served_architecture(spec) == "DeepseekV32ForCausalLM" and spec.auto_kv_dtype == SPARSE_MLA_FP8:
        return replace(spec, auto_kv_dtype="")
    return spec


def is_v4(spec) -> bool:
    return _layers_have(spec.layers, "v4")  # also ModelSpec.compressed_attention


# An Octave cache on ROCm, which cache_precision does not plan (why: vllm_backend_refusals.OCTAVE_NO_BACKEND)
OCTAVE_ON_ROCM = ("{dtype} on ROCm is not modelled yet: vLLM's ROCM_OCTAVE backend sizes its slot from the model's "
                  "rotary dims and runs only at head_size 256 with 64 of them on RDNA3 / CDNA3 GPUs "
                  "(v1/attention/backends/rocm_octave_attn.py), which kvplan does not check; use auto, fp8 or "
                  "another dtype.")


def cache_precision(spec, precision, capability=(), version: str = PINNED, tp: Optional[int] = None):
    """The precision the attention cache really uses on a GPU of `capability` in `version` (the checkpoint's own where
    the release stores it whatever is asked: checkpoint_kv; KV_DTYPE_QUIRKS; sparse MLA's 656-byte fp8_ds_mla on
    FLASHMLA_SPARSE or plain fp8 on FlashInfer's and ROCm's backends: sparse_choice). A plain 8-bit dtype no sparse
    backend takes keeps the dtype as asked: its row is refused (vllm_backend_refusals.sparse_dtype_refusal). An Octave
    cache on ROCm is not planned (OCTAVE_ON_ROCM). On SM12x every dtype FLASHINFER_MLA_SPARSE_SM120 takes, 16-bit
    ones too, is stored as fp8_ds_mla (vllm_sparse.SM120_DTYPES)."""
    if precision.layout == "octave" and is_rocm_platform(capability):
        raise FieldError("kv_dtype", OCTAVE_ON_ROCM.format(dtype=precision.vllm_dtype))
    named, scope = checkpoint_kv(spec, version)
    if getattr(spec, "model_type", "") in KV_DTYPE_QUIRKS:
        return _quirk_precision(spec, precision, named)
    if scope == "any" and precision.spelling != named:  # a compressed-tensors kv_cache_scheme, 0.15-0.21
        precision = replace(PRECISIONS[kv_dtype_name(named)], spelling=named)
    if is_v4(spec) and vllm_name(precision.name).startswith("fp8"):
        return replace(PRECISIONS[SPARSE_MLA_FP8], asked=precision)
    plain_fp8 = precision.bits == 8 and precision.layout == "plain"
    if is_sparse(spec) and (plain_fp8 or sm120_sparse(capability, version)):
        choice = sparse_choice(spec, precision, capability, version, tp)
        if choice.backend is None or choice.cache == precision.vllm_dtype:
            return precision
        return replace(PRECISIONS[SPARSE_MLA_FP8], asked=precision)  # the MLA layers'; a drafter's others as asked
    return precision


def _quirk_precision(spec, precision, named: str):
    """A KV_DTYPE_QUIRKS family's cache: its layers see kv_cache_dtype 'auto' whatever is asked (the model dtype),
    which a compressed-tensors kv_cache_scheme then turns into fp8, as the layer is built with the quant config
    (models/falcon.py 0.15.0 and 0.20.0:173-197 quant_config=quant_config; attention/layer.py 0.15.0:198-203 and
    attention.py 0.16.0:231-236 any dtype, 0.22.0:238 and 0.34.0:309 under auto, which these layers always are): from
    0.15 whatever --kv-cache-dtype asks. A ModelOpt
    KV cache is resolved into cache_config, which these layers never read (engine/arg_utils.py 0.34.0:2329-2332)."""
    if named and getattr(spec, "quantization", "") == "compressed-tensors":
        return replace(PRECISIONS[kv_dtype_name(named)], spelling=named)
    return PRECISIONS[spec.dtype] if precision.bits < DTYPE_BYTES[spec.dtype] * 8 else precision
