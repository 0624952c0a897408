"""The settings one vLLM start-up runs with (Settings), resolved as `vllm serve` resolves them: the batch limits and
the batches in flight (resolve_settings), and whether this model starts with prefix caching (with_model_defaults).

Rules and where vLLM 0.32.0 has them (paths under vllm/):
- batch defaults (engine/arg_utils.py EngineArgs.get_batch_defaults, `vllm serve`): >= 160 GiB GPUs 16384
  batched tokens / 1024 sequences; >= 70 GiB and not an A100: 8192 / 1024; others 2048 / 256 (older releases:
  vllm_versions.py); a multimodal prefix-LM's default raised to its largest media item (0.22+: vllm_media_floor.py);
  then max_num_batched_tokens <= max_num_seqs x max_model_len and max_num_seqs <= max_num_batched_tokens
  (_set_default_max_num_seqs_and_batched_tokens_args; the latter from 0.10.1 on V1 only: DEFAULT_SEQS_RULES); then
  SchedulerConfig's checks, refused in vLLM's words (check_batch: fewer batched tokens than max_model_len without
  chunked prefill, or than max_num_seqs); then a model's config hook may lower max_num_seqs (SEQS_HOOKS:
  DiffusionGemma's 8, from 0.24).
- batches in flight (config/vllm.py max_concurrent_batches): pp, +1 with async scheduling (on by default); the V1
  model runner (vllm_runner.py) overlaps two batches only without PP; in-flight tokens = batches x
  max_num_batched_tokens (max_in_flight_tokens). Releases before 0.26 reserved one batch (vllm_versions.py).
- prefix caching on by default: Mamba layers run in "align" mode with the attention block size
  (model_executor/models/config.py MambaModelConfig), else one state block of max_model_len tokens; off for
  attention-free models, and for hybrids before 0.28 but a pooling runner's (with_model_defaults: HYBRID_PREFIX_RULES),
  where in 0.11.1-0.27.x a class with Mamba prefix caching runs "all" mode, a state every block (mamba_all_mode).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

from ..errors import FieldError
from .vllm_mamba_mode import _is_hybrid, _mamba_prefix_class
from .vllm_media_floor import raised_note
from .vllm_prefix_flag import as_asked
from .vllm_versions import PINNED, Behaviour, behaviour, in_span, parse_version, release_rule

GiB = 2**30


def batch_defaults(gpu_name: str, gpu_memory: int, tiers: str = "0.28") -> tuple:
    """(max_num_batched_tokens, max_num_seqs) that `vllm serve` picks on this GPU, by the release's tiers
    (vllm_versions.Behaviour.batch_defaults: the 160 GiB tier from 0.28, the A100 exception from 0.9); "v0": V0's
    256 sequences (vllm_mamba_v0.V0_DEFAULT_SEQS) beside 0.9's tokens, which resolve_settings replaces with V0's
    (SchedulerConfig: max(max_model_len, 2048), or Behaviour.v0_chunk_tokens past 32K), which its profile covers
    (vllm_profile.profile_peak); "v0.8" (0.8-0.10.1 falling back to V0): the same sequences beside V0's chunked-prefill
    tokens, which resolve_settings raises to a whole prompt without chunked prefill
    (vllm_mamba_v0.v0_batched_tokens)."""
    if tiers == "v0.8":
        from .vllm_mamba_v0 import V0_CHUNKED_TOKENS, V0_DEFAULT_SEQS

        return V0_CHUNKED_TOKENS, V0_DEFAULT_SEQS
    if tiers == "v0":
        from .vllm_mamba_v0 import V0_DEFAULT_SEQS

        return batch_defaults(gpu_name, gpu_memory, "0.9")[0], V0_DEFAULT_SEQS
    if tiers == "0.28" and gpu_memory >= 160 * GiB:
        return 16384, 1024
    if gpu_memory >= 70 * GiB and (tiers == "0.8" or "a100" not in gpu_name.lower()):
        return 8192, 1024
    return 2048, 256


# V0 up to 0.7 on a multimodal model (read in the wheels 0.6.0-0.6.6, 0.7.3): SchedulerConfig raises the batched
# tokens it picks to _MULTIMODAL_MODEL_MAX_NUM_BATCHED_TOKENS, 4,096 in 0.6.0-0.6.2 and 5,120 from 0.6.3 (config.py
# 0.6.0:35, :989; 0.6.2:34, :1000; 0.6.3:34, :995-1000; 0.7.3:54, :1544-1549); whether chunked prefill is on (past 32K,
# not for a multimodal model from 0.6.1.post1, ...) is vllm_v0_chunked.v0_chunked_prefill's.
EARLY_V0_MEDIA_FLOOR = (((0, 6, 3), 5120), ((0, 6), 4096))  # (first release, tokens), newest first
# ... and a pooling model's (the embedding model: ModelConfig.embedding_mode up to 0.6.3, task "embedding" in 0.6.4,
# runner_type "pooling" from 0.6.5) to _EMBEDDING_MODEL_MAX_NUM_BATCHED_TOKENS (_POOLING_MODEL_... from 0.6.5),
# 32,768: from 0.4.3 (none in 0.4.0-0.4.2's config.py) only without chunked prefill, its place the whole length's
# ("elif embedding_mode": max(max_model_len, 32,768), config.py 0.4.3:23, :663-670; 0.5.1:778-781; 0.5.5:902-905), so a
# chunk past 32K stays 512; from 0.6.0 after either (0.6.0:983-988, 0.6.4:1120-1125, 0.6.5:1350-1355, 0.7.3:1538-1543;
# the same in 0.8.5:1986-1990, where V0's pooling runner is not planned: vllm_v1_oracle.v0_unmodelled; gone in 0.9.0).
EARLY_V0_POOLING_FLOOR = 32768
POOLING_FLOOR_RULES = (((0, 6), "any"), ((0, 4, 3), "whole prompt"))  # (first release, which batch it raises)


def early_v0_chunked_prefill(max_model_len: int, version: str, multimodal: bool) -> bool:
    """Whether V0 (<= 0.7) runs with chunked prefill by the length, the release and `multimodal` alone
    (vllm_v0_chunked.v0_chunked_prefill without a spec or flags: what a model and its flags can only turn off)."""
    from .vllm_v0_chunked import v0_chunked_prefill

    return v0_chunked_prefill(max_model_len, version, multimodal=multimodal)


def early_v0_batched_tokens(max_model_len: int, rules: Behaviour, version: str, multimodal: bool,
                            chunked: Optional[bool] = None, pooling: bool = False) -> int:
    """V0's (<= 0.7) max_num_batched_tokens, which SchedulerConfig picks with no max_num_seqs x max_model_len cap
    (config.py 0.6.3:975-1000, 0.7.3:1521-1549): max(max_model_len, 2048), or the release's chunk
    (Behaviour.v0_chunk_tokens) with chunked prefill (`chunked`; None: early_v0_chunked_prefill), a multimodal
    model's raised to its floor (EARLY_V0_MEDIA_FLOOR), a `pooling` model's to its own (POOLING_FLOOR_RULES)."""
    if chunked is None:
        chunked = early_v0_chunked_prefill(max_model_len, version, multimodal)
    tokens = rules.v0_chunk_tokens if chunked else max(max_model_len, 2048)
    floor = next((t for since, t in EARLY_V0_MEDIA_FLOOR if parse_version(version) >= since), 0) if multimodal else 0
    raises = release_rule(POOLING_FLOOR_RULES, version) if pooling else None
    if raises == "any" or (raises == "whole prompt" and not chunked):
        floor = max(floor, EARLY_V0_POOLING_FLOOR)
    return max(tokens, floor)


WHOLE_PROMPT_FLOOR_SINCE = (0, 11, 1)  # engine/arg_utils.py 0.11.1:2013-2018 (0.34.0:3231-3236): max(len, default)
# [from, before): V1 with chunked prefill off sets max_num_batched_tokens to max_model_len whatever was given
# (_set_default_args_v1, engine/arg_utils.py 0.9.2:1601-1602, 0.10.0:1556-1557; a pooling model is V1's from 0.9.2);
# from 0.10.1 only where it is left to vLLM (0.10.1.1:1699-1701)
WHOLE_PROMPT_OVERRIDES = ((0, 9, 2), (0, 10, 1))


def whole_prompt_batch(default: int, max_model_len: int, version: str) -> int:
    """`vllm serve`'s max_num_batched_tokens with chunked prefill off, before the max_num_seqs x max_model_len cap: a
    whole prompt must fit one step, so max(max_model_len, the GPU's default) from 0.11.1; 0.11.0 took max_model_len
    itself (engine/arg_utils.py 0.11.0:1667-1668)."""
    if parse_version(version) >= WHOLE_PROMPT_FLOOR_SINCE:
        return max(max_model_len, default)
    return max_model_len


@dataclass(frozen=True)
class Settings:
    """The scheduler and cache settings one start-up uses, resolved as vLLM resolves them."""

    max_model_len: int
    max_num_batched_tokens: int
    max_num_seqs: int
    in_flight_batches: int
    prefix_caching: bool = True
    raised: str = ""  # why max_num_batched_tokens is above the GPU's default (vllm_media_floor.raised_note)
    # where vLLM picks max_num_batched_tokens: (the GPU's default, a prefix-LM's media item or 0) before max_num_seqs x
    # max_model_len caps the larger; None where --max-num-batched-tokens is given
    picked: Optional[tuple] = None
    # where vLLM has a pooler config (hybrid_without_prefix_caching): the pooling runner (vllm_pooling.pooling_runner),
    # or --pooler-config given on the generate runner (vllm_pooler_config.given); set by VllmEngine.settings
    pooling_runner: bool = False
    pooler_config: bool = False
    # --enable-prefix-caching / --no-enable-prefix-caching (None: not given), --mamba-block-size, and whether a
    # --speculative-config is given: vllm_prefix_flag.as_asked, which with_model_defaults applies
    prefix_caching_asked: Optional[bool] = None
    mamba_block_size: Optional[int] = None
    speculative: bool = False
    # the longest prompt V0's scheduler serves where below max_model_len (vllm_v0_chunked.mla_prompt_limit); None: the
    # whole length. Set by VllmEngine.settings
    prompt_limit: Optional[int] = None
    # whether chunked prefill runs (the default, or --enable-chunked-prefill as vllm_chunked_flag.chunked_prefill reads
    # it), which the Mamba prefix cache may need (vllm_chunked_flag.mamba_refusal)
    chunked_prefill: bool = True

    @property
    def in_flight_tokens(self) -> int:
        return self.in_flight_batches * self.max_num_batched_tokens


def resolve_settings(max_model_len: int, gpu_name: str, gpu_memory: int, pp: int = 1,
                     max_num_batched_tokens: Optional[int] = None, max_num_seqs: Optional[int] = None,
                     version: str = PINNED, async_scheduling: Optional[bool] = None,
                     prefix_caching: bool = True, v1_runner: bool = False, media_floor: tuple = (0, ""),
                     chunked_prefill: bool = True, rules: Optional[Behaviour] = None,
                     multimodal: bool = False, pooling: bool = False, chunked_given: bool = False) -> Settings:
    """`media_floor`: (tokens, modality) of the media item a multimodal prefix-LM raises the default batched tokens
    to (vllm_media_floor.media_floor), applied only where max_num_batched_tokens is vLLM's to pick.
    `chunked_prefill` False (a pooling model's default: vllm_pooling_budget.incremental_prefill): vLLM's pick is
    raised to a whole prompt (whole_prompt_batch). `rules`: the release's (None) or V0's where it falls back to V0
    for the model (vllm_v1_oracle.v0_rules), whose SchedulerConfig raises a `multimodal` model's batched tokens
    (v0_batched_tokens), and up to 0.7 a `pooling` model's (early_v0_batched_tokens). On V0 (up to 0.7, or falling
    back) `chunked_prefill` is V0's default for the model and flags
    (vllm_v0_chunked.v0_chunked_prefill, which the engine passes); up to 0.7 a caller without a model gets it by
    the length and release (early_v0_chunked_prefill), unless `chunked_given` (--enable-chunked-prefill /
    --no-enable-chunked-prefill, which V0 keeps: vllm_chunked_flag.py). Settings vLLM refuses raise FieldError
    (check_batch)."""
    rules = rules or behaviour(version)
    default, seqs = batch_defaults(gpu_name, gpu_memory, rules.batch_defaults)
    if rules.batch_defaults == "v0.8":  # V0's SchedulerConfig, chunked prefill as V0 leaves it (vllm_mamba_v0.py)
        from .vllm_mamba_v0 import v0_batched_tokens

        default = v0_batched_tokens(max_model_len, chunked_prefill, multimodal)
    elif rules.batch_defaults == "v0":  # <= 0.7: the whole length, or the release's chunk past 32K (chunked prefill)
        if not chunked_given:
            chunked_prefill = chunked_prefill and early_v0_chunked_prefill(max_model_len, version, multimodal)
        default = early_v0_batched_tokens(max_model_len, rules, version, multimodal, chunked_prefill, pooling)
    elif not chunked_prefill:
        default = whole_prompt_batch(default, max_model_len, version)
    settable = rules.batch_defaults in ("v0", "v0.8") or chunked_prefill or not in_span(version, WHOLE_PROMPT_OVERRIDES)
    if not settable:
        max_num_batched_tokens = None  # vLLM's own pick, whatever was given
    seqs = seqs if max_num_seqs is None else max_num_seqs
    tokens, raised, picked = max_num_batched_tokens, "", None
    if tokens is None:  # arg_utils.py _set_default_max_num_seqs_and_batched_tokens_args: the floor, then the cap
        picked = (default, media_floor[0])
        # V0 up to 0.7 picks it in SchedulerConfig, uncapped (early_v0_batched_tokens)
        tokens = max(picked) if rules.batch_defaults == "v0" else min(seqs * max_model_len, max(picked))
        raised = raised_note(default, media_floor, tokens) or ""
    if max_num_seqs is None and caps_default_seqs(rules, version):
        seqs = min(seqs, tokens)
    check_batch(tokens, seqs, max_model_len, chunked_prefill, version, max_num_batched_tokens is not None,
                max_num_seqs is not None, raised, settable)
    asynchronous = async_scheduling is not False  # on by default (0.14+) unless something turns it off
    if not rules.concurrent_batches:
        batches = 1
    elif v1_runner:
        batches = 2 if asynchronous and pp <= 1 else pp
    else:
        batches = pp + (1 if asynchronous else 0)
    return Settings(max_model_len, tokens, seqs, batches, prefix_caching, raised, picked,
                    chunked_prefill=chunked_prefill)


# A config hook that lowers max_num_seqs (model_executor/models/config.py, run by VllmConfig.__post_init__'s
# try_verify_and_update_config: config/vllm.py 0.24.0:863, 0.32.0:1443, 0.34.0:1483). It comes after SchedulerConfig
# has checked the batched tokens against the sequences asked (config/scheduler.py 0.32.0:312, :328-333, so
# more_seqs_than_tokens stands) and before the CUDA graph sizes are set from max_num_seqs (config/vllm.py 0.24.0:1296,
# 0.32.0:1937, 0.34.0:1925). DiffusionGemma's (DiffusionGemmaModelForBlockDiffusionConfig, mapped from 0.24.0:676 to
# 0.34.0:1552; none in 0.23.0) sets it to 8 wherever it is at least SchedulerConfig.DEFAULT_MAX_NUM_SEQS, 128
# (config/scheduler.py 0.24.0:44, 0.32.0:43, 0.34.0:42): the serve default arg_utils filled in, or a --max-num-seqs as
# large, which it cannot tell apart ("use >= DEFAULT_MAX_NUM_SEQS as a proxy": 0.24.0:158-159, 0.32.0:371-372,
# 0.34.0:691-692). Keyed by the architecture MODELS_CONFIG_MAP is looked up by: (first release, least value, value).
SEQS_HOOKS = {"DiffusionGemmaForBlockDiffusion": ((0, 24), 128, 8)}


def hooked_seqs(spec, seqs: int, version: str = PINNED) -> int:
    """max_num_seqs once vLLM `version`'s config hook for `spec` has run (SEQS_HOOKS): `seqs` elsewhere."""
    from .vllm_registry import served_architecture

    hook = SEQS_HOOKS.get(served_architecture(spec, version))
    if hook is None or parse_version(version) < hook[0] or seqs < hook[1]:
        return seqs
    return hook[2]


# SchedulerConfig's batch checks, the same two in this order in every release read (0.2.0-0.34.0: config.py
# 0.2.7:385-397, 0.4.3:689-703, 0.5.5:928-942, 0.6.3:1024-1038, 0.7.3:1575-1589, 0.8.5:2023-2037, 0.9.2:2304-2318;
# config/scheduler.py 0.10.2:252-266, 0.11.0:235-249, 0.14.0:251-267, 0.32.0:316-332, 0.34.0:363-379): first
# max_num_batched_tokens below max_model_len without chunked prefill (up to 0.4.0 whatever chunked prefill: config.py
# 0.4.0:563, never on there), then max_num_batched_tokens below max_num_seqs. Chunked prefill: always on V1
# (arg_utils.py 0.8.5:1568-1569) but for a pooling model (vllm_pooling_budget.incremental_prefill); on V0 past 32K
# only, unless the model or its flags keep it off (vllm_v0_chunked.v0_chunked_prefill). A max_num_seqs left to vLLM
# is capped at the batched tokens from 0.10.1 on V1 (DEFAULT_SEQS_RULES); V0's 256 never is (arg_utils.py 0.2.7:30,
# 0.6.3:115, 0.7.3:223-224; _set_default_args_v0 0.8.5:1562-1563, 0.10.1:1581-1582), nor V1's 1,024 / 256 before
# 0.10.1 (0.8.5:1620-1621, 0.10.0:1652-1654).
DEFAULT_SEQS_RULES = (  # (first release, what V1 does to a defaulted max_num_seqs above the batched tokens, where)
    ((0, 10, 1), "capped", "engine/arg_utils.py 0.10.1:1709-1712, 0.11.0:1676-1679, 0.14.0:2025, 0.32.0:3180"),
    ((0, 8), "refused", "engine/arg_utils.py 0.8.5:1620-1621, 0.10.0:1652-1654"),
)


def caps_default_seqs(rules: Behaviour, version: str) -> bool:
    """Whether vLLM `version` (V0 where `rules` say so) lowers a max_num_seqs it picks to the batched tokens."""
    return rules.batch_defaults not in ("v0", "v0.8") and release_rule(DEFAULT_SEQS_RULES, version) == "capped"


def check_batch(tokens: int, seqs: int, max_model_len: int, chunked_prefill: bool, version: str, tokens_given: bool,
                seqs_given: bool, raised: str = "", tokens_settable: bool = True) -> None:
    """SchedulerConfig's two checks, in vLLM's order (above DEFAULT_SEQS_RULES), on the settings it would take;
    `tokens_settable` False where vLLM replaces a given max_num_batched_tokens (WHOLE_PROMPT_OVERRIDES)."""
    if tokens < max_model_len and not chunked_prefill:
        raise short_batch(tokens, max_model_len, seqs, version)
    if tokens >= seqs:
        return
    if seqs_given or not tokens_given:
        raise more_seqs_than_tokens(seqs, tokens, None if tokens_given else raised, tokens_settable)
    raise fewer_tokens_than_default_seqs(tokens, seqs, version)


def short_batch(tokens: int, max_model_len: int, seqs: int, version: str) -> FieldError:
    """vLLM's refusal of fewer batched tokens than max_model_len without chunked prefill; the remedy passes the
    max_num_seqs check that follows it too."""
    also = f" and max_num_seqs to {tokens} or less" if seqs > tokens else ""
    return FieldError("max_num_batched_tokens",
                      f"{tokens} is smaller than max_model_len {max_model_len}, which vLLM {version} refuses with "
                      f"chunked prefill off, as it is here (\"max_num_batched_tokens ({tokens}) is smaller than "
                      f"max_model_len ({max_model_len})\"); set max_num_batched_tokens to {max(max_model_len, seqs)} "
                      f"or more, or max_model_len to {tokens} or less{also}.",
                      names=("max_num_batched_tokens", "max_model_len", "max_num_seqs"))


def fewer_tokens_than_default_seqs(tokens: int, seqs: int, version: str) -> FieldError:
    """vLLM's refusal of batched tokens below the max_num_seqs it picks and does not lower (DEFAULT_SEQS_RULES)."""
    return FieldError("max_num_batched_tokens",
                      f"{tokens} is less than max_num_seqs {seqs}, vLLM {version}'s default here, which it does not "
                      f"lower to the batched tokens but refuses (\"max_num_batched_tokens ({tokens}) must be greater "
                      f"than or equal to max_num_seqs ({seqs})\"); set max_num_batched_tokens to {seqs} or more, or "
                      f"max_num_seqs to {tokens} or less.", names=("max_num_batched_tokens", "max_num_seqs"))


def more_seqs_than_tokens(seqs: int, tokens: int, raised: Optional[str], tokens_settable: bool = True) -> FieldError:
    """vLLM's refusal of more sequences than batched tokens, on max_num_seqs; `raised`: None where the user gave
    the batched tokens, else why vLLM's own pick is what it is ("" for the GPU's default). The remedy names both
    limits by their keys (FieldError.names), which the caller writes its own way (the command line's flags); a pick
    of vLLM's is named in a code span, as vLLM's setting, which no caller respells (errors.respelled).
    `tokens_settable` False: vLLM sets the batched tokens to max_model_len whatever is given (WHOLE_PROMPT_OVERRIDES),
    so only max_num_seqs helps."""
    limit = f"max_num_batched_tokens {tokens}" if raised is None else \
        f"vLLM's `max_num_batched_tokens` {tokens} (the default here{f': {raised}' if raised else ''})"
    if not tokens_settable:
        limit = f"vLLM's `max_num_batched_tokens` {tokens} (max_model_len, whatever is given, with chunked prefill off)"
    remedy = f"max_num_batched_tokens to {seqs} or more, or " if tokens_settable else ""
    return FieldError("max_num_seqs", f"{seqs} is more than {limit}, which vLLM refuses (\"max_num_batched_tokens "
                                      f"({tokens}) must be greater than or equal to max_num_seqs ({seqs})\"); set "
                                      f"{remedy}max_num_seqs to {tokens} or less.",
                      names=("max_num_batched_tokens", "max_num_seqs"))


# A hybrid model (recurrent states beside attention layers: vLLM's IsHybrid classes, ModelConfig.is_hybrid) starts
# with prefix caching off up to 0.27, by these rules (HYBRID_PREFIX_RULES), unless --enable-prefix-caching from 0.11.1:
# - 0.11.0, every runner: MambaModelConfig turns it off whatever the flag (model_executor/models/config.py
#   0.11.0:296), which VllmConfig runs for every hybrid (config/__init__.py 0.11.0:641-642).
# - 0.11.1-0.11.2: the generate runner defaults it to `not model_config.is_hybrid`; the pooling runner by its pooling
#   type alone (engine/arg_utils.py 0.11.1:1838-1858; vllm_pooling_budget.incremental_prefill).
# - 0.12.0-0.25.x: is_prefix_caching_supported, False for attn_type "hybrid" (config/model.py 0.12.0:1839-1844,
#   0.15.0 and 0.15.1 :1667-1672, 0.25.1 :1883-1888; arg_utils.py 0.15.1:1895, :1927-1928); but with a pooler config
#   attn_type is the class's, "decoder" (0.12.0:1754-1761, 0.15.1:1566-1572, 0.25.1:1782-1788), so the pooler's
#   type decides (0.15.1:1640-1661), as incremental_prefill has it.
# - 0.26.0-0.27.1, every runner: `is_prefix_caching_supported and not model_config.is_hybrid` ("keep it opt-in for
#   now", arg_utils.py 0.26.0:2518-2522, 0.27.1:2605).
# - from 0.28.0: is_prefix_caching_supported (arg_utils.py 0.28.0:2650), True for a hybrid (config/model.py
#   0.28.0:2072-2074).
# Off, MambaModelConfig leaves mamba_cache_mode "none" and mamba_block_size max_model_len (models/config.py
# 0.15.0:373-380): one state block of the whole length a request (MambaSpec.max_memory_usage_bytes,
# v1/kv_cache_interface.py 0.15.1:294-300), as for an attention-free model.
HYBRID_PREFIX_RULES = (  # (first release, who starts a hybrid with it off), newest first
    ((0, 28), "nobody"), ((0, 26), "every runner"), ((0, 12), "without a pooler config"),
    ((0, 11, 1), "generate runner"), ((0, 0), "every runner"),
)
HYBRID_PREFIX_CACHING_SINCE = (0, 28)  # every runner, whatever the pooler
MAMBA_FALLBACK_OFF_BEFORE = (0, 15)  # before it, a class outside MAMBA_PREFIX_CLASSES gets prefix caching off


def with_model_defaults(spec, settings: Settings, version: str = PINNED) -> Settings:
    """The settings vLLM `version` starts this model with: prefix caching off for an attention-free model (every
    layer a Mamba state: config/model.py is_prefix_caching_supported, 'Attention free models do not support prefix
    caching') and, by HYBRID_PREFIX_RULES, for a hybrid one, so each state block holds a whole max_model_len and a
    request one block; then --enable-prefix-caching / --no-enable-prefix-caching and --mamba-block-size as vLLM
    `version` takes them (vllm_prefix_flag.as_asked), and the chunked prefill a Mamba prefix cache needs
    (vllm_chunked_flag.mamba_refusal)."""
    from .vllm_chunked_flag import mamba_refusal

    off = (spec.layers and len(spec.linear_layers) == len(spec.layers)) or \
        hybrid_without_prefix_caching(spec, version, settings.pooling_runner, settings.pooler_config)
    resolved = as_asked(spec, replace(settings, prefix_caching=False) if off else settings, version)
    mamba_refusal(spec, resolved, version)
    return resolved


def hybrid_without_prefix_caching(spec, version: str, pooling_runner: bool = False,
                                  pooler_config: bool = False) -> bool:
    """Whether vLLM `version` starts `spec`, a hybrid of recurrent states and attention, with prefix caching off
    whatever its pooler (HYBRID_PREFIX_RULES; where it is not, the pooler's type decides:
    vllm_pooling_budget.incremental_prefill); False for any other model. `pooling_runner`: vLLM serves it on the
    pooling runner; `pooler_config`: --pooler-config is given (Settings)."""
    if not _is_hybrid(spec):
        return False
    release = parse_version(version)
    who = next(rule for first, rule in HYBRID_PREFIX_RULES if release >= first)
    if who in ("nobody", "every runner"):
        return who == "every runner"
    if not pooling_runner and (who == "generate runner" or not pooler_config):
        return True
    return release < MAMBA_FALLBACK_OFF_BEFORE and not _mamba_prefix_class(spec, version)
