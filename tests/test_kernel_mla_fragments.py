"""CPU emulation of paged_mla_decode.cu's fragment mappings (no GPU, no compiler).

Lane by lane, as the kernel does it: latent rows at the padded offsets of limits.py, 8-dim chunks per
lane, m16n8k16 A/B/C fragments, the softmax across warps and the PV step through prmt pairs. Checks
that one step of the emulated kernel equals attention computed directly, and that every shared-memory
read of the QK and PV loops is free of bank conflicts.
"""

import numpy as np
import pytest

from kvplan.kernels import limits

RANK, ROW, NW = limits.MLA_KV_LORA_RANK, limits.MLA_ROW, limits.MLA_WARPS


_R, _J = np.arange(32) >> 2, np.arange(32) & 3  # each lane's (r, j): row r (group of 4 lanes), pair j
_ROWS, _COLS = _R[:, None], 2 * _J[:, None] + np.arange(2)  # a pair's matrix row and its two columns


def mma(c, a, b):
    """m16n8k16 (row.col) from per-lane fragments: a[lane] = 4 pairs, b[lane] = 2 pairs, c[lane] = 4. Lane (r, j)
    holds A[r, 2j:2j+2], A[r+8, 2j:2j+2], A[r, 2j+8:2j+10], A[r+8, 2j+8:2j+10], B[2j:2j+2, r], B[2j+8:2j+10, r]
    and C[r, 2j], C[r, 2j+1], C[r+8, 2j], C[r+8, 2j+1] (every lane's pairs placed at once)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)  # [lane, pair, 2]
    A = np.zeros((16, 16))
    B = np.zeros((16, 8))
    A[_ROWS, _COLS], A[_ROWS + 8, _COLS] = a[:, 0], a[:, 1]
    A[_ROWS, _COLS + 8], A[_ROWS + 8, _COLS + 8] = a[:, 2], a[:, 3]
    B[_COLS, _ROWS], B[_COLS + 8, _ROWS] = b[:, 0], b[:, 1]
    C = A @ B
    lanes = np.stack([C[_R, 2 * _J], C[_R, 2 * _J + 1], C[_R + 8, 2 * _J], C[_R + 8, 2 * _J + 1]], axis=1)
    for lane in range(32):
        c[lane] += lanes[lane]


def conflicts(addrs, width):
    """Worst n-way bank conflict of one warp-wide shared load of ``width`` bytes per lane."""
    per_phase = 128 // width
    worst = 1
    for p in range(0, 32, per_phase):
        banks: dict[int, set] = {}
        for a in addrs[p:p + per_phase]:
            for w in range(a // 4, (a + width) // 4):
                banks.setdefault(w % 32, set()).add(w)
        worst = max(worst, max(len(v) for v in banks.values()))
    return worst


@pytest.mark.parametrize("kv_dtype", ["bfloat16", "float8_e4m3fn"])
@pytest.mark.parametrize("hg", limits.MLA_HEAD_GROUPS)
@pytest.mark.parametrize("nval_frac", [1.0, 0.4])
@pytest.mark.parametrize("tokens", [None, 16, 32])  # the dtype's default stage, and the tuning option's sizes
def test_one_step_matches_attention(kv_dtype, hg, nval_frac, tokens):
    rng = np.random.default_rng(hg + len(kv_dtype))
    es = limits.kv_bytes(kv_dtype)
    cw = 8 * es  # bytes of an 8-dim chunk
    tok = limits.mla_step_tokens(kv_dtype, tokens)
    mti, nt_n = tok // 16, hg // 8
    units = mti * nt_n
    upw = -(-units // NW)
    nval = max(1, int(tok * nval_frac))
    lat = rng.standard_normal((tok, ROW))
    q = rng.standard_normal((hg, ROW))
    lat[nval:] = np.nan  # rows past the end: never copied, whatever the tile holds
    # element address -> value (the "shared memory" of one stage), and byte addresses for bank checks
    off = [limits.mla_row_offset(t, kv_dtype) for t in range(tok)]
    assert all(off[t + 1] - off[t] >= ROW * es for t in range(tok - 1))
    assert off[-1] + ROW * es <= limits.mla_stage_bytes(kv_dtype, tokens)

    def chunk(t, c):  # 8 dims of row t, as 4 pairs
        return [lat[t, 8 * c + 2 * i:8 * c + 2 * i + 2] for i in range(4)]

    # ---- QK
    sc = {}
    for warp in range(NW):
        mt = warp % mti
        for u in range(upw):
            unit = warp + NW * u
            if unit >= units:
                continue
            nt = unit // mti
            acc = [np.zeros(4) for _ in range(32)]
            for i in range(ROW // 32):
                a1, a2, b1, b2, addr_a, addr_q = [], [], [], [], [], []
                for lane in range(32):
                    r, j = lane >> 2, lane & 3
                    c = j + 4 * i
                    x0, x1 = chunk(16 * mt + r, c), chunk(16 * mt + r + 8, c)
                    qv = [q[8 * nt + r, 8 * c + 2 * k:8 * c + 2 * k + 2] for k in range(4)]
                    a1.append([x0[0], x1[0], x0[1], x1[1]])
                    a2.append([x0[2], x1[2], x0[3], x1[3]])
                    b1.append([qv[0], qv[1]])
                    b2.append([qv[2], qv[3]])
                    addr_a.append(off[16 * mt + r] + c * cw)
                    addr_q.append((8 * nt + r) * limits.MLA_Q_STRIDE + c * 16)
                mma(acc, a1, b1)
                mma(acc, a2, b2)
                assert conflicts(addr_a, cw) == 1, "QK latent read has bank conflicts"
                assert conflicts(addr_q, 16) == 1, "QK q read has bank conflicts"
            for lane in range(32):
                r, j = lane >> 2, lane & 3
                for c in range(2):
                    h = 8 * nt + 2 * j + c
                    sc[(16 * mt + r, h)] = acc[lane][c]
                    sc[(16 * mt + r + 8, h)] = acc[lane][2 + c]
    S = np.array([[sc[(t, h)] for t in range(tok)] for h in range(hg)])  # [heads, tokens]
    S[:, nval:] = -np.inf  # the select
    P = np.exp(S - S.max(axis=1, keepdims=True))

    # ---- PV: warp w owns dims 64w..64w+63
    O = np.zeros((hg, RANK))
    for warp in range(NW):
        acc = {(u, nt): [np.zeros(4) for _ in range(32)] for u in range(4) for nt in range(nt_n)}
        for kt in range(mti):
            t0 = 16 * kt
            if t0 >= nval:
                break
            ys, addr = {}, {k: [] for k in range(4)}
            for lane in range(32):
                r, j = lane >> 2, lane & 3
                c = 8 * warp + r
                rows = [t0 + 2 * j, t0 + 2 * j + 1, t0 + 2 * j + 8, t0 + 2 * j + 9]
                ys[lane] = [chunk(t, c) if t < nval else [np.zeros(2)] * 4 for t in rows]
                for k, t in enumerate(rows):
                    addr[k].append(off[t] + c * cw)
            for k in range(4):
                assert conflicts(addr[k], cw) == 1, "PV latent read has bank conflicts"
            for u in range(4):
                a = []
                for lane in range(32):
                    y0, y1, y2, y3 = ys[lane]
                    # prmt 0x5410 / 0x7632: low halves (dim 2u) / high halves (dim 2u + 1) of two rows
                    a.append([np.array([y0[u][0], y1[u][0]]), np.array([y0[u][1], y1[u][1]]),
                              np.array([y2[u][0], y3[u][0]]), np.array([y2[u][1], y3[u][1]])])
                for nt in range(nt_n):
                    b = []
                    for lane in range(32):
                        r, j = lane >> 2, lane & 3
                        h = 8 * nt + r
                        b.append([P[h, t0 + 2 * j:t0 + 2 * j + 2], P[h, t0 + 2 * j + 8:t0 + 2 * j + 10]])
                    mma(acc[(u, nt)], a, b)
        for (u, nt), lanes in acc.items():
            for lane in range(32):
                r, j = lane >> 2, lane & 3
                d = 64 * warp + 8 * r + 2 * u
                for c in range(2):
                    h = 8 * nt + 2 * j + c
                    O[h, d] = lanes[lane][c]
                    O[h, d + 1] = lanes[lane][2 + c]
    want = P[:, :nval] @ lat[:nval, :RANK]
    assert np.allclose(O, want, rtol=1e-12, atol=1e-12)
    # P reads ([head][token] bf16 words) are conflict-free too
    ps = limits.mla_p_stride(kv_dtype, tokens)
    addrs = [(lane >> 2) * ps + 2 * (2 * (lane & 3)) for lane in range(32)]
    assert conflicts(addrs, 4) == 1


def test_smem_fits_h100_and_h200():
    # 227 KB opt-in on sm_90; at least 3 stages so one stage is always in flight while another is read
    for kv in ("bfloat16", "float8_e4m3fn"):
        for hg in limits.MLA_HEAD_GROUPS:
            assert limits.mla_smem_bytes(hg, kv, 3) <= 227 * 1024, (kv, hg)


def test_k_split_partials_by_hand():
    # QK units per step = (tokens / 16) x (head group / 8); with fewer units than the 8 warps, the warps past them
    # hand 32 lanes x 4 fp32 (512 bytes) each to the unit's owner
    assert limits.mla_x_bytes(16, "bfloat16") == (8 - 2 * 2) * 512  # 32 tokens x 16 heads: 4 units, 2 warps each
    assert limits.mla_x_bytes(16, "bfloat16", 16) == (8 - 1 * 2) * 512  # 16 tokens: 2 units, 4 warps each
    assert limits.mla_x_bytes(32, "bfloat16") == 0  # 2 x 4 = 8 units: one per warp
    assert limits.mla_x_bytes(64, "bfloat16") == 0  # 16 units: two per warp
    assert limits.mla_x_bytes(16, "float8_e4m3fn") == 0  # 64 tokens x 16 heads: 8 units
    # before the stages: mbarriers 1024 + q 16 x 1216 + P 16 x (2 x 32 + 16) + maxima and sums 2 x 2 x 16 x 4
    # + partials 2048 = 1024 + 19456 + 1280 + 256 + 2048 = 24064 (a multiple of 128)
    assert limits.mla_fixed_smem(16, "bfloat16") == 24064
