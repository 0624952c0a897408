"""What the lightning indexer of DeepSeek sparse attention (DeepSeek-V3.2, GLM-5.x: IndexerKeys layers; DeepSeek-V4's
V4IndexerKeys, below) allocates in vLLM's profile run, by release, and how it lands in the profile peak
(vllm_budget.py). The profile run has no attention metadata, so the indexer op (model_executor/layers/
sparse_attn_indexer.py sparse_attn_indexer) takes its dummy branch, on every layer that runs an indexer, before the
attention returns:

1. It reserves its prefill K gather in the process-wide workspace (v1/worker/workspace.py WorkspaceManager
   .get_simultaneous: one buffer, each view rounded up to 256 bytes, grown to the largest request and never freed,
   the old one freed before the larger is allocated): get_max_prefill_buffer_size keys (prefill_buffer_keys) of
   index_head_dim fp8 values and a 4-byte float32 scale each, and from 0.20 the radix top-k's 1 MiB
   (sparse_attn_indexer.py 0.16.0 :48-53, 0.17.0-0.18.0 :54-59, 0.19.0 :49-55; 0.20.0 :108-117 with
   RADIX_TOPK_WORKSPACE_SIZE :37, 0.23.0 and 0.24.0 :106-115, 0.28.0 :332, 0.31.0 :381, 0.32.0 :444-461, 0.33.0
   :482-499, 0.34.0 :602-619). The fused-MoE modular kernel takes its buffers from the same workspace
   (vllm_profile.moe_workspace), so the indexer adds only what its gather exceeds them by (`growth`), held from the
   first layer through the sampler pass, as the workspace is.
2. Then it allocates a dummy uint8 tensor "to simulate peak logits tensor memory during inference", freed when the
   op returns (DUMMY_LOGITS): none up to 0.18; VLLM_SPARSE_INDEXER_MAX_LOGITS_MB (512 by default, envs.py 0.19.0
   :850, 0.24.0 :996, 0.32.0 :1104, 0.34.0 :1153) MiB from 0.19 (0.19.0 :58-61, 0.20.0 :121-124, 0.23.0 and 0.24.0
   :119-122, 0.28.0 :340-341, 0.31.0 :385-386, 0.32.0 :465-468, 0.33.0 :503-506); in 0.32-0.33 the row-shard
   exchange's transient after it while it is still held (_reserve_row_shard_exchange_transient, 0.32.0 :370-396
   called at :472, 0.33.0 :510: 2 x the top-k indices buffer's max_num_batched_tokens x index_topk int32, where
   v1/attention/backends/mla/indexer.py 0.32.0 :245-262 tp_prefill_row_sharding_supported holds: CUDA, TP > 1, no
   DCP / PCP, a mixed-batch CUDA graph mode other than FULL, every default); in 0.34 the larger of the prefill budget
   and the decode logits, max_decode_rows x round_up(max_model_len, row_align) x the logit's bytes (:626-664:
   max_decode_rows = min(max_num_seqs, max_num_batched_tokens) x (1 + speculative tokens), row_align =
   lcm(split_kv, 1024 / the logit's bytes) with split_kv 384 on compute capability 10.x, else 256; on 10.x, for a
   top-k of 512, 1024 or 2048, the decode is chunked to VLLM_SPARSE_INDEXER_MAX_DECODE_LOGITS_MB = 2048 MiB, envs.py
   :1158, so the rows are at most that budget's). The logits are float32 (indexer_logits_dtype "auto", resolved to
   float32 by the op, :1323-1325), but DeepSeek-V3.2's and DeepSeek-V4's config hooks resolve them to bfloat16 on
   10.x (model_executor/models/config.py :68-78 _set_deepseek_indexer_logits_dtype, called at :95 and :760:
   mqa_logits_use_mx_scales, utils/deep_gemm.py :656-666; not GLM-5.x's GlmMoeDsaForCausalLM, :163-181): there the
   prefill budget holds bf16 logits and their float32 copy, 512 MiB / 4 x (2 + 4) = 768 MiB, the row align is
   lcm(384, 512) = 1536, and the decode rows hold the bf16 logits alone where chunked, beside their float32 copy
   (the "auto" top-k backend reads one, :587-589) where not.
   0.34's fused_mqa_topk workspaces (SM10x) are freed before that tensor and are smaller (model_executor/kernels/
   attention/dsa/fused_mqa_topk.py :112-135: 2 x 8 rows a CTA, one CTA an SM, of 16,384 x 6 + 4,096 x 8 bytes).
   The tensor is live beside the forward's activations and the workspace, not beside the MLP's own intermediates
   (vllm_profile.profile_peak).
DeepSeek-V4's indexer (V4IndexerKeys) runs the same op (DeepseekV4Indexer.indexer_op, a SparseAttnIndexer:
model_executor/layers/deepseek_v4_attention.py 0.20.0:1043, models/deepseek_v4/attention.py 0.22.0:856, 0.29.0
:892, 0.32.0:1033, 0.34.0:898-899 and :1005; called on every ratio-4 layer before its attention, 0.34.0 :706-713),
built with max_model_len // compress_ratio as its length (0.20.0 :1010-1012, 0.34.0 :967-969) and the model's
max_num_batched_tokens x index_topk top-k buffer (models/deepseek_v4/nvidia/model.py 0.32.0:1323-1328). Its gather,
over get_max_prefill_buffer_size // compress_ratio keys, is priced with its attention's workspace
(vllm_budget.v4_prefill_workspace); its dummy logits are this table's, at that length (indexer_profile).
Releases before 0.16 (DeepSeek-V3.2 from 0.11.0: a transient gather in the op's fake implementation, 0.11.0
model_executor/models/deepseek_v2.py:704-712) are not modelled.

3. FLASHMLA_SPARSE reserves its own buffers in the same workspace when its layers are built, from 0.13
   (v1/attention/backends/mla/flashmla_sparse.py FlashMLASparseImpl.__init__; FLASHMLA_RESERVATION): with an
   fp8_ds_mla (from 0.30 also nvfp4_ds_mla) cache a bf16 prefill workspace of get_prefill_workspace_size rows x the
   576-wide latent (max_model_len x 5; from 0.32 x sparse_mla_prefill_workspace_factor, 5 up to 256 Ki tokens and 2
   past them), from 0.18 beside a bf16 query buffer of max_num_batched_tokens x the rank's query heads x 576 (the
   one buffer it reserves for a 16-bit cache, whose heads are padded to the prefill kernel's 64, 128 on SM10x before
   0.32, from 0.29), and from 0.31 beside three prefill query buffers. The workspace manager exists from the worker's
   init_device (gpu_worker.py 0.13.0:261, 0.24.0:352), before load_model, whose DeviceMemoryProfiler covers the
   model's construction (gpu_model_runner.py 0.24.0:5171-5243, gpu/model_runner.py 0.34.0:410-440): the weights
   term measures the reservation (flashmla_reservation). The profile run's requests (the fused-MoE buffers, the K
   gather) then fit in it or grow it (profile_allocation): up to 0.30 the layers keep views of the reserved buffer
   (self.q_concat_buffer, self.prefill_bf16_workspace: 0.24.0 :599-608, 0.30.0 :748-755), so a larger request gets a
   new buffer of its full size beside it, the manager dropping only its own reference (workspace.py 0.24.0:168-178);
   from 0.31 they keep none ("Reserve capacity without retaining views", 0.31.0 :793-795, 0.34.0 :849-851), so the
   reserved buffer is freed and replaced by the larger one: the profile adds only what the request exceeds it by.
   Only the FLASHMLA_SPARSE backend does this (vllm_sparse.sparse_cache, sixteen_bit_backend): not FlashInfer's
   sparse backends (SM10x's fp8, SM12x), FLASH_ATTN_MLA_SPARSE (Hopper's 16-bit cache from 0.25) or ROCm's (whose
   own q_concat reservation, rocm_aiter_mla_sparse.py 0.34.0:842, is not modelled). Not modelled either: DCP / PCP's
   extra gather views; a draft model's separate workspace lane (0.34 gpu/model_runner.py:217-220, :433, a
   DraftModelSpeculator only).

Every length here is the one the model was built with. Under --max-model-len auto (or -1) vLLM builds and profiles
at the model's own length and fits a shorter one only after: the engine core profiles (determine_available_memory,
v1/engine/core.py 0.32.0:315, 0.34.0:338) before get_kv_cache_configs fits (:326 / :349; kv_cache_utils.py 0.32.0
:2414-2483 _auto_fit_max_model_len), and the indexer's gather size and length are fixed when it is built
(models/deepseek_v32/attention.py 0.32.0:101-120, 0.34.0:105-120; model_executor/models/deepseek_v2.py 0.32.0
:737-741), as is sparse_mla_prefill_workspace_factor ("Resolved once: KV cache auto-fit can lower max_model_len
later", config/vllm.py 0.32.0:1790-1798, 0.34.0:1794-1803); update_max_model_len (:337 / :360, gpu_worker.py
0.34.0:874-884) resizes none of them. The callers pass that length (`length`, vllm_budget's built_len).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from ..model.kinds import IndexerKeys, V4IndexerKeys
from .vllm_versions import PINNED, parse_version, release_rule

MiB = 2**20
WORKSPACE_VIEW_ALIGN = 256  # v1/worker/workspace.py get_simultaneous: each view rounded up (0.20.0:104, 0.34.0:203)
# get_max_prefill_buffer_size (v1/attention/backends/mla/indexer.py): max_model_len x 40 up to 0.31 (0.16.0 :183-193,
# 0.20.0 :219-229, 0.31.0), then x (576 x 2 // 132 = 8) x sparse_mla_prefill_workspace_factor (0.32.0 :918-929,
# 0.34.0 :890-901), which VllmConfig sets to 5 up to 256 Ki tokens and 2 past them (config/vllm.py 0.32.0:1790-1798,
# 0.33.0 :1868-1874, 0.34.0:1800-1803)
PREFILL_FACTOR_SINCE = (0, 32)
# RADIX_TOPK_WORKSPACE_SIZE (sparse_attn_indexer.py 0.20.0:37; model_executor/layers/indexer_topk.py 0.32.0:15)
RADIX_TOPK_BYTES = 1024 * 1024
RADIX_SINCE = (0, 20)  # 0.19.0's reservation is the gather alone (:51-54)
KEY_SCALE_BYTES = 4  # one float32 scale a gathered key
MAX_LOGITS_MIB = 512  # VLLM_SPARSE_INDEXER_MAX_LOGITS_MB's default
MAX_DECODE_LOGITS_MIB = 2048  # VLLM_SPARSE_INDEXER_MAX_DECODE_LOGITS_MB's default (0.34.0 envs.py:1158)
INDEX_BYTES = 4  # int32 top-k indices
CHUNKED_DECODE_TOPK = (512, 1024, 2048)  # the top-k sizes 0.34's chunked decode takes (sparse_attn_indexer.py :590-598)
# float32 logits: attention_config.indexer_logits_dtype "auto" resolves to float32 (0.34.0 config/attention.py:135,
# :261-267; model_executor/layers/sparse_attn_indexer.py :1323-1325)
LOGIT_BYTES = 4
# ... but bfloat16 on compute capability 10.x for the architectures whose config hook resolves it so (0.34.0
# model_executor/models/config.py :68-78, DeepseekV32ForCausalLM :95, DeepseekV4ForCausalLMConfig :760 for the
# names mapped to it at :1548-1550)
BF16_LOGIT_BYTES = 2
BF16_LOGITS_ARCHITECTURES = ("DeepseekV32ForCausalLM", "DeepseekV4ForCausalLM", "DeepseekV4ForConditionalGeneration",
                             "DeepseekV41ForCausalLM")
# the dummy logits tensor the indexer's profile branch allocates, by first release: "decode" (0.34), "exchange"
# (512 MiB and the row-shard exchange's transient), "fixed" (512 MiB), "none" (no such tensor)
DUMMY_LOGITS = (
    ((0, 34), "decode", "0.34.0 sparse_attn_indexer.py:626-664"),
    ((0, 32), "exchange", "0.32.0 sparse_attn_indexer.py:465-472, 0.33.0 :503-510"),
    ((0, 19), "fixed", "0.19.0 sparse_attn_indexer.py:58-61 ... 0.31.0 :385-386"),
    ((0, 16), "none", "0.16.0 sparse_attn_indexer.py:48-53, 0.18.0 :54-59: the gather alone"),
)


# FLASHMLA_SPARSE's reservation when built, by first release: "factor" (0.32: the prefill rows' factor by length, the
# prefill kernel's head padding 64 on every GPU), "queries" (0.31: + three prefill query buffers), "padded" (0.29: a
# 16-bit cache's query buffer heads padded), "concat" (0.18: the query buffer beside the prefill workspace, alone for
# a 16-bit cache), "prefill" (0.13: the prefill workspace alone, fp8_ds_mla only)
FLASHMLA_RESERVATION = (
    ((0, 32), "factor", "flashmla_sparse.py 0.32.0:337-344 and :782-838, 0.33.0 :776-832, 0.34.0 :344-351 and "
                        ":803-851; config/vllm.py 0.32.0:1790-1798, 0.33.0 :1866-1874, 0.34.0 :1795-1803"),
    ((0, 31), "queries", "flashmla_sparse.py 0.31.0:305-315 and :737-795 (prefill_padding :723-725)"),
    ((0, 29), "padded", "flashmla_sparse.py 0.29.0:583-628, 0.30.0 :693-755"),
    ((0, 18), "concat", "flashmla_sparse.py 0.18.0:566-596, 0.24.0 :578-608, 0.28.0 :555-585"),
    ((0, 13), "prefill", "flashmla_sparse.py 0.13.0 and 0.14.0 :360-367 and :725-736, 0.17.0 :209-216 and :571-582"),
)
VIEWS_RELEASED_SINCE = (0, 31)  # flashmla_sparse.py 0.31.0:793-795: the layers keep no views of the reservation
DS_MLA_CACHES = ("fp8_ds_mla", "nvfp4_ds_mla")  # QUANTIZED_DS_MLA_CACHE_FORMATS (0.30.0 flashmla_sparse.py)
DS_MLA_ROPE = 64  # FP8_DS_MLA_ROPE_DIM: a NoPE latent's queries on fp8_ds_mla keep DeepSeek's 576 (0.32.0 :763-768)
BF16 = 2


@dataclass(frozen=True)
class IndexerProfile:
    """The indexer's dummy-run buffers on one rank: its K gather's workspace request and the dummy logits tensor."""

    gather: int
    logits: int
    how: str


def workspace_views(*views: int) -> int:
    """Bytes of one workspace request of these views, each rounded up to WORKSPACE_VIEW_ALIGN."""
    return sum(-(-view // WORKSPACE_VIEW_ALIGN) * WORKSPACE_VIEW_ALIGN for view in views)


def prefill_buffer_keys(max_model_len: int, version: str = PINNED) -> int:
    """get_max_prefill_buffer_size: the keys the indexer's prefill gather holds."""
    if parse_version(version) < PREFILL_FACTOR_SINCE:
        return max_model_len * 40
    return max_model_len * (576 * 2 // 132) * (5 if max_model_len <= 256 * 1024 else 2)


def gather_bytes(keys: int, head_dim: int, version: str = PINNED) -> int:
    """The workspace request of the indexer's K gather over `keys` keys: fp8 values, a float32 scale each and, from
    RADIX_SINCE, the radix top-k's workspace."""
    radix = (RADIX_TOPK_BYTES,) if parse_version(version) >= RADIX_SINCE else ()
    return workspace_views(keys * head_dim, keys * KEY_SCALE_BYTES, *radix)


def dummy_logits_bytes(spec, settings, version: str = PINNED, capability=(), tp: int = 1,
                       length: Optional[int] = None) -> int:
    """Bytes of the dummy logits tensor the indexer's profile branch allocates (DUMMY_LOGITS), the model built at
    `length` tokens (None: settings.max_model_len); a DeepSeek-V4 indexer's op is built at length // its ratio."""
    rule = release_rule(DUMMY_LOGITS, version, "none")
    fixed = MAX_LOGITS_MIB * MiB
    if rule == "none":
        return 0
    topk = max((getattr(layer, "index_topk", 0) for layer, _ in spec.layer_counts), default=0)
    if rule == "exchange":  # the top-k indices buffer: max_num_batched_tokens x index_topk int32
        return fixed + (2 * settings.max_num_batched_tokens * topk * INDEX_BYTES if tp > 1 else 0)
    if rule == "fixed":
        return fixed
    length = length or settings.max_model_len
    v4 = next((layer for layer, _ in spec.layer_counts if isinstance(layer, V4IndexerKeys)), None)
    if v4 is not None:
        length //= v4.ratio
    drafts = spec.draft.config.num_speculative_tokens if spec.draft is not None else 0
    rows = min(settings.max_num_seqs, settings.max_num_batched_tokens) * (1 + drafts)
    blackwell = bool(capability) and capability[0] == 10
    half = blackwell and getattr(spec, "architecture", "") in BF16_LOGITS_ARCHITECTURES
    logit, copy = (BF16_LOGIT_BYTES, LOGIT_BYTES) if half else (LOGIT_BYTES, 0)  # bf16 logits keep an fp32 copy
    chunked = blackwell and topk in CHUNKED_DECODE_TOPK
    if chunked:  # a chunk's logits are read in place: no copy
        rows = min(rows, MAX_DECODE_LOGITS_MIB * MiB // (logit * length))
    align = math.lcm(384 if blackwell else 256, 1024 // logit)  # lcm(split_kv, the 1024-byte row stride)
    return max(fixed // LOGIT_BYTES * (logit + copy),
               rows * -(-length // align) * align * (logit + (0 if chunked else copy)))


def indexer_profile(spec, settings, version: str = PINNED, capability=(), tp: int = 1,
                    length: Optional[int] = None):
    """The IndexerProfile of `spec`'s lightning indexer in vLLM `version` on a CUDA GPU of `capability`, the model
    built at `length` tokens (None: settings.max_model_len); None without one or before 0.16. A DeepSeek-V4
    indexer's gather is its attention's workspace's (vllm_budget.v4_prefill_workspace): 0 here."""
    keys = next((layer for layer, _ in spec.layer_counts if isinstance(layer, IndexerKeys)), None)
    if keys is None or parse_version(version) < DUMMY_LOGITS[-1][0]:
        return None
    logits = dummy_logits_bytes(spec, settings, version, capability, tp, length)
    if isinstance(keys, V4IndexerKeys):
        return IndexerProfile(0, logits, "K gather (priced with DeepSeek-V4's attention workspace)")
    count = prefill_buffer_keys(length or settings.max_model_len, version)
    gather = gather_bytes(count, keys.head_dim, version)
    return IndexerProfile(gather, logits, f"K gather ({count:,} keys, {gather / 2**30:.2f} GiB)")


def flashmla_reservation(spec, settings, tp: int, cache: str, version: str = PINNED, capability=(),
                         length: Optional[int] = None) -> int:
    """Bytes FLASHMLA_SPARSE reserves in the workspace as its layers are built (FLASHMLA_RESERVATION, one request of
    views each rounded up to WORKSPACE_VIEW_ALIGN), for `spec`'s sparse MLA layers at `tp` ranks with the cache
    dtype `cache` vLLM keeps (fp8_ds_mla, nvfp4_ds_mla or a 16-bit one), the model built at `length` tokens (None:
    settings.max_model_len); 0 before 0.13, for a 16-bit cache before 0.18 and without sparse MLA layers. The caller
    decides that FLASHMLA_SPARSE is the backend."""
    rule = release_rule(FLASHMLA_RESERVATION, version)
    layer = next((layer for layer in spec.layers if getattr(layer, "sparse", False)), None)
    quantized = cache in DS_MLA_CACHES
    if rule is None or layer is None or (rule == "prefill" and not quantized):
        return 0
    length = length or settings.max_model_len
    tokens, heads, rank = settings.max_num_batched_tokens, spec.num_attention_heads // tp, layer.kv_lora_rank
    width = layer.kv_lora_rank + layer.qk_rope_head_dim
    if rule == "factor" and cache == "fp8_ds_mla" and layer.qk_rope_head_dim == 0:
        width = rank + DS_MLA_ROPE
    blackwell = bool(capability) and capability[0] == 10
    pad = 128 if blackwell and rule in ("padded", "queries") else 64  # prefill_padding
    padded = -(-heads // pad) * pad
    views = []
    if rule != "prefill":  # the query buffer: the rank's heads, padded for a 16-bit cache from 0.29
        views.append(tokens * (heads if quantized or rule == "concat" else padded) * width * BF16)
    if quantized:
        factor = 2 if rule == "factor" and length > 256 * 1024 else 5
        views.append(factor * length * width * BF16)
        if rule in ("queries", "factor"):
            views += [tokens * padded * width * BF16, tokens * padded * rank * BF16, tokens * heads * rank * BF16]
    return workspace_views(*views)


def profile_allocation(reserved: int, needed: int, version: str = PINNED) -> int:
    """Bytes the profile run allocates in the workspace for requests of up to `needed` bytes after FLASHMLA_SPARSE
    reserved `reserved` bytes when built: none while they fit; beyond it, the whole request up to 0.30 (its layers
    keep the reservation alive beside the new buffer) and only the excess from 0.31 (VIEWS_RELEASED_SINCE)."""
    if needed <= reserved:
        return 0
    return needed - reserved if parse_version(version) >= VIEWS_RELEASED_SINCE else needed
