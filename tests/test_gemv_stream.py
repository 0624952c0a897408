"""The streaming GEMV's pure parts: shape checks, each warp's share of the weights, and the count of warps that
meet in a row tile (the last to arrive writes it: a wrong count leaves a tile unwritten or written twice)."""

import pytest

from kvplan.kernels import gemv_stream as gs


def brute_contributors(tiles, steps_per_tile, warps, per_warp):
    """Walk every warp's range step by step and collect which tiles it touches."""
    seen = [set() for _ in range(tiles)]
    for w in range(warps):
        for u in range(w * per_warp, min(tiles * steps_per_tile, (w + 1) * per_warp)):
            seen[u // steps_per_tile].add(w)
    return [len(s) for s in seen]


@pytest.mark.parametrize("n, k, warps", [(16, 64, 1), (17, 128, 1056), (4096, 4096, 1056), (1000, 1024, 528),
                                         (3, 192, 7), (2048, 8192, 1056), (28672, 4096, 1056), (96, 640, 13)])
def test_contributors_match_a_walk_of_every_range(n, k, warps):
    per = gs.steps_per_warp(n, k, warps)
    spt = k // gs.STEP_K
    expected = brute_contributors(gs.tiles(n), spt, warps, per)
    assert [gs.contributors(t, spt, per) for t in range(gs.tiles(n))] == expected


@pytest.mark.parametrize("n, k, warps", [(4096, 4096, 1056), (17, 128, 1056), (14336, 4096, 528), (5, 64, 3)])
def test_shares_cover_every_step_once_with_the_shortest_equal_share(n, k, warps):
    per = gs.steps_per_warp(n, k, warps)
    total = gs.tiles(n) * (k // gs.STEP_K)
    sizes = [max(0, min(total, (w + 1) * per) - w * per) for w in range(warps)]
    assert sum(sizes) == total
    assert max(sizes) == per and (per - 1) * warps < total  # the shortest equal share that covers everything
    # Llama-3.1-8B's o_proj over 132 SMs x 2 CTAs x 4 warps: 256 tiles x 64 steps / 1056 warps -> 16 steps (32 KB)
    if (n, k, warps) == (4096, 4096, 1056):
        assert per == 16


@pytest.mark.parametrize("args, word", [((0, 64, "bfloat16", 8), "n"), ((16, 100, "bfloat16", 8), "k"),
                                        ((16, 64, "float32", 8), "dtype"), ((16, 64, "bfloat16", 9), "max_batch"),
                                        ((16, -64, "bfloat16", 8), "k"), ((True, 64, "bfloat16", 8), "n")])
def test_bad_shapes_name_the_argument(args, word):
    with pytest.raises(ValueError, match=word):
        gs.check_shape(*args)


def test_default_config_compiles_no_depth_macro_and_variants_do():
    assert gs.GemvStreamConfig().macros() == [] and gs.GemvStreamConfig().name == "gemv_stream"
    assert gs.GemvStreamConfig(2).macros() == [("KVP_GV_DEPTH", "2")]
