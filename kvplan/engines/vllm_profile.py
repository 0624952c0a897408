"""vLLM's profile run (gpu_model_runner.py profile_run, v1/worker/gpu/model_runner.py for Model Runner V2): the
peak torch memory of its dummy passes, which vllm_budget.py subtracts as "profile peak". A multimodal model's vision
tower over a batch of dummy images first (its embeddings kept in the encoder cache), then the text forward over
max_num_batched_tokens tokens, then, on the last pipeline stage, the sampler over min(max_num_seqs,
max_num_batched_tokens) dummy requests (a pooling model's pooler instead: vllm_pooling_budget.pooler_pass_bytes);
each pass's activations are freed before the next, so the peak is the largest
pass plus what stays allocated under it: the encoder cache under the text passes, and under the sampler the forward's
output hidden states and the fused-MoE workspace (held_under_sampler)."""

from __future__ import annotations

from typing import Optional

from ..model.precision import DTYPE_BYTES
from ..model.tensors import NON_GATED_MLP
from ..plan.budget import qkv_width
from ..plan.catalog import DEFAULT_SM_COUNT, sm_count
from . import MediaLimits, ProcessorKwargs
from .figures import format_gib
from .vllm_pooling_budget import pooler_pass_bytes
from .vllm_registry import served_architecture
from .vllm_runner import Runner, is_rocm
from .vllm_versions import Behaviour

# (value, fitted on): bytes a logit of V1's sampler pass up to 0.11.0; vllm_budget.CONSTANTS lists it
FLASHINFER_SAMPLER_BYTES = (37, "V1 with FlashInfer's sampler the default (up to 0.11.0); fitted on A19 and A20 "
                                "(gpt-oss-120b on an H100, 0.10.1 and 0.11: the peak beyond kvplan's 65.90 GiB of "
                                "weights and 0.5 GiB non-torch is 7.0 and 7.1 GiB over 1024 dummy requests x "
                                "201,088 logits; 36.5 and 37.1 bytes per logit)")
# Why 37 and not FlashInfer's width + 12 (top_k_top_p_sampling_from_logits with a per-request top-k tensor: a masked
# float32 copy and its softmax, flashinfer-python 0.3.1 sampling.py:979-989, the release 0.11.0's extra pins): 0.11.0
# installs FlashInfer only as an extra (setup.py:669; requirements/cuda.txt has none), so a pip-installed 0.10.1 /
# 0.11.0 (both logs: conda environments) falls back to PyTorch's top-k / top-p (topk_topp_sampler.py:65-70), whose
# logits.sort over >= 128 rows of a > 4096 vocabulary runs CUB's segmented radix sort (torch
# aten/src/ATen/native/cuda/SortStable.cu segmented_sort_pairs: an int64 reverse-index tensor, and CUB's
# non-overwriting SortPairs keeps a third keys and values buffer, cub dispatch_segmented_radix_sort.cuh
# InvokePasses): bf16 logits 2 + float32 copy 4 + sorted values 4 + int64 order 8 + reverse indices 8 + CUB's
# keys 4 and values 8 = 38 bytes a logit, what the logs show. Kept as fitted (the two logs' own measure); the same
# sort from 0.11.1 is priced from the code (sorting_bytes_per_logit).


def flashinfer_samples(rules: Behaviour, gpu=None) -> bool:
    """Whether FlashInfer's sampling kernels run on `gpu` (None: a CUDA GPU) by default: CUDA, and a compute
    capability FlashInferBackend supports from 0.21 (vllm_versions.Behaviour.flashinfer_sampler_cc; 0.33
    v1/sample/ops/topk_topp_sampler.py:102-161 flashinfer_sampler_supported). Its "more than 16 SMs" (0.31 on)
    excludes no catalog GPU; a GPU outside the catalog (no capability known) is taken to qualify."""
    if is_rocm(gpu):
        return False
    capability = gpu.compute_capability if gpu is not None else ()
    floor = rules.flashinfer_sampler_cc
    return not capability or not floor or floor <= capability <= (12, 1)


def dummy_sampler(runner: Runner, rules: Behaviour, gpu=None) -> str:
    """How the profile run's sampler pass samples: "gumbel" (Model Runner V2: v1/worker/gpu/model_runner.py
    _dummy_sampler_run -> sample/sampler.py; dummy requests need no logits processing, so the logits stay in the
    LM head's dtype and sample/gumbel.py gumbel_sample draws in one Triton kernel whose only buffers are
    [requests, vocab / 1024] partial maxima); from 0.33 V2 then samples again with the warmup parameters
    (model_runner.py:1008-1014), over FlashInfer's kernels ("v2-flashinfer") or the Triton top-k / top-p
    ("v2-triton"; sampler_pass_bytes); or the V1 runner's top-k / top-p over float32 logits (v1/sample/sampler.py,
    ops/topk_topp_sampler.py TopKTopPSampler): "flashinfer" (FlashInfer's sampling kernels, the default on CUDA up
    to 0.11.0 and from 0.21 where they run: flashinfer_samples), "sort" (PyTorch: a sorted copy, 0.11.1-0.16 and
    ROCm before 0.17) or "triton" (0.17 on: the Triton top-k / top-p kernel)."""
    if runner.name == "V2":
        if not runner.sampler_warmup:
            return "gumbel"
        return "v2-flashinfer" if flashinfer_samples(rules, gpu) else "v2-triton"
    if rules.v1_sampler == "flashinfer" and flashinfer_samples(rules, gpu):
        return "flashinfer"
    return rules.topk_topp


def priced_kind(kind: str, rules: Behaviour) -> str:
    """The pass that sets the sampler peak: from 0.21 V1's FlashInfer pass (width + 12 a logit: the bf16 logits,
    Sampler.forward's float32 copy, FlashInfer's masked copy and softmax; flashinfer_sample ->
    top_k_top_p_sampling_from_logits, 0.32.0 v1/sample/ops/topk_topp_sampler.py:580-617, flashinfer-python
    0.7.2.post1 sampling.py:1807-1818, the per-request top-k tensor missing the fast path :1583-1594) is followed by
    the seeded pass through forward_native (Behaviour.v1_native_warmup), the Triton top-k / top-p, whose width + 12
    a logit and cached rows are never less: that one is priced ("triton"). Both less the float32 copy's 4 for
    float32 logits (float32_copy)."""
    return "triton" if kind == "flashinfer" and rules.v1_native_warmup else kind


def float32_copy(width: int) -> int:
    """Bytes a logit of V1 Sampler.forward's `logits.to(torch.float32)` (v1/sample/sampler.py 0.11.1:87,
    0.12.0-0.32.0:90): a new float32 tensor, unless the logits are float32 already (a model served in float32),
    which .to hands back as they are: 0. V2's apply_sampling_params always copies (empty_like().copy_,
    v1/worker/gpu/sample/sampler.py 0.33.0:241-242)."""
    return 0 if width == 4 else 4


def rejection_pass_bytes(spec, requests: int, rules: Behaviour, runner: Runner, gpu=None) -> tuple:
    """(bytes, how) of V1's rejection-sampler dummy pass with a drafter, 0 where not modelled: read in 0.32.0 and
    0.33.0 only (gpu_model_runner.py 0.32.0:5995-6040). One draft token a request: the runner's random target logits
    [2 N, V] in the model dtype (the N sampler logits freed as the name is rebound); RejectionSampler.forward
    (v1/sample/rejection_sampler.py:140-200) copies the N bonus rows (width), whose Sampler pass keeps its float32
    raw logits (sampler.py:90-94, held in bonus_sampler_output); the N target rows to float32 and a clone (8);
    rejection_sample's softmax (:487, 4), sample_recovered_tokens' exponential q [N, V] float32 and its reciprocal
    (:697-709, 8): 3 x width + 24 bytes a request's logit at the peak, beside the Triton top-k / top-p rows the
    sampler passes cached (apply_sampling_constraints -> apply_top_k_top_p, :582). With draft probabilities
    (dummy_draft_probs) 4 more: the float32 [N, V] softmax the runner passes in and holds through both calls. The
    all-greedy second call (:6025-6037) stops before the softmax. Other releases' rejection passes are not
    modelled."""
    if runner.name != "V1" or rules.runner not in ("0.32", "0.33") or getattr(spec, "draft", None) is None:
        return 0, ""
    vocab, width = spec.vocab_size, DTYPE_BYTES[spec.dtype]
    probs = dummy_draft_probs(getattr(spec.draft, "config", None))
    per, rows = 3 * width + 24 + (4 if probs else 0), triton_rows(gpu, requests)
    drafted = " (with the float32 draft probabilities)" if probs else ""
    return (requests * vocab * per + rows * vocab * 4,
            f"rejection sampler over {requests} requests x {vocab} logits x {per} B{drafted} + Triton rows {rows} x "
            f"{vocab} x 4 B")


def dummy_draft_probs(config) -> bool:
    """Whether the dummy rejection pass gets draft probabilities: draft_sample_method "probabilistic" with the
    standard rejection sampler (0.32.0 gpu_model_runner.py:6005-6016; 0.33.0 :5944-5955 also "fly"), a float32
    torch.rand [N, V] softmaxed."""
    return (getattr(config, "draft_sampling", "greedy") == "probabilistic"
            and getattr(config, "rejection_method", "standard") in ("standard", "fly"))


def sampler_pass_bytes(spec, kind: str, requests: int, gpu) -> tuple:
    """(bytes, how) the profile's sampler pass holds over `requests` dummy requests. FlashInfer's: V1's fitted
    constant a logit. The others from the code (the bf16 logits the LM head made are held by _dummy_sampler_run
    throughout; Sampler.forward's float32 copy; temperature in place): "sort" (0.11.1-0.16 apply_top_k_top_p; ROCm
    before 0.17) peaks inside the sort itself on the GPU: sorting_bytes_per_logit. "triton" (0.17-0.20) from 8
    requests masks the float32 logits in place, keeping a float32 vocabulary row for each of min(next power of two
    of min(SMs, requests), SMs) programs (topk_topp_triton.py, cached), then the softmax's probabilities and
    random_sample's exponential race: width + 12 a logit (width + 8 for float32 logits, which Sampler.forward does
    not copy: float32_copy; so in the sort's figures below); below 8 requests apply_top_k_top_p_pytorch
    (topk_topp_sampler.py 0.17.0:251-299, the same in 0.21.0:311-359), the same CUDA sort as 0.11.1-0.16's with its
    result scattered back into the logits in place (scatter_, 0.17.0:299): sorting_bytes_per_logit(in_place_scatter),
    whose post-sort phase, width + 22 a logit, is what vLLM 0.32's own V1 sampler measures on the CPU (24 for bf16,
    tests/data/vllm_sampler_profile_peak.json), where the sort allocates no CUDA buffers. V2's
    Gumbel kernel: the logits alone.
    V2 from 0.33 (vllm 0.33 paths; 0.34 the same) samples twice: the default pass above, freed when it returns, then
    one with SamplingParams.for_sampler_warmup() (sampling_params.py:1477-1493: temperature, top-k 50, top-p, min-p,
    penalties, logit bias, bad words, 5 logprobs) for every dummy request. The logits stay held; apply_sampling_params
    copies them to float32 (v1/worker/gpu/sample/sampler.py:241-242) and the logits processors, temperature and min-p
    work on the copy in place (their Triton kernels allocate nothing a logit). "v2-flashinfer": flashinfer_sample
    (v1/sample/ops/topk_topp_sampler.py:631-668) calls top_k_top_p_sampling_from_logits with a per-request top-k
    tensor, which misses FlashInfer's fast path (flashinfer-python 0.7.2.post1, the release 0.33 pins, sampling.py
    :1583-1594; 0.7.4 the same), so top_k_mask_logits writes a masked float32 copy (:676) and torch.softmax its
    probabilities (:1795-1796) beside it: width + 12 a logit. "v2-triton" (no FlashInfer: ROCm, a T4): the copy
    masked in place by apply_top_k_top_p_triton (topk_topp_triton.py:1618-1726) with its cached rows as above, then
    gumbel_sample's partial maxima: width + 4 a logit and the rows. The logprobs after either (sample/logprob.py
    compute_topk_scores: a top-5 of the held logits) add no vocabulary-wide tensor."""
    vocab, width = spec.vocab_size, DTYPE_BYTES[spec.dtype]
    logits = requests * vocab
    if kind == "gumbel":
        return logits * width, f"{requests} requests x {vocab} logits x {width} B"
    if kind == "flashinfer":
        per = FLASHINFER_SAMPLER_BYTES[0]
        return logits * per, f"{requests} requests x {vocab} logits x {per} B (FlashInfer)"
    if kind == "v2-flashinfer":
        return logits * (width + 12), (f"{requests} requests x {vocab} logits x {width + 12} B (V2's warmup-parameter "
                                       f"pass: the logits, a float32 copy, FlashInfer's top-k mask and softmax)")
    if kind == "v2-triton":
        rows = triton_rows(gpu, requests)
        return (logits * (width + 4) + rows * vocab * 4,
                f"{requests} requests x {vocab} logits x {width + 4} B (V2's warmup-parameter pass: the logits and a "
                f"float32 copy) + Triton top-k/top-p rows {rows} x {vocab} x 4 B")
    if kind == "triton" and requests >= 8:
        rows, per = triton_rows(gpu, requests), width + float32_copy(width) + 8
        return (logits * per + rows * vocab * 4, f"{requests} requests x {vocab} logits x {per} B + "
                                                 f"Triton top-k/top-p rows {rows} x {vocab} x 4 B")
    per = sorting_bytes_per_logit(width, requests, vocab, in_place_scatter=kind == "triton")
    return logits * per, f"{requests} requests x {vocab} logits x {per} B (top-k/top-p by sorting)"


SOFTCAP_LOGIT_BYTES = 4  # DiffusionGemma's _softcap_logits: a float32 [rows, vocab] output (below)


def diffusion_samples(spec, runner: Runner) -> bool:
    """Whether the profile's sampler is DiffusionGemma's DiffusionSampler: a diffusion model (its canvas) on V2,
    whose ModelState.custom_sampler replaces the runner's Sampler in load_model (0.24.0 gpu/model_runner.py:334-337,
    0.28.0 :409-412, 0.34.0 :527-533; diffusion_gemma.py DiffusionGemmaModelState.custom_sampler, rejection sampler
    None), so neither the Gumbel pass nor 0.33's warmup-parameter pass runs."""
    return bool(getattr(spec, "canvas_length", 0)) and runner.name == "V2"


def diffusion_sampler_pass_bytes(spec, requests: int, runner: Runner) -> tuple:
    """(bytes, how) of DiffusionGemma's profile sampler pass. Its compute_logits runs the LM head (logits in the
    model dtype) and then _softcap_logits, one compiled kernel (torch.compile, diffusion_gemma.py 0.24.0:123-129,
    0.28.0:129-135, 0.32.0:125-131, 0.34.0:126-132) writing float32 logits beside its input: width + 4 a logit, the
    input freed as the name is rebound (0.34.0 :333-348). A config without final_logit_softcapping (transformers'
    default 30.0) is not modelled.
    - 0.24-0.33: the runner's _dummy_sampler_run computes those logits over the dummy requests' rows (0.24.0
      model_runner.py:633-645, 0.28.0 :771-782, 0.32.0 :972-983; 0.33.0 :993-1014 calls the sampler twice) and
      hands them to DiffusionSampler, whose dummy batch has num_draft_tokens 0 (InputBatch.make_dummy, 0.28.0
      input_batch.py:185) and so takes _handle_prefill: nothing a logit. `requests` rows x (width + 4).
    - 0.34 (Runner.model_state_sampler): DiffusionGemmaModelState.dummy_sampler_run (0.34.0 :924-926) runs
      DiffusionSampler.profile_run (:1284-1300): one request's canvas, canvas_length rows of zero hidden states
      (model dtype), as a denoise step (num_draft_tokens = canvas). The tile's logits (the softcap's width + 4),
      then sample_row_stats (diffusion_gemma_sampler.py:112-155) writes the softmax in the embedding's dtype (the
      model's) beside the float32 logits for self-conditioning (compute_sc: no single-step slot): 4 + width a logit
      again; no top-k / top-p and no logprobs for the dummy slot; the self-conditioning matmul's output is
      [canvas, hidden]. canvas x vocab x (width + 4) + the zero hidden states canvas x hidden x width."""
    vocab, width = spec.vocab_size or 0, DTYPE_BYTES[spec.dtype]
    per = width + SOFTCAP_LOGIT_BYTES
    if not runner.model_state_sampler:
        return (requests * vocab * per,
                f"{requests} requests x {vocab} logits x {per} B (DiffusionGemma's logits and their float32 softcap; "
                f"its sampler's dummy pass is a prefill, nothing sampled)")
    canvas = spec.canvas_length
    return (canvas * vocab * per + canvas * spec.hidden_size * width,
            f"one canvas of {canvas} rows x {vocab} logits x {per} B (DiffusionSampler.profile_run: the float32 "
            f"softcapped logits and the softmax for self-conditioning) + its {canvas} zero hidden states")


SMALL_SORT_MAX = 4096  # torch sorts rows up to this long in place (aten/src/ATen/native/cuda/Sort.h)
FULL_SORT_ROWS = range(2, 128)  # row counts torch sorts as one flat radix sort (SortStable.cu)
ROW_BY_ROW_VOCAB = 1_000_000  # rows this long torch sorts one at a time (SortStable.cu: nsort >= 1000000)


def sorting_bytes_per_logit(width: int, requests: int, vocab: int, in_place_scatter: bool = False) -> int:
    """Bytes a logit at the peak of 0.11.1-0.16's top-k / top-p by sorting (v1/sample/ops/topk_topp_sampler.py
    apply_top_k_top_p, 0.11.1:152-192, 0.16.0:243-283), and of 0.17 on's below 8 requests (`in_place_scatter`:
    apply_top_k_top_p_pytorch, 0.17.0:258-299, scatters into the logits themselves), on top of the LM head's logits
    (width) and Sampler.forward's float32 copy (4; none for float32 logits: float32_copy) that the dummy run holds
    throughout. The sort's outputs stay: float32 values and int64 order (12). Past the sort, the top-k and top-p bool
    masks (2), the sorted probabilities (4) and the scattered copy (4; none in place): width + 26 (22 in place).
    During it, torch's CUDA sort of rows longer than SMALL_SORT_MAX (Sort.cpp sort_cuda_kernel -> SortStable.cu
    launch_stable_sort_kernel) allocates beside the outputs: from 128 rows (or one row) an int64 reverse-index tensor
    (8) and CUB's segmented radix sort's third keys and values buffers, float32 and int64 (12,
    dispatch_segmented_radix_sort.cuh InvokePasses, is_overwrite_okay false): width + 36; from 2 to 127 rows one
    flat sort of (value, index and row) pairs, two 8-byte pair tensors (16), a float32 keys output (4) and CUB's
    third keys and values buffers (12): width + 48. One row, and every row of ROW_BY_ROW_VOCAB or more, is sorted by
    itself (segmented_sort_large_segments: one row's int64 index array, and radix_sort_pairs' third keys and values
    for that row, reused row after row): 20 bytes a logit of one row, so 20 / rows a logit (rounded up). ROCm's
    hipCUB taken to allocate alike (not read)."""
    held = width + float32_copy(width) + 12  # the logits, their float32 copy, the sort's outputs
    after_sort = held + 2 + 4 + (0 if in_place_scatter else 4)
    if vocab <= SMALL_SORT_MAX:
        return after_sort
    if requests == 1 or vocab >= ROW_BY_ROW_VOCAB:
        beside_outputs = -(-(8 + 12) // requests)
    else:
        beside_outputs = 16 + 4 + 12 if requests in FULL_SORT_ROWS else 8 + 12
    return max(after_sort, held + beside_outputs)


def triton_rows(gpu, requests: int) -> int:
    """The float32 vocabulary rows apply_top_k_top_p_triton caches: one a program, min(SMs, requests) programs,
    allocated as min(next power of two of them, SMs) (v1/sample/ops/topk_topp_triton.py:1688-1696 in 0.33)."""
    sms = sm_count(gpu) if gpu is not None else DEFAULT_SM_COUNT
    return min(1 << (min(sms, requests) - 1).bit_length(), sms)


def activation_per_token(spec, tp: int, later_stage: bool = False) -> int:
    """Bytes per token the forward pass holds at its peak besides the MLP's intermediates: hidden state and
    residual and this rank's q/k/v, in the model dtype. On a later pipeline stage (`later_stage`) the residual is the
    received intermediate buffer itself: the model starts from views of it (0.26.0 models/llama.py:414-417, the
    runner's slices, gpu_model_runner.py:3370-3372) and every layer's fused add-norm updates it in place
    (llama.py:317-325; CUDA's kernels/vllm_c.py:50-55 registers fused_add_rms_norm inplace=True), so only the hidden
    state is new; the buffer is counted where it is built (vllm_budget.stage_inputs, lazy_stage_inputs). V0 is left
    as it was (not re-read)."""
    hidden = 1 if later_stage else 2
    return (hidden * spec.hidden_size + qkv_width(spec, tp)) * DTYPE_BYTES[spec.dtype]


def dense_layers(spec, stage=None) -> bool:
    """Whether an MoE model has dense MLP layers beside its routed ones (DeepSeek's first_k_dense_replace, Jamba's
    period, Llama 4 Maverick's interleave_moe_layer_step 2, ...: model/layers.py ffn_kinds), whose width is
    spec.intermediate_size, the "dense" weights' (intermediate_size; Llama 4's intermediate_size_mlp). On pipeline
    `stage` only among the layers it builds and runs, [first_layer, end_layer) as get_pp_indices deals them: the rest
    are PPMissingLayer (models/utils.py make_layers 0.5.5:181, 0.6.0:233, 0.8.5:595-613) and the forward loops over
    start_layer..end_layer alone (deepseek_v2.py 0.5.5:459, 0.6.0:459, 0.8.5:658), so DeepSeek-V2-Lite's one dense
    layer (layer 0, first_k_dense_replace 1: deepseek_v2.py 0.8.5:526-528) is stage 0's only."""
    if not any(g.name == "dense" and g.parameters for g in spec.params) or spec.intermediate_size <= 0:
        return False
    if stage is None or not spec.ffn_kinds:
        return True
    return "dense" in spec.ffn_kinds[max(stage.first_layer, 0):stage.end_layer]


def dense_mlp_per_token(spec, tp: int) -> int:
    """Bytes per token of a dense MLP layer's gate/up and activated outputs (3 I over tp), as a dense model's."""
    return 3 * spec.intermediate_size // tp * DTYPE_BYTES[spec.dtype]


def mlp_per_token(spec, tp: int, rules: Behaviour, moe=None) -> int:
    """Bytes per token of the MLP's intermediates: a dense MLP's gate/up and activated outputs (3 I), or the
    fused-MoE buffers of the release (vllm_versions module docstring) for k routed pairs of N = 2 I gate/up rows
    (I up rows where the experts have no gate) and K = hidden: separate k (N + I + K), caches k (max(N, K) + I),
    workspace k (max(I, K) + max(N, K)), plus e4m3 copies of x and of the activated intermediate for fp8 experts.
    MXFP4 experts keep three I-wide buffers a pair whatever kernel runs them (vllm_mxfp4.py), Marlin's two caches
    where 2 I' >= K' and without the tile padding: fused_marlin_moe's intermediate_cache13 k max(2 I', K') and
    intermediate_cache2 k I' (I' a rank's intermediate padded to 128, K' the hidden size to 256; fused_marlin_moe.py
    0.10.1:114-127, experts/marlin_moe.py 0.32.0:100-120, the shapes of MarlinExperts.workspace_shapes :712-713), its
    output M x K' beside them not counted, nor K' above 2 I' (gpt-oss at tp 4 and beyond); the OAI Triton path
    (Hopper) holds less, k I + k K (triton_kernel_fused_experts' intermediate cache and matmul_ogs's scatter
    scratchpad, experts/gpt_oss_triton_kernels_moe.py 0.32.0:791-802, third_party/triton_kernels/matmul_ogs.py
    init_allocation), and FlashInfer's TRT-LLM MoE (SM10x) allocates its own per call (not read past the launcher).
    Triton is what vLLM 0.32 runs for 16-bit experts on Hopper and for block-fp8 experts on Hopper without expert
    parallelism (fused_moe/oracle/unquantized.py, fp8.py _get_priority_backends); other GPUs' and backends' buffers
    are not modelled. The caches and the workspace differ only where the hidden size exceeds a rank's expert
    intermediate (DeepSeek-V3, Qwen3 MoE, any MoE at a high enough tp). `moe` (sharding.MoeLayout): the experts'
    own TP degree under DP / EP (1 with EP: whole experts, so the whole intermediate a pair)."""
    if not spec.experts:
        return dense_mlp_per_token(spec, tp)
    moe_tp = tp if moe is None else moe.moe_tp
    k, inter, hidden = spec.experts_per_token, spec.expert_intermediate_size // moe_tp, spec.hidden_size
    if mxfp4_experts(spec):  # Marlin's two caches, unpadded (docstring)
        return k * 3 * inter * DTYPE_BYTES[spec.dtype]
    # fp8 experts (W8A8): x and the activated intermediate quantised to e4m3 for the two GEMMs
    # (moe_kernel_quantize_input in the prepare step and experts/triton_moe.py apply; their scales not counted)
    quantised = hidden + k * inter if "fp8" in _expert_formats(spec) else 0
    return expert_buffers_per_token(spec, tp, rules, moe) + quantised


def _expert_formats(spec) -> set:
    return {g.stored for g in spec.params if g.name == "experts"}


def mxfp4_experts(spec) -> bool:
    return "mxfp4" in _expert_formats(spec)


def expert_buffers_per_token(spec, tp: int, rules: Behaviour, moe=None) -> int:
    """Bytes per token of the Triton experts' buffers of the release (mlp_per_token), in the model dtype."""
    moe_tp = tp if moe is None else moe.moe_tp
    k, inter, hidden = spec.experts_per_token, spec.expert_intermediate_size // moe_tp, spec.hidden_size
    # non-gated experts (Nemotron-H's relu2) have N = I up rows and an activation of I outputs
    # (modular_kernel.py adjust_N_for_activation in 0.32)
    n = inter if spec.model_type in NON_GATED_MLP else 2 * inter
    if rules.moe_buffers == "separate":
        width = n + inter + hidden
    elif rules.moe_buffers == "caches":
        width = max(n, hidden) + inter
    else:
        width = max(inter, hidden) + max(n, hidden)
    return k * width * DTYPE_BYTES[spec.dtype]


MOE_BUFFERS = {"separate": "fused-MoE buffers", "caches": "fused-MoE caches", "workspace": "fused-MoE workspace"}


def forward_peak(spec, tp: int, tokens: int, rules: Behaviour, moe=None, later_stage: bool = False,
                 mxfp4=None, stage=None) -> int:
    """The profile forward's activations over `tokens` tokens; the fused-MoE buffers cover at most the release's
    chunk of tokens. With D > 1 data-parallel ranks (`moe`: sharding.MoeLayout) the MoE layers run on every DP
    rank's tokens: the default all2all backend (config/parallel.py all2all_backend "allgather_reducescatter", 0.32)
    all-gathers them before the experts (fused_moe/runner/moe_runner.py _maybe_dispatch, dispatch_router_logits),
    and every DP rank's profile run is a dummy batch of max_num_batched_tokens (gpu_model_runner.py profile_run ->
    _dummy_run(max_num_tokens) on every rank), so the experts see D x tokens, and the gathered hidden states are one
    more D x tokens x hidden tensor (the router logits gathered beside them not counted). That backend keeps no
    workspace of its own (device_communicators/all2all.py AgRsAll2AllManager: NCCL all-gather / reduce-scatter over
    the DP group, or the EP group with sequence-parallel MoE; nothing allocated before the KV cache). Under -pcp P
    the same again over the P ranks: each runs the whole dummy batch and the MoE layers all-gather the P ranks' rows
    (engines/vllm_pcp.py; MoeLayout.gathered: D x P). `later_stage`:
    a later pipeline stage's residual is its intermediate buffer (activation_per_token). `mxfp4`
    (vllm_mxfp4.Mxfp4Kernel): the kernel of MXFP4 experts, which decides their chunking (expert_tokens) and, run
    modular, holds its buffers in the workspace it keeps (moe_workspace; Mxfp4Kernel.forward_buffers: DeepSeek-V4's
    Marlin at TP 8 keeps 10.7 times the three I-wide buffers mlp_per_token counts, the hidden size being 16 times a
    rank's intermediate). `stage`: the pipeline stage whose layers run (dense_layers; None: the whole model)."""
    ranks = _gathered_ranks(spec, moe)
    held = tokens * ranks * spec.hidden_size * DTYPE_BYTES[spec.dtype] if ranks > 1 else 0
    mlp = mlp_buffers(spec, tp, tokens, rules, moe, mxfp4, stage)
    return tokens * activation_per_token(spec, tp, later_stage) + mlp + held


def mlp_buffers(spec, tp: int, tokens: int, rules: Behaviour, moe=None, mxfp4=None, stage=None) -> int:
    """Bytes of the forward's MLP buffers: mlp_per_token over the tokens they cover (expert_tokens), or for MXFP4
    experts on a modular kernel what it keeps where that is more, and CUTLASS's per-call scratch beside it
    (vllm_mxfp4.Mxfp4Kernel.forward_buffers, scratch), or an MoE model's dense layers where V0 runs them
    (dense_layers_outgrow; on `stage`, where its own layers include one)."""
    covered = expert_tokens(spec, tokens, rules, moe, mxfp4) if spec.experts else tokens
    mlp = covered * mlp_per_token(spec, tp, rules, moe)
    if dense_layers_outgrow(spec, tp, tokens, rules, moe, mxfp4, stage):
        mlp = tokens * dense_mlp_per_token(spec, tp)
    if spec.experts and mxfp4_experts(spec) and mxfp4 is not None:  # the buffers a modular kernel keeps
        scratch = mxfp4.scratch(spec, tp if moe is None else moe.moe_tp, covered)
        mlp = mxfp4.forward_buffers(mlp, moe_workspace(spec, tp, tokens, rules, moe, mxfp4), scratch)
    return mlp


def dense_layers_outgrow(spec, tp: int, tokens: int, rules: Behaviour, moe=None, mxfp4=None, stage=None) -> bool:
    """Whether V0's profile forward peaks in an MoE model's dense MLP layers rather than in its fused-MoE buffers.
    V0's forward is eager and runs a dense layer over the whole batch, its gate/up and activated outputs freed after
    the layer as the experts' buffers are, so the larger of the two per layer sets the peak: past the fused-MoE chunk
    (DeepSeek-V2-Lite's layer 0, DeepseekV2MLP of 10,944 over 163,840 tokens beside MoE buffers of 65,536:
    deepseek_v2.py 0.5.1:79-83, :366-375; fused_moe.py 0.5.1:428-456), or wherever the dense width outweighs the
    routed pairs' (Llama 4 Maverick at TP 4: 3 x 16,384 / 4 x 2 = 24,576 B a token against the caches' 14,336).
    That is every V0, the releases up to 0.7 and 0.8-0.10.x falling back to it (vllm_v1_oracle.v0_rules, era "v0"),
    whose fused-MoE caches are V1's: 0.8.5 and 0.9.2 run the model eager on V0 (config.py 0.8.5:3884-3898,
    0.9.2:4558-4564: the piecewise compile only under VLLM_USE_V1), profile V0's scheduler's batch
    (worker/model_runner.py 0.8.5:1233-1237, 0.9.2:1296-1300), and the dense layers are LlamaMLP of
    intermediate_size_mlp (llama4.py 0.8.5:276-290, 0.9.2:277-291) and DeepseekV2MLP of intermediate_size
    (deepseek_v2.py 0.8.5:88-92, :526-540; 0.9.2:91-95, :567-581) beside fused_experts_impl's caches for at most
    VLLM_FUSED_MOE_CHUNK_SIZE 32,768 tokens (envs.py 0.8.5:456-457, 0.9.2:547-548; fused_moe.py 0.8.5:1275-1304,
    0.9.2:1266-1300). V1's dense layers are left out (compiled forward not re-read; from 0.14 the MoE workspace
    outlives the layer). A pipeline `stage` counts them only where its own layers include a dense one (dense_layers:
    DeepSeek-V2-Lite at -pp 2 on stage 0 alone; Maverick's alternate, so every stage)."""
    if not spec.experts or rules.era != "v0" or not dense_layers(spec, stage):
        return False
    covered = expert_tokens(spec, tokens, rules, moe, mxfp4)
    return tokens * dense_mlp_per_token(spec, tp) > covered * mlp_per_token(spec, tp, rules, moe)


def dense_words(spec, tp: int, tokens: int, rules: Behaviour, moe=None, mxfp4=None, stage=None) -> str:
    """The profile source's words where V0's dense layers set the MLP's peak (dense_layers_outgrow), else ""."""
    if not dense_layers_outgrow(spec, tp, tokens, rules, moe, mxfp4, stage):
        return ""
    per = dense_mlp_per_token(spec, tp)
    return (f", the dense layers' MLP larger ({tokens} tokens x 3 x {spec.intermediate_size} / {tp} x "
            f"{DTYPE_BYTES[spec.dtype]} B = {format_gib(tokens * per)} GiB)")


def gathered_words(layout) -> str:
    """Whose tokens the profile's MoE layers run beyond this rank's, in words: the DP ranks', the PCP ranks'."""
    ranks = [f"{n} {name}" for n, name in ((layout.dp, "DP"), (layout.pcp, "PCP")) if n > 1]
    return f", over the {' x '.join(ranks)} ranks' tokens" if ranks else ""


def _gathered_ranks(spec, moe) -> int:
    """The DP x PCP ranks whose tokens the MoE layers gather (forward_peak, MoeLayout.gathered); 1 for a dense
    model."""
    return moe.gathered if moe is not None and spec.experts else 1


def expert_tokens(spec, tokens: int, rules: Behaviour, moe=None, mxfp4=None) -> int:
    """The tokens the fused-MoE buffers cover: every DP and PCP rank's, at most the release's chunk (forward_peak).
    MXFP4 experts are chunked only where their kernel runs in the modular kernel (`mxfp4`,
    vllm_mxfp4.Mxfp4Kernel.modular; None: not known, taken as unchunked): fused_marlin_moe (0.10.1
    fused_marlin_moe.py:94-127; 0.16.0 the same, called from quantization/mxfp4.py:904), triton_kernel_moe_forward and
    FlashInfer's TRT-LLM MoE size their buffers by the whole batch, VLLM_FUSED_MOE_CHUNK_SIZE being the Triton experts'
    (fused_experts_impl) and the modular kernel's; 0.17's MarlinExperts run in the modular kernel, which chunks them
    (modular_kernel.py 0.17.0:1038-1053, MarlinExperts.supports_chunking True), while Hopper's OAI Triton and SM10x's
    TRT-LLM stay monolithic in 0.17 (quantization/mxfp4.py 0.17.0:1003-1011 is_monolithic, :1152-1166). The modular OAI
    Triton / TRT-LLM classes of 0.19 on meet no chunk (none from 0.18)."""
    gathered = tokens * _gathered_ranks(spec, moe)
    chunked = not mxfp4_experts(spec) or (mxfp4 is not None and mxfp4.modular)
    chunk = rules.moe_chunk_tokens if chunked else None
    return min(gathered, chunk or gathered)


def moe_workspace(spec, tp: int, tokens: int, rules: Behaviour, moe=None, mxfp4=None) -> int:
    """Bytes of the fused-MoE workspace the profile forward leaves allocated. From 0.14 the modular kernel takes its
    buffers from the process-wide WorkspaceManager (fused_moe/modular_kernel.py:1141 get_simultaneous, 0.32), whose
    tensor only ever grows (v1/worker/workspace.py:209-266 _ensure_workspace_size, 0.33: replaced by a larger one,
    never freed), so the sampler pass runs on top of it. 0 where the buffers are freed after each layer ("caches",
    "separate"). MXFP4 experts keep what their kernel's shapes ask of the same manager where it is the modular
    kernel (`mxfp4`, vllm_mxfp4.Mxfp4Kernel.kept; None: not known, 0): Marlin from 0.17, k (max(I', K') +
    max(2 I', K')) a token, 0.137 GiB for gpt-oss-20b over A27's 2,048 tokens (A27, 0.19.0 on an A100, never fitted
    on: -0.1% without it, -0.5% with it); OAI Triton and TRT-LLM only where their monolithic classes cannot run
    (more than one DP rank, EPLB: 0.19 on); DeepSeek-V4's (Marlin, Humming, TRT-LLM, DeepGEMM) always."""
    if not spec.experts or rules.moe_buffers != "workspace":
        return 0
    if mxfp4_experts(spec):
        moe_tp = tp if moe is None else moe.moe_tp
        return mxfp4.kept(spec, moe_tp, expert_tokens(spec, tokens, rules, moe, mxfp4), moe) if mxfp4 else 0
    return expert_tokens(spec, tokens, rules, moe) * expert_buffers_per_token(spec, tp, rules, moe)


def persistent_after_profile(spec, tp: int, stage, settings, rules: Behaviour, runner: Runner, gpu=None,
                             moe=None, mxfp4=None) -> int:
    """Bytes of the profile peak still allocated when the profile run ends, which a measured sizing counts as used
    memory rather than transient (0.34 extensible_kv_cache.py measure_kv_cache_bytes): the fused-MoE workspace
    (moe_workspace) and, on the last stage, the Triton top-k / top-p rows (triton_rows), cached for the process
    (v1/sample/ops/topk_topp_triton.py:1690-1696 _TRITON_BUFFER_CACHE); none where DiffusionSampler samples
    (diffusion_samples), which never calls them."""
    tokens = settings.max_num_batched_tokens
    workspace = moe_workspace(spec, tp, tokens, rules, moe, mxfp4)
    if stage is not None and not stage.is_last or runner.pooling:  # a pooling model never samples
        return workspace
    requests = min(settings.max_num_seqs, tokens)
    kind = priced_kind(dummy_sampler(runner, rules, gpu), rules)
    triton = not diffusion_samples(spec, runner) and (kind == "v2-triton" or (kind == "triton" and requests >= 8))
    return workspace + (triton_rows(gpu, requests) * (spec.vocab_size or 0) * 4 if triton else 0)


def held_under_sampler(spec, tp: int, tokens: int, requests: int, rules: Behaviour, kind: str, moe=None,
                       mxfp4=None) -> int:
    """Bytes the profile holds while its sampler pass runs: profile_run keeps the forward's output hidden states
    (tokens x hidden) and their rows for the dummy requests (requests x hidden) until the sampler returns
    (v1/worker/gpu/model_runner.py:1034-1050 in 0.33; gpu_model_runner.py:6193-6204 in 0.32's V1), and the fused-MoE
    workspace stays (moe_workspace). FlashInfer's fitted constant already counts the hidden states (measured peaks)."""
    hidden = 0 if kind == "flashinfer" else (tokens + requests) * spec.hidden_size * DTYPE_BYTES[spec.dtype]
    return hidden + moe_workspace(spec, tp, tokens, rules, moe, mxfp4)


MM_LIMIT_PER_PROMPT = 999  # V1's images a prompt when --limit-mm-per-prompt leaves the modality out

# Architectures whose vLLM class sets supports_encoder_tp_data (0.32 read: mllama4.py, qwen2_vl.py, qwen2_5_vl.py,
# qwen3_vl.py, and qwen3_5.py's subclasses of it): with --mm-encoder-tp-mode data every TP rank builds the whole tower
# (its layers with disable_tp) and runs its share of the images (vision.py run_dp_sharded_vision_model); any other
# falls back to weights with a warning (config/model.py). vLLM asks the class it resolved for the whole model
# (config/model.py 0.32.0:730-731 _model_info, :818-829), the top-level name, never a nested config's.
ENCODER_TP_DATA = ("Llama4ForConditionalGeneration", "Qwen2VLForConditionalGeneration",
                   "Qwen2_5_VLForConditionalGeneration", "Qwen3VLForConditionalGeneration",
                   "Qwen3VLMoeForConditionalGeneration", "Qwen3_5ForConditionalGeneration",
                   "Qwen3_5MoeForConditionalGeneration")


def tower_data_parallel(spec, mode) -> bool:
    """Whether vLLM runs this model's tower data-parallel over the TP ranks (--mm-encoder-tp-mode data where its
    class supports it)."""
    return mode == "data" and served_architecture(spec) in ENCODER_TP_DATA


def encoder_pass(spec, tp: int, stage, settings, runner: Runner, skip: bool,
                 limits: Optional[MediaLimits] = None, data_parallel: bool = False,
                 processor_kwargs: Optional[ProcessorKwargs] = None) -> Optional[tuple]:
    """(peak, held, source) of the profile's vision-tower pass, or None where there is none: the tower's own peak,
    and what stays allocated through the text forward after it (the encoder cache). vLLM 0.32
    (multimodal/encoder_budget.py MultiModalBudget, v1/core/encoder_cache_manager.py compute_mm_encoder_budget; the
    same rule in every V1 release read, 0.8.5-0.32.0): images = max(1, min(budget // T, max_num_seqs x per prompt)),
    T the embeddings an image becomes, budget = max(max_num_batched_tokens, T), per prompt = max(1, min(the
    modality's --limit-mm-per-prompt count (999 by default), max_model_len // T)) (0.10.2 on; before, the limit
    whatever the length: a difference only where max_num_seqs is smaller than the budget's images), run as one
    batch. The tower's peak a patch: VisionEncoder.peak_bytes_per_patch; the pixel values (cast to the model dtype
    with the processor's output, multimodal/processing/context.py call_hf_processor) beside them. The encoder cache
    holds images x T embeddings of the language model's width until profile_run ends. Data-parallel
    (--mm-encoder-tp-mode data, Llama 4): run_dp_sharded_vision_model pads the batch's tiles to a multiple of tp
    (a second copy of the pixel values) and each rank runs ceil(tiles / tp) of them through the whole tower; Qwen's
    items are shared whole (VisionEncoder.profiled: Qwen2-VL's and Qwen2.5-VL's are dummy videos). The modality
    profiled is the one of the most tokens an item among those not limited to 0 (encoder_budget.py
    get_modality_with_max_tokens over the active modalities). --mm-processor-kwargs sizes the Qwen-VL dummy items
    (VisionEncoder.with_processor_kwargs: vLLM's ProcessingInfo reads the merged kwargs, context.py
    get_merged_mm_kwargs)."""
    enc = spec.vision_encoder
    first = stage is None or stage.index == 0  # V2 gates it to the first pipeline stage; V1's runs on every stage
    if skip or not spec.multimodal or not runner.encoder_profiled or (runner.name == "V2" and not first):
        return None
    if enc is None:
        return 0, 0, ("a multimodal architecture whose vision tower's profile pass is not modelled (Gemma 3's, "
                      "Llama 4's, Mistral 3's and the Qwen-VL towers' are)")
    limits = limits or MediaLimits()
    width = DTYPE_BYTES[spec.dtype]
    enc = enc.with_processor_kwargs(processor_kwargs).profiled(settings.max_model_len, limits.image != 0,
                                                               limits.video != 0, limits)
    limit = limits.video if enc.item == "videos" else limits.image
    t, most = enc.tokens_per_item, enc.budget_tokens or enc.tokens_per_item  # the batch: by the largest item
    per_prompt = max(1, min(limit or MM_LIMIT_PER_PROMPT, settings.max_model_len // most))
    images = max(1, min(max(settings.max_num_batched_tokens, most) // most, settings.max_num_seqs * per_prompt))
    patches = images * enc.patches_per_item
    peak = (patches * enc.peak_bytes_per_patch(width, tp) + images * enc.pixels_per_item * width
            + enc.once_bytes(width))
    how = f"vision tower over {images} {enc.item} x {enc.patches_per_item} patches"
    how += f" ({enc.assumed})" if enc.assumed else ""
    if enc.processor is None and (limits.image_width or limits.image_height):
        how += " (--limit-mm-per-prompt's image size not modelled for this tower: its largest image assumed)"
    if data_parallel and enc.tiles_per_item == 1:  # Qwen: run_dp_sharded_mrope_vision_model gives each rank whole
        # items (balanced by patches) and copies its share of the pixel values (torch.cat) before the whole tower
        share = -(-images // tp)
        peak = (share * enc.patches_per_item * enc.peak_bytes_per_patch(width, 1)
                + (images + share) * enc.pixels_per_item * width + enc.once_bytes(width))
        how += f", {share} of them on this rank (data-parallel)"
    elif data_parallel:
        tiles = images * enc.tiles_per_item
        share = -(-tiles // tp)  # tiles a rank runs
        tile_pixels = enc.pixels_per_item // enc.tiles_per_item * width
        peak = (share * enc.patches_per_item // enc.tiles_per_item * enc.peak_bytes_per_patch(width, 1)
                + (tiles + share * tp) * tile_pixels)
        how += f", {share} of their {tiles} tiles on this rank (data-parallel)"
    held = images * t * spec.hidden_size * enc.embed_copies * width  # Qwen3-VL: deepstack's embeddings too
    copies = f" x {enc.embed_copies}" if enc.embed_copies > 1 else ""
    return peak, held, (f"{how} {format_gib(peak)} GiB, then its {images} x {t}{copies} embeddings "
                        f"{format_gib(held)} GiB held")


def sampler_pass(spec, tp: int, tokens: int, requests: int, rules: Behaviour, runner: Runner, gpu, layout,
                 last: bool, mxfp4=None) -> tuple:
    """(bytes, how, held words) of the profile's sampler pass on the last stage (0 elsewhere): the sampler's
    (sampler_pass_bytes; a diffusion model's: diffusion_sampler_pass_bytes) or the rejection sampler's where larger,
    on top of what the forward leaves held (held_under_sampler)."""
    kind = priced_kind(dummy_sampler(runner, rules, gpu), rules)
    if diffusion_samples(spec, runner):
        kind, (sampler, how) = "diffusion", diffusion_sampler_pass_bytes(spec, requests, runner)
    else:
        sampler, how = sampler_pass_bytes(spec, kind, requests, gpu)
    if kind == "triton" and rules.v1_native_warmup and runner.name == "V1":
        how += " (the seeded forward_native pass after FlashInfer's)"
    rejection, rejection_how = rejection_pass_bytes(spec, requests, rules, runner, gpu)
    if rejection > sampler:
        sampler, how = rejection, f"{rejection_how} (above the sampler pass's {format_gib(sampler)} GiB)"
    held = held_under_sampler(spec, tp, tokens, requests, rules, kind, layout, mxfp4) if last else 0
    held_how = f", {format_gib(held)} GiB of it held from the forward" if held else ""
    return (sampler + held if last else 0), how, held_how


def mlp_transient(spec, tp: int, tokens: int, rules: Behaviour, moe=None, mxfp4=None) -> int:
    """Bytes of the forward's MLP buffers (mlp_buffers) beyond the fused-MoE workspace that outlives them
    (moe_workspace): what is live only while the MLP runs."""
    return mlp_buffers(spec, tp, tokens, rules, moe, mxfp4) - moe_workspace(spec, tp, tokens, rules, moe, mxfp4)


def v0_fallback_peak(spec, tp: int, settings, rules: Behaviour, stage, moe: str, layout, mxfp4, gpu,
                     skip_mm: bool = False) -> tuple:
    """(bytes, source) of V0's profile run in 0.8-0.10.1 (vllm_mamba_v0.py: worker/model_runner.py 0.9.2:1296-1376):
    the forward over max_num_batched_tokens as V0's scheduler sets them, then on the last stage the driver's sampler
    over one row for each of the max_num_seqs dummy prompts, top-k / top-p by sorting (sampler.py 0.9.2:281,
    :398-424: sampler_pass_bytes "sort"), with the forward's output held (held_under_sampler). No class that falls
    back to V0 for its state is multimodal, but a pipeline's V0 on 0.8.0-0.9.0 (vllm_v0_pp.py) serves any model:
    V0's multimodal dummy data (one item a modality unless --limit-mm-per-prompt: MultiModalConfig
    get_limit_per_prompt, "999 if envs.VLLM_USE_V1 else 1", config.py 0.8.5:2800-2808) is not modelled, and said so
    (skip_mm: --skip-mm-profiling, which 0.8-0.9 lack)."""
    tokens, requests = settings.max_num_batched_tokens, settings.max_num_seqs
    forward = forward_peak(spec, tp, tokens, rules, layout, mxfp4=mxfp4, stage=stage)
    moe += dense_words(spec, tp, tokens, rules, layout, mxfp4, stage)
    mm = "; V0's multimodal dummy data not modelled" if spec.multimodal and not skip_mm else ""
    source = f"forward over {tokens} tokens{moe} (V0's scheduler{mm}) {format_gib(forward)} GiB"
    if stage is not None and not stage.is_last:
        return forward, source
    sampler, how = sampler_pass_bytes(spec, "sort", requests, gpu)
    sampler += held_under_sampler(spec, tp, tokens, requests, rules, "sort", layout, mxfp4)
    return max(forward, sampler), f"max({source}, V0's sampler over {how} {format_gib(sampler)} GiB)"


def profile_peak(spec, tp: int, stage, settings, rules: Behaviour, runner: Runner, skip_mm: bool = False,
                 gpu=None, mm_limits: Optional[MediaLimits] = None, data_parallel: bool = False,
                 layout=None, processor_kwargs: Optional[ProcessorKwargs] = None, stage_buffers: int = 0,
                 indexer: tuple = (0, 0, ""), mxfp4=None) -> tuple:
    """(bytes, source) of the profile run's torch peak. `stage_buffers`: a later stage's intermediate tensors made
    by the text pass's first dummy run and kept under it and the sampler (vllm_budget.lazy_stage_inputs).
    `indexer`: (growth, logits, words) of a sparse-attention model's lightning indexer (vllm_indexer_profile.py):
    the workspace its K gather grows beyond the fused-MoE buffers, held under the forward and the sampler alike
    (negative where FLASHMLA_SPARSE's reservation at build, in the weights, already holds those buffers), and
    the dummy logits tensor it allocates at its call, beside the forward's activations and that workspace but not
    the MLP's own buffers (mlp_transient). `mxfp4` (vllm_mxfp4.Mxfp4Kernel): the kernel the MXFP4 experts run on."""
    last = stage is None or stage.is_last
    moe = f" with the {MOE_BUFFERS[rules.moe_buffers]}" if spec.experts else ""
    if spec.experts and layout is not None and not layout.default:
        moe += f" (experts at TP {layout.moe_tp}{gathered_words(layout)})"
    if rules.batch_defaults == "v0.8":  # 0.8-0.10.1 falling back to V0 for Mamba state (vllm_mamba_v0.py)
        return v0_fallback_peak(spec, tp, settings, rules, stage, moe, layout, mxfp4, gpu, skip_mm)
    if rules.era == "v0":
        tokens = settings.max_num_batched_tokens  # V0's scheduler's (vllm_settings.resolve_settings, tier "v0")
        forward = forward_peak(spec, tp, tokens, rules, layout, mxfp4=mxfp4, stage=stage)
        moe += dense_words(spec, tp, tokens, rules, layout, mxfp4, stage)
        mm = "; V0's multimodal dummy data not modelled" if spec.multimodal and not skip_mm else ""
        return forward, f"forward over {tokens} tokens{moe} (V0 profile: the scheduler's batch){mm}"
    tokens = settings.max_num_batched_tokens
    requests = min(settings.max_num_seqs, tokens)
    forward = forward_peak(spec, tp, tokens, rules, layout, stage is not None and stage.index > 0, mxfp4)
    growth, logits, indexer_how = indexer
    if growth or logits:
        forward += growth + max(0, logits - mlp_transient(spec, tp, tokens, rules, layout, mxfp4))
    if runner.pooling:  # _dummy_pooler_run instead of the sampler (vllm_pooling_budget.py)
        last_pass, how = pooler_pass_bytes(spec, tokens, requests)
        sampler = last_pass + moe_workspace(spec, tp, tokens, rules, layout, mxfp4) if last else 0
        held_how = ""
    else:
        sampler, how, held_how = sampler_pass(spec, tp, tokens, requests, rules, runner, gpu, layout, last, mxfp4)
    if growth and last:
        sampler += growth
        held_how += (f" (+ {format_gib(growth)} GiB of the indexer's workspace)" if growth > 0 else
                     f" (- {format_gib(-growth)} GiB of it in FLASHMLA_SPARSE's reservation, counted with the weights)")
    raised = f" ({settings.raised})" if settings.raised else ""  # a prefix-LM's media floor (vllm_media_floor.py)
    last_pass = "" if runner.pooling else "sampler over "
    source = (f"forward over {tokens} tokens{raised}{moe} {format_gib(forward)} GiB, {last_pass}{how} "
              f"{format_gib(sampler)} GiB{held_how}")
    if stage_buffers:
        source += (f"; + {format_gib(stage_buffers)} GiB of the stage's intermediate tensors (hidden states and "
                   f"residual), made by the first dummy run")
    if indexer_how:
        source += f"; {indexer_how}"
    encoder = encoder_pass(spec, tp, stage, settings, runner, skip_mm, mm_limits, data_parallel, processor_kwargs)
    if encoder is None:
        return stage_buffers + max(forward, sampler), f"max({source})"
    peak, held, how = encoder
    return max(peak, held + stage_buffers + max(forward, sampler)), f"max({how}; then {source})"
