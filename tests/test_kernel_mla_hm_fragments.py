"""CPU emulation of the heads-in-M MLA path's fragment mappings (paged_mla_hm.cuh; no GPU, no compiler).

Lane by lane, as the kernel does it: q's A fragments staged in fragment order, K's B fragments from one 16-byte
load of a token row (dims permuted within a k-step, q permuted alike), the two k-halves' partial scores summed by
every warp, the running softmax over steps with P's A fragments taken from the S C fragments, and V's B fragments
through an emulated ``ldmatrix.trans`` over latent rows at limits.mla_row_offset(hm=True). Checks the result
against attention computed directly, and every shared-memory read for bank conflicts.
"""

import numpy as np
import pytest
from test_kernel_mla_fragments import conflicts, mma

from kvplan.kernels import limits

RANK, ROW, NW = limits.MLA_KV_LORA_RANK, limits.MLA_ROW, limits.MLA_WARPS
HG, TOK = limits.MLA_HM_HEADS, limits.MLA_HM_TOKENS


def chunk(ip, j, tma):
    """hm_chunk: the 16-byte chunk (8 dims) of a latent row that K-load iteration ip (0..17) gives lane j."""
    return 8 * (ip >> 1) + 2 * j + (ip & 1) if tma else 4 * ip + j


def swizzled(seg, c):
    """Byte offset of 16-byte chunk c of 128-byte segment seg under the tensor copy's 128-byte swizzle."""
    return 128 * seg + 16 * (c ^ (seg & 7))


def stage_q(q, tma=False):
    """hm_stage_q: entry (k-step p, lane) = 4 pairs {q[r] dims 0-1, q[r+8] dims 0-1, q[r] 2-3, q[r+8] 2-3} of the
    4 dims 8 chunk(p >> 1, j) + 4 (p & 1)."""
    qf = {}
    for p in range(ROW // 16):
        for lane in range(32):
            r, j = lane >> 2, lane & 3
            d = 8 * chunk(p >> 1, j, tma) + 4 * (p & 1)
            qf[(p, lane)] = [q[r, d:d + 2], q[r + 8, d:d + 2], q[r, d + 2:d + 4], q[r + 8, d + 2:d + 4]]
    return qf


def ldmatrix_trans(tile, addrs):
    """ldmatrix.x4.trans: lane L gives the byte address of one 8-element row of matrix L >> 3; lane (r, j) gets
    matrix m's elements (rows 2j, 2j + 1; column r) as its m-th register."""
    rows = [tile[a // 2:a // 2 + 8] for a in addrs]
    out = []
    for lane in range(32):
        r, j = lane >> 2, lane & 3
        out.append([np.array([rows[8 * m + 2 * j][r], rows[8 * m + 2 * j + 1][r]]) for m in range(4)])
    return out


def k_address(warp, lane, i, tma):
    """Byte offset in a stage of K-load iteration i of (warp, lane): hm_step's krow + 64 i, or with TMA its row
    base + hm_swizzle_offsets' koff[i]."""
    nt, kh, r, j = warp & 3, warp >> 2, lane >> 2, lane & 3
    t, ip = 8 * nt + r, 9 * kh + i
    if tma:
        return swizzled(9 * t + (ip >> 1), chunk(ip, j, True) & 7)
    return limits.mla_row_offset(t, "bfloat16", hm=True) + 16 * chunk(ip, j, False)


def v_address(warp, lane, kt, u, tma):
    """Byte offset of the row ldmatrix lane `lane` addresses for k-step kt and dim pair u (hm_step's vbase + ...)."""
    m = lane >> 3
    t, c = 16 * kt + 8 * (m & 1) + (lane & 7), 2 * u + (m >> 1)  # row, chunk of the warp's 64 dims
    if tma:
        return swizzled(9 * t + warp, c)
    return limits.mla_row_offset(t, "bfloat16", hm=True) + 2 * (64 * warp + 8 * c)


def emulate(q, lat_steps, nvals, cbase=1.0, lazy=False, tma=False):
    """The kernel's steps over ``lat_steps`` ([TOK, ROW] each, rows >= nval unused) -> O [HG, RANK] normalised
    (``lazy``: KVP_MLA_LAZY, maxima move only by more than 8; ``tma``: KVP_MLA_TMA's swizzled stage)."""
    stage_bytes = limits.mla_stage_bytes("bfloat16", hm=True, tma=tma)
    qf = stage_q(q, tma)
    o = {w: [[np.zeros(4) for _ in range(32)] for _ in range(8)] for w in range(NW)}
    m = {w: np.full((32, 2), -np.inf) for w in range(NW)}
    lsum = {w: np.zeros((32, 2)) for w in range(NW)}
    for lat, nval in zip(lat_steps, nvals):
        tile = np.full(stage_bytes // 2, np.nan)  # never-copied rows and padding: NaN
        for t in range(nval):
            if tma:  # every 16-byte chunk at its swizzled place
                for c in range(ROW // 8):
                    a = swizzled(9 * t + c // 8, c % 8) // 2
                    tile[a:a + 8] = lat[t, 8 * c:8 * c + 8]
            else:
                a = limits.mla_row_offset(t, "bfloat16", hm=True) // 2
                tile[a:a + ROW] = lat[t]
        # ---- QK partials, warp (nt, kh)
        part = {}
        for warp in range(NW):
            nt, kh = warp & 3, warp >> 2
            sa, sb = [np.zeros(4) for _ in range(32)], [np.zeros(4) for _ in range(32)]
            for i in range(9):
                ka, kb, qa, qb, addr = [], [], [], [], []
                for lane in range(32):
                    r, j = lane >> 2, lane & 3
                    a = k_address(warp, lane, i, tma)
                    addr.append(a)
                    kv = tile[a // 2:a // 2 + 8]
                    ka.append([kv[0:2], kv[2:4]])
                    kb.append([kv[4:6], kv[6:8]])
                    qa.append(qf[(18 * kh + 2 * i, lane)])
                    qb.append(qf[(18 * kh + 2 * i + 1, lane)])
                assert conflicts(addr, 16) == 1, "K loads have bank conflicts"
                mma(sa, qa, ka)
                mma(sb, qb, kb)
            part[(kh, nt)] = [sa[ln] + sb[ln] for ln in range(32)]
        # ---- every warp: the step's scores, softmax, P fragments, PV
        for warp in range(NW):
            s = np.array([[part[(0, n)][ln] + part[(1, n)][ln] for n in range(4)] for ln in range(32)])
            for ln in range(32):
                j = ln & 3
                for n in range(4):
                    for c in range(4):
                        if 8 * n + 2 * j + (c & 1) >= nval:
                            s[ln, n, c] = -np.inf
            mx = np.stack([s[:, :, 0:2].max(axis=(1, 2)), s[:, :, 2:4].max(axis=(1, 2))], axis=1)  # [lane, head]
            for x in (1, 2):  # shfl_xor over the quad
                mx = np.maximum(mx, mx[[ln ^ x for ln in range(32)]])
            mx = mx * cbase
            if not lazy or (mx > m[warp] + 8).any():
                mn = np.maximum(m[warp], mx)
                al = np.exp2(m[warp] - np.where(mn == -np.inf, 0.0, mn))
                m[warp] = mn
                lsum[warp] *= al
                for n in range(8):
                    for ln in range(32):
                        o[warp][n][ln] *= np.repeat(al[ln], 2)
            mu = np.where(m[warp] == -np.inf, 0.0, m[warp])
            p = np.exp2(s * cbase - np.repeat(mu, 2, axis=1)[:, None, :])  # [lane, n, c]
            lsum[warp] += np.stack([p[:, :, 0:2].sum(axis=(1, 2)), p[:, :, 2:4].sum(axis=(1, 2))], axis=1)
            pa = [[[p[ln, 2 * kt, 0:2], p[ln, 2 * kt, 2:4], p[ln, 2 * kt + 1, 0:2], p[ln, 2 * kt + 1, 2:4]]
                   for ln in range(32)] for kt in range(2)]
            for kt in range(2):
                if 16 * kt >= nval:
                    break
                for u in range(4):
                    addrs = [v_address(warp, ln, kt, u, tma) for ln in range(32)]
                    assert conflicts(addrs, 16) == 1, "ldmatrix conflicts"  # one phase per 8-lane matrix
                    v = ldmatrix_trans(tile, addrs)
                    for ln in range(32):  # keep0 / keep1: value words of rows past the end are zeroed
                        j = ln & 3
                        for mm in range(4):
                            t0 = 16 * kt + 2 * j + 8 * (mm & 1)
                            v[ln][mm] = np.where([t0 < nval, t0 + 1 < nval], v[ln][mm], 0.0)
                    mma(o[warp][2 * u], pa[kt], [[v[ln][0], v[ln][1]] for ln in range(32)])
                    mma(o[warp][2 * u + 1], pa[kt], [[v[ln][2], v[ln][3]] for ln in range(32)])
    # ---- epilogue: row sums over the quad, normalise
    out = np.zeros((HG, RANK))
    for warp in range(NW):
        total = lsum[warp].copy()
        for x in (1, 2):
            total = total + total[[ln ^ x for ln in range(32)]]
        for ln in range(32):
            r, j = ln >> 2, ln & 3
            for h in range(2):
                for n in range(8):
                    d = 64 * warp + 8 * n + 2 * j
                    out[r + 8 * h, d:d + 2] = o[warp][n][ln][2 * h:2 * h + 2] / total[ln, h]
    return out


@pytest.mark.parametrize("tma", [False, True])
@pytest.mark.parametrize("lazy", [False, True])
@pytest.mark.parametrize("nvals", [(32,), (32, 32), (32, 7), (17,), (1,), (32, 16), (32, 32, 32)])
def test_steps_match_attention(nvals, lazy, tma):
    rng = np.random.default_rng(sum(nvals))
    q = rng.standard_normal((HG, ROW))
    lats = [rng.standard_normal((TOK, ROW)) * (1 + 3 * i) for i in range(len(nvals))]  # later steps' maxima move
    cbase = 0.3
    got = emulate(q, lats, nvals, cbase, lazy, tma)
    kv = np.concatenate([lat[:n] for lat, n in zip(lats, nvals)])
    s = q @ kv.T * cbase
    p = np.exp2(s - s.max(axis=1, keepdims=True))
    want = (p @ kv[:, :RANK]) / p.sum(axis=1, keepdims=True)
    assert np.allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("tma", [False, True])
def test_q_fragments_cover_every_dim_once(tma):
    # every (head, dim) of the 16 x 576 q tile appears in exactly one fragment slot
    q = np.arange(HG * ROW, dtype=float).reshape(HG, ROW)
    seen = np.concatenate([np.concatenate(v) for v in stage_q(q, tma).values()])
    assert sorted(seen.tolist()) == list(range(HG * ROW))


def test_tma_smem_by_hand():
    # rows back to back: 32 x 1,152 = 36,864 bytes a stage (36 x 1,024); the fixed area 27,648 is already a multiple
    # of 1,024; two stages and 1,024 bytes to align the first one: 102,400 bytes, two CTAs per SM
    assert limits.mla_stage_bytes("bfloat16", hm=True, tma=True) == 36864
    assert limits.mla_fixed_smem(16, "bfloat16", hm=True, tma=True) == 27648
    assert limits.mla_smem_bytes(16, "bfloat16", 2, hm=True, tma=True) == 102400


def test_row_layout_by_hand():
    # 8 consecutive rows start in slots 0, 4, 1, 5, 2, 6, 3, 7 (x 16 bytes) of a 128-byte line; rows are 1280 bytes
    # apart, so no row overlaps the next (1152 bytes + at most 112 of skew)
    offs = [limits.mla_row_offset(t, "bfloat16", hm=True) for t in range(16)]
    assert [o % 128 // 16 for o in offs[:8]] == [0, 4, 1, 5, 2, 6, 3, 7]
    assert offs[8] == 8 * 1280 and offs[9] == 9 * 1280 + 64
    assert all(offs[t] + ROW * 2 <= offs[t + 1] for t in range(15))
    # stage: row 31 at 31 x 1280 + 64 + 48 = 39,792, ends 1152 bytes on = 40,944 -> 40,960 (128-byte lines)
    assert limits.mla_stage_bytes("bfloat16", hm=True) == 40960


def test_smem_two_ctas_per_sm():
    # mbarriers 1024 + q fragments 16 x 576 x 2 = 18,432 + partials 2 x 8 x 32 x 16 = 8,192 -> 27,648; two stages of
    # 40,960 -> 109,568 bytes; two CTAs (plus 1 KB each the driver keeps) fit the 228 KB of an sm_90 SM
    assert limits.mla_fixed_smem(16, "bfloat16", hm=True) == 27648
    smem = limits.mla_smem_bytes(16, "bfloat16", 2, hm=True)
    assert smem == 109568 and 2 * (smem + 1024) <= 228 * 1024
