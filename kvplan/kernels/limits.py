"""Every limit and shared-memory layout size of the bundled kernels, defined once.

Python validates arguments and sizes launches with these numbers; ``build.py`` hands the ones the CUDA
sources need to NVRTC as ``KVP_*`` macros (see :func:`gqa_macros`, :func:`mla_macros`), and the sources
``static_assert`` that their own layout fits them, so no number is copied between ``.cu`` and Python.

Nothing here imports torch.
"""

from __future__ import annotations

# ---- paged GQA/MQA decode (paged_decode.cu) ----------------------------------------------------------------
HEAD_DIMS = (64, 128, 256)
BLOCK_SIZES = (8, 16, 32, 64, 128)
MAX_GROUP = 128  # query heads per KV head
STEP_TOKENS = 16  # tokens per ring stage (one m16n8k16 M tile)
MAX_STAGES = 8  # ring depth; cp.async.wait_group takes an immediate, the source switches over 0..6
MAX_SPLITS = 128  # sequence splits (Flash-Decoding)
MERGE_FEW_SPLITS = 8  # up to this many splits the GQA and MLA merges take several rows a CTA (*_merge_few)
MIN_SPLIT_TOKENS = 256  # shortest chunk worth a split of its own
SORT_MIN_STEPS = 64  # KVP_SORT: a CTA orders its steps by address when it has at least this many
SORT_MAX_STEPS = 512  # ... and at most this many (and 4 a thread)
SORT_BYTES = 2 * SORT_MAX_STEPS  # their order (16-bit local steps), ahead of the rings; keys sit in the ring meanwhile
SORT_KEY_BYTES = 4 * SORT_MAX_STEPS
MAX_GRID_YZ = 65535  # batch and KV heads ride on grid.y / grid.z
MBAR_AREA = 1024  # bytes of mbarriers at the front of shared memory (bulk-copy path)
BULK_K_GAP = 64  # bulk K tile: odd tokens start this far after the even ones (bank spread)
BULK_V_SKEW = 32  # bulk V tile: every token pair shifts the next rows by this much
BULK_STEP_PAD = 384  # K gap + 7 V skews (224), rounded up to 128 bytes
LANE_SLOT = 16  # bytes one lane copies per cp.async
WARP_SLOT = 32 * LANE_SLOT  # bytes between consecutive slots of one ring stage

# ---- absorbed MLA decode (paged_mla_decode.cu) --------------------------------------------------------------
MLA_KV_LORA_RANK = 512  # "nope" part of the latent: the values
MLA_ROPE_DIM = 64
MLA_ROW = MLA_KV_LORA_RANK + MLA_ROPE_DIM  # elements of one latent row
MLA_BLOCK_SIZES = (16, 32, 64, 128)
MLA_MAX_HEADS = 128
MLA_HEAD_GROUPS = (16, 32, 64)  # query heads per CTA (all in the MMA N tiles); more heads -> more CTAs
MLA_WARPS = 8  # each warp owns 64 of the 512 value dims
# shortest chunk of an MLA split: few sequences are split into short chunks to use the SMs (a CTA streams ~37 KB
# per 2 us step alone). H200 sweep, 16 heads, us: B1 4K 16 splits 26.1, 32 19.0, 64 18.2, 128 23.4; fp8 B1 8K
# 26 splits 27.6, 64 21.0; 128 heads B1 4K 16 62.0, 32 45.1 (benchmarks/RESULTS.md, session 7; was 256 tokens)
MLA_MIN_SPLIT_TOKENS = 64


def kv_bytes(kv_dtype: str) -> int:
    return 1 if kv_dtype == "float8_e4m3fn" else 2


def ring_step_bytes(head_dim: int, kv_dtype: str) -> int:
    """Shared memory of one 16-token cp.async ring stage: (2 K + 4 V) 16-byte slots per lane."""
    rowb = head_dim * kv_bytes(kv_dtype)
    v_chunk = min(16, rowb // 8)
    slots = 2 * (rowb // 64) + 4 * (rowb // v_chunk // 8)
    return slots * WARP_SLOT


def bulk_step_bytes(head_dim: int, kv_dtype: str) -> int:
    """Shared memory of one 16-token bulk-copy stage: padded K and V tiles."""
    return 2 * STEP_TOKENS * head_dim * kv_bytes(kv_dtype) + BULK_STEP_PAD


def gqa_macros(head_dim: int, kv_dtype: str) -> list[tuple[str, str]]:
    vals = {
        "KVP_STEP_TOKENS": STEP_TOKENS,
        "KVP_MAX_STAGES": MAX_STAGES,
        "KVP_MBAR_AREA": MBAR_AREA,
        "KVP_BULK_K_GAP": BULK_K_GAP,
        "KVP_BULK_V_SKEW": BULK_V_SKEW,
        "KVP_BULK_STEP_BYTES": bulk_step_bytes(head_dim, kv_dtype),
        "KVP_RING_STEP_BYTES": ring_step_bytes(head_dim, kv_dtype),
        "KVP_WARP_SLOT": WARP_SLOT,
        "KVP_MERGE_FEW": MERGE_FEW_SPLITS,
    }
    return [(k, str(v)) for k, v in vals.items()]


# MLA shared memory: latent rows land at padded offsets so that both fragment reads are free of bank
# conflicts (paged_mla_decode.cu, "latent tile"): row t starts at STRIDE t + SKEW ((t >> SHIFT) & MASK) + ODD (t & 1).
# Rows of q sit 1216 bytes apart; rows of P (bf16 [head][token]) 2 * tokens + 16.
MLA_Q_STRIDE = MLA_ROW * 2 + 64
# element bytes -> (stride, skew, shift, mask, odd)
_MLA_ROW_LAYOUT = {2: (MLA_ROW * 2, 96, 1, None, 64), 1: (MLA_ROW + 32, 32, 2, None, 0)}
# Heads in M (paged_mla_hm.cuh): 8 consecutive rows start in 8 different 16-byte slots of a 128-byte line (ldmatrix
# reads 8 rows at one column) and rows 2p, 2p + 1 64 bytes apart (a quarter warp's 16-byte K loads: 2 rows x 64 bytes)
_MLA_HM_ROW_LAYOUT = (MLA_ROW * 2 + 128, 16, 1, 3, 64)
# Heads in M with TMA: rows back to back, the tensor copy's 128-byte swizzle keeps the reads conflict-free (stages on
# 1,024-byte boundaries: the fixed area rounds up to one, and the plan asks for 1,024 bytes more to align the start)
_MLA_HM_TMA_LAYOUT = (MLA_ROW * 2, 0, 1, 3, 0)
MLA_HM_HEADS = 16  # the heads-in-M path: 16 query heads (the M of every MMA), 32 tokens a step, bf16 latents
MLA_HM_TOKENS = 32
MLA_HM_Q_BYTES = 16 * MLA_ROW * 2  # q's A fragments in fragment order
MLA_HM_X_BYTES = 2 * MLA_WARPS * 32 * 16  # partial scores: two buffers x 8 warps x 32 lanes x float4


def _row_layout(kv_dtype: str, hm: bool = False, tma: bool = False) -> tuple:
    return (_MLA_HM_TMA_LAYOUT if tma else _MLA_HM_ROW_LAYOUT) if hm else _MLA_ROW_LAYOUT[kv_bytes(kv_dtype)]


def mla_row_offset(t: int, kv_dtype: str, hm: bool = False, tma: bool = False) -> int:
    stride, skew, shift, mask, odd = _row_layout(kv_dtype, hm, tma)
    return stride * t + skew * ((t >> shift) if mask is None else (t >> shift) & mask) + odd * (t & 1)


# The warpgroup-MMA path (paged_mla_wg.cu, sm_90a): 16 or 32 heads a CTA (the wgmmas' N), 64-token steps (their M).
# bf16: two stages of [9 blocks][64 rows][128 bytes], each its own operand tile; fp8: three raw stages of [9][64][64
# bytes] and one 16-bit operand tile they are widened into. Before them q as [9 blocks][heads][128 bytes] and P as
# [heads][128], behind the mbarriers and reduction buffers (1 KB for 16 heads, 2 KB for 32); 1,024 bytes more to
# align the start to the swizzle period. One CTA per SM. fp8 into e4m3 MMAs (``e4m3_mma``, 16 heads): five raw
# stages and no operand tile; q and P hold each head twice (hi and lo parts) in rows of 64 bytes, P in
# MLA_WG_E4M3_P_BUFFERS buffers (the warpgroups hand it over); its reduction buffers fit the same first 1 KB.
# e4m3 MLA: warpgroups running PV (each over 512 / this many value dims) beside the scores' one, and P buffers (the
# steps the scores may run ahead of the values). H200, session 25 (benchmarks/mla_e4m3_probe.py): 1 or 2 values
# warpgroups x 2, 3 or 4 P buffers all within 2% of each other (16h fp8 B32 8K 63.4-64.2 us), so the fewest threads
MLA_WG_E4M3_VALUE_WGS = 1
MLA_WG_E4M3_P_BUFFERS = 2
MLA_WG_E4M3_THREADS = 128 * (1 + MLA_WG_E4M3_VALUE_WGS)
MLA_WG_HEAD_GROUPS = (16, 32)
MLA_WG_TOKENS = 64
MLA_WG_E4M3_STAGES = 5


MLA_WG_STAGES = (2, 3)  # bf16 at 16 heads a CTA may take a third stage of value blocks (paged_mla_wg.cu, the top)
SM90_SMEM_OPTIN = 232448  # shared memory an sm_90 CTA may opt in to (cudaDevAttrMaxSharedMemoryPerBlockOptin)


def mla_wg_smem(kv_dtype: str, heads: int = 16, e4m3_mma: bool = False, stages: int = 2) -> int:
    """Shared memory of paged_mla_wg.cu (its static_asserts check the same sum). ``stages=3`` (bf16, 16 heads): 1 KB
    of mbarriers and buffers, q, three stages of the 8 value blocks, two rope slots (P in the step's slot), no P buffer
    and no alignment slack: 1,024 + 18,432 + 3 x 65,536 + 2 x 8,192 = 232,448, the sm_90 limit exactly."""
    tile = 9 * MLA_WG_TOKENS * 128
    fixed = -(-(64 + 3 * 4 * heads * 4 + 4 * heads) // 1024) * 1024
    if stages == 3:
        if kv_bytes(kv_dtype) != 2 or heads != 16 or e4m3_mma:
            raise ValueError("three stages: bf16 latents at 16 heads a CTA")
        return fixed + 9 * heads * 128 + 3 * (tile * 8 // 9) + 2 * (tile // 9)
    if e4m3_mma:
        q_and_p = (9 + MLA_WG_E4M3_P_BUFFERS) * 2 * heads * 64
        return fixed + q_and_p + MLA_WG_E4M3_STAGES * tile // 2 + 1024
    stages = 3 * tile // 2 + tile if kv_bytes(kv_dtype) == 1 else 2 * tile
    return fixed + 9 * heads * 128 + heads * 128 + stages + 1024

# The warpgroup-MMA GQA / MQA path (paged_decode_wg.cu, sm_90a): 16, 32 or 64 query heads of one KV head a CTA (the
# wgmmas' N), 64-token steps (their M), head_dim 64 or 128, 16-bit caches. Shared memory: the stages' mbarriers and
# the reduction buffers, q as [D / 64 blocks][heads][128 bytes], P as [heads][128 bytes], then the stages, each a
# step's K and V as [D / 64 blocks][64 rows][128 bytes]; 1,024 bytes more to align the start to the swizzle period.
# With two warpgroups (alternate steps) each has its own reductions, P and stages.
DECODE_WG_HEAD_GROUPS = (16, 32, 64)
DECODE_WG_HEAD_DIMS = (64, 128)
DECODE_WG_TOKENS = 64
DECODE_WG_MAX_STAGES = 8


def decode_wg_smem(head_dim: int, heads: int, stages: int, warpgroups: int = 1) -> int:
    """Bytes of shared memory of one CTA: ``stages`` steps in flight for each of its ``warpgroups`` (1 or 2; each has
    its own ring, P and reduction buffers, and shares q)."""
    blocks = head_dim // 64
    fixed = -(-(128 + warpgroups * 3 * 4 * heads * 4) // 1024) * 1024
    step = 2 * blocks * DECODE_WG_TOKENS * 128
    return fixed + blocks * heads * 128 + warpgroups * (heads * 128 + stages * step) + 1024


MLA_STEP_TOKENS = (16, 32, 64)  # tokens per stage a plan may ask for: whole 16-token m-tiles, MTI dividing 8 warps


def mla_step_tokens(kv_dtype: str, tokens: int | None = None) -> int:
    """Tokens per pipeline stage: ``tokens`` when given, else 32 rows of 16-bit latents (so that 3+ stages fit),
    64 of 8-bit ones."""
    if tokens:
        return tokens
    return 32 if kv_bytes(kv_dtype) == 2 else 64


def mla_stage_bytes(kv_dtype: str, tokens: int | None = None, hm: bool = False, tma: bool = False) -> int:
    tok = MLA_HM_TOKENS if hm else mla_step_tokens(kv_dtype, tokens)
    end = mla_row_offset(tok - 1, kv_dtype, hm, tma) + MLA_ROW * kv_bytes(kv_dtype)
    return -(-end // 128) * 128


def mla_p_stride(kv_dtype: str, tokens: int | None = None) -> int:
    return 2 * mla_step_tokens(kv_dtype, tokens) + 16


def mla_x_bytes(head_group: int, kv_dtype: str, tokens: int | None = None) -> int:
    """Shared memory for the k-split QK's partial scores: when a step has fewer (16-token, 8-head) QK units than
    warps, the warps past the units hand 32 lanes x 4 fp32 each to the unit's owner (paged_mla_decode.cu KSPLIT)."""
    units = mla_step_tokens(kv_dtype, tokens) // 16 * (head_group // 8)
    return (MLA_WARPS - units) * 512 if units < MLA_WARPS and MLA_WARPS % units == 0 else 0


def mla_fixed_smem(head_group: int, kv_dtype: str, tokens: int | None = None, hm: bool = False,
                   tma: bool = False) -> int:
    """mbarriers, q tile, P tile, per-step row maxima and sums, k-split partials: everything before the stages
    (heads in M: mbarriers, q's fragments and the partial scores)."""
    if hm:
        fixed = MBAR_AREA + MLA_HM_Q_BYTES + MLA_HM_X_BYTES
    else:
        tok = mla_step_tokens(kv_dtype, tokens)
        fixed = MBAR_AREA + head_group * MLA_Q_STRIDE + head_group * mla_p_stride(kv_dtype, tokens)
        fixed += 2 * (tok // 16) * head_group * 4 + mla_x_bytes(head_group, kv_dtype, tokens)
    line = 1024 if tma else 128
    return -(-fixed // line) * line


def mla_smem_bytes(head_group: int, kv_dtype: str, stages: int, tokens: int | None = None, hm: bool = False,
                   tma: bool = False) -> int:
    return mla_fixed_smem(head_group, kv_dtype, tokens, hm, tma) + stages * mla_stage_bytes(kv_dtype, tokens, hm, tma) \
        + (1024 if tma else 0)


def mla_macros(head_group: int, kv_dtype: str, tokens: int | None = None, hm: bool = False,
               tma: bool = False) -> list[tuple[str, str]]:
    stride, skew, shift, mask, odd = _row_layout(kv_dtype, hm, tma)
    vals = {
        "KVP_MLA_RANK": MLA_KV_LORA_RANK,
        "KVP_MLA_ROPE": MLA_ROPE_DIM,
        "KVP_MLA_HG": head_group,
        "KVP_MLA_TOK": MLA_HM_TOKENS if hm else mla_step_tokens(kv_dtype, tokens),
        "KVP_MLA_WARPS": MLA_WARPS,
        "KVP_MLA_STAGE_BYTES": mla_stage_bytes(kv_dtype, tokens, hm, tma),
        "KVP_MLA_STAGE_OFFSET": mla_fixed_smem(head_group, kv_dtype, tokens, hm, tma),
        "KVP_MLA_Q_STRIDE": MLA_Q_STRIDE,
        "KVP_MLA_P_STRIDE": mla_p_stride(kv_dtype, tokens),
        "KVP_MLA_X_BYTES": MLA_HM_X_BYTES if hm else mla_x_bytes(head_group, kv_dtype, tokens),
        "KVP_MLA_ROW_STRIDE": stride,
        "KVP_MLA_ROW_SKEW": skew,
        "KVP_MLA_ROW_SHIFT": shift,
        "KVP_MLA_ROW_ODD": odd,
        "KVP_MBAR_AREA": MBAR_AREA,
        "KVP_MAX_STAGES": MAX_STAGES,
        "KVP_MERGE_FEW": MERGE_FEW_SPLITS,
    }
    if hm:
        vals.update(KVP_MLA_HM=1, KVP_MLA_ROW_MASK=mask)
        if tma:
            vals.update(KVP_MLA_TMA=1)
    return [(k, str(v)) for k, v in vals.items()]
