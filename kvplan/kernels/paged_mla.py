"""Absorbed-MLA paged decode (DeepSeek V2/V3/R1, Kimi K2): ``paged_mla_decode_plan(...)`` then ``plan.run(...)``.

After weight absorption MLA decode is MQA over one latent row per token (kv_lora_rank "nope" dims, which
are also the values, + rope dims). fp8 e4m3 latents carry one scale per tensor (``kv_scale``: the cache
holds x / kv_scale). Kernels: paged_mla_wg.cu (warpgroup MMAs; the default on sm_90) and paged_mla_decode.cu (heads
in M for 16 heads, head tiles; mma.sync: older GPUs, and sm_90 with their tuning options); ``mla_launch`` says
which a plan takes.
"""

from __future__ import annotations

import ctypes
import math
import threading
from dataclasses import dataclass
from typing import Optional

from . import _runtime as rt
from . import configs, limits
from ._checks import dtype_name, positive_float
from ._checks import positive_int, torch_dtype_arg
from .decode_launch import choose_splits
from .paged_decode import LOG2E, _int32

_MAIN_ARGS = ("u64",) * 8 + ("i32",) * 5 + ("f32", "f32")
# argument slots of the two decode kernels (paged_mla_decode.cu, paged_mla_wg.cu); the pointers come first in both
_SLOTS = {False: dict(qn=0, qr=1, lat=2, bt=3, lens=4, out=5, opart=6, lse=7, heads=8, stages=9, chunk=10,
                      bt_stride=11, log2bs=12, cbase=13, vscale=14, tmap=15),
          True: dict(qn=0, qr=1, bt=2, lens=3, out=4, opart=5, lse=6, heads=7, chunk=8, bt_stride=9, log2bs=10,
                     cbase=11, vscale=12, tmap=13)}
_WG_ARGS = ("u64",) * 7 + ("i32",) * 4 + ("f32", "f32", "tmap")
_MERGE_ARGS = ("u64", "u64", "u64", "i32", "i32")


class PagedMLADecodePlan:
    """A validated, planned absorbed-MLA decode for one layer shape on one device.

    ``run`` checks shapes/dtypes against the plan only; ``seq_lens`` must fit ``max_blocks_per_seq *
    block_size`` tokens and the block ids be valid (the caller's promise). Owns its split workspace: one
    stream at a time; capturable in a CUDA graph.
    """

    def __init__(self, q_heads, kv_lora_rank, rope_dim, block_size, kv_dtype, max_batch, max_blocks_per_seq, device,
                 stages=None, num_splits=None, bulk=None, launcher="driver", tokens=None, heads_in_m=None,
                 lazy_rescale=None, tma=None, wgmma=None, head_group=None, e4m3_mma=None, early_free=None,
                 few_merge=True, wg_stages=None):
        import torch

        rt.require_kernel("the CUDA MLA decode kernel")
        self.q_heads = positive_int("q_heads", q_heads)
        if self.q_heads > limits.MLA_MAX_HEADS:
            raise ValueError(f"q_heads {self.q_heads} exceeds {limits.MLA_MAX_HEADS}")
        if kv_lora_rank != limits.MLA_KV_LORA_RANK:
            raise ValueError(f"kv_lora_rank must be {limits.MLA_KV_LORA_RANK}, got {kv_lora_rank!r}")
        if rope_dim != limits.MLA_ROPE_DIM:
            raise ValueError(f"rope_dim must be {limits.MLA_ROPE_DIM}, got {rope_dim!r}")
        self.block_size = positive_int("block_size", block_size)
        if self.block_size not in limits.MLA_BLOCK_SIZES:
            raise ValueError(f"block_size {self.block_size} is not supported (supported: {limits.MLA_BLOCK_SIZES})")
        self.max_batch = positive_int("max_batch", max_batch)
        self.max_blocks_per_seq = positive_int("max_blocks_per_seq", max_blocks_per_seq)
        if self.max_batch > limits.MAX_GRID_YZ:
            raise ValueError(f"max_batch must be <= {limits.MAX_GRID_YZ}")
        if self.max_blocks_per_seq * self.block_size >= 2**31 - 2**20:
            raise ValueError("max_blocks_per_seq x block_size addresses more than 2^31 token slots")
        self.kv_dtype = torch_dtype_arg(torch, "kv_dtype", kv_dtype, (torch.bfloat16, torch.float8_e4m3fn))
        self.q_dtype = torch.bfloat16
        if num_splits is not None:
            num_splits = positive_int("num_splits", num_splits)
        if launcher not in ("driver", "cuda.core"):
            raise ValueError(f"launcher must be 'driver' or 'cuda.core', got {launcher!r}")
        self.device_index = rt.device_index(device)
        self.device = torch.device("cuda", self.device_index)
        dev = rt.device_info(self.device_index)
        kvn = dtype_name(self.kv_dtype)
        ln = mla_launch(kvn, self.q_heads, dev.arch, dev.smem_optin, launcher, stages=stages, tokens=tokens, bulk=bulk,
                        heads_in_m=heads_in_m, lazy_rescale=lazy_rescale, tma=tma, wgmma=wgmma, head_group=head_group,
                        e4m3_mma=e4m3_mma, early_free=early_free, block_size=self.block_size, wg_stages=wg_stages)
        self.wgmma, self.heads_in_m, self.tma, self.config = ln.wgmma, ln.heads_in_m, ln.tma, ln.config
        self.head_group, self.stages, self.smem = ln.head_group, ln.stages, ln.smem
        self._tmaps: dict = {}  # (latent pointer, blocks) -> encoded tensor map
        ld = rt.load(self.config, dev)
        self.head_groups = -(-self.q_heads // self.head_group)
        self.span = self.max_blocks_per_seq * self.block_size
        self._kernel, self._threads = ("kvp_mla_wg", self.config.threads) if self.wgmma else \
            ("kvp_mla_decode", limits.MLA_WARPS * 32)
        slots = dev.sm_count * rt.occupancy(ld, self._kernel, dev, self._threads, self.smem)
        self._slots, self._num_splits, self._ld, self._launcher = slots, num_splits, ld, launcher
        self._slot = _SLOTS[self.wgmma]
        self._tok = ln.step_tokens
        self._entries: dict[int, tuple] = {}
        self._few_merge = bool(few_merge)  # kvp_mla_merge_few up to limits.MERGE_FEW_SPLITS splits
        self._lock = threading.Lock()
        self._scales = (object(), None)  # nothing matches: the first run sets the scales
        self._cbase, self._vscale = 0.0, 1.0
        need = max(self._splits(b)[0] * b for b in range(1, min(self.max_batch, 512) + 1))
        need = max(need, self._splits(self.max_batch)[0] * self.max_batch)
        with torch.cuda.device(self.device_index):
            self._workspace = torch.empty(max(need * self.q_heads * (limits.MLA_KV_LORA_RANK + 1), 1),
                                          dtype=torch.float32, device=self.device)

    @property
    def path(self) -> str:
        """Which kernel the plan runs, in words (verify's report names it)."""
        if self.wgmma:
            e4m3 = ", e4m3 MMAs" if self.config.e4m3_mma else ""
            groups = self.config.early_free
            three = self.config.stages == 3
            early = f", value blocks refilled after {groups} PV groups" if groups and three else \
                f", blocks refilled after QK and {groups} PV groups" if groups else ""
            stages = ", three value stages (P in the rope block)" if three else ""
            return f"warpgroup MMAs{e4m3}, {self.head_group} heads a CTA{stages}{early} (paged_mla_wg.cu)"
        return "16 heads as the MMAs' M (paged_mla_hm.cuh)" if self.heads_in_m else \
            f"head tiles of {self.head_group} heads (paged_mla_decode.cu)"

    def _splits(self, batch: int) -> tuple[int, int]:
        return mla_splits(batch * self.head_groups, self.span, self._slots, self._tok, self._num_splits)

    def splits_for(self, batch: int) -> int:
        return self._splits(batch)[0]

    def sorted_block_table(self, block_table, seq_lens, out=None):
        """``block_table`` with each sequence's full pages sorted by address inside each CTA's share of it
        (page_order.py); sort once a decode step and pass the result to every layer's ``run``."""
        from .page_order import sort_full_pages

        batch = getattr(block_table, "shape", (0,))[0]
        chunk = self._splits(batch)[1] if batch else self.block_size  # (an empty batch: nothing to sort)
        return sort_full_pages(block_table, seq_lens, self.block_size, max(1, chunk // self.block_size), out)

    def _entry(self, batch: int):
        e = self._entries.get(batch)
        if e is None:
            splits, chunk = self._splits(batch)
            types = _WG_ARGS if self.wgmma else _MAIN_ARGS + (("tmap",) if self.tma else ())
            main = rt.PreparedLaunch(self._ld, self._kernel, types, self._threads, self.smem, None, self._launcher)
            few = self._few_merge and splits <= limits.MERGE_FEW_SPLITS
            merge = rt.PreparedLaunch(self._ld, "kvp_mla_merge_few" if few else "kvp_mla_merge", _MERGE_ARGS, 256, 0,
                                      None, self._launcher)
            merge.rows_per_cta = 256 // (limits.MLA_KV_LORA_RANK // 4) if few else 1
            a, ix = main.args, self._slot
            a[ix["heads"]].value, a[ix["chunk"]].value = self.q_heads, chunk
            a[ix["log2bs"]].value = int(math.log2(self.block_size))
            if "stages" in ix:
                a[ix["stages"]].value = self.stages
            e = (splits, main, merge, (splits, self.head_groups, batch))
            if len(self._entries) > 512:
                self._entries.clear()
            self._entries[batch] = e
        return e

    def run(self, q_nope, q_rope, latent_cache, block_table, seq_lens, scale=None, out=None, kv_scale=1.0):
        """out [B, Hq, 512] bf16 = softmax(scale * (q_nope . c[:, :512] + q_rope . c[:, 512:])) . c[:, :512].

        q_nope [B, Hq, 512] bf16 (absorbed), q_rope [B, Hq, 64] bf16, latent_cache [num_blocks, block_size,
        576] bf16 | float8_e4m3fn, block_table [B, >= blocks used] int32, seq_lens [B] int32.
        ``scale`` defaults to 1/sqrt(576) (DeepSeek passes its own: 1/sqrt(192) x mscale^2).
        """
        import torch

        B = self._check_run(q_nope, q_rope, latent_cache, block_table, seq_lens)
        if out is None:
            out = q_nope.new_empty(q_nope.shape)
        elif out.shape != q_nope.shape or out.dtype != self.q_dtype or out.get_device() != self.device_index \
                or not out.is_contiguous():
            raise ValueError("out must be a contiguous bf16 tensor with q_nope's shape on the plan's device")
        if B == 0:
            return out
        with self._lock:
            if (scale, kv_scale) != self._scales:
                sc = 1.0 / math.sqrt(limits.MLA_ROW) if scale is None else positive_float("scale", scale)
                ks = positive_float("kv_scale", kv_scale)
                self._cbase, self._vscale, self._scales = sc * ks * LOG2E, ks, (scale, kv_scale)
            splits, main, merge, grid = self._entry(B)
            a, ix = main.args, self._slot
            if (q_nope.data_ptr() | q_rope.data_ptr() | latent_cache.data_ptr()) & 15:
                raise ValueError("q_nope, q_rope and latent_cache data pointers must be 16-byte aligned")
            a[ix["qn"]].value, a[ix["qr"]].value = q_nope.data_ptr(), q_rope.data_ptr()
            a[ix["bt"]].value, a[ix["lens"]].value = block_table.data_ptr(), seq_lens.data_ptr()
            a[ix["out"]].value, a[ix["bt_stride"]].value = out.data_ptr(), block_table.shape[1]
            a[ix["cbase"]].value, a[ix["vscale"]].value = self._cbase, self._vscale
            if "lat" in ix:
                a[ix["lat"]].value = latent_cache.data_ptr()
            if self.tma:
                self._set_tensor_map(main, latent_cache)
            if splits > 1:
                n = B * self.q_heads * splits
                op = self._workspace.data_ptr()
                a[ix["opart"]].value, a[ix["lse"]].value = op, op + 4 * n * limits.MLA_KV_LORA_RANK
            else:
                a[ix["opart"]].value = a[ix["lse"]].value = 0
            if torch.cuda.current_device() != self.device_index:
                with torch.cuda.device(self.device_index):
                    self._go(torch, main, merge, grid, splits, B, out)
            else:
                self._go(torch, main, merge, grid, splits, B, out)
        return out

    def _set_tensor_map(self, main, latent_cache) -> None:
        """The latent cache for the TMA paths: heads in M as [tokens][9 blocks][64 dims], boxes of min(block size,
        32) rows; wgmma as [9 blocks][tokens][64 dims], boxes of 64 rows x 9 blocks (pages of 64+ tokens) or of
        min(block size, 64) rows x 1 block (paged_mla_wg.cu)."""
        key = (latent_cache.data_ptr(), latent_cache.shape[0])
        if getattr(main, "tmap_key", None) == key:
            return
        tm = self._tmaps.get(key)
        if tm is None:
            row, blk = limits.MLA_ROW * 2, 128
            tokens = key[1] * self.block_size
            if self.wgmma:  # [9 blocks][tokens][64 dims]: a box lands as the kernel's [block][row][64 dims]
                es = latent_cache.element_size()
                tbox = min(self.block_size, limits.MLA_WG_TOKENS)
                swizzle = 128 if es == 2 else 64 if self.config.e4m3_mma else 0  # the MMAs' operand layouts
                whole = tbox == limits.MLA_WG_TOKENS and not self.config.early_free and self.config.stages == 2
                # (a step in one box; else one box per 64-dim block)
                tm = rt.encode_tensor_map(key[0], (64, tokens, 9), (limits.MLA_ROW * es, 64 * es),
                                          (64, tbox, 9 if whole else 1),
                                          swizzle=swizzle, elem_bytes=es)
            else:
                tm = rt.encode_tensor_map(key[0], (64, row // blk, tokens), (blk, row),
                                          (64, row // blk, min(self.block_size, limits.MLA_HM_TOKENS)))
            if len(self._tmaps) > 16:
                self._tmaps.clear()
            self._tmaps[key] = tm
        ctypes.memmove(ctypes.addressof(main.args[self._slot["tmap"]]), tm, len(tm))
        main.tmap_key = key

    def _go(self, torch, main, merge, grid, splits, B, out) -> None:
        stream = rt.current_stream_handle(torch, self.device_index)
        main.launch(grid, stream)
        if splits > 1:
            rows = B * self.q_heads
            m = merge.args
            m[0].value, m[1].value = main.args[self._slot["opart"]].value, main.args[self._slot["lse"]].value
            m[2].value = out.data_ptr()
            m[3].value, m[4].value = rows, splits
            merge.launch((-(-rows // merge.rows_per_cta), 1, 1), stream)

    def _check_run(self, q_nope, q_rope, latent_cache, block_table, seq_lens) -> int:
        R, P = limits.MLA_KV_LORA_RANK, limits.MLA_ROPE_DIM
        try:
            B = q_nope.shape[0]
            ok = q_nope.shape[1:] == (self.q_heads, R) and q_nope.dtype == self.q_dtype and q_nope.dim() == 3
        except (AttributeError, IndexError):
            raise ValueError("q_nope must be a [B, q_heads, 512] bf16 tensor") from None
        if not ok or B > self.max_batch:
            raise ValueError(f"q_nope must be [B <= {self.max_batch}, {self.q_heads}, {R}] bfloat16, got "
                             f"{tuple(q_nope.shape)} {dtype_name(q_nope.dtype)}")
        if q_rope.shape != (B, self.q_heads, P) or q_rope.dtype != self.q_dtype:
            raise ValueError(f"q_rope must be [{B}, {self.q_heads}, {P}] bfloat16, got {tuple(q_rope.shape)} "
                             f"{dtype_name(q_rope.dtype)}")
        if latent_cache.dim() != 3 or latent_cache.shape[1:] != (self.block_size, R + P) \
                or latent_cache.dtype != self.kv_dtype:
            raise ValueError(f"latent_cache must be [num_blocks, {self.block_size}, {R + P}] "
                             f"{dtype_name(self.kv_dtype)}, got {tuple(latent_cache.shape)} "
                             f"{dtype_name(latent_cache.dtype)}")
        if block_table.dim() != 2 or block_table.shape[0] != B or block_table.dtype != _int32():
            raise ValueError(f"block_table must be [{B}, max_blocks] int32, got {tuple(block_table.shape)} "
                             f"{dtype_name(block_table.dtype)}")
        if seq_lens.shape != (B,) or seq_lens.dtype != _int32():
            raise ValueError(f"seq_lens must be [{B}] int32, got {tuple(seq_lens.shape)} {dtype_name(seq_lens.dtype)}")
        for name, t in (("q_nope", q_nope), ("q_rope", q_rope), ("latent_cache", latent_cache),
                        ("block_table", block_table), ("seq_lens", seq_lens)):
            if t.get_device() != self.device_index:
                raise ValueError(f"{name} is on {t.device}, the plan on {self.device}")
            if not t.is_contiguous():
                raise ValueError(f"{name} must be contiguous (got strides {tuple(t.stride())})")
        return B


@dataclass(frozen=True)
class MLALaunch:
    """Which MLA kernel a plan runs and its fixed shape (everything but the splits, which follow the batch)."""

    wgmma: bool  # paged_mla_wg.cu; else paged_mla_decode.cu
    heads_in_m: bool
    tma: bool
    config: object  # configs.MLAWgConfig | configs.MLAConfig
    head_group: int
    stages: Optional[int]  # None: the warpgroup-MMA path's own (2 bf16, 3 raw fp8)
    smem: int
    step_tokens: int


def mla_launch(kvn: str, q_heads: int, arch: str, smem_optin: int, launcher: str = "driver", *, stages=None,
               tokens=None, bulk=None, heads_in_m=None, lazy_rescale=None, tma=None, wgmma=None,
               head_group=None, e4m3_mma=None, early_free=None, block_size=limits.MLA_WG_TOKENS,
               wg_stages=None) -> MLALaunch:
    """The launch a plan of ``q_heads`` heads over ``kvn`` latents takes on ``arch`` (pure: no GPU needed).

    The warpgroup-MMA path (paged_mla_wg.cu) needs sm_90 and the driver launcher (its tensor map is a 128-byte
    parameter) and takes none of the other paths' tuning options; None: where configs.mla_wgmma_default says (for
    latent pages of ``block_size`` tokens) and no such option is given; ``head_group`` (its heads a CTA, 16 or 32)
    defaults to configs.mla_wgmma_heads;
    ``e4m3_mma`` (fp8 latents, 16 heads a CTA: e4m3 wgmmas instead of widening to fp16) defaults to
    configs.mla_e4m3_mma_default; ``wg_stages`` (None: 2) = 3 takes the three-stage form (bf16 latents, 16 heads a
    CTA, pages of 64+ tokens; its early refill defaults to none). Otherwise heads in M (paged_mla_hm.cuh) where it can
    run, else the head tiles."""
    given = [name for name, value in dict(stages=stages, tokens=tokens, bulk=bulk, heads_in_m=heads_in_m,
                                          lazy_rescale=lazy_rescale, tma=tma).items() if value is not None]
    wg_runs = arch in configs.WGMMA_ARCHS and launcher == "driver"
    if wgmma is None:
        wg = wg_runs and not given and configs.mla_wgmma_default(kvn, q_heads, block_size)
    elif wgmma:
        if not wg_runs:
            raise ValueError("wgmma needs an sm_90 GPU and the driver launcher")
        if given:
            raise ValueError(f"wgmma has a fixed launch; drop {', '.join(given)}")
        wg = True
    else:
        wg = False
    if wg:
        hg = configs.mla_wgmma_heads(q_heads, kvn) if head_group is None else head_group
        if isinstance(hg, bool) or hg not in limits.MLA_WG_HEAD_GROUPS:
            raise ValueError(f"head_group must be one of {limits.MLA_WG_HEAD_GROUPS} or None, got {head_group!r}")
        can = kvn == "float8_e4m3fn" and hg == 16
        f8 = can and configs.mla_e4m3_mma_default() if e4m3_mma is None else bool(e4m3_mma)
        if f8 and not can:
            raise ValueError("e4m3_mma needs fp8 e4m3 latents and 16 heads a CTA (head_group=16)")
        ws = 2 if wg_stages is None else wg_stages
        if isinstance(ws, bool) or ws not in limits.MLA_WG_STAGES:
            raise ValueError(f"wg_stages must be one of {limits.MLA_WG_STAGES} or None, got {wg_stages!r}")
        if ws == 3 and (kvn != "bfloat16" or hg != 16 or block_size < limits.MLA_WG_TOKENS):
            raise ValueError(f"wg_stages=3 needs bf16 latents, 16 heads a CTA (head_group=16) and pages of "
                             f"{limits.MLA_WG_TOKENS}+ tokens (got {kvn}, {hg} heads a CTA, {block_size}-token pages)")
        early = configs.mla_early_free_default(kvn, hg, ws) if early_free is None else early_free
        config = configs.MLAWgConfig(kvn, hg, f8, early, ws)
        if config.smem > smem_optin:
            raise ValueError(f"wg_stages={ws} needs {config.smem} bytes of shared memory, the device has {smem_optin}")
        return MLALaunch(True, False, True, config, hg, None, config.smem, limits.MLA_WG_TOKENS)
    if head_group is not None or e4m3_mma is not None or early_free is not None or wg_stages is not None:
        raise ValueError("head_group, e4m3_mma, early_free and wg_stages are options of the wgmma path (wgmma=True)")
    head_group = configs.mla_head_group(q_heads)
    if tokens is not None and (isinstance(tokens, bool) or tokens not in limits.MLA_STEP_TOKENS):
        raise ValueError(f"tokens must be one of {', '.join(map(str, limits.MLA_STEP_TOKENS))} or None, "
                         f"got {tokens!r}")
    tokens = tokens if tokens != limits.mla_step_tokens(kvn) else None  # the default's own cubin
    bulk_ok = int((True if bulk is None else bool(bulk)) and arch in configs.BULK_ARCHS)
    if heads_in_m is None:
        hm = tokens is None and configs.mla_heads_in_m_default(kvn, head_group, bulk_ok)
    else:
        hm = bool(heads_in_m)
        if hm and not configs.mla_heads_in_m_eligible(kvn, head_group, bulk_ok, tokens or 0):
            raise ValueError(f"heads_in_m needs bf16 latents, at most {limits.MLA_HM_HEADS} q_heads, "
                             f"{limits.MLA_HM_TOKENS}-token steps and bulk copies (sm_90)")
    # the lazy rescale measured within 1% from DRAM (2% less from L2; H200, session 12): opt-in
    lazy = False if lazy_rescale is None else bool(lazy_rescale)
    # TMA by default on the heads-in-M path (H200, session 12: 16 heads B32 8K 87.3 -> 83.8 us, B128 4K 161.2 ->
    # 155.3); the cuda.core launcher cannot pass its 128-byte tensor map, so it keeps the row copies
    tma = hm and launcher == "driver" if tma is None else bool(tma)
    if (lazy or tma) and not hm:
        raise ValueError("lazy_rescale and tma need the heads-in-M path (heads_in_m)")
    if tma and launcher != "driver":
        raise ValueError("tma needs the driver launcher (its tensor map is a 128-byte kernel parameter)")
    config = configs.MLAConfig(kvn, head_group, bulk_ok, tokens or 0, heads_in_m=int(hm), lazy_rescale=int(lazy),
                               tma=int(tma))
    if stages is None:
        # 2 stages: 16-head CTAs then fit twice per SM and hide each other's barriers (H200 sweep, v10:
        # 16 heads B32 8K 194 -> 122 us); 64-head CTAs run one per SM either way (2 and 3 stages equal)
        stages = 2
    elif not isinstance(stages, int) or not 2 <= stages <= limits.MAX_STAGES:
        raise ValueError(f"stages must be an int in 2..{limits.MAX_STAGES}, got {stages!r}")
    smem = limits.mla_smem_bytes(head_group, kvn, stages, tokens, hm, tma)
    if smem > smem_optin:
        raise ValueError(f"stages={stages} needs {smem} bytes of shared memory, the device has {smem_optin}")
    step = limits.MLA_HM_TOKENS if hm else limits.mla_step_tokens(kvn, tokens)
    return MLALaunch(False, hm, tma, config, head_group, stages, smem, step)


def mla_splits(pairs: int, span: int, slots: int, step_tokens: int, num_splits=None) -> tuple[int, int]:
    """(splits, chunk) of ``pairs`` (sequence, head group) over ``span`` tokens on ``slots`` resident CTAs: a wave
    of CTAs with chunks of at least limits.MLA_MIN_SPLIT_TOKENS, or ``num_splits``; chunks are whole pipeline
    steps of ``step_tokens``, so the splits that remain may be fewer."""
    splits = num_splits or choose_splits(pairs, span, slots, limits.MLA_MIN_SPLIT_TOKENS)
    chunk = -(-max(span, 1) // splits)
    chunk = -(-chunk // step_tokens) * step_tokens
    return max(1, -(-max(span, 1) // chunk)), chunk


def paged_mla_decode_plan(q_heads, kv_lora_rank=limits.MLA_KV_LORA_RANK, rope_dim=limits.MLA_ROPE_DIM, block_size=64,
                          kv_dtype=None, max_batch=1, max_blocks_per_seq=1, device=None, *, stages=None,
                          num_splits=None, bulk=None, launcher="driver", tokens=None,
                          heads_in_m=None, lazy_rescale=None, tma=None, wgmma=None,
                          head_group=None, e4m3_mma=None, early_free=None, few_merge=True,
                          wg_stages=None) -> PagedMLADecodePlan:
    """Validate an MLA layer shape (q heads per rank 1..128, rank 512 + rope 64, block size 16..128, bf16 or
    fp8 e4m3 latents) and plan its launch; ``plan.run(q_nope, q_rope, latent_cache, block_table, seq_lens)``.

    Tuning (benchmarks, tests): ``stages`` (pipeline depth), ``tokens`` (latent rows per stage: 16, 32, 64),
    ``num_splits``, ``bulk`` (False: the cp.async path that older GPUs use), ``launcher`` ("driver" | "cuda.core"),
    ``heads_in_m`` (None: where it can run, i.e. bf16 latents, <= 16 heads, bulk copies; False: the head-tile path),
    ``lazy_rescale`` (heads in M: a running max moves only by more than 8, see paged_mla_hm.cuh),
    ``tma`` (heads in M; None: with the driver launcher; False: one bulk copy per row instead of tensor copies),
    ``wgmma`` (paged_mla_wg.cu, Hopper's warpgroup MMAs with the step's 64 tokens as M; sm_90, driver launcher, any
    head count in groups of ``head_group`` = 16 or 32 heads a CTA; none of the options above but ``num_splits``.
    None: where configs.mla_wgmma_default says and no option above is given); ``e4m3_mma`` (wgmma, fp8 latents,
    16 heads a CTA: e4m3 MMAs with q and P split in two e4m3 parts, instead of widening the latents to fp16);
    ``early_free`` (wgmma, bf16 latents: PV in 2 or 4 commit groups, each group's latent blocks refilled with the
    step after next as soon as its MMAs complete, the rope block once QK has; one tensor copy per block; 0 none;
    None: configs.mla_early_free_default, 2 at 16 heads a CTA); ``few_merge`` (False: the one-row-a-CTA merge at
    every split count, for benchmarks' A/B; by default up to limits.MERGE_FEW_SPLITS splits two rows a CTA);
    ``wg_stages`` (wgmma, bf16 latents at 16 heads a CTA on pages of 64+ tokens: 3 puts a third stage of the 8 value
    blocks in flight, the rope blocks in two slots of their own with P written over the step's; all of an sm_90 CTA's
    232,448 bytes; not measured, opt-in; None: 2, whole 72 KB stages).
    """
    import torch

    kv_dtype = torch.bfloat16 if kv_dtype is None else kv_dtype
    return PagedMLADecodePlan(q_heads, kv_lora_rank, rope_dim, block_size, kv_dtype, max_batch, max_blocks_per_seq,
                              device, stages, num_splits, bulk, launcher, tokens, heads_in_m, lazy_rescale, tma,
                              wgmma, head_group, e4m3_mma, early_free, few_merge, wg_stages)
