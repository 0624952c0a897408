"""vLLM's "Available KV cache memory" of one GPU, term by term (vllm/v1/worker/gpu_worker.py
determine_available_memory and vllm/utils/mem_utils.py memory_profiling in 0.32.0):

    available = requested - weights - profile peak - non-torch memory - CUDA graphs (0.20+)

- requested: ceil(total_memory x gpu_memory_utilization) (v1/worker/utils.py request_memory; V0: no ceil).
- weights as loaded, per GPU: this pipeline stage's share of the checkpoint (embeddings on the first stage,
  the LM head, a copy of a tied embedding, on the last) over tp, but for the tensors every rank holds whole
  (norms, MoE routers as ReplicatedLinear, MLA's q_a / kv_a with disable_tp: plan/sharding.py). Quantised
  checkpoints keep their stored format for the linear layers; embeddings, LM head, norms, routers (and gpt-oss
  attention, per its modules_to_not_convert) stay bf16. MXFP4 experts are padded to the MoE kernel's tile
  (model_executor/layers/fused_moe/oracle/mxfp4.py mxfp4_round_up_hidden_size_and_intermediate_size): 0.32 on
  Hopper runs OAI Triton (intermediate to 64), on other NVIDIA GPUs Marlin (intermediate to 128, hidden to
  256), which is also what Hopper loaded before 0.21 [A19: 65.97 GiB logged for gpt-oss-120b, 65.81 here].
- profile peak: the dummy forward over max_num_batched_tokens (chunked prefill) and, on the last stage, the
  sampler over min(max_num_seqs, max_num_batched_tokens) dummy requests (gpu_model_runner.py profile_run; the
  sampler as the model runner samples, vllm_runner.py);
  the forward's activations are freed before the sampler runs, so the peak is the larger of the two. V0
  profiled max(max_model_len, 2048) tokens when chunked prefill was off (max_model_len <= 32K) [A01, A02].
  A multimodal model's vision tower runs first, over a batch of dummy images (encoder_pass), and its outputs stay
  in the encoder cache through the text forward and the sampler.
- non-torch memory: what CUDA allocates outside torch after the baseline snapshot (cuBLAS and attention
  workspaces; V0's baseline also preceded the CUDA context and NCCL).
- CUDA graphs: 0.20+ subtracts the model runner's estimate of graph capture (VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS),
  which is 0 for Model Runner V2 before 0.29 and on ROCm (vllm_runner.py); earlier releases sized the cache first
  and captured graphs after.

Constants and the public start-up logs (../shared/groundtruth/vllm-startup-logs.yaml) they were fitted on are
in CONSTANTS; benchmarks/engine_budget_calibration.py scores every other case with them.
"""

from __future__ import annotations

import math
from typing import Optional

from ..model.precision import DTYPE_BYTES
from ..model.tensors import NON_GATED_MLP
from ..plan.budget import Budget, BudgetTerm, qkv_width
from ..plan.catalog import DEFAULT_SM_COUNT, sm_count
from ..plan.sharding import stage_weights
from .vllm import format_gib
from .vllm_runner import Runner, is_rocm, model_runner
from .vllm_versions import Behaviour

GiB = 2**30

# name: (value, fitted on / derived from)
CONSTANTS = {
    "v0_non_torch_small_gpu": (int(0.225 * GiB), "A13 (0.25 GiB) and A25 (0.20 GiB) logged non_torch_memory, "
                                                 "24 GB cards"),
    "v0_non_torch": (int(2.17 * GiB), "fitted on A11 (Llama-3-8B, H100, TP 1: 71.29 - 14.96 - 53.29 less this "
                                      "model's 0.88 GiB forward peak; the log says non_torch 1.79 + peak 1.26)"),
    "v0_nccl": (int(2.18 * GiB), "fitted on A11's TP 2 run (non_torch 3.58 vs 1.79 GiB at TP 1)"),
    "v1_non_torch": (GiB // 2, "assumed: V1 snapshots its baseline after the CUDA context and NCCL exist "
                               "(gpu_worker.py init_device), leaving cuBLAS/attention workspaces"),
    "v1_sampler_bytes_per_logit": (37, "V1 with FlashInfer's sampler (the default up to 0.11.0 and from 0.21); "
                                       "fitted on A19 and A20 (gpt-oss-120b on an H100, 0.10.1 and 0.11: the "
                                       "peak beyond kvplan's 65.90 GiB of weights and 0.5 GiB non-torch is 7.0 and "
                                       "7.1 GiB over 1024 dummy requests x 201,088 logits; 36.5 and 37.1 bytes "
                                       "per logit)"),
    "cuda_graphs": (int(1.25 * GiB), "assumed (kvplan's earlier graph reserve): public 0.21+ estimates run from "
                                     "0.21 GiB (Qwen2.5-0.5B, vllm#50159) to ~9.5 (Llama-3.1-70B fp8 tp 8, "
                                     "vllm#49224), too few with their settings to fit a rule"),
}
SMALL_GPU = 32 * GiB  # below: consumer cards, whose V0 non-torch memory was ~0.2-0.35 GiB [A01, A13, A25]


def _value(name: str) -> int:
    return CONSTANTS[name][0]


def mxfp4_padding(spec, tp: int, gpu_name: str, rules: Behaviour) -> float:
    """Bytes of padded MXFP4 experts over stored bytes."""
    hidden, inter = spec.hidden_size, -(-spec.expert_intermediate_size // tp)
    hopper = any(k in gpu_name.lower() for k in ("h100", "h200", "gh200", "h20"))
    if hopper and rules.era == "v1-graphs":  # 0.21+ (0.32 read) Hopper: OAI Triton kernels
        padded = (hidden, -(-inter // 64) * 64)
    else:  # Marlin (and pre-0.21 Hopper)
        padded = (-(-hidden // 256) * 256, -(-inter // 128) * 128)
    return padded[0] * padded[1] / (hidden * inter)


def loaded_weights(spec, tp: int, stage, gpu_name: str, rules: Behaviour) -> tuple:
    weights = stage_weights(spec, tp, stage)
    experts = [g for g in spec.params if g.name == "experts" and g.stored == "mxfp4"]
    if not experts:
        return weights, f"{spec.weights.source}; {spec.weights.dtype}, split over {tp} GPU(s)"
    stored = sum(g.bytes for g in experts) / sum(g.bytes for g in spec.params) * weights
    factor = mxfp4_padding(spec, tp, gpu_name, rules)
    return int(weights + stored * (factor - 1)), (f"{spec.weights.source}; MXFP4 experts padded x{factor:.4f} to "
                                                  f"the MoE kernel's tile, attention/embeddings/LM head bf16")


def dummy_sampler(runner: Runner, rules: Behaviour, gpu=None) -> str:
    """How the profile run's sampler pass samples: "gumbel" (Model Runner V2: v1/worker/gpu/model_runner.py
    _dummy_sampler_run -> sample/sampler.py; dummy requests need no logits processing, so the logits stay in the
    LM head's dtype and sample/gumbel.py gumbel_sample draws in one Triton kernel whose only buffers are
    [requests, vocab / 1024] partial maxima), or the V1 runner's top-k / top-p over float32 logits
    (v1/sample/sampler.py, ops/topk_topp_sampler.py TopKTopPSampler): "flashinfer" (FlashInfer's sampling kernels,
    the default on CUDA up to 0.11.0 and from 0.21), "sort" (PyTorch: a sorted copy, 0.11.1-0.16 and ROCm before
    0.17) or "triton" (0.17 on: the Triton top-k / top-p kernel)."""
    if runner.name == "V2":
        return "gumbel"
    if rules.v1_sampler == "flashinfer" and not is_rocm(gpu):
        return "flashinfer"
    return rules.topk_topp


def sampler_pass_bytes(spec, kind: str, requests: int, gpu) -> tuple:
    """(bytes, how) the profile's sampler pass holds over `requests` dummy requests. FlashInfer's: V1's fitted
    constant a logit. The others from the code (the bf16 logits the LM head made are held by _dummy_sampler_run
    throughout; Sampler.forward's float32 copy; temperature in place): "sort" (0.11.1-0.16 apply_top_k_top_p) adds
    the sorted logits and their int64 order, the top-k and top-p masks, the sorted probabilities and the new tensor
    the sorted logits are scattered into: width + 26 bytes a logit. "triton" (0.17-0.20) from 8 requests masks the
    float32 logits in place, keeping a float32 vocabulary row for each of min(next power of two of min(SMs,
    requests), SMs) programs (topk_topp_triton.py, cached), then the softmax's probabilities and random_sample's
    exponential race: width + 12 a logit; below 8 requests the sort, scattered in place: width + 22 (24 for bf16
    logits, as vLLM 0.32's own V1 sampler measures on the CPU, tests/data/vllm_sampler_profile_peak.json). V2's
    Gumbel kernel: the logits alone."""
    vocab, width = spec.vocab_size, DTYPE_BYTES[spec.dtype]
    logits = requests * vocab
    if kind == "gumbel":
        return logits * width, f"{requests} requests x {vocab} logits x {width} B"
    if kind == "flashinfer":
        per = _value("v1_sampler_bytes_per_logit")
        return logits * per, f"{requests} requests x {vocab} logits x {per} B (FlashInfer)"
    if kind == "triton" and requests >= 8:
        sms = sm_count(gpu) if gpu is not None else DEFAULT_SM_COUNT
        rows = min(1 << (min(sms, requests) - 1).bit_length(), sms)
        return (logits * (width + 12) + rows * vocab * 4, f"{requests} requests x {vocab} logits x {width + 12} B + "
                                                          f"Triton top-k/top-p rows {rows} x {vocab} x 4 B")
    per = width + (22 if kind == "triton" else 26)
    return logits * per, f"{requests} requests x {vocab} logits x {per} B (top-k/top-p by sorting)"


def activation_per_token(spec, tp: int) -> int:
    """Bytes per token the forward pass holds at its peak besides the MLP's intermediates: hidden state and
    residual and this rank's q/k/v, in the model dtype."""
    return (2 * spec.hidden_size + qkv_width(spec, tp)) * DTYPE_BYTES[spec.dtype]


def mlp_per_token(spec, tp: int, rules: Behaviour) -> int:
    """Bytes per token of the MLP's intermediates: a dense MLP's gate/up and activated outputs (3 I), or the
    fused-MoE buffers of the release (vllm_versions module docstring) for k routed pairs of N = 2 I gate/up rows
    (I up rows where the experts have no gate) and K = hidden: separate k (N + I + K), caches k (max(N, K) + I),
    workspace k (max(I, K) + max(N, K)), plus e4m3 copies of x and of the activated intermediate for fp8 experts.
    MXFP4 experts (OAI Triton / Marlin, not the Triton experts these shapes are) keep three I-wide buffers a pair.
    Triton is what vLLM 0.32 runs for 16-bit experts on Hopper and for block-fp8 experts on Hopper without expert
    parallelism (fused_moe/oracle/unquantized.py, fp8.py _get_priority_backends); other GPUs' and backends' buffers
    are not modelled. The caches and the workspace differ only where the hidden size exceeds a rank's expert
    intermediate (DeepSeek-V3, Qwen3 MoE, any MoE at a high enough tp)."""
    if not spec.experts:
        return 3 * spec.intermediate_size // tp * DTYPE_BYTES[spec.dtype]
    k, inter, hidden = spec.experts_per_token, spec.expert_intermediate_size // tp, spec.hidden_size
    stored = {g.stored for g in spec.params if g.name == "experts"}
    if "mxfp4" in stored:  # OAI Triton / Marlin experts: their buffers not read, kvplan's earlier three I a pair
        return k * 3 * inter * DTYPE_BYTES[spec.dtype]
    # non-gated experts (Nemotron-H's relu2) have N = I up rows and an activation of I outputs
    # (modular_kernel.py adjust_N_for_activation in 0.32)
    n = inter if spec.model_type in NON_GATED_MLP else 2 * inter
    if rules.moe_buffers == "separate":
        width = n + inter + hidden
    elif rules.moe_buffers == "caches":
        width = max(n, hidden) + inter
    else:
        width = max(inter, hidden) + max(n, hidden)
    # fp8 experts (W8A8): x and the activated intermediate quantised to e4m3 for the two GEMMs
    # (moe_kernel_quantize_input in the prepare step and experts/triton_moe.py apply; their scales not counted)
    quantised = hidden + k * inter if "fp8" in stored else 0
    return k * width * DTYPE_BYTES[spec.dtype] + quantised


MOE_BUFFERS = {"separate": "fused-MoE buffers", "caches": "fused-MoE caches", "workspace": "fused-MoE workspace"}


def forward_peak(spec, tp: int, tokens: int, rules: Behaviour) -> int:
    """The profile forward's activations over `tokens` tokens; the fused-MoE buffers cover at most the release's
    chunk of tokens."""
    moe_tokens = min(tokens, rules.moe_chunk_tokens or tokens) if spec.experts else tokens
    return tokens * activation_per_token(spec, tp) + moe_tokens * mlp_per_token(spec, tp, rules)


MM_LIMIT_PER_PROMPT = 999  # V1's images a prompt when --limit-mm-per-prompt leaves the modality out


def encoder_pass(spec, tp: int, stage, settings, runner: Runner, skip: bool) -> Optional[tuple]:
    """(peak, held, source) of the profile's vision-tower pass, or None where there is none: the tower's own peak,
    and what stays allocated through the text forward after it (the encoder cache). vLLM 0.32
    (multimodal/encoder_budget.py MultiModalBudget, v1/core/encoder_cache_manager.py compute_mm_encoder_budget; the
    same rule in every V1 release read, 0.8.5-0.32.0): images = max(1, min(budget // T, max_num_seqs x 999)), T the
    embeddings an image becomes and budget = max(max_num_batched_tokens, T), run as one batch. The tower's peak a
    patch: VisionEncoder.peak_bytes_per_patch; the pixel values (cast to the model dtype with the processor's
    output, multimodal/processing/context.py call_hf_processor) beside them. The encoder cache holds images x T
    embeddings of the language model's width until profile_run ends."""
    enc = spec.vision_encoder
    first = stage is None or stage.index == 0  # V2 gates it to the first pipeline stage; V1's runs on every stage
    if skip or not spec.multimodal or not runner.encoder_profiled or (runner.name == "V2" and not first):
        return None
    if enc is None:
        return 0, 0, ("a multimodal architecture whose vision tower's profile pass is not modelled (Gemma 3's and "
                      "Llama 4's are)")
    width = DTYPE_BYTES[spec.dtype]
    t = enc.tokens_per_item
    images = max(1, min(max(settings.max_num_batched_tokens, t) // t, settings.max_num_seqs * MM_LIMIT_PER_PROMPT))
    patches = images * enc.patches_per_item
    peak = patches * enc.peak_bytes_per_patch(width, tp) + images * enc.pixels_per_item * width
    held = images * t * spec.hidden_size * width
    return peak, held, (f"vision tower over {images} images x {enc.patches_per_item} patches "
                        f"{format_gib(peak)} GiB, then its {images} x {t} embeddings {format_gib(held)} GiB held")


def profile_peak(spec, tp: int, stage, settings, rules: Behaviour, runner: Runner, skip_mm: bool = False,
                 gpu=None) -> tuple:
    last = stage is None or stage.is_last
    moe = f" with the {MOE_BUFFERS[rules.moe_buffers]}" if spec.experts else ""
    if rules.era == "v0":
        tokens = max(settings.max_model_len, 2048) if settings.max_model_len <= 32768 else 512
        forward = forward_peak(spec, tp, tokens, rules)
        mm = "; V0's multimodal dummy data not modelled" if spec.multimodal and not skip_mm else ""
        return forward, f"forward over {tokens} tokens{moe} (V0 profile, chunked prefill off up to 32K){mm}"
    tokens = settings.max_num_batched_tokens
    requests = min(settings.max_num_seqs, tokens)
    forward = forward_peak(spec, tp, tokens, rules)
    sampler, how = sampler_pass_bytes(spec, dummy_sampler(runner, rules, gpu), requests, gpu)
    sampler = sampler if last else 0
    source = (f"forward over {tokens} tokens{moe} {format_gib(forward)} GiB, sampler over {how} "
              f"{format_gib(sampler)} GiB")
    encoder = encoder_pass(spec, tp, stage, settings, runner, skip_mm)
    if encoder is None:
        return max(forward, sampler), f"max({source})"
    peak, held, how = encoder
    return max(peak, held + max(forward, sampler)), f"max({how}; then {source})"


def graph_reserve(rules: Behaviour, runner: Runner, gpu, eager: bool = False) -> tuple:
    """(bytes, source) of the CUDA-graph term: what profile_cudagraph_memory returns, where the worker asks it."""
    if not rules.graphs_subtracted:
        return 0, "0: graphs captured after the cache was sized"
    if eager:
        return 0, "0: --enforce-eager sets cudagraph_mode NONE, so the worker skips the graph profile"
    if is_rocm(gpu):
        return 0, "0: the worker skips the graph profile on ROCm (gpu_worker.py determine_available_memory)"
    if not runner.graphs_profiled:
        return 0, f"0: {runner.why}"
    return _value("cuda_graphs"), f"{runner.name}'s profiled capture, {CONSTANTS['cuda_graphs'][1]}"


def vllm_budget(spec, tp: int, gpu, gpu_util: float, settings, rules: Behaviour, version: str,
                gpu_memory: Optional[int] = None, stage=None, eager: bool = False, skip_mm: bool = False) -> Budget:
    memory = gpu_memory or gpu.memory_bytes
    requested = math.ceil(memory * gpu_util) if rules.era != "v0" else int(memory * gpu_util)
    weights, weights_source = loaded_weights(spec, tp, stage, gpu.name, rules)
    runner = model_runner(spec, rules, gpu)
    peak, peak_source = profile_peak(spec, tp, stage, settings, rules, runner, skip_mm, gpu)
    if rules.era == "v0":
        name = "v0_non_torch_small_gpu" if memory < SMALL_GPU else "v0_non_torch"
        non_torch, nccl = _value(name), _value("v0_nccl") if tp > 1 else 0
        nt_source, nccl_source = CONSTANTS[name][1], CONSTANTS["v0_nccl"][1]
    else:
        non_torch, nccl = _value("v1_non_torch"), 0
        nt_source = CONSTANTS["v1_non_torch"][1]
        nccl_source = "0: V1 initialises NCCL before its baseline snapshot (gpu_worker.py init_device)"
    graphs, graph_source = graph_reserve(rules, runner, gpu, eager)
    available = requested - weights - peak - non_torch - nccl - graphs
    terms = (
        BudgetTerm("memory", requested, f"{gpu.name} {format_gib(memory)} GiB x gpu_memory_utilization {gpu_util}"),
        BudgetTerm("weights", weights, weights_source),
        BudgetTerm("profile_peak", peak, peak_source),
        BudgetTerm("non_torch", non_torch, nt_source),
        BudgetTerm("cuda_graphs", graphs, graph_source),
        BudgetTerm("nccl", nccl, nccl_source if tp > 1 else "tp 1"),
    )
    return Budget(available, "gpu", gpu.name, memory, gpu_util, requested, weights, peak, non_torch, graphs, nccl,
                  f"vllm {version}" + (", enforce eager" if eager else ""), None if stage is None else stage.index,
                  terms)
