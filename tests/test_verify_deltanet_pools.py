"""Verify's gated-DeltaNet forward over a float32 recurrent state kept in its own pool (Qwen3.5's mamba_ssm_dtype:
vLLM's models/config.py copies it into the cache's mamba_ssm_cache_dtype from 0.17, so kvplan/verify/layout.py lays
the state out as a conv pool and a float32 recurrent pool): the same logits as the one interleaved pool."""

import pytest

torch = pytest.importorskip("torch")

from kvplan.gpu.caches import small_caches  # noqa: E402
from kvplan.gpu.deltanet import GatedDeltaNet  # noqa: E402
from kvplan.gpu.step import LayerCache  # noqa: E402
from test_verify_model import TOL, run_against_reference, tiny  # noqa: E402


def _split_state_pools(arch, built, prompts: int) -> dict:
    """small_caches' pools with every DeltaNet state split into its conv pool and a float32 recurrent pool."""
    (conv,) = {b.mixer.conv_elements for b in built.blocks if isinstance(b.mixer, GatedDeltaNet)}
    split = {}
    for key, cache in small_caches(arch, 64, 8, prompts, torch.float32).items():
        if cache.kind == "state":
            (pool,) = cache.tensors
            cache = LayerCache("state", cache.group, (torch.zeros(pool.shape[0], conv),
                                                      torch.zeros(pool.shape[0], pool.shape[1] - conv)))
        split[key] = cache
    return split


def test_two_state_pools_give_the_one_pools_logits():
    arch = tiny("qwen3_next")
    built = []
    assert run_against_reference(arch, prompt_lens=(70, 9), steps=2, block=8, built=built) < TOL
    caches = _split_state_pools(arch, built[0], 2)
    assert any(len(c.tensors) == 2 for c in caches.values())
    assert run_against_reference(arch, prompt_lens=(70, 9), steps=2, block=8, caches=caches) < TOL


def test_the_views_read_what_the_store_wrote():
    class Mixer:  # the shapes of one rank's layer: conv_dim 8 x 3 taps, 2 value heads of 4 x 4
        conv_elements, conv_dim, kernel, nv, dk, dv = 24, 8, 4, 2, 4, 4

    cache = LayerCache("state", "0", (torch.zeros(3, 24, dtype=torch.bfloat16), torch.zeros(3, 32)))
    conv, recurrent = torch.randn(2, 8, 3), torch.randn(2, 2, 4, 4, dtype=torch.float64)
    slots = torch.tensor([2, 0])
    GatedDeltaNet._store(Mixer, cache, slots, conv, recurrent)
    got_conv, got_recurrent = GatedDeltaNet._state_views(Mixer, cache, slots)
    assert torch.equal(got_conv, conv.to(torch.bfloat16)) and got_recurrent.dtype == torch.float32
    assert torch.equal(got_recurrent, recurrent.float()) and not cache.tensors[0][1].any()
