"""The skinny-GEMM / MoE-pairs kernel (skinny_gemm.cu): its one instantiation, its limits, and the pure
choices and checks of a launch (how many CTAs split k; which tensors a call may take). Nothing here imports
torch, so the CPU tests and the compile test read it directly.

Everything but the dtype, the weight format and 8-or-16 columns is a launch argument, and those three pick
one of the kernels inside the single cubin, so the whole kernel is one instantiation per arch. SkinnyConfig's
fields (weight bytes in flight per lane) make other cubins, compiled on demand for benchmarks and tests only.
"""

from __future__ import annotations

from dataclasses import dataclass

WARPS = 8  # warps per CTA (they split the CTA's k range)
THREADS = WARPS * 32
MAX_SLOTS = THREADS  # (token, expert) pairs of one MoE call: one thread each when an expert gathers its pairs
ROWS_PER_CTA = 32  # plain: two 16-row MMA tiles; gated: 16 gate rows and their 16 up rows
MAX_COLUMNS = 16  # tokens (dense) or tokens routed to one expert (MoE): two 8-column MMA tiles
# MoE beyond the plan's max_tokens: tokens per by-expert launch pair (bounds its scratch: pairs x (intermediate
# x 2 + hidden x 4) bytes, 70 MB at gpt-oss-20b's top 4; each expert's weights stream once per chunk)
EXPERT_CHUNK_TOKENS = 1024
MAX_KSPLIT = 16
WS_CELL = ROWS_PER_CTA * 16  # fp32 workspace values per (slot, row tile) when k is split across CTAs
MXFP4_GROUP = 32  # values per E8M0 scale
FP8_BLOCK = 128  # fp8 weights (DeepSeek-V3's e4m3 with weight_block_size [128, 128]): rows and k values per fp32 scale
DTYPES = ("bfloat16", "float16")
# bf16 / fp16: 16-bit weights of the activations' dtype; mxfp4: e2m1 values with an E8M0 scale per 32 (gpt-oss);
# fp8: e4m3 values with an fp32 scale per 128 x 128 block (DeepSeek-V3/R1). The quantised formats take bf16 activations.
WEIGHT_FORMATS = ("bf16", "fp16", "mxfp4", "fp8")
QUANTISED = ("mxfp4", "fp8")
ACTIVATIONS = {"silu": 1, "gelu_tanh": 2}  # launch argument `mode` of the gated stage (0: plain)
PLAIN_ACTIVATIONS = {"relu2": 3}  # `mode` of a non-gated first stage: act(up @ x) (Nemotron-H's experts)


# chunks per row per lane per step (KVP_SK_U / KVP_SK_U_FP4): 128 / 64 B. fp8 kernels take the 16-bit ones (unroll,
# min_blocks: 128 B of a row a step, one 128-value block; sm_90, 2 CTAs per SM: 115 / 128 registers at 8 / 16
# columns, no spills)
UNROLL = {"16bit": 2, "mxfp4": 1}
CHUNK_VALUES = {"mxfp4": 32, "fp8": 16}  # values in a lane's 16-byte chunk (16-bit formats: 8)
UNROLLS = (1, 2, 4, 8)
MIN_BLOCKS = 2  # the launch bound's CTAs per SM: registers capped at 65536 / (2 x 256) = 128 per thread
# mxfp4 kernels: no cap (1). Their unpacking is ALU work, not loads in flight (more chunks per lane were slower):
# H200, gpt-oss-20b's experts, us per layer at 1 / 4 / 8 tokens 45.5 / 113.1 / 184.5 -> 40.6 / 106.0 / 173.2
# (benchmarks/RESULTS.md, session 7); the 16-bit kernels unchanged by it (Mixtral, DeepSeek-V2-Lite within 1%).
MIN_BLOCKS_FP4 = 1
PREFETCH = 0  # L2 prefetch distance in the lane's own steps (0: none)
EXPERT_TILES = 8  # by-expert kernels: 8-column MMA tiles per pass over an expert's pairs (KVP_SK_EXPERT_TILES)
ROW_TILES = 4  # the row-tile by-expert kernel: 8-column tiles per pass (KVP_SK_ROW_TILES)
# mxfp4's passes (KVP_SK_ROW_TILES_FP4): twice the pairs for each chunk unpacked. H100, session 64
# (`skinny_gemm.py --moe-large`), gpt-oss-20b's experts, ms a layer at 295 tokens: 0.90 at 8 tiles, 1.11 at 4 (k split
# 1.13); not yet timed on an H200
ROW_TILES_FP4 = 8


def row_pass(weight_format: str) -> int:
    """Pairs per pass of the row-tile by-expert kernel for ``weight_format``."""
    return 8 * (ROW_TILES_FP4 if weight_format == "mxfp4" else ROW_TILES)

# a hot (joined) expert's passes dealt over CTA rows, at most this many each. H200, session 42
# (benchmarks/probes/fp8_experts_probe.py, us a layer, one pass a CTA row against two): DeepSeek-V3's fp8 experts at
# tp 8, 84 tokens 601 vs 816, 256 tokens 745 vs 940, 32 tokens the same; Qwen3-Next's bf16 experts at tp 2, 440 tokens
# 527 vs 537, 64 and 128 tokens the same
ROW_PASSES_PER_CTA = 1
# the row-tile kernel's weight ring (KVP_SK_ROW_STAGES): steps of 4 KB per warp copied ahead with cp.async; 2 stages
# of 8 warps are 64 KB of shared memory, two CTAs per SM (the launch bound's register cap allows two). H200,
# `skinny_gemm.py --moe-batch` (benchmarks/RESULTS.md, session 14): 2 stages 1-2% ahead of 3 on every shape, 4 (one
# CTA per SM) 15-50% behind
ROW_STAGES = 2
ROW_STAGE_CHOICES = (2, 3, 4)
ROW_STEP_BYTES = 32 * 8 * 16  # a warp's step: 32 lanes x 8 chunks of 16 bytes (2 k chunks x 4 weight rows a lane)
EXPERT_TILE_CHOICES = (2, 4, 8)
KSPLIT_RULES = ("wave", "fill")  # see choose_ksplit; "wave" is the default


@dataclass(frozen=True)
class SkinnyConfig:
    """The skinny GEMM kernels (one cubin: every dtype, weight format and column count).

    The fields are benchmark variants of how many weight bytes a lane keeps in flight; the default instance is
    the one cubin every launch uses (its name and macros carry nothing for a field left at its default, so the
    default's cache key and CI's compile set do not depend on the variants existing).
    """

    unroll: int = UNROLL["16bit"]
    unroll_fp4: int = UNROLL["mxfp4"]
    min_blocks: int = MIN_BLOCKS
    min_blocks_fp4: int = MIN_BLOCKS_FP4
    prefetch: int = PREFETCH
    expert_tiles: int = EXPERT_TILES
    row_stages: int = ROW_STAGES
    warps: int = WARPS  # a CTA's warps (pair_warps: fewer for a k too short to give each of eight a step)
    # the GEMM's kernels alone, without the by-expert ones (KVP_SK_DENSE_ONLY): the sweep variants' compile check
    # (their 16-bit kernels are the same code; the by-expert kernels were 4/5 of each cubin's NVRTC time)
    dense_only: bool = False

    source = "skinny_gemm.cu"
    compile_cost = 2.6  # rough NVRTC seconds on one CI core (batch.py schedules longest first)
    DENSE_KERNELS = ("kvp_skinny_combine_bf16", "kvp_skinny_combine_f16", "kvp_skinny_bf16_c8", "kvp_skinny_bf16_c16",
                     "kvp_skinny_f16_c8", "kvp_skinny_f16_c16", "kvp_skinny_mxfp4_c8", "kvp_skinny_mxfp4_c16",
                     "kvp_skinny_fp8_c8", "kvp_skinny_fp8_c16")
    ALL_KERNELS = DENSE_KERNELS + ("kvp_skinny_bf16_e", "kvp_skinny_f16_e", "kvp_skinny_mxfp4_e", "kvp_skinny_fp8_e",
                                   "kvp_skinny_bf16_er", "kvp_skinny_f16_er", "kvp_skinny_fp8_er",
                                   "kvp_skinny_mxfp4_er")

    @property
    def kernels(self) -> tuple:
        return self.DENSE_KERNELS if self.dense_only else self.ALL_KERNELS

    def _extra(self) -> list[tuple[str, str, str, int]]:
        """(macro, name suffix, value, default) of every variant field."""
        return [("KVP_SK_U", "u", self.unroll, UNROLL["16bit"]), ("KVP_SK_U_FP4", "fu", self.unroll_fp4,
                                                                   UNROLL["mxfp4"]),
                ("KVP_SK_MINB", "mb", self.min_blocks, MIN_BLOCKS),
                ("KVP_SK_MINB_FP4", "fmb", self.min_blocks_fp4, MIN_BLOCKS_FP4),
                ("KVP_SK_PF", "pf", self.prefetch, PREFETCH),
                ("KVP_SK_EXPERT_TILES", "et", self.expert_tiles, EXPERT_TILES),
                ("KVP_SK_ROW_STAGES", "rs", self.row_stages, ROW_STAGES)]

    @property
    def name(self) -> str:
        return ("skinny_gemm" + "".join(f"_{sfx}{v}" for _, sfx, v, d in self._extra() if v != d)
                + ("" if self.warps == WARPS else f"_w{self.warps}") + ("_dense" if self.dense_only else ""))

    @property
    def threads(self) -> int:
        return self.warps * 32

    def macros(self) -> list[tuple[str, str]]:
        return [("KVP_SK_WARPS", str(self.warps)), ("KVP_SK_MAX_SLOTS", str(MAX_SLOTS)),
                ("KVP_SK_ROW_TILES", str(ROW_TILES)), ("KVP_SK_ROW_TILES_FP4", str(ROW_TILES_FP4))] + [
                    (m, str(v)) for m, _, v, d in self._extra() if v != d] + (
                    [("KVP_SK_DENSE_ONLY", "1")] if self.dense_only else [])

    def unroll_for(self, weight_format: str) -> int:
        """Chunks per row per lane per step of ``weight_format``'s kernels (fp8 shares the 16-bit ones' KVP_SK_U)."""
        return self.unroll_fp4 if weight_format == "mxfp4" else self.unroll


# The variants benchmarks/skinny_gemm.py --sweep times against the default (plan keyword arguments); the compile
# test holds their batch <= 8 kernels to no spills on sm_90. u4 keeps 2 CTAs per SM (its 8-column kernel fits the
# 128-register cap); u8 needs 1 CTA per SM (~216 registers).
SWEEP = {
    "u2": {},
    "u2 fill": {"ksplit_rule": "fill"},
    "u2 pf1": {"prefetch": 1},
    "u2 pf2": {"prefetch": 2},
    "u4": {"unroll": 4},
    "u4 fill": {"unroll": 4, "ksplit_rule": "fill"},
    "u4 pf1": {"unroll": 4, "prefetch": 1},
    "u4 pf2": {"unroll": 4, "prefetch": 2},
    "u8 mb1": {"unroll": 8, "min_blocks": 1},
}


def skinny_configs(arch: str | None = None) -> list[SkinnyConfig]:
    """The instantiations to compile for ``arch`` (the same single one on every arch)."""
    return [SkinnyConfig()]


def row_ring_bytes(stages: int = ROW_STAGES) -> int:
    """Dynamic shared memory of the row-tile kernel: every warp's ring of ``stages`` steps."""
    return WARPS * stages * ROW_STEP_BYTES


def variant(weight_format: str, unroll=None, min_blocks=None, prefetch=None, expert_tiles=None,
            row_stages=None) -> SkinnyConfig:
    """The kernel config of a plan's tuning options (benchmarks and tests; None = the default); ``unroll``
    and ``min_blocks`` apply to ``weight_format``'s kernels (mxfp4's own fields, or the fields that the 16-bit and fp8
    kernels share). ValueError naming the option when it is not one the kernel takes."""
    for name, v, ok in (("unroll", unroll, UNROLLS), ("min_blocks", min_blocks, (1, 2, 3, 4)),
                        ("prefetch", prefetch, (0, 1, 2, 3, 4)), ("expert_tiles", expert_tiles, EXPERT_TILE_CHOICES),
                        ("row_stages", row_stages, ROW_STAGE_CHOICES)):
        if v is not None and (isinstance(v, bool) or v not in ok):
            raise ValueError(f"{name} must be one of {', '.join(map(str, ok))} or None, got {v!r}")
    fp4 = weight_format == "mxfp4"
    fields = {"prefetch": prefetch, "expert_tiles": expert_tiles, "row_stages": row_stages,
              "unroll_fp4" if fp4 else "unroll": unroll,
              "min_blocks_fp4" if fp4 else "min_blocks": min_blocks}
    return SkinnyConfig(**{k: v for k, v in fields.items() if v is not None})


def check_ksplit_rule(rule) -> str:
    if rule is None:
        return KSPLIT_RULES[0]
    if rule not in KSPLIT_RULES:
        raise ValueError(f"ksplit_rule must be one of {', '.join(KSPLIT_RULES)} or None, got {rule!r}")
    return rule


def kernel_name(dtype: str, weight_format: str, columns: int, by_expert: bool = False, rows: bool = False) -> str:
    """The kernel of a launch: 8 or 16 columns; ``by_expert``: MoE pairs sorted by expert, EXPERT_TILES x 8 a pass
    (warps split k), or with ``rows`` a row tile per warp over the whole k, row_pass(weight_format) pairs a pass."""
    kind = weight_format if weight_format in QUANTISED else ("bf16" if dtype == "bfloat16" else "f16")
    if by_expert:
        return f"kvp_skinny_{kind}_er" if rows else f"kvp_skinny_{kind}_e"
    return f"kvp_skinny_{kind}_c{8 if columns <= 8 else 16}"


def combine_name(dtype: str) -> str:
    return "kvp_skinny_combine_bf16" if dtype == "bfloat16" else "kvp_skinny_combine_f16"


def row_tiles(rows: int, gated: bool) -> int:
    """CTAs along the output rows: 32 rows each, or 16 gate/up row pairs each."""
    per = ROWS_PER_CTA // 2 if gated else ROWS_PER_CTA
    return -(-rows // per)


def k_steps(k: int, weight_format: str, columns: int, unroll: int | None = None) -> int:
    """Warp steps along k (a step: 4 lanes x chunk x ``unroll`` chunks per lane, default the kernel's default
    for the format: KVP_SK_U / KVP_SK_U_FP4; a chunk is 16 bytes: 8 16-bit, 32 mxfp4 or 16 fp8 values), as the
    kernel counts them."""
    chunk = CHUNK_VALUES.get(weight_format, 8)
    per_lane = unroll or UNROLL["mxfp4" if weight_format == "mxfp4" else "16bit"]
    step = 4 * chunk * per_lane
    return -(-k // step)


def pair_warps(k: int, weight_format: str, unroll: int | None = None) -> int:
    """Warps a CTA of the pair-slot kernels takes for reduction length ``k``: WARPS, or where k gives fewer steps
    than that (DeepSeek-V3's experts at tp 8: a down projection of k = 256 fp8 values is two steps) the largest
    power of two of them, so that no warp idles and more CTAs fit an SM (H200, session 41: with eight warps the
    down stage's 2,016 CTAs of two working warps each took ~3/4 of the experts' 50 us a layer at batch 1)."""
    steps = k_steps(k, weight_format, 8, unroll)
    if steps >= WARPS:
        return WARPS
    return 1 << (max(1, steps).bit_length() - 1)


def choose_ksplit(ctas: int, steps: int, slots: int, rule: str = "wave", warps: int = WARPS) -> int:
    """CTAs along k for ``ctas`` CTAs of output tiles on a GPU with ``slots`` resident CTAs.

    "wave" (the default): a wave streams at the full read bandwidth once it holds about half the resident CTAs
    (one per SM: ~32 KB in flight each); a wave with fewer runs as long as that many would. Splitting k costs an
    fp32 round trip of each tile's partials, so the smallest split whose time is within 15% of the ideal is
    taken (or the best). "fill" (a benchmark variant): the largest split that still fits one resident wave, so
    a grid of fewer than ``slots`` tiles keeps every resident slot busy and never starts a second wave. Either
    never leaves a warp of a CTA without a step of its own.
    """
    if ctas <= 0 or slots <= 0:
        return 1
    most = max(1, min(MAX_KSPLIT, steps // warps))
    if rule == "fill":
        return max([ks for ks in range(1, most + 1) if ctas * ks <= slots] or [1])
    saturating = max(1, slots // 2)
    best, best_eff = 1, -1.0
    for ks in range(1, most + 1):
        n = ctas * ks
        full, last = divmod(n, slots)
        eff = n / (full * slots + (max(last, saturating) if last else 0))
        if eff >= 0.85:
            return ks
        if eff > best_eff + 1e-9:
            best, best_eff = ks, eff
    return best


def check_dense(n: int, k: int, dtype: str, max_batch: int, weight_format: str | None = None) -> None:
    """ValueError naming the argument when the dense kernel cannot take this shape (``weight_format`` None: 16-bit
    weights of ``dtype``; "fp8": block-scaled e4m3 weights, bfloat16 x, k a multiple of FP8_BLOCK, any n)."""
    for name, v in (("n", n), ("k", k), ("max_batch", max_batch)):
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be bfloat16 or float16, got {dtype}")
    if weight_format not in (None, "bf16", "fp16", "fp8"):
        raise ValueError(f"weight_format of a dense plan must be bf16, fp16, fp8 or None, got {weight_format!r}")
    if weight_format == "fp8":
        if dtype != "bfloat16":
            raise ValueError(f"fp8 weights take bfloat16 activations, got {dtype}")
        if k % FP8_BLOCK:
            raise ValueError(f"k must be a multiple of {FP8_BLOCK} for fp8 weights (128 x 128 scale blocks), got {k}")
    elif weight_format is not None and {"bf16": "bfloat16", "fp16": "float16"}[weight_format] != dtype:
        raise ValueError(f"weight_format {weight_format} does not match dtype {dtype}")
    if k % 8:
        raise ValueError(f"k must be a multiple of 8 (16-byte weight rows), got {k}")
    if max_batch > MAX_COLUMNS:
        raise ValueError(f"max_batch must be at most {MAX_COLUMNS} (tokens per call), got {max_batch}")
    if n >= 2**31 // 16 or k >= 2**30:
        raise ValueError(f"n x k = {n} x {k} is too large for 32-bit row indices")


def check_moe(experts: int, hidden: int, intermediate: int, top_k: int, max_tokens: int, dtype: str,
              weight_format: str, activation: str, gated: bool = True) -> None:
    """ValueError naming the argument when the MoE pairs kernel cannot take this layer."""
    for name, v in (("experts", experts), ("hidden", hidden), ("intermediate", intermediate), ("top_k", top_k),
                    ("max_tokens", max_tokens)):
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be bfloat16 or float16, got {dtype}")
    if weight_format not in WEIGHT_FORMATS:
        raise ValueError(f"weight_format must be one of {', '.join(WEIGHT_FORMATS)}, got {weight_format!r}")
    if weight_format == "mxfp4":
        if dtype != "bfloat16":
            raise ValueError(f"mxfp4 experts take bfloat16 activations, got {dtype}")
        for name, v in (("hidden", hidden), ("intermediate", intermediate)):
            if v % MXFP4_GROUP:
                raise ValueError(f"{name} must be a multiple of {MXFP4_GROUP} for mxfp4 experts, got {v}")
    elif weight_format == "fp8":
        if dtype != "bfloat16":
            raise ValueError(f"fp8 experts take bfloat16 activations, got {dtype}")
        for name, v in (("hidden", hidden), ("intermediate", intermediate)):
            if v % FP8_BLOCK:
                raise ValueError(f"{name} must be a multiple of {FP8_BLOCK} for fp8 experts (128 x 128 scale blocks), "
                                 f"got {v}")
    elif {"bf16": "bfloat16", "fp16": "float16"}[weight_format] != dtype:
        raise ValueError(f"weight_format {weight_format} does not match dtype {dtype}")
    for name, v in (("hidden", hidden), ("intermediate", intermediate)):
        if v % 8:
            raise ValueError(f"{name} must be a multiple of 8 (16-byte weight rows), got {v}")
    allowed = ACTIVATIONS if gated else PLAIN_ACTIVATIONS
    if activation not in allowed:
        kind = "gated" if gated else "non-gated"
        raise ValueError(f"activation of {kind} experts must be one of {', '.join(allowed)}, got {activation!r}")
    if not gated and weight_format == "mxfp4":
        raise ValueError("non-gated experts must be 16-bit (mxfp4 experts are gated)")
    if top_k > experts:
        raise ValueError(f"top_k ({top_k}) exceeds experts ({experts})")
    if max_tokens > MAX_COLUMNS:
        raise ValueError(f"max_tokens must be at most {MAX_COLUMNS} (tokens routed to one expert in one CTA), "
                         f"got {max_tokens}")
    if max_tokens * top_k > MAX_SLOTS:
        raise ValueError(f"max_tokens x top_k = {max_tokens * top_k} pairs exceeds {MAX_SLOTS}")
