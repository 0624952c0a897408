"""CPU tests of sort_full_pages (kvplan/kernels/page_order.py): hand-worked tables, the invariants on random
ones, and the attention it must leave unchanged (the float64 references over the sorted and the given table)."""

import pytest

torch = pytest.importorskip("torch")

from kvplan.kernels import reference_paged_decode_attention as ref_attn  # noqa: E402
from kvplan.kernels import reference_paged_mla_decode as ref_mla  # noqa: E402
from kvplan.kernels import sort_full_pages  # noqa: E402
from test_kernel_reference import make_case  # noqa: E402


def t32(rows):
    return torch.tensor(rows, dtype=torch.int32)


def test_full_pages_sorted_and_the_partial_page_and_tail_kept():
    # 50 tokens in pages of 16: pages 0-2 full, page 3 holds 2 tokens, the rest unused (garbage kept)
    bt = t32([[7, 2, 9, 4, -5, 3]])
    got = sort_full_pages(bt, t32([50]), 16)
    assert got.tolist() == [[2, 7, 9, 4, -5, 3]]
    # exactly 4 full pages: all four sorted, the garbage after them kept
    assert sort_full_pages(bt, t32([64]), 16).tolist() == [[2, 4, 7, 9, -5, 3]]
    # nothing full: unchanged
    assert sort_full_pages(bt, t32([15]), 16).tolist() == bt.tolist()
    assert sort_full_pages(bt, t32([0]), 16).tolist() == bt.tolist()


def test_groups_sort_inside_each_run_of_positions():
    bt = t32([[8, 6, 5, 1, 9, 0, 4], [3, 2, 1, 0, 7, 7, 7]])
    lens = t32([7 * 8, 3 * 8 + 1])  # row 0: all 7 full; row 1: 3 full, a partial page, then unused
    got = sort_full_pages(bt, lens, 8, group_pages=3)
    assert got.tolist() == [[5, 6, 8, 0, 1, 9, 4], [1, 2, 3, 0, 7, 7, 7]]
    got2 = sort_full_pages(bt, lens, 8, group_pages=2)
    assert got2.tolist() == [[6, 8, 1, 5, 0, 9, 4], [2, 3, 1, 0, 7, 7, 7]]
    # a run larger than the row is the row; one page a run changes nothing
    assert sort_full_pages(bt, lens, 8, group_pages=100).tolist() == sort_full_pages(bt, lens, 8).tolist()
    assert sort_full_pages(bt, lens, 8, group_pages=1).tolist() == bt.tolist()


def test_duplicate_ids_and_out():
    bt = t32([[5, 5, 1, 5]])
    out = torch.full((1, 4), -1, dtype=torch.int32)
    res = sort_full_pages(bt, t32([64]), 16, out=out)
    assert res is out and out.tolist() == [[1, 5, 5, 5]]
    assert bt.tolist() == [[5, 5, 1, 5]]  # the given table is not touched


@pytest.mark.parametrize("seed", range(6))
def test_random_tables_keep_each_runs_pages(seed):
    g = torch.Generator().manual_seed(seed)
    B, W, bs = 9, 37, (8, 16, 32, 64)[seed % 4]
    bt = torch.randint(-(2**31), 2**31 - 1, (B, W), generator=g, dtype=torch.int32)
    bt[:, : W - 3] = torch.randint(0, 10_000, (B, W - 3), generator=g, dtype=torch.int32)
    lens = torch.randint(0, W * bs + 1, (B,), generator=g, dtype=torch.int32)
    lens[0], lens[1] = 0, W * bs
    group = 1 + seed * 3
    got = sort_full_pages(bt, lens, bs, group_pages=group)
    for b in range(B):
        full = int(lens[b]) // bs
        assert got[b, full:].tolist() == bt[b, full:].tolist()
        for start in range(0, full, group):
            end = min(start + group, full)
            assert got[b, start:end].tolist() == sorted(bt[b, start:end].tolist())


def test_attention_over_the_sorted_table_is_unchanged():
    q, k, v, bt, lens = make_case(4, 8, 2, 64, 16, [1, 47, 64, 200], seed=3)
    srt = sort_full_pages(bt, lens, 16, group_pages=4)
    assert not torch.equal(srt, bt)  # the pages did move
    a = ref_attn(q, k, v, bt, lens, compute_dtype=torch.float64, out_dtype=torch.float64)
    b = ref_attn(q, k, v, srt, lens, compute_dtype=torch.float64, out_dtype=torch.float64)
    assert torch.isfinite(a).all() and torch.allclose(a, b, rtol=1e-12, atol=1e-12)


def test_mla_attention_over_the_sorted_table_is_unchanged():
    g = torch.Generator().manual_seed(5)
    B, H, bs, lens = 3, 4, 16, [5, 90, 160]
    nblk = [-(-n // bs) for n in lens]
    perm = torch.randperm(sum(nblk) + 2, generator=g).to(torch.int32)
    bt = torch.zeros(B, max(nblk) + 1, dtype=torch.int32)
    pos = 0
    for i, n in enumerate(nblk):
        bt[i, :n] = perm[pos:pos + n]
        pos += n
    lat = torch.randn(len(perm), bs, 576, generator=g).to(torch.bfloat16)
    qn = torch.randn(B, H, 512, generator=g).to(torch.bfloat16)
    qr = torch.randn(B, H, 64, generator=g).to(torch.bfloat16)
    sl = torch.tensor(lens, dtype=torch.int32)
    srt = sort_full_pages(bt, sl, bs)
    assert not torch.equal(srt, bt)
    a = ref_mla(qn, qr, lat, bt, sl, compute_dtype=torch.float64, out_dtype=torch.float64)
    b = ref_mla(qn, qr, lat, srt, sl, compute_dtype=torch.float64, out_dtype=torch.float64)
    assert torch.allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("args,needle", [
    ((t32([1, 2]), t32([1]), 16), "block_table must be"),
    ((t32([[1, 2]]).long(), t32([1]), 16), "block_table must be"),
    ((t32([[1, 2]]), t32([1, 2]), 16), "seq_lens must be"),
    ((t32([[1, 2]]), t32([1]).long(), 16), "seq_lens must be"),
    ((t32([[1, 2]]), t32([1]), 0), "block_size"),
    ((t32([[1, 2]]), t32([1]), 16, 0), "group_pages"),
])
def test_bad_arguments_name_the_argument(args, needle):
    with pytest.raises(ValueError, match=needle):
        sort_full_pages(*args)


def test_bad_out_is_refused():
    with pytest.raises(ValueError, match="out must be"):
        sort_full_pages(t32([[1, 2]]), t32([32]), 16, out=torch.zeros(1, 3, dtype=torch.int32))


def test_plans_sort_inside_each_ctas_chunk_and_refuse_windows():
    """The plans' sorted_block_table groups by the chunk their launch gives a CTA (pages = chunk / block size);
    checked without a GPU through a stand-in carrying only what the method reads."""
    from types import SimpleNamespace

    from kvplan.kernels.paged_decode import PagedDecodePlan
    from kvplan.kernels.paged_mla import PagedMLADecodePlan

    bt, sl = t32([[9, 3, 7, 1, 5, 2]]), t32([96])  # six full pages of 16 tokens
    gqa = SimpleNamespace(window=None, block_size=16, launch_for=lambda b: SimpleNamespace(chunk=64))
    assert PagedDecodePlan.sorted_block_table(gqa, bt, sl).tolist() == [[1, 3, 7, 9, 2, 5]]
    assert PagedDecodePlan.sorted_block_table(gqa, bt[:0], sl[:0]).tolist() == []
    mla = SimpleNamespace(block_size=16, _splits=lambda b: (3, 32))
    assert PagedMLADecodePlan.sorted_block_table(mla, bt, sl).tolist() == [[3, 9, 1, 7, 2, 5]]
    with pytest.raises(ValueError, match="sliding_window"):
        PagedDecodePlan.sorted_block_table(SimpleNamespace(**{**vars(gqa), "window": 64}), bt, sl)
