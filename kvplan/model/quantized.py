"""Per-layer formats of compressed-tensors and ModelOpt checkpoints, and the bytes each layer holds, as vLLM 0.32.0
loads them (model_executor/layers/quantization/compressed_tensors/, quantization/modelopt.py).

Which layers: compressed-tensors matches each linear layer's name against every config group's `targets` (a name,
`re:` regex, or a class name such as `Linear`, which every linear layer's class and, through RoutedExperts, the
routed experts answer to) unless `ignore` names it (compressed_tensors.py get_scheme_dict, utils.py
find_matched_target / should_ignore_layer); the LM head only when a target names it, embeddings, routers and norms
never here. ModelOpt quantises every linear layer, the routed experts and the LM head unless `exclude_modules` /
`ignore` names them (exact, substring or fnmatch wildcard: modelopt.py is_layer_excluded), vision towers never.

Bytes per checkpoint matrix of rows x cols (`create_weights` of each scheme; float32 scales; one matrix = one shard of a
fused layer, so per-tensor scales count once per matrix):
- fp8 / int8 weights (W8A8, W8A16: schemes/compressed_tensors_w8a8_fp8.py, w8a16_fp8.py, w8a8_int8.py; ModelOpt FP8,
  FP8_PER_CHANNEL_PER_TOKEN, FP8_PB_WO): 1 byte each, plus a scale per matrix (tensor), per row (channel) or per
  block (block_structure / 128 x 128), plus one input scale per matrix when activations are static;
- int4 / int8 packed (pack-quantized WNA16: schemes/compressed_tensors_wNa16.py, compressed_tensors_moe_wna16.py):
  bits / 8 a weight in int32 words, a scale in the model dtype per row per group (one group a row for channel), and
  with asymmetric weights a zero point of `bits` bits per group per row (int32 packed along the rows);
- NVFP4 (nvfp4-pack-quantized: schemes/compressed_tensors_w4a4_nvfp4.py; ModelOpt NVFP4 / W4A16_NVFP4: modelopt.py
  KNvfp4Static, ModelOptNvFp4FusedMoE): half a byte a weight, one fp8-e4m3 scale (1 byte) per 16 inputs, a float32
  global scale per matrix, and for W4A4 a float32 input global scale per matrix.
That is the checkpoint's layout, which is what vLLM allocates before loading. On the GPU process_weights_after_loading
repacks (Marlin) or swizzles (CUTLASS NVFP4 block scales, padded to 128 rows x 4 columns) without changing the size
for the row and column counts models use (multiples of 128 and 64); kvplan prices the checkpoint layout.

What vLLM 0.32.0 refuses or kvplan does not price is one sentence naming the config field, never a guess."""

from __future__ import annotations

import math
import re
from fnmatch import fnmatch
from typing import NamedTuple, Optional

from ..errors import json_value, KvplanError

# kvplan parameter groups a checkpoint can store quantised, and the projections vLLM names in each
_PROJECTIONS = {
    "attention": ("self_attn", ("q_proj", "k_proj", "v_proj", "o_proj")),
    "mla": ("self_attn", ("q_a_proj", "q_b_proj", "kv_a_proj_with_mqa", "kv_b_proj", "o_proj")),
    "dense": ("mlp", ("gate_proj", "up_proj", "down_proj")),
    "shared_experts": ("mlp.shared_experts", ("gate_proj", "up_proj", "down_proj")),
    "shared_expert": ("mlp.shared_expert", ("gate_proj", "up_proj", "down_proj")),
    "experts": ("mlp.experts", ("0.gate_proj", "0.up_proj", "0.down_proj")),
    "linear": ("linear_attn", ("in_proj", "out_proj")),
    "mixer": ("mixer", ("in_proj", "out_proj")),
}
MODELOPT_ALGOS = ("FP8", "FP8_PER_CHANNEL_PER_TOKEN", "FP8_PB_WO", "NVFP4", "W4A16_NVFP4")
CT_FORMATS = ("float-quantized", "int-quantized", "naive-quantized", "pack-quantized", "nvfp4-pack-quantized")
NVFP4_GROUP = 16


class Scheme(NamedTuple):
    """How one layer's weight matrices are stored."""
    stored: str  # the format's name: fp8-w8a8, fp8-w8a16, int8-w8a8, int4-w4a16, nvfp4, nvfp4-w4a16
    bits: int
    scales: str  # tensor | channel | group | block | nvfp4
    group: int = 0  # inputs per scale (group); block rows (block)
    block_cols: int = 0
    zero_points: bool = False  # asymmetric packed weights
    input_scales: int = 0  # float32 input scales per matrix (static activations, NVFP4 W4A4)
    packed: bool = False  # int4 / int8 values in int32 words (pack-quantized WNA16)


def _refused(field: str, problem: str) -> KvplanError:
    """A config field kvplan cannot price, named as the config spells it."""
    return KvplanError(f"config field '{field}' {problem}")


def scheme_bytes(scheme: Scheme, rows: int, cols: int, model_bytes: int) -> float:
    """Bytes one rows x cols weight matrix holds in `scheme` (see the module docstring)."""
    if scheme.scales == "nvfp4":
        return rows * cols / 2 + rows * math.ceil(cols / NVFP4_GROUP) + 4 * (1 + scheme.input_scales)
    if scheme.packed:
        groups = 1 if scheme.scales == "channel" else math.ceil(cols / scheme.group)
        packed = rows * math.ceil(cols * scheme.bits / 32) * 4
        zeros = math.ceil(rows * scheme.bits / 32) * groups * 4 if scheme.zero_points else 0
        return packed + rows * groups * model_bytes + zeros
    scales = {"tensor": 1, "channel": rows}.get(scheme.scales) or (
        math.ceil(rows / scheme.group) * math.ceil(cols / scheme.block_cols))
    return rows * cols + 4 * (scales + scheme.input_scales)


def _ct_scheme(group: dict, top_format: str, name: str, key: str) -> Optional[Scheme]:
    """The Scheme vLLM's CompressedTensorsConfig._get_scheme_from_parts picks for one config group (of the settings
    under config.json's `key`)."""
    weights, inputs = group.get("weights"), group.get("input_activations")
    fmt = group.get("format") or top_format
    where = f"{key}.config_groups.{name}"
    if not isinstance(weights, dict):
        return None
    kind, bits = str(weights.get("type", "int")).lower(), weights.get("num_bits")
    strategy = str(weights.get("strategy") or "tensor").lower()
    group_size = weights.get("group_size")
    if weights.get("actorder") in ("group", "dynamic"):
        raise _refused(f"{where}.weights.actorder", f"{json_value(weights.get('actorder'))} is refused by vLLM 0.32 "
                                                      f"(group/dynamic activation ordering); use static or none.")
    if kind == "float" and bits == 4 and strategy in ("tensor_group", "group") and group_size == NVFP4_GROUP:
        return Scheme("nvfp4" if inputs else "nvfp4-w4a16", 4, "nvfp4", input_scales=1 if inputs else 0)
    if fmt == "pack-quantized" and kind == "int" and bits in (4, 8) and strategy in ("group", "channel") \
            and not inputs:
        size = group_size if strategy == "group" else 0
        if strategy == "group" and not (isinstance(size, int) and size > 0):
            raise _refused(f"{where}.weights.group_size", f"{json_value(size)} is not a group size; give a positive "
                                                            f"integer for the group strategy.")
        return Scheme(f"int{bits}-w{bits}a16", bits, strategy, size or 0,
                      zero_points=weights.get("symmetric") is False, packed=True)
    if bits == 8 and kind in ("float", "int") and fmt in CT_FORMATS[:3] and strategy in ("tensor", "channel", "block"):
        static = 1 if isinstance(inputs, dict) and inputs.get("dynamic") is False else 0
        act = "8" if inputs else "16"
        if kind == "int" and (not inputs or strategy == "block"):
            raise _refused(f"{where}.weights", "is int8 without activation quantization or in blocks, which "
                                                 "vLLM 0.32 has no compressed-tensors scheme for.")
        block = weights.get("block_structure") or [0, 0]
        if strategy == "block" and not (isinstance(block, list) and len(block) == 2
                                        and all(isinstance(b, int) and b > 0 for b in block)):
            raise _refused(f"{where}.weights.block_structure", f"{json_value(block)} is not two positive block sizes.")
        stored = f"{'fp8' if kind == 'float' else 'int8'}-w8a{act}"
        return Scheme(stored, 8, strategy, block[0], block[1], input_scales=static)
    raise _refused(where, f"(weights {kind} {bits}-bit {strategy}, format {json_value(fmt)}) is a compressed-tensors "
                            f"scheme kvplan does not price; it prices fp8/int8 W8A8 and fp8 W8A16 (tensor, channel, "
                            f"block), pack-quantized int4/int8 W4A16/W8A16 (group, channel) and NVFP4 (group 16).")


def _modelopt_scheme(algo: str, group_size, key: str) -> Scheme:
    if algo == "FP8":
        return Scheme("fp8-w8a8", 8, "tensor", input_scales=1)
    if algo == "FP8_PER_CHANNEL_PER_TOKEN":
        return Scheme("fp8-w8a8", 8, "channel")
    if algo == "FP8_PB_WO":
        return Scheme("fp8-w8a8", 8, "block", 128, 128)
    if group_size not in (None, NVFP4_GROUP):
        raise _refused(f"{key}.group_size", f"{json_value(group_size)} is not NVFP4's group size; ModelOpt NVFP4 "
                                            f"checkpoints use {NVFP4_GROUP}.")
    return Scheme("nvfp4" if algo == "NVFP4" else "nvfp4-w4a16", 4, "nvfp4", input_scales=1 if algo == "NVFP4" else 0)


def _checked_pattern(entry, field: str) -> str:
    """A target / ignore entry as text, whose "re:" pattern compiles: vLLM matches it with re.match as it builds each
    layer (config_utils.py is_equal_or_regex_match), so a pattern that does not compile stops start-up. Every ignore
    entry is tried on every layer (find_matching_patterns); targets until the first match (utils.py 0.34.0:127-130),
    so a broken target behind one that names every layer by itself would never be compiled: no real config has one,
    and kvplan refuses it all the same."""
    pattern = str(entry)
    if pattern.startswith("re:"):
        try:
            re.compile(pattern[3:])
        except re.error as exc:
            raise _refused(field, f"holds {json_value(pattern)}, not a regular expression ({exc}): vLLM stops "
                                  f"matching layers against it.") from None
    return pattern


def _regex_or_name(pattern: str, name: str) -> bool:
    """compressed-tensors' match of a target / ignore entry (config_utils.py is_equal_or_regex_match)."""
    return bool(re.match(pattern[3:], name)) if pattern.startswith("re:") else pattern == name


class CheckpointFormat:
    """The quantised format of each of a checkpoint's layers: `scheme(group, index)` answers for one kvplan
    parameter group in decoder layer `index` (None for the LM head). `key`: the config.json key the settings came
    from (quantization_config, or compression_config), which errors name."""

    def __init__(self, qcfg: dict, key: str = "quantization_config"):
        self.key = key
        self.method = str(qcfg.get("quant_method", "")).lower()
        if self.method == "compressed-tensors":
            self._init_compressed_tensors(qcfg)
        else:
            self._init_modelopt(qcfg)

    def _init_compressed_tensors(self, qcfg: dict) -> None:
        groups = qcfg.get("config_groups")
        if not isinstance(groups, dict) or not groups:
            raise _refused(f"{self.key}.config_groups", "is missing; a compressed-tensors checkpoint names its "
                                                        "quantised layers in config groups.")
        self.targets = []  # (target, scheme), in vLLM's order
        for name, group in groups.items():
            targets = group.get("targets") if isinstance(group, dict) else None
            if not isinstance(targets, list):
                raise _refused(f"{self.key}.config_groups.{name}.targets", "is missing; give a list of layer "
                                                                             "names or classes.")
            if len(targets) == 1 and str(targets[0]).endswith("Attention"):
                continue  # vLLM drops attention-only groups (from_config): KV-cache scales, not weights
            scheme = _ct_scheme(group, str(qcfg.get("format") or ""), name, self.key)
            field = f"{self.key}.config_groups.{name}.targets"
            self.targets += [(_checked_pattern(t, field), scheme) for t in targets]
        ignore = qcfg.get("ignore", [])
        if not isinstance(ignore, (list, str, dict)):  # vLLM iterates it (should_ignore_layer): null, a number stop it
            raise _refused(f"{self.key}.ignore", f"must be a list of layer names or re: patterns (vLLM iterates it "
                                                 f"and stops at anything else), got {json_value(ignore)}.")
        # a string is iterated as vLLM iterates it, letter by letter (compressed_tensors.py 0.32.0:254 casts, never
        # checks), which names no layer
        self.ignore = [_checked_pattern(p, f"{self.key}.ignore") for p in ignore]

    def _init_modelopt(self, qcfg: dict) -> None:
        inner = qcfg.get("quantization") if isinstance(qcfg.get("quantization"), dict) else qcfg
        algo = str(inner.get("quant_algo") or "").upper()
        if algo not in MODELOPT_ALGOS:
            raise _refused(f"{self.key}.quant_algo", f"{json_value(inner.get('quant_algo'))} is not a ModelOpt "
                                                     f"algorithm kvplan prices; use one of "
                                                     f"{', '.join(MODELOPT_ALGOS)}.")
        self.scheme_all = _modelopt_scheme(algo, inner.get("group_size"), self.key)
        key = "exclude_modules" if "exclude_modules" in inner else "ignore"
        excluded = inner.get(key) or []
        if not isinstance(excluded, list):  # modelopt.py from_config: "exclude_modules must be a list"
            where = self.key + (".quantization" if inner is not qcfg else "")
            raise _refused(f"{where}.{key}", f"must be a list of module names or wildcards (vLLM refuses "
                                             f"anything else), got {json_value(excluded)}.")
        self.ignore = [str(p) for p in excluded]

    def _ct_match(self, name: str, linear: bool) -> Optional[Scheme]:
        if any(_regex_or_name(p, name) for p in self.ignore):
            return None
        # find_matched_target: a target naming the layer (name or re:) wins over a class-name one whatever the
        # groups' order; then the class: every linear layer's (QKVParallelLinear, RowParallelLinear...) and the
        # routed experts (mapped to Linear's scheme) answer to "Linear"
        named = next((scheme for target, scheme in self.targets if _regex_or_name(target, name)), None)
        if named is not None or not linear:
            return named
        return next((scheme for target, scheme in self.targets if target.lower() == "linear"), None)

    def _modelopt_excluded(self, name: str) -> bool:
        return any(p == name or p in name or fnmatch(name, p) for p in self.ignore)

    def scheme(self, group: str, index: Optional[int], style: str = "") -> Optional[Scheme]:
        """The Scheme of kvplan group `group` (attention, linear, dense, shared_experts, experts, lm_head) in layer
        `index`; `style` picks the projection names (mla, shared_expert, mixer) where they differ; None: model dtype."""
        if group == "lm_head":
            names, linear = ["lm_head"], False
        else:
            prefix, leaves = _PROJECTIONS[style or group]
            base = f"model.layers.{index}.{prefix}"
            names, linear = ([base] if group == "experts" and self.method != "compressed-tensors"
                             else [f"{base}.{leaf}" for leaf in leaves]), True
        if self.method == "compressed-tensors":
            found = {self._ct_match(n, linear) for n in names}
        else:
            found = {None if self._modelopt_excluded(n) else self.scheme_all for n in names}
        if len(found) > 1:
            raise _refused(f"{self.key}.ignore", f"leaves some of layer {index}'s {group} projections "
                                                 f"unquantised and quantises others; kvplan prices a layer's "
                                                 f"{group} in one format.")
        return found.pop()
