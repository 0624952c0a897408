"""The streaming GEMV's pure parts: shape checks, each CTA's share of the weights, and the count of CTAs that meet
in a 64-row tile (the last to arrive writes it: a wrong count leaves a tile unwritten or written twice)."""

import pytest

from kvplan.kernels import gemv_stream_config as gs


def brute_contributors(tiles, steps_per_tile, ctas, per_cta):
    """Walk every CTA's range step by step and collect which tiles it touches."""
    seen = [set() for _ in range(tiles)]
    for c in range(ctas):
        for u in range(c * per_cta, min(tiles * steps_per_tile, (c + 1) * per_cta)):
            seen[u // steps_per_tile].add(c)
    return [len(s) for s in seen]


@pytest.mark.parametrize("n, k, ctas", [(16, 64, 1), (17, 128, 132), (4096, 4096, 132), (1000, 1024, 66),
                                        (3, 192, 7), (2048, 8192, 132), (28672, 4096, 264), (96, 640, 13)])
def test_contributors_match_a_walk_of_every_range(n, k, ctas):
    per = gs.steps_per_cta(n, k, ctas)
    spt = k // gs.STEP_K
    expected = brute_contributors(gs.tiles(n), spt, ctas, per)
    assert [gs.contributors(t, spt, per) for t in range(gs.tiles(n))] == expected


@pytest.mark.parametrize("n, k, ctas", [(16, 64, 1), (17, 128, 132), (4096, 4096, 132), (1000, 1024, 66),
                                        (3, 192, 7), (128256, 4096, 132), (28672, 4096, 264), (96, 640, 13)])
def test_shared_tiles_have_distinct_first_ctas(n, k, ctas):
    """The workspace holds one tile's cells per CTA, indexed by a shared tile's first CTA: two shared tiles with the
    same first CTA would add into the same cells."""
    per = gs.steps_per_cta(n, k, ctas)
    spt = k // gs.STEP_K
    seen = [set() for _ in range(gs.tiles(n))]
    for c in range(ctas):
        for u in range(c * per, min(gs.tiles(n) * spt, (c + 1) * per)):
            seen[u // spt].add(c)
    shared = [t for t, s in enumerate(seen) if len(s) > 1]
    firsts = [gs.first_cta(t, spt, per) for t in shared]
    assert firsts == [min(seen[t]) for t in shared]
    assert len(set(firsts)) == len(firsts) and all(0 <= f < ctas for f in firsts)


@pytest.mark.parametrize("n, k, ctas", [(4096, 4096, 132), (17, 128, 132), (14336, 4096, 66), (5, 64, 3)])
def test_shares_cover_every_step_once_with_the_shortest_equal_share(n, k, ctas):
    per = gs.steps_per_cta(n, k, ctas)
    total = gs.tiles(n) * (k // gs.STEP_K)
    sizes = [max(0, min(total, (c + 1) * per) - c * per) for c in range(ctas)]
    assert sum(sizes) == total
    assert max(sizes) == per and (per - 1) * ctas < total  # the shortest equal share that covers everything
    # Llama-3.1-8B's o_proj over an H200's 132 SMs: 64 tiles x 64 steps / 132 CTAs -> 32 steps of 8 KB each
    if (n, k, ctas) == (4096, 4096, 132):
        assert per == 32


@pytest.mark.parametrize("args, word", [((0, 64, "bfloat16", 8), "n"), ((16, 100, "bfloat16", 8), "k"),
                                        ((16, 64, "float32", 8), "dtype"), ((16, 64, "bfloat16", 9), "max_batch"),
                                        ((16, -64, "bfloat16", 8), "k"), ((True, 64, "bfloat16", 8), "n")])
def test_bad_shapes_name_the_argument(args, word):
    with pytest.raises(ValueError, match=word):
        gs.check_shape(*args)


def test_default_config_compiles_no_depth_macro_and_variants_do():
    assert gs.GemvStreamConfig().macros() == [] and gs.GemvStreamConfig().name == "gemv_stream"
    assert gs.GemvStreamConfig(4).macros() == [("KVP_GV_DEPTH", "4")]


def test_the_default_l2_policy_form_is_its_own_cubin():
    """Evict-first weights are the default (no macro); the default policy, kept to compare, is another cubin."""
    assert gs.GemvStreamConfig(evict_first=True) == gs.GemvStreamConfig()
    off = gs.GemvStreamConfig(6, 2, evict_first=False)
    assert off.name == "gemv_stream_d6_mt2_noef"
    assert off.macros() == [("KVP_GV_DEPTH", "6"), ("KVP_GV_MT", "2"), ("KVP_GV_EVICT_FIRST", "0")]


def test_two_ctas_of_the_deepest_ring_fit_an_h200_sm():
    """The design needs the next launch's CTA beside this one: two CTAs within an SM's 228 KB (1 KB reserved each)."""
    assert 2 * (gs.smem_bytes(max(gs.DEPTHS)) + 1024) <= 228 * 1024


def test_tall_weights_take_two_ctas_per_sm_with_shorter_rings():
    """Session 20's H200 sweep: gate_up shapes (n about 7-8 k) streamed faster with two CTAs per SM and rings of 6;
    the square-ish and wide shapes of the same models did not."""
    for gate_up in ((28672, 4096), (16384, 2048), (34816, 5120), (57344, 8192)):
        assert gs.launch_shape(*gate_up) == (2, 6)
    for other in ((6144, 4096), (4096, 4096), (4096, 14336), (3072, 2048), (2048, 8192), (128256, 4096 * 32)):
        assert gs.launch_shape(*other) == (1, gs.DEPTH)


def test_ci_compiles_both_default_launches():
    """A default plan can need the one-CTA ring or the tall shapes' shorter ring, its CTAs in order or rotated, or
    the row-owned form's rings of 8, 6 or 5 (three CTAs an SM; verify times every form), and an MoE layer's experts
    at one token in either launch (the gather form): CI compiles the nine for sm_90."""
    from kvplan.kernels.configs import INSTANTIATION_SETS

    names = {c.name for make in INSTANTIATION_SETS for c in make("sm_90") if isinstance(c, gs.GemvStreamConfig)}
    assert names == {"gemv_stream", "gemv_stream_d6", "gemv_stream_rot", "gemv_stream_d6_rot", "gemv_stream_own",
                     "gemv_stream_d6_own", "gemv_stream_d5_own", "gemv_stream_gather", "gemv_stream_d6_gather"}


def test_the_trace_form_is_its_own_cubin_and_the_default_has_none():
    """The timeline (benchmarks/gemv_trace.py) adds a kernel argument: a macro and a name of its own, never default."""
    assert gs.GemvStreamConfig().trace is False
    traced = gs.GemvStreamConfig(6, trace=True)
    assert traced.name == "gemv_stream_d6_trace"
    assert traced.macros() == [("KVP_GV_DEPTH", "6"), ("KVP_GV_TRACE", "1")]
    rotated = gs.GemvStreamConfig(rotate=True)
    assert rotated.name == "gemv_stream_rot" and rotated.macros() == [("KVP_GV_ROTATE", "1")]


@pytest.mark.parametrize("n, most, want", [
    (6144, 132, (128, 3)),  # Llama-3.1-8B qkv: 384 slices, 3 each on 128 CTAs (hand: ceil(384/132) = 3, 384/3)
    (5120, 132, (107, 3)),  # Qwen3-14B o_proj: 320 slices; 106 CTAs of 3 and one of 2
    (2048, 132, (128, 1)),  # Llama-3.2-1B o_proj: 128 slices, one each, four SMs idle
    (17, 132, (2, 1)),  # a cut last slice is a slice
    (28672, 264, (256, 7)),  # 8B gate_up at two CTAs per SM: 1792 slices
])
def test_own_share_gives_every_cta_but_the_last_the_same_slices(n, most, want):
    ctas, each = gs.own_share(n, most)
    assert (ctas, each) == want
    slices = -(-n // 16)
    assert ctas <= most and (ctas - 1) * each < slices <= ctas * each


def test_the_row_owned_form_is_its_own_cubin_with_room_for_two_ctas_per_sm():
    own = gs.GemvStreamConfig(own=True)
    assert own.name == "gemv_stream_own" and own.macros() == [("KVP_GV_OWN", "1")] and own.tile_rows == 16
    assert 2 * (gs.smem_bytes(gs.DEPTH, own=True) + 1024) <= 228 * 1024


@pytest.mark.parametrize("n, want", [(2048, (1, 8)), (2112, (1, 8)), (2113, (2, 6)), (28672, (2, 6))])
def test_own_launch_takes_two_ctas_per_sm_only_when_slices_outnumber_sms(n, want):
    """132 SMs: 2112 rows are 132 slices (one CTA each either way, so the deeper ring), one row more is 133."""
    assert gs.own_launch(n, 132) == want


@pytest.mark.parametrize("options, word", [({"own": True, "rotate": True}, "own=True"),
                                           ({"k": 320 + 32}, "multiple of 64"),
                                           ({"ctas_per_sm": 3}, "ctas_per_sm"), ({"depth": 7}, "depth"),
                                           ({"own": 1}, "own")])
def test_bad_plan_options_are_named_before_a_gpu_is_needed(options, word):
    """The plan checks its options before it asks for NVRTC and a Hopper GPU, so a wrong option reads as itself on
    any machine (CI has neither)."""
    pytest.importorskip("torch")
    from kvplan.kernels.gemv_stream import gemv_stream_plan

    k = options.pop("k", 512)
    with pytest.raises(ValueError, match=word):
        gemv_stream_plan(64, k, "bfloat16", **options)


def test_e4m3_rows_step_128_values_at_a_time():
    """An e4m3 row of k values streams as a 16-bit row of k / 2 (gemv_stream.cu): k a multiple of 128."""
    gs.check_shape(4096, 5120, gs.E4M3, 8)
    with pytest.raises(ValueError, match="k must be a multiple of 128"):
        gs.check_shape(4096, 192, gs.E4M3, 8)
    assert "kvp_gemv_stream_e4m3" in gs.GemvStreamConfig().kernels


def test_block_scaled_plans_take_e4m3_in_order_or_rotated_only():
    """Block-scaled e4m3 (DeepSeek-V3): refused for 16-bit weights and for the row-owned form, whose cubin has no
    such entry (a step there is not one k group of one warp)."""
    pytest.importorskip("torch")
    from kvplan.kernels.gemv_stream import gemv_stream_plan

    for dtype, options in (("bfloat16", {}), (gs.E4M3, {"own": True}), (gs.E4M3, {"block_scaled": 1})):
        with pytest.raises(ValueError, match="block_scaled"):
            gemv_stream_plan(64, 512, dtype, **{"block_scaled": True, **options})
    assert gs.BLOCK_KERNEL in gs.GemvStreamConfig().kernels
    assert gs.BLOCK_KERNEL in gs.GemvStreamConfig(rotate=True).kernels
    assert gs.BLOCK_KERNEL not in gs.GemvStreamConfig(own=True).kernels


def test_the_gather_form_is_its_own_cubin():
    gather = gs.GemvStreamConfig(gather=True)
    assert gather.name == "gemv_stream_gather" and gather.macros() == [("KVP_GV_GATHER", "1")]
    assert gs.GemvStreamConfig().macros() == []


@pytest.mark.parametrize("args, word", [
    (("cols", 8, 2, 128, 1, False), "gather must be one of"),
    (("rows", 0, 2, 128, 1, False), "experts must be a positive int"),
    (("k", 8, True, 128, 1, False), "pairs must be a positive int"),
    (("rows", 8, 2, 128, 1, True), "in order only"),
    (("k", 8, 2, 128, 2, False), "one token"),
    (("rows", 8, 2, 100, 1, False), "multiple of 64"),
    (("k", 64, 33, 128, 1, False), "at most 32"),  # a tile would straddle two experts' rows
    ((None, 8, 0, 128, 1, False), "are for gather plans"),
])
def test_bad_gather_options_name_them(args, word):
    with pytest.raises(ValueError, match=word):
        gs.check_gather(*args)


def test_gather_k_takes_rows_not_a_multiple_of_the_tile():
    """The down stage's rows are the hidden size: its tiles are one matrix's, zero-filled past n like a dense plan."""
    gs.check_gather("k", 257, 9, 100, 1, False)
    gs.check_gather(None, 0, 0, 100, 8, False)


def test_bad_one_token_moe_options_are_named_before_a_gpu_is_needed():
    torch = pytest.importorskip("torch")
    from kvplan.kernels.moe_one_token import one_token_moe_plan

    for options, word in (({"weight_format": "mxfp4"}, "weight_format"), ({"activation": "relu2"}, "activation"),
                          ({"dtype": torch.float32}, "dtype"), ({"weight_format": "fp8", "dtype": torch.float16},
                                                               "dtype")):
        kw = {"dtype": torch.bfloat16, **options}
        with pytest.raises(ValueError, match=word):
            one_token_moe_plan(8, 256, 128, 2, **kw)
