"""What vLLM's --mamba-cache-dtype, --mamba-ssm-cache-dtype and --disable-sliding-window did to a model, in words
for the output (estimate's notes, check's warnings); the rules are vllm_cache_flags.py's and vllm_mamba_state.py's."""

from __future__ import annotations

from typing import Optional

from ..model.kinds import LinearState
from .vllm_mamba_state import ssm_state_dtype
from .vllm_cache_flags import (KDA_READS_SSM_FLAG, MAMBA_FIELDS, asked_ssm_dtype, config_window, conv_state_dtype,
                               has_kda, kda_refusal, plain_sliding)


def cache_flag_notes(before, spec, flags, version: str, spell=str) -> tuple:
    """Sentences (no full stop) saying what the flags asked did to the model, `before` them and `spec` after
    (with_cache_flags), in vLLM `version`: the dtype each state is kept in, a flag its layers do not read, the
    sliding layers made full and the length capped."""
    notes = []
    states = [layer for layer in spec.layers if isinstance(layer, LinearState)]
    asked = {field: getattr(flags, field, None) for field in MAMBA_FIELDS}
    if any(asked.values()):
        names = " and ".join(f"{spell(field)} {value}" for field, value in asked.items() if value)
        notes.append(_state_note(spec, states, names, version, asked["mamba_ssm_cache_dtype"], spell))
    if getattr(flags, "disable_sliding_window", False):
        notes.append(_sliding_note(before, spec, spell))
    return tuple(notes)


def _state_note(spec, states, names: str, version: str, ssm_asked: Optional[str], spell) -> str:
    if not states:
        return f"{names}: vLLM reads it for Mamba / linear-attention state layers only; {spec.name} has none, so " \
               f"nothing changes"
    conv = _torch_name(conv_state_dtype(spec))
    flavors = sorted({layer.flavor for layer in states})
    temporal = [layer for layer in states if layer.ssm_elements]
    if not temporal:
        return f"{names}: the {'/'.join(flavors)} layers' convolution state in {conv} (they keep no SSM state)"
    if kda_refusal(spec, version) is not None:
        return f"{names}: Kimi Delta Attention keeps its recurrent state in float32 or bfloat16 only, so vLLM " \
               f"{version} does not start"
    fixed = {layer.ssm_bytes for layer in temporal if layer.ssm_bytes}
    ssm = "float32" if fixed == {4} else _torch_name(ssm_state_dtype(spec, version)[0])
    said = f"{names}: the {'/'.join(flavors)} layers' convolution state in {conv}, their temporal (SSM) state in {ssm}"
    ignored = ssm_asked not in (None, "auto") and asked_ssm_dtype(spec, version) == "auto"
    if ignored:
        said += f" ({spell('mamba_ssm_cache_dtype')} is not read by these layers in vLLM {version})"
        if has_kda(spec):
            said += f"; Kimi Delta Attention reads it from vLLM {'.'.join(map(str, KDA_READS_SSM_FLAG))}"
    elif has_kda(spec) and asked_ssm_dtype(spec, version) == "auto":
        said += " (Kimi Delta Attention's 'auto' is float32)"
    return said + "; the state page, and so a hybrid's block size and capacity, follow"


def _sliding_note(before, spec, spell) -> str:
    flag = spell("disable_sliding_window")
    slid = sum(plain_sliding(layer) for layer in before.layers)
    if not slid:
        return f"{flag}: {spec.name} has no sliding-window layers, so nothing changes"
    said = f"{flag}: its {slid} sliding-window layers attend in full (vLLM clears the config's sliding_window)"
    if spec.length_key == "sliding_window":
        window, length = config_window(before), spec.max_position_embeddings
        refused = f"a longer {spell('context')} is refused"
        if length == window:
            return f"{said}, and the model's length is capped to the window, {window:,} tokens, as vLLM caps it; " \
                   f"{refused}"
        # the release's RoPE rule (vllm_rope_len.rope_view): the window x factor, or 0.12-0.29's YaRN original x factor
        return (f"{said}, and vLLM caps the model's length to the window, {window:,} tokens, then its RoPE scaling "
                f"rule sets it to {length:,} tokens; {refused}")
    return said + "; the window was not shorter than the model's length, which stands"


def _torch_name(name: str) -> str:
    return {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}.get(name, name)
