"""What the lightning indexer of DeepSeek sparse attention (DeepSeek-V3.2, GLM-5.x: IndexerKeys layers) allocates in
vLLM's profile run, by release, and how it lands in the profile peak (vllm_budget.py). The profile run has no
attention metadata, so the indexer op (model_executor/layers/sparse_attn_indexer.py sparse_attn_indexer) takes its
dummy branch, on every layer that runs an indexer, before the attention returns:

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
   and the decode logits, max_decode_rows x round_up(max_model_len, row_align) x 4 bytes of float32 logits
   (:626-664: max_decode_rows = min(max_num_seqs, max_num_batched_tokens) x (1 + speculative tokens), row_align =
   lcm(split_kv, 256) with split_kv 384 on compute capability 10.x, else 256; on 10.x the decode is chunked to
   VLLM_SPARSE_INDEXER_MAX_DECODE_LOGITS_MB = 2048 MiB, envs.py :1158, so the rows are at most that budget's).
   0.34's fused_mqa_topk workspaces (SM10x) are freed before that tensor and are smaller (model_executor/kernels/
   attention/dsa/fused_mqa_topk.py :112-135: 2 x 8 rows a CTA, one CTA an SM, of 16,384 x 6 + 4,096 x 8 bytes).
   The tensor is live beside the forward's activations and the workspace, not beside the MLP's own intermediates
   (vllm_profile.profile_peak).
DeepSeek-V4's indexer (V4IndexerKeys) reserves the same gather over max_model_len / compress_ratio keys, priced with
its attention's workspace (vllm_budget.v4_prefill_workspace). Releases before 0.16 (DeepSeek-V3.2 from 0.11.0: a
transient gather in the op's fake implementation, 0.11.0 model_executor/models/deepseek_v2.py:704-712) are not
modelled.

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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..model.kinds import IndexerKeys
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


def dummy_logits_bytes(spec, settings, version: str = PINNED, capability=(), tp: int = 1) -> int:
    """Bytes of the dummy logits tensor the indexer's profile branch allocates (DUMMY_LOGITS)."""
    rule = release_rule(DUMMY_LOGITS, version, "none")
    fixed = MAX_LOGITS_MIB * MiB
    if rule == "none":
        return 0
    topk = max((getattr(layer, "index_topk", 0) for layer, _ in spec.layer_counts), default=0)
    if rule == "exchange":  # the top-k indices buffer: max_num_batched_tokens x index_topk int32
        return fixed + (2 * settings.max_num_batched_tokens * topk * INDEX_BYTES if tp > 1 else 0)
    if rule == "fixed":
        return fixed
    drafts = spec.draft.config.num_speculative_tokens if spec.draft is not None else 0
    rows = min(settings.max_num_seqs, settings.max_num_batched_tokens) * (1 + drafts)
    blackwell = bool(capability) and capability[0] == 10
    if blackwell and topk in CHUNKED_DECODE_TOPK:
        rows = min(rows, MAX_DECODE_LOGITS_MIB * MiB // (LOGIT_BYTES * settings.max_model_len))
    align = 768 if blackwell else 256  # lcm(split_kv, 1024 // 4)
    return max(fixed, rows * -(-settings.max_model_len // align) * align * LOGIT_BYTES)


def indexer_profile(spec, settings, version: str = PINNED, capability=(), tp: int = 1):
    """The IndexerProfile of `spec`'s lightning indexer in vLLM `version` on a CUDA GPU of `capability`, None without
    one (a DeepSeek-V4 indexer has its own rule) or before 0.16."""
    keys = next((layer for layer, _ in spec.layer_counts if type(layer) is IndexerKeys), None)
    if keys is None or parse_version(version) < DUMMY_LOGITS[-1][0]:
        return None
    count = prefill_buffer_keys(settings.max_model_len, version)
    gather = gather_bytes(count, keys.head_dim, version)
    return IndexerProfile(gather, dummy_logits_bytes(spec, settings, version, capability, tp),
                          f"K gather ({count:,} keys, {gather / 2**30:.2f} GiB)")


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
