"""The streaming GEMV's pure parts (gemv_stream.cu; the plan is kvplan/kernels/gemv_stream.py): its instantiation,
its limits, each CTA's share of the weights and which CTAs meet in a tile. Nothing here imports torch or the
runtime, so configs.py, the CPU tests and the compile test read it directly.
"""

from __future__ import annotations

from dataclasses import dataclass

from .skinny_config import check_dense

MMA_WARPS = 4  # GV_WARPS: 16 rows of a 64-row tile each
THREADS = (MMA_WARPS + 1) * 32  # and a producer warp
STEP_K = 64  # k values per step (a 64-row tile x 64 k = 8 KB of 16-bit weights)
TILE_ROWS = 64
CELL_ROWS = 16  # the workspace's unit: one MMA warp's rows of a tile
MAX_BATCH = 8  # one 8-column MMA tile
TRACE_STAMPS = 8  # globaltimer readings per CTA of the trace form (GV_STAMPS in gemv_stream.cu)
DEPTH = 8  # stages of the CTA's ring (8 KB of weights + 1 KB of x each): 64 KB of weights in flight per SM
DEPTHS = (4, 5, 6, 8, 10, 12)
STAGE_BYTES = 9 * 1024
CTAS_PER_SM = 1  # shared memory for two: the other is the next launch's
# Tall shapes (n >= TALL * k: gate_up) take two CTAs per SM with rings of 6: H200, session 20, % of read
# bandwidth at batch 1-8, against one CTA with a ring of 8: 28672x4096 +1.2..+1.4 points, 34816x5120 +0.9..+1.6,
# 16384x2048 +11, LM heads (128256-262144 x 2048-5376) +0.3..+2.7; the others lose 2-4 (6144x4096, 3072x2048,
# 2048x8192) or are level (4096x14336, 5120x17408). verify's decode step: 14B / 1B -1.8 / -2.2% at batch 1, 8B
# level. (A chain of GEMVs alone mixing the two launches runs far slower: benchmarks/RESULTS.md session 20.)
TALL = 4
TALL_LAUNCH = (2, 6)
DTYPES = ("bfloat16", "float16")
E4M3 = "float8_e4m3fn"  # W8A8: e4m3 weights and x, streamed as 16-bit rows of k / 2 (gemv_stream.cu)
BLOCK_KERNEL = "kvp_gemv_stream_e4m3b"  # e4m3 with a scale per 128 x 128 block of W and per 128 values of x
L2_PROMOTIONS = {0: 0, 64: 1, 128: 2, 256: 3}  # bytes -> CUtensorMapL2promotion
# 128 (a box row's own line): H200, whole-model stream 1.5-2.4 points ahead of 256-byte promotion, which fetches the
# next step's half line early (benchmarks/RESULTS.md, session 17); none measured equal to 128
L2_PROMOTION = 128
ARCHS = ("sm_90",)  # TMA and programmatic dependent launch


@dataclass(frozen=True)
class GemvStreamConfig:
    """The GEMV's cubin: ``depth`` steps in the register ring (the default is the one CI compiles)."""

    depth: int = DEPTH
    mma_tiles: int = 1  # 16-row MMA tiles per warp: a step of 64 x mma_tiles rows (one TMA box)
    evict_first: bool = True  # the weights' copies L2 evict-first (False: the default policy, to compare)
    trace: bool = False  # per-CTA globaltimer readings into a trace buffer (benchmarks/gemv_trace.py)
    rotate: bool = False  # a CTA's range from its last tile, its first tile finished by it alone (gemv_stream.cu)
    own: bool = False  # a CTA owns whole 16-row slices: no tile cut between CTAs (KVP_GV_OWN)
    release_store: bool = True  # False: a stage released without waiting for its loads (gv_release; A/B only)
    gather: bool = False  # an MoE layer's experts at one token, a stage a launch (KVP_GV_GATHER)
    split3: bool = False  # rows owned: three slices as two then one (KVP_GV_SPLIT3; benchmarks/own_ring_probe.py)

    source = "gemv_stream.cu"
    compile_cost = 0.3

    @property
    def kernels(self) -> tuple:
        """The cubin's entries: bf16, f16, e4m3 (W8A8) and, but in the row-owned form, block-scaled e4m3."""
        return ("kvp_gemv_stream_bf16", "kvp_gemv_stream_f16", "kvp_gemv_stream_e4m3") + (
            () if self.own else (BLOCK_KERNEL,))

    @property
    def name(self) -> str:
        return ("gemv_stream" + ("" if self.depth == DEPTH else f"_d{self.depth}")
                + ("" if self.mma_tiles == 1 else f"_mt{self.mma_tiles}")
                + ("" if self.evict_first else "_noef") + ("_trace" if self.trace else "")
                + ("_rot" if self.rotate else "") + ("_own" if self.own else "")
                + ("" if self.release_store else "_nors") + ("_gather" if self.gather else "")
                + ("_s3" if self.split3 else ""))

    def macros(self) -> list[tuple[str, str]]:
        return (([] if self.depth == DEPTH else [("KVP_GV_DEPTH", str(self.depth))])
                + ([] if self.mma_tiles == 1 else [("KVP_GV_MT", str(self.mma_tiles))])
                + ([] if self.evict_first else [("KVP_GV_EVICT_FIRST", "0")])
                + ([("KVP_GV_TRACE", "1")] if self.trace else []) + ([("KVP_GV_ROTATE", "1")] if self.rotate else [])
                + ([("KVP_GV_OWN", "1")] if self.own else [])
                + ([] if self.release_store else [("KVP_GV_RELEASE_STORE", "0")])
                + ([("KVP_GV_GATHER", "1")] if self.gather else []) + ([("KVP_GV_SPLIT3", "1")] if self.split3 else []))

    @property
    def tile_rows(self) -> int:
        """Rows of a TMA box: a 64-row tile (x mma_tiles), or one 16-row slice in the row-owned form."""
        return CELL_ROWS if self.own else TILE_ROWS * self.mma_tiles


def check_shape(n: int, k: int, dtype: str, max_batch: int) -> None:
    """ValueError naming the argument when the GEMV cannot take this shape: the skinny GEMM's dense checks
    (skinny_config.check_dense), then this kernel's own limits."""
    check_dense(n, k, "bfloat16" if dtype == E4M3 else dtype, max_batch)
    step = 2 * STEP_K if dtype == E4M3 else STEP_K  # a step is 128 bytes of a row
    if k % step:
        raise ValueError(f"k must be a multiple of {step} for the streaming GEMV of {dtype}, got {k}")
    if max_batch > MAX_BATCH:
        raise ValueError(f"max_batch must be at most {MAX_BATCH} for the streaming GEMV, got {max_batch}")


GATHER_MODES = ("rows", "k")  # KVP_GV_GATHER: the gate/up stage (pairs' rows stacked), the down stage (their k)
GATHER_MAX_PAIRS = 32  # the pairs sit in the lanes of a warp (gemv_stream.cu gv_pairs)


def check_gather(gather, experts, pairs, n: int, max_batch: int, other_form: bool) -> None:
    """ValueError naming the argument when a gather plan (an MoE layer's experts at one token) cannot be made."""
    if gather is None:
        if experts or pairs:
            raise ValueError("experts and pairs are for gather plans (gather='rows' or 'k')")
        return
    if gather not in GATHER_MODES:
        raise ValueError(f"gather must be one of {GATHER_MODES} or None, got {gather!r}")
    for name, v in (("experts", experts), ("pairs", pairs)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int for a gather plan, got {v!r}")
    if pairs > GATHER_MAX_PAIRS:
        raise ValueError(f"pairs must be at most {GATHER_MAX_PAIRS} (one a lane of a warp), got {pairs}")
    if other_form:
        raise ValueError("gather plans run in order only (not rotate, own, trace or mma_tiles=2)")
    if max_batch != 1:
        raise ValueError(f"gather plans take one token (max_batch=1), got max_batch={max_batch}")
    if gather == "rows" and n % TILE_ROWS:
        raise ValueError(f"n must be a multiple of {TILE_ROWS} for gather='rows' (a tile lies in one expert), got {n}")


def smem_bytes(depth: int, mma_tiles: int = 1, own: bool = False) -> int:
    """Dynamic shared memory of a CTA: the ring (weights, x), its mbarriers, and 1 KB to align the swizzled stages;
    the row-owned form's stages hold x for four k steps, and two buffers of the warps' sums follow; then a word a
    thread."""
    sink = 4 * THREADS  # a word a thread that a stage's release stores first (gemv_stream.cu gv_release)
    if own:
        return depth * (8 * 1024 + 4 * 1024 + 16) + 1024 + 2 * MMA_WARPS * 128 * 4 + sink
    return depth * (8 * 1024 * mma_tiles + 1024 + 16) + 1024 + sink


def own_share(n: int, most_ctas: int) -> tuple[int, int]:
    """(CTAs, 16-row slices each) of the row-owned form: the fewest slices a CTA that lets at most ``most_ctas``
    CTAs hold all of them, and the fewest CTAs at that share, so that every CTA but the last has the same work."""
    slices = tiles(n, CELL_ROWS)
    each = -(-slices // most_ctas)
    return -(-slices // each), each


def tiles(n: int, rows: int = TILE_ROWS) -> int:
    return -(-n // rows)


def steps_per_cta(n: int, k: int, ctas: int, rows: int = TILE_ROWS) -> int:
    """Each CTA's contiguous share of the (row tile, k step) space: equal shares, the last one shorter."""
    return -(-(tiles(n, rows) * (k // STEP_K)) // ctas)


def launch_shape(n: int, k: int) -> tuple[int, int]:
    """(CTAs per SM, ring depth) for a weight [n, k] when the plan is not told."""
    return TALL_LAUNCH if n >= TALL * k else (CTAS_PER_SM, DEPTH)


# The row-owned form's launch: two CTAs per SM with rings of 6 when there are more 16-row slices than SMs (more CTAs
# stream at once), else one with a ring of 8 (the same CTAs, deeper rings). H200, session 22, % of read at batch 1,
# one CTA ring 8 / two CTAs ring 4: 8B o 71.6 / 73.3, gate_up 82.7 / 91.8, down 76.8 / 85.0; 1B qkv 43.5 / 50.2,
# gate_up 80.0 / 87.9; 14B o 52.5 / 69.3, down 53.9 / 73.9; with 128 slices on 132 SMs (1B o, down) 47.2 / 40.6 and
# 66.9 / 57.4. Two CTAs with rings of 4 / 5 / 6 (room beside them for two / one / no CTA of the next launch), a
# whole model's matmuls in a chain, b1: Llama-3.1-8B 79.8 / 68.7 / 90.8, 1B 63.9 / 67.5 / 72.7, Qwen3-14B 71.1 /
# 87.2 / 80.4 (benchmarks/RESULTS.md session 22).
OWN_LAUNCHES = ((2, 6), (1, 8))
# A grid of three CTAs an SM with rings of 5 (three fit an SM's shared memory): one 16-row slice a CTA where slices
# outnumber two CTAs an SM. verify times it as one more form (gpu/gemm.py THREE_OWN), so CI compiles it.
OWN_THREE_LAUNCH = (3, 5)


def own_launch(n: int, sm_count: int) -> tuple[int, int]:
    """(CTAs per SM, ring depth) of the row-owned form for a weight of ``n`` rows when the plan is not told."""
    return OWN_LAUNCHES[0] if tiles(n, CELL_ROWS) > sm_count else OWN_LAUNCHES[1]


def first_cta(tile: int, steps_per_tile: int, per_cta: int) -> int:
    """The first CTA whose share touches ``tile``: a shared tile's workspace cells are that CTA's (gv_slot)."""
    return tile * steps_per_tile // per_cta


def contributors(tile: int, steps_per_tile: int, per_cta: int) -> int:
    """How many CTAs' shares touch ``tile``: the count its cells' last arriving warps wait for (gv_contributors)."""
    first = tile * steps_per_tile // per_cta
    last = ((tile + 1) * steps_per_tile - 1) // per_cta
    return last - first + 1
