"""--enable-prefix-caching / --no-enable-prefix-caching and --mamba-block-size, as vLLM reads them by release.

The flag: `--enable-prefix-caching` with argparse's BooleanOptionalAction, so `--no-enable-prefix-caching` too, in
every release kvplan has the source of (CacheConfig.enable_prefix_caching Optional[bool] -> get_kwargs' bool branch:
engine/arg_utils.py 0.11.0:206-208, :773-774; 0.12.0:887-893 and 0.34.0:1420-1426 default None, so "not given" is
told apart from off). Not given, the model's default (vllm_settings.with_model_defaults); given, vLLM's arg_utils
keeps it (0.12.0:1927-1946, 0.34.0:3112-3128: a pooling runner's on where the default is off is only warned about),
and then the model's config hook may turn it off again (asked_prefix_caching):
- a model with Mamba layers (hybrid or attention-free) up to 0.11.0: MambaModelConfig turns it off whatever the flag
  (model_executor/models/config.py 0.11.0:296-298, "Hybrid or mamba-based model detected: disabling prefix caching
  since it is not yet supported."); releases before 0.11.0 are taken as 0.11.0.
- 0.11.1-0.14.x: kept for a class that implements SupportsMambaPrefixCaching (vllm_mamba_mode.MAMBA_PREFIX_CLASSES,
  and the attention-free Mamba classes), else off ("Hybrid or mamba-based model detected without support for prefix
  caching: disabling.", models/config.py 0.11.1:293-305, 0.12.0:292-309, 0.14.1:332-349).
- from 0.15.0: kept; Mamba states in "all" mode (MAMBA_PREFIX_CLASSES up to 0.27.x: vllm_mamba_mode.mamba_all_mode)
  or "align" (models/config.py 0.15.0:332-351, 0.28.0:602-609, 0.34.0:1094-1110). "align" refuses a speculative
  config in 0.15.0-0.16.x (AssertionError, models/config.py 0.15.0:357-359, 0.16.0:357-359; gone in 0.17.0).
An attention-free model in "all" mode (0.11.1-0.27.x: a state every attention-sized block) is not modelled: refused.

--mamba-block-size (first in 0.11.1: arg_utils.py 0.11.1:933; absent from 0.11.0; CacheConfig.mamba_block_size
Field(gt=0), config/cache.py 0.12.0:101, 0.34.0:303). With prefix caching off vLLM refuses it unless it equals
max_model_len (VllmConfig.validate_mamba_block_size, config/vllm.py 0.11.1:1065, 0.12.0:1242-1254, 0.25.1:2223,
0.32.0:3314, 0.34.0:3583-3593). With prefix caching on:
- "all" mode: it replaces the model's Mamba chunk as the base of the Mamba block (`base_chunk_size = mamba_block_size
  or model_config.get_mamba_chunk_size()`, models/config.py 0.12.0:418, 0.15.0:483; platforms/interface.py
  0.20.0:568-595, the user's value only), so the Mamba and attention blocks are the lowest multiple of lcm(it, the
  kernel alignment) that holds one state (vllm_specs.mamba_all_blocks).
- "align" mode: the hybrid hook sets mamba_block_size to the attention block afterwards (models/config.py
  0.15.0:514-515, platforms/interface.py 0.34.0:1126-1127): it changes nothing. On an attention-free model vLLM
  0.34.0 starts with the same figures with and without it (tests/data/vllm_prefix_flag.json).
- a model with no Mamba layer reads it nowhere."""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

from ..errors import FieldError, quote
from .vllm_mamba_mode import MAMBA_PREFIX_CLASSES, mamba_all_mode
from .vllm_registry import served_architecture
from .vllm_versions import in_span, parse_version

MAMBA_PREFIX_OFF_BEFORE = (0, 11, 1)  # MambaModelConfig turns it off whatever the flag (0.11.0:296-298)
UNSUPPORTED_CLASS_OFF_BEFORE = (0, 15)  # a class without SupportsMambaPrefixCaching has it off (0.14.1:333-348)
ALL_MODE_BEFORE = (0, 28)  # attention-free "all" mode, 0.11.1-0.27.x: not modelled
ALIGN_REFUSES_DRAFTS = ((0, 15), (0, 17))  # [from, before): "align" asserts no speculative config
MAMBA_BLOCK_SIZE_SINCE = (0, 11, 1)
MAMBA_BLOCK_LIMIT = 10 ** 18  # 18 digits at most: past that no token count (mamba_block_size)
# attention-free classes that implement SupportsMambaPrefixCaching (model_executor/models/mamba.py, mamba2.py
# 0.12.0 and 0.25.1; FalconMamba is served by mamba.py's class)
ATTENTION_FREE_PREFIX_CLASSES = frozenset({"MambaForCausalLM", "Mamba2ForCausalLM", "FalconMambaForCausalLM"})
_CONFIG = "model_executor/models/config.py MambaModelConfig"


def mamba_block_size(value) -> Optional[int]:
    """--mamba-block-size as vLLM's CacheConfig takes it: a whole number of tokens above 0 (Field(gt=0)); None
    when not given."""
    if value is None:
        return None
    number = value if isinstance(value, int) and not isinstance(value, bool) else None
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit() and len(value.strip()) <= 18:
        number = int(value.strip())  # no longer: not a token count, and int() refuses past 4,300 digits
    if number is None or not 0 < number < MAMBA_BLOCK_LIMIT:  # the API's int under the CLI's 18-digit bound
        raise FieldError("mamba_block_size", f"must be a whole number of tokens above 0 (vLLM's CacheConfig: "
                                             f"gt=0) of at most 18 digits, got {quote(value)}.")
    return number


def prefix_caching_choice(value) -> Optional[bool]:
    """The Python API's / deployments file's enable_prefix_caching: True, False or None (vLLM's default)."""
    if value is None or isinstance(value, bool):
        return value
    raise FieldError("enable_prefix_caching", f"must be true or false (or left out for vLLM's default), got "
                                              f"{quote(value)}.")


def _states(spec) -> list:
    return list(spec.linear_layers)


def _attention_free(spec) -> bool:
    return bool(spec.layers) and len(_states(spec)) == len(spec.layers)


def _supports_mamba_prefix(served: str) -> bool:
    """Whether the class vLLM serves (vllm_registry.served_architecture: the top-level config's, the name it resolved)
    implements SupportsMambaPrefixCaching."""
    return served in MAMBA_PREFIX_CLASSES or served in ATTENTION_FREE_PREFIX_CLASSES


def asked_prefix_caching(spec, version: str, asked: bool, spell=None) -> tuple:
    """(prefix caching as vLLM `version` runs it, the note saying why where that is not `asked`): the flag kept, but
    turned off again for a model with Mamba layers as the module docstring says. `spell`: the caller's name for the
    field (None: vLLM's flag)."""
    if asked and _mla_off_late(spec, version):
        return False, (f"vLLM {version} turns prefix caching off for MLA whatever "
                       f"{spell('enable_prefix_caching') if spell else '--enable-prefix-caching'} says (\"MLA is "
                       f"enabled; forcing chunked prefill and prefix caching to be disabled.\", config.py "
                       f"VllmConfig.__post_init__, 0.7.1:3255-3263 to 0.7.3:3327-3335)")
    if not asked or not _states(spec):
        return asked, ""
    release = parse_version(version)
    if release < MAMBA_PREFIX_OFF_BEFORE:
        flag = spell("enable_prefix_caching") if spell else "--enable-prefix-caching"
        return False, (f"vLLM {version} turns prefix caching off for a model with Mamba layers whatever "
                       f"{flag} says (\"Hybrid or mamba-based model detected: disabling prefix "
                       f"caching since it is not yet supported.\", {_CONFIG}, 0.11.0:296-298)")
    served = served_architecture(spec, version)  # the note names the class the check reads, not a nested config's
    if release < UNSUPPORTED_CLASS_OFF_BEFORE and not _supports_mamba_prefix(served):
        return False, (f"vLLM {version} turns prefix caching off again for {served}, a class without Mamba prefix "
                       f"caching (\"Hybrid or mamba-based model detected without support for prefix caching: "
                       f"disabling.\", {_CONFIG}, 0.12.0:304-309); 0.15 and later keep it")
    return True, ""


def as_asked(spec, settings, version: str):
    """`settings` (vLLM's defaults for `spec`: vllm_settings.with_model_defaults) with --enable-prefix-caching /
    --no-enable-prefix-caching and --mamba-block-size applied as vLLM `version` applies them; FieldError where vLLM
    refuses the pair, or kvplan does not model what vLLM would run."""
    asked = settings.prefix_caching_asked
    on = settings.prefix_caching if asked is None else asked_prefix_caching(spec, version, asked)[0]
    release = parse_version(version)
    if on and _attention_free(spec) and MAMBA_PREFIX_OFF_BEFORE <= release < ALL_MODE_BEFORE:
        raise FieldError("enable_prefix_caching", f"on an attention-free model is modelled from vLLM 0.28 on: "
                                                  f"vllm=={version} keeps its Mamba states in \"all\" mode, a state "
                                                  f"every block, which kvplan does not price; leave it off or pick "
                                                  f"0.28 or later.")
    if on and settings.speculative and _aligns(spec, version):
        raise FieldError("enable_prefix_caching", f"with speculative_config is refused by vLLM {version} for this "
                                                  f"model: its Mamba states run \"align\" mode with prefix caching, "
                                                  f"and {_CONFIG} asserts \"Mamba cache mode 'align' is currently "
                                                  f"not compatible with speculative decoding.\" (0.15.0:357-359); "
                                                  f"leave one off or pick 0.17 or later.",
                         names=("speculative_config",))
    block = settings.mamba_block_size
    if block is not None and not on and block != settings.max_model_len:
        raise FieldError("mamba_block_size", f"is refused by vLLM {version} with prefix caching off "
                                             f"(\"--mamba-block-size can only be set with --enable-prefix-caching\", "
                                             f"config/vllm.py VllmConfig.validate_mamba_block_size, 0.11.1:1065 to "
                                             f"0.34.0:3592); {_off_because(spec, version, asked)}.",
                         names=("enable_prefix_caching",))
    return replace(settings, prefix_caching=on)


def _aligns(spec, version: str) -> bool:
    """Whether vLLM `version` keeps `spec`'s Mamba states in "align" mode with prefix caching on, in a release whose
    "align" refuses a speculative config (ALIGN_REFUSES_DRAFTS)."""
    return bool(_states(spec)) and in_span(version, ALIGN_REFUSES_DRAFTS) and not mamba_all_mode(spec, version, True)


def _off_because(spec, version: str, asked: Optional[bool]) -> str:
    if asked is False:
        return "leave it out, or turn prefix caching on"
    said = asked_prefix_caching(spec, version, True)[1] if asked else ""
    if said:
        return said
    return f"vLLM {version} starts this model with prefix caching off: add --enable-prefix-caching, or leave it out"


def prefix_notes(spec, flags, version: str, spell=str) -> tuple:
    """What --enable-prefix-caching / --no-enable-prefix-caching and --mamba-block-size did for `spec` under vLLM
    `version`, as notes (no full stop), `spell` naming the fields: () when neither is given."""
    asked, block = getattr(flags, "enable_prefix_caching", None), getattr(flags, "mamba_block_size", None)
    notes = []
    if asked is not None:
        on, said = asked_prefix_caching(spec, version, asked, spell)
        notes.append(said or _what_it_did(spec, version, on))
    if block is not None:
        on = asked_prefix_caching(spec, version, asked)[0] if asked is not None else None
        if not _states(spec):
            notes.append(f"{spell('mamba_block_size')} changes nothing here: {spec.name} has no Mamba layer")
        elif on is False:  # no cache mode: one state block of max_model_len, the only value vLLM takes then
            notes.append(f"{spell('mamba_block_size')} changes nothing here: with prefix caching off vLLM keeps one "
                         f"Mamba block of max_model_len tokens a request ({_CONFIG.split()[0]} 0.34.0:1117-1118), "
                         f"the only value it takes then (config/vllm.py 0.34.0:3583-3593)")
        elif mamba_all_mode(spec, version, True):
            notes.append(f"{spell('mamba_block_size')} {block} is the base of the Mamba block in place of the "
                         f"model's chunk (\"all\" mode, {_CONFIG.split()[0]} 0.15.0:483)")
        else:
            notes.append(f"{spell('mamba_block_size')} changes nothing here: in \"align\" mode vLLM sets the Mamba "
                         f"block to the attention block (platforms/interface.py 0.34.0:1126-1127)")
    return tuple(notes)


def only_confirms(spec, version: str, asked: bool) -> bool:
    """Whether prefix_notes' note on the prefix-caching flag only confirms what was `asked`: a model without Mamba
    states keeps one KV page a block whatever the flag, where vLLM `version` does not override it (asked_prefix_caching:
    0.7.1-0.7.3's MLA)."""
    return not _states(spec) and not asked_prefix_caching(spec, version, asked)[1]


def _mla_off_late(spec, version: str) -> bool:
    """Whether vLLM `version` turns prefix caching off for `spec`'s MLA (vllm_v0_chunked.MLA_OFF_LATE: VllmConfig's
    __post_init__ of 0.7.1-0.7.3 sets CacheConfig.enable_prefix_caching False for ModelConfig.use_mla)."""
    from .vllm_v0_chunked import MLA_OFF_LATE, _has_mla

    return bool(version) and in_span(version, MLA_OFF_LATE) and _has_mla(spec)


def _what_it_did(spec, version: str, on: bool) -> str:
    if not _states(spec):
        return f"prefix caching {'on' if on else 'off'} as asked"
    if not on:
        return "prefix caching off as asked: one Mamba state block of max_model_len tokens a request"
    mode = "\"all\" mode, a state every block" if mamba_all_mode(spec, version, True) else \
        "\"align\" mode, Mamba blocks of the attention block's tokens"
    return f"prefix caching on as asked: Mamba states in {mode}"
