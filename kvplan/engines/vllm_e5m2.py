"""vLLM's refusal of an fp8_e5m2 KV cache beside a quantisation config that hands the attention layers a KV cache
method, release by release (paths under vllm/ of the release named; kvplan copies no vLLM code).

As each attention layer is built, vLLM asks the quantisation config for the layer's method (inline in
Attention.__init__ in 0.11.0, attention/layer.py:166-167; the helper _init_kv_cache_quant from 0.11.1, attention.py
0.16.0:157-159, 0.34.0:209-213 through resolve_quant_method, which keeps the checkpoint's method for a layer online
quantisation does not touch: quantization/base_config.py 0.34.0:360-365). Where that method loads weights
(should_load_quant_weights: neither None nor UnquantizedLinearMethod, attention/layer.py 0.14.0:50-54, attention.py
0.34.0:94-98; 0.11.0-0.13.0 test the same inline, 0.11.0 :168-169) it is a BaseKVCacheMethod, and a layer whose
kv_cache_dtype is fp8_e5m2 raises "fp8_e5m2 kv-cache is not supported with fp8 checkpoints." (0.11.0 :173-175, 0.14.1
attention/layer.py:136-137, 0.16.0 attention.py:166-167, 0.23.0 :167-168); from 0.24 not where the method is a
compressed-tensors one whose config has no kv_cache_scheme (0.24.0 :168-183, 0.32.0 :205-219, 0.34.0 :220-235).

The configs kvplan prices that hand a layer such a method (get_quant_method; HANDED):
- Fp8Config: every Attention (fp8.py 0.11.0:184-185, 0.20.0:202-203, 0.30.0:224-225, 0.34.0:211-212). Also what
  --quantization fp8 of a 16-bit checkpoint builds up to 0.30 (model_loader/weight_utils.py 0.30.0:385-390
  `quant_cls()`); from 0.31 that is OnlineQuantizationConfig (0.31.0 :342-349; vllm_quant.ONLINE_SINCE), which
  answers None for an attention layer (online/base.py 0.31.0:373-396, 0.34.0:345-354 linear and MoE layers only).
- CompressedTensorsConfig, with a kv_cache_scheme or without: every Attention (compressed_tensors.py 0.11.0:136-137,
  0.20.0:193-194, 0.34.0:213-214), so a scheme-less one is refused to 0.23 and passes from 0.24 (CT_NO_SCHEME_PASSES).
- ModelOpt's FP8 and NVFP4 configs, whatever kv_cache_quant_algo says: every Attention (modelopt.py 0.11.0:197-198,
  :820-821), MLAAttention too in 0.11.1-0.11.2 (:237-238, :915-916) and from 0.17 (ModelOptQuantConfigBase, 0.17.0
  :176-177, 0.34.0:239-240), not in 0.12-0.16 (0.12.0:157-158, 0.15.0:186, 0.16.0:182-183: Attention only).
- None from the other methods kvplan prices: AWQ, GPTQ and their Marlin / Auto forms, fbgemm_fp8, bitsandbytes,
  AutoRound / INC and moe_wna16 have no attention branch; Mxfp4Config logs and returns None (mxfp4.py 0.20.0:92-97).
  Not priced by kvplan, so not mirrored: quark, petit_nvfp4, ptpc_fp8 (Fp8KVCacheMethod), ModelOpt's MXFP8 config and
  its mixed-precision one (which hands Attention a method only with a kv_cache_quant_algo: modelopt.py 0.17.0
  :1850-1853).

Which layers are Attention (LAYER_CLASS): kvplan's FullAttention kinds (sliding, chunked and KV-sharing layers are
Attention or subclasses of it). MLA layers were Attention(use_mla=True) in 0.11.0 (model_executor/layers/mla.py
0.11.0:96), then their own MLAAttention, an nn.Module beside Attention (attention/layer.py 0.11.1:641), which runs
the same helper (0.11.1 :690, mla_attention.py 0.16.0:327, 0.34.0:568) but which Fp8Config and CompressedTensorsConfig
never hand a method (`isinstance(layer, Attention)`). Recurrent layers, the sparse indexer's cache and DeepSeek-V4's
attention (models/deepseek_v4/attention.py 0.34.0:133) are neither. Not modelled: a family's own MLA class (Kimi
Linear's kimi_k3 MultiHeadLatentAttention in 0.34.0, models/kimi_k3/nvidia/mla.py:130), which no config hands one.

The dtype checked is the one the layer was built with, which the caller passes (vllm_kv_dtype.cache_precision): a
KV_DTYPE_QUIRKS family's layers see auto; a compressed-tensors kv_cache_scheme makes any dtype fp8 first in 0.15-0.21
(attention/layer.py 0.15.0:198-203, attention.py 0.16.0:231-236, 0.21.0:232-237), only auto from 0.22 (0.22.0:238),
never in 0.11-0.14 (attention/layer.py 0.14.1:192); ModelOpt's kv_cache_quant_algo replaces auto only
(engine/arg_utils.py 0.34.0:2329-2332, attention.py 0.34.0:297-300 get_kv_cache_dtype); DeepSeek-V3.2's fp8*
becomes fp8_ds_mla before any layer up to 0.17 (models/config.py: vllm_sparse.CONFIG_REWRITE), and on FLASHMLA_SPARSE
before the check from 0.18, when MLAAttention picks its backend first (mla_attention.py 0.18.0:333, the check at
:370): a sparse layer no backend takes is refused there, as is any dense MLA layer's fp8_e5m2, which no CUDA MLA
backend lists (MLA_BACKEND_FIRST; the caller's, vllm_backend_refusals.sparse_dtype_refusal and
dense_mla_dtype_refusal; vllm_sparse.DENSE_MLA_FP8).

An architecture whose attention layers are built without quant_config is handed nothing whatever the checkpoint
(NO_QUANT_CONFIG_ATTENTION: Jamba, Bailing, LFM2, Zamba2, ...).
"""

from __future__ import annotations

from typing import Optional

from ..model.kinds import FullAttention, MLALatent, SharedKV
from .figures import Refusal
from .vllm_quant import ONLINE_SINCE, vllm_method
from .vllm_registry import language_model_architecture
from .vllm_versions import PINNED, parse_version, release_rule

E5M2 = "fp8_e5m2 kv-cache is not supported with fp8 checkpoints."
OPTIONS = ("auto", "fp8", "fp8_e4m3")  # the --kv-cache-dtype values that pass it
ATTENTION, MLA = "Attention", "MLAAttention"

# vLLM method -> ((first release, the layer classes its config hands a KV cache method, where), ...), newest first;
# paths under model_executor/layers/quantization/
_ATTENTION_ONLY = (((0, 11, 1), (ATTENTION,), "0.11.1: MLAAttention is no Attention (attention/layer.py:641)"),
                   ((0, 11), (ATTENTION, MLA), "0.11.0: MLA built as Attention(use_mla=True), layers/mla.py:96"))
_MODELOPT = (((0, 17), (ATTENTION, MLA), "0.17.0 modelopt.py:176-177 (Attention, MLAAttention)"),
             ((0, 12), (ATTENTION,), "0.12.0 modelopt.py:157-158, 0.16.0 :182-183"),
             ((0, 11, 1), (ATTENTION, MLA), "0.11.1 modelopt.py:237-238, :915-916"),
             ((0, 11), (ATTENTION, MLA), "0.11.0 modelopt.py:197-198, :820-821 (MLA built as Attention)"))
HANDED = {"fp8": _ATTENTION_ONLY, "compressed-tensors": _ATTENTION_ONLY, "modelopt": _MODELOPT,
          "modelopt_fp4": _MODELOPT}
# Architectures whose every attention layer is built without quant_config (so vLLM asks no config for a KV cache
# method: Attention.__init__ `if quant_config else None`, attention/layer.py 0.11.0:166-167, attention.py 0.34.0
# :209-213), by first release, newest first (paths under model_executor/models/; found by an AST scan of every
# model file of 0.11.0 ... 0.34.0 for attention-class calls without a quant_config argument). No layer of theirs is
# refused fp8_e5m2, validates a compressed-tensors kv_cache_scheme or turns its cache fp8 for one (vllm_ct_kv.py;
# vllm_kv_dtype.checkpoint_kv); a ModelOpt kv_cache_quant_algo still resolves `auto` in the engine
# (vllm_kv_dtype.CHECKPOINT_KV). Encoder-only ones (ModernBert, Lfm2BidirectionalModel) have no cache; a wrapper whose
# text_config names one of these (Step3VL, Lfm2-VL, Nemotron-H VL) builds it the same.
_ALWAYS = (
    "JambaForCausalLM", "JambaForSequenceClassification",  # jamba.py 0.11.0:205, 0.20.0:237, 0.34.0:231
    "BailingMoeForCausalLM", "BailingMoeV2ForCausalLM",  # bailing_moe.py 0.11.0:134, 0.20.0:143, 0.34.0:147
    "SarvamMoEForCausalLM",  # sarvam.py 0.34.0:751 subclasses bailing_moe's BailingMoeForCausalLM
    "Lfm2ForCausalLM",  # lfm2.py 0.11.0:148, 0.30.0:153, 0.34.0:164-171 (attention_cls, from 0.33)
    "Lfm2MoeForCausalLM",  # lfm2_moe.py 0.11.1:249, 0.34.0:234
    "Plamo3ForCausalLM",  # plamo3.py 0.12.0:194, 0.34.0:199
    "Step3TextForCausalLM",  # step3_text.py 0.11.0:183, 0.34.0:201
    "Zamba2ForCausalLM",  # zamba2.py 0.11.0:165, 0.34.0:195
)
NO_QUANT_CONFIG_ATTENTION = (
    ((0, 27), _ALWAYS, "0.27.0: plamo2.py removed (0.26.0 :619 the last)"),
    ((0, 24), _ALWAYS + ("Plamo2ForCausalLM",), "0.24.0: bamba.py removed (0.23.0 :211 the last)"),
    ((0, 16), _ALWAYS + ("Plamo2ForCausalLM", "BambaForCausalLM"),
     "0.16.0 falcon_h1.py:278-285 passes quant_config (0.14.1 :273-280, 0.15.0 and 0.15.1 :275-282 not)"),
    ((0, 14), _ALWAYS + ("Plamo2ForCausalLM", "BambaForCausalLM", "FalconH1ForCausalLM"),
     "0.14.0 nemotron_h.py:480-487 passes quant_config (0.13.0 :484 not)"),
    ((0, 11), _ALWAYS + ("Plamo2ForCausalLM", "BambaForCausalLM", "FalconH1ForCausalLM", "NemotronHForCausalLM"),
     "0.11.0 plamo2.py:602, bamba.py:196, falcon_h1.py:258, nemotron_h.py:242"),
)
CT_NO_SCHEME_PASSES = (0, 24)  # attention.py 0.24.0:177-183: a compressed-tensors method without kv_cache_scheme
MLA_BACKEND_FIRST = (0, 18)  # mla_attention.py 0.18.0:333 get_attn_backend before :370 _init_kv_cache_quant


def layer_class(layer) -> str:
    """The vLLM class kvplan's layer kind is built as, of those a config may hand a KV cache method ('' for none)."""
    if isinstance(layer, (FullAttention, SharedKV)):
        return ATTENTION
    return MLA if isinstance(layer, MLALatent) else ""


def attention_without_quant_config(spec, version: str = PINNED) -> bool:
    """Whether vLLM `version` builds every attention layer of `spec`'s architecture without quant_config
    (NO_QUANT_CONFIG_ATTENTION): no config is asked for their KV cache method. The language model's own code: a
    wrapper's nested config's class where it names one (vllm_registry.language_model_architecture: llava.py,
    internvl.py, nano_nemotron_vl.py 0.32.0:986-990 hand the nested config on, whose list the copy resolves)."""
    return language_model_architecture(spec, version) in release_rule(NO_QUANT_CONFIG_ATTENTION, version, ())


def handed_classes(spec, version: str = PINNED, capability=()) -> tuple:
    """The layer classes the quantisation config vLLM `version` builds for `spec` hands a KV cache method that loads
    weights (HANDED), before the compressed-tensors exemption; () for none, as where the layers get no config."""
    if attention_without_quant_config(spec, version):
        return ()
    method = vllm_method(spec, capability, version)
    since = ONLINE_SINCE.get(method or "")
    if not method or (since and not getattr(spec, "quantization", "") and parse_version(version) >= since):
        return ()  # unquantised, or OnlineQuantizationConfig: no attention method
    return release_rule(HANDED.get(method, ()), version, ())


def e5m2_refusal(spec, built: str, version: str = PINNED, capability=()) -> Optional[Refusal]:
    """vLLM's refusal of an fp8_e5m2 cache where `spec`'s quantisation config hands one of its attention layers a KV
    cache method, `built` being the cache dtype the layers are built with (the caller's:
    vllm_kv_dtype.cache_precision)."""
    if built != "fp8_e5m2":
        return None
    handed = handed_classes(spec, version, capability)
    if not handed or not any(layer_class(layer) in handed for layer, _ in spec.layer_counts):
        return None
    scheme_less = getattr(spec, "quantization", "") == "compressed-tensors" and not spec.kv_cache_scheme
    if scheme_less and parse_version(version) >= CT_NO_SCHEME_PASSES:
        return None
    return Refusal(E5M2, None, configuration=True, field="kv_dtype", options=OPTIONS)
