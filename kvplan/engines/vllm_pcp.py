"""vLLM's prefill context parallelism (--prefill-context-parallel-size / -pcp P): P copies of the TP x PP group, one
engine (one scheduler, one block pool), a prompt's tokens split over the P ranks as it prefills. Paths under vllm/ of
the release named; read in the wheels 0.11.2 (no flag), 0.12.0-0.34.0.

The flag: engine/arg_utils.py 0.12.0:767-769 (0.32.0:1204-1206), default 1 (config/parallel.py 0.12.0:78; a pydantic
Field ge=1 from 0.24: 0.32.0:143). It adds GPUs: world_size = pp x tp x pcp (config/parallel.py 0.12.0:503-507,
0.32.0:945-948; multiproc_executor.py 0.32.0:126 asserts it), so a deployment needs tp x pp x pcp GPUs (x DP).

Where it starts (what each release does with P > 1, in the order vLLM refuses):
- 0.12.0: ValueError "Prefill context parallelism is not fully supported. Please set prefill_context_parallel_size to
  1." (config/parallel.py 0.12.0:315-319).
- 0.13-0.25: no attention impl sets supports_pcp (only the base class's False: attention/backends/abstract.py
  0.13.0:298, v1/attention/backend.py 0.25.0:798), so every start stops as the workers set up the KV cache
  (v1/worker/cp_utils.py 0.13.0:37-42, 0.25.0:40-44): "PCP requires attention impls' support, but the impl ... does
  not support PCP."
- 0.26: MLAAttentionImpl takes it (v1/attention/backend.py 0.26.0:1000), but only Model Runner V2 runs it, and 0.26
  picks V1 for most MoE architectures (use_v2_model_runner, config/vllm.py 0.26.0:550-590), whose runner has no PCP
  path: not modelled (bad input).
- 0.27 on: PCP forces Model Runner V2 (config/vllm.py 0.27.0:583-585, 0.32.0:2958-2959). Up to 0.29 with DP: ValueError
  "PCP does not support data parallelism yet." (config/parallel.py 0.27.0:527-528). A model without MLA: the attention
  selector drops every backend ("PCP not supported", v1/attention/backend.py 0.32.0:341-342; only MLAAttentionImpl
  sets supports_pcp, :1025), and V2's own check says "MRV2 PCP currently supports MLA models only."
  (v1/worker/gpu/pcp_manager.py 0.27.0:136, 0.32.0:135, 0.34.0:168). 0.27-0.29 also refuse PP ("MRV2 PCP does not
  support PP yet.", 0.27.0:138) and full CUDA graphs, which the default cudagraph_mode FULL_AND_PIECEWISE has
  ("MRV2 PCP supports PIECEWISE CUDA graphs only.", 0.27.0:161; --enforce-eager passes); 0.30 takes both.
  LoRA: "MRV2 PCP does not support LoRA yet." (0.32.0:143).
- with -dcp: from 0.26 DCP must be 1, P or TP x P (config/parallel.py 0.32.0:591-603), and from 0.30 PCP + DCP runs
  for sparse MLA only (pcp_manager.py 0.32.0:169, 0.34.0:189), whose caches kvplan does not shard under DCP: kvplan
  plans -pcp with -dcp 1 only (bad input otherwise), and MLA models whose every layer is MLA (check_layout).

What it does to the cache: nothing per GPU. The scheduler's block is block x dcp tokens and a request's pages
cdiv(L, dcp) tokens (v1/core/single_type_kv_cache_manager.py 0.32.0:106-108, v1/kv_cache_interface.py
0.32.0:604-606): PCP does not enter them. "PCP-only execution replicates the KV cache, so each decode request can
have a single PCP owner" (ParallelConfig.pcp_shard_decode_requests, config/parallel.py 0.32.0:627-639): every PCP
rank keeps the whole cache of every request, so blocks, "GPU KV cache size" and "Maximum concurrency" are pcp 1's
(the "Multiplying the GPU KV cache size by the cp_world_size" line went in 0.20.1, before PCP started).

What it does to the budget: each PCP rank holds a whole TP shard of attention, dense layers, embeddings and LM head;
the routed experts flatten over TP x DP x PCP (fused_moe/config.py 0.32.0:1097-1104 flatten_tp_across_dp_and_pcp,
0.27.0:1119, 0.34.0:1149): intermediate / (T x D x P) a rank without EP, ep_size = T x D x P with it
(sharding.moe_layout). The profile run is not split over the ranks: every rank runs the whole dummy batch of
max_num_batched_tokens (profile_run -> _dummy_run(self.max_num_tokens), v1/worker/gpu/model_runner.py 0.27.0:720,
0.29.0:869, 0.32.0:1004; the dummy InputBatch is built at the batch's tokens and only staged in the PCP buffers,
never partitioned: model_runner.py 0.29.0:1617, 0.32.0:1838-1851, pcp_manager.py 0.32.0:686-703
prepare_inputs_to_capture, 0.34.0:723-751, whose moe_is_padding widens the mask to "the rows the MoE routes", P x
the batch), and each MoE layer all-gathers its P ranks' rows (fused_moe/runner/moe_runner.py 0.29.0:815-819,
0.32.0:824-828): the fused-MoE buffers cover P x max_num_batched_tokens rows, and the gathered hidden states are
held beside them (vllm_profile.forward_peak, MoeLayout.gathered), as DP's are.

Speed (plan/speed.py, plan/prefill.py, plan/work.py pcp_exchange), priced from 0.27, where PCP first runs:
- prefill, every release: each chunk splits over the P ranks in DualChunkSwap pieces, 2P of ceil(chunk / 2P), rank r
  taking r and 2P - 1 - r (pcp_manager.py 0.27.0:195-244, 0.29.0:196-230, 0.31.0:235-273, 0.32.0:235-282), each
  layer all-gathering the pieces' new latent KV (v1/attention/ops/pcp.py 0.29.0:24-28, 0.32.0:38-42), every MoE layer
  the ranks' rows, the last hidden states gathered to sample (pcp_manager.py 0.27.0:610, 0.31.0:753, 0.32.0:776);
- decode from 0.32 (OWNER_SINCE): each request on one PCP owner (pcp_shard_decode_requests), a rank its
  ceil(batch / P) requests, their latent KV all-gathered so every rank writes the whole cache (pcp.py 0.32.0:38-42);
- decode in 0.27-0.31 (decodes_replicated): every PCP rank runs every decode request ("decodes are replicated",
  pcp_manager.py 0.27.0:225, 0.29.0:221, 0.31.0:263), reading the whole batch's cache; each rank writes its own copy
  of the new latent KV, so a decode-only step gathers none ("Keep replicated decode writes local and gather
  partitioned prefills", pcp.py 0.27.0:16-22 under model_executor/layers/attention/, 0.29.0:16-22, 0.31.0:21-29); the
  MoE layers still all-gather the P ranks' rows, P copies of each token, through experts split over T x P, and the
  last hidden states are gathered to sample all the same (pcp_manager.py 0.29.0:653-657).
"""

from __future__ import annotations

from typing import Optional

from ..errors import FieldError
from .figures import Refusal
from .vllm_versions import parse_version

PCP_SINCE = (0, 12)  # engine/arg_utils.py 0.12.0:767-769
RUNS_SINCE = (0, 27)  # PCP forces Model Runner V2 (config/vllm.py 0.27.0:583-585)
V2_PCP_RULES_UNTIL = (0, 30)  # 0.27-0.29: no DP, no PP, no full CUDA graphs under PCP
PCP_KINDS = ("mla",)  # the caches kvplan plans under PCP: every layer MLA
# each decode request on one PCP owner from here (config/parallel.py 0.32.0:627-639); before, on every PCP rank
OWNER_SINCE = (0, 32)


def pcp_size(value) -> Optional[int]:
    """vLLM's --prefill-context-parallel-size / -pcp: a whole number 1 or more; None when not given or 1."""
    from .vllm_dcp import context_ranks

    return context_ranks(value, "pcp", "prefill-context-parallel ranks, 1 to 1024 (vLLM's "
                                       "--prefill-context-parallel-size)")


def decodes_replicated(version: str) -> bool:
    """Whether every PCP rank runs every decode request (0.27-0.31, the module docstring); from 0.32 each has one
    owner."""
    return parse_version(version) < OWNER_SINCE


def speed_priced(version: str) -> bool:
    """Whether kvplan prices decode and prefill under -pcp on this release: from 0.27, where PCP first runs."""
    return parse_version(version) >= RUNS_SINCE


def check_flags(flags, version: str) -> None:
    """Bad input on -pcp: a release without the flag, 0.26 (its runner by architecture, not modelled), and what
    kvplan does not plan with it (-dcp above 1, a drafter)."""
    pcp = getattr(flags, "pcp", None)
    if not pcp:
        return
    release = parse_version(version)
    if release < PCP_SINCE:
        raise FieldError("pcp", f"needs vLLM 0.12 or later (vllm=={version} has no such flag); leave it off or "
                                f"pick a later release.")
    if release[:2] == (0, 26):
        raise FieldError("pcp", "is not modelled on vLLM 0.26, which runs it only where the model's architecture "
                                "defaults to Model Runner V2 (0.27 on forces V2 for it); pick 0.27 or later.")
    if flags.dcp:
        raise FieldError("pcp", f"with -dcp {flags.dcp} is not modelled: vLLM runs PCP with DCP above 1 for sparse "
                                f"MLA models only, whose caches kvplan does not shard; leave -dcp at 1.",
                         names=("dcp",))
    if flags.speculative is not None:
        raise FieldError("pcp", "with a speculative config is not modelled (vLLM 0.30+ takes single-module MTP and "
                                "DSpark under PCP only); leave one of them out.", names=("speculative_config",))


def check_layout(spec, pcp: Optional[int]) -> None:
    """Bad input on -pcp: an MLA model with other caches beside (sparse MLA's indexer, DeepSeek-V4's pools); a
    model without MLA is vLLM's refusal (pcp_refusal)."""
    if not pcp:
        return
    kinds = {layer.kind for layer in spec.layers if layer is not None}
    if "mla" in kinds and kinds - set(PCP_KINDS):
        others = ", ".join(sorted(kinds - set(PCP_KINDS)))
        raise FieldError("pcp", f"is modelled for dense MLA caches only; this model also has {others} layers.")


def pcp_refusal(spec, flags, pp: int, backend: str, version: str) -> Optional[Refusal]:
    """vLLM's start refusal of -pcp P > 1 for this model and these flags (the module's list, in vLLM's order);
    None where it starts."""
    pcp = getattr(flags, "pcp", None)
    if not pcp:
        return None
    release = parse_version(version)
    words = _refusal_words(spec, flags, pp, backend, release)
    if words is None:
        return None
    return Refusal(f"No prefill context parallelism here: vLLM {version} refuses it: {words}", None,
                   configuration=True, field="pcp")


def _refusal_words(spec, flags, pp: int, backend: str, release: tuple) -> Optional[str]:
    from .vllm_dcp import IMPL_NAMES

    if release < (0, 13):
        return ("ValueError: Prefill context parallelism is not fully supported. Please set "
                "prefill_context_parallel_size to 1. (config/parallel.py ParallelConfig)")
    if release < RUNS_SINCE:
        impl = IMPL_NAMES.get(backend, backend)
        return (f"its workers stop as they set up the KV cache (v1/worker/cp_utils.py "
                f"check_attention_cp_compatibility): AssertionError: PCP requires attention impls' support, but the "
                f"impl {impl} does not support PCP.")
    early = release < V2_PCP_RULES_UNTIL
    if early and flags.dp:
        return "ValueError: PCP does not support data parallelism yet. (config/parallel.py ParallelConfig)"
    if not any(layer.kind == "mla" for layer in spec.layers if layer is not None):
        return ("only MLA attention supports PCP (MLAAttentionImpl.supports_pcp): the attention selector finds no "
                "backend (\"PCP not supported\"), and Model Runner V2 says NotImplementedError: MRV2 PCP currently "
                "supports MLA models only.")
    if early and pp > 1:
        return "NotImplementedError: MRV2 PCP does not support PP yet. (v1/worker/gpu/pcp_manager.py)"
    if flags.enable_lora:
        return "NotImplementedError: MRV2 PCP does not support LoRA yet. (v1/worker/gpu/pcp_manager.py)"
    if early and not flags.graphs_off and flags.cudagraph_mode != "PIECEWISE":
        return ("NotImplementedError: MRV2 PCP supports PIECEWISE CUDA graphs only. (v1/worker/gpu/pcp_manager.py; "
                "the default cudagraph_mode FULL_AND_PIECEWISE captures full graphs: --enforce-eager, or 0.30+)")
    return None
