"""The vLLM engine model, pinned to vLLM 0.32.0 (older releases through vllm_versions.Behaviour): from a model's
layer kinds and the KV memory each GPU has, what the server logs at start-up (blocks, tokens, concurrency, or
its refusal) and how many max_model_len sequences it then keeps resident.

Rules and where vLLM 0.32.0 has them (paths under vllm/):
- the settings a start-up runs with (batch defaults, batches in flight, prefix caching by model): vllm_settings.py.
- what each layer's cache holds: the KV cache's dtype (family quirks, a checkpoint's own KV cache, sparse MLA's
  formats) vllm_kv_dtype.py; the model's dtype on each GPU vllm_model_dtype.py; the Mamba states' dtypes and a
  hybrid's pages vllm_mamba_state.py; each layer's page and block: layer_specs over vllm_specs.py.
- start-up (v1/core/kv_cache_utils.py get_kv_cache_configs): groups from the whole model, projected on each
  pipeline stage (0.8.2-0.10.2: each stage's own layers grouped alone, the scheduler counting stage 0's, and to
  0.11.0 each worker's lines of its own count: vllm_pp_groups.py); num_blocks = available // bytes per block on
  each stage, the smallest stage wins; one block (the null block, v1/core/block_pool.py) is held back before
  checking that one max_model_len request fits, else vLLM refuses with its estimate of the longest max_model_len
  that would (estimate_max_model_len); which groups or layers price that request depends on the release
  (vllm_hybrid_manager.CHECK_PRICING, priced_groups), and so does whose share under pipeline parallelism
  (CHECK_SCOPE: the whole model's in 0.14-0.16);
  concurrency = num_blocks / blocks per request over all groups (get_max_concurrency_for_kv_cache_config).
- each worker's own count, in stage order, and --num-gpu-blocks-override N's rule by release: vllm_workers.py.
- the fewest blocks and the resident sequences: vllm_resident.py over vllm_admission.py, past the release's
  admission gate (vllm_admission_gate.py); V0's scheduler admits them into its share less the watermark:
  vllm_v0_admission.py.
- configurations refused whatever the memory, asked in the order start-up meets them: configuration_refusal. The
  architecture and the length, while the config is read: vllm_config_read.py; a --dtype, a 16-bit cache dtype other
  than the model's from 0.33 and the quantisation on this GPU: vllm_model_dtype.py; the cache dtype, ROCm's sparse
  block, sparse MLA on a GPU no sparse backend runs on, an MLA hybrid's block forced by its backend up to 0.17, as
  the attention backends meet them: vllm_backend_refusals.py; what clears each, checked against all of them:
  vllm_remedy.py. A multimodal prefix-LM's media item past the batched tokens (0.20+: vllm_media_floor.item_refusal)
  is refused in start, its remedy in words.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from typing import Optional

from ..memo import remember
from ..model.kinds import V4_KINDS, MLALatent
from ..model.layers import MAMBA_CHUNK_FALLBACK
from .figures import ESTIMATE_SAID, EngineFigures, Refusal, format_gib
from .vllm_backend_refusals import (attention_block_refusal, checkpoint_e5m2_refusal, dense_mla_dtype_refusal,
                                    mla_hybrid_block_refusal, nvfp4_refusal, octave_refusal, sm120_decode_refusal,
                                    softcap_refusal, sparse_block_refusal, sparse_dtype_refusal, sparse_gpu_refusal,
                                    v4_dtype_refusal)
from .vllm_cache_flags import kda_refusal, mamba1_fp32_refusal
from .vllm_dcp import dcp_groups, dcp_refusal, interleave_refusal, multiply_line
from .vllm_config_read import config_read_refusal
from .vllm_ct_kv import kv_scheme_refusal
from .vllm_fa4_fp8_block import fa4_fp8_block
from .vllm_gemma4_backend import forced_triton_refusal
from .vllm_hybrid_manager import (TOKENS_OVER_LENGTH, check_pricing, check_scope, coordinator_refusal, per_layer_groups,
                                  plan_specs, priced_groups)
from .vllm_index_share import index_share_refusal
from .vllm_kv_dtype import cache_precision, config_hook_line
from .vllm_mamba_mode import mamba_all_mode
from .vllm_mamba_state import hybrid_pages, mamba_state_bytes, ssm_state_dtype
from .vllm_mamba_v0 import keeps_v0_state, v0_state_refusal
from .vllm_v1_oracle import asked_kv_dtype, v0_rules, v0_unmodelled_refusal
from .vllm_v0_pp import checked_engines, virtual_engines
from .vllm_mimo import diffkv_refusal, served_layers
from .vllm_pp_groups import lines_per_worker, pipeline_groups, stage_mismatch_refusal, worker_lines
from .vllm_model_dtype import (built_quantization_refusal, float_kv_refusal, gpu_dtype_refusal, model_dtype_refusal,
                               servable_dtypes)
from .vllm_mxfp4_online import online_refusal
from .vllm_quant import is_deprecation, marlin_refusal, model_config_refusal, scheme_refusal
from .vllm_settings import Settings, with_model_defaults
from .vllm_specs import (attention_block_size, dense_mla_backend, hybrid_block_size, kv_cache_groups, layer_spec,
                         mamba_all_blocks, prefill_checkpoint_alignment)
from .vllm_triton_fp8 import triton_fp8_refusal
from .vllm_v4_pool import check_block, concurrency_blocks, kernel_pages, kernel_stride, pool_block, v4_pool_rule
from .vllm_resident import resident_admission
from .vllm_versions import PINNED, Behaviour, behaviour, in_span, parse_version, release_rule
from .vllm_workers import fewest_blocks_stage, size_workers

GiB = 2**30


# A --block-size above "all" mode's Mamba block keeps the attention block there and the Mamba block below it in
# 0.11.1-0.19.x, whose alignment does not take the block so far (vllm_specs.mamba_all_blocks; from 0.20 it does, so
# the two are equal). With prefix caching the hybrid coordinator then asserts, as the engine core builds its scheduler
# after sizing the cache (v1/engine/core.py 0.15.0:132-144, hash_block_size = cache_config.block_size): its words by
# first release, newest first (v1/core/kv_cache_coordinator.py 0.12.0:366-369 ... 0.19.1:402-405 every group's block
# a multiple of it; 0.11.1 and 0.11.2 :364-370 the Mamba block a multiple of the attention block).
ALL_MODE_BLOCK_WORDS = (
    ((0, 12), "block_size must be divisible by hash_block_size"),
    ((0, 11, 1), "KVCacheCoordinator assumes the block_size of full attention layers is divisible by other layers "
                 "now."),
)


def all_mode_block_refusal(groups, version: str) -> Optional[Refusal]:
    """vLLM's AssertionError where "all" mode's Mamba block is not a multiple of the attention block
    (ALL_MODE_BLOCK_WORDS); --block-size at the Mamba block or less clears it. None elsewhere."""
    mamba = next((g.spec.block_size for g in groups if g.spec.all_mode), None)
    attention = next((g.spec.block_size for g in groups if g.spec.kind != "mamba"), None)
    if mamba is None or attention is None or mamba % attention == 0:
        return None
    words = release_rule(ALL_MODE_BLOCK_WORDS, version, ALL_MODE_BLOCK_WORDS[-1][1])
    return Refusal(f"No common Mamba and attention block at --block-size {attention}: vLLM {version} keeps this "
                   f"hybrid's Mamba states in \"all\" mode, a state every {mamba} tokens (the multiple of the Mamba "
                   f"chunk that holds one), below the attention block the flag keeps. Its engine core stops as it "
                   f"builds the scheduler (v1/core/kv_cache_coordinator.py HybridKVCacheCoordinator): AssertionError: "
                   f"{words}", None, configuration=True,
                   field="block_size", options=(mamba,), onward="less")


def layer_specs(spec, tp: int, precision, settings: Settings, block_size: Optional[int], rules: Behaviour,
                version: str = PINNED, capability=()):
    """(per-layer CacheSpecs, block size, log lines) for the whole model in vLLM `version` on a GPU of
    `capability` (the CUDA compute capability: sparse MLA's cache, cache_precision)."""
    asked, precision = precision, cache_precision(spec, precision, capability, version, tp)
    spec = served_layers(spec, version)  # the widths this release pages (MiMo-V2's values: vllm_mimo)
    layers = spec.layers
    quantized = precision.bits < 16
    # its layers' kinds, each once in first-seen order (ModelSpec.layer_counts): what the backend's block reads
    kinds = tuple(kind for kind, _ in spec.layer_counts)
    bs = attention_block_size(kinds, quantized, block_size, version, capability)
    bs = fa4_fp8_block(kinds, precision, block_size, bs, version, capability)  # Hopper's 512-wide fp8 heads
    lines = [line] if (line := config_hook_line(spec, asked, capability, version)) else []
    mamba = list(spec.linear_layers)
    updated = ssm_state_dtype(spec, version)[1]
    if mamba and updated:
        lines.append(updated)
    state_bytes = mamba_state_bytes(spec, version)
    # in "align" mode only (prefix caching on): Qwen's gated DeltaNet checkpoints from 0.33 (vllm_specs)
    alignment = prefill_checkpoint_alignment(layers, version, capability) if settings.prefix_caching else None
    all_mode = mamba_all_mode(spec, version, settings.prefix_caching)  # a state every block: CacheSpec.all_mode
    all_block = None  # "all" mode's Mamba block, aligned to the Mamba chunk (mamba_all_blocks)
    if mamba and rules.era != "v0":  # V0 pages its attention layers alone, at their own block (groups_for)
        attention, per_token, page = hybrid_pages(spec, tp, precision, version)
        if attention is not None:
            shape = (isinstance(attention, MLALatent), version, capability, getattr(attention, "head_dim", 0))
            if all_mode:
                # --mamba-block-size replaces the chunk as the block's base (vllm_prefix_flag)
                chunk = settings.mamba_block_size or max(layer.chunk_size for layer in mamba) or MAMBA_CHUNK_FALLBACK
                raised, all_block = mamba_all_blocks(per_token, page, bs, chunk, *shape)
            else:
                raised = hybrid_block_size(per_token, page, bs, shape[0], alignment, *shape[1:])
            if raised > bs:
                lines.append(f"Setting attention block size to {raised} tokens to ensure that attention page "
                             f"size is >= mamba page size.")
            bs = raised
            if bs * per_token > page:
                lines.append(f"Padding mamba page size by {100 * (bs * per_token - page) / page:.2f}% to ensure "
                             f"that mamba page size and attention page size are exactly equal.")
    mamba_block = all_block or (bs if settings.prefix_caching else settings.max_model_len)
    if mamba and len(mamba) == len(layers) and rules.era != "v0":  # attention-free: the state block is the only one
        bs = mamba_block
    made: dict = {}  # layers of one kind are equal (frozen): one spec per kind, shared by its layers
    drafts = spec.draft.config.num_speculative_tokens if spec.draft is not None else 0  # --speculative-config
    for layer in spec.layer_counts:
        made[layer[0]] = layer_spec(layer[0], bs, tp, precision, state_bytes, mamba_block, drafts, alignment, version)
    specs = [made[layer] for layer in layers]
    if mamba and any(s.kind != "mamba" for s in specs if s is not None):
        page = max(s.page_bytes for s in specs if s is not None and s.kind != "mamba")
        specs = [s if s is None or s.kind != "mamba" else replace(s, page_bytes=max(page, s.page_bytes),
                                                                   all_mode=all_mode)
                 for s in specs]
    return specs, bs, lines


def groups_for(specs, rules: Behaviour, listed: bool = False, version: str = PINNED):
    """V0: no cache groups, every attention layer in one block table with the first one's page; its Mamba layers
    keep their states in the model's own cache (CacheEngine counts attention layers only: worker/cache_engine.py
    0.9.2:121-143; vllm_mamba_v0.py), so an attention-free model has no group. V1: kv_cache_groups.
    V0's block manager knows one window, CacheConfig.sliding_window (engine/arg_utils.py 0.6.3:909, 0.7.3:1143:
    model_config.get_sliding_window()), so it schedules every layer as full attention where they do not all slide
    alike: an interleaved model's window is dropped from the config, "the scheduler and the model
    treat it as full attention" (config.py 0.6.5:296-319, 0.7.3:329-354, 0.8.4:451-475; Gemma-2 before 0.6.5 turns
    its window off and caps max_model_len to it, config.py 0.6.3:176-184, 0.6.4:226-240: vllm_gemma2_window.py), and
    a chunked layer (Llama 4's irope) "will fall back to global attention" (attention/backends/flash_attn.py
    0.8.4:625-628), the chunk unknown to the scheduler. `listed`: the config's sliding_window is a list, which
    0.6.5-0.10.0 move off CacheConfig alike however its layers slide (vllm_window_list.py; earlier and later releases
    refuse it)."""
    if rules.era == "v0":
        paged = [s if s is not None and s.kind != "mamba" else None for s in specs]
        first = next((s for s in paged if s is not None), None)
        if first is None:
            return (), []
        if first.kind in ("sliding", "chunked") and (first.kind == "chunked" or listed or any(
                s is not None and (s.kind, s.window) != (first.kind, first.window) for s in paged)):
            first = replace(first, kind="full", window=0)  # no window V0's scheduler knows (docstring)
        return kv_cache_groups([first if s is not None else None for s in paged], version)[0], []
    return kv_cache_groups(specs, version)


def v1_planned(specs, rules: Behaviour, version: str, flags=None):
    """vllm_hybrid_manager.plan_specs for a V1 start (None for V0's, whose groups_for has its own rule)."""
    if rules.era == "v0":
        return None
    method = getattr(getattr(flags, "speculative", None), "method", "") or ""
    return plan_specs(specs, version, method)


def _layer_check(specs, settings: Settings, check):
    """(check, priced) pricing each layer of a worker's `stage` at its own spec (per_layer_groups), as
    check_enough_kv_cache_memory sums them; `check` the grouped one, whose other terms stay."""
    layers = per_layer_groups(specs)

    def own(stage) -> tuple:
        return tuple(g for g in layers if g.layers[0] in stage)

    def checked(memory: int, per_block: int, stage=(), **terms):
        mine = own(stage)
        return check(memory, per_block, groups=mine, per_request=blocks_per_request(mine, settings,
                                                                                     settings.max_model_len), **terms)
    return checked, lambda stage: _stage_block(own(stage), stage)


def _checked_layers(layout: CacheLayout) -> list:
    """The specs the start-up check prices layer by layer (vllm_hybrid_manager.CHECK_PRICING "layers"): the runner's
    where the manager is absent or off, the model's own where it groups kinds; [] where it prices groups. A DCP run
    keeps the groups' pricing (each rank's share of a request, vllm_dcp.py)."""
    if check_pricing(layout.version) != "layers" or layout.pool_rule is not None:
        return []
    if layout.planned:
        return layout.planned.checked
    return layout.specs if len(layout.sched) > 1 and (layout.dcp or 1) == 1 else []


def _on(stage, planned) -> dict:
    """The worker's layers for a check that prices them one by one (_layer_check)."""
    return {"stage": stage} if planned else {}


def blocks_per_request(groups, settings: Settings, max_model_len: int) -> int:
    return sum(g.spec.blocks_per_request(max_model_len, settings.in_flight_tokens, settings.prefix_caching)
               for g in groups)


def estimate_max_model_len(groups, settings, per_block: int, memory: int, upper: int) -> int:
    """kv_cache_utils._estimate_max_model_len_from_groups: binary search over 1..max_model_len (0.20.0:1786-1818),
    on the memory the check holds (memory_refusal: every block before 0.29, so the length it names may start yet
    never admit a prompt of that length: the length remedy, plan.fitting_remedies, names the longest that does)."""
    def fits(length: int) -> bool:
        return per_block * blocks_per_request(groups, settings, length) <= memory

    if not fits(1):
        return 0
    low, high = 1, upper
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if fits(mid) else (low, mid - 1)
    return low


NO_MEMORY = ("No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when initializing "
             "the engine (this flag also controls CPU memory reservation on the CPU backend, despite its name). "
             "See https://docs.vllm.ai/en/latest/configuration/conserving_memory/ for more details.")

# V0's ValueError for num_gpu_blocks <= 0, before the length is held against the blocks (worker/worker.py
# raise_if_cache_size_invalid 0.5.0:369-372, 0.6.3:486-489, 0.8.5:559-562, 0.10.1.1:576-579; engine/llm_engine.py
# 0.2.0:208-211): the whole count, not a virtual engine's share
V0_NO_MEMORY = ("No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when initializing "
                "the engine.")


def more_memory_hint(rules: Behaviour, measured_util: Optional[float], after_warmup: bool = True) -> Optional[str]:
    """0.34's advice in the start-up refusals (v1/core/kv_cache_planning.py:64-96 _more_kv_cache_memory_hint);
    `measured_util`: the gpu_memory_utilization of a cache sized after warmup (extensible), else None;
    `after_warmup`: the check on the measured cache (else the profile run's, before warmup). None before 0.34, whose
    messages carry their own advice."""
    if rules.kv_sizing != "extensible":
        return None
    if measured_util is None:
        return ("Try increasing `gpu_memory_utilization` when initializing the engine (this flag also controls CPU "
                "memory reservation on the CPU backend, despite its name).")
    used_by = "the model, its activations, CUDA graphs and warmup" if after_warmup else "the model and its activations"
    graphs = " CUDA graphs take less with fewer or smaller capture sizes in the compilation config." \
        if after_warmup else ""
    if measured_util < 1.0:
        return (f"The KV cache gets what is left after {used_by} within `gpu_memory_utilization`={measured_util}; "
                f"increase it (with the extensible KV cache it defaults to 1.0) or decrease `max_model_len` or "
                f"`max_num_seqs`.{graphs}")
    return (f"The extensible KV cache already takes all device memory left after {used_by}; decrease "
            f"`max_model_len` or `max_num_seqs`, or the model needs a device with more memory.{graphs}")


def no_memory_message(hint: Optional[str]) -> str:
    """The refusal when no block fits (kv_cache_utils / 0.34 kv_cache_planning.py:107-112)."""
    if hint is None:
        return NO_MEMORY
    return (f"No available memory for the cache blocks. {hint} "
            f"See https://docs.vllm.ai/en/latest/configuration/conserving_memory/ for more details.")


def refusal_message(max_model_len: int, needed: int, available: int, estimate: int, rules: Behaviour,
                    hint: Optional[str] = None) -> str:
    """kv_cache_utils._check_enough_kv_cache_memory (0.32.0; 0.34.0 kv_cache_planning.py:114-132 with `hint`,
    more_memory_hint); V0 said it in tokens [A02, A13, A16]."""
    if rules.era == "v0":
        return (f"The model's max seq len ({max_model_len}) is larger than the maximum number of tokens that can "
                f"be stored in KV cache ({estimate}). Try increasing `gpu_memory_utilization` or decreasing "
                f"`max_model_len` when initializing the engine.")
    estimated = f"{ESTIMATE_SAID} {estimate}. " if estimate else ""
    if hint is not None:
        return (f"To serve at least one request with the model's max seq len ({max_model_len}), "
                f"({format_gib(needed)} GiB KV cache is needed, which is larger than the available KV cache memory "
                f"({format_gib(available)} GiB). {estimated}{hint} Decreasing `max_model_len` also reduces what is "
                f"needed. See https://docs.vllm.ai/en/latest/configuration/conserving_memory/ for more details.")
    hint = estimated
    return (f"To serve at least one request with the model's max seq len ({max_model_len}), "
            f"({format_gib(needed)} GiB KV cache is needed, which is larger than the available KV cache memory "
            f"({format_gib(available)} GiB). {hint}Try increasing `gpu_memory_utilization` (which also controls "
            f"CPU memory on the CPU backend) or decreasing `max_model_len` when initializing the engine. "
            f"See https://docs.vllm.ai/en/latest/configuration/conserving_memory/ for more details.")


SWAP_SPACE = 4 * GiB  # V0's default --swap-space per worker: "# CPU blocks" = this // bytes per block


def v0_blocks_word(version: str, gpu_name: str = "") -> str:
    """The device V0's block-count line names (the executor's initialize_cache): "GPU" up to 0.6
    (distributed_gpu_executor.py 0.6.5:57), the platform's dispatch_key from 0.7.0, "CUDA" on ROCm too
    (executor_base.py 0.7.0:108, 0.7.2:110; platforms/cuda.py 0.7.0:79, rocm.py :66), its device_name from 0.7.3 to
    V0's last release, "cuda" or "rocm" (executor_base.py 0.7.3:111, 0.9.2:113; platforms/cuda.py 0.7.0:77, rocm.py
    :64). `gpu_name`: the GPU as vLLM names it (catalog.device_name)."""
    release = parse_version(version)
    if release < (0, 7):
        return "GPU"
    if release < (0, 7, 3):
        return "CUDA"
    return "rocm" if gpu_name.startswith("AMD ") else "cuda"


V0_CONCURRENCY_SINCE = (0, 6, 3)  # the first release whose V0 executors log "Maximum concurrency" (below)


def v0_concurrency_lines(version: str, length: int, concurrency: float) -> tuple:
    """(the concurrency V0 logs, its lines): from 0.6.3 every executor logs "Maximum concurrency for L tokens per
    request: C x" after its block counts (gpu_executor.py 0.6.3:124-127, distributed_gpu_executor.py 0.6.3:59-62,
    which the Ray and multiprocessing executors inherit; executor_base.py 0.7.0:111-114, 0.9.2:116-119); up to 0.6.2
    they log the block counts alone (gpu_executor.py 0.6.2:122-123, distributed_gpu_executor.py 0.6.2:57-58,
    0.5.0:56-57; llm_engine.py 0.2.0:205): no such line, no figure (None)."""
    if parse_version(version) < V0_CONCURRENCY_SINCE:
        return None, []
    return concurrency, [f"Maximum concurrency for {length} tokens per request: {concurrency:.2f}x"]


def size_lines(num_blocks: int, per_request: int, groups, settings: Settings, rules: Behaviour,
               per_block: int = 0, device: str = "GPU", version: str = PINNED) -> tuple:
    """(tokens, concurrency, log lines) as each release logs them; `device`: V0's word for its GPU blocks
    (v0_blocks_word); concurrency None where the release logs none (v0_concurrency_lines)."""
    length = settings.max_model_len
    block = min(g.spec.block_size for g in groups)
    if rules.era == "v0":
        tokens = num_blocks * block
        concurrency, most = v0_concurrency_lines(version, length, tokens / length)
        return tokens, concurrency, [f"# {device} blocks: {num_blocks}, # CPU blocks: "
                                     f"{SWAP_SPACE // per_block if per_block else 0}", *most]
    concurrency = num_blocks / per_request
    if rules.tokens_rule == "blocks_per_group":
        tokens = num_blocks // len(groups) * block
    else:
        tokens = int(concurrency * length)
    if in_span(version, TOKENS_OVER_LENGTH):  # 0.8.0-0.9.0: a sliding window's request counted at its whole length
        concurrency = tokens / length
    size = f"GPU KV cache size: {tokens:,} tokens"
    most = f"Maximum concurrency for {length:,} tokens per request: {concurrency:.2f}x"
    return tokens, concurrency, [f"{size}, {most}"] if rules.one_log_line else [size, most]


def configuration_refusal(spec, precision, *, tp: int, length: int, block_size: Optional[int],
                          version: str = PINNED, capability=(), gpu_name: str = "", checked: bool = True,
                          allow_deprecated: bool = False) -> Optional[Refusal]:
    """vLLM's first refusal of the configuration itself, whatever the memory, in the order start-up meets them: the
    architecture, the length, a float16 the model refuses and the weight quantisation's method (unregistered, not on
    ROCm, deprecated unless `allow_deprecated`) while ModelConfig reads the config (config/model.py 0.33.0:922),
    then a model whose V0 state cache kvplan does not model (vllm_mamba_v0.V0_UNMODELLED: MiniMax, Falcon-H1, ...),
    then in VllmConfig.__post_init__ a KDA state dtype (its hybrid hook: vllm_cache_flags.kda_refusal), a 16-bit
    cache dtype other than the model's (0.33.0 config/vllm.py:1540) and the quantisation's class, GPU and served
    dtype (:1608; vllm_quant.quant_config_refusal), bfloat16 on a GPU without it as the worker starts, a
    compressed-tensors scheme or an AutoGPTQ group size Marlin lacks as the layers are built, then the cache dtype
    (DeepSeek-V4's fp8 assert, MiMo-V2's DiffKV backend, Gemma 4's forced Triton, an NVFP4 one: nvfp4_refusal), the
    GPU and the block size while the attention layers pick their backends (the ROCm assert on the block comes after
    its fp8 check: rocm.py 0.17.0 :364-371; Triton's SM89 fp8 check: vllm_triton_fp8), then as the weights load the
    indexers a shared-indexer config's checkpoint lacks before 0.24 (vllm_index_share.index_share_refusal), then an
    MLA hybrid's pages that the block forced on its MLA backend leaves ununified (mla_hybrid_block_refusal: met after
    profiling, whatever the memory), last sparse MLA's FlashInfer call on SM12x in 0.24-0.25 (sm120_decode_refusal:
    the kernel warm-up); None when it gets past them all.
    `gpu_name`: the GPU as vLLM names it in its messages (catalog.device_name). A refusal of the dtype or the
    quantisation, and vLLM's bypass of a deprecated method, says in words only what passes every one of these checks
    (`checked`: vllm_dtype_remedy.checked_remedy, bypass_remedy).
    Worked out once per question (_CONFIGURATIONS, `spec` by identity): a release remedy's search asks it of every
    boundary release, and each release's plan asks it again as the engine starts."""
    asked = dict(tp=tp, length=length, block_size=block_size, version=version, capability=capability,
                 gpu_name=gpu_name, checked=checked, allow_deprecated=allow_deprecated)
    key = (id(spec), precision, getattr(precision, "auto", None), *asked.values())
    try:
        held = _CONFIGURATIONS.get(key)
    except TypeError:  # an unhashable field (a capability given as a list): asked afresh
        return _configuration_refusal(spec, precision, **asked)
    if held is not None and held[0] is spec:
        return held[1]
    refusal = _configuration_refusal(spec, precision, **asked)
    remember(_CONFIGURATIONS, MAX_CONFIGURATIONS, key, (spec, refusal))  # the oldest goes (and the spec it kept alive)
    return refusal


# configuration_refusal's answers within a run, each keeping its spec alive (so that its id is not reused)
_CONFIGURATIONS: dict = {}
MAX_CONFIGURATIONS = 4096


def _configuration_refusal(spec, precision, *, tp: int, length: int, block_size: Optional[int], version: str,
                           capability, gpu_name: str, checked: bool, allow_deprecated: bool) -> Optional[Refusal]:
    refusal = config_read_refusal(spec, length, version) or model_dtype_refusal(spec, version, capability) or \
        model_config_refusal(spec, capability, version, allow_deprecated=allow_deprecated) or \
        v0_state_refusal(spec, version) or v0_unmodelled_refusal(spec, version) or kda_refusal(spec, version) or \
        mamba1_fp32_refusal(spec, version) or \
        float_kv_refusal(spec, precision, version, capability) or \
        built_quantization_refusal(spec, capability, version) or \
        gpu_dtype_refusal(spec, capability, version, gpu_name) or \
        scheme_refusal(spec, capability, version) or marlin_refusal(spec, capability, version) or \
        online_refusal(spec, capability, version, tp) or \
        kv_scheme_refusal(spec, version) or checkpoint_e5m2_refusal(spec, precision, capability, version, tp) or \
        v4_dtype_refusal(spec, precision, capability, version) or \
        diffkv_refusal(spec, precision, capability, version) or octave_refusal(precision, capability) or \
        forced_triton_refusal(spec, precision, capability, version) or \
        nvfp4_refusal(spec, precision, capability, version) or sparse_gpu_refusal(spec, capability, version) or \
        sparse_dtype_refusal(spec, precision, capability, version, tp) or \
        dense_mla_dtype_refusal(spec, precision, capability, version, tp) or \
        sparse_block_refusal(spec, block_size, capability, version, precision.vllm_dtype) or \
        attention_block_refusal(spec, precision, block_size, capability, version, tp) or \
        triton_fp8_refusal(spec, precision, capability, version, gpu_name) or \
        softcap_refusal(spec, precision, block_size, capability, version) or \
        index_share_refusal(spec, version, capability) or \
        mla_hybrid_block_refusal(spec, precision, block_size, capability, version, tp) or \
        sm120_decode_refusal(spec, capability, version)
    deprecated = refusal is not None and is_deprecation(refusal)
    if refusal is None or not checked or (refusal.field not in ("dtype", "quantization") and not deprecated):
        return refusal
    from .vllm_dtype_remedy import bypass_remedy, checked_remedy

    def trial(spec, precision, version=version, capability=capability, gpu_name=gpu_name, allow_deprecated=False):
        return configuration_refusal(spec, precision, tp=tp, length=length, block_size=block_size, version=version,
                                     capability=capability, gpu_name=gpu_name, checked=False,
                                     allow_deprecated=allow_deprecated)

    words = bypass_remedy if deprecated else checked_remedy
    remedy, also = words(refusal, spec, precision, capability, version, trial, servable_dtypes)
    return replace(refusal, remedy=remedy, also=also)


@dataclass(frozen=True)
class Startup:
    figures: EngineFigures
    max_concurrency: int  # resident sequences, capped by max_num_seqs
    limited_by: str  # memory | max_num_seqs
    block_size: int = 0  # the attention block the pages were sized at (figures.block_size: vLLM's final one)
    # each pipeline worker's own block count before the smallest is taken, in stage order (None: a stage with no KV
    # layer); () where none was counted (a refusal before the memory): get_kv_cache_configs sizes one config a worker
    # on its own profiled memory (kv_cache_utils.py 0.32.0:2649-2660, the memory from executor/abstract.py :162-163)
    # and gives every worker the smallest count (:2662-2679)
    stage_blocks: tuple = ()


def start(spec, *, tp: int, precision, settings: Settings, available: list, stages: Optional[list] = None,
          block_size: Optional[int] = None, version: str = PINNED, override: Optional[int] = None,
          capability: tuple = (), measured: Optional[list] = None, gpu_name: str = "",
          flag_refusal: Optional[Refusal] = None, dcp: Optional[int] = None,
          interleave: Optional[int] = None, flags=None) -> Startup:
    """What vLLM `version` makes of `available` KV bytes on each pipeline stage (`stages`: the cache-layer
    indices each stage holds; None: one stage holding every layer); `override`: --num-gpu-blocks-override;
    `capability`: the GPU's CUDA compute capability (() for Hopper's rules); `measured`: each stage's
    plan.budget.MeasuredSizing where the cache is sized after warmup (0.34's extensible KV cache), else None;
    `flag_refusal`: a refusal of the engine's flags, whatever the memory: a prefix-LM's media item past the batched
    tokens (vllm_media_floor.item_refusal), which the front end meets before the engine core starts, LoRA's
    (vllm_lora.lora_refusal, speculative_refusal); before the memory and, as kvplan orders them, after the
    configuration's other checks (vLLM meets the worker's and the attention backends' after the front end's);
    `dcp` / `interleave`: --decode-context-parallel-size and its interleave (vllm_dcp.py: the scheduler's block spans
    block x dcp tokens of a request, the pages stay those of one rank); `flags`: the engine's EngineFlags, which the
    V1 oracle reads (vllm_v1_oracle.v0_fallback)."""
    pp = len(stages) if stages else 1
    # V0's where the release falls back to it (vllm_v1_oracle.v0_fallback: the pipeline, the cache dtype, the GPU, ...)
    rules = v0_rules(spec, version, pp, asked_kv_dtype(precision), capability, flags) or behaviour(version)
    v0 = rules.era == "v0"
    # V0's virtual engines, one a stage, each scheduling its share of the blocks (vllm_v0_pp.py); one where a V0
    # state cache serves them all (vllm_mamba_v0.py: not modelled)
    engines = 1 if keeps_v0_state(spec, version) else virtual_engines(rules, pp)
    settings = with_model_defaults(spec, settings, version)
    cache = cache_precision(spec, precision, capability, version, tp).name
    # 1. the cache layout: each layer's spec, grouped, projected on each pipeline stage (cache_layout)
    layout, lines = cache_layout(spec, tp, precision, settings, rules, stages, block_size=block_size, version=version,
                                 capability=capability, dcp=dcp, flags=flags)
    bs, groups, stages = layout.block_size, layout.groups, layout.stages
    block_of, priced = _block_pricing(spec, precision, tp, capability, layout)
    # 2. the configuration's refusals, whatever the memory (configuration_refusal: config/model.py, config/vllm.py,
    # the attention backends), then the front end's flags' and DCP's
    refusal = configuration_refusal(spec, precision, tp=tp, length=settings.max_model_len, block_size=block_size,
                                    version=version, capability=capability, gpu_name=gpu_name) or flag_refusal \
        or _dcp_refusal(spec, precision, dcp, interleave, tp, bs, version, capability,
                        getattr(flags, "dcp_q_replicate", None))
    if refusal is not None:  # refused while reading the config: no memory profile, no log lines
        return Startup(_figures(version, min(available), None, None, None, refusal, (), bs, groups,
                                layout.per_request, 0, settings, cache), 0, "memory")
    if not groups:  # V0, attention-free: no KV block, a request holds a state slot only (attention_free_start)
        return attention_free_start(version, available, bs, settings, cache, lines, gpu_name)
    # 3. the profiled memory each worker reports (v1/worker/gpu_worker.py determine_available_memory), then the
    # one-request check on it (v1/core/kv_cache_utils.py _check_enough_kv_cache_memory, memory_refusal) where the
    # release makes it before any worker sizes its cache (pre_sizing_refusal)
    profiled = [m.profiled_bytes for m in measured] if measured else available
    lines += _memory_lines(profiled, layout)
    check, priced, layered = _request_check(layout, engines, priced)
    refusal, checked = pre_sizing_refusal(layout, check, priced, layered, available, measured)
    # 4. each worker sizes its own cache, in order, with --num-gpu-blocks-override's rule (get_kv_cache_configs:
    # vllm_workers.py); a V1 worker sized on its own profile checks one request there
    util = measured[0].gpu_util if measured else None
    sized_check = None if refusal is not None or checked or v0 else \
        lambda stage, memory: check(memory, priced(stage), hint=more_memory_hint(rules, util), **_on(stage, layered))
    sizing = size_workers(stages, available, block_of, override=override, version=version, rules=rules,
                          check=sized_check, fit=_committed_fit(spec, groups, measured) if measured else None)
    lines += sizing.lines
    blocks = sizing.blocks
    refusal = refusal or sizing.refusal
    # 5. the count the workers agree on, the smallest, checked: V0's executor's, 0.34's after warmup; then the
    # override's
    if refusal is None and v0 and blocks:  # every V0 worker checks the count the executor logs
        refusal = check(min(blocks), 1)
    if refusal is None and measured and blocks:
        refusal = after_warmup_refusal(groups, stages, min(blocks), partial(check, hint=more_memory_hint(rules, util)))
    refusal = refusal or sizing.too_big
    # 6. the scheduler's, once the cache is sized and its lines logged (v1/engine/core.py 0.13.0:109-135)
    scheduler = None if refusal is not None else _scheduler_refusal(spec, layout)
    refusal = refusal or scheduler
    num_blocks = max(min(blocks), 0) if blocks else 0
    per_block = block_of(stages[0])
    # 7. the size lines (kv_cache_utils.py _report_kv_cache_config; V0: the executor's initialize_cache), then the
    # fewest blocks and the resident requests (the scheduler's admission: vllm_resident.py)
    tokens, concurrency, size = _size_lines_logged(layout, num_blocks, sizing.counted, per_block, gpu_name)
    admission = resident_admission(layout.sched, settings, version, v0=v0, engines=engines, num_blocks=num_blocks,
                                   per_request=layout.per_request, started=refusal is None)
    stage_blocks = _stage_counts(sizing.counted, len(stages))
    # an override's bytes at the stage the plan's figures are (every stage holds N blocks of its own page)
    capacity = fewest_blocks_stage(stage_blocks, available)
    shared = dict(**sizing.overridden(block_of(stages[capacity or 0])), virtual_engines=engines,
                  watermark_blocks=admission.watermark, fewest_blocks=admission.fewest)
    if refusal is not None:
        if v0 or scheduler is not None:  # its block counts logged before it refused
            lines += size
        return Startup(replace(_figures(version, min(available), num_blocks, None, None, refusal, lines, bs, groups,
                                        admission.per_request, 0, settings, cache), **shared), 0, "memory",
                       stage_blocks=stage_blocks)
    if measured:  # extensible_kv_cache.py:536-540, each worker once it commits the agreed count
        committed = committed_bytes(num_blocks, _segment_strides(spec, groups, stages[0]), measured[0].granule_bytes)
        lines.append(f"Extended KV cache to {num_blocks} blocks ({committed / 2**30:.2f} GiB).")
    figures = replace(_figures(version, min(available), num_blocks, tokens, concurrency, None, lines + size, bs,
                               groups, admission.per_request, admission.resident, settings, cache), **shared,
                      admission_blocks=admission.need)
    return Startup(figures, admission.capped, admission.limited_by, bs, stage_blocks)


@dataclass(frozen=True)
class CacheLayout:
    """The cache layout start() works out once, before any memory, with the rules and settings it was made under:
    each layer's spec and the attention block (layer_specs), the hybrid manager's plan (v1_planned), the groups over
    the whole model and their padding, each pipeline worker's own where it groups its own layers (`own`, 0.8.2-0.10.2:
    vllm_pp_groups.pipeline_groups), the groups as the scheduler counts a request's blocks (`sched`: vllm_dcp.py under
    -dcp), each stage's layers, DeepSeek-V4's pool rule (vllm_v4_pool.py, else None) and the blocks one max_model_len
    request takes over `sched`."""
    version: str
    rules: Behaviour
    settings: Settings
    specs: list
    block_size: int
    planned: object  # vllm_hybrid_manager.Planned, None for V0
    groups: tuple
    padding: list
    own: Optional[list]
    sched: tuple
    stages: list
    pool_rule: object
    per_request: int
    dcp: Optional[int]


def cache_layout(spec, tp: int, precision, settings: Settings, rules: Behaviour, stages: Optional[list], *,
                 block_size: Optional[int], version: str, capability: tuple, dcp: Optional[int], flags) -> tuple:
    """(CacheLayout, the lines logged as the layers' specs are made): each layer's spec (layer_specs, vllm_specs.py),
    grouped (v1/core/kv_cache_utils.py get_kv_cache_groups: groups_for, vllm_hybrid_manager.py) and projected on each
    pipeline stage (`stages`; None: one stage holding every layer)."""
    specs, bs, lines = layer_specs(spec, tp, precision, settings, block_size, rules, version, capability)
    planned = v1_planned(specs, rules, version, flags)  # no hybrid manager, or one turned off (vllm_hybrid_manager)
    grouping = partial(groups_for, rules=rules, listed=bool(getattr(spec, "window_list", ())), version=version)
    stages = stages or [set(range(len(specs)))]
    # 0.8.2-0.10.2: each pipeline worker groups its own layers; the scheduler counts stage 0's (vllm_pp_groups.py)
    groups, padding, own = pipeline_groups(planned.grouped if planned else specs, stages, grouping, version,
                                           v0=rules.era == "v0")
    sched = dcp_groups(groups, dcp)  # the groups as the scheduler counts a request's blocks (vllm_dcp.py)
    per_request = blocks_per_request(sched, settings, settings.max_model_len)
    layout = CacheLayout(version, rules, settings, specs, bs, planned, groups, padding, own, sched, stages,
                         v4_pool_rule(spec, version), per_request, dcp)
    return layout, lines


def pre_sizing_refusal(layout: CacheLayout, check, priced, layered, available: list, measured) -> tuple:
    """(refusal, checked) of the one-request check where get_kv_cache_configs makes it before any worker sizes its
    cache, `checked` whether it did (the workers then size without checking): 0.34's extensible cache checks every
    worker's profiled memory, before warmup, in worker order (v1/core/kv_cache_planning.py 0.34.0:1652-1662; the
    count measured after warmup is checked again: after_warmup_refusal); 0.14-0.16 price the whole model's groups
    once, against the smallest worker's memory (v1/core/kv_cache_utils.py 0.14.0:1511-1523,
    vllm_hybrid_manager.CHECK_SCOPE). Elsewhere each worker checks its own as it sizes (vllm_workers.size_workers)."""
    rules, stages = layout.rules, layout.stages
    if measured:
        hint = more_memory_hint(rules, measured[0].gpu_util, after_warmup=False)
        return next((r for stage, m in zip(stages, measured)
                     if (r := check(m.profiled_bytes, priced(stage), hint=hint, **_on(stage, layered))) is not None),
                    None), True
    if len(stages) > 1 and rules.era != "v0" and check_scope(layout.version) == "whole_model":
        return check(min(available), priced(set(range(len(layout.specs)))), hint=more_memory_hint(rules, None)), True
    return None, False


def _memory_lines(profiled: list, layout: CacheLayout) -> list:
    """What start-up logs once the memory is profiled, before any count: the hybrid manager's config lines, then
    (V1; V0 logged a "Memory profiling results" line instead) each distinct "Available KV cache memory", the manager's
    cache lines and the groups' padding warnings (where each worker grouped its own, "own": with its size lines)."""
    planned = layout.planned
    lines = list(planned.config_lines) if planned else []
    if layout.rules.era == "v0":
        return lines
    lines += [f"Available KV cache memory: {format_gib(a)} GiB" for a in dict.fromkeys(profiled)]
    lines += planned.cache_lines if planned else ()
    return lines + ([] if layout.own else padding_lines(layout.padding))


def _request_check(layout: CacheLayout, engines: int, priced) -> tuple:
    """(check, priced, layered): check(memory, per_block, ...) -> memory_refusal of one max_model_len request on a
    worker, over the groups the release prices a request on (every group under DeepSeek-V4's pool, else
    priced_groups), or layer by layer (`layered`, _checked_layers) where check_enough_kv_cache_memory reads the
    runner's specs before they are grouped, `priced` then pricing a block over them."""
    settings, sched = layout.settings, layout.sched
    # the groups a request is priced on
    checked = sched if layout.pool_rule is not None else priced_groups(sched, layout.version)
    check = partial(memory_refusal, groups=checked, settings=settings, rules=layout.rules,
                    per_request=blocks_per_request(checked, settings, settings.max_model_len),
                    engines=checked_engines(engines, layout.version))
    layered = _checked_layers(layout)
    if layered:
        check, priced = _layer_check(layered, settings, check)
    return check, priced, layered


def _committed_fit(spec, groups, measured: list):
    """0.34's extensible cache on worker `index`: (index, stage, memory, per_block) -> the bytes of the blocks whose
    granules fit `memory`, at most the reserved ones (blocks_within)."""
    def fit(index: int, stage: set, memory: int, per_block: int) -> int:
        fits = committed_blocks(memory, _segment_strides(spec, groups, stage), measured[index].granule_bytes)
        return min(fits, measured[index].profiled_bytes // per_block) * per_block
    return fit


def _scheduler_refusal(spec, layout: CacheLayout) -> Optional[Refusal]:
    """The scheduler's refusals as the engine core builds it: where each pipeline worker grouped its own layers,
    unify_kv_cache_configs' agreement before it (vllm_pp_groups.stage_mismatch_refusal); "all" mode's blocks; the
    hybrid coordinator's (vllm_hybrid_manager.coordinator_refusal)."""
    groups, own, version = layout.groups, layout.own, layout.version
    return (own and stage_mismatch_refusal([g for g, _ in own], version)) \
        or all_mode_block_refusal(groups, version) or coordinator_refusal(
            groups, version, layout.settings.prefix_caching, bool(getattr(spec, "window_list", ())))


def _size_lines_logged(layout: CacheLayout, num_blocks: int, counted: tuple, per_block: int, gpu_name: str) -> tuple:
    """(tokens, concurrency, lines) the start-up logs for the agreed `num_blocks`: the first worker's (DeepSeek-V4's
    pool: its own concurrency, vllm_v4_pool.concurrency_blocks); where each pipeline worker logs its own count
    (`counted`) before the smallest is taken, every worker's lines and worker 0's figures, the first logged
    (vllm_pp_groups.py); DCP's multiplied-size line first (vllm_dcp.multiply_line)."""
    groups, own, stages, settings, rules, version = (layout.groups, layout.own, layout.stages, layout.settings,
                                                     layout.rules, layout.version)
    pool_rule = layout.pool_rule
    logged = layout.per_request if pool_rule is None else concurrency_blocks(  # the first worker's log line
        groups, [blocks_per_request((g,), settings, settings.max_model_len) for g in groups], stages[0], pool_rule)
    tokens, concurrency, size = size_lines(num_blocks, logged, layout.sched, settings, rules, per_block,
                                           v0_blocks_word(version, gpu_name), version)
    if len(stages) > 1 and rules.era != "v0" and lines_per_worker(version) and counted and pool_rule is None:
        # each worker logs its own count (and, "own", its own groups' padding) before the smallest is taken
        said = [_worker_size(own[i] if own else (groups, ()), count, settings, rules, version, stages[i])
                for i, count in counted]
        tokens, concurrency = said[0][0], said[0][1]
        size = worker_lines([lines for _, _, lines in said])
    return tokens, concurrency, [line for line in (multiply_line(layout.dcp, version, rules),) if line] + size


def _stage_counts(counted: list, stages: int) -> tuple:
    """start()'s (stage, its own count) pairs as one count a stage, in order (None: a stage it counted none on); a
    budget below nothing counts 0 blocks, as start()'s num_blocks does (vLLM refuses there: no memory for the cache)."""
    counts = dict(counted)
    return tuple(None if index not in counts else max(counts[index], 0) for index in range(stages))


def attention_free_start(version: str, available: list, bs: int, settings: Settings, cache: str, lines: list,
                         gpu_name: str = ""):
    """V0 on an attention-free model (Mamba): CacheEngine's block is 0 bytes, so 0 GPU and CPU blocks
    (worker/worker.py 0.9.2:268-270), and raise_if_cache_size_invalid checks neither the memory nor the length
    (:560-577): vLLM starts wherever the profile run itself fit the GPU, past --gpu-memory-utilization's share if
    need be, which kvplan does not follow, refusing where its budget leaves less than nothing. The scheduler then
    runs max_num_seqs requests, each in a state slot (vllm_mamba_v0.v0_slots pads them up)."""
    logged, most = v0_concurrency_lines(version, settings.max_model_len, 0.0)
    lines = list(lines) + [f"# {v0_blocks_word(version, gpu_name)} blocks: 0, # CPU blocks: 0", *most]
    if min(available) < 0:
        refusal = Refusal("The weights, the profile run's activations and V0's Mamba state cache take more than "
                          "--gpu-memory-utilization's share of the GPU; vLLM checks no KV memory for an attention-free "
                          "model and starts only if the GPU itself holds them", None)
        return Startup(_figures(version, min(available), 0, None, None, refusal, lines, bs, (), 0, 0, settings,
                                cache), 0, "memory")
    figures = _figures(version, min(available), 0, 0, logged, None, lines, bs, (), 0, settings.max_num_seqs, settings,
                       cache)
    return Startup(figures, settings.max_num_seqs, "max_num_seqs", bs)


def _dcp_refusal(spec, precision, dcp, interleave, tp: int, block: int, version: str, capability,
                 replicate=None) -> Optional[Refusal]:
    """vLLM's refusal of -dcp for this model (vllm_dcp.dcp_refusal, `replicate` its --dcp-q-replicate) on the backend
    it picks: dense MLA's by GPU and release (vllm_specs.dense_mla_backend), FlashAttention / FlashInfer for the rest
    (the same DCP history), then the interleave against the block."""
    if not dcp:
        return None
    backend = attention_backend(spec, precision, version, capability)
    return dcp_refusal(spec, dcp, tp, backend, version, replicate) or interleave_refusal(dcp, interleave, block,
                                                                                        version)


def attention_backend(spec, precision, version: str, capability) -> str:
    """The backend whose support DCP and PCP ask: dense MLA's by GPU and release (vllm_specs.dense_mla_backend),
    for the rest FlashInfer on SM10x (platforms/cuda.py 0.32.0:158-166, 0.11.1 on; 0.10.2-0.11.0 on capability 10.0
    only, cuda.py 0.10.2:335-346), FlashAttention elsewhere (0.32.0:167-179)."""
    mla = next((layer for layer in spec.layers if isinstance(layer, MLALatent)), None)
    if mla is not None:
        return dense_mla_backend(precision.bits < 16, version, capability, mla.qk_nope_head_dim)
    sm10x = capability[:1] == (10,) if parse_version(version) >= (0, 11, 1) else tuple(capability[:2]) == (10, 0)
    return "FLASHINFER" if sm10x else "FLASH_ATTN"


def after_warmup_refusal(groups, stages: list, num_blocks: int, check) -> Optional[Refusal]:
    """The extensible cache's check once warmup is measured (0.34.0 v1/core/kv_cache_planning.py:1864-1900
    finalize_extensible_kv_cache): every worker's measured block count and the reserved one give one count, the
    smallest (:1883-1884), and shrink_kv_cache_configs (:1827-1861) checks each worker's config at that count on its
    own block bytes, in worker order, raising at the first short (v1/engine/core.py:405-414). Workers come in rank
    order, stage 0's first (distributed/parallel_state.py:2164-2170 lays ranks out dp, pp, pcp, tp), and every stage
    needs the same blocks a request (its groups are the global ones projected, kv_cache_planning.py:1517-1563), so
    with uneven stages vLLM words stage 0's bytes, not those of the stage that measured the fewest blocks."""
    for stage in stages:
        per_block = _stage_block(groups, stage)
        if per_block and (refusal := check(num_blocks * per_block, per_block)) is not None:
            return refusal
    return None


def padding_lines(padding) -> list:
    """get_kv_cache_groups' warning for each padded bucket: (padding layers, the bucket's layers)."""
    return [f"Add {pad} padding layers, may waste at most {100 * pad / n:.2f}% KV cache memory" for pad, n in padding]


def _worker_size(grouped, count: int, settings: Settings, rules: Behaviour, version: str, stage: set) -> tuple:
    """(tokens, concurrency, lines) one pipeline worker logs for its own block `count` over `grouped` (its groups,
    their padding): its padding warnings, then size_lines over the groups it holds."""
    groups, padding = grouped
    per_request = blocks_per_request(groups, settings, settings.max_model_len)
    tokens, concurrency, size = size_lines(count, per_request, groups, settings, rules, _stage_block(groups, stage),
                                           version=version)
    return tokens, concurrency, padding_lines(padding) + size


def _block_pricing(spec, precision, tp: int, capability: tuple, layout: CacheLayout) -> tuple:
    """(block_of, priced): a stage's pool bytes a block as its worker sizes the cache, and as the start-up check
    prices a request's blocks: over each stage's own groups where every worker grouped its own layers (`own`,
    vllm_pp_groups.pipeline_groups), else the whole model's groups on the stage's layers; DeepSeek-V4's pool
    (`pool_rule`, vllm_v4_pool.py) sizes and checks a block apart."""
    groups, own, stages, pool_rule, version = layout.groups, layout.own, layout.stages, layout.pool_rule, layout.version
    if own:
        return (partial(_own_stage_block, {frozenset(st): g for st, (g, _) in zip(stages, own)}),) * 2
    if pool_rule is None:
        return (partial(_stage_block, groups),) * 2
    stored = cache_precision(spec, precision, capability, version, tp)
    stride = kernel_stride(kernel_pages(spec, tp, stored), layout.block_size, version)
    return partial(pool_block, groups, rule=pool_rule, stride=stride), \
        partial(check_block, groups, rule=pool_rule, stride=stride)


def _own_stage_block(table: dict, stage: set) -> int:
    """Pool bytes a block on one stage whose worker grouped its own layers (`table`: stage -> its groups)."""
    return _stage_block(table[frozenset(stage)], stage)


def _stage_block(groups, stage: set) -> int:
    """Pool bytes a block on one stage: the widest group's (every other group's layers share its tensors)."""
    return max(g.bytes_per_block(stage) for g in groups)


def memory_refusal(memory: int, per_block: int, *, groups, settings: Settings, per_request: int, rules: Behaviour,
                   hint: Optional[str] = None, engines: int = 1) -> Optional[Refusal]:
    """kv_cache_utils._check_enough_kv_cache_memory on one worker's `memory`, the null block held back from 0.29:
    no block at all, or too few for one max_model_len request (with vLLM's estimate of the longest that fits).
    V0: raise_if_cache_size_invalid, no block at all (V0_NO_MEMORY) on the whole count, then max_model_len against
    one of `engines` shares (vllm_v0_pp.checked_engines)."""
    check = memory - per_block if rules.null_block_in_check else memory
    if rules.era == "v0" and (max(check, 0) // per_block if per_block else 0) <= 0:  # the whole count, not a share
        return Refusal(V0_NO_MEMORY, 0)
    if engines > 1 and per_block:  # V0 from 0.8: the blocks of one share
        check = max(check, 0) // per_block // engines * per_block
    if check <= 0 and rules.era != "v0":
        return Refusal(no_memory_message(hint), 0, hint=hint or "")
    length = settings.max_model_len
    if rules.era == "v0":  # max_model_len against block_size x blocks (worker.py 0.6.3:490-491, 0.8.5:563-564): a
        # sliding window's request is held to its whole length too, not to the blocks its scheduler admits it with
        tokens = max(check, 0) // per_block * min(g.spec.block_size for g in groups) if per_block else 0
        return None if length <= tokens else Refusal(refusal_message(length, 0, check, tokens, rules), None)
    if per_block * per_request <= check:
        return None
    estimate = estimate_max_model_len(groups, settings, per_block, check, length)
    return Refusal(refusal_message(length, per_block * per_request, check, estimate, rules, hint), estimate,
                   needed_bytes=per_block * per_request, hint=hint or "")


def _segment_strides(spec, groups, stage: set) -> tuple:
    """The extensible cache's segments on one stage, each one page a block (ExtensibleKVCache._segments, 0.34
    v1/worker/extensible_kv_cache.py:128-170): a region a layer of the widest group, which every other group's layers
    share tensors with (kv_cache_utils.get_kv_cache_config_from_groups), under the default layer-outermost layout;
    one region for all under a block-outermost one, which DeepSeek-V4's indexer imposes (its backend takes BLHNC /
    BLNHC only, v1/attention/backends/mla/indexer.py:300-303)."""
    widest = max(groups, key=lambda g: g.bytes_per_block(stage))
    strides = tuple(p for i, p in zip(widest.layers, widest.page_bytes_of_layers) if i in stage)
    return (sum(strides),) if any(isinstance(layer, V4_KINDS) for layer in spec.layers) else strides


def committed_bytes(blocks: int, strides: tuple, granule: int) -> int:
    """ExtensibleKVCache.physical_bytes_for (0.34 v1/worker/extensible_kv_cache.py:305-311): each segment's `blocks`
    pages rounded up to whole granules."""
    return sum(-(-blocks * stride // granule) * granule for stride in strides)


def committed_blocks(memory: int, strides: tuple, granule: int) -> int:
    """ExtensibleKVCache.blocks_within (:313-318): the most blocks whose committed bytes fit in `memory`."""
    low, high = 0, max(memory, 0) // sum(strides)  # committed_bytes grows with the blocks: the last that fits
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if committed_bytes(mid, strides, granule) <= memory else (low, mid - 1)
    return low


def final_block_size(block_size: int, groups) -> int:
    """cache_config.block_size once the cache is sized (v1/engine/core.py _initialize_kv_caches): the smallest
    group's block (DeepSeek-V4: its compressor states' 4), the attention block for every other model."""
    return min((g.spec.block_size for g in groups), default=block_size)


def _figures(version, available, blocks, tokens, concurrency, refusal, lines, block_size, groups, per_request,
             resident, settings, cache_dtype) -> EngineFigures:
    block_size = final_block_size(block_size, groups) if groups and refusal is None else block_size
    return EngineFigures(
        name="vllm", version=version, available_kv_cache_bytes=available, num_gpu_blocks=blocks,
        gpu_kv_cache_tokens=tokens, max_concurrency=concurrency, starts=refusal is None, refusal=refusal,
        log_lines=tuple(lines), kv_cache_dtype=cache_dtype, block_size=block_size, num_kv_cache_groups=len(groups),
        blocks_per_request=per_request, resident_sequences=resident, max_num_seqs=settings.max_num_seqs,
        max_num_batched_tokens=settings.max_num_batched_tokens)
