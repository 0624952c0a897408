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
modelled. Not modelled either: FLASHMLA_SPARSE's reservation of its own prefill workspace in the same buffer when
its layers are built with an fp8_ds_mla cache (flashmla_sparse.py 0.24.0 :592-603, 0.32.0 :800-838: factor x
max_model_len x 576 bf16 values and the prefill query buffers), which the weights term measures and which then holds
the indexer's smaller gather; DCP / PCP's extra gather views.
"""

from __future__ import annotations

from dataclasses import dataclass

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
