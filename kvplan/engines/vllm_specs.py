"""vLLM 0.32.0's KV cache specs and cache groups, from kvplan's layer kinds. Each rule cites the vLLM file and
function it mirrors (paths under vllm/); nothing here is copied from vLLM.

- One spec per cache layer (v1/kv_cache_interface.py): FullAttentionSpec / MLAAttentionSpec, SlidingWindowSpec,
  ChunkedLocalAttentionSpec, MambaSpec. A page is one block of one layer: block_size x bytes per token, or the
  Mamba state (conv + temporal) of one sequence, padded to the attention page in hybrids.
- Per-request blocks (`max_memory_usage_bytes` / page): full and MLA cdiv(max_model_len, bs); sliding window
  cdiv(min(w - 1 + in_flight, max_model_len), bs) + 1; chunked local cdiv(min(chunk + in_flight, max_model_len),
  bs); Mamba 2 pages with prefix caching ("align" mode), else 1.
- Groups (v1/core/kv_cache_utils.py get_kv_cache_groups): all specs equal, or one "uniform type" -> one group;
  otherwise pages are unified (`unify_kv_cache_spec_page_size`) and each bucket of equal specs is split into
  groups of `group_size` layers (`_get_kv_cache_groups_uniform_page_size`: the smallest bucket, or the largest
  when it is < 1.5x the smallest), layers[i::n] to group i, the last groups padded.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

from ..errors import FieldError, KvplanError
from ..model.kinds import (V4_KINDS, ChunkedAttention, IndexerKeys, LinearState, MLALatent, SharedKV, SlidingWindow,
                           V4Compressed, V4IndexerKeys, blocks_for)
from .vllm_sparse import is_rocm_platform, rocm_sparse_block
from .vllm_versions import PINNED, release_rule

MLA_ALIGN_BLOCK = 128  # platforms/interface.py _align_hybrid_block_size: MLA hybrids align blocks to 128
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


def cuda_sparse_block_refusal(block_size: Optional[int], version: str = PINNED) -> str:
    """vLLM's refusal of sparse MLA on a CUDA GPU at --block-size `block_size` (None: unset, the backend's 64), ''
    where it starts: from 0.18.0 a block that is not a multiple of the kernels' 64 leaves no attention backend
    (SPARSE_MLA_BLOCK_RULES "multiple": platforms/cuda.py get_valid_backends, reason "block_size not supported");
    0.11.0-0.17.x force 64 whatever it says."""
    if block_size is None or block_size % SPARSE_MLA_BLOCK == 0 or sparse_block_rule(version) != "multiple":
        return ""
    return (f"No valid attention backend found for sparse MLA at block size {block_size}: vLLM's sparse MLA backends "
            f"take blocks of a multiple of {SPARSE_MLA_BLOCK} only (v1/attention/backends/mla/flashmla_sparse.py "
            f"get_supported_kernel_block_sizes; 0.18.0 v1/attention/backend.py:170 supports_block_size).")


def sparse_block_rule(version: str) -> str:
    """SPARSE_MLA_BLOCK_RULES' rule for vLLM `version` ("multiple" before 0.11, which refuses the model anyway)."""
    return release_rule(SPARSE_MLA_BLOCK_RULES, version, "multiple")
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
        return sum(p for i, p in zip(self.layers, self.page_bytes_of_layers) if on is None or i in on)


def attention_block_size(layers: tuple, kv_quantized: bool, block_size: Optional[int],
                         version: str = PINNED, capability=()) -> int:
    """platforms/interface.py update_block_size_for_backend, phase 1: 16 unless the backend wants more. On
    Hopper an fp8 MLA cache runs on FLASHMLA, whose only kernel block is 64 (v1/attention/backends/mla/
    flashmla.py get_supported_kernel_block_sizes); FlashAttention takes MultipleOf(16). Sparse MLA's backends take
    multiples of 64 only, so any other --block-size leaves vLLM no attention backend (platforms/cuda.py
    get_valid_backends: "No valid attention backend found", reason "block_size not supported": a configuration
    refusal, vllm.sparse_block_refusal; the block is kept as given here); before 0.18 vLLM
    forced sparse MLA's block to 64 whatever --block-size said (SPARSE_MLA_BLOCK_RULES). On ROCm (`capability`
    vllm_sparse.ROCM) sparse MLA takes --block-size as given, else 16 (vllm_sparse.ROCM_BLOCK_RULES)."""
    if any(isinstance(layer, V4_KINDS) for layer in layers):
        if block_size is not None and block_size % V4_BLOCK:
            raise FieldError("block_size", f"DeepSeek-V4's compressed and indexer caches take blocks of a multiple "
                                           f"of {V4_BLOCK} tokens in vLLM 0.32 (their backends' kernel block sizes), "
                                           f"got {block_size}.")
        return block_size or V4_BLOCK
    sparse = any(getattr(layer, "sparse", False) for layer in layers)
    if sparse and is_rocm_platform(capability):
        return rocm_sparse_block(block_size)
    if sparse and sparse_block_rule(version) == "forced":
        return SPARSE_MLA_BLOCK
    if block_size is not None:
        return block_size
    if sparse:
        return SPARSE_MLA_BLOCK
    if kv_quantized and any(isinstance(layer, MLALatent) for layer in layers):
        return 64
    return 16


def mamba_page(layer: LinearState, tp: int, conv_bytes: int, ssm_bytes: int) -> int:
    """MambaSpec.page_size_bytes: the conv state and the temporal (SSM) state of one sequence on one GPU, each
    in its own dtype (model_executor/layers/mamba/mamba_utils.py: conv in mamba_cache_dtype, the temporal
    state in mamba_ssm_cache_dtype; both 'auto' = the model dtype unless a family overrides it)."""
    return layer.state_bytes(tp, conv_bytes, ssm_bytes)


def layer_spec(layer, block_size: int, tp: int, precision, state_bytes: tuple, mamba_block: int,
               speculative: int = 0) -> Optional[CacheSpec]:
    """One layer's spec (v1/kv_cache_interface.py). `precision` is the cache precision this layer really uses
    (family quirks applied by the caller); `state_bytes` = (conv, temporal) bytes per element of Mamba states;
    `speculative`: VllmConfig.num_speculative_tokens, the extra state blocks of a Mamba layer
    (model_executor/layers/mamba/abstract.py get_kv_cache_spec: num_speculative_blocks, ReplaySSM off). None for a
    KV-sharing layer: v1/worker/gpu_model_runner.py get_kv_cache_spec skips it ("KV cache management logic will act
    as this layer does not exist"), and add_kv_sharing_layers_to_kv_cache_groups (v1/worker/utils.py) only adds its
    name to its target's group, no page."""
    if isinstance(layer, SharedKV):
        return None
    if isinstance(layer, LinearState):
        page = mamba_page(layer, tp, *state_bytes)
        # model_executor/layers/mamba/mamba_mixer2.py get_kv_cache_spec: Mamba-2 exports a prefill checkpoint
        checkpoint = 1 if layer.flavor == "mamba2" else 0
        return CacheSpec("mamba", mamba_block, page, 0, (layer.flavor, page), checkpoint, speculative)
    if isinstance(layer, V4_KINDS):
        return v4_spec(layer, block_size, tp, precision)
    page = layer.page_bytes(block_size, tp, precision)
    shape = (layer.bytes_per_token(tp, precision), precision.name)
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


def hybrid_block_size(attention_bytes_per_token: int, mamba_page: int, block_size: int, mla: bool) -> int:
    """platforms/interface.py _align_hybrid_block_size: the smallest block (a multiple of the kernel block,
    128 for MLA) whose attention page holds one Mamba state; never below the block size already chosen."""
    align = max(16, block_size, MLA_ALIGN_BLOCK if mla else 0)
    raised = align * blocks_for(mamba_page, align * attention_bytes_per_token)
    return max(block_size, -(-raised // 16) * 16)


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


def kv_cache_groups(specs: list) -> tuple:
    """(groups, [(padding layers, bucket layers)] per padded bucket) as get_kv_cache_groups builds them for the
    layers with a spec (a group's layers are indices into `specs`, whose None entries hold no cache) and for the
    hybrid allocator (on by default): vLLM's default layer-outermost layout, or the block-outermost one
    (packed_groups) where a backend takes only that (DeepSeek-V4's indexer)."""
    everyone = tuple(i for i, s in enumerate(specs) if s is not None)  # a KV-sharing layer has no spec (None)
    specs = [specs[i] for i in everyone]
    if not specs:
        return (), []
    if all(s == specs[0] for s in specs):  # is_kv_cache_spec_uniform
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
    sizes = [len(v) for v in buckets.values()]
    group_size = max(sizes) if max(sizes) < min(sizes) * 1.5 else min(sizes)
    groups, padding = [], []
    for spec, layers in buckets.items():
        count = -(-len(layers) // group_size)
        if count * group_size > len(layers):  # logged: "Add N padding layers, may waste at most X% ..."
            padding.append((count * group_size - len(layers), len(layers)))
        for i in range(count):
            members = tuple(layers[i::count])
            groups.append(Group(spec, members, (spec.page_bytes,) * len(members)))
    return tuple(groups), padding
