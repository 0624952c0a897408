"""vLLM's "Available KV cache memory" of one GPU, term by term (vllm/v1/worker/gpu_worker.py
determine_available_memory and vllm/utils/mem_utils.py memory_profiling in 0.32.0):

    available = requested - weights - profile peak - non-torch memory - CUDA graphs (0.20+)

- requested: ceil(total_memory x gpu_memory_utilization) (v1/worker/utils.py request_memory; V0: no ceil).
- weights as loaded, per GPU: this pipeline stage's share of the checkpoint (embeddings on the first stage,
  the LM head, a copy of a tied embedding, on the last) over tp, but for the tensors every rank holds whole
  (norms, MoE routers as ReplicatedLinear, MLA's q_a / kv_a with disable_tp: plan/sharding.py). Quantised
  checkpoints keep their stored format for the linear layers; embeddings, LM head, norms, routers (and gpt-oss
  attention, per its modules_to_not_convert) stay bf16. MXFP4 experts are padded to the tile of the MoE kernel
  they run on, which vllm_mxfp4.py picks by release and GPU: Marlin (hidden to 256, intermediate to 128), OAI
  Triton (intermediate to 64: Hopper from 0.12), FlashInfer TRT-LLM (SM10x; hidden to 256, intermediate to 256 up
  to 0.26, 128 from 0.27) [A19: 65.97 GiB logged for gpt-oss-120b on an H100 under 0.10.1's Marlin, 65.90 here];
  DeepSeek-V4's by another list (TRT-LLM on SM10x, DeepGEMM on SM12x from 0.24, Humming on Hopper from 0.32, Marlin
  elsewhere); each bias along its one dimension, in float32 under OAI Triton and TRT-LLM (mxfp4_expert_bytes).
- --enable-lora (vllm_lora.py): the LoRA manager's adapter slots, built in load_model (so inside vLLM's "Model
  loading took"), a line of their own after the weights.
- --enable-eplb (vllm_eplb.py): EplbState's buffers at load in the weights; the profile run's EPLB step (its
  all-gather reservation) beside the forward in the profile peak.
- sparse attention's top-k index buffers (DeepSeek-V3.2; DeepSeek-V4's one shared buffer), allocated while the
  model is built and so measured with the weights: sparse_index_buffers; before 0.24 the lightning indexers vLLM
  builds on GLM-5.2's layers that share one (vllm_index_share.shared_indexer_weights); the workspace FLASHMLA_SPARSE
  reserves as its layers are built (flashmla_sparse_reservation), which may already hold the profile run's fused-MoE
  buffers and K gather. DeepSeek-V4's prefill gather workspace, reserved in the profile run, joins the profile peak
  past the fused-MoE workspace it shares and stays allocated: v4_workspace_beyond_moe; so do DeepSeek-V3.2's and
  GLM-5.x's indexer gather past the fused-MoE workspace, and every indexer's dummy logits join the forward
  (indexer_buffers); all at the length the model is built with, which --max-model-len auto shortens only after.
- a pooling model (vllm_pooling_budget.py): no LM head, a pooler pass for the sampler's, none of V2's sampler
  state.
- profile peak (vllm_profile.py): a multimodal model's vision tower over a batch of dummy images, the dummy
  forward over max_num_batched_tokens (chunked prefill) and, on the last stage, the sampler over min(max_num_seqs,
  max_num_batched_tokens) dummy requests as the model runner samples (gpu_model_runner.py profile_run). V0
  profiled max(max_model_len, 2048) tokens when chunked prefill was off (max_model_len <= 32K) [A01, A02].
- non-torch memory: what CUDA allocates outside torch after the baseline snapshot (cuBLAS and attention
  workspaces; V0's baseline also preceded the CUDA context and NCCL).
- CUDA graphs: 0.20+ subtracts the model runner's estimate of graph capture (VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS),
  which is 0 for Model Runner V2 before 0.29 and on ROCm (vllm_runner.py); earlier releases sized the cache first
  and captured graphs after. The term names the graphs that estimate captures (vllm_graphs.py: counts per release,
  --max-cudagraph-capture-size / --cudagraph-capture-sizes); its bytes stay CONSTANTS "cuda_graphs".

Constants and the public start-up logs (../shared/groundtruth/vllm-startup-logs.yaml) they were fitted on are
in CONSTANTS; benchmarks/engine_budget_calibration.py scores every other case with them.
"""

from __future__ import annotations

import math
from typing import Optional

from ..errors import FieldError
from ..memo import per_object, remember
from ..model.kinds import MLALatent
from ..model.params import quantized_bytes
from ..model.precision import DTYPE_BYTES
from ..model.vision import UNCOUNTED_TOWER
from ..plan.budget import NCCL_BYTES, NCCL_SOURCE, Budget, BudgetTerm, MeasuredSizing
from ..plan.sharding import layer_share, shard, stage_weights
from .figures import format_gib
from .vllm_gdn_workspace import gdn_checkpoint_workspace
from .vllm_index_share import shared_indexer_weights
from .vllm_indexer_profile import (VIEWS_RELEASED_SINCE, flashmla_reservation, gather_bytes, indexer_profile,
                                   prefill_buffer_keys, profile_allocation, workspace_views)
from .vllm_mamba_v0 import v0_state_term
from .vllm_graphs_off import ENFORCE_EAGER, core_flags, graphs_off_cause, v0_keeps_graphs, v0_note
from .vllm_breakable import graph_words
from .vllm_mxfp4 import kernel as mxfp4_kernel
from .vllm_mxfp4_online import applies as online_applies, linear_padding as online_linear_padding
from .vllm_profile import (FLASHINFER_SAMPLER_BYTES, moe_workspace, persistent_after_profile, profile_peak,
                           tower_data_parallel)
from .vllm_specs import GDN_FLAVOR, PREFILL_CHECKPOINTS
from .vllm_pooling_budget import pooling_runner, without_lm_head
from .vllm_registry import served_architecture
from .vllm_runner import Runner, cuda_capability, is_rocm, model_runner
from .vllm_shared_kv import shared_kv_projections
from .vllm_v4_gpu import V4_SM120_WORKSPACE, v4_flashinfer_sm120
from .vllm_dcp import replicated_query_weights
from . import EngineFlags
from .vllm_versions import PINNED, Behaviour, behaviour, parse_version, release_rule

GiB = 2**30

# name: (value, fitted on / derived from)
CONSTANTS = {
    "v0_non_torch_small_gpu": (int(0.225 * GiB), "A13 (0.25 GiB) and A25 (0.20 GiB) logged non_torch_memory, "
                                                 "24 GB cards"),
    "v0_non_torch": (int(2.17 * GiB), "fitted on A11 (Llama-3-8B, H100, TP 1: 71.29 - 14.96 - 53.29 less this "
                                      "model's 0.88 GiB forward peak; the log says non_torch 1.79 + peak 1.26)"),
    # 0.8-0.10.1 falling back to V0 for Mamba state (vllm_mamba_v0.py) reuse these V0 figures, none of them fitted on
    # a 0.8-0.10.1 log: A11's logged non_torch (v0_non_torch_logged) in place of v0_non_torch, whose fit absorbed
    # the V0 sampler pass that their profile prices (vllm_profile.v0_fallback_peak: Llama-3-8B's 256 rows x 128,256
    # logits x 38 B + the held output, 1.23 GiB, against A11's logged activation peak of 1.26 GiB at TP 1 and 2);
    # v0_non_torch_small_gpu and v0_nccl as they are.
    "v0_non_torch_logged": (int(1.79 * GiB), "A11's logged non_torch_memory (Llama-3-8B, H100, TP 1, a V0 worker of "
                                             "Dec 2024), not fitted on 0.8-0.10.1"),
    "v0_nccl": (int(2.18 * GiB), "fitted on A11's TP 2 run (non_torch 3.58 vs 1.79 GiB at TP 1)"),
    "v1_non_torch": (GiB // 2, "assumed: V1 snapshots its baseline after the CUDA context and NCCL exist "
                               "(gpu_worker.py init_device), leaving cuBLAS/attention workspaces"),
    "v1_sampler_bytes_per_logit": FLASHINFER_SAMPLER_BYTES,
    "cuda_context": (int(617.6 * 2**20), "measured: the CUDA context alone (torch.zeros(1)) of verify's own process on "
                                         "an H200 (NVML; torch 2.11, CUDA 13; benchmarks/RESULTS.md), held before "
                                         "vLLM 0.34's init snapshot; the cuBLAS / cuBLASLt handles and workspaces "
                                         "0.34 also creates before it (gpu_worker.py:534-535) are not in it"),
    "cuda_graphs": (int(0.705 * GiB), "0.705 GiB whatever the count: the median of vLLM's public estimates "
                                      "G01-G06 and G09-G10 (tests/data/vllm_graph_estimates.yaml: 0.17-2.22 GiB, "
                                      "118.65 on GB300), most without the settings behind them; leaving one out, "
                                      "the median of the others misses by 0.63 GiB (median) where the 1.25 GiB "
                                      "kvplan assumed before session 67 misses by 0.81"),
    # Session 68's figures (G11-G35): a line in the graphs captured (0.117 + 0.00771 GiB a graph) beats this median
    # left out, one in max_num_batched_tokens does not (tests/test_vllm_graph_estimate.py). Not applied yet: 17 of
    # the 25 figures behind it have no thread to cite, at vLLM's default grid it moves the term by +0.07 to +0.2 GiB
    # where verify measured the budget within 3% on all nine of issue 13's H100 plans at this median (RESULTS.md,
    # session 67), and its per-graph cost is a mean over models whose own costs differ 10-fold.
}
EXTENSIBLE_MARGIN_FRACTION = 0.75  # v1/worker/extensible_kv_cache.py:65 KV_CACHE_MARGIN_FRACTION (0.34)
EXTENSIBLE_GRANULE = 2 << 20  # utils/extensible_tensor.py _MIN_GRANULARITY: CUDA's VMM granularity, floored at 2 MiB
SMALL_GPU = 32 * GiB  # below: consumer cards, whose V0 non-torch memory was ~0.2-0.35 GiB [A01, A13, A25]


def _value(name: str) -> int:
    return CONSTANTS[name][0]


def mxfp4_padding(spec, tp: int, kernel) -> float:
    """Bytes of padded MXFP4 expert matrices over stored bytes: the tile of the kernel they run on
    (vllm_mxfp4.kernel; `tp`: the experts' own TP degree)."""
    hidden, inter = spec.hidden_size, -(-spec.expert_intermediate_size // tp)
    padded = kernel.padded(hidden, inter)
    return padded[0] * padded[1] / (hidden * inter)


def mxfp4_expert_bytes(spec, experts: list, stored: float, tp: int, kernel) -> float:
    """Bytes a rank loads of the MXFP4 experts of which it stores `stored` as kvplan shares them out (every tensor
    over `tp`, the experts' TP degree): the matrices padded to the kernel's tile (mxfp4_padding); the biases (the
    group's blend of 4.25-bit matrices and model-dtype biases: gpt-oss's w13_bias [E, 2 I], w2_bias [E, K]) each
    padded along its one dimension, w2_bias whole on every rank, in float32 where the kernel converts them after
    loading (OAI Triton, TRT-LLM: vllm_mxfp4 module docstring), which load_model's memory profiler counts."""
    width, element = DTYPE_BYTES[spec.dtype], quantized_bytes("mxfp4", {}, 1, 1)
    params, total = sum(g.parameters for g in experts), sum(g.bytes for g in experts)
    biases = max(0.0, (total - params * element) / (width - element)) * width  # of `total`, the biases' bytes
    matrices = stored * (1 - biases / total) * mxfp4_padding(spec, tp, kernel)
    if not biases:
        return matrices
    hidden, full = spec.hidden_size, spec.expert_intermediate_size
    inter = -(-full // tp)
    padded_hidden, padded_inter = kernel.padded(hidden, inter)
    share = stored * biases / total / (2 * full + hidden)  # a bias element's bytes on this rank, split over tp
    loaded = share * (2 * full * padded_inter / inter + hidden * tp * padded_hidden / hidden)
    return matrices + loaded * (4 / width if kernel.backend.fp32_biases else 1)


def loaded_weights(spec, tp: int, stage, mxfp4=None, moe=None, head: bool = True) -> tuple:
    """`mxfp4` (vllm_mxfp4.Mxfp4Kernel): the kernel the MXFP4 experts run on, whose tile they are padded to; None
    for a model without them. `moe` (plan/sharding.py MoeLayout): the routed experts as --data-parallel-size /
    --enable-expert-parallel lay them out; None or the default: split over tp as the rest. `head`: whether the last
    stage builds an LM head (a tied one loads the embedding again; none for a pooling model)."""
    weights = stage_weights(spec, tp, stage, moe, head)
    split = f"split over {tp} GPU(s)"
    if moe is not None and not moe.default:
        split += f", {moe.describe()}"
    # only routed experts are padded: Mxfp4Config gives linear layers UnquantizedLinearMethod, RoutedExperts an MoE
    # method whose maybe_roundup_sizes alone rounds up (quantization/mxfp4.py 0.32.0:91-107, :183-198, :607-625), so
    # a dense model under -q mxfp4 (its "experts" group empty) loads as stored, with no expert width to pad
    experts = [g for g in spec.params if g.name == "experts" and g.stored == "mxfp4" and g.parameters]
    if not experts or mxfp4 is None:
        return weights, (f"{spec.weights.source}; {spec.weights.dtype}, {split}"
                         + (f"; {UNCOUNTED_TOWER}" if spec.tower_uncounted else ""))
    # the routed experts' checkpoint bytes on this GPU, as stage_weights shares them: this stage's layers over the
    # experts' own TP degree (moe.share under DP / EP), never among what every rank holds whole
    fraction = sum(g.bytes for g in experts) / sum(g.bytes for g in spec.params)
    layers = layer_share(spec, stage)
    stored = fraction * spec.resident_weight_bytes * layers * (1 / tp if moe is None or moe.default else moe.share)
    moe_tp = moe.moe_tp if moe is not None else tp
    factor = mxfp4_padding(spec, moe_tp, mxfp4)
    loaded = mxfp4_expert_bytes(spec, experts, stored, moe_tp, mxfp4)
    attention = next((g.stored for g in spec.params if g.name == "attention"), "bf16")
    rest = "attention/embeddings/LM head bf16" if attention == "bf16" else \
        f"attention {attention}, embeddings/LM head bf16"  # DeepSeek-V4: fp8 attention
    biases = ", their biases in float32" if mxfp4.backend.fp32_biases and loaded > stored * factor else ""
    return int(weights - stored + loaded), (f"{spec.weights.source}; MXFP4 experts on {mxfp4.name}, padded "
                                            f"x{factor:.4f} to its tile ({mxfp4.backend.tile_words}){biases}, {rest}")


TOWERLESS_SINCE = (0, 15)  # models/interfaces.py _mark_tower_model, 0.15.0:217-256 (0.14.1 has none): no tower for a
# limit of 0


def without_towers(spec, tp: int, weights: int, source: str, why: str) -> tuple:
    """--language-model-only or an image limit of 0 (0.15 on): the model's tower components (vision tower,
    projector) are not built (model_executor/models/interfaces.py _mark_tower_model); every pipeline stage holds
    them otherwise, sharded over tp as the rest (kvplan/plan/sharding.py stage_weights)."""
    estimated = sum(g.bytes for g in spec.params)
    tower = sum(g.bytes for g in spec.params if g.name == "vision")
    if not tower or not estimated:
        return weights, source + "; no vision tower counted"
    share = -(-spec.resident_weight_bytes * tower // estimated // tp)
    return weights - share, source + f"; without the vision tower ({format_gib(share)} GiB, {why})"


def whole_towers(spec, tp: int, weights: int, source: str) -> tuple:
    """--mm-encoder-tp-mode data where the architecture supports it (vllm_profile.ENCODER_TP_DATA): every TP rank
    holds the whole tower and projector (built with disable_tp), not a 1/tp share of them."""
    estimated = sum(g.bytes for g in spec.params)
    tower = sum(g.bytes for g in spec.params if g.name == "vision")
    if not tower or not estimated or tp == 1:
        return weights, source
    whole = spec.resident_weight_bytes * tower // estimated
    return weights + whole - -(-whole // tp), (source + f"; the vision tower whole on every rank ({format_gib(whole)} "
                                                         f"GiB, --mm-encoder-tp-mode data)")


def offloaded_weights(spec, tp: int, stage, weights: int, source: str, gib: float, runner: Runner) -> tuple:
    """--cpu-offload-gb: vLLM's UVA offloader (model_executor/offloader/uva.py, models/utils.py before) moves the
    decoder layers' parameters (make_layers wraps them; not the embeddings or the LM head) to pinned CPU memory one
    tensor at a time until `gib` GiB are off the GPU: at least that much, at most one tensor more, never more than
    the layers hold. Model Runner V2 installs the offloader only from 0.28 (before, the flag did nothing:
    vllm#51396)."""
    if not runner.offloads:
        return weights, source + f"; --cpu-offload-gb {gib:g} does nothing on {runner.name} before 0.28 (vllm#51396)"
    estimated = sum(g.bytes for g in spec.params)
    layers = sum(g.bytes for g in spec.params if g.name not in ("embed", "lm_head", "vision"))
    offloadable = int(spec.resident_weight_bytes * layers * layer_share(spec, stage) / estimated / tp) \
        if estimated else 0
    moved = min(int(gib * GiB), offloadable)
    return weights - moved, source + (f"; {format_gib(moved)} GiB of the decoder layers' weights in CPU memory "
                                      f"(--cpu-offload-gb; decode times do not count reading them over the host link)")


def with_drafter(spec, tp: int, settings, rules: Behaviour, weights: int, weights_source: str, peak: int,
                 peak_source: str) -> tuple:
    """--speculative-config (vllm_speculative.py): the drafter's weights on this rank, and its pass after the
    target's in the profile run."""
    from .vllm_speculative import FIELD, draft_pass, draft_weights

    drafter = spec.draft
    if not drafter.weighs:
        return weights, weights_source + f"; {drafter.describe}", peak, peak_source
    if drafter.model is not None:  # DraftModelProposer._raise_if_draft_tp_mismatch; its heads split as the target's
        if drafter.whole and drafter.config.draft_tp not in (None, tp):
            raise FieldError(FIELD, f"draft_tensor_parallel_size {drafter.config.draft_tp} differs from the "
                                    f"tensor-parallel size {tp}: vLLM requires them equal.")
        errors = shard(drafter.model, tp).errors
        if errors:
            raise FieldError(FIELD, f"draft model {drafter.model.name} cannot run at tp {tp}: {errors[0]}")
    extra = draft_weights(drafter, tp)
    drafted = draft_pass(spec, tp, settings.max_num_batched_tokens, rules, peak)
    return (weights + extra, weights_source + f"; + {format_gib(extra)} GiB: {drafter.describe}",
            drafted, f"{peak_source}; with the drafter's pass after it {format_gib(drafted)} GiB (the target's "
                     f"hidden states held{'' if drafter.model else ', its 2h input; MoE workspace shared'})")


def with_eplb(spec, layout, config, stage, weights: int, weights_source: str, peak: int, peak_source: str) -> tuple:
    """--enable-eplb: EplbState.add_model's buffers join the weights (built inside load_model's memory profiler);
    the profile run's EPLB step, after the forward, peaks on its own (vllm_eplb.py)."""
    from .vllm_eplb import describe, reservation_bytes, state_bytes

    state, reserved = state_bytes(spec, layout, config, stage), reservation_bytes(spec, layout, config, stage)
    weights_source += (f"; {describe(config, layout)}: + {format_gib(state)} GiB EplbState at load (one layer's "
                       f"experts again, expert maps, load window)")
    step = (f"EPLB's profile step {format_gib(reserved)} GiB (one layer's experts again, NCCL all-gather of "
            f"{layout.ep} x its largest tensor)" if reserved else "EPLB's profile step: none with NIXL")
    inner = peak_source[4:-1] if peak_source.startswith("max(") and peak_source.endswith(")") else peak_source
    return weights + state, weights_source, max(peak, reserved), f"max({inner}; {step})"


def adapter_slots(spec, tp: int, stage, settings, flags: EngineFlags, version: str) -> Optional[BudgetTerm]:
    """--enable-lora's slots and punica tensors on this GPU (vllm_lora.py), a term of their own; None when off, or
    where vLLM refuses LoRA for this model (vllm_lora.lora_refusal: the plan carries the refusal, nothing is built).
    vLLM builds them in load_model, so its "Model loading took" figure holds them with the weights."""
    if not flags.enable_lora:
        return None
    from .vllm_lora import lora_bytes, lora_refusal

    if lora_refusal(spec, version, flags.enable_lora) is not None:
        return None

    return BudgetTerm("lora", *lora_bytes(spec, tp, stage, settings, flags.enable_lora, version))


def _lora_graphs(flags: EngineFlags, lora: Optional[BudgetTerm]) -> str:
    """What the graph term's source adds where LoRA's slots are built (`lora`, adapter_slots: None where vLLM refuses
    LoRA) and graphs captured (not --enforce-eager): its second capture of every size, not modelled."""
    if lora is None or flags.graphs_off:
        return ""
    from .vllm_lora import GRAPHS_NOTE

    return f"; {GRAPHS_NOTE}"


INDEX_BYTES = 4  # int32 token indices
# What a sparse-attention model allocates for its top-k indices beside the shared buffer, by the first release of
# each rule (newest first); the shared max_num_batched_tokens x index_topk int32 buffer (and one per MTP module)
# is in every release from 0.11.0
INDEX_GROUP_RULES = (
    ((0, 31), "groups", "0.31.0 v1/attention/backends/mla/index_group.py:366-377 SparseMLAIndexGroupBuilder"
                        ".register_layer: (rows + 1) x index_topk indices and rows + 1 counts a group; so to 0.32.0"),
    ((0, 30), "groups+ids", "0.30.0 v1/attention/backends/mla/index_group.py:466-483: as 0.31, and request_ids, "
                            "an int32 arange of rows a group"),
    ((0, 11), "shared", "0.11.0 model_executor/models/deepseek_v2.py:1118 DeepseekV2Model (0.29.0: models/"
                        "deepseek_v32/nvidia/model.py:185): the shared buffer only, no index groups"),
)


def index_group_rule(version: str) -> str:
    """INDEX_GROUP_RULES' rule for vLLM `version`."""
    return release_rule(INDEX_GROUP_RULES, version, "shared")


def index_group_leaders(spec) -> list:
    """Whether each decoder layer's sparse latent runs its own indexer (drafter layers left out)."""
    latents = [layer for layer in spec.layers if getattr(layer, "sparse", False)]
    return [layer.leads_index_group for layer in latents[:spec.num_hidden_layers]]


def index_groups(spec, stage=None) -> int:
    """SparseMLAIndexGroups one rank builds (v1/attention/backends/mla/index_group.py SparseMLAIndexGroupBuilder
    .register_layer): one per layer that runs an indexer, and one for a stage's first layer when it reuses a
    top-k instead (the builder has no group yet)."""
    leaders = index_group_leaders(spec)
    first, end = (stage.first_layer, stage.end_layer) if stage is not None else (0, len(leaders))
    mine = leaders[first:end]
    return sum(mine) + (0 if not mine or mine[0] else 1)


def sparse_index_buffers(spec, settings, stage=None, version: str = PINNED) -> int:
    """Bytes of the top-k index buffers a sparse-attention model allocates when built, which vLLM counts in its
    weights term (v1/worker/gpu_model_runner.py load_model measures the model's construction): the shared
    topk_indices_buffer, max_num_batched_tokens x index_topk int32 (models/deepseek_v32/nvidia/model.py
    DeepseekV32Model), and for each index group (index_groups) a physical copy and a count of (max decode rows
    + 1) rows, max decode rows = min(max_num_batched_tokens, max_num_seqs x (1 + draft tokens))
    (v1/attention/backends/mla/index_group.py get_sparse_mla_index_group_max_rows). Each MTP module, built on
    the last stage, has its own topk_indices_buffer and one group (models/deepseek_v32/nvidia/mtp.py
    DeepseekV32MultiTokenPredictorLayer). DeepSeek-V4 (models/deepseek_v4/nvidia/model.py DeepseekV4Model) has the
    shared buffer only: its indexers (kind v4_indexer) register no index group. 0 for models without sparse
    attention. Releases before 0.30 have no index groups, 0.30 a request-id row more a group (INDEX_GROUP_RULES)."""
    topk = per_object(_INDEX_TOPK, MAX_INDEX_TOPK, spec.layers,  # every stage's budget of every release planned
                      lambda layers: max((getattr(layer, "index_topk", 0) for layer in layers), default=0))
    if not topk:
        return 0
    drafts = spec.draft.config.num_speculative_tokens if spec.draft is not None else 0
    shared = 1 + (spec.draft.modules if spec.draft is not None else 0)
    rows = min(settings.max_num_batched_tokens, settings.max_num_seqs * (1 + drafts)) + 1
    rule = index_group_rule(version)
    shared, group = settings.max_num_batched_tokens * topk, rows * (topk + 1)
    group = 0 if rule == "shared" else group + (rows - 1 if rule == "groups+ids" else 0)
    last = stage is None or stage.end_layer == spec.num_hidden_layers
    modules = spec.draft.modules if spec.draft is not None and last else 0
    return INDEX_BYTES * (shared + index_groups(spec, stage) * group + modules * (shared + group))


_INDEX_TOPK: dict = {}
MAX_INDEX_TOPK = 256


def mla_dequantized_copies(spec, tp: int, stage=None) -> int:
    """Bytes of the 16-bit copies of a quantised kv_b_proj that each MLA layer adds after loading, which the weights
    term measures (load_model runs process_weights_after_loading): the absorbed decode multiplies by kv_b_proj's
    key and value halves, W_UK_T and W_UV, taken from get_and_maybe_dequant_weights in the activation dtype
    (model_executor/layers/attention/mla_attention.py split_kv_b_proj, MLAAttention.process_weights_after_loading;
    v1/attention/backends/mla/common.py in 0.8-0.10). A 16-bit kv_b_proj comes back as itself, so the halves are
    views of it and cost nothing; a quantised one (fp8 DeepSeek-V3 / R1 / V3.2, Kimi-K2) is dequantised into a new
    tensor of the rank's heads, kept beside the quantised weight, which prefill still uses. Drafter layers are left
    to the drafter's term."""
    attention = next((g for g in spec.params if g.name == "attention"), None)
    if not spec.mla_up_elements or attention is None or attention.stored in DTYPE_BYTES:
        return 0
    drafted = len(spec.draft.layers) if spec.draft is not None else 0
    latents = sum(isinstance(layer, MLALatent) for layer in spec.layers[:len(spec.layers) - drafted])
    if stage is not None and stage.stages > 1:
        latents = latents * stage.layers // spec.num_hidden_layers
    return latents * (spec.mla_up_elements // tp) * DTYPE_BYTES[spec.dtype]


# The multimodal Gemma 4 wrappers (gemma4_mm.py, and gemma4_unified.py's subclass) keep a per-layer-input buffer, and
# so does Gemma 3n's (gemma3n_mm.py:636-642, the same shape): the wrapper class vLLM serves (served_architecture, the
# top-level name; gemma4_mm.py 0.32.0:1143-1156 in its __init__), whatever class a nested text_config names
PER_LAYER_INPUT_WRAPPERS = ("Gemma4ForConditionalGeneration", "Gemma4UnifiedForConditionalGeneration",
                            "Gemma3nForConditionalGeneration")


def per_layer_input_buffer(spec, settings) -> int:
    """Bytes of the per-layer-input buffer Gemma 4's multimodal wrapper allocates when built, for CUDA graphs
    (model_executor/models/gemma4_mm.py Gemma4ForConditionalGeneration.__init__: zeros of max_num_batched_tokens x
    num_hidden_layers x hidden_size_per_layer_input in the model dtype), which the weights term measures. 0 without
    per-layer inputs or for Gemma4ForCausalLM."""
    if not spec.per_layer_input or served_architecture(spec) not in PER_LAYER_INPUT_WRAPPERS:
        return 0
    return settings.max_num_batched_tokens * spec.num_hidden_layers * spec.per_layer_input * DTYPE_BYTES[spec.dtype]


# FlashMLA's dummy run (the profile run has no attention metadata) reserves the gather workspace alone up to 0.26
# (model_executor/layers/deepseek_v4_attention.py 0.20.0:391-407; models/deepseek_v4/nvidia/flashmla.py 0.22.0
# :150-165, 0.26.0 :85-102), and beside it the int32 top-k indices and lengths from 0.27 (flashmla.py 0.27.0:99-106,
# 0.32.0 :117-129), as its prefill path takes them from the workspace too
V4_TOPK_WORKSPACE_SINCE = (0, 27)


def v4_indexer_gather(spec, settings, version: str = PINNED, length: Optional[int] = None) -> int:
    """Bytes of the K gather DeepSeek-V4's indexer reserves in the profile run's workspace, as DeepSeek-V3.2's does
    (vllm_indexer_profile.py) over get_max_prefill_buffer_size // compress_ratio keys, the model built at `length`
    tokens (None: settings.max_model_len); 0 without an indexer."""
    indexer = next((layer for layer, _ in spec.layer_counts if layer.kind == "v4_indexer"), None)
    if indexer is None:
        return 0
    keys = prefill_buffer_keys(length or settings.max_model_len, version) // indexer.ratio
    return gather_bytes(keys, indexer.head_dim, version)


def gdn_checkpoints_beyond_moe(spec, tp: int, stage, settings, rules: Behaviour, version: str, gpu,
                               block_size: Optional[int], kv_dtype: str, layout=None) -> int:
    """Bytes the gated DeltaNet's prefill-checkpoint buffer (vllm_gdn_workspace) adds to the profile run's
    workspace beyond the fused-MoE kernels' (vllm_profile.moe_workspace), which share its one buffer, grown to the
    larger and kept: 0 before 0.33 (no checkpoints) and for a model without gated DeltaNet layers on this stage."""
    if release_rule(PREFILL_CHECKPOINTS, version) is None or not any(
            getattr(layer, "flavor", "") == GDN_FLAVOR for layer in spec.linear_layers):
        return 0
    groups = table_groups(spec, tp, settings, block_size, rules, version, gpu, kv_dtype)
    tokens = settings.max_num_batched_tokens
    needed = gdn_checkpoint_workspace(spec, tp, tokens, groups)
    return max(0, needed - moe_workspace(spec, tp, tokens, rules, layout)) if needed else 0


def v4_prefill_workspace(spec, settings, capability=(), version: str = PINNED, length: Optional[int] = None) -> int:
    """Bytes of the workspace DeepSeek-V4's layers reserve in the profile run, which stays allocated: one buffer
    (v1/worker/workspace.py, grown to the largest request, never freed) that FlashMLA's attention and the indexer
    share, so the larger of FlashMLA's reservation (V4_TOPK_WORKSPACE_SINCE: for its widest layer, ratio 4, a bf16
    gather of PREFILL_CHUNK_SIZE = 4 rows of (max_model_len / 4 compressed + window + max_num_batched_tokens)
    latents, and from 0.27 int32 top-k indices and lengths for max_num_batched_tokens rows, index_topk + window
    rounded up to 128) and the indexer's K gather (v4_indexer_gather), each view rounded up to 256 bytes. Where vLLM
    builds FlashInfer's SM120 class instead (SM12x from 0.24), its own fixed workspace (vllm_v4_gpu.
    V4_SM120_WORKSPACE, a tensor of its own: flashinfer_sparse.py 0.26.0:33-45) beside the indexer's. `length`: the
    max_model_len the model was built with, which both keep (None: settings.max_model_len; FlashMLA's layer reads it
    when built, models/deepseek_v4/attention.py 0.34.0:336, and --max-model-len auto fits a shorter one only after
    the profile: vllm_indexer_profile.py). 0 for other models."""
    kinds = [layer for layer, _ in spec.layer_counts]  # each kind once, in first-seen order
    compressed = [layer for layer in kinds if layer.kind == "v4_compressed"]
    if not compressed:
        return 0
    indexer = v4_indexer_gather(spec, settings, version, length)
    if v4_flashinfer_sm120(capability, version):
        return V4_SM120_WORKSPACE + indexer
    window = next(layer.window for layer in kinds if layer.kind == "v4_window")
    tokens = settings.max_num_batched_tokens
    length = length or settings.max_model_len
    rows = max(-(-length // layer.ratio) for layer in compressed) + window + tokens
    views = [4 * rows * compressed[0].head_dim * 2]
    if parse_version(version) >= V4_TOPK_WORKSPACE_SINCE:
        combined = -(-(max(layer.index_topk for layer in compressed) + window) // 128) * 128
        views += [tokens * combined * INDEX_BYTES, tokens * INDEX_BYTES]
    return max(workspace_views(*views), indexer)


def flashmla_sparse_reservation(spec, tp: int, settings, version: str, gpu, kv_dtype: str = "auto",
                                built_len: Optional[int] = None) -> int:
    """Bytes FLASHMLA_SPARSE reserves in the shared workspace as the model is built (vllm_indexer_profile.
    flashmla_reservation), which the weights term measures: 0 unless vLLM `version` gives `spec`'s sparse MLA layers
    that backend for --kv-cache-dtype `kv_dtype` on this GPU (vllm_sparse.sparse_cache for a quantized cache,
    sixteen_bit_backend for a 16-bit one); at the length the model is built with (`built_len`, else the planned)."""
    from ..model.precision import resolve_kv_dtype
    from .vllm_kv_dtype import cache_precision, is_sparse, sparse_choice
    from .vllm_sparse import FLASHMLA, ROCM, sixteen_bit_backend

    if not is_sparse(spec):
        return 0
    capability = ROCM if is_rocm(gpu) else cuda_capability(gpu)
    asked = resolve_kv_dtype(kv_dtype, spec.dtype, spec.auto_kv_dtype)
    kept = cache_precision(spec, asked, capability, version, tp)
    if kept.bits >= 16:
        backend, cache = sixteen_bit_backend(capability, version, spec.num_attention_heads // tp), "auto"
    else:
        backend, cache = sparse_choice(spec, asked, capability, version, tp).backend, kept.vllm_dtype
    if backend != FLASHMLA:
        return 0
    return flashmla_reservation(spec, settings, tp, cache, version, capability, built_len)


def v4_workspace_beyond_moe(spec, tp: int, settings, rules: Behaviour, capability, version: str, layout=None,
                            mxfp4=None, built_len: Optional[int] = None) -> int:
    """Bytes DeepSeek-V4's profile-run workspace (v4_prefill_workspace) adds to the profile peak and leaves allocated
    after it: FlashMLA's and the indexer's requests go to the process-wide workspace (models/deepseek_v4/nvidia/
    flashmla.py forward_mqa's dummy branch, current_workspace_manager().get_simultaneous: 0.30.0 to 0.33.0 :105-131,
    0.34.0 :101-127), the buffer the fused-MoE modular kernel takes its buffers from
    (moe_workspace), grown to the largest request and never freed (v1/worker/workspace.py 0.34.0:253-312), so they
    add only what they exceed those buffers by, and that stays allocated (0.34's measured sizing counts it as used,
    not transient: persistent_after_profile's). FlashInfer's SM120 buffer is a tensor of its own, kept per device
    (flashinfer_sparse.py 0.34.0:46-58), so it adds in full and stays too. `built_len`: the length the model was
    built with (v4_prefill_workspace's `length`)."""
    workspace = v4_prefill_workspace(spec, settings, capability, version, built_len)
    if not workspace:
        return 0
    own = V4_SM120_WORKSPACE if v4_flashinfer_sm120(capability, version) else 0
    moe = moe_workspace(spec, tp, settings.max_num_batched_tokens, rules, layout, mxfp4)
    return own + max(0, workspace - own - moe)


def indexer_buffers(spec, tp: int, stage, settings, rules: Behaviour, version: str, gpu, layout=None,
                    mxfp4=None, reserved: int = 0, built_len: Optional[int] = None) -> tuple:
    """(growth, logits, words) of a sparse-attention model's shared workspace and lightning indexer in the profile
    run on a CUDA GPU (vllm_indexer_profile.py): how far the workspace the profile allocates (the fused-MoE buffers,
    moe_workspace, or the indexer's K gather where larger) differs from the fused-MoE buffers the forward and the
    sampler pass already count, after FLASHMLA_SPARSE's `reserved` bytes, reserved when built and measured with the
    weights (flashmla_sparse_reservation; profile_allocation: negative where that reservation holds the fused-MoE
    buffers), which stays allocated, and the indexer's transient dummy logits, both at the length the model was
    built with (`built_len`, else the planned: vllm_indexer_profile.py), as FLASHMLA_SPARSE's reservation is; (0, 0,
    "") with no reservation on ROCm (its indexer not read), without an indexer, and on a pipeline stage none of
    whose layers runs one. DeepSeek-V4's indexer: its dummy logits alone (its gather is v4_workspace_beyond_moe's)."""
    capability = cuda_capability(gpu)
    found = None if is_rocm(gpu) else indexer_profile(spec, settings, version, capability, tp, built_len)
    if found is not None and not found.gather:  # DeepSeek-V4 (no FLASHMLA_SPARSE reservation)
        return 0, found.logits, (f"DeepSeek-V4's lightning indexer's {found.logits / 2**20:,.0f} MiB dummy logits "
                                 f"join the forward (vllm_indexer_profile.py)")
    leaders = index_group_leaders(spec)
    if found is not None and stage is not None and not any(leaders[stage.first_layer:stage.end_layer]):
        found = None
    if found is None and not reserved:
        return 0, 0, ""
    moe = moe_workspace(spec, tp, settings.max_num_batched_tokens, rules, layout, mxfp4)
    needed = max(moe, found.gather if found is not None else 0)
    growth = profile_allocation(reserved, needed, version) - moe
    gather = f"the lightning indexer's {found.how}" if found is not None else ""
    requests = " and ".join(part for part in ("the fused-MoE buffers" if moe else "", gather) if part)
    own = f"FLASHMLA_SPARSE's workspace reservation at build ({format_gib(reserved)} GiB, in the weights)"
    if reserved and needed <= reserved:
        words = f"{own} holds {requests or 'every later workspace request'}"
    elif reserved and parse_version(version) >= VIEWS_RELEASED_SINCE:
        words = f"{requests} grow{'s' if requests == gather else ''} the workspace " \
                f"{format_gib(needed - reserved)} GiB past {own}"
    elif found is None:
        words = f"the fused-MoE buffers take a workspace of their own beside {own}, whose views its layers keep"
    else:
        held = (f"grows the shared workspace {format_gib(growth)} GiB past the fused-MoE buffers" if growth else
                "fits in the shared workspace the fused-MoE buffers hold")
        words = f"{gather} {held}" + (f", beside {own}, whose views its layers keep" if reserved else "")
    logits = found.logits if found is not None else 0
    if logits:
        words += f", and its {logits / 2**20:,.0f} MiB dummy logits join the forward"
    return growth, logits, f"{words} (vllm_indexer_profile.py)"


def sized_after_warmup(rules: Behaviour, flags: EngineFlags) -> bool:
    """Whether vLLM sizes the cache with its extensible KV cache (0.34 on CUDA and ROCm): config/vllm.py:3180-3268
    _resolve_extensible_kv_cache turns it on unless --num-gpu-blocks-override or --kv-cache-memory-bytes (kvplan's
    kv_budget, which never reaches this budget) is given; elastic expert parallelism, KV connectors that lend their
    own memory and GPUs without virtual memory management (WSL2) also turn it off, none of which kvplan models."""
    return rules.kv_sizing == "extensible" and not flags.num_gpu_blocks_override


PENALTY_COUNTED_SINCE = (0, 27)  # utils/mem_utils.py memory_profiling: total_consumed (free memory since the init
                                 # snapshot) from 0.27.0; before, weights + the profile's peak + non-torch growth


def penalty_state(spec, settings, runner: Runner, version: str, stage=None) -> int:
    """Bytes of Model Runner V2's penalty statistics on the last pipeline stage (v1/worker/gpu/sample/penalties.py
    PenaltiesState, 0.22 on): int32 output counts [max_num_seqs, vocab] and an int32 prompt bit mask [max_num_seqs,
    vocab / 32], built with the sampler after the weights' profiler and before the profile run (gpu/model_runner.py
    load_model). Before 0.27 no term sees them; from 0.27 the profile's total_consumed does (0.32 mem_utils.py:311-321:
    the device's free memory since the init snapshot), as does 0.34's measured sizing."""
    if runner.name != "V2" or parse_version(version) < PENALTY_COUNTED_SINCE or (stage is not None
                                                                                 and not stage.is_last):
        return 0
    vocab = spec.vocab_size or 0
    return settings.max_num_seqs * (vocab + -(-vocab // 32)) * 4


DENSE_HISTORY = (  # (first release, runner, speculative methods) whose drafter keeps every request's tokens on the GPU
    # 0.34.0 v1/worker/gpu/model_runner.py:291-294, prefer_dense_token_history
    ((0, 34), "V2", ("ngram", "ngram_gpu", "suffix")),
    ((0, 32), "V2", ("ngram", "ngram_gpu")),  # 0.32.0 v1/worker/gpu/model_runner.py:275-277 use_ngram()
    ((0, 27), "V1", ("ngram_gpu",)),  # v1/worker/gpu_model_runner.py token_ids_gpu_tensor (0.32.0 :622-627)
)


def token_history(spec, settings, runner: Runner, version: str, built_len: Optional[int] = None) -> int:
    """Bytes of the drafter's dense token history: int32 [max_num_seqs, max_model_len] on the GPU of every stage
    (0.32.0 v1/worker/gpu/states.py:37-41, all_token_ids off UVA; V1's token_ids_gpu_tensor), built in the runner's
    __init__ after the init snapshot, so counted from 0.27 (PENALTY_COUNTED_SINCE) as the penalty counts are; at the
    length the runner was built with (`built_len`: the one asked before --max-model-len auto fits a shorter one;
    update_max_model_len, 0.34.0 gpu/model_runner.py:381-385, resizes nothing)."""
    method = getattr(getattr(spec.draft, "config", None), "method", None)
    release = parse_version(version)
    methods = next((m for first, name, m in DENSE_HISTORY if name == runner.name and release >= first), ())
    if method not in methods or release < PENALTY_COUNTED_SINCE:
        return 0
    return settings.max_num_seqs * (built_len or settings.max_model_len) * 4


# Model Runner V2's sampler keeps, beside the penalty counts, per-request rows of fixed width on the GPU (0.32.0
# v1/worker/gpu/sample/, the same in every release 0.27.0-0.34.0: tests/data/vllm_runner_buffers.json): int32 / float32
# [max_num_seqs, 1024] allowed ids, logit-bias ids and biases (logit_bias.py:20-21, :33-45) and bad-word ids
# (bad_words.py:27-32, envs.py:116 VLLM_MAX_BAD_WORDS_TOTAL_TOKENS 1024), int32 [, 128] stop ids (logit_bias.py:22,
# :50), [, 129] bad-word offsets (bad_words.py:33-36, envs.py:115 VLLM_MAX_NUM_BAD_WORDS 128, + 1) and [, 128] logprob
# token ids (logprob.py:244-250, sampling_params.py:32 MAX_LOGPROB_TOKEN_IDS)
SAMPLER_REQUEST_BYTES = 4 * (4 * 1024 + 128 + 129 + 128)
V1_PLACEHOLDER_BLOCK = 16  # gpu_model_runner.py (0.32.0 :701-703): cache_config.block_size (--block-size) or
# CacheConfig.DEFAULT_BLOCK_SIZE; update_block_size_for_backend sets the backend's only after load_model
# (v1/executor/multiproc_executor.py:701, uniproc_executor.py:75), after the runner and its placeholder are built


def counts_runner_buffers(version: str) -> bool:
    """Whether the budget sees what the model runner builds after the init snapshot (PENALTY_COUNTED_SINCE). 0.26.0
    summed the weights' load-time growth, the profile's torch peak growth and non-torch growth (mem_utils.py:305-313,
    gpu_worker.py:512-516): a torch buffer built between the snapshot and the profile run was in none of them."""
    return parse_version(version) >= PENALTY_COUNTED_SINCE


def sampler_state(settings, runner: Runner, version: str, stage=None) -> int:
    """Bytes of Model Runner V2's other per-request sampler rows (SAMPLER_REQUEST_BYTES) on the last stage, built
    with the penalty counts in load_model (0.32.0 gpu/model_runner.py:485 Sampler)."""
    if runner.name != "V2" or not counts_runner_buffers(version) or (stage is not None and not stage.is_last):
        return 0
    return settings.max_num_seqs * SAMPLER_REQUEST_BYTES


def grammar_bitmask(spec, settings, runner: Runner, version: str, stage=None) -> int:
    """Bytes of Model Runner V2's structured-output buffers on the last stage: an int32 bitmask [max_num_logits,
    cdiv(vocab, 32)] and int32 logits indices [max_num_logits], max_num_logits = max_num_seqs x (1 + draft tokens)
    (0.32.0 gpu/structured_outputs.py:84-89, built in load_model: model_runner.py:518-520; 0.27.0 :375-377). V1
    builds its bitmask per step. A diffusion model's decode_query_len is its canvas alone: num_speculative_tokens is
    the canvas and its ModelState samples no new token a step (num_new_sampled_tokens_per_step 0,
    diffusion_gemma.py 0.24.0:1027, 0.28.0:1032, 0.32.0:1121, 0.34.0:1139; model_runner.py 0.34.0:451-454)."""
    if runner.name != "V2" or not counts_runner_buffers(version) or (stage is not None and not stage.is_last):
        return 0
    draft = getattr(getattr(spec.draft, "config", None), "num_speculative_tokens", 0) or 0
    logits = getattr(spec, "canvas_length", 0) or 1 + draft
    vocab = spec.vocab_size or 0
    return settings.max_num_seqs * logits * (-(-vocab // 32) + 1) * 4


def inputs_embeds(spec, settings, runner: Runner, version: str, stage=None, media: bool = True) -> int:
    """Bytes of the runner's [max_num_batched_tokens, hidden] embeddings buffer in the model's dtype: V1 builds it
    for every model on every stage (0.32.0 gpu_model_runner.py:811-813), V2 for a multimodal model's first stage
    (its EncoderRunner: gpu/model_states/interface.py:65-84, gpu/mm/encoder_runner.py:58) unless it runs text-only
    (`media` False: --language-model-only or every limit 0, config/model.py:912-918 _supports_multimodal_inputs).
    Prompt embeddings, off by default, are not modelled."""
    if not counts_runner_buffers(version):
        return 0
    if runner.name == "V2" and (not (spec.multimodal and media) or (stage is not None and stage.index > 0)):
        return 0
    return settings.max_num_batched_tokens * spec.hidden_size * DTYPE_BYTES[spec.dtype]


# DiffusionGemma's ModelState (diffusion_gemma.py DiffusionGemmaModelState and DiffusionGemmaRequestStates), built
# by init_model_state in load_model after the weights' profiler and before the profile run (0.28.0
# gpu/model_runner.py:387-392, 0.34.0 :447-452), so counted from 0.27 as the penalty counts are; per canvas
# position of each of max_num_seqs slots, int64 canvas and argmax canvas (0.28.0 :713-715, :738-740; 0.34.0 :671-673,
# :696-698) and the accepted-canvas history of generation_config's stability_threshold + 1 rows (+ 1 from 0.25.0:802;
# 0.28.0 :697-703, :804; 0.34.0 :681-687, :901), and from 0.31 the int64 seed canvas and bool pin mask (0.31.0
# :773-775, :780-782; 0.34.0 :716-718, :723-725); the DiffusionSampler's int32 sampled rows on the last stage
# (0.28.0 :1093-1098, 0.34.0 :1203-1208). Per-slot scalars (step, prompt length, flags: under 40 B a slot) left out.
DIFFUSION_HISTORY_ROWS = 1 + 1  # transformers' DiffusionGemmaGenerationConfig stability_threshold 1
# (generation_diffusion_gemma.py _get_default_generation_params); kvplan does not read generation_config.json
DIFFUSION_SEEDS_SINCE = (0, 31)


def diffusion_state(spec, settings, runner: Runner, version: str, stage=None) -> int:
    """Bytes of a diffusion model's ModelState and sampler buffers (DiffusionGemma's, the comment above), V2 from
    0.27 (counts_runner_buffers): its own inputs-embeddings buffer [max_num_batched_tokens, hidden] in the model
    dtype (so CUDA graphs see one address: 0.28.0 diffusion_gemma.py:818-823, 0.32.0 :901-906, 0.34.0 :911-916),
    beside the multimodal EncoderRunner's (inputs_embeds); the self-conditioning soft embeddings, float32
    [max_num_seqs, canvas, hidden] (0.28.0 :731-733, 0.32.0 :737-739, 0.34.0 :747-749); and the canvas rows,
    max_num_seqs x canvas x (8 x (2 + DIFFUSION_HISTORY_ROWS), + 8 + 1 from 0.31, + 4 on the last stage)."""
    canvas = getattr(spec, "canvas_length", 0)
    if not canvas or runner.name != "V2" or not counts_runner_buffers(version):
        return 0
    seqs, hidden = settings.max_num_seqs, spec.hidden_size or 0
    per_position = 8 * (2 + DIFFUSION_HISTORY_ROWS) + (9 if parse_version(version) >= DIFFUSION_SEEDS_SINCE else 0)
    per_position += 4 if stage is None or stage.is_last else 0
    return (settings.max_num_batched_tokens * hidden * DTYPE_BYTES[spec.dtype] + seqs * canvas * hidden * 4
            + seqs * canvas * per_position)


TABLE_TOKEN_ALIGNMENT = 128  # v1/kv_cache_interface.py:337-349 get_block_table_width (0.34.0; V1's 0.27.0
# v1/worker/block_table.py:20-40): a table row rounded up to whole runs of 128 tokens


def table_width(blocks: int, block: int) -> int:
    """get_block_table_width: `blocks` rounded up to a multiple of 128 / gcd(128, block), so a row spans a whole
    number of 128-token runs (16-token blocks: multiples of 8; 64: of 2)."""
    step = TABLE_TOKEN_ALIGNMENT // math.gcd(TABLE_TOKEN_ALIGNMENT, block)
    return -(-blocks // step) * step


def group_table_width(cache, max_model_len: int, mamba_align: bool) -> int:
    """One KV-cache group's row in 0.34's V2 tables (gpu/model_runner.py:684-709: spec.max_num_blocks_per_req, then
    get_block_table_width with the spec's token alignment). Attention of any kind (sliding windows too:
    SlidingWindowSpec keeps AttentionSpec's cdiv(max_len, block), kv_cache_interface.py:621-626) is aligned; a Mamba
    state (MambaSpec :1176-1186, no alignment :1165-1166) takes cdiv(max_len, block) + its speculative blocks in
    "align" mode (prefix caching on), else 1 + them. `cache`: a vllm_specs.CacheSpec."""
    if cache.kind == "mamba":
        return (-(-max_model_len // cache.block_size) if mamba_align else 1) + cache.speculative_blocks
    return table_width(-(-max_model_len // cache.block_size), cache.block_size)


def table_groups(spec, tp: int, settings, block_size: Optional[int], rules: Behaviour, version: str, gpu,
                 kv_dtype: str = "auto") -> tuple:
    """The CacheSpec of each of vLLM's KV-cache groups as start-up builds them (vllm.layer_specs, vllm.groups_for:
    kv_cache_utils.get_kv_cache_groups), every group on every pipeline stage (0.34.0 v1/core/kv_cache_planning.py
    :1517-1562 projects each global group onto a worker, empty or not), for the cache served (--kv-cache-dtype
    `kv_dtype`): the dtype sets a Mamba hybrid's attention block (matched to the state's page: 0.34.0
    platforms/interface.py:797 _align_hybrid_block_size) and a dense MLA backend's block, so a table's width."""
    from ..model.precision import resolve_kv_dtype
    from .vllm import groups_for, layer_specs, v1_planned
    from .vllm_settings import with_model_defaults
    from .vllm_sparse import ROCM

    precision = resolve_kv_dtype(kv_dtype, spec.dtype, spec.auto_kv_dtype)
    capability = ROCM if is_rocm(gpu) else cuda_capability(gpu)  # as the engine's plans
    specs, _, _ = layer_specs(spec, tp, precision, with_model_defaults(spec, settings, version), block_size, rules,
                              version, capability)
    planned = v1_planned(specs, rules, version)  # sliding layers planned as full (vllm_hybrid_manager)
    specs = planned.grouped if planned else specs
    return tuple(group.spec for group in groups_for(specs, rules, bool(getattr(spec, "window_list", ())), version)[0])


def block_tables(settings, runner: Runner, version: str, rules: Behaviour, measured: bool, groups: tuple = (),
                 block_size: Optional[int] = None, built_len: Optional[int] = None) -> int:
    """Bytes of the block tables the budget sees. V1 builds a placeholder InputBatch in __init__ (0.32.0
    gpu_model_runner.py:701-741): int32 [max_num_seqs, width] at cache_config.block_size (--block-size, `block_size`)
    or 16, width = cdiv(max_model_len, block) aligned (table_width), and an int64 slot mapping [max_num_batched_tokens]
    (block_table.py:211-261), rebuilt at KV-cache init only if the block sizes differ; at the length the runner was
    built with (`built_len`: the one asked, where --max-model-len auto fits a shorter one after profiling, 0.28.0
    v1/engine/core.py:310-316; update_max_model_len rebuilds nothing). V2 builds its BlockTables in
    initialize_kv_cache (0.34.0 gpu/block_table.py:66-94: a table and an input copy of int32 [max_num_seqs,
    group_table_width] for each KV-cache group, `groups` (table_groups; none given: one full-attention group at the
    release's block), and int64 slot mappings [groups, max_num_batched_tokens]), after the profile's sizing but
    before 0.34's measured one (gpu_worker.py:936-940 initialize_kv_cache, then :1228-1236 measure_kv_cache_blocks),
    after auto-fit's update_max_model_len (v1/engine/core.py:355-360): at the length planned."""
    if not counts_runner_buffers(version):
        return 0
    seqs, tokens = settings.max_num_seqs, settings.max_num_batched_tokens
    if runner.name == "V1":
        block = block_size or V1_PLACEHOLDER_BLOCK
        return seqs * table_width(-(-(built_len or settings.max_model_len) // block), block) * 4 + tokens * 8
    if not measured:
        return 0
    widths = [group_table_width(g, settings.max_model_len, settings.prefix_caching) for g in groups] or \
        [table_width(-(-settings.max_model_len // rules.block_size), rules.block_size)]
    return sum(2 * seqs * width * 4 for width in widths) + len(widths) * tokens * 8


def describe_tables(runner: Runner, groups: tuple, block_size: Optional[int], rules: Behaviour, built: int) -> str:
    """The block-table part's words in runner_state's source (`built`: the length V1's placeholder is built at)."""
    if runner.name == "V1":
        return (f"V1's placeholder block table, int32 max_num_seqs x max_model_len {built:,} / "
                f"{block_size or V1_PLACEHOLDER_BLOCK} (block_tables)")
    blocks = sorted({g.block_size for g in groups}) or [rules.block_size]
    count = len(groups) or 1
    return (f"V2's block tables and input copies, int32 max_num_seqs x max_model_len / {'|'.join(map(str, blocks))}, "
            f"{count} KV-cache group{'' if count == 1 else 's'} (block_tables)")


def lazy_stage_inputs(spec, settings, runner: Runner, version: str, rules: Behaviour, stage=None) -> int:
    """Bytes of a later pipeline stage's intermediate tensors (stage_inputs' shape) that the V1 runner makes in its
    first dummy run (0.11.0 gpu_model_runner.py:3111-3117, 0.20.0 :5503-5509, 0.26.0 :6050-6057), i.e. inside
    profile_run under memory_profiling, so up to 0.26 the profile's torch peak growth holds them
    (gpu_worker.py:484-488). V2 builds them in load_model after its weights' profiler (0.26.0 gpu/model_runner.py
    :367-375), where 0.26 counts nothing; from 0.27 stage_inputs counts them for either runner."""
    if stage is None or stage.index == 0 or runner.name != "V1" or rules.era == "v0" or counts_runner_buffers(version):
        return 0
    return 2 * settings.max_num_batched_tokens * spec.hidden_size * DTYPE_BYTES[spec.dtype]


def stage_inputs(spec, settings, version: str, stage=None) -> int:
    """Bytes of a later pipeline stage's persistent inputs: hidden states and residual [max_num_batched_tokens,
    hidden] in the model's dtype (make_empty_intermediate_tensors_factory(["hidden_states", "residual"], ...) as
    model_executor/models/llama.py:399-401 and most decoders build it), made by V2's load_model (0.32.0
    gpu/model_runner.py:538-541) and V1's first dummy run, then kept (gpu_model_runner.py:5801-5808)."""
    if stage is None or stage.index == 0 or not counts_runner_buffers(version):
        return 0
    return 2 * settings.max_num_batched_tokens * spec.hidden_size * DTYPE_BYTES[spec.dtype]


# Model Runner V2's speculator, built in the runner's __init__ on the last stage (0.32.0 gpu/model_runner.py:292-298,
# 0.34.0 :309-318), so counted as the runner's other buffers; the same in 0.32.0-0.34.0
# (tests/data/vllm_runner_buffers.json "drafters"). n-gram / suffix scans: int64 [max_num_seqs, cdiv(max_model_len,
# block)] partial results, the block by the length (0.32.0 spec_decode/ngram/speculator.py:185-199; 0.34.0
# suffix/speculator.py:520-530, without the 64 step)
NGRAM_SCAN_BLOCKS = ((1024, 256), (256, 128), (64, 64))
SUFFIX_SCAN_BLOCKS = ((1024, 256), (256, 128))
SUFFIX_BUCKET_SLOTS = 8  # 0.34.0 suffix/speculator.py:50 _BUCKET_SLOTS: int64 entries a hash bucket
TARGET_HIDDEN_DRAFTERS = ("eagle", "eagle3", "mtp")  # TargetDependentARSpeculator (0.34.0 spec_decode/eagle/,
# mtp/speculator.py; their configs' speculator_class, speculator_config.py:298-311)
# The V1 runner's proposers (0.32.0 / 0.33.0 gpu_model_runner.py:611-644 / :618-651, on the last stage: :590 / :598):
# EagleProposer (eagle, eagle3, mtp) and DraftModelProposer (draft_model) are SpecDecodeBaseProposer, whose __init__
# keeps [max_num_batched_tokens, draft hidden] hidden states and [max_num_batched_tokens, draft inputs_embeds size]
# input embeddings in the model dtype (v1/spec_decode/llm_base_proposer.py 0.32.0:98-99, :212-214, :246-250; 0.33.0
# :99-100, :211-213, :245-249); the rest of it (ids, positions, masks, slot mapping) is under 1 MiB. The n-gram and
# suffix proposers draft on the CPU (NgramProposerGPU allocates per call; its token history is token_history's).
V1_PROPOSER_DRAFTERS = TARGET_HIDDEN_DRAFTERS + ("draft_model",)


def next_power_of_2(n: int) -> int:
    return 1 << max(n - 1, 0).bit_length()


def scan_block(length: int, steps: tuple) -> int:
    """The tokens one scan program covers: the first step whose floor `length` reaches, else the next power of two
    of it, at least 16."""
    return next((block for floor, block in steps if length >= floor), max(16, next_power_of_2(length)))


def drafter_buffers(spec, settings, runner: Runner, version: str, stage=None, built_len: Optional[int] = None) -> int:
    """Bytes of the drafter's buffers: V1's proposer (v1_proposer_buffers) or Model Runner V2's speculator (the
    comment above):
    - EAGLE, EAGLE-3, MTP: the target's hidden states, [max_num_batched_tokens, the draft's hidden size] in the
      model dtype (0.32.0 target_dependent_ar/speculator.py:36-38, 0.34.0 :33-35); MTP of several modules
      (min(modules, draft tokens) > 1: 0.32.0 config/speculative.py:1982-1988) also caches [max_num_seqs, k - 1,
      hidden] of them (multi_module_mtp/speculator.py:36-43, :63-69).
    - ngram, ngram_gpu: the scan's int64 [max_num_seqs, cdiv(max_model_len, block)] (NGRAM_SCAN_BLOCKS).
    - suffix (V2 from 0.34): its scan (SUFFIX_SCAN_BLOCKS), the corpus int32 [max(corpus, 1)] and two int64 hash
      tables [next_power_of_2(max(16, corpus / 4)) (1 without a corpus), 8] (0.34.0 suffix/speculator.py:535-560).
    - a draft model: its expanded ids and positions, [max_num_batched_tokens + max_num_seqs], under 1 MiB: left out.
    Rows of [max_num_seqs] or [max_num_seqs, k] (draft tokens, temperatures, seeds) are under 1 MiB and left out; so
    is a multimodal drafter's embeddings buffer, which none of kvplan's drafters (Llama EAGLE heads, DeepSeek / GLM /
    Qwen3-Next MTP) build (supports_multimodal_embeddings). `built_len`: the length the runner was built with."""
    config = getattr(spec.draft, "config", None)
    if config is None or not counts_runner_buffers(version) or (stage is not None and not stage.is_last):
        return 0
    if runner.name == "V1":
        return v1_proposer_buffers(spec, settings)
    seqs, length = settings.max_num_seqs, built_len or settings.max_model_len
    if config.method in TARGET_HIDDEN_DRAFTERS:
        hidden = (spec.draft.model or spec).hidden_size * DTYPE_BYTES[spec.dtype]
        cached = seqs * (config.num_speculative_tokens - 1) if config.method == "mtp" and min(
            spec.draft.modules, config.num_speculative_tokens) > 1 else 0
        return (settings.max_num_batched_tokens + cached) * hidden
    if config.method in ("ngram", "ngram_gpu"):
        return seqs * -(-length // scan_block(length, NGRAM_SCAN_BLOCKS)) * 8
    if config.method == "suffix":
        corpus = config.suffix_corpus
        buckets = next_power_of_2(max(16, corpus // 4)) if corpus else 1
        return (seqs * -(-length // scan_block(length, SUFFIX_SCAN_BLOCKS)) * 8 + max(corpus, 1) * 4
                + 2 * buckets * SUFFIX_BUCKET_SLOTS * 8)
    return 0


def v1_proposer_buffers(spec, settings) -> int:
    """Bytes of the V1 runner's proposer (V1_PROPOSER_DRAFTERS): hidden states and input embeddings, each
    [max_num_batched_tokens, the draft's hidden size] in the model dtype. The draft's config gives the width (an EAGLE
    head's or draft model's; MTP's modules are the target's own): ModelConfig.get_hidden_size, and
    get_inputs_embeds_size, the hidden size for every text decoder kvplan reads (0.32.0 config/model.py:1622-1629
    reads projection_dim first, a CLIP / SigLIP field)."""
    if spec.draft.config.method not in V1_PROPOSER_DRAFTERS:
        return 0
    hidden = (spec.draft.model or spec).hidden_size
    return 2 * settings.max_num_batched_tokens * hidden * DTYPE_BYTES[spec.dtype]


def describe_drafter(spec, runner: Runner) -> str:
    """The drafter part's words in runner_state's source."""
    method = spec.draft.config.method
    if runner.name == "V1":
        return (f"V1's {method} proposer's hidden states and input embeddings, 2 x max_num_batched_tokens x draft "
                f"hidden (drafter_buffers)")
    if method in TARGET_HIDDEN_DRAFTERS:
        return f"the {method} drafter's hidden states, max_num_batched_tokens x hidden (drafter_buffers)"
    corpus = f" and corpus of {spec.draft.config.suffix_corpus:,} tokens" if method == "suffix" else ""
    return f"the {method} drafter's scan{corpus} (drafter_buffers)"


# Left out (each under 1 MiB at 1,024 sequences and 16,384 tokens, tests/data/vllm_runner_buffers.json): input ids,
# positions (M-RoPE's num_dims + 1 rows), padding flags, query_start_loc, sequence lengths, V1's sampling parameters
# and logits processors, V2's RequestState rows, InputBuffers and UVA-backed rows (host memory). CPU-pinned mirrors
# are host memory. --enable-lora's slots are built at load (adapter_slots; V2's LoraState is a host array). Not
# modelled (no flag for it): prompt embeddings (--enable-prompt-embeds: V1 before 0.30, config/vllm.py
# 0.27.0:2242-2243; from 0.30 V2's DefaultModelState keeps [max_num_batched_tokens, hidden] embeddings,
# model_states/default.py:39-48, and each running request's embeddings on the GPU, prompt_embeds.py add_request).


def _mib_or_gib(size: int) -> str:
    """A part's size as the budget line writes it: MiB below a GiB, so a 4 MiB table does not read 0.0 GiB."""
    return f"{size / 2**20:,.1f} MiB" if size < GiB else f"{format_gib(size)} GiB"


def runner_state(spec, settings, runner: Runner, version: str, stage=None, rules: Behaviour = None,
                 measured: bool = False, media: bool = True, groups: tuple = (), block_size: Optional[int] = None,
                 built_len: Optional[int] = None) -> BudgetTerm:
    """What the model runner builds on the GPU after the init snapshot and keeps, which the budget counts from 0.27
    (counts_runner_buffers) as one term: V2's penalty counts (penalty_state) and other sampler rows
    (sampler_state), its structured-output bitmask (grammar_bitmask), the embeddings buffer (inputs_embeds), a
    diffusion model's state (diffusion_state), block
    tables (block_tables; `measured`: 0.34's sizing after KV-cache init, over the KV-cache `groups`; `block_size`:
    --block-size), a later pipeline stage's inputs (stage_inputs), an n-gram drafter's token history
    (token_history) and the speculator's own buffers (drafter_buffers); none of the sampler's three for a pooling
    model (vllm_pooling_budget.py). `built_len`: the max_model_len the runner was built with (the one asked, before
    auto-fit)."""
    rules = rules or behaviour(version)
    seqs = settings.max_num_seqs
    built = built_len or settings.max_model_len
    samples = not runner.pooling  # V2 builds no sampler for a pooling model (vllm_pooling_budget.py)
    parts = (  # (bytes, their words: worded only where counted, as a budget is asked of every stage of every release)
        (samples and penalty_state(spec, settings, runner, version, stage),
         lambda: f"Model Runner V2's penalty counts, int32 max_num_seqs {seqs:,} x (vocab {spec.vocab_size or 0:,} "
                 "+ a 1/32 mask) (penalty_state)"),
        (samples and sampler_state(settings, runner, version, stage),
         lambda: f"its sampler's other rows, {SAMPLER_REQUEST_BYTES:,} B a sequence (sampler_state)"),
        (samples and grammar_bitmask(spec, settings, runner, version, stage),
         lambda: "its structured-output bitmask, int32 max_num_seqs" + (f" x canvas {spec.canvas_length}" if getattr(
             spec, "canvas_length", 0) else "") + " x vocab / 32 (grammar_bitmask)"),
        (inputs_embeds(spec, settings, runner, version, stage, media),
         lambda: f"{runner.name}'s embeddings buffer, max_num_batched_tokens {settings.max_num_batched_tokens:,} x "
                 f"hidden {spec.hidden_size or 0:,} (inputs_embeds)"),
        (diffusion_state(spec, settings, runner, version, stage),
         lambda: f"DiffusionGemma's model state: its inputs-embeddings buffer, max_num_batched_tokens x hidden, "
                 f"the float32 self-conditioning embeddings, max_num_seqs x canvas {spec.canvas_length} x hidden, and "
                 "the canvas rows (diffusion_state)"),
        (block_tables(settings, runner, version, rules, measured, groups, block_size, built),
         lambda: describe_tables(runner, groups, block_size, rules, built)),
        (stage_inputs(spec, settings, version, stage),
         lambda: "a later pipeline stage's hidden states and residual, max_num_batched_tokens x hidden "
                 "(stage_inputs)"),
        (token_history(spec, settings, runner, version, built),
         lambda: f"the drafter's token history, int32 max_num_seqs x max_model_len {built:,} (token_history)"),
        (drafter_buffers(spec, settings, runner, version, stage, built),
         lambda: describe_drafter(spec, runner) if getattr(spec.draft, "config", None) is not None else ""),
    )
    counted = [(size, words()) for size, words in parts if size]
    source = ("; ".join(f"{text} {_mib_or_gib(size)}" for size, text in counted)
              + ", built after the init snapshot") if counted else "0: none counted here"
    return BudgetTerm("runner_state", sum(size for size, _ in counted), source)


def extensible_budget(gpu, memory: int, requested: int, gpu_util: float, version: str, stage, flags: EngineFlags,
                      tp: int, terms: dict, persistent: int, kv_init: int = 0, counts=None) -> Budget:
    """vLLM 0.34's extensible KV cache, sized from the memory free after warmup and CUDA-graph capture
    (v1/worker/extensible_kv_cache.py:592-618 measure_kv_cache_bytes, called by measure_kv_cache_blocks):

        used      = weights (+ LoRA slots) + non-torch + runner buffers + CUDA graphs + what the profile left allocated
        headroom  = memory - baseline - used                    (free + the committed prefix)
        margin    = max(1 GiB (3 on ROCm), 0.75 x transient)    (KV_CACHE_MARGIN_FLOOR_BYTES / _FRACTION, :64-66)
        available = min(requested - used, headroom - margin) - max(transient, torch's reservation growth)

    `terms`: this budget's weights, profile_peak, non_torch and runner_state BudgetTerms; `persistent`: the part of
    the profile peak still allocated after it (vllm_profile.persistent_after_profile), the rest being the transient
    (mem_utils.py transient_peak_headroom = torch peak - torch allocated). The baseline is what the device held at the
    init snapshot (gpu_worker.py init_device: the CUDA context, cuBLAS from 0.33, NCCL); torch's reservation growth
    (fragmentation) is taken as no larger than the transient. requested is ceil(memory x gpu_memory_utilization),
    1.0 unless given (config/cache.py:216-227), so by default the headroom binds. The profile run's own figure
    (requested - the profile's consumption, no graph estimate: gpu/model_runner.py:1121-1128; `kv_init`: the part of
    runner_state built at KV-cache init, after it) is checked first (MeasuredSizing.profiled_bytes); the cache is
    then committed per layer in 2 MiB granules (vllm.start)."""
    rocm = is_rocm(gpu)
    context, nccl = _value("cuda_context"), NCCL_BYTES if tp > 1 or stage is not None else 0
    peak = terms["profile_peak"].bytes
    transient = peak - persistent
    graphs, graph_source = (0, "") if flags.graphs_off else graph_bytes(counts)  # captured, then measured
    lora = terms.get("lora")  # --enable-lora's slots, built at load beside the weights
    used = (terms["weights"].bytes + (lora.bytes if lora else 0) + terms["non_torch"].bytes
            + terms["runner_state"].bytes + graphs)
    margin = max((3 if rocm else 1) * GiB, int(EXTENSIBLE_MARGIN_FRACTION * transient))
    graph_term = BudgetTerm("cuda_graphs", graphs, f"0: {graphs_off_cause(flags)} captures no graphs"
                            if flags.graphs_off else f"captured before the cache is sized, {graph_source}"
                            f"{graph_words(flags)}"
                            + _lora_graphs(flags, lora))
    if memory - context - nccl - margin < requested:  # the device's headroom binds (always at utilisation 1.0)
        top = memory
        fixed = (BudgetTerm("cuda_context", context, CONSTANTS["cuda_context"][1]),
                 BudgetTerm("nccl", nccl, f"{NCCL_SOURCE}, held before the init snapshot" if nccl else "one GPU"),
                 BudgetTerm("margin", margin, f"max({3 if rocm else 1} GiB, 0.75 x the transient peak "
                                              f"{format_gib(transient)} GiB): kept free for what warmup does not show "
                                              "(extensible_kv_cache.py:64-66)"))
    else:  # an explicit gpu_memory_utilization leaves more than the device's margin free
        top = requested
        within = "0: gpu_memory_utilization leaves more free than the device's margin"
        fixed = (BudgetTerm("cuda_context", 0, within), BudgetTerm("nccl", 0, within), BudgetTerm("margin", 0, within))
    available = max(top - used - sum(t.bytes for t in fixed) - peak, 0)
    kept = BudgetTerm("profile_peak", peak, terms["profile_peak"].source + (
        f"; {format_gib(persistent)} GiB of it stays allocated" if persistent else "") + ", the rest kept free")
    profiled = requested - used + kv_init + graphs - peak
    budget_terms = (BudgetTerm("memory", top, f"{gpu.name} {format_gib(memory)} GiB x gpu_memory_utilization "
                                              f"{gpu_util}"),
                    fixed[0], terms["weights"], *((lora,) if lora else ()), kept, terms["non_torch"],
                    terms["runner_state"], graph_term, fixed[1], fixed[2])
    return Budget(available, "gpu", gpu.name, memory, gpu_util, top, terms["weights"].bytes, peak,
                  terms["non_torch"].bytes, graphs, fixed[1].bytes,
                  f"vllm {version}" + (", enforce eager" if flags.enforce_eager else ""),
                  None if stage is None else stage.index, budget_terms,
                  measured=MeasuredSizing(profiled, EXTENSIBLE_GRANULE, gpu_util, persistent, kv_init))


ROCM_GRAPHS_SINCE = (0, 26)  # gpu_worker.py determine_available_memory: is_cuda() to 0.25.1 (:479), is_cuda_alike()
                             # from 0.26.0 (:502)


def capture_counts(spec, settings, gpu, version: str, flags: EngineFlags, runner: Runner):
    """The graphs vLLM's memory profile captures for this deployment (vllm_graphs.graph_counts); None: eager."""
    from .vllm_full_downgrade import SINCE as DOWNGRADE_SINCE
    from .vllm_graphs import check_flags, graph_counts

    release = parse_version(version)
    check_flags(release, flags.max_cudagraph_capture_size, flags.cudagraph_capture_sizes)
    if flags.graphs_off:
        return None
    draft = getattr(getattr(spec, "draft", None), "config", None)
    # the draft tokens a decode step verifies, else a diffusion model's canvas, which vLLM schedules as such
    # (VllmConfig.num_speculative_tokens, config/vllm.py 0.24.0:510-518, 0.34.0:587-598; model/layers.py
    # diffusion_canvas): the config's q; the V2 runner's decode_query_len is a diffusion model's canvas alone
    # (decode_query_len)
    query_len = 1 + (getattr(draft, "num_speculative_tokens", 0) or getattr(spec, "canvas_length", 0))
    capability = cuda_capability(gpu)
    return graph_counts(release, settings.max_num_seqs, settings.max_num_batched_tokens, query_len,
                        sm100=bool(capability) and capability[0] == 10 and not is_rocm(gpu),
                        # from 0.11.1 the flags carry a pooling model's mode (vllm_full_downgrade.graph_view)
                        pooling=runner.pooling and release < DOWNGRADE_SINCE,
                        encoder_decoder=bool(getattr(spec, "encoder_decoder", False)),
                        max_capture_size=flags.max_cudagraph_capture_size,
                        capture_sizes=flags.cudagraph_capture_sizes,
                        # gpt-oss's handler: MODELS_CONFIG_MAP by model_config.architecture, the top-level name
                        # vLLM resolved (config/vllm.py 0.32.0:2638-2659), never a nested config's
                        architecture=served_architecture(spec, version),
                        v1_runner=runner.name == "V1", decode_query_len=decode_query_len(spec, runner, query_len),
                        cudagraph_mode=flags.cudagraph_mode)


def decode_query_len(spec, runner: Runner, query_len: int) -> int:
    """The model runner's uniform decode query length, where the config's is `query_len` (1 + the draft tokens or
    the canvas): V2's is num_speculative_steps + the ModelState's num_new_sampled_tokens_per_step
    (v1/worker/gpu/model_runner.py 0.24.0:318-321, 0.32.0:435-438, 0.34.0:451-454), which is 0 for a diffusion
    model (diffusion_gemma.py 0.24.0:1027, 0.28.0:1032, 0.32.0:1121, 0.34.0:1139: nothing sampled beside the
    canvas), so the canvas alone, one less; 1 for any other, and V1's is the config's (uniform_decode_query_len)."""
    if runner.name == "V2" and getattr(spec, "canvas_length", 0) and getattr(getattr(spec, "draft", None), "config",
                                                                             None) is None:
        return spec.canvas_length
    return query_len


def graph_bytes(counts) -> tuple:
    """(bytes, source) of a graph profile that captures `counts` (vllm_graphs.GraphCounts): one figure whatever the
    count, the median of the public estimates (tests/data/vllm_graph_estimates.yaml), too few and too mixed to fit a
    rule of the count or the batched tokens on."""
    if counts is not None and not counts.total:
        return 0, "0: no capture size is left, so nothing is captured"
    what = f"capturing {counts.describe()} (vllm_graphs.py); " if counts is not None else ""
    return _value("cuda_graphs"), what + CONSTANTS["cuda_graphs"][1]


def graph_reserve(rules: Behaviour, runner: Runner, gpu, eager: bool = False, version: str = PINNED,
                  counts=None, cause: str = ENFORCE_EAGER, kept: str = "") -> tuple:
    """(bytes, source) of the CUDA-graph term: what profile_cudagraph_memory returns, where the worker asks it.
    `counts`: the graphs it captures (capture_counts); `eager`: none, `cause` saying what turned them off
    (vllm_graphs_off.graphs_off_cause). Before 0.20 none is subtracted, graphs or not: the source says which, `kept`
    why a plan on V0 keeps the graphs its compilation config turns off (vllm_graphs_off.v0_note)."""
    if not rules.graphs_subtracted:
        if eager:
            return 0, f"0: {cause} captures no graphs (and this release captures them after the cache was sized)"
        return 0, "0: graphs captured after the cache was sized" + (f" ({kept})" if kept else "")
    if eager:
        done = "sets cudagraph_mode NONE" if cause == ENFORCE_EAGER else "captures no graphs"  # the flag's own words
        return 0, f"0: {cause} {done}, so the worker skips the graph profile"
    if is_rocm(gpu) and parse_version(version) < ROCM_GRAPHS_SINCE:
        return 0, "0: the worker skips the graph profile on ROCm before 0.26 (gpu_worker.py determine_available_memory)"
    if not runner.graphs_profiled:
        return 0, f"0: {runner.why}"
    size, source = graph_bytes(counts)
    return size, f"{runner.name}'s profiled capture, {source}"


def _capture_counts(spec, settings, gpu, version: str, flags: EngineFlags, runner: Runner):
    """capture_counts, once per deployment (stage_free): it reads no stage. An error it raises is not kept."""
    return stage_free("capture_counts", (spec, settings, flags, runner, gpu), (version,),
                      lambda: capture_counts(spec, settings, gpu, version, flags, runner))


# stage_free's answers: a pp 16 plan asks vllm_budget 16 times with the same spec and settings (and a release remedy's
# search plans every boundary release so), bounded as each answer keeps its objects alive
_STAGE_FREE: dict = {}
MAX_STAGE_FREE = 1024


def stage_free(name: str, objects: tuple, values: tuple, compute):
    """compute(), a pure function of `objects` (keyed by identity: each is kept alive with the answer, so its id is
    not reused while the key is held) and the hashable `values`, worked out once for them."""
    key = (name, *map(id, objects), *values)
    held = _STAGE_FREE.get(key)
    if held is not None and all(a is b for a, b in zip(held[0], objects)):
        return held[1]
    answer = compute()
    remember(_STAGE_FREE, MAX_STAGE_FREE, key, (objects, answer))  # the oldest goes (and the objects it kept alive)
    return answer


def vllm_budget(spec, tp: int, gpu, gpu_util: float, settings, rules: Behaviour, version: str,
                gpu_memory: Optional[int] = None, stage=None, flags: EngineFlags = EngineFlags(),
                block_size: Optional[int] = None, built_len: Optional[int] = None, kv_dtype: str = "auto") -> Budget:
    """`block_size`: --block-size (None: the engine's own); `built_len`: the max_model_len asked where it differs
    from the one planned (--max-model-len auto), which the runner's buffers built before profiling keep;
    `kv_dtype`: --kv-cache-dtype, whose block size 0.34's block tables are built at (table_groups). A pipeline
    stage's budget is worked out once per kind of stage (stage_kind: a pp 16 plan's sixteen stages are four kinds,
    and a release remedy plans every boundary release so) and carries the stage's own index."""
    asked = (spec, tp, gpu, gpu_util, settings, rules, version, gpu_memory, stage, flags, block_size, built_len,
             kv_dtype)
    if stage is None:
        return _budget(*asked)
    held = stage_free("budget", (spec, gpu, settings, rules, flags),
                      (tp, gpu_util, version, gpu_memory, block_size, built_len, kv_dtype, stage_kind(spec, stage)),
                      lambda: _budget(*asked))
    return held if held.stage == stage.index else held.at_stage(stage.index)


def stage_kind(spec, stage) -> tuple:
    """All that a budget (vllm_budget and what it calls) reads of a pipeline stage but its index, which the Budget
    only carries: the stage count, its layer count, whether it is the first (the embeddings, the media encoder's
    pass, no intermediate tensors) or the last (the LM head, the sampler, the drafter), and for sparse attention
    its layers' index-group leaders (index_groups, its one read of the layer range). Stages alike in these have the
    same budget."""
    leaders = per_object(_LEADERS, MAX_LEADERS, spec, index_group_leaders)
    window = tuple(leaders[stage.first_layer:stage.end_layer]) if leaders else ()
    return stage.stages, stage.layers, stage.is_first, stage.is_last, window


_LEADERS: dict = {}  # index_group_leaders of a spec, read for each of its stages' budgets
MAX_LEADERS = 256


def _served(spec, tp: int, flags: EngineFlags, version: str) -> tuple:
    """(the routed experts' layout, whether the pooling runner builds no LM head the checkpoint has, the spec as
    `version` loads its weights) for _budget."""
    headless = pooling_runner(spec, version) and any(g.name == "lm_head" and g.bytes for g in spec.params)
    return flags.moe_layout(spec, tp, parse_version(version)), headless, without_lm_head(spec, version)


def _budget(spec, tp: int, gpu, gpu_util: float, settings, rules: Behaviour, version: str,
            gpu_memory: Optional[int] = None, stage=None, flags: EngineFlags = EngineFlags(),
            block_size: Optional[int] = None, built_len: Optional[int] = None, kv_dtype: str = "auto") -> Budget:
    memory = gpu_memory or gpu.memory_bytes
    requested = math.ceil(memory * gpu_util) if rules.era != "v0" else int(memory * gpu_util)
    # the same for every pipeline stage (stage_free): the experts' layout, whether the pooling runner leaves out the
    # LM head, and the spec as it loads the weights (the same spec otherwise)
    asked = spec
    layout, headless, spec = stage_free("served", (asked, flags), (tp, version),
                                        lambda: _served(asked, tp, flags, version))
    mxfp4 = mxfp4_kernel(spec, version, gpu, layout, flags.enable_lora is not None)
    weights, weights_source = loaded_weights(spec, tp, stage, mxfp4, layout, head=not headless)
    if headless:
        weights_source += "; no LM head (vLLM's pooling runner builds none)"
    modalities = spec.vision_encoder.modalities if spec.vision_encoder is not None else ("image",)
    no_media = spec.multimodal and flags.mm_limits is not None and flags.mm_limits.shut(modalities)
    towerless = spec.multimodal and (flags.language_model_only
                                     or no_media and parse_version(version) >= TOWERLESS_SINCE)
    if towerless:
        why = ("--language-model-only" if flags.language_model_only
               else f"--limit-mm-per-prompt {' and '.join(modalities)} 0")
        weights, weights_source = without_towers(spec, tp, weights, weights_source, why)
    skip_mm = flags.skip_mm_profiling or flags.language_model_only or no_media
    data_parallel = tower_data_parallel(spec, flags.mm_encoder_tp_mode)
    if data_parallel and not towerless:
        weights, weights_source = whole_towers(spec, tp, weights, weights_source)
    elif flags.mm_encoder_tp_mode == "data" and spec.multimodal and not towerless:
        weights_source += "; --mm-encoder-tp-mode data falls back to weights for this architecture (vLLM warns)"
    # the same for every pipeline stage of a deployment: worked out once per (spec, settings) (stage_free)
    runner = stage_free("runner", (spec, rules, gpu), (version,), lambda: model_runner(spec, rules, gpu, version))
    if flags.cpu_offload_gb:
        weights, weights_source = offloaded_weights(spec, tp, stage, weights, weights_source, flags.cpu_offload_gb,
                                                    runner)
    index_buffers = sparse_index_buffers(spec, settings, stage, version)
    if index_buffers:
        weights += index_buffers
        weights_source += f"; + {format_gib(index_buffers)} GiB of sparse attention's top-k index buffers"
    padding = online_linear_padding(spec, cuda_capability(gpu), tp, stage) \
        if not is_rocm(gpu) and online_applies(spec, version) else 0
    if padding:
        weights += padding
        weights_source += f"; + {format_gib(padding)} GiB of the MXFP4 linear kernel's padding"
    copies = mla_dequantized_copies(spec, tp, stage)
    if copies:
        weights += copies
        weights_source += f"; + {format_gib(copies)} GiB of MLA's dequantised W_UK_T / W_UV copies"
    replicated = replicated_query_weights(spec, tp, stage, flags, version)
    if replicated:
        weights += replicated
        weights_source += (f"; + {format_gib(replicated)} GiB of --dcp-q-replicate's query projection over tp / dcp "
                           f"and W_UK_T_dcp_qrep (vllm_dcp.py)")
    ple_buffer = per_layer_input_buffer(spec, settings)
    if ple_buffer:
        weights += ple_buffer
        weights_source += f"; + {format_gib(ple_buffer)} GiB per-layer-input buffer (Gemma 4's multimodal wrapper)"
    shared_kv = shared_kv_projections(spec, tp, stage, version)
    if shared_kv:
        weights += shared_kv
        weights_source += (f"; + {format_gib(shared_kv)} GiB of K / V projections Gemma 4's KV-sharing layers still "
                           f"build before 0.30 (vllm_shared_kv.py)")
    indexers = shared_indexer_weights(spec, stage, version)
    if indexers:
        weights += indexers
        weights_source += (f"; + {format_gib(indexers)} GiB of the lightning indexers vLLM {version} builds on the "
                           f"layers the config marks as reusing a top-k (vllm_index_share.py)")
    reserved = flashmla_sparse_reservation(spec, tp, settings, version, gpu, kv_dtype, built_len)
    if reserved:
        weights += reserved
        weights_source += (f"; + {format_gib(reserved)} GiB of the workspace FLASHMLA_SPARSE reserves as its layers "
                           f"are built (vllm_indexer_profile.flashmla_reservation)")
    capability = cuda_capability(gpu)
    indexer = indexer_buffers(spec, tp, stage, settings, rules, version, gpu, layout, mxfp4, reserved, built_len)
    peak, peak_source = profile_peak(spec, tp, stage, settings, rules, runner, skip_mm, gpu, flags.mm_limits,
                                     data_parallel, layout, flags.mm_processor_kwargs,
                                     lazy_stage_inputs(spec, settings, runner, version, rules, stage), indexer,
                                     mxfp4)
    v4_workspace = v4_workspace_beyond_moe(spec, tp, settings, rules, capability, version, layout, mxfp4, built_len)
    if v4_workspace:
        peak += v4_workspace
        which = "FlashInfer SM120 attention's and its indexer's" if v4_flashinfer_sm120(capability, version) else \
            "prefill gather (FlashMLA's or its indexer's, the larger)"
        peak_source += f"; + {format_gib(v4_workspace)} GiB of DeepSeek-V4's {which} workspace"
    checkpoints = gdn_checkpoints_beyond_moe(spec, tp, stage, settings, rules, version, gpu, block_size, kv_dtype,
                                             layout)
    if checkpoints:
        peak += checkpoints
        peak_source += (f"; + {format_gib(checkpoints)} GiB of the gated DeltaNet's prefill-checkpoint workspace "
                        f"(vllm_gdn_workspace.py)")
    if flags.enable_eplb:
        weights, weights_source, peak, peak_source = with_eplb(spec, layout, flags.enable_eplb, stage, weights,
                                                               weights_source, peak, peak_source)
    if spec.draft is not None:
        weights, weights_source, peak, peak_source = with_drafter(spec, tp, settings, rules, weights, weights_source,
                                                                  peak, peak_source)
    lora_term = adapter_slots(spec, tp, stage, settings, flags, version)
    if rules.era == "v0":
        name = "v0_non_torch_small_gpu" if memory < SMALL_GPU else \
            "v0_non_torch_logged" if rules.batch_defaults == "v0.8" else "v0_non_torch"  # (CONSTANTS)
        non_torch, nccl = _value(name), _value("v0_nccl") if tp > 1 else 0
        nt_source, nccl_source = CONSTANTS[name][1], CONSTANTS["v0_nccl"][1]
    else:
        non_torch, nccl = _value("v1_non_torch"), 0
        nt_source = CONSTANTS["v1_non_torch"][1]
        nccl_source = "0: V1 initialises NCCL before its baseline snapshot (gpu_worker.py init_device)"
    measured = sized_after_warmup(rules, flags)
    groups = table_groups(spec, tp, settings, block_size, rules, version, gpu, kv_dtype) \
        if measured and runner.name == "V2" else ()
    state_term = runner_state(spec, settings, runner, version, stage, rules, measured,
                              not (flags.language_model_only or no_media), groups, block_size, built_len)
    state = state_term.bytes
    if measured:
        terms = {t.name: t for t in (BudgetTerm("weights", weights, weights_source),
                                     BudgetTerm("profile_peak", peak, peak_source),
                                     BudgetTerm("non_torch", non_torch, nt_source), state_term,
                                     *((lora_term,) if lora_term else ()))}
        persistent = (persistent_after_profile(spec, tp, stage, settings, rules, runner, gpu, layout, mxfp4)
                      + checkpoints + indexer[0] + v4_workspace)
        kv_init = (block_tables(settings, runner, version, rules, True, groups, block_size, built_len)
                   - block_tables(settings, runner, version, rules, False, groups, block_size, built_len))
        return extensible_budget(gpu, memory, requested, gpu_util, version, stage, flags, tp, terms, persistent,
                                 kv_init, _capture_counts(spec, settings, gpu, version, flags, runner))
    served = core_flags(flags, rules)  # the graphs as the engine core that runs the plan decides them (V0 or V1)
    graphs, graph_source = graph_reserve(rules, runner, gpu, served.graphs_off, version,
                                         _capture_counts(spec, settings, gpu, version, served, runner),
                                         cause=graphs_off_cause(served) if served.graphs_off else "",
                                         kept=v0_note(flags) if v0_keeps_graphs(flags, rules) else "")
    graph_source += graph_words(served)  # breakable CUDA graphs: the mode they keep, said
    lora = lora_term.bytes if lora_term else 0
    # V0's Mamba state cache, allocated in the profile run's first forward (vllm_mamba_v0.py)
    mamba_term = v0_state_term(spec, tp, settings, flags.enforce_eager, version, stage) if rules.era == "v0" else None
    mamba = mamba_term.bytes if mamba_term else 0
    available = requested - weights - lora - peak - non_torch - state - mamba - nccl - graphs
    terms = (
        BudgetTerm("memory", requested, f"{gpu.name} {format_gib(memory)} GiB x gpu_memory_utilization {gpu_util}"),
        BudgetTerm("weights", weights, weights_source),
        *((lora_term,) if lora_term else ()),
        BudgetTerm("profile_peak", peak, peak_source),
        BudgetTerm("non_torch", non_torch, nt_source),
        *((state_term,) if state else ()),
        *((mamba_term,) if mamba else ()),
        BudgetTerm("cuda_graphs", graphs, graph_source + (_lora_graphs(served, lora_term) if graphs else "")),
        BudgetTerm("nccl", nccl, nccl_source if tp > 1 else "tp 1"),
    )
    return Budget(available, "gpu", gpu.name, memory, gpu_util, requested, weights, peak, non_torch, graphs, nccl,
                  f"vllm {version}" + (", enforce eager" if flags.enforce_eager else ""),
                  None if stage is None else stage.index,
                  terms)
