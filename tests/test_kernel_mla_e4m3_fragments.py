"""The e4m3 MLA path's PV A fragments, emulated on the CPU lane by lane (paged_mla_wg.cu, KVP_MLA_F8MMA).

A raw step lands as TMA's 64-byte swizzle writes it; each thread reads 8-byte halves of its 16-byte chunk for 4
tokens and byte-transposes them with PRMTs. Checked against the register layout PTX gives 8-bit A fragments of
wgmma m64nNk32 (warp w rows 16 w .. 16 w + 15; word f: row r + 8 (f & 1), k columns 4 j + 16 (f >> 1) + byte),
under the kernel's permutations: row 16 w + r + 8 x of tile u is latent dim 16 (8 w + r) + 8 ((u >> 2) ^ (r & 1)) +
2 (u & 3) + x (each of the 512 value dims one row of one tile) and k column 4 j + i of a 16-token group is token
4 i + j; and each half warp's 8-byte reads hit 32 distinct banks.
"""


def prmt(a, b, sel):
    """PTX prmt.b32 (default mode) on 4-element byte lists: result byte i is byte (sel >> 4 i) & 7 of b:a."""
    both = a + b
    return [both[(sel >> (4 * i)) & 7] for i in range(4)]


def transpose4x4(a, b, c, d):
    t0, t1, t2, t3 = prmt(a, b, 0x5140), prmt(a, b, 0x7362), prmt(c, d, 0x5140), prmt(c, d, 0x7362)
    return prmt(t0, t2, 0x5410), prmt(t0, t2, 0x7632), prmt(t1, t3, 0x5410), prmt(t1, t3, 0x7632)


def tma_sw64_stage():
    """Shared bytes of one raw step: block blk, token t, dim d of the block at blk 4096 + 64 t + 16 ((d >> 4) ^
    ((t >> 1) & 3)) + (d & 15) (CU_TENSOR_MAP_SWIZZLE_64B: address bits 4-5 ^= bits 7-8); each byte is (t, dim)."""
    mem = {}
    for blk in range(9):
        for t in range(64):
            for d in range(64):
                mem[blk * 4096 + 64 * t + 16 * ((d >> 4) ^ ((t >> 1) & 3)) + (d & 15)] = (t, 64 * blk + d)
    return mem


def sw64(t, c):
    return 64 * t + 16 * (c ^ ((t >> 1) & 3))


def thread_fragments(mem, warp, lane):
    """What pv_e4m3 builds: a[(half, kk, ul)] = 4 words of 4 bytes."""
    r, j = lane >> 2, lane & 3
    g = 8 * warp + r
    out = {}
    for half in range(2):
        for kk in range(2):
            for up in range(2):
                w = []
                for tt in range(4):
                    t = 32 * kk + 16 * up + 4 * tt + j
                    at = (g >> 2) * 4096 + sw64(t, g & 3) + 8 * (half ^ (r & 1))
                    v = [mem[at + i] for i in range(8)]
                    w.append((v[:4], v[4:]))
                d = transpose4x4(*(x[0] for x in w)) + transpose4x4(*(x[1] for x in w))
                for ul in range(4):
                    frag = out.setdefault((half, kk, ul), [None] * 4)
                    frag[2 * up], frag[2 * up + 1] = d[2 * ul], d[2 * ul + 1]
    return out


def test_transpose4x4_swaps_bytes_and_words():
    words = [[(t, d) for d in range(4)] for t in range(4)]
    assert [list(o) for o in transpose4x4(*words)] == [[(t, d) for t in range(4)] for d in range(4)]


def test_pv_fragments_follow_the_ptx_layout_under_the_dim_permutation():
    mem = tma_sw64_stage()
    covered = {u: set() for u in range(8)}
    for warp in range(4):
        for lane in range(32):
            r, j = lane >> 2, lane & 3
            for (half, kk, ul), frag in thread_fragments(mem, warp, lane).items():
                u = 4 * half + ul
                for f, word in enumerate(frag):
                    x = f & 1
                    dim = 16 * (8 * warp + r) + 8 * ((u >> 2) ^ (r & 1)) + 2 * (u & 3) + x  # as the epilogue
                    covered[u].add(dim)
                    tokens = [32 * kk + 16 * (f >> 1) + 4 * b + j for b in range(4)]  # k columns 4 j + b
                    assert word == [(t, dim) for t in tokens], (warp, lane, half, kk, ul, f)
    assert all(len(c) == 64 for c in covered.values())  # each tile's 64 rows are 64 distinct dims
    assert sorted(set().union(*covered.values())) == list(range(512))


def test_half_warps_read_distinct_banks():
    """Every 8-byte read instruction of pv_e4m3: the 16 lanes of a half warp cover 16 distinct 8-byte bank pairs."""
    for warp in range(4):
        for half in range(2):
            for kk in range(2):
                for up in range(2):
                    for tt in range(4):
                        for hw in range(2):
                            units = set()
                            for lane in range(16 * hw, 16 * hw + 16):
                                r, j = lane >> 2, lane & 3
                                g = 8 * warp + r
                                t = 32 * kk + 16 * up + 4 * tt + j
                                units.add(((g >> 2) * 4096 + sw64(t, g & 3) + 8 * (half ^ (r & 1))) % 128 // 8)
                            assert len(units) == 16, (warp, half, kk, up, tt, hw)


def test_p_columns_match_the_fragments_tokens():
    """store_p_e4m3 puts token t (16 w + r, r < 8) and t + 8 at the k columns whose A fragment words carry them."""
    for t in range(64):
        if t & 15 >= 8:
            continue
        k0 = 4 * (t & 3) + ((t >> 2) & 3)
        for tok, k in ((t, k0), (t + 8, k0 + 2)):
            j, i = k >> 2, k & 3  # column 4 j + i of the group holds token 4 i + j
            assert (tok & ~15) + 4 * i + j == tok
