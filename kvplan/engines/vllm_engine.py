"""The vLLM engine as plan() uses it: settings from the GPU and flags, the budget (vllm_budget.py), start-up
figures and resident sequences (vllm.py)."""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import Optional

from ..errors import FieldError, KvplanError
from ..memo import remember
from ..plan.catalog import device_name
from . import EngineFlags
from .ideal import EngineResult
from .vllm import attention_backend, start
from .vllm_config_read import architectures_refusal, registry_names
from .vllm_settings import hooked_seqs, resolve_settings
from .vllm_multimodal import DROPPED_SINCE as MEDIA_FLAGS_DROPPED_SINCE, text_only_refusal
from .vllm_budget import sized_after_warmup, vllm_budget
from .vllm_bool_flags import NO_FORM_SINCE, refusal
from .vllm_chunked_flag import release_refusal as chunked_flag_refusal
from .vllm_underscore_flags import refusal as underscore_refusal
from .vllm_cache_flags import release_refusal
from .vllm_dcp import check_flags as check_dcp_flags, check_layout as check_dcp_layout
from .vllm_pcp import check_flags as check_pcp_flags, check_layout as check_pcp_layout, pcp_refusal
from .vllm_pooling import runner_name
from .vllm_runner import is_rocm
from .vllm_sparse import ROCM
from .vllm_speculative import NO_WEIGHTS
from .vllm_v1_oracle import asked_kv_dtype, reason_words, v0_fallback
from .vllm_workers import OVERRIDE_RULES, fewest_blocks_stage
from ..model.precision import check_kv_dtype
from ..model.quantization import QUANTIZATIONS
from .vllm_versions import (KV_DTYPE_FLAG_SINCE, PINNED, behaviour, block_size_choices, kv_dtype_choices,
                            kv_dtype_first_after, parse_version, quantization_choices, quantization_first_listed)

# the first release with each flag (engine/arg_utils.py): skip_mm_profiling vllm#22950; language_model_only
# (config/multimodal.py MultiModalConfig), whose towers' weights every release with it skips (_mark_tower_model, 0.15);
# mm_encoder_tp_mode (arg_utils.py, read in 0.10.2, not in 0.10.1); cpu_offload_gb (vllm#6496: in 0.5.3's
# arg_utils.py, not in 0.5.2's)
# dp (--data-parallel-size) / enable_expert_parallel: in 0.8.5 already, modelled as 0.9.0 on lays the experts out
# (fused_moe/layer.py FusedMoEParallelConfig.make flattens TP across DP; 0.8.5's does not): MODELLED_SINCE
# enable_eplb: --enable-eplb in 0.9.2's arg_utils.py (not 0.9.1's); modelled as 0.24 on builds EplbState
# (eplb_state.py add_model's transfer buffer from 0.12, the communicator choice preferring NIXL from 0.24)
# mamba_cache_dtype / mamba_ssm_cache_dtype (0.10.1's arg_utils.py, not 0.10.0's) and disable_sliding_window (0.4.3's,
# not 0.4.2's): vllm_cache_flags.py
# enforce_eager: --enforce-eager first in 0.2.6's arg_utils.py (:192-196), absent from 0.2.0-0.2.5's;
# enable_prefix_caching (on): --enable-prefix-caching first in 0.4.0's (:199-201), absent from 0.2.0-0.3.3's
# kv_budget: --kv-cache-memory-bytes first in 0.10.2's (:233, :344, :745), absent from 0.10.1.1's, whose argparse
# stops `vllm serve` on it ("unrecognized arguments"); V1 and V0 alike size the cache as given from 0.10.2
# (v1/worker/gpu_worker.py 0.10.2:235-252, worker/worker.py 0.10.2:235-254)
FLAG_SINCE = {"enforce_eager": (0, 2, 6), "enable_prefix_caching": (0, 4), "kv_budget": (0, 10, 2),
              "skip_mm_profiling": (0, 10, 1), "language_model_only": (0, 17), "mm_encoder_tp_mode": (0, 10, 2),
              "cpu_offload_gb": (0, 5, 3), "enable_eplb": (0, 9, 2), "mamba_cache_dtype": (0, 10, 1),
              "mamba_ssm_cache_dtype": (0, 10, 1), "disable_sliding_window": (0, 4, 3),
              "mamba_block_size": (0, 11, 1)}  # --mamba-block-size: arg_utils.py 0.11.1:933, not in 0.11.0's

# vLLM's later spellings of a flag kvplan has: the first release whose `vllm serve` parses each (an older one stops
# on it, "unrecognized arguments"). --device-memory-utilization: --gpu-memory-utilization's alias, engine/arg_utils.py
# 0.31.0:1327, 0.32.0:1358, 0.34.0:1405 (absent from 0.30.0's). A boolean flag's negatives (--disable-prefix-caching
# from 0.33, --no-enforce-eager from 0.9): vllm_bool_flags.py, refuse_switch
SPELLING_SINCE = {"--device-memory-utilization": ("gpu_util", (0, 31), "--gpu-memory-utilization"),
                  # the compilation config's -cc and --optimization-level: engine/arg_utils.py 0.12.0:1128, :1138
                  # (0.11.1:1149 has -O alone: vllm_compilation.py)
                  "-cc": ("compilation_config", (0, 12), "-O"),
                  "--optimization-level": ("optimization_level", (0, 12), "-O")}


def _release(engine) -> Optional[str]:
    """The vLLM release `engine` names (vllm, vllm==X), None for none (no release, so any spelling)."""
    from . import get_engine

    return getattr(get_engine(engine or "vllm"), "version", None)


def refuse_spelling(spelling: Optional[str], engine) -> None:
    """KvplanError where `spelling` (SPELLING_SINCE) was typed and the release `engine` names is older than that
    spelling's first; the older spelling is named instead."""
    if spelling not in SPELLING_SINCE:
        return
    version = _release(engine)
    field, since, older = SPELLING_SINCE[spelling]
    if version is not None and parse_version(version) < since:
        raise KvplanError(f"{spelling} needs vLLM {'.'.join(map(str, since))} or later (vllm=={version} stops on "
                          f"that spelling: \"unrecognized arguments\"); write {older}, as that release does.")


def refuse_switch(field: str, flag: str, spelling: str, engine) -> None:
    """KvplanError where `spelling`, a negative of the boolean `flag` (vllm_bool_flags.py), is one the release
    `engine` names does not parse."""
    version = _release(engine)
    text = None if version is None else refusal(field, flag, spelling, version, FLAG_SINCE.get(field))
    if text:
        raise KvplanError(text)


def refuse_underscore(typed: str, engine) -> None:
    """KvplanError where the flag name `typed` has an underscore and the release `engine` names reads none
    (vllm_underscore_flags.py: before 0.5.1)."""
    version = _release(engine)
    text = None if version is None else underscore_refusal(typed, version)
    if text:
        raise KvplanError(text)


# prefix caching off (the API's and a deployments file's too): --no-enable-prefix-caching, a BooleanOptionalAction from
# 0.6.5 (vllm_bool_flags.py); 0.4.0-0.6.4 take --enable-prefix-caching alone
PREFIX_OFF_FLAG_SINCE = NO_FORM_SINCE["enable_prefix_caching"]

# older releases have these flags, not what kvplan models: (first release modelled, what it models)
MODELLED_SINCE = {"dp": ((0, 9), "lays out the experts"), "enable_expert_parallel": ((0, 9), "lays out the experts"),
                  "enable_eplb": ((0, 24), "builds EPLB's state and picks its communicator"),
                  "enable_lora": ((0, 12), "drops the extra-vocabulary LoRA slots kvplan does not model"),
                  "disable_sliding_window": ((0, 11), "caps the length and clears the window as kvplan read it")}
# the Mamba dtype flags are modelled from 0.10.1, their first release, whose V0 cache reads them (vllm_mamba_v0.py;
# a Mamba-1 mixer's float32 refused there: vllm_cache_flags.mamba1_fp32_refusal)
# how the redundant experts were spelled (arg_utils.py): --num-redundant-experts 0.9.2 to 0.11.2, --eplb-config 0.10.2+
EPLB_CONFIG_SINCE, REDUNDANT_FLAG_SINCE, REDUNDANT_FLAG_UNTIL = (0, 10, 2), (0, 9, 2), (0, 11, 2)
# --limit-mm-per-prompt's dummy-data options (width / height / num_frames): config/multimodal.py ImageDummyOptions and
# VideoDummyOptions, first in 0.11.1's sources (absent from 0.11.0's); older releases take counts only
DUMMY_OPTIONS_SINCE = (0, 11, 1)


class VllmEngine:
    name = "vllm"

    def __init__(self, version: str = PINNED, flags: EngineFlags = EngineFlags()):
        self.version = version
        self.rules = behaviour(version)
        self._settings_memo: dict = {}  # _budget_settings' answers
        self._settings_of: dict = {}  # settings' answers
        self._graph_views: dict = {}  # graph_flags' answers
        for name, since in FLAG_SINCE.items():
            if getattr(flags, name) and parse_version(version) < since:
                raise FieldError(name, f"needs vLLM {'.'.join(map(str, since))} or later (vllm=={version} has no "
                                       f"such flag); leave it off or pick a later release.")
        spelled = flags.enable_eplb.spelling if flags.enable_eplb else flags.eplb_spelled_off
        if spelled:  # with EPLB off too: a flag the release's argparse lacks stops it whatever its value
            _eplb_spelling(spelled, version)
        for name, (since, what) in MODELLED_SINCE.items():
            if getattr(flags, name) and parse_version(version) < since:
                release = ".".join(map(str, since))
                raise FieldError(name, f"is modelled from vLLM {release} on, as that release {what} (vllm=={version} "
                                       f"is older); pick {release} or later.")
        if flags.enable_prefix_caching is False and parse_version(version) < PREFIX_OFF_FLAG_SINCE:
            had = "has no prefix-caching flag" if parse_version(version) < FLAG_SINCE["enable_prefix_caching"] else \
                "takes --enable-prefix-caching alone, a switch off unless given"
            raise FieldError("enable_prefix_caching", f"off (--no-enable-prefix-caching) needs vLLM 0.6.5 or later "
                                                      f"(vllm=={version} {had}); leave it out.")
        release_refusal(flags, version)  # a Mamba dtype this release's argparse does not list
        chunked_flag_refusal(flags.enable_chunked_prefill, version)  # a release with no such spelling
        # -dcp from 0.10.2, its interleave from 0.11.1, --dcp-comm-backend from 0.18, --dcp-q-replicate from 0.29
        check_dcp_flags(flags.dcp, flags.dcp_interleave, version, flags.dcp_comm_backend, flags.dcp_q_replicate)
        check_pcp_flags(flags, version)  # -pcp from 0.12, with -dcp 1 and no drafter (vllm_pcp.py)
        if flags.enable_eplb and not flags.enable_expert_parallel:  # config/parallel.py ParallelConfig
            raise FieldError("enable_eplb", "needs enable_expert_parallel: vLLM refuses EPLB without it "
                                            "(\"enable_expert_parallel must be True to use EPLB\").",
                             names=("enable_expert_parallel",))
        if flags.mm_limits is not None and flags.mm_limits.sized and parse_version(version) < DUMMY_OPTIONS_SINCE:
            raise FieldError("limit_mm_per_prompt", f"width / height / num_frames options need vLLM 0.11.1 or later "
                                                    f"(vllm=={version} takes a count a modality only).")
        drafts = flags.speculative is not None and flags.speculative.method not in NO_WEIGHTS
        if drafts and (flags.dp or flags.enable_expert_parallel):  # the drafter's experts, layout not read
            raise FieldError("speculative_config", f"method {flags.speculative.method} with dp / "
                                                   f"enable_expert_parallel is not modelled yet (kvplan lays out "
                                                   f"the target's experts only); ngram and suffix are.",
                             names=("dp", "enable_expert_parallel"))
        self.flags = flags
        self.enforce_eager = flags.enforce_eager  # vLLM's --enforce-eager: cudagraph_mode NONE

    def graph_flags(self, spec, gpu=None) -> EngineFlags:
        """The flags as this release reads their CUDA graphs for `spec` on `gpu` (None: a CUDA GPU), in vLLM's order:
        breakable graphs keep the mode given (vllm_breakable.graph_view), a pooler config's (-dcp's) downgrade to
        PIECEWISE comes before the splitting_ops rule (vllm_full_downgrade.graph_view), stock torch.compile has none
        (vllm_stock_compile.graph_view); the flags themselves otherwise. One object per (spec, gpu), kept by identity
        with both alive, as the budget's memos key on the flags' identity (vllm_budget.stage_free): a new view each
        call would work out every pipeline stage afresh."""
        key = (id(spec), id(gpu))
        held = self._graph_views.get(key)
        if held is not None and held[0] is spec and held[1] is gpu:
            return held[2]
        answer = self._graph_flags(spec, gpu)
        remember(self._graph_views, MAX_SETTINGS, key, (spec, gpu, answer))  # the oldest goes (and what it kept)
        return answer

    def _graph_flags(self, spec, gpu) -> EngineFlags:
        from .vllm_breakable import graph_view
        from .vllm_full_downgrade import graph_view as downgrade_view
        from .vllm_pooler_config import given
        from .vllm_pooling import pooling_runner
        from .vllm_runner import is_rocm, model_runner
        from .vllm_stock_compile import graph_view as stock_view

        flags = graph_view(self.flags, spec, self.version, gpu is not None and is_rocm(gpu))
        if spec is not None:
            flags = downgrade_view(flags, self.version, pooling_runner(spec, self.version) or given(spec) is not None)
        return stock_view(flags, parse_version(self.version),
                          lambda: spec is not None and model_runner(spec, self.rules, gpu, self.version).name == "V2")

    def known_kv_dtype(self, name) -> str:
        """precision.check_kv_dtype, whose refusal of a value no release takes lists this release's values."""
        return check_kv_dtype(name, kv_dtype_choices(self.version), self.version)

    def check_kv_dtype(self, name: str) -> None:
        """Refuse a --kv-cache-dtype value this release does not list (its argparse choices: KV_DTYPE_SINCE); one
        no release takes as precision.check_kv_dtype does (known_kv_dtype)."""
        asked = self.known_kv_dtype(name)  # as vLLM spells it (model/choices.py), else refused
        choices = kv_dtype_choices(self.version)
        if asked != "auto" and parse_version(self.version) < KV_DTYPE_FLAG_SINCE:
            raise FieldError("kv_dtype", f"{asked} needs vLLM 0.3.0 or later (vllm=={self.version} has no such flag: "
                                         f"it keeps the cache in the model's dtype); leave it out or pick a later "
                                         f"release.")
        if asked not in choices:
            raise FieldError("kv_dtype", f"{asked} is not a choice of vLLM {self.version} (first listed in "
                                         f"{kv_dtype_first_after(asked, self.version)}); it takes "
                                         f"{', '.join(choices)}.")

    def check_quantization(self, method: Optional[str]) -> None:
        """Refuse a --quantization method this release's argparse does not list (vllm_versions.QUANTIZATION_CHOICES:
        0.2.0 takes awq only, fp8 comes in 0.4.1, mxfp4 in 0.10.1); None (the checkpoint's own) passes."""
        choices = quantization_choices(self.version)
        key = str(method).strip().lower() if method is not None else None
        if key is not None and key in QUANTIZATIONS and key not in choices:
            raise FieldError("quantization", f"{key} is not a choice of vLLM {self.version} (first listed in "
                                             f"{quantization_first_listed(key)}); of the methods kvplan prices it "
                                             f"takes {', '.join(choices)}.")

    def check_block_size(self, block_size: Optional[int]) -> None:
        """Refuse a --block-size value this release's argparse does not list (vllm_versions.BLOCK_SIZE_CHOICES:
        2048 up to 0.17, whose BlockSize ends at 256); None (the engine's default) and any value from 0.18 pass."""
        choices = block_size_choices(self.version)
        if block_size is not None and choices is not None and block_size not in choices:
            raise FieldError("block_size", f"{block_size} is not a choice of vLLM {self.version}; it takes "
                                           f"{', '.join(map(str, choices))}.")

    def cache_precision(self, spec, precision, gpu=None, tp=None):
        """The cache vLLM keeps for `precision` (as spelled) on `gpu` at `tp` ranks (sparse MLA's and DeepSeek-V4's
        fp8_ds_mla, Falcon's bf16; sparse MLA's plain fp8 on FlashInfer's backends: vllm_sparse.py)."""
        from .vllm_kv_dtype import cache_precision

        return cache_precision(spec, precision, _capability(gpu), self.version, tp)

    def on_gpu(self, spec, gpu=None):
        """`spec` as this release serves it on `gpu`: GLM-5.x's `auto` is fp8_e4m3 on SM10x from 0.32
        (vllm_model_dtype.on_gpu)."""
        from .vllm_model_dtype import on_gpu

        return on_gpu(spec, _capability(gpu), self.version)

    def dcp_comm(self, spec, precision, gpu=None):
        """The plan/work.DcpComm of this engine's -dcp group on `gpu`'s attention backend (vllm_dcp.dcp_comm)."""
        from .vllm_dcp import dcp_comm

        return dcp_comm(self.flags, self.version, attention_backend(spec, precision, self.version, _capability(gpu)),
                        spec)

    def mla_decode_query_len(self, spec, precision, gpu=None) -> int:
        """The most new tokens a request of dense-MLA `spec` may bring and still run MLA's decode path on `gpu`
        (reorder_batch_threshold of the backend that runs: vllm_mla_decode); 1 for other models, sparse MLA and
        ROCm."""
        from ..model.kinds import MLALatent

        mla = next((layer for layer in spec.layers if isinstance(layer, MLALatent)), None)
        capability = _capability(gpu)
        if mla is None or mla.index_topk or capability == ROCM:
            return 1
        from .vllm_mla_decode import decode_query_len, running_backend  # only for dense MLA: off the common path

        quantized = precision.bits < 16
        backend = running_backend(attention_backend(spec, precision, self.version, capability), quantized, self.version)
        draft = self.flags.speculative
        return decode_query_len(backend, self.version, self.flags.dcp or 1, self.flags.dcp_interleave,
                                draft.num_speculative_tokens if draft else 0, bool(draft and draft.parallel_drafting))

    def configuration_refusal(self, spec, asked: dict, tp: int, gpu=None):
        """vLLM's first refusal of the configuration `asked` (engine, kv_dtype as spelled, context, block_size) for
        `spec` (as any release serves it) at `tp` ranks on `gpu`, whatever the memory (vllm.configuration_refusal);
        None when start-up gets as far as profiling memory. A release that lacks one of this deployment's flags, or
        the dtype asked, refuses it on that field (for the dtype, the values that release takes)."""
        key = (id(spec), id(self.flags), self.version, asked["engine"], asked["kv_dtype"], asked["context"],
               asked["block_size"], tp, _capability(gpu), device_name(gpu))  # the name: bfloat16's message
        held = _REFUSALS.get(key)
        if held is not None and held[0] is spec and held[1] is self.flags:  # ids are reused only once freed
            return held[2]
        refusal = self._configuration_refusal(spec, asked, tp, gpu)
        remember(_REFUSALS, MAX_REFUSALS, key, (spec, self.flags, refusal))  # the oldest goes (and its spec)
        return refusal

    def _configuration_refusal(self, spec, asked: dict, tp: int, gpu=None):
        from ..engines import get_engine
        from ..model.precision import resolve_kv_dtype
        from .figures import Refusal
        from .vllm import configuration_refusal
        from .vllm_level_assert import v1_level_refusal
        from .vllm_kv_dtype import release_view, unviewed
        from .vllm_model_dtype import on_gpu

        try:
            engine = self if asked["engine"] == f"vllm=={self.version}" else get_engine(asked["engine"], self.flags)
        except FieldError as exc:
            return Refusal(str(exc), None, configuration=True, field=exc.field)
        try:
            engine.check_kv_dtype(asked["kv_dtype"])
        except FieldError as exc:  # the release's argparse choices: the values a remedy may pair with the release
            return Refusal(str(exc), None, configuration=True, field=exc.field,
                           options=kv_dtype_choices(engine.version) if exc.field == "kv_dtype" else ())
        try:
            engine.check_block_size(asked["block_size"])
        except FieldError as exc:  # the release's choices, the nearest to the one asked first
            return Refusal(str(exc), None, configuration=True, field=exc.field,
                           options=nearest_block_sizes(block_size_choices(engine.version), asked["block_size"]))
        # V1's start-up assert on the compilation level (a trial's release or cache dtype may move the plan to V1);
        # the pipeline is no oracle condition from 0.10.1, where the assert begins, so one stage stands for all
        if engine.flags.piecewise_below_level_3 is not None:
            try:
                v1_level_refusal(engine.flags, engine.version, engine.rules_for(spec, 1, gpu, asked["kv_dtype"]).era
                                 != "v0")
            except FieldError as exc:
                return Refusal(str(exc), None, configuration=True, field=exc.field)
        if engine.graph_flags(spec, gpu).full_below_compile is not None:  # the same assert, past the downgrade
            from .vllm_level_assert import downgrade_refusal
            from .vllm_pooler_config import given
            from .vllm_pooling import pooling_runner

            try:
                downgrade_refusal(engine.graph_flags(spec, gpu), engine.version, pooling_runner(spec, engine.version),
                                  given(spec) is not None)
            except FieldError as exc:
                return Refusal(str(exc), None, configuration=True, field=exc.field)
        capability = _capability(gpu)
        viewed = on_gpu(release_view(unviewed(spec), engine.version), capability, engine.version)
        precision = resolve_kv_dtype(asked["kv_dtype"], viewed.dtype, viewed.auto_kv_dtype)
        return configuration_refusal(viewed, precision, tp=tp, length=asked["context"],
                                     block_size=asked["block_size"], version=engine.version, capability=capability,
                                     gpu_name=device_name(gpu)) or _encoder_only_refusal(spec, engine.version) \
            or _st_pooling_refusal(spec, engine.version) or _runner_refusal(spec, engine.version) \
            or _pooler_config_refusal(spec, engine.version) \
            or text_only_refusal(spec, engine.version, engine.flags) or _soft_tokens_refusal(spec, engine) \
            or _release_lora_refusal(spec, engine)

    def fixes(self, spec, refusal, *, kv_dtype: str, context: int, block_size: Optional[int], tp: int,
              gpu=None) -> tuple:
        """What clears `refusal` of this deployment, each fix checked against every configuration refusal
        (vllm_remedy.configuration_fixes); memory is the planner's to judge."""
        from .vllm_remedy import configuration_fixes

        asked = dict(engine=f"vllm=={self.version}", kv_dtype=kv_dtype, context=context, block_size=block_size)
        return configuration_fixes(lambda trial: self.configuration_refusal(spec, trial, tp, gpu), asked, refusal,
                                   releases())

    def nothing_clears(self, spec, refusal, *, kv_dtype: str, context: int, block_size: Optional[int], tp: int,
                       gpu=None):
        """`refusal` whose fixes (self.fixes, asked alike) came to none, saying why (vllm_remedy.nothing_clears):
        what clears it but is then refused, or that nothing does."""
        from .vllm_remedy import nothing_clears

        asked = dict(engine=f"vllm=={self.version}", kv_dtype=kv_dtype, context=context, block_size=block_size)
        return nothing_clears(refusal, lambda trial: self.configuration_refusal(spec, trial, tp, gpu), asked,
                              releases())

    def boundary_releases(self) -> tuple:
        """The releases at which a rule kvplan models changes (releases), to plan a remedy's range at."""
        return releases()

    def default_block_size(self) -> Optional[int]:
        # vLLM's own choice (vllm_specs.attention_block_size): 16 (64 from 0.34); dense MLA by GPU and release
        # (vllm_specs.DENSE_MLA_BLOCK_RULES: 64 for fp8 on Hopper, 32 on Blackwell 0.18-0.33); raised for hybrids
        return None

    def unsharded_block_size(self) -> int:
        """cache_config.block_size when vLLM refuses the TP degree: CacheConfig fills in its DEFAULT_BLOCK_SIZE as it
        is built (config/cache.py 0.34.0:481-491, 64; 0.32.0:343-345, 16), before VllmConfig.__post_init__ verifies
        the parallel config (config/vllm.py 0.34.0:1498, config/model.py :1582 "must be divisible by tensor
        parallel size"), and no backend has raised it yet."""
        return self.rules.block_size

    @functools.cached_property  # of the rules and flags, fixed at construction; every stage's budget reads it
    def default_gpu_util(self) -> float:
        """config/cache.py resolved_gpu_memory_utilization: 1.0 where the extensible KV cache sizes the cache from
        measured memory (0.34), else the release's default."""
        return 1.0 if sized_after_warmup(self.rules, self.flags) else self.rules.default_gpu_util

    def rules_for(self, spec, pp: int = 1, gpu=None, kv_dtype: str = "auto"):
        """The rules `spec` is planned by at `pp` stages on `gpu` with --kv-cache-dtype `kv_dtype` (as asked): V0's
        where this release falls back to V0 for them (vllm_v1_oracle.v0_fallback, through its v0_rules:
        its Mamba states, the pipeline, the cache dtype, the GPU, the flags), else the release's."""
        from .vllm_v1_oracle import v0_rules

        if spec is None:
            return self.rules
        return v0_rules(spec, self.version, pp, kv_dtype, _capability(gpu), self.flags) or self.rules

    def dummy_sampler(self, spec, gpu=None, kv_dtype: str = "auto") -> str:
        """How the profile run samples for `spec` on `gpu` (None: a CUDA GPU): as its model runner does."""
        from .vllm_profile import dummy_sampler
        from .vllm_runner import model_runner

        rules = self.rules_for(spec, 1, gpu, kv_dtype)
        return dummy_sampler(model_runner(spec, rules, gpu, self.version), rules, gpu)

    def settings(self, context: int, gpu, pp: int = 1, max_num_batched_tokens: Optional[int] = None,
                 max_num_seqs: Optional[int] = None, spec=None, kv_dtype: str = "auto"):
        """The engine's settings on `gpu` with --kv-cache-dtype `kv_dtype` (as asked: V0's where it falls back to V0,
        rules_for); with `spec`, the batches in flight as its model runner runs them (and
        async scheduling as its speculative method leaves it: vllm_runner.async_scheduling), the default batched
        tokens raised to a prefix-LM's largest media item (vllm_media_floor.py), and a pooling model's chunked
        prefill and prefix caching (vllm_pooling_budget.incremental_prefill). Worked out once per engine for these
        arguments (`gpu` and `spec` by identity, kept alive with the answer): a plan asks it for its budget
        (_budget_settings) and again for its start-up figures (capacity), as does every release a remedy plans."""
        key = (context, id(gpu), pp, max_num_batched_tokens, max_num_seqs, id(spec), kv_dtype)
        held = self._settings_of.get(key)
        if held is not None and held[0] is gpu and held[1] is spec:
            return held[2]
        answer = self._settings(context, gpu, pp, max_num_batched_tokens, max_num_seqs, spec, kv_dtype)
        remember(self._settings_of, MAX_SETTINGS, key, (gpu, spec, answer))  # the oldest goes (and what it kept)
        return answer

    def _settings(self, context: int, gpu, pp: int, max_num_batched_tokens: Optional[int],
                  max_num_seqs: Optional[int], spec, kv_dtype: str = "auto"):
        from .vllm_chunked_flag import chunked_prefill, v0_refusal
        from .vllm_level_assert import downgrade_refusal, v1_level_refusal
        from .vllm_media_floor import media_floor
        from .vllm_pooler_config import given
        from .vllm_pooling_budget import incremental_prefill
        from .vllm_runner import async_scheduling, model_runner
        from .vllm_v0_prefix_window import v0_window_refusal

        asked = self.flags.enable_chunked_prefill  # --enable-chunked-prefill as given (vllm_chunked_flag.py)
        rules = self.rules_for(spec, pp, gpu, kv_dtype)
        v1_level_refusal(self.flags, self.version, rules.era != "v0")  # V1's AssertionError; V0 starts
        if spec is None:
            return resolve_settings(context, gpu.name, gpu.memory_bytes, pp, max_num_batched_tokens, max_num_seqs,
                                    self.version, chunked_prefill=asked is not False, chunked_given=asked is not None)
        runner = model_runner(spec, rules, gpu, self.version)
        downgrade_refusal(self.graph_flags(spec, gpu), self.version, runner.pooling,
                          given(spec) is not None)  # PIECEWISE, then assert
        incremental = incremental_prefill(spec, self.version)  # a pooling model's chunked prefill / prefix caching
        chunked, limit = incremental, None
        if rules.batch_defaults in ("v0", "v0.8"):  # V0's own default, for the model and flags (vllm_v0_chunked.py)
            from .vllm_runner import is_rocm
            from .vllm_v0_chunked import v0_chunked_prefill

            chunked = v0_chunked_prefill(context, self.version, spec, rocm=is_rocm(gpu), flags=self.flags,
                                         pooling=runner.pooling)
        v0 = rules.batch_defaults in ("v0", "v0.8")
        chunked = chunked_prefill(chunked, asked, self.version, v0, runner.pooling)
        v0_refusal(spec, chunked, self.version, v0, runner.pooling)  # Jamba's assert, the pooling runner's ValueError
        v0_window_refusal(spec, self.flags.enable_prefix_caching, self.version, v0)  # CacheConfig's NotImplementedError
        settings = resolve_settings(context, gpu.name, gpu.memory_bytes, pp, max_num_batched_tokens, max_num_seqs,
                                    self.version, async_scheduling(spec, rules, runner),
                                    prefix_caching=incremental, v1_runner=runner.name == "V1",
                                    media_floor=media_floor(spec, self.version, self.flags),
                                    chunked_prefill=chunked, rules=rules, multimodal=spec.multimodal,
                                    pooling=runner.pooling, chunked_given=asked is not None)
        if rules.batch_defaults == "v0":  # 0.7.1-0.7.3 turn chunked prefill off for MLA once the batch is picked
            from .vllm_v0_chunked import mla_prompt_limit

            limit = mla_prompt_limit(spec, self.version, context, settings.max_num_batched_tokens)
        return replace(settings, max_num_seqs=hooked_seqs(spec, settings.max_num_seqs, self.version),
                       pooling_runner=runner.pooling, pooler_config=given(spec) is not None,
                       prefix_caching_asked=self.flags.enable_prefix_caching,
                       mamba_block_size=self.flags.mamba_block_size, speculative=self.flags.speculative is not None,
                       prompt_limit=limit)

    def capacity(self, stage_specs: list, *, spec, stages: list, context: int, precision, tp: int, budgets: list,
                 block_size: Optional[int], gpu, pp: int = 1, max_num_seqs: Optional[int] = None,
                 max_num_batched_tokens: Optional[int] = None, measured: Optional[list] = None) -> EngineResult:
        from .vllm_mamba_v0 import v0_slots_refusal
        from .vllm_v1_oracle import v0_data_parallel_refusal
        from .vllm_media_floor import item_refusal

        check_dcp_layout(spec, self.flags.dcp)  # -dcp on a cache kvplan shards by token
        check_pcp_layout(spec, self.flags.pcp)  # -pcp on a dense MLA cache only
        kv_dtype = asked_kv_dtype(precision)  # the oracle's --kv-cache-dtype (vllm_v1_oracle.v0_fallback)
        settings = self.settings(context, gpu, pp, max_num_batched_tokens, max_num_seqs, spec, kv_dtype)
        # a release whose registry lacks the architecture refuses it before any media item (start's first refusal)
        registered = architectures_refusal(registry_names(spec), self.version) is None
        # then, up to 0.10.0, a media flag on a text class (ModelConfig), LoRA's batch for drafts (create_engine_
        # config), a media item past the batched tokens (the front end), LoRA's class or vocabulary (load_model)
        refused_flag = None if not registered else (
            text_only_refusal(spec, self.version, self.flags)
            or self._speculative_lora_refusal(settings, gpu, given_seqs=max_num_seqs is not None)
            or item_refusal(spec, self.version, self.flags, settings, _capability(gpu))
            or self._lora_refusal(spec)
            or v0_slots_refusal(spec, settings.max_num_seqs, self.flags.enforce_eager, self.version)
            or v0_data_parallel_refusal(spec, self.version, pp, self.flags.dp, kv_dtype, _capability(gpu), self.flags)
            or pcp_refusal(spec, self.graph_flags(spec, gpu), pp,
                           attention_backend(spec, precision, self.version, _capability(gpu)), self.version))
        result = start(spec, tp=tp, precision=precision, settings=settings, available=budgets, stages=stages,
                       block_size=block_size, version=self.version, override=self.flags.num_gpu_blocks_override,
                       capability=_capability(gpu), measured=measured, gpu_name=device_name(gpu),
                       flag_refusal=refused_flag, dcp=self.flags.dcp, interleave=self.flags.dcp_interleave,
                       flags=self.flags)
        reason = v0_fallback(spec, self.version, pp, kv_dtype, _capability(gpu), self.flags)
        core = "v0" if reason or self.rules.era == "v0" else "v1"  # as rules_for: V0 to 0.7, or a fallback
        f = replace(result.figures, runner=runner_name(spec, self.version), v0_reason=reason_words(reason) if reason
                    else "", core=core)
        if f.refusal is not None and self.flags.enable_lora:
            asked_auto = getattr(precision, "auto", False)  # auto that a checkpoint resolved: search auto, as asked
            kv_dtype = "auto" if asked_auto else (getattr(precision, "spelling", "") or "auto")
            f = replace(f, refusal=self._lora_off_remedy(spec, f.refusal, kv_dtype, context, block_size, tp, gpu))
        return EngineResult(f, result.max_concurrency, result.limited_by, f.num_gpu_blocks,
                            f.gpu_kv_cache_tokens or 0, result.block_size or f.block_size, result.stage_blocks,
                            fewest_blocks_stage(result.stage_blocks, budgets))

    def _speculative_lora_refusal(self, settings, gpu, given_seqs: bool):
        """With LoRA, a speculative config's drafts past the batched tokens (vllm_lora.speculative_refusal); its
        remedy reckoned from vLLM's default max_num_seqs on `gpu` where --max-num-seqs is not `given_seqs`."""
        if not self.flags.enable_lora:
            return None
        from .vllm_settings import batch_defaults
        from .vllm_lora import speculative_refusal

        default_seqs = None if given_seqs else batch_defaults(gpu.name, gpu.memory_bytes, self.rules.batch_defaults)[1]
        return speculative_refusal(settings, self.flags.enable_lora, self.flags.speculative, default_seqs)

    def _lora_off_remedy(self, spec, refusal, kv_dtype: str, context: int, block_size, tp: int, gpu):
        """`refusal` of a release (the architecture it does not serve) with, as its remedy, the releases that clear it
        once --enable-lora is left out, where LoRA is what every one of them refuses (Falcon: 0.28.0 and older serve
        RWForCausalLM, none with LoRA); the search keeps LoRA on, so finds none, and vLLM's own advice ("use an older
        version") would be wrong with LoRA. Unchanged where LoRA on clears it too, or nothing does."""
        from .figures import Fix
        from .vllm_remedy import FIELD_FLAGS, searched

        if not refusal.configuration or refusal.remedy or searched(refusal) != "engine" or not refusal.options:
            return refusal
        asked = dict(kv_dtype=kv_dtype, context=context, block_size=block_size, tp=tp, gpu=gpu)
        if self.fixes(spec, refusal, **asked):
            return refusal
        plain = VllmEngine(self.version, replace(self.flags, enable_lora=None, lora_ignored=()))
        flag = dict(FIELD_FLAGS)
        ways = [Fix(fix.changes, onward=fix.onward, span=fix.span).words(lambda field: flag.get(field, field))
                for fix in plain.fixes(spec, refusal, **asked)]
        if not ways:
            return refusal
        return replace(refusal, remedy=f"vLLM accepts {', or '.join(ways)} without --enable-lora (the releases that "
                                       f"serve it refuse LoRA for it)",
                       remedy_flags=refusal.remedy_flags + tuple((field, written) for field, written in flag.items())
                       + (("enable_lora", "--enable-lora"),))

    def _lora_refusal(self, spec):
        """With LoRA, this release's refusal of the class or its vocabulary (vllm_lora.lora_refusal); kvplan's own
        limit was met in the budget already (vllm_budget.adapter_slots: exit 2)."""
        if not self.flags.enable_lora:
            return None
        from .vllm_lora import lora_refusal

        return lora_refusal(spec, self.version, self.flags.enable_lora)

    def budget(self, spec, tp: int, gpu, gpu_util: Optional[float], *, gpu_memory: Optional[int] = None, stage=None,
               context: Optional[int] = None, max_num_batched_tokens: Optional[int] = None,
               max_num_seqs: Optional[int] = None, block_size: Optional[int] = None,
               asked_context: Optional[int] = None, kv_dtype: str = "auto", pp: int = 1):
        """`asked_context`: the length asked where --max-model-len auto plans a shorter `context`; `kv_dtype`: the
        --kv-cache-dtype served (0.34 builds its block tables at that cache's block size); `pp`: the stages asked where
        `stage` is None (a pipeline that cannot be laid out, plan.served_budget): the whole model, by their rules."""
        stages = pp if stage is None else stage.stages
        spec, settings = self._budget_settings(spec, gpu, gpu_memory, stages, context, max_num_batched_tokens,
                                               max_num_seqs, kv_dtype)
        util = self.default_gpu_util if gpu_util is None else gpu_util
        rules = self.rules_for(spec, stages, gpu, kv_dtype)
        return vllm_budget(spec, tp, gpu, util, settings, rules, self.version, gpu_memory, stage,
                           self.graph_flags(spec, gpu), block_size, asked_context, kv_dtype)

    def _budget_settings(self, spec, gpu, gpu_memory: Optional[int], pp: int, context: Optional[int],
                         max_num_batched_tokens: Optional[int], max_num_seqs: Optional[int],
                         kv_dtype: str = "auto") -> tuple:
        """(spec as served on `gpu`, the engine's settings) for budget(): the same for every pipeline stage of a
        deployment, so kept per engine (a pp 16 plan asks 16 times, a release remedy's search once per release). Both
        are pure in these arguments and the engine's version, rules and flags (fixed at construction); `spec` is
        keyed by identity and kept alive with its answer, so an id is never reused while its key is held (and so is
        `gpu`: a frozen GPU's hash reads every field, each stage's budget again)."""
        key = (id(spec), id(gpu), gpu_memory, pp, context, max_num_batched_tokens, max_num_seqs, kv_dtype)
        held = self._settings_memo.get(key)
        if held is not None and held[0] is spec and held[2] is gpu:
            return held[1]
        viewed = self.on_gpu(spec, gpu)  # the weights in the dtype vLLM serves there (a T4's float32 Gemma 3)
        length = context or viewed.max_position_embeddings or 8192
        memory_gpu = gpu if gpu_memory is None else _with_memory(gpu, gpu_memory)
        answer = viewed, self.settings(length, memory_gpu, pp, max_num_batched_tokens, max_num_seqs, viewed, kv_dtype)
        remember(self._settings_memo, MAX_SETTINGS, key, (spec, answer, gpu))  # the oldest goes (and what it kept)
        return answer


MAX_SETTINGS = 256

# configuration_refusal's answers within one run: a sweep's rows, and the remedy search's trials of one row, ask the
# same (release, dtype, length, block, tp, GPU) again and again (a 128-row refused sweep: ~11,000 asks of far fewer
# keys); bounded because each answer keeps its spec alive
_REFUSALS: dict = {}
MAX_REFUSALS = 4096


@functools.lru_cache(maxsize=None)
def releases() -> tuple:
    """The releases a remedy tries: the first of every configuration rule's rows and of every flag here
    (vllm_remedy.release_boundaries)."""
    from .vllm_remedy import release_boundaries

    from .vllm_lora import VOCAB_RULES

    from .vllm_cache_flags import MAMBA1_FP32_SINCE, MAMBA_DTYPE_RULES, READS_SSM_SINCE
    from .vllm_pooler_config import BOUNDARIES as POOLER_BOUNDARIES
    from .vllm_runner_flag import BOUNDARIES as RUNNER_BOUNDARIES

    flags = list(FLAG_SINCE.values()) + [since for since, _ in MODELLED_SINCE.values()]
    # --num-gpu-blocks-override's rules too: 0.9.1 ignores it, unlike 0.9.0 and 0.9.2 (vllm_workers.OVERRIDE_RULES),
    # so a run of releases holds over 0.9.1 only where it is planned there
    return release_boundaries(flags + [EPLB_CONFIG_SINCE, DUMMY_OPTIONS_SINCE, MEDIA_FLAGS_DROPPED_SINCE]
                              + [row[0] for row in VOCAB_RULES] + list(RUNNER_BOUNDARIES)
                              + list(POOLER_BOUNDARIES) + [row[0] for row in OVERRIDE_RULES]
                              + [row[0] for row in MAMBA_DTYPE_RULES] + list(READS_SSM_SINCE.values())
                              + [MAMBA1_FP32_SINCE])


def _encoder_only_refusal(spec, version: str):
    """A release that builds `spec` encoder-only (vllm_config_read.refuse_encoder_only: kvplan refuses it, there
    being no cache to size) as a refusal of the release, so that a remedy never names it; its own rule is checked
    before the engine runs (commands/estimate.py), so here only a remedy's other releases meet it."""
    from ..errors import KvplanError
    from .figures import Refusal
    from .vllm_config_read import refuse_encoder_only

    try:
        refuse_encoder_only(spec, version)
    except KvplanError as exc:
        return Refusal(str(exc), None, configuration=True, field="engine")
    return None


def _st_pooling_refusal(spec, version: str):
    """A release that stops on the Sentence Transformers Pooling module's config.json (vllm_pooling.st_pooling_refusal:
    0.11-0.13) as a refusal of the release, so that a remedy never names it; the release asked meets it before the
    engine runs (commands/estimate.py, check/), so here only a remedy's other releases do."""
    from .figures import Refusal
    from .vllm_pooling import st_pooling_refusal

    refused = st_pooling_refusal(spec, version)
    return Refusal(refused, None, configuration=True, field="engine") if refused else None


def _runner_refusal(spec, version: str):
    """A release that refuses the --runner / --convert asked (vllm_runner_flag.runner_refusal) as a refusal of the
    release, so that a remedy never names it; the release asked meets it before the engine runs."""
    from .figures import Refusal
    from .vllm_runner_flag import RUNNER_FLAGS, runner_refusal

    refused = runner_refusal(spec, version)  # its flags as a remedy quoting it names them (vllm_remedy)
    return Refusal(refused, None, configuration=True, field="engine", remedy_flags=RUNNER_FLAGS) if refused else None


def _pooler_config_refusal(spec, version: str):
    """A release that refuses the --pooler-config asked (vllm_pooler_config.pooler_config_refusal) as a refusal of the
    release, so that a remedy never names it."""
    from .figures import Refusal
    from .vllm_pooler_config import pooler_config_refusal

    refused = pooler_config_refusal(spec, version)  # its flag as a remedy quoting it names it (vllm_remedy)
    return Refusal(refused, None, configuration=True, field="engine",
                   remedy_flags=(("pooler_config", "--pooler-config"),)) if refused else None


def _soft_tokens_refusal(spec, engine):
    """A release whose Gemma 4 processor refuses the max_soft_tokens asked (vllm_media_floor.check_soft_tokens, which
    0.19.0 meets with sys.exit(1) and 0.20 on with a ValueError) as a refusal of the release, so that a remedy never
    names it; the user's own release meets the check in capacity (item_refusal), so here only a remedy's other
    releases do. A release whose registry lacks the class refuses the architecture first (configuration_refusal)."""
    from .figures import Refusal
    from .vllm_media_floor import check_soft_tokens

    try:
        check_soft_tokens(spec, engine.version, engine.flags)
    except FieldError as exc:
        return Refusal(str(exc), None, configuration=True, field=exc.field)
    return None


def _release_lora_refusal(spec, engine):
    """vLLM's refusal of --enable-lora for `spec` under `engine`'s release (vllm_lora.lora_refusal: a class without
    LoRA support, a vocabulary past LoRA's limit); for a remedy's other release, kvplan not pricing LoRA there
    (vllm_lora.layout's limit) as a refusal of that release, so that a remedy never names it; or None."""
    config = engine.flags.enable_lora
    if not config:
        return None
    from .figures import Refusal
    from .vllm_lora import layout, lora_refusal

    refused = lora_refusal(spec, engine.version, config)
    if refused is not None:
        return refused
    try:
        layout(spec, engine.version)
    except FieldError as exc:
        return Refusal(str(exc), None, configuration=True, field="engine")
    return None


def _eplb_spelling(spelling: str, version: str) -> None:
    """The redundant experts' flag as `version` spells it (engine/arg_utils.py)."""
    release = parse_version(version)
    if spelling == "eplb_config" and release < EPLB_CONFIG_SINCE:
        instead = "takes num_redundant_experts N" if release >= REDUNDANT_FLAG_SINCE else "has no such flag"
        raise FieldError("eplb_config", f"needs vLLM 0.10.2 or later (vllm=={version} {instead}).",
                         names=("num_redundant_experts",))
    if spelling == "num_redundant_experts" and release < REDUNDANT_FLAG_SINCE:  # EPLB off: FLAG_SINCE said nothing
        raise FieldError("num_redundant_experts", f"needs vLLM 0.9.2 or later (vllm=={version} has no such flag); "
                                                  f"leave it off or pick a later release.")
    if spelling == "num_redundant_experts" and release > REDUNDANT_FLAG_UNTIL:
        raise FieldError("num_redundant_experts", f"was removed in vLLM 0.12 (vllm=={version} takes eplb_config "
                                                  f"'{{\"num_redundant_experts\": N}}').", names=("eplb_config",))


def _capability(gpu) -> tuple:
    """The GPU's CUDA compute capability (catalog.GPU.compute_capability); () when unknown; vllm_sparse.ROCM for an
    AMD GPU (vLLM's ROCm platform picks its own backends)."""
    return ROCM if is_rocm(gpu) else (getattr(gpu, "compute_capability", ()) or ())


def nearest_block_sizes(choices: tuple, asked: int) -> tuple:
    """`choices` nearest `asked` first (both powers of two: by their distance in doublings), the larger on a tie."""
    return tuple(sorted(choices, key=lambda size: (abs(size.bit_length() - asked.bit_length()), -size)))


def _with_memory(gpu, memory: int):
    return replace(gpu, memory_bytes=memory)