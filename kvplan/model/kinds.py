"""Layer kinds: one small frozen class per kind of cache a decoder layer holds, each answering every question
about itself (in the spirit of vLLM's vllm/v1/kv_cache_interface.py): bytes per token on one GPU of a TP group,
the fixed state of a sequence, the paged blocks a sequence holds, the tokens one decode step reads, the
tensors one layer allocates, and whether a TP degree can shard it. Planning, the engine models and verify ask
the kind; none of them branches on it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Optional, Union

from ..errors import FieldError
from .precision import Precision


def blocks_for(tokens: int, block_size: int) -> int:
    return -(-tokens // block_size) if tokens > 0 else 0


def kv_heads_per_gpu(kv_heads: int, tp: int) -> int:
    """vLLM's rule: split heads when tp divides them, else one replicated head per GPU (kv_heads | tp).
    FullAttention.tp_errors says when neither holds."""
    return kv_heads // tp if kv_heads >= tp else 1


class PagedKV:
    """What every kind with a per-token paged cache answers the same way."""

    window: Optional[int] = None  # tokens of the sequence the layer keeps (None: all of them)
    joins_layer = False  # whether this cache sits in the decoder layer of the cache before it (pipeline stages)

    def block(self, block_size: int) -> int:
        """Tokens one page of this layer holds where the engine pages in `block_size` (DeepSeek-V4's window and
        state caches page in blocks of their own)."""
        return block_size

    def kept_cycle(self, block_size: int) -> Optional[int]:
        """Tokens of length after which the blocks this layer keeps of a prefilled sequence repeat their pattern: a
        window keeps the blocks its newest tokens touch, fewest where the length is a multiple of its block. None
        where the layer keeps every token (what it keeps only grows with the length)."""
        return self.block(block_size) if self.window else None

    def cached_as(self, precision: Precision) -> Precision:
        """The precision this layer keeps where the model's cache is `precision`: its own where it has one (a
        drafter's: engines/vllm_draft_cache.py drafter_caches), else the model's."""
        own = getattr(self, "cache", None)
        if own is not None:
            return own
        auto = getattr(self, "auto_cache", None)
        return auto if auto is not None and precision.auto else precision

    def bytes_per_token(self, tp: int, precision: Precision) -> int:
        """Cache bytes one token occupies in this layer on one GPU of a TP group."""
        precision = self.cached_as(precision)
        return precision.bytes_for(self.elements_per_token(tp), self.vectors_per_token(tp))

    def state_bytes(self, tp: int, dtype_bytes: int) -> int:
        """Fixed bytes per sequence, whatever its length (only recurrent layers have any)."""
        return 0

    def page_bytes(self, block_size: int, tp: int, precision: Precision) -> int:
        """Bytes one paged block of `block_size` tokens takes in this layer on one GPU."""
        return block_size * self.bytes_per_token(tp, precision)

    def tokens_held(self, tokens: int) -> int:
        return tokens if self.window is None else min(tokens, self.window)

    def tokens_read(self, context: int) -> int:
        """Tokens of cache one decode step reads for a sequence of `context` tokens."""
        return self.tokens_held(context)

    def blocks_per_sequence(self, tokens: int, block_size: int) -> int:
        """Paged blocks one sequence of `tokens` holds in this layer (ideal paging, no engine reserves)."""
        return blocks_for(tokens, block_size)

    def sequence_bytes(self, tokens: int, block_size: int, tp: int, precision: Precision) -> int:
        """Paged bytes one sequence of `tokens` holds in this layer (its blocks, whole)."""
        return self.blocks_per_sequence(tokens, block_size) * self.page_bytes(block_size, tp, precision)

    def held_bytes(self, tokens: int, tp: int, precision: Precision) -> int:
        """Bytes one sequence of `tokens` holds in this layer, unpaged."""
        return self.tokens_held(tokens) * self.bytes_per_token(tp, precision)

    def read_bytes(self, context: int, tp: int, precision: Precision) -> int:
        """Cache bytes one decode step reads in this layer for a sequence of `context` tokens."""
        return self.tokens_read(context) * self.bytes_per_token(tp, precision)


def own_cache_key(layer) -> tuple:
    """The names of a layer's own cache dtypes (FullAttention.cache, auto_cache) for its group_key; () without."""
    own = (layer.cache, layer.auto_cache)
    return () if own == (None, None) else tuple(p.name if p is not None else "" for p in own)


class NoTokenPages:
    """What a kind that keeps no per-token pages answers alike: a recurrent state (LinearState) or another layer's
    cache (SharedKV) holds no bytes a token, no blocks and nothing a sequence's tokens add."""

    joins_layer = False

    def cached_as(self, precision: Precision) -> Precision:
        return precision

    def elements_per_token(self, tp: int) -> int:
        return 0

    def vectors_per_token(self, tp: int) -> int:
        return 0

    def bytes_per_token(self, tp: int, precision: Precision) -> int:
        return 0

    def tokens_held(self, tokens: int) -> int:
        return 0

    def blocks_per_sequence(self, tokens: int, block_size: int) -> int:
        return 0

    def sequence_bytes(self, tokens: int, block_size: int, tp: int, precision: Precision) -> int:
        return 0

    def held_bytes(self, tokens: int, tp: int, precision: Precision) -> int:
        return 0


@dataclass(frozen=True)
class FullAttention(PagedKV):
    """Standard K and V per token per KV head (MHA, GQA, MQA); holds every token of the sequence."""

    kv_heads: int
    head_dim: int
    v_head_dim: Optional[int] = None  # differs from head_dim only in a few models
    # the config field kv_heads came from, for the errors (MiMo-V2's sliding layers: swa_num_key_value_heads)
    heads_field: str = field(default="num_key_value_heads", compare=False)
    # a cache dtype of the layer's own (a drafter's, engines/vllm_draft_cache.py drafter_caches): `cache` whatever the
    # model's is, `auto_cache` where the model's is `auto` (PagedKV.cached_as); None: the model's
    cache: Optional[Precision] = None
    auto_cache: Optional[Precision] = None
    kind: str = field(default="full", init=False)

    @property
    def value_dim(self) -> int:
        return self.v_head_dim or self.head_dim

    def heads_per_gpu(self, tp: int) -> int:
        return kv_heads_per_gpu(self.kv_heads, tp)

    def elements_per_token(self, tp: int) -> int:
        """K+V elements one token occupies on one GPU of a TP group."""
        return self.heads_per_gpu(tp) * (self.head_dim + self.value_dim)

    def vectors_per_token(self, tp: int) -> int:
        """Quantisation scale vectors per token on one GPU (one per head, for K and for V)."""
        return 2 * self.heads_per_gpu(tp)

    def cached_as(self, precision: Precision) -> Precision:
        """PagedKV.cached_as; where the engine keeps a sparse-MLA format for the model's MLA layers (fp8_ds_mla), the
        dtype asked, as vLLM builds an ordinary attention layer (a drafter's beside DeepSeek-V3.2 or GLM-5.x: only
        mla_attention.py canonicalizes the dtype into that entry)."""
        precision = PagedKV.cached_as(self, precision)
        return precision.asked if precision.layout == "ds_mla" and precision.asked is not None else precision

    def bytes_per_token(self, tp: int, precision: Precision) -> int:
        return self.heads_per_gpu(tp) * self.cached_as(precision).head_bytes(self.head_dim, self.value_dim)

    def tp_errors(self, tp: int) -> tuple:
        kv = self.kv_heads
        if kv % tp == 0 or tp % kv == 0:
            return ()
        return (f"{self.heads_field} ({kv}) and tp {tp} do not divide each other: vLLM needs tp to divide the "
                f"KV heads or the KV heads to divide tp.",)

    def tp_warnings(self, tp: int, layers: Optional[int] = None, dcp: int = 1) -> tuple:
        """`layers`: how many layers have these KV heads, where the model's layers do not all have the same count
        (MiMo-V2, Gemma 4): the copies then cost those layers, not the group's whole cache, `tp // kv_heads` times.
        `dcp`: --decode-context-parallel-size, whose ranks split the tokens of the head they share (vllm_dcp.py), so
        only `tp // kv_heads // dcp` of them are copies."""
        kv = self.kv_heads
        copies = tp // kv // dcp
        if tp > kv and tp % kv == 0 and copies > 1:
            holder = "the group holds" if layers is None else f"its {layers} layers with them hold"
            heads = f"{kv} KV heads" if layers is None else f"{kv} KV heads ({self.heads_field})"
            split = f" ({dcp} DCP ranks splitting its tokens)" if dcp > 1 else ""
            return (f"tp {tp} > {heads}: each KV head is replicated on {tp // kv} GPUs{split}, so {holder} "
                    f"{copies}x the KV memory of an unreplicated split.",)
        return ()

    def page_shapes(self, blocks: int, block_size: int, tp: int) -> tuple:
        """The tensors one layer allocates for `blocks` paged blocks: K and V [blocks, block_size, heads, dim],
        the layout of vLLM's FlashAttention backend."""
        heads = self.heads_per_gpu(tp)
        return (blocks, block_size, heads, self.head_dim), (blocks, block_size, heads, self.value_dim)

    @property
    def group_key(self) -> tuple:
        """Layers with equal keys can share one pool of blocks."""
        return (self.kind, self.window, self.kv_heads, self.head_dim, self.value_dim) + own_cache_key(self)


@dataclass(frozen=True)
class SlidingWindow(FullAttention):
    """Attends only the last `sliding_window` tokens (Mistral, Gemma 2/3 local layers, gpt-oss)."""

    sliding_window: int = 0
    kind: str = field(default="sliding", init=False)

    @property
    def window(self) -> Optional[int]:
        return self.sliding_window

    def blocks_per_sequence(self, tokens: int, block_size: int) -> int:
        """At most the blocks the last `window` tokens touch: one more than they span when the window
        straddles a block edge."""
        return min(blocks_for(tokens, block_size), blocks_for(self.window - 1, block_size) + 1)


@dataclass(frozen=True)
class ChunkedAttention(SlidingWindow):
    """Llama 4 chunked local attention: attends within its chunk of `sliding_window` tokens. Held and read
    like a window of that size (the chunk a sequence is in is never longer)."""

    kind: str = field(default="chunked", init=False)
    chunked: bool = field(default=True, init=False)

    def kept_cycle(self, block_size: int) -> Optional[int]:
        """The blocks of the chunk the newest token is in: the pattern repeats with the chunk and the block."""
        return math.lcm(self.block(block_size), self.window)


@dataclass(frozen=True)
class MLALatent(PagedKV):
    """DeepSeek-style multi-head latent attention: one compressed latent per token per layer, shared by all
    heads and replicated on every TP rank."""

    kv_lora_rank: int
    qk_rope_head_dim: int
    # DeepSeek sparse attention (DSA): a decode step attends only the index_topk latents a lightning indexer
    # picks (0: dense MLA, every latent)
    index_topk: int = 0
    # the layer runs that indexer itself and leads the index group of the layers after it that reuse its top-k
    # (GLM-5.2's shared indexers; vLLM MLAAttentionSpec.is_index_group_leader); False for a layer that reuses one
    leads_index_group: bool = False
    # the query's non-rotary head dim: vLLM picks SM10x's dense MLA backend by it (engines/vllm_specs.py
    # FLASHINFER_MLA_NOPE); 128, DeepSeek-V3's, where a layer is built without a config
    qk_nope_head_dim: int = 128
    cache: Optional[Precision] = None  # as FullAttention's
    auto_cache: Optional[Precision] = None
    kind: str = field(default="mla", init=False)

    @property
    def latent_dim(self) -> int:
        return self.kv_lora_rank + self.qk_rope_head_dim

    @property
    def sparse(self) -> bool:
        return self.index_topk > 0

    @property
    def qk_head_dim(self) -> int:
        """One head's query / key width once the latent is up-projected per head: the non-rotary and rotary dims."""
        return self.qk_nope_head_dim + self.qk_rope_head_dim

    def per_head(self, heads: int, head_size: int = 0) -> FullAttention:
        """This layer as an engine holds it that caches every head's K and V instead of the latent: `heads` K and V
        rows of `head_size` each (0: qk_head_dim), the values padded to it, in this layer's own cache dtype."""
        return FullAttention(heads, head_size or self.qk_head_dim, heads_field="num_attention_heads",
                             cache=self.cache, auto_cache=self.auto_cache)

    def tokens_read(self, context: int) -> int:
        held = self.tokens_held(context)
        return min(held, self.index_topk) if self.sparse else held

    def heads_per_gpu(self, tp: int) -> int:
        return 1

    def elements_per_token(self, tp: int) -> int:
        return self.latent_dim  # not divided by tp: every rank holds the whole latent

    def vectors_per_token(self, tp: int) -> int:
        return 1

    def bytes_per_token(self, tp: int, precision: Precision) -> int:
        return self.cached_as(precision).latent_bytes(self.kv_lora_rank, self.qk_rope_head_dim)

    def tp_errors(self, tp: int) -> tuple:
        return ()  # replicated by design

    def tp_warnings(self, tp: int) -> tuple:
        return ()  # replication is MLA's design, said once in the estimate's footnote

    def page_shapes(self, blocks: int, block_size: int, tp: int) -> tuple:
        return ((blocks, block_size, self.latent_dim),)

    @property
    def group_key(self) -> tuple:
        return (self.kind, None, self.latent_dim) + own_cache_key(self)


@dataclass(frozen=True)
class LinearState(NoTokenPages):
    """Linear-attention / Mamba layer: a fixed recurrent + convolution state per sequence, no per-token KV.
    `heads` is what TP shards; the state divides evenly by tp when tp divides heads."""

    heads: int
    conv_elements: int  # per sequence, whole model width (TP 1)
    ssm_elements: int  # per sequence, whole model width (TP 1)
    flavor: str = "linear"  # gated-deltanet | mamba | mamba2
    # of conv_elements, what every rank holds whole: a Mamba-2 layer's one B / C group, which vLLM replicates
    # rather than splits (model_executor/layers/mamba/mamba_mixer2.py extra_groups_for_head_shards)
    replicated_conv: int = 0
    conv_window: int = 0  # inputs the convolution state keeps (kernel - 1); 0 where vLLM never widens it
    # bytes of a recurrent-state element where the layer fixes its dtype whatever the model's (Kimi Delta
    # Attention: float32, mamba_utils.py MambaStateDtypeCalculator.kda_state_dtype); 0: the dtype it is given
    ssm_bytes: int = 0
    # a Mamba-1 / Mamba-2 layer's kernel chunk (tokens), as vLLM reads it (layers.mamba_chunk_size): the block its
    # "all" cache mode aligns to (engines/vllm_specs.py mamba_all_blocks); 0 for the other flavors
    chunk_size: int = 0
    kind: str = field(default="linear", init=False)

    window = None

    def heads_per_gpu(self, tp: int) -> int:
        return self.heads // tp

    def widened(self, tokens: int) -> "LinearState":
        """The layer with its convolution state `tokens` inputs wider (vLLM keeps the draft tokens' inputs there
        under speculative decoding: mamba_utils.py MambaStateShapeCalculator, conv_kernel - 1 + num_spec)."""
        if not self.conv_window:
            return self
        per = self.conv_window + tokens
        return replace(self, conv_elements=self.conv_elements // self.conv_window * per,
                       replicated_conv=self.replicated_conv // self.conv_window * per, conv_window=per)

    def conv_per_gpu(self, tp: int) -> int:
        return (self.conv_elements - self.replicated_conv) // tp + self.replicated_conv

    def state_elements_per_sequence(self, tp: int) -> int:
        return self.conv_per_gpu(tp) + self.ssm_elements // tp

    def state_bytes(self, tp: int, dtype_bytes: int, ssm_dtype_bytes: Optional[int] = None) -> int:
        """Bytes of one sequence's state on one GPU: the convolution state in `dtype_bytes`, the recurrent (SSM)
        state in the layer's own dtype (ssm_bytes) or else `ssm_dtype_bytes` (the same as `dtype_bytes` by default:
        vLLM's mamba_ssm_cache_dtype 'auto')."""
        ssm_dtype_bytes = self.ssm_bytes or ssm_dtype_bytes
        if ssm_dtype_bytes is None:
            return self.state_elements_per_sequence(tp) * dtype_bytes
        return self.conv_per_gpu(tp) * dtype_bytes + self.ssm_elements // tp * ssm_dtype_bytes

    def tokens_read(self, context: int) -> int:
        return 0

    def read_bytes(self, context: int, tp: int, precision: Precision) -> int:
        return 0  # the state is read (and written back) per sequence: state_bytes

    def tp_errors(self, tp: int) -> tuple:
        if self.heads % tp:
            return (f"linear-attention state heads ({self.heads}) are not divisible by tp {tp}.",)
        return ()

    def tp_warnings(self, tp: int) -> tuple:
        return ()

    def page_shapes(self, slots: int, block_size: int, tp: int) -> tuple:
        """One state slot per sequence: [slots, state elements on this GPU]."""
        return ((slots, self.state_elements_per_sequence(tp)),)

    @property
    def group_key(self) -> tuple:
        return (self.kind, None, self.conv_elements, self.ssm_elements)


INDEXER_SCALE_BLOCK = 128  # values under one float32 scale in an indexer key (vLLM: quant_block_size)


@dataclass(frozen=True)
class IndexerKeys(PagedKV):
    """DeepSeek sparse attention's lightning-indexer key cache, beside the MLA latent of the same layer: one key
    of `head_dim` fp8 values and a float32 scale per 128 of them a token, stored as raw bytes whatever the
    --kv-cache-dtype (vLLM models/deepseek_v2.py DeepseekV32IndexerCache: uint8, head_dim + head_dim // 128 * 4)
    and replicated on every TP rank. A decode step scores every key to pick the latents it attends."""

    head_dim: int
    heads: int = 1  # index_n_heads: query heads scoring each key, all of them on every rank
    kind: str = field(default="indexer", init=False)
    joins_layer = True  # the latent's layer

    def heads_per_gpu(self, tp: int) -> int:
        return 1

    def elements_per_token(self, tp: int) -> int:
        return self.head_dim

    def vectors_per_token(self, tp: int) -> int:
        return self.head_dim // INDEXER_SCALE_BLOCK

    def bytes_per_token(self, tp: int, precision: Precision) -> int:
        return self.head_dim + self.vectors_per_token(tp) * 4  # fp8 values + float32 scales, any precision

    def tp_errors(self, tp: int) -> tuple:
        return ()  # replicated, as the latent

    def tp_warnings(self, tp: int) -> tuple:
        return ()

    def page_shapes(self, blocks: int, block_size: int, tp: int) -> tuple:
        return ((blocks, block_size, self.bytes_per_token(tp, None)),)

    @property
    def group_key(self) -> tuple:
        return (self.kind, None, self.head_dim)


@dataclass(frozen=True)
class SharedKV(NoTokenPages):
    """A layer that attends over an earlier layer's cache and keeps none of its own (Gemma 4's last
    num_kv_shared_layers layers: vLLM gives them no KV cache spec, so they take no pages and no blocks, yet each
    decode step reads the target's keys and values again with this layer's queries). `target` is the kind of the
    layer whose cache it reads, `source` that layer's decoder index."""

    target: FullAttention
    source: int
    kind: str = field(default="shared", init=False)

    @property
    def window(self) -> Optional[int]:
        return self.target.window  # attends as its target does (the window bounds its keys), holding nothing

    @property
    def head_dim(self) -> int:
        return self.target.head_dim

    @property
    def value_dim(self) -> int:
        return self.target.value_dim

    def heads_per_gpu(self, tp: int) -> int:
        return self.target.heads_per_gpu(tp)

    def state_bytes(self, tp: int, dtype_bytes: int) -> int:
        return 0

    def page_bytes(self, block_size: int, tp: int, precision: Precision) -> int:
        return 0

    def tokens_read(self, context: int) -> int:
        return self.target.tokens_read(context)

    def read_bytes(self, context: int, tp: int, precision: Precision) -> int:
        return self.target.read_bytes(context, tp, precision)

    def tp_errors(self, tp: int) -> tuple:
        return ()  # the target's heads are checked where the target is

    def tp_warnings(self, tp: int) -> tuple:
        return ()

    def page_shapes(self, blocks: int, block_size: int, tp: int) -> tuple:
        return ()

    @property
    def group_key(self) -> tuple:
        return (self.kind, self.source)


# DeepSeek-V4's caches (compressed sparse attention) as vLLM 0.32 lays them out (models/deepseek_v4/attention.py,
# compressor.py, v1/attention/backends/mla/sparse_swa.py): every page rounded up to the FlashMLA packing stride of
# 576 bytes under fp8_ds_mla, to 512 bytes otherwise (v1/kv_cache_interface.py _apply_alignment_padding).
V4_DS_MLA_ALIGN = 576
V4_PLAIN_ALIGN = 512
V4_SCALE_BLOCK = 64  # nope values under one UE8M0 scale byte in a fp8_ds_mla entry
V4_SWA_BLOCK = 64  # DeepseekV4SWACache's own block size, whatever --block-size says


def round_up(value: int, step: int) -> int:
    return -(-value // step) * step


def v4_alignment(precision: Precision) -> int:
    return V4_DS_MLA_ALIGN if precision is not None and precision.layout == "ds_mla" else V4_PLAIN_ALIGN


def v4_entry_bytes(head_dim: int, rope_dim: int, precision: Precision) -> int:
    """One 512-wide V4 latent (K and V in one) in the cache: fp8_ds_mla packs the nope part as fp8 with one UE8M0
    scale byte per 64 (plus one pad byte) and the rope part as bf16 (448 + 8 + 128 = 584 bytes); a plain cache
    stores the row in its element dtype (bf16 1,024, per-tensor fp8 512)."""
    if precision.layout == "ds_mla":
        if precision.bits != 8:
            raise FieldError("kv_dtype", f"DeepSeek-V4 takes fp8_ds_mla, fp8 or a 16-bit cache, not {precision.name} "
                                         f"(vLLM models/deepseek_v4/attention.py _resolve_dsv4_kv_cache_dtype).")
        nope = head_dim - rope_dim
        return nope + nope // V4_SCALE_BLOCK + 1 + 2 * rope_dim
    if precision.layout != "plain":
        raise FieldError("kv_dtype", f"DeepSeek-V4 takes fp8_ds_mla, fp8 or a 16-bit cache, not {precision.name}.")
    return head_dim * precision.bits // 8


class V4Cache(PagedKV):
    """What DeepSeek-V4's caches answer alike: replicated on every TP rank (one 'head', max_tp_shards 1), pages
    rounded up to the packing stride, and (for the state and window caches) a block size of their own."""

    own_block: Optional[int] = None  # tokens a page holds whatever the engine's block size (None: the engine's)

    def block(self, block_size: int) -> int:
        return self.own_block or block_size

    def heads_per_gpu(self, tp: int) -> int:
        return 1

    def tp_errors(self, tp: int) -> tuple:
        return ()

    def tp_warnings(self, tp: int) -> tuple:
        return ()

    def stored_bytes(self, precision: Precision) -> int:
        """Bytes one stored entry (a token, or a compressed group of tokens) takes."""
        raise NotImplementedError

    def entries(self, tokens: int) -> int:
        """Entries `tokens` tokens make in this cache."""
        return tokens

    def bytes_per_token(self, tp: int, precision: Precision) -> int:
        return self.stored_bytes(precision)

    def page_bytes(self, block_size: int, tp: int, precision: Precision) -> int:
        block = self.block(block_size)
        return round_up(self.entries(block) * self.stored_bytes(precision), v4_alignment(precision))

    def sequence_bytes(self, tokens: int, block_size: int, tp: int, precision: Precision) -> int:
        block = self.block(block_size)
        return self.blocks_per_sequence(tokens, block) * self.page_bytes(block, tp, precision)

    def page_shapes(self, blocks: int, block_size: int, tp: int) -> tuple:
        return ((blocks, self.block(block_size), self.head_dim),)

    def keys_attended(self, start: int, count: int, decode: bool) -> float:
        """Entries the queries at positions start .. start+count-1 attend in total."""
        return 0.0

    def attention_flops(self, heads: float, start: int, count: int, decode: bool) -> float:
        """FLOPs of `count` queries over this cache on one GPU: q.k and p.v over the 512-wide latent a head."""
        return 2 * heads * 2 * self.head_dim * self.keys_attended(start, count, decode)


def attended_keys(start: int, count: int, ratio: int = 1, cap: Optional[int] = None) -> float:
    """Keys the queries at positions start .. start+count-1 see in total when every `ratio` tokens make one key
    and a query sees at most `cap` of them (the first position's keys, then one more every `ratio`). 64 samples
    at most (prefill chunks are long): each of the first count // 64 positions stands for that many, the last
    sample for what is left; summed in closed form (_floor_sum), not sample by sample."""
    stride = max(1, count // 64)
    samples = -(-count // stride)
    last = count - (samples - 1) * stride  # the last sample's positions

    def keys(first_sample: int, end_sample: int) -> int:  # sum of min((first + 1) // ratio, cap) over samples
        capped_from = end_sample if cap is None else min(end_sample, max(first_sample, -(
            -(cap * ratio - 1 - start) // stride)))
        uncapped = (_floor_sum(capped_from, ratio, stride, start + 1) -
                    _floor_sum(first_sample, ratio, stride, start + 1)) if capped_from > first_sample else 0
        return uncapped + (0 if cap is None else (end_sample - max(capped_from, first_sample)) * cap)

    return float(stride * keys(0, samples - 1) + last * keys(samples - 1, samples))


def _floor_sum(n: int, m: int, a: int, b: int) -> int:
    """sum of (a * i + b) // m for i in 0 .. n-1, a, b >= 0, m >= 1 (the Euclid-like reduction)."""
    total = 0
    while n > 0:
        if a >= m:
            total += (n - 1) * n // 2 * (a // m)
            a %= m
        if b >= m:
            total += n * (b // m)
            b %= m
        y = a * n + b
        if y < m:
            break
        n, b, m, a = y // m, y % m, a, m
    return total


@dataclass(frozen=True)
class V4Window(V4Cache):
    """DeepSeek-V4's sliding-window cache, on every layer (DeepseekV4SWACache): the last `sliding_window` tokens'
    512-wide latents, in blocks of 64 tokens."""

    head_dim: int
    rope_dim: int
    sliding_window: int
    o_groups: int = 0  # the grouped output projection's groups, split over TP
    kind: str = field(default="v4_window", init=False)
    own_block = V4_SWA_BLOCK

    def tp_errors(self, tp: int) -> tuple:
        if self.o_groups and self.o_groups % tp:
            return (f"o_groups ({self.o_groups}) is not divisible by tp {tp}: vLLM splits DeepSeek-V4's grouped "
                    f"output projection by groups (models/deepseek_v4/attention.py n_local_groups), so tp must "
                    f"divide {self.o_groups}.",)
        return ()

    @property
    def window(self) -> int:
        return self.sliding_window

    def stored_bytes(self, precision: Precision) -> int:
        return v4_entry_bytes(self.head_dim, self.rope_dim, precision)

    def blocks_per_sequence(self, tokens: int, block_size: int) -> int:
        return min(blocks_for(tokens, block_size), blocks_for(self.window - 1, block_size) + 1)

    def keys_attended(self, start: int, count: int, decode: bool) -> float:
        return attended_keys(start, count, cap=self.window)

    @property
    def group_key(self) -> tuple:
        return (self.kind, self.window, self.head_dim)


@dataclass(frozen=True)
class V4Compressed(V4Cache):
    """DeepSeek-V4's compressed cache (a layer with compress_ratio 4 or 128): one latent per `ratio` tokens, paged
    by tokens (a block of 256 tokens holds 256 / ratio entries). A ratio-4 layer attends the `index_topk` entries its
    indexer picks; a ratio-128 layer (index_topk 0) attends every entry."""

    head_dim: int
    rope_dim: int
    ratio: int
    index_topk: int = 0
    kind: str = field(default="v4_compressed", init=False)
    joins_layer = True  # the window's layer

    def stored_bytes(self, precision: Precision) -> int:
        return v4_entry_bytes(self.head_dim, self.rope_dim, precision)

    def entries(self, tokens: int) -> int:
        return tokens // self.ratio

    def bytes_per_token(self, tp: int, precision: Precision) -> int:
        """A token's share of its entry, rounded up."""
        return -(-self.stored_bytes(precision) // self.ratio)

    def tokens_read(self, context: int) -> int:
        """Entries a decode step attends (not tokens)."""
        held = self.entries(context)
        return min(held, self.index_topk) if self.index_topk else held

    def held_bytes(self, tokens: int, tp: int, precision: Precision) -> int:
        return self.entries(tokens) * self.stored_bytes(precision)

    def read_bytes(self, context: int, tp: int, precision: Precision) -> int:
        return self.tokens_read(context) * self.stored_bytes(precision)

    def keys_attended(self, start: int, count: int, decode: bool) -> float:
        return attended_keys(start, count, self.ratio, self.index_topk or None)

    @property
    def group_key(self) -> tuple:
        return (self.kind, self.ratio, self.head_dim)


@dataclass(frozen=True)
class V4IndexerKeys(IndexerKeys):
    """A ratio-4 layer's lightning-indexer keys (DeepseekV4IndexerCache): one 132-byte fp8 key per `ratio` tokens,
    paged by tokens and padded to the packing stride; a decode step scores every one."""

    ratio: int = 4
    kind: str = field(default="v4_indexer", init=False)

    def entries(self, tokens: int) -> int:
        return tokens // self.ratio

    def stored_bytes(self) -> int:
        return IndexerKeys.bytes_per_token(self, 1, None)

    def bytes_per_token(self, tp: int, precision: Precision) -> int:
        return -(-self.stored_bytes() // self.ratio)

    def page_bytes(self, block_size: int, tp: int, precision: Precision) -> int:
        return round_up(self.entries(block_size) * self.stored_bytes(), v4_alignment(precision))

    def tokens_read(self, context: int) -> int:
        return self.entries(context)

    def held_bytes(self, tokens: int, tp: int, precision: Precision) -> int:
        return self.entries(tokens) * self.stored_bytes()

    def read_bytes(self, context: int, tp: int, precision: Precision) -> int:
        return self.entries(context) * self.stored_bytes()

    def attention_flops(self, heads: float, start: int, count: int, decode: bool) -> float:
        """Every index head of every rank scores every key (index_head_dim a head, no value sum)."""
        return 2 * self.heads * self.head_dim * attended_keys(start, count, self.ratio)

    @property
    def group_key(self) -> tuple:
        return (self.kind, self.ratio, self.head_dim)


@dataclass(frozen=True)
class V4CompressorState(V4Cache):
    """A DeepSeek-V4 compressor's running state (CompressorStateCache): float32 KV and score rows of the tokens not
    yet folded into an entry, `width` values a token (2 x coff x head_dim, coff 2 for the overlapping ratio-4
    compressors), kept for the last coff x ratio tokens in blocks of 4 (ratio 4) or 8 (ratio 128). A decode step
    reads that window once per `ratio` tokens."""

    width: int
    ratio: int
    kind: str = field(default="v4_state", init=False)
    joins_layer = True  # its compressed cache's or indexer's layer

    @property
    def coff(self) -> int:
        return 2 if self.ratio == 4 else 1

    @property
    def window(self) -> int:
        return self.coff * self.ratio

    @property
    def head_dim(self) -> int:
        return self.width

    @property
    def own_block(self) -> int:
        return 4 if self.ratio == 4 else 8

    def stored_bytes(self, precision: Precision) -> int:
        return 4 * self.width

    def blocks_per_sequence(self, tokens: int, block_size: int) -> int:
        return min(blocks_for(tokens, block_size), blocks_for(self.window - 1, block_size) + 1)

    def tokens_read(self, context: int) -> int:
        return min(context, self.window) // self.ratio

    def read_bytes(self, context: int, tp: int, precision: Precision) -> int:
        return min(context, self.window) * self.stored_bytes(precision) // self.ratio

    @property
    def group_key(self) -> tuple:
        return (self.kind, self.window, self.width)


V4_KINDS = (V4Window, V4Compressed, V4IndexerKeys, V4CompressorState)
KVLayer = Union[FullAttention, SlidingWindow, ChunkedAttention, MLALatent, IndexerKeys, LinearState, SharedKV,
                V4Window, V4Compressed, V4IndexerKeys, V4CompressorState]


def layer_bytes(shapes: tuple, element_bytes: int) -> int:
    return sum(math.prod(shape) for shape in shapes) * element_bytes
