"""The warpgroup-MMA GQA / MQA decode's pure parts (no GPU): which plans take it, its shared memory, its options and
its instantiations. Its results against the float64 reference are in tests/test_kernel_gpu.py (sm_90)."""

import pytest

from kvplan.kernels import KernelOptions, configs, limits
from kvplan.kernels.decode_wg import takes_wg, wg_blocker

BF, F16, F8 = "bfloat16", "float16", "float8_e4m3fn"


def test_shared_memory_by_hand():
    # head_dim 128, 64 heads, 4 steps: 128 bytes of mbarriers + 3 x 4 x 64 fp32 reductions rounded to 4,096; q
    # 2 blocks x 64 heads x 128 bytes = 16,384; P 64 x 128 = 8,192; 4 steps of K and V, each 2 x 64 x 128 bytes
    # (16,384): 131,072; 1,024 to align: 160,768 (one CTA an SM on an H200's 232,448)
    assert limits.decode_wg_smem(128, 64, 4) == 4096 + 16384 + 8192 + 131072 + 1024 == 160768
    # head_dim 64, 16 heads, 2 steps: 896 bytes -> 1,024; q 2,048; P 2,048; 2 x (8,192 + 8,192); 1,024
    assert limits.decode_wg_smem(64, 16, 2) == 1024 + 2048 + 2048 + 32768 + 1024
    assert limits.decode_wg_smem(128, 64, 6) <= 232448 < limits.decode_wg_smem(128, 64, 7)
    # two warpgroups, 2 steps each: reductions 128 + 2 x 3,072 -> 7,168; q 16,384; 2 x (P 8,192 + 2 x 32,768)
    assert limits.decode_wg_smem(128, 64, 2, 2) == 7168 + 16384 + 2 * (8192 + 65536) + 1024
    assert limits.decode_wg_smem(128, 64, 2, 2) <= 232448 < limits.decode_wg_smem(128, 64, 3, 2)


@pytest.mark.parametrize("args,word", [
    ((64, 128, BF, BF, None, "sm_80"), "sm_90"),
    ((64, 128, BF, F8, None, "sm_90"), "16-bit"),
    ((64, 256, BF, BF, None, "sm_90"), "head_dim"),
    ((8, 128, BF, BF, None, "sm_90"), "multiples of 16"),
    ((24, 128, BF, BF, None, "sm_90"), "multiples of 16"),
    ((64, 128, BF, BF, 4096, "sm_90"), "sliding window"),
])
def test_plans_it_cannot_take_say_why(args, word):
    assert word in wg_blocker(*args, KernelOptions())
    with pytest.raises(ValueError, match=word):
        takes_wg(*args, KernelOptions(wgmma=True))
    assert not takes_wg(*args, KernelOptions())  # the default falls back without a word


def test_when_a_plan_takes_it():
    assert wg_blocker(64, 128, BF, BF, None, "sm_90", KernelOptions()) is None
    assert wg_blocker(32, 64, F16, F16, None, "sm_90", KernelOptions()) is None
    assert takes_wg(16, 128, BF, BF, None, "sm_90", KernelOptions(wgmma=True))
    assert not takes_wg(64, 128, BF, BF, None, "sm_90", KernelOptions(wgmma=False))
    assert "driver launcher" in wg_blocker(64, 128, BF, BF, None, "sm_90", KernelOptions(launcher="cuda.core"))
    assert "trace" in wg_blocker(64, 128, BF, BF, None, "sm_90", KernelOptions(fuse_merge=True))
    with pytest.raises(ValueError, match="wgmma=True"):
        takes_wg(64, 128, BF, BF, None, "sm_90", KernelOptions(wg_heads=32))
    # the default: groups of 64 (and 128) query heads per KV head, unless an option of the other kernel is given
    assert takes_wg(64, 128, BF, BF, None, "sm_90", KernelOptions())
    assert takes_wg(128, 64, F16, F16, None, "sm_90", KernelOptions(num_splits=3, pdl=False))
    assert not takes_wg(32, 128, BF, BF, None, "sm_90", KernelOptions())
    assert not takes_wg(64, 128, BF, BF, None, "sm_90", KernelOptions(heads_in_m=True))
    assert not takes_wg(64, 128, BF, BF, None, "sm_90", KernelOptions(stages=3))
    with pytest.raises(ValueError, match="drop slices, lazy_rescale"):
        takes_wg(64, 128, BF, BF, None, "sm_90", KernelOptions(wgmma=True, slices=2, lazy_rescale=False))


def test_heads_a_cta():
    assert [configs.decode_wg_heads(g) for g in (128, 64, 96, 32, 48, 16, 8, 1)] == [64, 64, 32, 32, 16, 16, 0, 0]


@pytest.mark.parametrize("kw", [dict(wg_heads=48), dict(wg_heads=True), dict(wg_stages=1), dict(wg_stages=9),
                                dict(wgmma=1), dict(wg_warpgroups=3)])
def test_options_checked(kw):
    with pytest.raises(ValueError, match="KernelOptions.w"):
        KernelOptions(**kw)


def test_instantiations_sm90_only():
    # the defaults: both 16-bit dtypes x head_dim 64 (one warpgroup, 4 steps) and 128 (two, 2 steps), 64 heads
    wg = [c for fn in configs.INSTANTIATION_SETS for c in fn("sm_90") if isinstance(c, configs.DecodeWgConfig)]
    assert sorted((c.dtype, c.head_dim, c.heads, c.stages, c.warpgroups) for c in wg) == [
        (BF, 64, 64, 4, 1), (BF, 128, 64, 2, 2), (F16, 64, 64, 4, 1), (F16, 128, 64, 2, 2)]
    assert not [c for fn in configs.INSTANTIATION_SETS for c in fn("sm_80") if isinstance(c, configs.DecodeWgConfig)]
    c = configs.DecodeWgConfig(F16, 64, 16, 3)
    assert dict(c.macros()) == {"KVP_QT": "0", "KVP_D": "64", "KVP_WG_HEADS": "16", "KVP_WG_STAGES": "3",
                                "KVP_WG_GROUPS": "1", "KVP_WG_SMEM": str(limits.decode_wg_smem(64, 16, 3))}
    assert configs.DecodeWgConfig(F16, 64, 16, 3, 2).threads == 256
    for bad in (dict(dtype=F8), dict(head_dim=256), dict(heads=8), dict(stages=1), dict(warpgroups=3)):
        with pytest.raises(ValueError):
            configs.DecodeWgConfig(**bad)
