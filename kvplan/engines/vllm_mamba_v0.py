"""Which releases run a model with Mamba / linear-attention state on vLLM's V0 engine by default, where kvplan's
rules (V1's hybrid cache: MambaSpec pages beside attention, vllm_mamba_state.py) are not what vLLM does, so kvplan
refuses to plan the release asked for, in one line (v0_state_unmodelled: RefusedInput, exit 2, for vLLM does start
there), and a remedy never names it (v0_state_refusal among the configuration's refusals).

EngineArgs._is_v1_supported_oracle (engine/arg_utils.py), asked as the engine config is created, right after
ModelConfig (the architecture, the length, the dtype and the quantisation are read first):
- 0.8-0.9.1: every class with inner state (HasInnerState: Mamba, Mamba-2, the hybrids, MiniMax's lightning
  attention) is also SupportsV0Only, so `not model_config.is_v1_compatible` falls back to V0, or raises with
  VLLM_USE_V1=1 (0.8.0:1518-1519, 0.9.0:1300-1302, 0.9.1:1354; the classes in model_executor/models/*.py 0.8.0,
  0.9.0 and 0.9.1: bamba.py, falcon_h1.py, granitemoehybrid.py, jamba.py, mamba.py, mamba2.py, minimax_text_01.py,
  nemotron_h.py (0.9.1), plamo2.py, zamba2.py).
- 0.9.2-0.10.1: `model_config.has_inner_state and _warn_or_fallback(feature_name="Mamba")` ("V1 mamba models are
  unoptimized", 0.9.2:1402-1404, 0.10.0:1375-1377, 0.10.1:1428-1430): V0 unless VLLM_USE_V1=1 is set
  (_warn_or_fallback, 0.10.0:1693-1705: "Mamba is experimental on VLLM_USE_V1=1. Falling back to V0 Engine.");
  SupportsV0Only classes (jamba.py and mamba.py to 0.10.0, minimax_text_01.py to 0.10.0, plamo2.py to 0.10.1,
  phi4flash.py) refuse even that.
- 0.10.2: the Mamba fallback is gone (0.10.2:1479-1490 keeps only is_v1_compatible); Phi4FlashForCausalLM stays
  SupportsV0Only (phi4flash.py 0.10.2:598) until V0 is removed with it in 0.11.
kvplan models vLLM's default, VLLM_USE_V1 unset: these releases, like every release up to 0.7 (kvplan's era "v0",
vllm_versions.py), are planned by V0's rules (v0_rules), with the state cache V0 keeps:
- the slots: the model's MambaCacheManager holds one state a slot (v0_slots), allocated in the first forward the
  worker runs, the profile run (worker/worker.py determine_num_available_blocks profile_run under memory_profiling,
  0.9.2:250-263), so the profile's non-KV memory holds it and the KV cache gets what is left (v0_state_term);
- each slot: conv (d_conv - 1 inputs) and temporal states of every Mamba layer on this rank, the shapes V1's pages
  use too (_get_mamba_cache_shape, jamba.py 0.9.2:446-458; V1's MambaStateShapeCalculator), so LinearState.
  state_bytes prices both; the dtypes the model's (lm_head.weight.dtype, jamba.py 0.9.2:430, mamba.py 0.9.2:234,
  mamba2.py 0.9.2:258, bamba.py 0.9.2:497, nemotron_h.py 0.9.2:521) up to 0.10.0, --mamba-cache-dtype /
  --mamba-ssm-cache-dtype in 0.10.1 (get_mamba_state_dtype_from_config, jamba.py 0.10.1.1:549-557; mamba_cache.py
  0.10.1.1:25-50): vllm_mamba_state.mamba_state_bytes;
- the KV block: CacheEngine.get_cache_block_size counts the attention layers only (get_num_layers_by_block_type(
  ..., LayerBlockType.attention): worker/cache_engine.py 0.9.2:121-143, config.py 0.9.2:1267-1320), at the attention
  block (16; no hybrid raise, which is V1's models/config.py HybridAttentionMambaModelConfig): vllm.groups_for;
  an attention-free model gets no block at all (worker.py 0.9.2:268-270: cache_block_size 0 -> 0 blocks; its
  raise_if_cache_size_invalid :560-577 skips the length check);
- concurrency: a request holds a slot, and V0's scheduler runs at most max_num_seqs, V0's default 256 (arg_utils.py
  0.9.2:1567-1569 _set_default_args_v0; 0.6.6:211-213), never past the slots (padded up from it).
Not modelled, refused in one line (V0_UNMODELLED): MiniMax's lightning attention (its own MinimaxCacheManager, float32,
minimax_text_01.py 0.9.2:859), Falcon-H1 and Zamba2 (every layer counted a Mamba layer beside attention in the same
layer: falcon_h1.py 0.9.2:584-590, zamba2.py 0.9.2:928, config.py 0.9.2:1297-1304), Plamo2 and Phi4Flash (their own
layer patterns, not read).
"""

from __future__ import annotations

from typing import Optional
from dataclasses import replace

from .vllm_registry import served_architecture
from .vllm_versions import behaviour, parse_version, release_rule

V0_STATE_RELEASES = ((0, 8), (0, 10, 2))  # [from, before): inner state runs V0 by default (module docstring)
# SupportsV0Only past those releases: the class and the first release without V0 (phi4flash.py 0.10.2:598; the
# class leaves the registry in 0.11: vllm_registry.py RETIRED)
V0_ONLY_CLASSES = {"Phi4FlashForCausalLM": (0, 11)}
V1_STATE_SINCE = "0.10.2"  # the first release that runs inner state on V1 by default


# Architectures whose V0 state kvplan does not model (module docstring): what is not read, in words
V0_UNMODELLED = {
    **dict.fromkeys(("MiniMaxText01ForCausalLM", "MiniMaxVL01ForConditionalGeneration", "MiniMaxForCausalLM",
                     "MiniMaxM1ForCausalLM"), "MiniMax's lightning-attention cache (MinimaxCacheManager)"),
    "FalconH1ForCausalLM": "Falcon-H1's state on every layer beside its attention",
    "Zamba2ForCausalLM": "Zamba2's state on every layer and its shared attention blocks",
    "Plamo2ForCausalLM": "Plamo2's own layer pattern",
    "Phi4FlashForCausalLM": "Phi4Flash's own state cache",
}
V0_DEFAULT_SEQS = 256  # V0's max_num_seqs unless given (arg_utils.py 0.6.6:211-213, 0.9.2:1567-1569)
# How many state slots the cache holds for max_num_seqs n (module docstring), newest first:
# - "manager" (0.7.3-0.10.1): MambaCacheManager, n, padded to a CUDA graph size unless --enforce-eager
#   (vllm_config.pad_for_cudagraph: mamba_cache.py 0.7.3:31-33, 0.9.2:31-33, 0.10.1.1:37-39);
# - "model" (0.6.5-0.7.2): the class's own, padded unless --enforce-eager, which takes 8192 + 2 (jamba.py
#   0.6.5:424-433, 0.7.0:429-438, 0.7.2:430-439);
# - "graph_batch" (0.5.x-0.6.4): _get_graph_batch_size(n) eager or not (jamba.py 0.5.5:832-834, 0.6.4:392-394).
# The padding: the smallest of [1, 2, 4, 8, 16, 24, ...] at least n (config.py 0.9.2:4700-4722 _set_cudagraph_sizes,
# 0.6.6:3199-3209; worker/model_runner.py 0.5.5:1632-1644 _get_graph_batch_size: up to 2 itself, 4, else a multiple
# of 8). Not mirrored: n past 8,192 with graphs (pad_for_cudagraph's table ends there).
SLOT_RULES = (((0, 7, 3), "manager"), ((0, 6, 5), "model"), ((0, 5), "graph_batch"))
EAGER_SLOTS = 8192 + 2


def padded_slots(n: int) -> int:
    """The CUDA graph batch size n is padded to (SLOT_RULES)."""
    return n if n <= 2 else 4 if n <= 4 else -(-n // 8) * 8


def v0_slots(max_num_seqs: int, enforce_eager: bool, version: str) -> int:
    """The state slots V0's Mamba cache holds in vLLM `version` (SLOT_RULES)."""
    rule = release_rule(SLOT_RULES, version, "graph_batch")
    if enforce_eager and rule == "manager":
        return max_num_seqs
    if enforce_eager and rule == "model":
        return EAGER_SLOTS
    return padded_slots(max_num_seqs)


def runs_v0(spec, version: str) -> bool:
    """Whether vLLM `version` serves `spec` on its V0 engine by default for the state its layers keep (module
    docstring); only for releases from 0.8, where kvplan's rules are V1's."""
    release = parse_version(version)
    first, before = V0_STATE_RELEASES
    if release < first:
        return False
    architecture = served_architecture(spec, version)
    if architecture in V0_ONLY_CLASSES:
        return release < V0_ONLY_CLASSES[architecture]
    return bool(spec.linear_layers) and release < before


def keeps_v0_state(spec, version: str) -> bool:
    """Whether vLLM `version` keeps `spec`'s Mamba / linear-attention states in V0's state cache: a release of
    kvplan's era "v0" (<= 0.7) or one that falls back to V0 for them (runs_v0)."""
    if not spec.linear_layers:
        return False
    return runs_v0(spec, version) or behaviour(version).era == "v0"


def v0_unmodelled(spec, version: str) -> Optional[str]:
    """What kvplan does not model of V0's state cache for `spec` in vLLM `version` (V0_UNMODELLED), else None."""
    if not keeps_v0_state(spec, version) and not runs_v0(spec, version):
        return None
    return V0_UNMODELLED.get(served_architecture(spec, version))


def v0_rules(spec, version: str):
    """The rules vLLM `version` plans `spec` by where it falls back to V0 for its states (runs_v0): the release's
    own, but V0's engine (era "v0": attention-only blocks, "# cuda blocks" lines, V0's profile and reserves, V0's
    256 sequences); None elsewhere (the release's rules stand)."""
    if not runs_v0(spec, version):
        return None
    return replace(behaviour(version), era="v0", tokens_rule="blocks", one_log_line=False, null_block_in_check=False,
                   concurrent_batches=False, graphs_subtracted=False, batch_defaults="v0")


def v0_state_bytes(spec, tp: int, version: str, stage=None) -> int:
    """One slot's state on one GPU of `stage` (None: every layer): the conv and temporal states of each Mamba layer
    it holds, in the dtypes vLLM `version` keeps them (module docstring)."""
    from ..model.kinds import LinearState
    from .vllm_mamba_state import mamba_state_bytes

    layers = spec.layers if stage is None else spec.layers[stage.first_layer:stage.end_layer]
    dtypes = mamba_state_bytes(spec, version)
    return sum(layer.state_bytes(tp, *dtypes) for layer in layers if isinstance(layer, LinearState))


def v0_state_term(spec, tp: int, settings, enforce_eager: bool, version: str, stage=None):
    """The BudgetTerm of V0's Mamba state cache, allocated in the profile run's first forward (module docstring),
    or None where vLLM `version` keeps no V0 state for `spec`."""
    from ..plan.budget import BudgetTerm

    if not keeps_v0_state(spec, version):
        return None
    slots = v0_slots(settings.max_num_seqs, enforce_eager, version)
    per_slot = v0_state_bytes(spec, tp, version, stage)
    return BudgetTerm("mamba_cache", slots * per_slot,
                      f"V0's Mamba state cache: {slots} slots (max_num_seqs {settings.max_num_seqs}"
                      f"{', --enforce-eager' if enforce_eager else ', padded to a CUDA graph size'}) x {per_slot:,} B "
                      f"(conv + temporal states of this GPU's Mamba layers), allocated in the profile run")


def v0_state_refusal(spec, version: str):
    """kvplan's refusal of a release that keeps `spec`'s states in V0's state cache where a piece of it is not
    modelled (V0_UNMODELLED), naming the release that runs it on V1 where one does (field engine); None where the
    release is planned (V0 or V1)."""
    from .figures import Refusal

    missing = v0_unmodelled(spec, version)
    if missing is None:
        return None
    architecture = served_architecture(spec, version)
    if architecture in V0_ONLY_CLASSES:
        return Refusal(f"vLLM {version} serves {architecture} on its V0 engine only (SupportsV0Only), whose state "
                       f"cache kvplan does not model ({missing}), and no release serves it on V1.", None,
                       configuration=True, field="engine")
    return Refusal(f"vLLM {version} keeps {architecture}'s Mamba / linear-attention state in its V0 engine's cache, "
                   f"of which kvplan does not model {missing}; vllm=={V1_STATE_SINCE} on runs it on V1.", None,
                   configuration=True, field="engine", options=(f"vllm=={V1_STATE_SINCE}",), onward="newer")


def v0_state_unmodelled(spec, version: str) -> None:
    """Raise RefusedInput (field engine) where --engine asks for a release that keeps `spec`'s states in V0's cache
    where kvplan does not model a piece of it (v0_unmodelled): vLLM starts there, so kvplan plans nothing rather than
    a plan it cannot back or a refusal vLLM never makes. A release whose registry does not list the architecture
    refuses it first (the engine's refusal to say). v0_state_refusal stays in the configuration's refusals, so that
    a remedy never names such a release."""
    from ..errors import RefusedInput
    from .vllm_config_read import architectures_refusal, registry_names

    if version is None or architectures_refusal(registry_names(spec), version):
        return
    missing = v0_unmodelled(spec, version)
    if missing is None:
        return
    architecture = served_architecture(spec, version)
    if architecture in V0_ONLY_CLASSES:
        raise RefusedInput(f"vLLM {version} serves {architecture} on its V0 engine only (SupportsV0Only), whose "
                           f"state cache kvplan does not model ({missing}), and no release serves it on V1; --engine "
                           "takes a release kvplan can plan it on only where one exists.", field="engine")
    raise RefusedInput(f"vLLM {version} keeps {architecture}'s Mamba / linear-attention state in its V0 engine's "
                       f"cache, of which kvplan does not model {missing}; plan it with --engine "
                       f"vllm=={V1_STATE_SINCE} or newer, which run it on V1.", field="engine")
