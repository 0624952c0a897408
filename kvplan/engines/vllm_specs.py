"""vLLM 0.32.0's KV cache specs and cache groups, from kvplan's layer kinds. Each rule cites the vLLM file and
function it mirrors (paths under vllm/); nothing here is copied from vLLM.

- One spec per cache layer (v1/kv_cache_interface.py): FullAttentionSpec / MLAAttentionSpec, SlidingWindowSpec,
  ChunkedLocalAttentionSpec, MambaSpec. A page is one block of one layer: block_size x bytes per token, or the
  Mamba state (conv + temporal) of one sequence, padded to the attention page in hybrids.
- Per-request blocks (`max_memory_usage_bytes` / page): full and MLA cdiv(max_model_len, bs); sliding window
  cdiv(min(w - 1 + in_flight, max_model_len), bs) + 1; chunked local cdiv(min(chunk + in_flight, max_model_len),
  bs); Mamba 2 pages with prefix caching ("align" mode), else 1, + 1 prefill checkpoint (Mamba-2 from 0.32:
  MAMBA2_CHECKPOINT_SINCE; Qwen's gated DeltaNet from 0.33 where FlashInfer runs its prefill: PREFILL_CHECKPOINTS);
  in "all" mode (0.11.1-0.27.x, vllm.mamba_all_mode) cdiv(max_model_len, the chunk-aligned block: mamba_all_blocks).
- Groups (v1/core/kv_cache_utils.py get_kv_cache_groups): all specs equal, or one "uniform type" -> one group;
  otherwise pages are unified (`unify_kv_cache_spec_page_size`) and each bucket of equal specs is split into
  groups of `group_size` layers (`_get_kv_cache_groups_uniform_page_size`: the smallest bucket, or the largest
  when it is within a release's factor of the smallest, vllm_group_size.py), layers[i::n] to group i, the last
  groups padded.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from typing import Optional

from math import lcm

from ..errors import FieldError, KvplanError
from ..model.kinds import (V4_KINDS, ChunkedAttention, IndexerKeys, LinearState, MLALatent, SharedKV, SlidingWindow,
                           V4Compressed, V4IndexerKeys, blocks_for)
from .vllm_sparse import (BLACKWELL, FLASHINFER, FLASHINFER_DTYPES, HOPPER, is_rocm_platform, major_of,
                          rocm_sparse_block)
from .vllm_group_size import group_size
from .vllm_versions import PINNED, behaviour, in_span, parse_version, release_rule

MLA_ALIGN_BLOCK = 128  # platforms/interface.py _align_hybrid_block_size: MLA hybrids align blocks to 128 (0.27 on)
# The kernel block alignment a hybrid's attention block is raised by (its first release, rule, citation), newest
# first; each rule's block is the smallest multiple of the alignment whose attention page holds a Mamba state, never
# below the block chosen so far (hybrid_block_size):
HYBRID_ALIGN_RULES = (
    ((0, 27), "backend, mla 128", "0.27.0 platforms/interface.py:876-888: max(the backend's smallest kernel block, "
                                  "the block so far), at least 128 for MLA (TRTLLM / FlashInfer MLA decode)"),
    ((0, 20), "backend", "0.20.0 platforms/interface.py:576-583 (0.26.0 :876-883): max(the backend's smallest kernel "
                         "block, the block so far); no MLA floor"),
    ((0, 18), "mla 64", "0.18.0 model_executor/models/config.py:135-149 (0.19.0 :204-218): 64 for MLA (128 only "
                        "for an explicitly chosen CUTLASS_MLA, which kvplan is never told), else 16"),
    ((0, 13), "mla 64, sm10x family 32", "0.13.0 models/config.py:356-375 (0.15.0 :421-440, 0.17.1 :461-480): as "
                                         "0.18, but 32 for head size 256 on compute capability 10.x "
                                         "(is_device_capability_family(100); flashinfer#1993)"),
    ((0, 11, 1), "mla 64, sm100 32", "0.11.1 models/config.py:349-368 (0.12.0 :356-375): as 0.13, the 32 on "
                                     "capability 10.0 only (is_device_capability(100))"),
    ((0, 0), "16", "0.11.0 models/config.py:364-367: 16 for every hybrid, MLA too"),
)
# Sparse MLA on Hopper (platforms/cuda.py _get_backend_priorities: FLASH_ATTN_MLA_SPARSE for a 16-bit cache,
# FLASHMLA_SPARSE for fp8): both kernels take MultipleOf(64) blocks (v1/attention/backends/mla/
# flashattn_mla_sparse.py and flashmla_sparse.py get_supported_kernel_block_sizes), so the block is 64.
SPARSE_MLA_BLOCK = 64
# How a release sets sparse MLA's block, by its first release (newest first):
SPARSE_MLA_BLOCK_RULES = (
    ((0, 18), "multiple", "0.18.0 platforms/interface.py:427 update_block_size_for_backend (unset: the backend's "
                          "preferred block, 64) and v1/attention/backend.py:170 supports_block_size (--block-size a "
                          "multiple of the kernel's 64, else no backend); so to 0.32.0"),
    ((0, 11), "forced", "0.11.0 platforms/cuda.py:181-185 (0.17.0: 270-274) check_and_update_config: 'Forcing kv "
                        "cache block size to 64 for FlashMLASparse backend' whatever --block-size says"),
)


# On SM10x a multiple of 32 still finds FLASHINFER_MLA_SPARSE (kernel blocks [32, 64] in 0.18.0 flashinfer_mla_sparse.py
# :72-73 ... 0.31.0 :85-86, MultipleOf(32) in 0.32.0 :95-96 ... 0.34.0 :96-97) for every dtype it stores (16-bit, and
# vllm_sparse.FLASHINFER_DTYPES), whose priority list puts it beside FLASHMLA_SPARSE (platforms/cuda.py
# _get_backend_priorities); but the indexer's keys take kernel blocks of exactly 64 (v1/attention/backends/mla/
# indexer.py DeepseekV32IndexerBackend.get_supported_kernel_block_sizes: 0.18.0 :40, 0.32.0 :285, 0.34.0 :238), so
# setting up the KV cache fails in v1/worker/utils.py select_common_block_size (prepare_kernel_block_sizes: the
# cache group holds both). Its ValueError by first release (newest first):
FLASHINFER_SPARSE_BLOCK = 32
COMMON_BLOCK_WORDS = (
    ((0, 32), "[MultipleOf(32)]", "0.32.0 and 0.33.0 utils.py:554-561, 0.34.0 :547-554: each attention group's "
                                  "backend and its kernel block sizes, MultipleOf's repr (v1/attention/backend.py:55)"),
    ((0, 31), "[32, 64]", "0.31.0 utils.py:386-392: the same list, FLASHINFER_MLA_SPARSE's [32, 64]"),
    ((0, 30), "", "0.30.0 utils.py:386 'No common block size for N.'"),
    ((0, 18), " ", "0.18.0 utils.py:326 ... 0.22.1 :326, 0.23.0-0.25.1 :328, 0.26.0 :348, 0.27.x :332, 0.28.0 :367, "
                   "0.29.0 :376: 'No common block size for N. ' (a trailing space)"),
)
# The attention groups vLLM lists, in the order their layers registered (config/vllm.py get_layers_from_vllm_config:
# static_forward_context): a decoder layer builds its indexer, whose key cache registers, before the MLA layer itself
# (models/deepseek_v32/attention.py DeepseekV32Attention.__init__, 0.30.0-0.33.0 :189-202, 0.34.0 :184-196); layers
# that share an index group's top-k have a spec of their own (MLAAttentionSpec.is_index_group_leader, mla_attention.py
# 0.32.0 :1376), so a group of their own (gpu_model_runner.py get_attn_backends_for_group: backend, spec, heads).
INDEXER_GROUP = "DEEPSEEK_V32_INDEXER: [64]"
SIXTEEN_BIT = ("auto", "bfloat16", "float16")


def cuda_sparse_block_refusal(block_size: Optional[int], version: str = PINNED, capability=(), dtype: str = "auto",
                              layers: tuple = ()) -> str:
    """vLLM's refusal of sparse MLA on a CUDA GPU of `capability` at --block-size `block_size` (None: unset, the
    backend's 64) for --kv-cache-dtype `dtype` (as spelled), '' where it starts: from 0.18.0 a block that is not a
    multiple of the kernels' 64 leaves no attention backend (SPARSE_MLA_BLOCK_RULES "multiple": platforms/cuda.py
    get_valid_backends, reason "block_size not supported"), but on SM10x one of 32 leaves FLASHINFER_MLA_SPARSE and no
    kernel block the indexer shares (COMMON_BLOCK_WORDS; `layers`, the model's cache layers, name the groups listed);
    0.11.0-0.17.x force 64 whatever it says."""
    if block_size is None or block_size % SPARSE_MLA_BLOCK == 0 or sparse_block_rule(version) != "multiple":
        return ""
    if block_size % FLASHINFER_SPARSE_BLOCK == 0 and major_of(capability) == BLACKWELL and \
            _flashinfer_sparse_takes(dtype, version):
        return no_common_block(block_size, version, layers)
    return (f"No valid attention backend found for sparse MLA at block size {block_size}: vLLM's sparse MLA backends "
            f"take blocks of a multiple of {SPARSE_MLA_BLOCK} only (v1/attention/backends/mla/flashmla_sparse.py "
            f"get_supported_kernel_block_sizes; 0.18.0 v1/attention/backend.py:170 supports_block_size).")


def _flashinfer_sparse_takes(dtype: str, version: str) -> bool:
    """Whether FLASHINFER_MLA_SPARSE stores `dtype` (its supported_kv_cache_dtypes: 16-bit ones, and
    vllm_sparse.FLASHINFER_DTYPES)."""
    return dtype in SIXTEEN_BIT or dtype in release_rule(FLASHINFER_DTYPES, version, ())


def no_common_block(block_size: int, version: str, layers: tuple = ()) -> str:
    """Why a sparse MLA model does not start at `block_size` on SM10x, then select_common_block_size's ValueError in
    vLLM `version`'s words (COMMON_BLOCK_WORDS), last: the first sentence is kvplan's, for the one-line summaries."""
    sizes = release_rule(COMMON_BLOCK_WORDS, version, " ")
    words = f"No common block size for {block_size}.{sizes if sizes == ' ' else ''}"
    if sizes.startswith("["):
        groups = [INDEXER_GROUP if g == "indexer" else f"{FLASHINFER}: {sizes}" for g in _attention_groups(layers)]
        words = f"No common block size for {block_size} ({'; '.join(groups)})."
    return (f"No common block size for {block_size}: on SM10x (Blackwell) the sparse MLA layers run on {FLASHINFER}, "
            f"which takes a block of a multiple of {FLASHINFER_SPARSE_BLOCK}, but the indexer's key cache takes kernel "
            f"blocks of {SPARSE_MLA_BLOCK} only. vLLM {version} stops while it sets up the KV cache "
            f"(v1/worker/utils.py select_common_block_size): {words}")


def _attention_groups(layers: tuple) -> list:
    """The attention groups of a sparse MLA model's cache group, in registration order: "indexer" and "leader" for
    a layer that runs its own indexer (its keys first), "shared" for one that reuses the top-k of the one before."""
    order = []
    for layer in layers:
        if isinstance(layer, MLALatent) and layer.sparse:
            for group in (("indexer", "leader") if layer.leads_index_group else ("shared",)):
                if group not in order:
                    order.append(group)
    return order or ["indexer", "leader"]  # DeepSeek-V3.2's: an indexer on every layer


def sparse_block_rule(version: str) -> str:
    """SPARSE_MLA_BLOCK_RULES' rule for vLLM `version` ("multiple" before 0.11, which refuses the model anyway)."""
    return release_rule(SPARSE_MLA_BLOCK_RULES, version, "multiple")
# From 0.18 a --block-size given by hand reaches the attention backend selector (v1/attention/selector.py 0.18.0:74,
# 0.34.0:135 user_specified_block_size), which keeps only the backends whose supports_block_size takes it (a multiple
# of one of its kernel block sizes: v1/attention/backend.py 0.18.0:170-186, 0.34.0:125-141) and, where none is left,
# raises "No valid attention backend found" (platforms/cuda.py 0.18.0:282, 0.34.0:514). On CUDA every backend kvplan
# models takes the multiples of 16 and none a block that is not one: FLASH_ATTN MultipleOf(16) (flash_attn.py
# 0.18.0:91; [16, 32, 64] for a hybrid with a float32 state, :90), FLASHINFER [16, 32, 64] (flashinfer.py 0.18.0:305,
# 0.34.0:587-605 and larger pages), TRITON_ATTN MultipleOf(16) (triton_attn.py 0.18.0:274-275, 0.34.0:339-340); for MLA
# TRITON_MLA a multiple of 16 (mla/triton_mla.py 0.18.0:48-52), FLASH_ATTN_MLA MultipleOf(16), the others 32, 64 or
# 128 (MLA_KERNEL_BLOCKS). The exception: FLEX_ATTENTION, last of the non-MLA backends (platforms/cuda.py 0.18.0:89,
# :96), lists no kernel block in 0.18-0.20 (the base class's [MultipleOf(1)], backend.py 0.18.0:65), so it takes any
# block there for a 16-bit cache (its supported_kv_cache_dtypes, flex_attention.py 0.18.0:83-87) and no sinks (the
# base supports_sink False, backend.py 0.18.0:204, checked :283); MultipleOf(16) from 0.21 (flex_attention.py
# 0.21.0:143-144). Sparse MLA (multiples of 64: cuda_sparse_block_refusal) and DeepSeek-V4 (V4_BLOCK) have their own.
BACKEND_BLOCK_MULTIPLE = 16
BACKEND_BLOCK_SINCE = (0, 18)  # before it the release's --block-size choices (vllm_versions.BLOCK_SIZE_CHOICES) rule
FLEX_ANY_BLOCK = ((0, 18), (0, 21))  # [from, before): FLEX_ATTENTION takes a block of any size
FLEX_DTYPES = ("auto", "bfloat16", "float16")


def backend_block_refusal(block_size: Optional[int], version: str, mla: bool, dtype: str = "auto",
                          sinks: bool = False) -> str:
    """Why vLLM `version` finds no CUDA attention backend for a --block-size `block_size` given by hand (None:
    unset, the backend's own), '' where one takes it (BACKEND_BLOCK_MULTIPLE; FLEX_ANY_BLOCK for a non-`mla` model
    whose cache `dtype`, as vLLM spells it, is 16-bit and that has no attention `sinks`)."""
    release = parse_version(version)
    if block_size is None or release < BACKEND_BLOCK_SINCE or block_size % BACKEND_BLOCK_MULTIPLE == 0:
        return ""
    if not mla and in_span(version, FLEX_ANY_BLOCK) and dtype in FLEX_DTYPES and not sinks:
        return ""
    return (f"No valid attention backend found for block size {block_size}: vLLM {version}'s "
            f"{'MLA ' if mla else ''}attention backends on CUDA take blocks of a multiple of {BACKEND_BLOCK_MULTIPLE} "
            f"tokens only (v1/attention/backend.py supports_block_size; platforms/cuda.py get_valid_backends).")


# DeepSeek-V4 (models/deepseek_v4/sparse_mla.py DeepseekV4SparseMLABackend and v1/attention/backends/mla/indexer.py
# DeepseekV4IndexerBackend: kernel blocks [256] only; the window cache's backend prefers 256): the compressed and
# indexer caches page 256 tokens. The window cache (64) and the compressor states (4 / 8) keep blocks of their own.
V4_BLOCK = 256


@dataclass(frozen=True)
class CacheSpec:
    """What vLLM's KVCacheSpec of one layer says about memory. `shape` holds the rest of the spec's identity
    (heads, head size, dtype): two layers share a bucket only when their specs are equal."""

    kind: str  # full | mla | indexer | sliding | chunked | mamba
    block_size: int
    page_bytes: int  # one block of one layer, padding included
    window: int = 0  # sliding window / attention chunk (tokens)
    shape: tuple = ()
    checkpoint_blocks: int = 0  # Mamba: MambaSpec.num_prefill_checkpoint_blocks
    speculative_blocks: int = 0  # Mamba: MambaSpec.num_speculative_blocks (the draft tokens' states)
    # the layer's backend takes only block-outermost layouts (DeepseekV4IndexerBackend.supported_kv_cache_layouts:
    # BLHNC, BLNHC), so the whole model's cache is laid out that way and grouped by packed_groups
    block_outermost: bool = False
    # Mamba "all" mode (vllm.mamba_all_mode): a state block every block_size tokens of the request, "frees" where
    # MambaManager frees those behind the newest as the request runs, "keeps" where it holds them to the end
    all_mode: str = ""

    @property
    def uniform_type(self) -> tuple:
        """kv_cache_spec_registry uniform_type_base_spec + is_uniform_with_collection: MLA groups with full
        attention, and so does a sparse-attention indexer's key cache (an MLAAttentionSpec of role INDEXER)."""
        if self.kind in ("full", "mla", "indexer"):
            return ("full",)
        if self.kind == "mamba":
            return ("mamba", self.page_bytes)
        return (self.kind, self.window)

    def admission_cap(self, max_model_len: int, in_flight: int) -> Optional[int]:
        """`max_admission_blocks_per_request` (kv_cache_interface.py): recycling specs only."""
        if self.kind == "sliding":  # SlidingWindowSpec: +1, the window may straddle a block edge
            return blocks_for(min(self.window - 1 + in_flight, max_model_len), self.block_size) + 1
        if self.kind == "chunked":  # ChunkedLocalAttentionSpec
            return blocks_for(min(self.window + in_flight, max_model_len), self.block_size)
        return None

    def blocks_per_request(self, max_model_len: int, in_flight: int, mamba_align: bool) -> int:
        """cdiv(max_memory_usage_bytes, page_size_bytes) of the spec."""
        if self.kind == "mamba" and self.all_mode:  # MambaSpec.max_memory_usage_bytes in "all" mode
            return blocks_for(max_model_len, self.block_size) + self.speculative_blocks
        if self.kind == "mamba":  # MambaSpec.max_memory_usage_bytes: 2 pages (+ checkpoint) in "align", else 1
            return (2 + self.checkpoint_blocks if mamba_align else 1) + self.speculative_blocks
        cap = self.admission_cap(max_model_len, in_flight)
        return cap if cap is not None else blocks_for(max_model_len, self.block_size)


@dataclass(frozen=True)
class Group:
    """A KVCacheGroupSpec: layers (indices into the model's cache layers) sharing one block table."""

    spec: CacheSpec
    layers: tuple
    page_bytes_of_layers: tuple  # per layer (UniformTypeKVCacheSpecs may mix page sizes)

    def bytes_per_block(self, on: Optional[set] = None) -> int:
        """Pool bytes one block takes in this group (layer-outermost layout: the layers' pages side by side),
        counting only the layers in `on` (one pipeline stage) when given."""
        if on is None:
            return sum(self.page_bytes_of_layers)
        if len(on) >= len(self.layers):
            return sum(p for i, p in zip(self.layers, self.page_bytes_of_layers) if i in on)
        page = self._page_of  # a stage of a few layers in a group of many (pp 16): its own layers looked up
        return sum(page[i] for i in on if i in page)

    @cached_property
    def _page_of(self) -> dict:
        """layer -> its page bytes (a group's layers are distinct)."""
        return dict(zip(self.layers, self.page_bytes_of_layers))


# Dense MLA (no indexer) on a CUDA GPU: how a release sets the block, by its first release (newest first). Up to 0.17
# platforms/cuda.py check_and_update_config forces one backend's block, given --block-size or not, whatever the cache
# dtype; from 0.18 --block-size is kept and an unset block is the backend's preferred one. Kernel blocks (v1/attention/
# backends/mla/*.py get_supported_kernel_block_sizes, 0.12.0 to 0.34.0 unchanged; 0.11.1's class attributes the same):
# FLASHINFER_MLA [32, 64] (0.34.0 flashinfer_mla.py:204-205), CUTLASS_MLA [128] (cutlass_mla.py:49-50), FLASHMLA
# [64] (flashmla.py:57-58), FLASH_ATTN_MLA MultipleOf(16) (flashattn_mla.py:49-50), TRITON_MLA MultipleOf(16) from
# 0.18 (triton_mla.py:126-127; none before: any block).
DENSE_MLA_BLOCK_RULES = (
    ((0, 18), "preferred", "0.18.0 platforms/interface.py:427-474 update_block_size_for_backend (0.34.0 :760-791): "
                           "--block-size kept (:434), else the first layer's backend's get_preferred_block_size("
                           "DEFAULT_BLOCK_SIZE) (v1/attention/backend.py:170-197: the default where a kernel block "
                           "divides it, else the smallest kernel block); the backend is picked with block_size None "
                           "(v1/attention/selector.py:74-77) in platforms/cuda.py _get_backend_priorities order "
                           "(0.18.0 :55-82, 0.34.0 :94-152): SM10x FLASHINFER_MLA first, Hopper FLASH_ATTN_MLA "
                           "(16-bit caches only, 0.18.0 flashattn_mla.py:47) then FLASHMLA"),
    ((0, 15), "flashinfer", "0.15.0 platforms/cuda.py:185-239 (0.15.1 the same; 0.16.0 :188-242, 0.17.0 / 0.17.1 "
                            ":205-263): SM10x "
                            "(is_device_capability_family(100)) forces FLASHINFER_MLA where qk_nope_head_dim == 128 "
                            "(a block neither 32 nor a multiple of 64 becomes 64), else CUTLASS_MLA; Hopper FLASHMLA"),
    ((0, 13), "cutlass", "0.13.0 platforms/cuda.py:183-226 (0.14.0 / 0.14.1 the same lines; 0.15.0 has FLASHINFER_MLA "
                         "first): SM10x "
                         "(is_device_capability_family(100)) forces CUTLASS_MLA (a block not a multiple of 128 becomes "
                         "128), Hopper FLASHMLA (is_flashmla_dense_supported: major 9; not a multiple of 64 "
                         "becomes 64)"),
    ((0, 11, 1), "cutlass-sm100", "0.11.1 platforms/cuda.py:184-225 (0.12.0 :182-223): as 0.13, but Blackwell is "
                                  "is_device_capability(100), compute capability 10.0 exactly"),
    ((0, 10, 1), "exact", "0.11.0 platforms/cuda.py:142-177 (0.10.1 / 0.10.1.1 :142-178, 0.10.2 :142-181): compute "
                          "capability 10.0 exactly forces CUTLASS_MLA's 128, Hopper FLASHMLA's 64 "
                          "(is_flashmla_supported: major 9); any other block, multiples included, is replaced"),
    ((0, 8), "hopper", "0.8.0 platforms/cuda.py:149-160 (0.8.5 :147-158, 0.9.2 :155-166, 0.10.0 :152-163): Hopper "
                       "FLASHMLA's 64 forced (is_flashmla_supported: major 9, attention/ops/flashmla.py 0.8.0:28), "
                       "any other block replaced, on V0 and V1 alike; no other GPU's block forced (CUTLASS_MLA's 128 "
                       "only under VLLM_ATTENTION_BACKEND, 0.10.0 :165-170): TRITON_MLA at --block-size or 16"),
)
MLA_KERNEL_BLOCKS = {"FLASHINFER_MLA": (32, 64), "CUTLASS_MLA": (128,), "FLASHMLA": (64,), "FLASH_ATTN_MLA": (16,),
                     "TRITON_MLA": (16,)}  # a block is taken where one of them divides it (backend.py:170-186)
FORCED_MLA_BLOCK = {"FLASHINFER_MLA": 64, "CUTLASS_MLA": 128, "FLASHMLA": 64}  # "Forcing kv cache block size to N"
# The qk_nope_head_dim values for which SM10x's dense MLA is FLASHINFER_MLA, by first release (newest first); any other
# (a config without the key reads as 1) gets CUTLASS_MLA. 0.15-0.17 force FLASHINFER_MLA only where it is 128, else
# CUTLASS_MLA (platforms/cuda.py getattr(hf_text_config, "qk_nope_head_dim", 1): 0.15.0 :188-204, 0.16.0 :191-207,
# 0.17.0 / 0.17.1 :208-224). From 0.18 FLASHINFER_MLA's supports_combination refuses the others (flashinfer_mla.py
# 0.18.0:80-90 [64, 128]; 0.19.0:80-90, 0.34.0:240-248 [64, 128, 192]) and the next SM10x backend in the priority
# list is CUTLASS_MLA (platforms/cuda.py 0.18.0:68-69, 0.19.0:84-85, 0.34.0:120-125; TOKENSPEED_MLA between them from
# 0.22 takes qk_nope_head_dim 128 only, tokenspeed_mla.py 0.34.0:156-165). 0.11.1-0.14.x force CUTLASS_MLA whatever
# the dims (platforms/cuda.py 0.13.0:185-187).
FLASHINFER_MLA_NOPE = (((0, 19), (64, 128, 192)), ((0, 18), (64, 128)), ((0, 15), (128,)))


def dense_mla_block_rule(version: str) -> Optional[str]:
    """DENSE_MLA_BLOCK_RULES' rule for vLLM `version`; None before 0.8 (0.7's V0 TritonMLA takes any block:
    platforms/cuda.py 0.7.3:141-143 sets 16 where unset and forces none)."""
    return release_rule(DENSE_MLA_BLOCK_RULES, version)


def dense_mla_backend(kv_quantized: bool, version: str = PINNED, capability=(), qk_nope_head_dim: int = 128) -> str:
    """The MLA backend whose kernel blocks set a dense MLA model's block in vLLM `version` on a CUDA GPU of
    `capability` (() is Hopper). Up to 0.17 the one check_and_update_config forces the block for (FLASHMLA on
    Hopper even where FLASH_ATTN_MLA then runs a 16-bit cache); TRITON_MLA where none is forced or preferred
    (Ampere, Ada, SM12x, and 0.11.0-0.12.x's compute capability 10.3). SM10x: CUTLASS_MLA up to 0.14; from 0.15
    FLASHINFER_MLA where it takes the model's `qk_nope_head_dim` (FLASHINFER_MLA_NOPE), else CUTLASS_MLA, as for
    GLM-4.7-Flash (192) in 0.15-0.18.x."""
    rule = dense_mla_block_rule(version)
    major = major_of(capability)
    if major == HOPPER:
        return "FLASH_ATTN_MLA" if rule == "preferred" and not kv_quantized else "FLASHMLA"
    if major != BLACKWELL or rule == "hopper" or (rule in ("exact", "cutlass-sm100") and
                                                   tuple(capability[:2]) != (10, 0)):
        return "TRITON_MLA"
    if rule in ("preferred", "flashinfer") and qk_nope_head_dim in release_rule(FLASHINFER_MLA_NOPE, version, ()):
        return "FLASHINFER_MLA"
    return "CUTLASS_MLA"


def dense_mla_block(block_size: Optional[int], kv_quantized: bool, version: str = PINNED, capability=(),
                    qk_nope_head_dim: int = 128) -> int:
    """A dense MLA model's block in vLLM `version` (0.8 on) on a CUDA GPU of `capability` (DENSE_MLA_BLOCK_RULES) at
    --block-size `block_size` (None: unset), for a model of `qk_nope_head_dim` (dense_mla_backend). From 0.18: as
    given, else the backend's preferred block (SM10x's FLASHINFER_MLA: 32, 64 from 0.34; CUTLASS_MLA: 128; Hopper's
    FLASHMLA for a quantized cache: 64); up to 0.17: given or 16, then replaced by the forced backend's block unless
    that backend takes it (0.11.0: only its own block)."""
    rule = dense_mla_block_rule(version)
    backend = dense_mla_backend(kv_quantized, version, capability, qk_nope_head_dim)
    if rule == "preferred":
        return block_size or preferred_block(default_block_size(version), MLA_KERNEL_BLOCKS[backend])
    block = block_size or default_block_size(version)
    if backend not in FORCED_MLA_BLOCK:
        return block
    forced = FORCED_MLA_BLOCK[backend]
    if rule in ("exact", "hopper"):
        return forced
    if backend == "FLASHINFER_MLA":  # 32 kept, else multiples of 64 only (not 96: backend.py would take it)
        return block if block == 32 or block % 64 == 0 else forced
    return block if block % forced == 0 else forced


# Up to 0.17 a Mamba hybrid's attention block is sized before the forcing above: VllmConfig.__post_init__ runs
# try_verify_and_update_config (models/config.py HybridAttentionMambaModelConfig: the block that holds a state, the
# state page padded to it) before current_platform.check_and_update_config (config/vllm.py 0.11.1 :348 then :609,
# 0.14.1 :537 / :828, 0.17.1 :663 / :1020). An MLA hybrid's block is aligned to 64 (128 only for a CUTLASS_MLA
# chosen by hand: models/config.py 0.11.1:348-349, 0.14.1:390-393), so on SM10x the CUTLASS_MLA forced in 0.11.1-
# 0.14.x sets a 128-token block over one that is not a multiple of 128 (platforms/cuda.py 0.11.1:184-217, 0.14.1
# :183-218), and the MLA page then differs from the state page padded to the old block: get_kv_cache_groups cannot
# unify them (v1/core/kv_cache_utils.py 0.11.1:1177 a bare NotImplementedError; 0.12.0 :912-916, 0.14.1 :931-935
# unify_kv_cache_spec_page_size "The page size of the layer is not divisible by the maximum page size"; where the
# smaller page divides the larger, the padded state page cannot grow with its block: 0.12.0 :920, 0.14.1 :939 an
# AssertionError). From 0.18 platforms/cuda.py forces no MLA block (DENSE_MLA_BLOCK_RULES "preferred").
FORCED_AFTER_HYBRID = ("exact", "cutlass-sm100", "cutlass", "flashinfer")  # DENSE_MLA_BLOCK_RULES' rules up to 0.17
UNIFY_PAGES_SINCE = (0, 12)  # unify_kv_cache_spec_page_size (0.12.0 kv_cache_utils.py:885); 0.11.x raises at once


def ununified_pages_error(pages: tuple, version: str = PINNED) -> str:
    """The exception get_kv_cache_groups raises in vLLM `version` for two page sizes it cannot unify (above)."""
    divides = max(pages) % min(pages) == 0
    return "AssertionError" if divides and parse_version(version) >= UNIFY_PAGES_SINCE else "NotImplementedError"


def forced_mla_block(hybrid_block: int, kv_quantized: bool, version: str = PINNED, capability=()) -> Optional[int]:
    """The block vLLM `version`'s CUDA platform forces over an MLA hybrid's attention block `hybrid_block` on a GPU of
    `capability` (dense_mla_block of that block), None where it keeps it (and from 0.18: FORCED_AFTER_HYBRID)."""
    if dense_mla_block_rule(version) not in FORCED_AFTER_HYBRID:
        return None
    forced = dense_mla_block(hybrid_block, kv_quantized, version, capability)
    return None if forced == hybrid_block else forced


def preferred_block(default: int, kernel_blocks: tuple) -> int:
    """v1/attention/backend.py get_preferred_block_size (0.18.0 :189-197): `default` where supports_block_size takes
    it (a multiple of any kernel block, :170-186), else the smallest kernel block."""
    return default if any(default % size == 0 for size in kernel_blocks) else min(kernel_blocks)


def attention_block_size(layers: tuple, kv_quantized: bool, block_size: Optional[int],
                         version: str = PINNED, capability=()) -> int:
    """platforms/interface.py update_block_size_for_backend, phase 1: the release's default block
    (default_block_size: 16, 64 from 0.34) unless the backend wants more. Dense MLA on a CUDA GPU follows its
    backend's kernel blocks by release and compute capability (dense_mla_block: on Hopper FLASHMLA's 64 up to 0.17
    whatever the dtype, from 0.18 for a quantized cache only; on SM10x CUTLASS_MLA's 128 up to 0.14, FLASHINFER_MLA's
    64 forced in 0.15-0.17 and its 32 preferred from 0.18 to 0.33 where it takes the model's qk_nope_head_dim, else
    CUTLASS_MLA's 128: FLASHINFER_MLA_NOPE). Sparse MLA's backends take multiples of 64 only,
    so any other --block-size leaves vLLM no attention backend (platforms/cuda.py get_valid_backends: "No valid
    attention backend found", reason "block_size not supported": a configuration refusal,
    vllm_backend_refusals.sparse_block_refusal; the block is kept as given here); before 0.18 vLLM forced sparse MLA's
    block to 64 whatever --block-size said
    (SPARSE_MLA_BLOCK_RULES). On ROCm (`capability` vllm_sparse.ROCM) sparse MLA takes --block-size as given, else
    the release's default (16, vllm_sparse.ROCM_BLOCK_RULES; 64 from 0.34, which both its backends take: [1,
    MultipleOf(16)], 0.34.0 rocm_aiter_mla_sparse.py:361-362, indexer.py:238)."""
    if any(isinstance(layer, V4_KINDS) for layer in layers):
        if block_size is not None and block_size % V4_BLOCK:
            raise FieldError("block_size", f"must be a multiple of {V4_BLOCK} tokens for DeepSeek-V4 (its compressed "
                                           f"and indexer caches' kernel block sizes in vLLM 0.32), got {block_size}.")
        return block_size or V4_BLOCK
    default = default_block_size(version)
    sparse = any(getattr(layer, "sparse", False) for layer in layers)
    if sparse and is_rocm_platform(capability):
        return block_size or max(rocm_sparse_block(None), default)
    if sparse and sparse_block_rule(version) == "forced":
        return SPARSE_MLA_BLOCK
    mla = next((layer for layer in layers if isinstance(layer, MLALatent)), None)
    dense_mla = not sparse and mla is not None
    if dense_mla and not is_rocm_platform(capability) and dense_mla_block_rule(version) is not None:
        return dense_mla_block(block_size, kv_quantized, version, capability, mla.qk_nope_head_dim)
    if block_size is not None:
        return block_size
    if sparse:
        return SPARSE_MLA_BLOCK
    if kv_quantized and dense_mla:  # ROCm, and releases before 0.8: FLASHMLA's 64
        return max(64, default)
    return default


def default_block_size(version: str = PINNED) -> int:
    """config/cache.py CacheConfig.DEFAULT_BLOCK_SIZE: 16 up to 0.33 (0.33.0 :185), 64 from 0.34 (0.34.0 :185). Phase 1
    keeps it wherever the backend takes it (v1/attention/backend.py:158-166 get_preferred_block_size:
    supports_block_size, a multiple of any listed size): FlashAttention and Triton (MultipleOf(16)), FlashInfer
    ([16, 32, 64]), FLASHMLA ([64]), FLASHINFER_MLA ([32, 64]) and sparse MLA (MultipleOf(64)) all take 64 in 0.34;
    CUTLASS_MLA ([128]) would raise it to 128 (dense_mla_block)."""
    return behaviour(version).block_size


# Qwen's gated DeltaNet (kvplan's flavor "gated-deltanet"; model_executor/layers/mamba/gdn/qwen_gdn_linear_attn.py
# QwenGatedDeltaNetAttention, which qwen3_next.py and qwen3_5.py build) exports prefill checkpoints from 0.33 (0.32.0
# has none): in "align" mode (prefix caching on, vLLM's default for hybrids: config/cache.py:257
# enable_prefix_caching True, models/config.py:765 MambaModelConfig -> "align"; 0.34.0 :267, :1096) and on
# FlashInfer's GDN prefill (0.33.0 :689-702, 0.34.0 :847-860) its spec gets num_prefill_checkpoint_blocks=1
# (:739-750, 0.34.0 :901-912), a third state block a request (kv_cache_interface.py MambaSpec.max_memory_usage_bytes),
# and declares an alignment of 64 tokens (v1/attention/backends/gdn_attn.py:34 FLASHINFER_GDN_CHECKPOINT_ALIGNMENT;
# 0.34.0 :35) that platforms/interface.py _align_hybrid_block_size folds into the hybrid block by lcm (0.33.0
# :1089-1094, 0.34.0 :1101-1106). Both only when every Mamba layer declares an alignment (abstract.py:98-113
# get_mamba_prefill_checkpoint_alignment; :752-760 _exports_checkpoints): Mamba-2 declares none (it checkpoints by
# its own rule, layer_spec), so only an all-GDN model. FlashInfer's GDN prefill (_resolve_gdn_prefill_backend,
# 0.33.0 :148-270, 0.34.0 :187-348): CUDA compute capability 9.0 exactly, or the 10.x / 12.x families with
# linear_key_head_dim 128 and a CUDA 13 runtime; else Triton (Ampere, Ada, ROCm). kvplan assumes both on SM10x /
# SM12x: vLLM's PyPI wheels are built for CUDA 13.0 (envs.py VLLM_MAIN_CUDA_VERSION "13.0": 0.33.0 :625, 0.34.0
# :668), and every Qwen3-Next / Qwen3.5 config has linear_key_head_dim 128 (kvplan's layer does not keep it).
GDN_FLAVOR = "gated-deltanet"
GDN_CHECKPOINT_ALIGNMENT = 64
PREFILL_CHECKPOINTS = (
    ((0, 33), "flashinfer-gdn", "0.33.0 qwen_gdn_linear_attn.py:689-760, platforms/interface.py:1089-1094 (so to "
                                "0.34.0: :847-922, :1101-1106)"),
)
FLASHINFER_GDN_MAJORS = (10, 12)  # with Hopper's (9, 0): is_device_capability_family(100) / (120)


def prefill_checkpoint_alignment(layers, version: str = PINNED, capability=()) -> Optional[int]:
    """get_mamba_prefill_checkpoint_alignment in "align" mode (the caller asks only with prefix caching on): the lcm
    of every Mamba layer's alignment, None when one declares none (PREFILL_CHECKPOINTS)."""
    states = [layer for layer in layers if isinstance(layer, LinearState)]
    if not states or not gdn_prefill_on_flashinfer(version, capability):
        return None
    return GDN_CHECKPOINT_ALIGNMENT if all(layer.flavor == GDN_FLAVOR for layer in states) else None


def gdn_prefill_on_flashinfer(version: str = PINNED, capability=()) -> bool:
    """Whether vLLM `version` runs the GDN prefill on FlashInfer on a GPU of `capability` (() is Hopper) with a
    checkpoint to export (PREFILL_CHECKPOINTS)."""
    if release_rule(PREFILL_CHECKPOINTS, version) is None or is_rocm_platform(capability):
        return False
    return tuple(capability[:2]) in ((), (9, 0)) or major_of(capability) in FLASHINFER_GDN_MAJORS


def mamba_page(layer: LinearState, tp: int, conv_bytes: int, ssm_bytes: int) -> int:
    """MambaSpec.page_size_bytes: the conv state and the temporal (SSM) state of one sequence on one GPU, each
    in its own dtype (model_executor/layers/mamba/mamba_utils.py: conv in mamba_cache_dtype, the temporal
    state in mamba_ssm_cache_dtype; both 'auto' = the model dtype unless a family overrides it)."""
    return layer.state_bytes(tp, conv_bytes, ssm_bytes)


# Mamba-2's mixer exports a prefill checkpoint, a state block more a request in "align" mode, from 0.32.0
# (model_executor/layers/mamba/mamba_mixer2.py 0.32.0:1098-1108 get_kv_cache_spec, num_prefill_checkpoint_blocks=1;
# 0.33.0 :1108-1117, 0.34.0 :1089-1098); 0.31.0's mixer has no get_kv_cache_spec of its own, and MambaSpec has no
# num_prefill_checkpoint_blocks before 0.29.0 (v1/kv_cache_interface.py 0.29.0:858).
MAMBA2_CHECKPOINT_SINCE = (0, 32)


def layer_spec(layer, block_size: int, tp: int, precision, state_bytes: tuple, mamba_block: int,
               speculative: int = 0, prefill_alignment: Optional[int] = None,
               version: str = PINNED) -> Optional[CacheSpec]:
    """One layer's spec (v1/kv_cache_interface.py). `precision` is the cache precision this layer really uses
    (family quirks applied by the caller); `state_bytes` = (conv, temporal) bytes per element of Mamba states;
    `speculative`: VllmConfig.num_speculative_tokens, the extra state blocks of a Mamba layer
    (model_executor/layers/mamba/abstract.py get_kv_cache_spec: num_speculative_blocks, ReplaySSM off). None for a
    KV-sharing layer: v1/worker/gpu_model_runner.py get_kv_cache_spec skips it ("KV cache management logic will act
    as this layer does not exist"), and add_kv_sharing_layers_to_kv_cache_groups (v1/worker/utils.py) only adds its
    name to its target's group, no page. `prefill_alignment`: the model's prefill_checkpoint_alignment (None: no
    gated DeltaNet checkpoints); `version`: the vLLM release (Mamba-2's checkpoint: MAMBA2_CHECKPOINT_SINCE)."""
    if isinstance(layer, SharedKV):
        return None
    if isinstance(layer, LinearState):
        page = mamba_page(layer, tp, *state_bytes)
        # Mamba-2 exports a prefill checkpoint from 0.32 (MAMBA2_CHECKPOINT_SINCE); Qwen's gated DeltaNet from 0.33
        # where prefill_checkpoint_alignment says so (PREFILL_CHECKPOINTS)
        mamba2 = layer.flavor == "mamba2" and parse_version(version) >= MAMBA2_CHECKPOINT_SINCE
        checkpoint = int(mamba2 or (layer.flavor == GDN_FLAVOR and prefill_alignment is not None))
        return CacheSpec("mamba", mamba_block, page, 0, (layer.flavor, page), checkpoint, speculative)
    if isinstance(layer, V4_KINDS):
        return v4_spec(layer, block_size, tp, precision)
    page = layer.page_bytes(block_size, tp, precision)
    shape = (layer.bytes_per_token(tp, precision), layer.cached_as(precision).name)  # a drafter's own dtype
    if isinstance(layer, ChunkedAttention):
        return CacheSpec("chunked", block_size, page, layer.window, shape)
    if isinstance(layer, SlidingWindow):
        return CacheSpec("sliding", block_size, page, layer.window, shape)
    if isinstance(layer, IndexerKeys):  # raw bytes whatever the cache dtype (DeepseekV32IndexerCache: uint8)
        return CacheSpec("indexer", block_size, page, 0, (layer.bytes_per_token(tp, precision), "uint8"))
    if isinstance(layer, MLALatent) and layer.leads_index_group:  # is_index_group_leader, part of the spec's identity
        return CacheSpec("mla", block_size, page, 0, shape + ("index group leader",))
    kind = "mla" if isinstance(layer, MLALatent) else "full"
    return CacheSpec(kind, block_size, page, 0, shape)


def v4_spec(layer, block_size: int, tp: int, precision) -> CacheSpec:
    """A DeepSeek-V4 cache as vLLM 0.32's spec of it: the compressed and indexer caches MLAAttentionSpecs of the
    engine's block (models/deepseek_v4/attention.py get_kv_cache_spec, tokens_per_state = the ratio), the window
    cache and the compressor states SlidingWindowMLASpecs of their own block and window (sparse_swa.py
    DeepseekV4SWACache, compressor.py CompressorStateCache); each page padded as the kind says."""
    block = layer.block(block_size)
    page = layer.page_bytes(block, tp, precision)
    shape = (layer.kind, layer.group_key, page)
    if isinstance(layer, V4IndexerKeys):
        return CacheSpec("indexer", block, page, 0, shape, block_outermost=True)
    if isinstance(layer, V4Compressed):
        return CacheSpec("mla", block, page, 0, shape)
    return CacheSpec("sliding", block, page, layer.window, shape)


def hybrid_block_size(attention_bytes_per_token: int, mamba_page: int, block_size: int, mla: bool,
                      prefill_alignment: Optional[int] = None, version: str = PINNED, capability: tuple = (),
                      head_size: int = 0) -> int:
    """The attention block vLLM `version` raises a hybrid's to on a GPU of `capability` (() for Hopper's rules):
    the smallest multiple of the kernel block alignment (HYBRID_ALIGN_RULES; from 0.33 in "align" mode its lcm with
    the layers' prefill_alignment, 64 for gated DeltaNet on FlashInfer) whose attention page holds one Mamba state;
    never below the block size already chosen. From 0.20 the block chosen so far is in the alignment (the release's
    default from 0.34, 64, so Mamba-hybrid blocks are multiples of 64 there); `head_size` is the attention head's,
    for the SM10x rule of 0.11.1-0.17.x."""
    align = lcm(hybrid_alignment(block_size, mla, version, capability, head_size), prefill_alignment or 1)
    raised = align * blocks_for(mamba_page, align * attention_bytes_per_token)
    return max(block_size, -(-raised // 16) * 16)


def hybrid_alignment(block_size: int, mla: bool, version: str, capability: tuple, head_size: int) -> int:
    """The kernel block alignment of HYBRID_ALIGN_RULES. The backend's smallest kernel block (0.20 on) is taken as
    at most the block already chosen, which is the backend's own (attention_block_size), and at least 16."""
    rule = release_rule(HYBRID_ALIGN_RULES, version)
    if rule.startswith("backend"):
        return max(16, block_size, MLA_ALIGN_BLOCK if mla and rule.endswith("128") else 0)
    if rule == "16":
        return 16
    if mla:
        return 64
    blackwell = tuple(capability[:1]) == (10,) if "family" in rule else tuple(capability[:2]) == (10, 0)
    return 32 if "32" in rule and blackwell and head_size == 256 else 16


def mamba_all_blocks(attention_bytes_per_token: int, mamba_page: int, block_size: int, chunk: int, mla: bool,
                     version: str = PINNED, capability: tuple = (), head_size: int = 0) -> tuple:
    """(attention block, Mamba block) of a hybrid whose Mamba states vLLM `version` keeps in "all" mode: the Mamba
    block is the lowest multiple of lcm(`chunk`, the kernel block alignment: hybrid_alignment) whose attention page
    holds one Mamba state, cdiv(mamba_page, bytes a token) tokens; the attention block is raised to it where smaller,
    never lowered (models/config.py 0.11.1:394-431, 0.15.0:466-503, 0.19.1:244-280; platforms/interface.py
    0.20.0:585-605, 0.27.1:890-910). `chunk`: the model's Mamba chunk (model/layers.py mamba_chunk_size)."""
    step = lcm(chunk, hybrid_alignment(block_size, mla, version, capability, head_size))
    mamba_block = step * blocks_for(blocks_for(mamba_page, attention_bytes_per_token), step)
    return max(block_size, mamba_block), mamba_block


def unify_pages(specs: list) -> list:
    """kv_cache_utils.py unify_kv_cache_spec_page_size: raise the block size of layers whose page divides the
    largest, pad the others (Mamba, and non-MLA attention whose page does not divide)."""
    largest = max(s.page_bytes for s in specs)
    out = []
    for s in specs:
        if s.page_bytes == largest:
            out.append(s)
        elif s.kind != "mamba" and largest % s.page_bytes == 0:
            out.append(replace(s, block_size=s.block_size * (largest // s.page_bytes), page_bytes=largest))
        elif s.kind != "mla":
            out.append(replace(s, page_bytes=largest, shape=s.shape + ("padded",)))
        else:
            raise KvplanError("vLLM cannot unify this model's KV pages: an MLA page does not divide the largest page "
                              "(kv_cache_utils.unify_kv_cache_spec_page_size raises NotImplementedError).")
    return out


def _approximate_gcd(values: list, lower: int) -> int:
    """kv_cache_utils._approximate_gcd: the chunk d in [lower, max] that pads `values` up to multiples of d least,
    the larger d on ties."""
    def padding(d: int) -> int:
        return sum(-v % d for v in values)

    return min(range(max(1, lower), max(max(values), lower) + 1), key=lambda d: (padding(d), -d))


def packed_groups(specs: list) -> tuple:
    """Groups for a block-outermost layout (kv_cache_utils._get_packed_kv_cache_groups, 0.32): layers in buckets of
    one uniform type (first fit, in registration order), each bucket's layers listed by page size; a bucket whose
    page sizes have equal layer counts repeats a pattern and splits into groups of whole repeats (the number of
    repeats per group: the least-padding divisor at least the largest mixed bucket's repeats), other buckets stay
    whole; state buckets (Mamba) split further to fit the widest group's bytes. One block is a page of every
    layer of a group; the pool strides blocks by the widest group."""
    buckets: list = []  # [[layer index, ...], ...]
    for i, s in enumerate(specs):
        fits = next((b for b in buckets if specs[b[0]].block_size == s.block_size
                     and specs[b[0]].uniform_type == s.uniform_type), None)
        if fits is None:
            buckets.append([i])
        else:
            fits.append(i)
    by_page = []
    for bucket in buckets:
        pages: dict = {}
        for i in bucket:
            pages.setdefault(specs[i].page_bytes, []).append(i)
        by_page.append(pages)
    balanced = [len({len(v) for v in pages.values()}) == 1 for pages in by_page]
    most = [max(len(v) for v in pages.values()) for pages in by_page]
    floor = max((m for m, b, pages in zip(most, balanced, by_page) if b and len(pages) > 1), default=0)
    repeats = _approximate_gcd([m for m, b in zip(most, balanced) if b], floor) if floor else None

    def count(k: int) -> int:
        return -(-most[k] // repeats) if balanced[k] and repeats is not None else 1

    def is_state(k: int) -> bool:
        kind = specs[buckets[k][0]].kind
        return kind == "mamba" or (repeats is None and kind == "sliding")

    def widest(k: int, n: int) -> int:
        return sum(-(-len(v) // n) * page for page, v in by_page[k].items())

    anchor = max(widest(k, len(buckets[k]) if is_state(k) else count(k)) for k in range(len(buckets)))
    groups = []
    for k, bucket in enumerate(buckets):
        n = count(k)
        if anchor and is_state(k):
            n = max(n, -(-len(bucket) // max(anchor // specs[bucket[0]].page_bytes, 1)))
        members = [bucket] if n == 1 else \
            [[i for repeat in list(zip(*by_page[k].values()))[g::n] for i in repeat] for g in range(n)]
        groups += [Group(specs[m[0]], tuple(m), tuple(specs[i].page_bytes for i in m)) for m in members]
    return tuple(groups), []


def kv_cache_groups(specs: list, version: str = PINNED) -> tuple:
    """(groups, [(padding layers, bucket layers)] per padded bucket) as `version`'s get_kv_cache_groups builds
    them for the layers with a spec (a group's layers are indices into `specs`, whose None entries hold no cache) and
    for the hybrid allocator (on by default): vLLM's default layer-outermost layout, or the block-outermost one
    (packed_groups) where a backend takes only that (DeepSeek-V4's indexer); the group size by release:
    vllm_group_size."""
    everyone = tuple(i for i, s in enumerate(specs) if s is not None)  # a KV-sharing layer has no spec (None)
    specs = [specs[i] for i in everyone]
    if not specs:
        return (), []
    if all(s is specs[0] or s == specs[0] for s in specs):  # is_kv_cache_spec_uniform (a kind's layers share one)
        return (Group(specs[0], everyone, tuple(s.page_bytes for s in specs)),), []
    if len({s.block_size for s in specs}) == 1 and len({s.uniform_type for s in specs}) == 1:
        # UniformTypeKVCacheSpecs.from_specs: one group, each layer its own page
        return (Group(specs[0], everyone, tuple(s.page_bytes for s in specs)),), []
    if any(s.block_outermost for s in specs) and len({s.page_bytes for s in specs}) > 1:
        groups, padding = packed_groups(specs)  # the layout is block-outermost (get_kv_cache_groups tries it next)
        return tuple(replace(g, layers=tuple(everyone[i] for i in g.layers)) for g in groups), padding
    specs = unify_pages(specs)
    buckets: dict = {}
    for i, s in zip(everyone, specs):  # same_type_layers, in first-seen order
        buckets.setdefault(s, []).append(i)
    size = group_size([len(v) for v in buckets.values()], version)
    groups, padding = [], []
    for spec, layers in buckets.items():
        count = -(-len(layers) // size)
        if count * size > len(layers):  # logged: "Add N padding layers, may waste at most X% ..."
            padding.append((count * size - len(layers), len(layers)))
        for i in range(count):
            members = tuple(layers[i::count])
            groups.append(Group(spec, members, (spec.page_bytes,) * len(members)))
    return tuple(groups), padding
