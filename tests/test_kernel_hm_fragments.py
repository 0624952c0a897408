"""CPU emulation of the heads-in-M step of paged_decode.cu (paged_decode_hm.cuh; KVP_HM), no GPU, no compiler.

Lane by lane, as the kernel does it: the q quads a lane loads, the K chunks it reads (16-byte words taken as B
registers in order), the m16n8k16 fragments, the P fragments built from the score C fragments, and the PV step's
byte selections (prmt) of V words, 16-bit and fp8, down to which output dim each C register lands in (odim). Checks
that one 16-token step equals S = Q K^T and O = P V computed directly, and that the quads and the output n-tiles
cover every dim exactly once."""

import numpy as np
import pytest
from test_kernel_mla_fragments import mma

LANES = [(lane, lane >> 2, lane & 3) for lane in range(32)]


def prmt(a, b, sel):
    """prmt.b32 over words as 4 byte slots (slot 0 lowest)."""
    src = list(a) + list(b)
    return [src[(sel >> (4 * k)) & 7] for k in range(4)]


def words16(row, first):
    """A 16-byte chunk of a 16-bit row from element `first`: 4 words, each two elements as byte slots (lo first)."""
    return [[(row, first + 2 * w, 0), (row, first + 2 * w, 1), (row, first + 2 * w + 1, 0),
             (row, first + 2 * w + 1, 1)] for w in range(4)]


def words8(row, first, nwords=4):
    """`nwords` words of an fp8 row from element `first`: 4 one-byte elements each."""
    return [[(row, first + 4 * w + e, None) for e in range(4)] for w in range(nwords)]


def pair16(word, mat):
    """The two 16-bit elements of a word (both bytes of each from one element)."""
    out = []
    for lo, hi in ((word[0], word[1]), (word[2], word[3])):
        assert lo[:2] == hi[:2] and (lo[2], hi[2]) == (0, 1), "a 16-bit element assembled from two elements' bytes"
        out.append(mat[lo[0], lo[1]])
    return out


def cvt8(word, mat, shift=False):
    """e4m3x2_to_h2(word) (or of word >> 16): its two low bytes' elements."""
    lo, hi = (word[2], word[3]) if shift else (word[0], word[1])
    return [mat[lo[0], lo[1]], mat[hi[0], hi[1]]]


@pytest.mark.parametrize("fp8", [False, True])
@pytest.mark.parametrize("D", [64, 128])
def test_one_step_matches_attention(fp8, D):
    rng = np.random.default_rng(D + fp8)
    es = 1 if fp8 else 2
    rowb = D * es
    ek = 16 // es                 # elements per 16-byte K chunk (EK)
    kch = rowb // 64              # K chunks per lane (KCH)
    qpc = ek // 4                 # quads per chunk (QPC)
    vcw = 16 if rowb // 8 >= 16 else rowb // 8
    ev = vcw // es                # V elements per chunk (EV)
    vch = rowb // vcw // 8        # V chunks per lane (VCH)
    nto = D // 8
    assert nto == vch * ev
    q, K, V = rng.standard_normal((16, D)), rng.standard_normal((16, D)), rng.standard_normal((16, D))

    # q quads and K chunks: dims covered once across the 4 lanes of a row
    covered = sorted(ek * (j + 4 * i) + 4 * t + x for j in range(4) for i in range(kch) for t in range(qpc)
                     for x in range(4))
    assert covered == list(range(D))

    # S = Q K^T: two chains (quad parity) per token n-tile, summed in the softmax
    sc = [[[np.zeros(4) for _ in range(32)] for _ in range(2)] for _ in range(2)]
    for i in range(kch):
        for t in range(qpc):
            a, b0, b1 = [], [], []
            for lane, r, j in LANES:
                d0 = ek * (j + 4 * i) + 4 * t
                a.append([q[r, d0:d0 + 2], q[r + 8, d0:d0 + 2], q[r, d0 + 2:d0 + 4], q[r + 8, d0 + 2:d0 + 4]])
                if fp8:  # word t of the chunk, converted as the kernel does: b0 its low pair, b1 its high pair
                    w0, w1 = words8(r, ek * (j + 4 * i))[t], words8(r + 8, ek * (j + 4 * i))[t]
                    b0.append([cvt8(w0, K), cvt8(w0, K, True)])
                    b1.append([cvt8(w1, K), cvt8(w1, K, True)])
                else:  # x.x, x.y (quad 0) or x.z, x.w (quad 1) of the 16-byte read
                    w0, w1 = words16(r, ek * (j + 4 * i)), words16(r + 8, ek * (j + 4 * i))
                    b0.append([pair16(w0[2 * t], K), pair16(w0[2 * t + 1], K)])
                    b1.append([pair16(w1[2 * t], K), pair16(w1[2 * t + 1], K)])
            mma(sc[0][t & 1], a, b0)
            mma(sc[1][t & 1], a, b1)
    S = q @ K.T
    for lane, r, j in LANES:
        for nt in range(2):
            got = sc[nt][0][lane] + sc[nt][1][lane]
            want = [S[r, 8 * nt + 2 * j], S[r, 8 * nt + 2 * j + 1],
                    S[r + 8, 8 * nt + 2 * j], S[r + 8, 8 * nt + 2 * j + 1]]
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)

    # P from each lane's own scores (any elementwise function), packed as the A fragments of O = P V
    P = np.exp(S / 8.0)
    pa = []
    for lane, r, j in LANES:
        p = [[P[r, 8 * nt + 2 * j], P[r, 8 * nt + 2 * j + 1], P[r + 8, 8 * nt + 2 * j], P[r + 8, 8 * nt + 2 * j + 1]]
             for nt in range(2)]
        pa.append([p[0][0:2], p[0][2:4], p[1][0:2], p[1][2:4]])

    # O = P V through the prmt selections of V rows 2j, 2j + 1, 2j + 8, 2j + 9, chunk r + 8i
    o = [[np.zeros(4) for _ in range(32)] for _ in range(nto)]
    for i in range(vch):
        bs = {}
        for lane, r, j in LANES:
            first = ev * (r + 8 * i)
            rows = (2 * j, 2 * j + 1, 2 * j + 8, 2 * j + 9)
            if fp8:
                w = [words8(t, first, vcw // 4) for t in rows]
                for wi in range(vcw // 4):
                    for hh in range(2):
                        sel = 0x7362 if hh else 0x5140
                        e, f = prmt(w[0][wi], w[1][wi], sel), prmt(w[2][wi], w[3][wi], sel)
                        u = i * ev + 4 * wi + 2 * hh
                        bs.setdefault(u, []).append([cvt8(e, V), cvt8(f, V)])
                        bs.setdefault(u + 1, []).append([cvt8(e, V, True), cvt8(f, V, True)])
            else:
                w = [words16(t, first) for t in rows]
                for wi in range(4):
                    for lh in range(2):
                        sel = 0x7632 if lh else 0x5410
                        e, f = prmt(w[0][wi], w[1][wi], sel), prmt(w[2][wi], w[3][wi], sel)
                        # prmt of two words' halves: one element from each token row, same dim
                        bs.setdefault(i * ev + 2 * wi + lh, []).append([pair16(e, V), pair16(f, V)])
        for u, b in bs.items():
            mma(o[u], pa, b)
    O = P @ V

    def odim(u, n):
        return ev * (n + 8 * (u // ev)) + u % ev

    seen = []
    for lane, r, j in LANES:
        for u in range(nto):
            for e in range(2):
                d = odim(u, 2 * j + e)
                if r == 0:
                    seen.append(d)
                np.testing.assert_allclose([o[u][lane][e], o[u][lane][2 + e]], [O[r, d], O[r + 8, d]], rtol=1e-12)
    assert sorted(seen) == list(range(D))  # the 4 lanes of a head row write every dim once
    # hm::store writes a column's n-tiles u .. u + 7 (u % 8 == 0) as one run of 8 dims (16- / 32-byte stores)
    for j in range(4):
        for u in range(0, nto, 8):
            for e in range(2):
                assert [odim(u + t, 2 * j + e) for t in range(8)] == list(range(odim(u, 2 * j + e),
                                                                              odim(u, 2 * j + e) + 8))


@pytest.mark.parametrize("D,es", [(128, 2), (64, 2), (128, 1)])
def test_shared_reads_bank_conflicts_per_layout(D, es):
    """The heads-in-M step reads shared memory exactly where the default step does (K: token r / r + 8, chunk
    j + 4i; V: tokens 2j, 2j + 1, 2j + 8, 2j + 9, chunk r + 8i). The bulk layout (koff / voff with
    limits.BULK_K_GAP and BULK_V_SKEW) keeps those reads free of bank conflicts; the row-after-row layout of page
    runs (KVP_RUN) costs 2-way conflicts on K and 4-way on V, the price of one copy per step."""
    from kvplan.kernels import limits
    from test_kernel_mla_fragments import conflicts

    ts = D * es  # one KV head per row
    kch = ts // 64
    vcw = 16 if ts // 8 >= 16 else ts // 8
    vch = ts // vcw // 8

    def bulk_k(t):
        return (t & 1) * (8 * ts + limits.BULK_K_GAP) + (t >> 1) * ts

    def bulk_v(t):
        return 16 * ts + limits.BULK_K_GAP + t * ts + (t >> 1) * limits.BULK_V_SKEW

    def run_k(t):
        return t * ts

    def run_v(t):
        return (16 + t) * ts

    def worst(koff, voff):
        k = max(conflicts([koff(r + 8 * h) + (j + 4 * i) * 16 for _, r, j in LANES], 16)
                for i in range(kch) for h in range(2))
        v = max(conflicts([voff(2 * j + dt) + (r + 8 * i) * vcw for _, r, j in LANES], vcw)
                for i in range(vch) for dt in (0, 1, 8, 9))
        return k, v

    assert worst(bulk_k, bulk_v) == (1, 1)
    assert worst(run_k, run_v) == (2, 4)
