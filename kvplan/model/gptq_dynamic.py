"""GPTQModel's per-module overrides in a GPTQ quantization_config, `dynamic` ({regex: {bits, group_size, ...}}), as
vLLM applies them to each linear layer and fused-MoE block it builds (model_executor/layers/quantization/utils/
gptq_utils.py get_dynamic_override, 0.11.0:54-72, 0.32.0:85-103, 0.34.0:85-103). The rules are tried in the
file's order against the module's full name as vLLM names it (fused: model.layers.3.self_attn.qkv_proj,
model.layers.3.mlp.gate_up_proj, model.layers.3.mlp.experts) with re.match, anchored at the start; the first that
matches decides:
- "-:pattern": the module is not quantised (get_linear_quant_method -> UnquantizedLinearMethod, gptq_utils.py
  0.11.0:133-139, 0.32.0:189-195; get_moe_quant_method -> UnquantizedFusedMoEMethod, gptq_marlin.py 0.11.0:53-58,
  auto_gptq.py 0.32.0:69-86): stored in the model dtype;
- any other ("+:pattern" or a bare one): its bits and group_size, where it sets them to an integer, replace the
  config's for that module (override_config, 0.11.0:21-29, 0.32.0:55-61); keys it lacks keep the config's. vLLM
  then refuses bits other than 2, 3, 4 or 8 (GPTQConfig: 0.11.0:48; GPTQ Marlin's and, from 0.22, AutoGPTQConfig's
  TYPE_MAP take 4 or 8: 0.32.0:76-80), and so does kvplan, whatever the release (VLLM_GPTQ_BITS; 2 and 3 are not
  refused where the release's class takes only 4 or 8).
Bytes follow (params.quantized_bytes). desc_act and sym change no byte; whether Marlin takes an overridden module's
bits and group size is not checked (engines/vllm_wna16.py reads the config's own).

Names: tensors.VllmNames, per family (0.32.0's model files): the layers' prefix (model.layers; Falcon's and GPT-2's
transformer.h), each block (self_attn, mlp; Jamba's and LFM2's feed_forward, Nemotron-H's mixer, ...) and the
projections kvplan names (qkv_proj, o_proj, gate_up_proj, down_proj; LFM2's out_proj, w13, w2; ...). A tensor kvplan
does not name (MLA's and the Mamba / DeltaNet / short-convolution mixers' projections, the families served by vLLM's
Transformers backend) is matched by its block (tensors.vllm_blocks), which a rule on the layer index matches and one
on a projection's name does not; a multimodal wrapper's prefix (language_model.model.layers...) is taken as the
text model's."""

from __future__ import annotations

import json
import re
from typing import NamedTuple, Optional, Union

from ..errors import KvplanError, json_kind, quote

SKIP = "-:"
KEEP = "+:"
VLLM_GPTQ_BITS = (2, 3, 4, 8)  # the widths some release's GPTQ class takes (module docstring)


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
        raise _refused(f"has a key that is not a pattern: {quote(key)}.")
    skips = key.startswith(SKIP)
    pattern = _compiled(key, key[len(SKIP):] if skips else key.removeprefix(KEEP))
    if not skips and not isinstance(overrides, dict):  # vLLM calls .get on it (gptq_utils.py 0.32.0:102)
        raise _refused(f"maps {quote(key)} to {json_kind(overrides)}, not an object of overrides.")
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
            raise _refused(f"holds {quote(key)}, which Python's re refuses ({exc}): vLLM reads these patterns with the "
                           "regex package, which kvplan uses only where it is installed, and it is not here.") from None
        raise _refused(f"holds {quote(key)}, not a regular expression ({exc}).") from None


def _check_bits(key: str, bits) -> None:
    """vLLM's override_config takes any integer (true and false too: Python's bool is one) and its GPTQ class then
    refuses a width outside VLLM_GPTQ_BITS (module docstring); any other value leaves the config's bits."""
    if isinstance(bits, int) and bits not in VLLM_GPTQ_BITS:
        raise _refused(f"gives {quote(key)} bits {json.dumps(bits)}, which vLLM's GPTQ takes for that module and then "
                       f"refuses: it quantises to 2, 3, 4 or 8 bits (4 or 8 with Marlin, and from vLLM 0.22).")


def rule_for(rules: tuple, name: str) -> Optional[Rule]:
    """The first Rule whose pattern matches the start of module `name`, or None."""
    return next((rule for rule in rules if rule.pattern.match(name)), None)


def module_name(tensor, index: int, blocks: dict) -> str:
    """vLLM's full name of the module holding `tensor` in decoder layer `index`: its own where kvplan names it
    (Tensor.vllm_module), else its group's block (`blocks`: tensors.vllm_blocks of the config)."""
    inner = tensor.vllm_module or blocks.get(tensor.group, tensor.group)
    return ".".join(part for part in (blocks["layers"], str(index), inner) if part)


def priced_bits(value, default: int) -> int:
    """A bits field as kvplan prices it (a config's, or a rule's over it): an integer of 1 to 16, else `default`."""
    ok = isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 16
    return value if ok else default


def priced_group(value, default: int) -> int:
    """A group_size field as kvplan prices it: a group of 1 or more inputs, or -1 (one a row), else `default`."""
    ok = isinstance(value, int) and not isinstance(value, bool) and (value >= 1 or value == -1)
    return value if ok else default


def overridden(rule: Optional[Rule], bits: int, group: int) -> Union[bool, tuple]:
    """False where `rule` (the one vLLM applies to a module: rule_for) leaves the module unquantised, else its
    (bits, group_size): the rule's over the config's `bits` / `group` (an integer the pricing takes: bits 1-16, a group
    size of 1 or more, or -1). A rule shadowed by an earlier one, or matching no module, is never read, as in vLLM
    (get_dynamic_override returns at the first match: gptq_utils.py 0.32.0:91-103)."""
    if rule is None:
        return bits, group
    if rule.skips:
        return False
    _check_bits(rule.key, rule.overrides.get("bits"))  # vLLM applies the first rule matching a module, that one only
    return priced_bits(rule.overrides.get("bits"), bits), priced_group(rule.overrides.get("group_size"), group)


def decided(tensor, index: int, rules: tuple, blocks: dict, bits: int, group: int) -> Union[bool, tuple]:
    """overridden() for the module holding `tensor` in decoder layer `index`."""
    return overridden(rule_for(rules, module_name(tensor, index, blocks)), bits, group)


def layer_decisions(tensors: list, index: int, rules: tuple, blocks: dict, bits: int, group: int) -> tuple:
    """What the rules decide for each of a layer's linear modules, by the module's name inside the layer: layers alike
    in it are priced alike (params.parameter_groups)."""
    prefix = f"{blocks['layers']}.{index}"
    names = {module_name(t, index, blocks).removeprefix(prefix): decided(t, index, rules, blocks, bits, group)
             for t in tensors if t.linear}
    return tuple(sorted(names.items(), key=lambda item: item[0]))
