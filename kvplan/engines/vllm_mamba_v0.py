"""Which releases run a model with Mamba / linear-attention state on vLLM's V0 engine by default, where V1's hybrid
cache (MambaSpec pages beside attention, vllm_mamba_state.py) is not what vLLM does: kvplan plans them by V0's rules
(vllm_v1_oracle.v0_rules; v0_state_term below), and refuses in one line only the states it does not model
(V0_UNMODELLED: v0_state_unmodelled, RefusedInput, exit 2, for vLLM does start there), which a remedy never names
(v0_state_refusal among the configuration's refusals).

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
vllm_versions.py), are planned by V0's rules (vllm_v1_oracle.v0_rules), with the state cache V0 keeps:
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
- the scheduler (0.8-0.10.1, batch_defaults "v0.8": v0_batched_tokens): _set_default_args_v0 (arg_utils.py
  0.8.0:1606-1660, 0.9.2:1507-1569, 0.10.1.1:1522-1582) leaves chunked prefill off unless max_model_len > 32,768 on
  CUDA without a sliding window, a speculative config, LoRA, a pooling runner, a multimodal model or MLA
  (vllm_v0_chunked.v0_chunked_prefill, V0's one rule, up to 0.7 too); SchedulerConfig.__post_init__ (config.py
  0.9.2:2242-2277) then takes DEFAULT_MAX_NUM_BATCHED_TOKENS (2,048: utils/__init__.py 0.9.2:81, config.py 0.8.0:61)
  with it on, else max(max_model_len, 2,048), raised to 5,120 for a multimodal model
  (MULTIMODAL_MODEL_MAX_NUM_BATCHED_TOKENS: config.py 0.8.0:63, :1682-1687, 0.8.5:70, :1996; utils.py 0.9.0:85,
  config.py :2100-2105: where a pipeline's V0 on 0.8.0-0.9.0 serves them, vllm_v0_pp.py), capped at
  max_num_seqs x max_model_len. V1's GPU tiers never apply.
- the profile run (worker/model_runner.py 0.9.2:1296-1300, 0.8.0:1240-1243, 0.10.1.1:1201-1204 profile_run ->
  _dummy_run): max_num_seqs dummy prompts sharing max_num_batched_tokens (:1375-1376), so the forward covers the
  batched tokens, then the driver worker alone (:1948) samples one row a prompt with top_p 0.99, top_k vocab - 1
  (:1331): the LM head's logits, Sampler.forward's float32 copy (model_executor/layers/sampler.py 0.9.2:281) and
  _apply_top_k_top_p's sort (:398-424, the FlashInfer sampler off unless VLLM_USE_FLASHINFER_SAMPLER: :26-33),
  V1's own sort later took over (vllm_profile.sorting_bytes_per_logit, "sort"); the peak is max(forward, sampler
  with the forward's output held): vllm_profile.profile_peak. The Mamba cache, allocated in that first forward, stays
  under it (v0_state_term). The non-torch reserve: vllm_budget CONSTANTS "v0_non_torch_logged".
- --mamba-cache-dtype / --mamba-ssm-cache-dtype: in 0.10.1's arg_utils.py (:426-427; not 0.10.0's), values auto and
  float32 (config/cache.py 0.10.1.1:26); the V0 classes read them when the cache is built (get_mamba_state_dtype_
  from_config: jamba.py 0.10.1.1:529-557, bamba.py :447-456), but a Mamba-1 mixer (Jamba, Mamba) raises "fp32 state
  for mamba1 is not yet supported" on either float32 (mamba_utils.py 0.10.1.1:27-38; 0.10.2 takes it:
  vllm_cache_flags.mamba1_fp32_refusal).
- CUDA graphs past 8,192 sequences: V0 captures up to the first of [1, 2, 4, 8, ..., 8192] at least max_num_seqs,
  8,192 at most (config.py 0.9.2:4700-4716; 0.7.3:3376, 0.10.1.1 config/__init__.py:3741), and pad_for_cudagraph
  indexes bs_to_padded_graph_size, one entry a size up to that (config.py 0.9.2:4452-4457, :4266-4269), so from
  0.7.3 MambaCacheManager's pad_for_cudagraph(max_num_seqs) raises IndexError in the profile run past 8,192
  (v0_slots_refusal); 0.6.5-0.7.2's class takes max_capture_size (8,192) itself there (jamba.py 0.6.6:425-431).
- pipeline parallelism: each stage's cache holds its own Mamba layers (get_num_layers_by_block_type over the
  stage's layers, config.py 0.9.2:1267-1278) and its attention blocks; the classes' SupportsPP decides as in V1
  (Jamba, Mamba, Bamba, Nemotron-H, Granite 4.0 take it, Mamba2ForCausalLM does not: jamba.py 0.9.2:363, mamba2.py
  0.9.2:200; plan/sharding.NO_PIPELINE). V0's pp virtual engines, each scheduling max_num_seqs over
  num_gpu_blocks // pp (core/scheduler.py 0.9.2:453, worker/cache_engine.py :46), are modelled for models without
  V0 state (vllm_v0_pp.py); not for these, where one set of slots serves every virtual engine: kvplan plans one
  engine's max_num_seqs over the stage's blocks.
Not modelled, refused in one line (V0_UNMODELLED): MiniMax's lightning attention (its own MinimaxCacheManager, float32,
minimax_text_01.py 0.9.2:859), Falcon-H1 and Zamba2 (every layer counted a Mamba layer beside attention in the same
layer: falcon_h1.py 0.9.2:584-590, zamba2.py 0.9.2:928, config.py 0.9.2:1297-1304), Plamo2 and Phi4Flash (their own
layer patterns, not read).
"""

from __future__ import annotations

from typing import Optional

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
# of 8). Past MAX_CAPTURE with graphs (module docstring): "manager" raises (v0_slots_refusal), "model" takes
# MAX_CAPTURE.
SLOT_RULES = (((0, 7, 3), "manager"), ((0, 6, 5), "model"), ((0, 5), "graph_batch"))
EAGER_SLOTS = 8192 + 2
MAX_CAPTURE = 8192  # V0's largest CUDA graph batch: [1, 2, 4] + [8 * i for i in range(1, 1025)] (config.py 0.9.2:4700)


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
    if rule == "model" and max_num_seqs > MAX_CAPTURE:
        return MAX_CAPTURE
    return padded_slots(max_num_seqs)


def v0_slots_refusal(spec, max_num_seqs: int, enforce_eager: bool, version: str):
    """vLLM `version`'s IndexError building V0's Mamba cache in the profile run where max_num_seqs is past the
    largest CUDA graph batch (module docstring), as a start refusal whatever the memory; None elsewhere."""
    from .figures import Refusal

    if enforce_eager or max_num_seqs <= MAX_CAPTURE or not keeps_v0_state(spec, version) or \
            release_rule(SLOT_RULES, version, "graph_batch") != "manager":
        return None
    return Refusal(f"IndexError: list index out of range (MambaCacheManager: pad_for_cudagraph({max_num_seqs}) past "
                   f"V0's largest CUDA graph batch, {MAX_CAPTURE}).", None, configuration=True, field="max_num_seqs",
                   headline=f"V0's Mamba cache pads max_num_seqs to a CUDA graph batch, {MAX_CAPTURE:,} at most",
                   remedy=f"--max-num-seqs {MAX_CAPTURE} or less, or --enforce-eager")


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


V0_MULTIMODAL_TOKENS = 5120  # SchedulerConfig's floor for a multimodal model (config.py 0.8.0:63, utils.py 0.9.0:85)
V0_CHUNKED_TOKENS = 2048  # DEFAULT_MAX_NUM_BATCHED_TOKENS (utils/__init__.py 0.9.2:81, 0.10.1.1:86; config.py 0.8.0:61)


def v0_batched_tokens(max_model_len: int, chunked_prefill: bool, multimodal: bool = False) -> int:
    """SchedulerConfig's max_num_batched_tokens for V0 before the max_num_seqs x max_model_len cap (module
    docstring)."""
    tokens = V0_CHUNKED_TOKENS if chunked_prefill else max(max_model_len, V0_CHUNKED_TOKENS)
    return max(tokens, V0_MULTIMODAL_TOKENS) if multimodal else tokens


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
