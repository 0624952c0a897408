"""GPTQModel's per-module overrides in a GPTQ quantization_config, `dynamic` ({regex: {bits, group_size, ...}}), as
vLLM applies them to each linear layer and fused-MoE block it builds (model_executor/layers/quantization/utils/
gptq_utils.py get_dynamic_override, 0.11.0:54-72, 0.32.0:85-103, 0.34.0:85-103). The rules are tried in the
file's order against the module's full name as vLLM names it (fused: model.layers.3.self_attn.qkv_proj,
model.layers.3.mlp.gate_up_proj, model.layers.3.mlp.experts) with re.match, anchored at the start; the first that
matches decides:
- "-:pattern": the module is not quantised (get_linear_quant_method -> UnquantizedLinearMethod, gptq_utils.py
  0.11.0:133-139, 0.32.0:189-195; get_moe_quant_method -> UnquantizedFusedMoEMethod, gptq_marlin.py 0.11.0:53-58,
  auto_gptq.py 0.32.0:69-86): stored in the model dtype;
- any other ("+:pattern" or a bare one): its bits and group_size, where it sets them to an integer (a boolean is one
  to Python), and its sym, where a boolean, replace the config's for that module (override_config, 0.11.0:21-46,
  0.32.0:55-82); keys it lacks keep the config's. kvplan reads an applied rule's bits and group_size with the
  config's own validators (BITS, GROUP: params._int_setting), so a value no class takes is refused alike at both
  levels; the widths and group sizes a release's class refuses (override_config's TYPE_MAP / GPTQ check, Marlin's
  group sizes) are the engine's refusal, in vLLM's words, from the settings each module gets (settings;
  engines/vllm_wna16.py layer_refusal). A rule vLLM never applies (shadowed by an earlier match, or matching no
  module) prices nothing, but from 0.30 AutoGPTQConfig's constructor still refuses its activation ordering (desc_act
  true with a group other than -1, its own or the config's: gptq_utils.py 0.30.0:39-48; params.dynamic_overrides,
  engines/vllm_wna16.py desc_act_refusal).
Bytes follow (params.quantized_bytes); desc_act and sym change no byte.

Names: tensors.VllmNames, per family (0.32.0's model files): the layers' prefix (model.layers; Falcon's and GPT-2's
transformer.h), each block (self_attn, mlp; Jamba's and LFM2's feed_forward, Nemotron-H's mixer, ...) and the
projections kvplan names (qkv_proj, o_proj, gate_up_proj, down_proj; LFM2's out_proj, w13, w2; ...). A tensor kvplan
does not name (MLA's and the Mamba / DeltaNet / short-convolution mixers' projections, the families served by vLLM's
Transformers backend) is matched by its block (tensors.vllm_blocks), which a rule on the layer index matches and one
on a projection's name does not; a multimodal wrapper's prefix (language_model.model.layers...) is taken as the
text model's."""

from __future__ import annotations

import re
from typing import NamedTuple, Optional, Union

from ..errors import json_kind, json_value, KvplanError

SKIP = "-:"
KEEP = "+:"


class Setting(NamedTuple):
    """What an AWQ / GPTQ bits or group_size may be, for the config's own and a `dynamic` rule's alike."""
    valid: object  # int -> bool
    words: str


# 1 to 8: the weight widths some vLLM class for the int methods takes (awq.py 0.11.0:41-44, awq_marlin.py 0.11.0:46-49,
# gptq.py 0.11.0:77-80, gptq_marlin.py 0.11.0:72-75, inc/inc.py 0.34.0:37, utils/bitblas_utils.py 0.11.0:25); which a
# release's class takes is the engine's refusal, in vLLM's words (engines/vllm_wna16.py)
BITS = Setting(lambda bits: 1 <= bits <= 8,
               "an integer from 1 to 8, the widths some vLLM class takes: AWQ 4, or 8 with Marlin; GPTQ 2, 3, 4 "
               "or 8, with Marlin 4 or 8; INC 2 to 8; BitBLAS 1, 2, 4 or 8")
GROUP = Setting(lambda group: group > 0 or group == -1, "a positive integer, or -1 for one group a row")


class Rule(NamedTuple):
    """One `dynamic` entry."""
    key: str  # as the config writes it, "+:" or "-:" and all
    skips: bool  # "-:": the module stays unquantised
    pattern: object  # compiled by the regex package, else by re (_compiled)
    overrides: dict


def _refused(problem: str) -> KvplanError:
    return KvplanError(f"config field 'quantization_config.dynamic' {problem}")


def dynamic_rules(qcfg: dict) -> tuple:
    """The Rules of a GPTQ quantization_config's `dynamic` (none: ()). vLLM reads it with get_from_keys_or(...,
    default={}) and a null as {} (gptq.py 0.11.0:116-117, auto_gptq.py 0.32.0:191-192, 0.34.0:199-200)."""
    dynamic = qcfg.get("dynamic")
    if dynamic is None:
        return ()
    if not isinstance(dynamic, dict):
        raise _refused(f"must map module-name patterns to overrides, got {json_kind(dynamic)}.")
    return tuple(_rule(key, value) for key, value in dynamic.items())


def _rule(key, overrides) -> Rule:
    if not isinstance(key, str):
        raise _refused(f"has a key that is not a pattern: {json_value(key)}.")
    skips = key.startswith(SKIP)
    pattern = _compiled(key, key[len(SKIP):] if skips else key.removeprefix(KEEP))
    if not skips and not isinstance(overrides, dict):  # vLLM calls .get on it (gptq_utils.py 0.32.0:102)
        raise _refused(f"maps {json_value(key)} to {json_kind(overrides)}, not an object of overrides.")
    return Rule(key, skips, pattern, overrides if isinstance(overrides, dict) else {})


def _compiled(key: str, text: str):
    """`text` compiled as vLLM compiles it, with the regex package (gptq_utils.py 0.11.0:9, 0.34.0:8: `import regex
    as re`), which reads more than Python's re (\\p{L}, nested sets, ...); kvplan does not require regex, so where
    it is not installed Python's re is tried, and a pattern only regex reads is refused as kvplan's limit."""
    try:
        import regex as engine
    except ImportError:
        engine = None
    try:
        return (engine or re).compile(text)
    except (engine or re).error as exc:
        if engine is None:
            raise _refused(f"holds {json_value(key)}, which Python's re refuses ({exc}): vLLM reads these patterns "
                           "with the regex package, which kvplan uses only where it is installed, and it is not "
                           "here.") from None
        raise _refused(f"holds {json_value(key)}, not a regular expression ({exc}).") from None


def rule_for(rules: tuple, name: str) -> Optional[Rule]:
    """The first Rule whose pattern matches the start of module `name`, or None."""
    return next((rule for rule in rules if rule.pattern.match(name)), None)


def module_name(tensor, index: int, blocks: dict) -> str:
    """vLLM's full name of the module holding `tensor` in decoder layer `index`: its own where kvplan names it
    (Tensor.vllm_module), else its group's block (`blocks`: tensors.vllm_blocks of the config)."""
    inner = tensor.vllm_module or blocks.get(tensor.group, tensor.group)
    return ".".join(part for part in (blocks["layers"], str(index), inner) if part)


def _applied(rule: Rule, key: str, setting: Setting, default: int) -> int:
    """The rule's `key` where vLLM's override_config takes it (an integer, booleans too: gptq_utils.py 0.32.0:56-61),
    read as the config's own is (`setting`); else the config's `default`."""
    value = rule.overrides.get(key)
    if not isinstance(value, int):
        return default
    if isinstance(value, bool) or not setting.valid(value):
        raise _refused(f"gives {json_value(rule.key)} {key} {json_value(value)}, which vLLM applies to the modules "
                       f"the rule decides; a rule's {key}, as the config's, must be {setting.words}.")
    return value


def overridden(rule: Optional[Rule], base: tuple) -> Union[bool, tuple]:
    """False where `rule` (the one vLLM applies to a module: rule_for) leaves the module unquantised, else the module's
    (bits, group_size, sym): the rule's over the config's `base`. A rule shadowed by an earlier one, or matching no
    module, sets no module's settings, as in vLLM (get_dynamic_override returns at the first match: gptq_utils.py
    0.32.0:91-103); its activation ordering is still checked (engines/vllm_wna16.py desc_act_refusal)."""
    if rule is None:
        return base
    if rule.skips:
        return False
    bits, group, sym = base
    sym = rule.overrides.get("sym") if isinstance(rule.overrides.get("sym"), bool) else sym  # 0.32.0:71-73
    return _applied(rule, "bits", BITS, bits), _applied(rule, "group_size", GROUP, group), sym


def decided(tensor, index: int, rules: tuple, blocks: dict, base: tuple) -> Union[bool, tuple]:
    """overridden() for the module holding `tensor` in decoder layer `index`."""
    return overridden(rule_for(rules, module_name(tensor, index, blocks)), base)


def layer_decisions(tensors: list, index: int, rules: tuple, blocks: dict, base: tuple) -> tuple:
    """What the rules decide for each of a layer's linear modules, by the module's name inside the layer: layers alike
    in it are priced alike (params.parameter_groups)."""
    prefix = f"{blocks['layers']}.{index}"
    names = {module_name(t, index, blocks).removeprefix(prefix): decided(t, index, rules, blocks, base)
             for t in tensors if t.linear}
    return tuple(sorted(names.items(), key=lambda item: item[0]))
