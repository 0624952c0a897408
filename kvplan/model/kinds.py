"""Layer kinds: one small frozen class per kind of cache a decoder layer holds, each answering every question
about itself (in the spirit of vLLM's vllm/v1/kv_cache_interface.py): bytes per token on one GPU of a TP group,
the fixed state of a sequence, the paged blocks a sequence holds, the tokens one decode step reads, the
tensors one layer allocates, and whether a TP degree can shard it. Planning, the engine models and verify ask
the kind; none of them branches on it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Optional, Union

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

    def bytes_per_token(self, tp: int, precision: Precision) -> int:
        """Cache bytes one token occupies in this layer on one GPU of a TP group."""
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

    def bytes_read(self, context: int, tp: int, precision: Precision) -> int:
        """Cache bytes one decode step reads in this layer for a sequence of `context` tokens, on one GPU."""
        return self.bytes_per_token(tp, precision) * self.tokens_read(context)


@dataclass(frozen=True)
class FullAttention(PagedKV):
    """Standard K and V per token per KV head (MHA, GQA, MQA); holds every token of the sequence."""

    kv_heads: int
    head_dim: int
    v_head_dim: Optional[int] = None  # differs from head_dim only in a few models
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

    def bytes_per_token(self, tp: int, precision: Precision) -> int:
        return self.heads_per_gpu(tp) * precision.head_bytes(self.head_dim, self.value_dim)

    def tp_errors(self, tp: int) -> tuple:
        kv = self.kv_heads
        if kv % tp == 0 or tp % kv == 0:
            return ()
        return (f"num_key_value_heads ({kv}) and tp {tp} do not divide each other: vLLM needs tp to divide the "
                f"KV heads or the KV heads to divide tp.",)

    def tp_warnings(self, tp: int) -> tuple:
        kv = self.kv_heads
        if tp > kv and tp % kv == 0:
            return (f"tp {tp} > {kv} KV heads: each KV head is replicated on {tp // kv} GPUs, so the group holds "
                    f"{tp // kv}x the KV memory of an unreplicated split.",)
        return ()

    def page_shapes(self, blocks: int, block_size: int, tp: int) -> tuple:
        """The tensors one layer allocates for `blocks` paged blocks: K and V [blocks, block_size, heads, dim],
        the layout of vLLM's FlashAttention backend."""
        heads = self.heads_per_gpu(tp)
        return (blocks, block_size, heads, self.head_dim), (blocks, block_size, heads, self.value_dim)

    @property
    def group_key(self) -> tuple:
        """Layers with equal keys can share one pool of blocks."""
        return (self.kind, self.window, self.kv_heads, self.head_dim, self.value_dim)


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


@dataclass(frozen=True)
class MLALatent(PagedKV):
    """DeepSeek-style multi-head latent attention: one compressed latent per token per layer, shared by all
    heads and replicated on every TP rank."""

    kv_lora_rank: int
    qk_rope_head_dim: int
    # DeepSeek sparse attention (DSA): a decode step attends only the index_topk latents the layer's lightning
    # indexer picks (0: dense MLA, every latent)
    index_topk: int = 0
    kind: str = field(default="mla", init=False)

    @property
    def latent_dim(self) -> int:
        return self.kv_lora_rank + self.qk_rope_head_dim

    @property
    def sparse(self) -> bool:
        return self.index_topk > 0

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
        return precision.latent_bytes(self.kv_lora_rank, self.qk_rope_head_dim)

    def tp_errors(self, tp: int) -> tuple:
        return ()  # replicated by design

    def tp_warnings(self, tp: int) -> tuple:
        return ()  # replication is MLA's design, said once in the estimate's footnote

    def page_shapes(self, blocks: int, block_size: int, tp: int) -> tuple:
        return ((blocks, block_size, self.latent_dim),)

    @property
    def group_key(self) -> tuple:
        return (self.kind, None, self.latent_dim)


@dataclass(frozen=True)
class LinearState:
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
    kind: str = field(default="linear", init=False)

    window = None

    def heads_per_gpu(self, tp: int) -> int:
        return self.heads // tp

    def elements_per_token(self, tp: int) -> int:
        return 0

    def vectors_per_token(self, tp: int) -> int:
        return 0

    def bytes_per_token(self, tp: int, precision: Precision) -> int:
        return 0

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

    def tokens_held(self, tokens: int) -> int:
        return 0

    def tokens_read(self, context: int) -> int:
        return 0

    def bytes_read(self, context: int, tp: int, precision: Precision) -> int:
        return 0  # the state is read (and written back) per sequence: state_bytes

    def blocks_per_sequence(self, tokens: int, block_size: int) -> int:
        return 0

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
class SharedKV:
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

    def elements_per_token(self, tp: int) -> int:
        return 0

    def vectors_per_token(self, tp: int) -> int:
        return 0

    def bytes_per_token(self, tp: int, precision: Precision) -> int:
        return 0

    def state_bytes(self, tp: int, dtype_bytes: int) -> int:
        return 0

    def page_bytes(self, block_size: int, tp: int, precision: Precision) -> int:
        return 0

    def tokens_held(self, tokens: int) -> int:
        return 0

    def tokens_read(self, context: int) -> int:
        return self.target.tokens_read(context)

    def bytes_read(self, context: int, tp: int, precision: Precision) -> int:
        return self.target.bytes_read(context, tp, precision)

    def blocks_per_sequence(self, tokens: int, block_size: int) -> int:
        return 0

    def tp_errors(self, tp: int) -> tuple:
        return ()  # the target's heads are checked where the target is

    def tp_warnings(self, tp: int) -> tuple:
        return ()

    def page_shapes(self, blocks: int, block_size: int, tp: int) -> tuple:
        return ()

    @property
    def group_key(self) -> tuple:
        return (self.kind, self.source)


KVLayer = Union[FullAttention, SlidingWindow, ChunkedAttention, MLALatent, IndexerKeys, LinearState, SharedKV]


def layer_bytes(shapes: tuple, element_bytes: int) -> int:
    return sum(math.prod(shape) for shape in shapes) * element_bytes
