"""Parameter groups of a config, each with its stored size: the weight estimate (when neither safetensors metadata
nor a bundled spec gives the exact size) and the decode model both read these groups, never the raw config.

Which layer holds what follows the same rules as the cache (layers.py): each decoder layer has a mixer (attention
of any kind, MLA, gated DeltaNet, Mamba-1, Mamba-2, or none) from `mixer_kinds` and a feed-forward block (dense MLP,
MoE, or none) from `ffn_kinds`. Every tensor the engine keeps resident is enumerated with its shape (tensors.py)
and lands in one group: embed, lm_head (0 when tied), attention, linear, dense, shared_experts, experts (routed,
with their biases), router (gates, biases, score corrections), norms, vision (tower + projector; Gemma 3 and
Llama 4 only - other multimodal configs count their language model alone). Multi-token-prediction layers some
checkpoints ship (DeepSeek V3, Qwen3-Next) are left out: vLLM does not load them for the main model.

Stored precision, per tensor:
- model dtype (bf16/fp16): everything not named below;
- float32: Mamba/DeltaNet A (vLLM allocates it float32), DeepSeek-V3-style expert score corrections and the
  routers vLLM keeps float32 (tensors.FP32_ROUTER: MiniMax-M2);
- mxfp4 (gpt-oss): routed-expert weight matrices at 4.25 bits/param (4-bit values + one 8-bit scale per 32);
  their biases, attention, router, embeddings and lm_head stay in the model dtype;
- fp8: every linear weight matrix of the decoder layers (attention, linear, dense, shared and routed experts) at
  1 byte, plus one float32 scale per weight_block_size block (ceil over each dimension), or one per matrix when
  the config names no block size; embeddings, lm_head, norms, router and vision stay unquantised;
- AWQ/GPTQ/marlin/auto-round/inc/awq_marlin/gptq_marlin/moe_wna16 (INT_METHODS): those same matrices at bits/8 per
  weight, plus per output row and group_size inputs (the whole row for group_size -1) one fp16 scale and one packed
  zero of `bits` bits (GPTQ's g_idx is left out);
  GPTQ's checkpoint_format marlin_24 (2:4 sparse, read to vLLM 0.14.1) at bits/2 per weight plus 1 bit of metadata,
  the scales and Marlin's workspace (_marlin24_bytes);
- bitsandbytes: nf4 at 0.5 byte + one float32 absmax per 64, int8 at 1 byte;
- compressed-tensors and ModelOpt (NVIDIA's FP8 / NVFP4): each layer's format from its config groups' targets and
  ignore list, or ModelOpt's quant_algo and exclude list, priced by its scheme (quantized.py, which says why).
A quantization_config without quant_method is served unquantised, as vLLM does (NO_METHOD_NOTE).
"""

from __future__ import annotations

import math
from typing import Optional

from ..errors import json_value, KvplanError
from . import gemma3n
from .config import Config, as_int, settings_key
from .gptq_dynamic import BITS, GROUP, decided, dynamic_rules, layer_decisions
from .layers import (ffn_kinds, first_shared_layer, gemma4_attention, gemma4_k_eq_v, indexer_layers, is_gemma3n,
                     is_gemma4, is_v4, mixer_kinds, V4_RATIOS, v4_ratios)
from .precision import DTYPE_BYTES
from .quantized import CheckpointFormat, scheme_bytes
from .spec import LinearShape, ParamGroup, Weights
from .tensors import (GROUPS, gemma4_layer_tensors, gemma4_load_delta, gemma4_model_tensors, layer_tensors,
                      model_tensors, mtp_blocks, mtp_module_tensors, mtp_tensors, shared_expert_name, vllm_blocks,
                      vllm_names)
from .vision import vision_tensors

QUANTIZED_GROUPS = ("attention", "linear", "dense", "shared_experts", "experts")
PER_LAYER_METHODS = ("compressed-tensors", "modelopt")  # a format per layer, from names (quantized.py)


# quant_method values quantized_format prices; ModelOpt's modelopt / modelopt_fp4 by their quant_algo (quantized.py)
INT_METHODS = ("awq", "gptq", "marlin", "auto-round", "inc", "awq_marlin", "gptq_marlin", "moe_wna16")
PRICED_METHODS = ("fp8", "fbgemm_fp8", "mxfp4") + INT_METHODS + ("bitsandbytes", "compressed-tensors", "modelopt",
                                                                  "modelopt_fp4")
# the quant_method values some vLLM release registers (QUANTIZATION_METHODS, model_executor/layers/quantization/
# __init__.py 0.11.0:9-39, 0.32.0:15-49, 0.34.0:15-50), the --quantization shorthands aside: a checkpoint naming one
# of these kvplan does not price is kvplan's limit, any other no release serves
VLLM_METHODS = PRICED_METHODS[:-1] + (
    "auto_awq", "auto_gptq", "bitblas", "gptq_bitblas", "gptq_marlin_24", "deepspeedfp", "tpu_int8", "ptpc_fp8",
    "gguf", "hqq", "experts_int8", "ipex", "quark", "torchao", "rtn", "petit_nvfp4", "fp_quant", "cpu_awq", "cpu_gptq",
    "w4afp8", "modelopt_mxfp8", "modelopt_mixed", "mxfp8", "gpt_oss_mxfp4", "deepseek_v4_fp8", "humming", "online")
# ModelOpt's own config (hf_quant_config.json, or a quantization_config copied from it): {"producer": {"name":
# "modelopt"}, "quantization": {"quant_algo": ...}}, which vLLM names by its algorithm (MODELOPT_LEGACY: transformers_
# utils/model_arch_config_convertor.py 0.32.0:271-289, 0.34.0:248-270; config/model.py 0.11.0:864-875)
MODELOPT_LEGACY = {"FP8": "modelopt", "FP8_PER_CHANNEL_PER_TOKEN": "modelopt", "FP8_PB_WO": "modelopt",
                   "NVFP4": "modelopt_fp4", "MIXED_PRECISION": "modelopt_mixed"}
NO_METHOD_NOTE = ("quantization_config names no quant_method: vLLM serves the model unquantised (config/model.py "
                  "0.34.0:1471-1474), so its weights are priced in the model dtype")


def _refused(qcfg, key: str, problem: str) -> KvplanError:
    """A setting refused, named under the key the settings came from (config.settings_key)."""
    return KvplanError(f"config field '{settings_key(qcfg)}.{key}' {problem}")


def quant_method(qcfg: dict) -> str:
    """quant_method as vLLM's ModelConfig reads it: ModelOpt's own config named by its algorithm (MODELOPT_LEGACY),
    lower-cased, compressed_tensors spelled compressed-tensors (transformers_utils/model_arch_config_convertor.py
    0.34.0:272-281; config/model.py 0.11.0:893-900); "" for none, which vLLM serves unquantised. A value that is not a
    string (vLLM calls .lower() on it) is refused."""
    legacy = _modelopt_legacy(qcfg)
    if legacy:
        return legacy
    method = qcfg.get("quant_method")
    if method is None:
        return ""
    if not isinstance(method, str):
        raise _refused(qcfg, "quant_method", f"must be a method's name, such as \"gptq\", got {json_value(method)}.")
    return method.lower().replace("compressed_tensors", "compressed-tensors")


def _modelopt_legacy(qcfg: dict) -> str:
    """The method vLLM names ModelOpt's own config by: producer.name "modelopt" (or a quantization block holding
    modelopt_quant_config) with a quant_algo set: its MODELOPT_LEGACY name, whatever quant_method says; an
    algorithm no release knows is refused in vLLM's words ("Unknown ModelOpt quant algo"). "" for any other. As the
    newest release reads it: which older ones read it otherwise is the engine's (vllm_quant.modelopt_legacy_refusal)."""
    producer = qcfg.get("producer")
    named = isinstance(producer, dict) and producer.get("name") == "modelopt"
    inner = _modelopt_block(qcfg, named)
    if not (named or "modelopt_quant_config" in inner) or inner.get("quant_algo") is None:
        return ""
    algo = str(inner["quant_algo"]).upper()
    if algo not in MODELOPT_LEGACY:
        shown = json_value(inner["quant_algo"])
        raise KvplanError(f"config field '{settings_key(qcfg)}.quantization.quant_algo' names {shown}, which vLLM "
                          f"refuses (\"Unknown ModelOpt quant algo\"); it takes {', '.join(MODELOPT_LEGACY)}.")
    return MODELOPT_LEGACY[algo]


def _modelopt_block(qcfg: dict, named: bool) -> dict:
    """ModelOpt's "quantization" block ({} where there is none). One that is there but not an object is refused for a
    config vLLM reads as ModelOpt's, named by its producer or its quant_method: the producer's read calls .get on it
    (model_arch_config_convertor.py 0.34.0:249-257; config/model.py 0.11.0:865-868: an AttributeError) and the
    ModelOpt classes refuse it ("Expected 'quantization' to be a dictionary in config", quantization/modelopt.py
    0.11.0:131-136, 0.34.0:330-335)."""
    inner = qcfg.get("quantization")
    if isinstance(inner, dict) or "quantization" not in qcfg:
        return inner or {}
    method = qcfg.get("quant_method")
    if named or (isinstance(method, str) and method.lower().startswith("modelopt")):
        raise _refused(qcfg, "quantization", f"must be an object of ModelOpt's settings (quant_algo, "
                                             f"kv_cache_quant_algo, ...), got {json_value(inner)}: vLLM stops at it "
                                             f"(\"Expected 'quantization' to be a dictionary in config\").")
    return {}


def modelopt_legacy_form(qcfg) -> tuple:
    """(quant_algo as vLLM prints it, whether producer.name is "modelopt") of ModelOpt's own config that
    _modelopt_legacy names, else (): which releases rename it is the engine's (vllm_quant.modelopt_legacy_refusal)."""
    if not isinstance(qcfg, dict) or not _modelopt_legacy(qcfg):
        return ()
    producer = qcfg.get("producer")
    return str(qcfg["quantization"]["quant_algo"]), isinstance(producer, dict) and producer.get("name") == "modelopt"


# The KV cache a ModelOpt checkpoint's quantization_config names, as vLLM's get_kv_cache_quant_algo_string reads it
# (utils/torch_utils.py 0.14.0:239-289, 0.20.0:279-331, 0.34.0:463-515): only for a method vLLM names modelopt*, the
# first set of kv_cache_scheme (in the "quantization" block, then at the top) and kv_cache_quant_algo (the same); a
# {"dynamic": false, "num_bits": 8, "type": "float"} scheme or the name fp8 (any case) is fp8_e4m3, a 4-bit float
# scheme or the name nvfp4 is nvfp4 (MODELOPT_TO_VLLM_KV_CACHE_DTYPE_MAP); anything else is "" (vLLM falls back to
# auto). Which releases store it, and for which --kv-cache-dtype, is the engine's (engines/vllm_kv_dtype.py
# CHECKPOINT_KV).
MODELOPT_KV = {"fp8": "fp8_e4m3", "nvfp4": "nvfp4"}


def modelopt_kv_cache(qcfg) -> str:
    """fp8_e4m3 or nvfp4: the KV cache a ModelOpt quantization_config names (MODELOPT_KV); "" for none."""
    if not isinstance(qcfg, dict) or not quant_method(qcfg).startswith("modelopt"):
        return ""
    inner = qcfg.get("quantization", qcfg)
    inner = inner if isinstance(inner, dict) else {}
    algo = inner.get("kv_cache_scheme") or qcfg.get("kv_cache_scheme") or inner.get("kv_cache_quant_algo") \
        or qcfg.get("kv_cache_quant_algo")
    if isinstance(algo, dict):
        if algo.get("dynamic") is False and algo.get("num_bits") == 8 and algo.get("type") == "float":
            return "fp8_e4m3"
        return "nvfp4" if algo.get("num_bits") == 4 and algo.get("type") == "float" else ""
    return MODELOPT_KV.get(algo.lower(), "") if isinstance(algo, str) else ""


def compressed_kv_cache(qcfg) -> str:
    """fp8 (as vLLM spells it) where a compressed-tensors quantization_config sets a kv_cache_scheme, which
    CompressedTensorsConfig keeps as it is (compressed_tensors.py 0.16.0:238, 0.34.0:267 config.get("kv_cache_scheme"))
    and vLLM's Attention layer turns into an fp8 cache whatever the scheme holds (attention/layer.py 0.15.0:198-203,
    attention.py 0.16.0:231-236, 0.34.0:308-312 `kv_cache_scheme is not None`); "" for none. Which releases do, and for
    which --kv-cache-dtype, is the engine's (engines/vllm_kv_dtype.py CHECKPOINT_KV); which schemes vLLM refuses, by
    release, vllm_ct_kv.py's (compressed_kv_scheme keeps the fields it checks)."""
    if not isinstance(qcfg, dict) or quant_method(qcfg) != "compressed-tensors":
        return ""
    return "fp8" if qcfg.get("kv_cache_scheme") is not None else ""


# The kv_cache_scheme keys vLLM's CompressedTensorsKVCacheMethod.validate_kv_cache_scheme checks (compressed_tensors.py
# 0.11.0:776-797, 0.34.0:1114-1141); which values each release takes is the engine's (engines/vllm_ct_kv.py)
KV_SCHEME_KEYS = ("type", "num_bits", "strategy", "symmetric")


def compressed_kv_scheme(qcfg) -> tuple:
    """((key, value), ...) of a compressed-tensors kv_cache_scheme's KV_SCHEME_KEYS (None where unset); () for none.
    A scheme that is not an object is refused: vLLM calls .get on it (compressed_tensors.py 0.34.0:1114)."""
    if not isinstance(qcfg, dict) or quant_method(qcfg) != "compressed-tensors":
        return ()
    scheme = qcfg.get("kv_cache_scheme")
    if scheme is None:
        return ()
    if not isinstance(scheme, dict):
        raise _refused(qcfg, "kv_cache_scheme", f"must be an object (num_bits, type, strategy, symmetric, ...), got "
                                                f"{json_value(scheme)}: vLLM stops at it, reading its fields.")
    return tuple((key, scheme.get(key)) for key in KV_SCHEME_KEYS)


def checkpoint_kv_note(quantization: str, kv: str) -> str:
    """The model's words on the KV cache its checkpoint names (modelopt_kv_cache, compressed_kv_cache); what a vLLM
    release makes of it the engine adds (engines/vllm_kv_dtype.py release_view)."""
    if quantization.startswith("modelopt"):
        return f"the ModelOpt quantization_config names an {kv} KV cache (kv_cache_quant_algo / kv_cache_scheme)"
    return "the compressed-tensors quantization_config sets a kv_cache_scheme (an fp8 KV cache)"


def _int_setting(qcfg: dict, keys: tuple, default: int, setting) -> int:
    """The first of `keys` (a setting and AutoAWQ's spelling of it) the config sets, not null: an integer (or an
    integral number) `setting` takes (gptq_dynamic.BITS / GROUP, which a `dynamic` rule's value meets too), else
    refused in its words; `default` where none is set (the engine refuses a missing key as the release does:
    vllm_wna16.REQUIRED_KEYS)."""
    key = next((key for key in keys if qcfg.get(key) is not None), None)
    if key is None:
        return default
    value = as_int(qcfg[key])
    if value is None or not setting.valid(value):
        raise _refused(qcfg, key, f"must be {setting.words}, got {json_value(qcfg[key])}.")
    return value


def _fp8_block(qcfg: dict):
    """weight_block_size: null (one scale per matrix) or two positive integers, as vLLM's Fp8Config refuses any
    other length ("The quantization block size of weight must have 2 dimensions": fp8.py 0.11.0:95, 0.34.0:120)."""
    block = qcfg.get("weight_block_size")
    if block is None:
        return None
    if not (isinstance(block, list) and len(block) == 2 and all(as_int(b) and as_int(b) > 0 for b in block)):
        raise _refused(qcfg, "weight_block_size", f"must be two positive integers [rows, columns] (such as "
                                                  f"[128, 128]), or null for one scale a matrix, got "
                                                  f"{json_value(block)}.")
    return tuple(as_int(b) for b in block)


def quantized_format(qcfg: dict) -> tuple[str, dict]:
    """(format name, its parameters) of a quantization_config; a method kvplan does not price, or a setting no vLLM
    class takes, is refused naming the field."""
    method = quant_method(qcfg)
    if method == "mxfp4":
        return "mxfp4", {}
    if method in ("fp8", "fbgemm_fp8") or "fp8" in str(qcfg.get("fmt", "")):
        experts = "mxfp4" if qcfg.get("expert_dtype") == "fp4" else None  # DeepSeek-V4's MXFP4 routed experts
        return "fp8", {"block": _fp8_block(qcfg), "experts": experts, "ignored": fp8_ignored(qcfg)}
    if method in INT_METHODS:
        bits = _int_setting(qcfg, ("bits", "w_bit"), 4, BITS)
        group = _int_setting(qcfg, ("group_size", "q_group_size"), 128, GROUP)
        sparse = qcfg.get("checkpoint_format") == "marlin_24"  # GPTQMarlin24Config's storage (quantized_bytes)
        opts = {"bits": bits, "group": group, "sparse24": sparse}
        if method in ("gptq", "gptq_marlin") and not sparse:  # GPTQModel's per-module overrides (gptq_dynamic.py)
            opts["dynamic"] = dynamic_rules(qcfg)
            opts["sym"] = _hashable_sym(qcfg)
        return f"int{bits}-{method}", opts
    if method == "bitsandbytes":
        return ("nf4", {}) if qcfg.get("load_in_4bit") else ("int8", {})
    if method in PER_LAYER_METHODS or method in ("modelopt", "modelopt_fp4"):
        checkpoint = CheckpointFormat({**qcfg, "quant_method": method}, settings_key(qcfg))
        return method.split("_")[0], {"checkpoint": checkpoint}
    if not method:  # vLLM serves it unquantised (NO_METHOD_NOTE)
        return "", {}
    priced = ", ".join(PRICED_METHODS)
    if method in VLLM_METHODS:
        raise _refused(qcfg, "quant_method", f"names {json_value(method)}: kvplan does not price {method} "
                                             f"checkpoints yet (it prices {priced}).")
    raise _refused(qcfg, "quant_method", f"names {json_value(method)}, a method no vLLM release registers (0.11.0 to "
                                         f"0.34.0); kvplan prices {priced}.")


def _hashable_sym(qcfg: dict):
    """A GPTQ config's sym, which vLLM looks up with the bits in its Marlin type map, `(bits, sym) in TYPE_MAP`
    (gptq_marlin.py 0.11.0:236 is_gptq_marlin_compatible, asked of every GPTQ checkpoint on CUDA; auto_gptq.py
    0.32.0:152 AutoGPTQConfig): a list or an object there stops it (unhashable), in every release."""
    sym = qcfg.get("sym")
    if isinstance(sym, (list, dict)):
        raise _refused(qcfg, "sym", f"must be true or false, got {json_value(sym)}: vLLM looks (bits, sym) up in the "
                                    f"GPTQ Marlin type map and stops at a list or an object.")
    return sym


def checkpoint_method(qcfg) -> str:
    """The quantisation method a checkpoint's quantization_config names, as vLLM's ModelConfig starts from it:
    quant_method lower-cased; a ModelOpt config by its algorithm, as ModelOptFp8Config / ModelOptNvFp4Config
    .override_quantization_method name it (vLLM 0.32.0 quantization/modelopt.py:449-455, :772-778: "modelopt"
    for FP8*, "modelopt_fp4" for an algorithm naming FP4); "" for none."""
    if not isinstance(qcfg, dict):
        return ""
    method = quant_method(qcfg)
    if method.startswith("modelopt"):
        inner = qcfg.get("quantization") if isinstance(qcfg.get("quantization"), dict) else qcfg
        algo = str(inner.get("quant_algo") or "").upper()
        return "modelopt_fp4" if "FP4" in algo else "modelopt" if algo.startswith("FP8") else method
    return method


# what vLLM's AWQ / GPTQ classes read of a quantization_config to pick a Marlin kernel or refuse the checkpoint
# (awq_marlin.py is_awq_marlin_compatible, gptq_marlin.py is_gptq_marlin_compatible, awq.py / auto_awq.py /
# auto_gptq.py from_config: engines/vllm_quant.py); w_bit and q_group_size are AutoAWQ's own spellings; the format
# keys BitBLAS's and Marlin 2:4's overrides read (engines/vllm_wna16.py FORMAT_CLASSES)
QUANT_FIELDS = ("bits", "w_bit", "group_size", "q_group_size", "zero_point", "sym", "desc_act", "checkpoint_format",
                "is_bitblas_format")


def quantization_fields(qcfg) -> tuple:
    """((key, value), ...) of the QUANT_FIELDS a quantization_config sets to a JSON scalar, in QUANT_FIELDS' order."""
    if not isinstance(qcfg, dict):
        return ()
    return tuple((key, qcfg[key]) for key in QUANT_FIELDS
                 if key in qcfg and (qcfg[key] is None or isinstance(qcfg[key], (bool, int, float, str))))


def fp8_ignored(qcfg: dict) -> frozenset:
    """Module names an fp8 checkpoint leaves unquantized: ignored_layers, else modules_to_not_convert (vLLM
    quantization/fp8.py Fp8Config.from_config), matched exactly (ignored_layers_match_mode 'exact')."""
    names = qcfg.get("ignored_layers") or qcfg.get("modules_to_not_convert") or []
    return frozenset(name for name in names if isinstance(name, str)) if isinstance(names, list) else frozenset()


def layer_ignored(opts: dict, index: Optional[int]) -> tuple:
    """The modules of decoder layer `index` an fp8 ignored_layers names (their names inside the layer)."""
    prefix = f"model.layers.{index}."
    return tuple(sorted(name[len(prefix):] for name in opts.get("ignored", ()) if name.startswith(prefix)))


def quantized_bytes(fmt: str, opts: dict, rows: int, cols: int) -> float:
    """Stored bytes of one rows x cols linear weight matrix in a quantised format."""
    n = rows * cols
    if fmt == "mxfp4":
        return n * 4.25 / 8
    if fmt == "fp8":
        block = opts["block"]
        scales = math.ceil(rows / block[0]) * math.ceil(cols / block[1]) if block else 1
        return n + 4 * scales
    if fmt == "nf4":
        return n / 2 + 4 * math.ceil(n / 64)
    if fmt == "int8":
        return n
    bits = opts["bits"]
    if opts.get("sparse24"):
        return _marlin24_bytes(bits, opts["group"], rows, cols)
    group = cols if opts["group"] == -1 else opts["group"]
    return n * bits / 8 + rows * math.ceil(cols / group) * (2 + bits / 8)


def _marlin24_bytes(bits: int, group: int, rows: int, cols: int) -> float:
    """A 2:4-sparse Marlin layer of `rows` outputs x `cols` inputs (gptq_marlin_24.py 0.13.0:208-270 create_weights):
    B_24, the kept half at `bits` in int32 words ([cols / 32, rows * 16 / (32 / bits)]), B_meta, int16
    [cols / 32, rows * 2], 16-bit scales s per group_size inputs (one row for -1) and output, and the int32 workspace
    zeros, rows // 128 * 64 of them."""
    groups = 1 if group == -1 else cols // group
    return rows * cols * bits / 16 + rows * cols / 8 + groups * rows * 2 + rows // 128 * 64 * 4


def projection_styles(cfg: Optional[Config]) -> dict:
    """Which of vLLM's projection names a group's layers carry where a family differs (quantized._PROJECTIONS); the
    shared experts' and the linear mixer's from the family's names (tensors.vllm_names, shared_expert_name)."""
    if cfg is None:
        return {}
    styles = {"attention": "mla"} if cfg.has("kv_lora_rank") else {}
    if shared_expert_name(cfg) == "shared_expert":
        styles["shared_experts"] = "shared_expert"
    if vllm_names(cfg).mixer != "linear_attn":
        styles["linear"] = "mixer"
    return styles


def _stored_bytes(tensor, fmt: str, opts: dict, model_bytes: int, index: Optional[int] = None,
                  styles: Optional[dict] = None, blocks: Optional[dict] = None) -> tuple[float, Optional[str]]:
    """(stored bytes, the quantised format's name or None) of one tensor of decoder layer `index` (`styles`:
    projection_styles, `blocks`: tensors.vllm_blocks, of the config)."""
    if tensor.fp32:
        return 4 * tensor.elements, None
    if "checkpoint" in opts:  # compressed-tensors / ModelOpt: the layer's own scheme, by its names
        quantizable = tensor.group in QUANTIZED_GROUPS or tensor.group == "lm_head"
        scheme = opts["checkpoint"].scheme(tensor.group, index, (styles or {}).get(tensor.group, "")) \
            if quantizable and tensor.linear or tensor.group == "lm_head" else None
        if scheme is None:
            return model_bytes * tensor.elements, None
        return tensor.copies * scheme_bytes(scheme, tensor.rows, tensor.cols, model_bytes), scheme.stored
    quantized = bool(fmt) and tensor.linear and (
        tensor.group == "experts" if fmt == "mxfp4" else tensor.group in QUANTIZED_GROUPS)
    if quantized and tensor.module and tensor.module in layer_ignored(opts, index):
        quantized = False
    if quantized and tensor.group == "experts" and opts.get("experts") == "mxfp4":  # DeepSeek-V4 expert_dtype fp4
        return tensor.copies * quantized_bytes("mxfp4", {}, tensor.rows, tensor.cols), "mxfp4"
    if quantized and opts.get("dynamic") and index is not None:
        return _dynamic_bytes(tensor, fmt, opts, model_bytes, index, blocks or vllm_blocks(None))
    if quantized:
        return tensor.copies * quantized_bytes(fmt, opts, tensor.rows, tensor.cols), fmt
    return model_bytes * tensor.elements, None


def _dynamic_bytes(tensor, fmt: str, opts: dict, model_bytes: int, index: int, blocks: dict) -> tuple:
    """(stored bytes, format or None) of a GPTQ tensor under the `dynamic` rule its module meets (gptq_dynamic.py):
    in the model dtype where the rule skips it, else at the rule's bits and group size."""
    rule = decided(tensor, index, opts["dynamic"], blocks, _base(opts))
    if rule is False:
        return model_bytes * tensor.elements, None
    bits, group, _ = rule
    stored = quantized_bytes(fmt, {**opts, "bits": bits, "group": group}, tensor.rows, tensor.cols)
    return tensor.copies * stored, f"int{bits}-{fmt.split('-', 1)[1]}"


def _base(opts: dict) -> tuple:
    """The config's own (bits, group_size, sym), which a GPTQ `dynamic` rule overrides (gptq_dynamic.overridden)."""
    return opts["bits"], opts["group"], opts.get("sym")


def quantization(cfg: Config):
    """The checkpoint's quantization_config, with DeepSeek-V4's top-level expert_dtype (fp4: MXFP4 routed experts
    beside fp8 block-quantised linears; vLLM models/deepseek_v4/quant_config.py DeepseekV4FP8Config)."""
    qcfg = cfg.get("quantization_config")
    if isinstance(qcfg, dict) and is_v4(cfg):
        return {**qcfg, "expert_dtype": cfg.get("expert_dtype", "fp4")}
    return qcfg


def decoder_layers(cfg: Config, n: int) -> list:
    """(mixer, feed-forward) of every decoder layer, from the same rules as the cache layout (DeepSeek-V4: its
    compress ratio, and the first num_hash_layers MoE layers routed by a token hash)."""
    if is_v4(cfg):
        hashed = cfg.optional_int("num_hash_layers")
        return [(f"v4:{ratio}", "hash_moe" if i < hashed else "moe") for i, ratio in enumerate(v4_ratios(cfg, n))]
    mixers, _ = mixer_kinds(cfg, n)
    ffns, _ = ffn_kinds(cfg, n)
    return list(zip(mixers, ffns))


def mtp_layer_kind(cfg: Config, n: int) -> tuple:
    """(mixer, feed-forward) of an MTP block's decoder layer: the model's last layer's; DeepSeek-V4's its own compress
    ratio, compress_ratios' entry after the n layers' (0 in V4-Flash and V4-Pro: a window-only layer, no compressor
    or indexer in the checkpoint's mtp.0)."""
    if not is_v4(cfg):
        return decoder_layers(cfg, n)[-1]
    ratios = cfg.get("compress_ratios")
    ratio = ratios[n] if isinstance(ratios, list) and len(ratios) > n and ratios[n] in V4_RATIOS else 0
    return f"v4:{ratio}", "moe"


def grouped(layers: list, qcfg, dtype: str, cfg: Optional[Config] = None) -> tuple:
    """ParamGroups of [(tensors, times)] or [(tensors, times, decoder layer index)], each tensor priced in the
    checkpoint's stored format (per layer where the format names layers: compressed-tensors, ModelOpt)."""
    fmt, opts = quantized_format(qcfg) if isinstance(qcfg, dict) else ("", {})
    styles, blocks = projection_styles(cfg), vllm_blocks(cfg)
    model_bytes = DTYPE_BYTES[dtype]
    counts = {name: 0 for name in GROUPS}
    stored = {name: 0.0 for name in GROUPS}
    whole = {name: 0.0 for name in GROUPS}  # of stored: what every TP rank holds whole
    by_kv = {name: {} for name in GROUPS}  # of stored: what TP splits by KV heads, by their count
    formats = {name: set() for name in GROUPS}
    linear = {name: _Sums() for name in GROUPS}  # of the above: the LinearBase weight matrices (ParamGroup.linear)
    for tensors, times, *index in layers:
        fused = {}  # (group, vLLM module, cols, copies) -> rows: the projections one module fuses, as one matrix
        for t in tensors:
            size, quantized = _stored_bytes(t, fmt, opts, model_bytes, index[0] if index else None, styles, blocks)
            counts[t.group] += times * t.elements
            stored[t.group] += times * size
            whole[t.group] += times * size if t.replicated else 0
            if t.kv_split:
                by_kv[t.group][t.kv_split] = by_kv[t.group].get(t.kv_split, 0.0) + times * size
            if quantized:
                formats[t.group].add(quantized)
            if (t.linear or t.gate) and t.cols > 1:
                linear[t.group].add(t, times, size, quantized)
                # a named module fuses its projections (K and V are one tensor of two copies), but each expert
                # of a FusedMoE is a matrix of its own; an unnamed tensor is a module of its own. How TP splits it:
                # whole, by its inputs (row-parallel) or by its outputs, K / V rows by their heads (LinearShape)
                folded = bool(t.vllm_module) and t.group != "experts"
                split = "" if t.replicated else "cols" if t.row_parallel else "rows"
                key = (t.group, t.vllm_module or ("", len(fused)), t.cols, 1 if folded else t.copies, split)
                rows, kv_rows, kv_heads = fused.get(key, (0, 0, 0))
                stacked = t.rows * (t.copies if folded else 1)
                fused[key] = (rows + stacked, kv_rows + (stacked if t.kv_split else 0), t.kv_split or kv_heads)
        for (group, _, cols, copies, split), (rows, kv_rows, kv_heads) in fused.items():
            shape = LinearShape(rows, cols, split, kv_rows, kv_heads)
            linear[group].shapes[shape] = linear[group].shapes.get(shape, 0) + times * copies
    return tuple(ParamGroup(name, counts[name], stored[name] / counts[name] if counts[name] else model_bytes,
                            min(formats[name], default=dtype), round(whole[name]),
                            tuple((kv, round(size)) for kv, size in sorted(by_kv[name].items())),
                            linear[name].group(name, dtype))
                 for name in GROUPS)


class _Sums:
    """A group's LinearBase weight matrices as grouped() adds them up (ParamGroup.linear)."""

    def __init__(self):
        self.count, self.stored, self.whole, self.by_kv, self.shapes, self.formats = 0, 0.0, 0.0, {}, {}, set()

    def add(self, t, times: int, size: float, quantized: Optional[str]) -> None:
        self.count += times * t.elements
        self.stored += times * size
        self.whole += times * size if t.replicated else 0
        if t.kv_split:
            self.by_kv[t.kv_split] = self.by_kv.get(t.kv_split, 0.0) + times * size
        if quantized:
            self.formats.add(quantized)

    def group(self, name: str, dtype: str) -> Optional[ParamGroup]:
        if not self.count:
            return None
        return ParamGroup(name, self.count, self.stored / self.count, min(self.formats, default=dtype),
                          round(self.whole), tuple((kv, round(size)) for kv, size in sorted(self.by_kv.items())),
                          shapes=tuple(sorted(self.shapes.items())))


def parameter_groups(cfg: Config, *, hidden: int, layers: int, heads: int, kv_heads: int, head_dim: int,
                     dtype: str) -> tuple:
    """ParamGroups of this config (see the module docstring), each with its stored bytes per parameter."""
    dims = {"hidden": hidden, "heads": heads, "kv_heads": kv_heads, "head_dim": head_dim}
    if is_gemma3n(cfg):
        return grouped(gemma3n.parts(cfg, dims, layers, 0) + [(gemma3n.model_level_tensors(cfg, dims, layers) +
                                                                gemma3n.tower_tensors(cfg, hidden), 1)],
                       quantization(cfg), dtype, cfg)
    if is_gemma4(cfg):
        return grouped(gemma4_parts(cfg, dims, layers, 0) + [(gemma4_model_tensors(cfg, dims) +
                                                               vision_tensors(cfg, hidden), 1)],
                       quantization(cfg), dtype, cfg)
    qcfg = quantization(cfg)
    opts = quantized_format(qcfg)[1] if isinstance(qcfg, dict) else {}
    per_layer = opts.get("checkpoint")
    structure: dict = {}  # layers alike in kind (and, where the format is per layer, in format) priced once
    first: dict = {}
    indexers = indexer_layers(cfg, layers)  # sparse attention: which layers build their own indexer
    for index, kind in enumerate(decoder_layers(cfg, layers)):
        key = kind + (not indexers or indexers[index],)
        key += _layer_formats(per_layer, index, projection_styles(cfg)) if per_layer else ()
        key += layer_ignored(opts, index)
        if opts.get("dynamic"):
            key += layer_decisions(layer_tensors(cfg, dims, *key[:3]), index, opts["dynamic"], vllm_blocks(cfg),
                                   _base(opts))
        structure[key] = structure.get(key, 0) + 1
        first.setdefault(key, index)
    parts = [(layer_tensors(cfg, dims, *key[:3]), times, first[key]) for key, times in structure.items()]
    return grouped(parts + [(model_tensors(cfg, dims) + vision_tensors(cfg, hidden), 1)], qcfg, dtype, cfg)


def module_settings(cfg: Config, *, hidden: int, layers: int, heads: int, kv_heads: int, head_dim: int) -> tuple:
    """The (bits, group_size, sym) each quantised linear module of the decoder layers gets under a GPTQ config's
    `dynamic` rules (gptq_dynamic.overridden), in the order vLLM builds them, each once: what its override_config and
    Marlin check (engines/vllm_wna16.py layer_refusal); () without rules (the config's own hold everywhere)."""
    qcfg = quantization(cfg)
    opts = quantized_format(qcfg)[1] if isinstance(qcfg, dict) else {}
    if not opts.get("dynamic") or is_gemma3n(cfg) or is_gemma4(cfg):
        return ()
    dims = {"hidden": hidden, "heads": heads, "kv_heads": kv_heads, "head_dim": head_dim}
    indexers, blocks, settings = indexer_layers(cfg, layers), vllm_blocks(cfg), {}
    for index, kind in enumerate(decoder_layers(cfg, layers)):
        for t in layer_tensors(cfg, dims, *kind, not indexers or indexers[index]):
            setting = decided(t, index, opts["dynamic"], blocks, _base(opts)) if t.linear else False
            if setting is not False and t.group in QUANTIZED_GROUPS:
                settings[setting] = None  # a dict keeps the first-built order
    return tuple(settings)


def dynamic_overrides(qcfg) -> tuple:
    """(key, ((setting, value), ...)) of each `dynamic` rule of a quantization_config but "-:" ones, in the file's
    order, with the desc_act and group_size it sets (as JSON scalars): AutoGPTQConfig's constructor checks every such
    rule's activation ordering, whether or not it matches a module (engines/vllm_wna16.py desc_act_refusal)."""
    rules = dynamic_rules(qcfg) if isinstance(qcfg, dict) and checkpoint_method(qcfg) in ("gptq", "gptq_marlin") else ()
    return tuple((rule.key, tuple((key, _scalar(rule.overrides[key])) for key in ("desc_act", "group_size")
                                  if key in rule.overrides)) for rule in rules if not rule.skips)


def _scalar(value):
    return value if value is None or isinstance(value, (bool, int, float, str)) else json_value(value)


def _layer_formats(checkpoint: CheckpointFormat, index: int, styles: dict) -> tuple:
    """The scheme of each quantisable group in decoder layer `index` (a key: layers alike share it)."""
    return tuple(checkpoint.scheme(g, index, styles.get(g, "")) for g in QUANTIZED_GROUPS)


def gemma4_layer_shapes(cfg: Config, dims: dict, n: int) -> dict:
    """(layer dims, KV-sharing?, K = V?) -> number of Gemma 4 layers of that shape (layers.gemma4_attention)."""
    kinds, _ = mixer_kinds(cfg, n)
    first = first_shared_layer(cfg, n)
    k_eq_v = gemma4_k_eq_v(cfg)
    shapes: dict = {}
    for i, kind in enumerate(kinds):
        attention = gemma4_attention(cfg, kind, i, dims["kv_heads"], dims["head_dim"])
        layer = {**dims, "kv_heads": attention.kv_heads, "head_dim": attention.head_dim}
        key = (tuple(layer.items()), i >= first, k_eq_v and kind == "full" and i < first)
        shapes[key] = shapes.get(key, 0) + 1
    return shapes


def gemma4_parts(cfg: Config, dims: dict, n: int, side: int) -> list:
    """[(tensors, times)] of Gemma 4's layers as vLLM allocates them (side 0), or of what vLLM allocates beyond the
    checkpoint (side 1) and what the checkpoint ships that vLLM drops (side 2): tensors.gemma4_load_delta."""
    parts = []
    for (layer, shared, k_eq_v), times in gemma4_layer_shapes(cfg, dims, n).items():
        d = dict(layer)
        tensors = gemma4_layer_tensors(cfg, d, shared) if side == 0 else gemma4_load_delta(cfg, d, shared,
                                                                                           k_eq_v)[side - 1]
        parts.append((tensors, times))
    return parts


def load_delta(cfg: Config, *, hidden: int, layers: int, heads: int, kv_heads: int, head_dim: int,
               dtype: str) -> tuple:
    """(parameters, stored bytes) vLLM holds beyond the checkpoint (negative: fewer): Gemma 4's K = V layers gain
    their V rows, its KV-sharing layers drop the K / V projections checkpoints ship. (0, 0) for other models."""
    if not is_gemma4(cfg) and not is_gemma3n(cfg):
        return 0, 0
    dims = {"hidden": hidden, "heads": heads, "kv_heads": kv_heads, "head_dim": head_dim}
    qcfg = cfg.get("quantization_config")
    family_parts = gemma3n.parts if is_gemma3n(cfg) else gemma4_parts
    added, dropped = (grouped(family_parts(cfg, dims, layers, side), qcfg, dtype) for side in (1, 2))
    return (sum(g.parameters for g in added) - sum(g.parameters for g in dropped),
            sum(g.bytes for g in added) - sum(g.bytes for g in dropped))


def mtp_module_groups(cfg: Config, *, hidden: int, layers: int, heads: int, kv_heads: int, head_dim: int,
                      dtype: str) -> tuple:
    """ParamGroups of one MTP module as vLLM builds it to draft (tensors.mtp_module_tensors); () without one."""
    if not mtp_blocks(cfg):
        return ()
    dims = {"hidden": hidden, "heads": heads, "kv_heads": kv_heads, "head_dim": head_dim}
    tensors = mtp_module_tensors(cfg, dims, mtp_layer_kind(cfg, layers))
    # vLLM names the MTP layer after the model's last (deepseek_mtp.py: model.layers.{num_hidden_layers})
    return tuple(g for g in grouped([(tensors, 1, layers)], quantization(cfg), dtype, cfg)
                 if g.parameters)


def mtp_size(cfg: Config, *, hidden: int, layers: int, heads: int, kv_heads: int, head_dim: int,
             dtype: str) -> tuple:
    """(parameters, stored bytes) of the multi-token-prediction blocks the checkpoint ships (tensors.mtp_blocks),
    at the same stored precision as the model's own layers; (0, 0) for models without them."""
    blocks = mtp_blocks(cfg)
    if not blocks:
        return 0, 0
    dims = {"hidden": hidden, "heads": heads, "kv_heads": kv_heads, "head_dim": head_dim}
    qcfg = quantization(cfg)
    fmt, opts = quantized_format(qcfg) if isinstance(qcfg, dict) else ("", {})
    tensors = mtp_tensors(cfg, dims, mtp_layer_kind(cfg, layers))
    styles, names = projection_styles(cfg), vllm_blocks(cfg)
    stored = sum(_stored_bytes(t, fmt, opts, DTYPE_BYTES[dtype], layers, styles, names)[0] for t in tensors)
    return blocks * sum(t.elements for t in tensors), int(blocks * stored)


def estimate_weights(groups: tuple, dtype: str, delta: tuple = (0, 0)) -> Weights:
    """Stored size of the checkpoint whose loaded parameter groups these are (`delta`: load_delta, what loading
    adds to the checkpoint)."""
    total = sum(g.parameters for g in groups) - delta[0]
    stored = sum(g.bytes for g in groups) - delta[1]
    fmt = next((g.stored for g in groups if g.parameters and g.stored != dtype), dtype)
    return Weights(total, stored, fmt, "estimated from config")
