"""Which MLA kernel a plan takes, decided without a GPU (paged_mla.mla_launch): the warpgroup-MMA path on sm_90 (bf16
at 16 heads a CTA with the early refill, where pages hold 64+ tokens), heads in M for 16 bf16 heads in smaller pages,
head tiles on older GPUs; options that only one path has keep the others away."""

import pytest

from kvplan.kernels import configs, limits
from kvplan.kernels.paged_mla import mla_launch

H200_SMEM = 232448  # cudaDevAttrMaxSharedMemoryPerBlockOptin on sm_90


def launch(kvn="bfloat16", heads=16, arch="sm_90", launcher="driver", **kw):
    return mla_launch(kvn, heads, arch, H200_SMEM, launcher, **kw)


@pytest.mark.parametrize("kvn,heads,arch,path", [
    ("bfloat16", 16, "sm_90", "wgmma early"), ("bfloat16", 8, "sm_90", "wgmma early"),
    ("bfloat16", 17, "sm_90", "wgmma"), ("bfloat16", 128, "sm_90", "wgmma"), ("bfloat16", 40, "sm_90", "wgmma"),
    ("float8_e4m3fn", 16, "sm_90", "wgmma e4m3"), ("float8_e4m3fn", 8, "sm_90", "wgmma e4m3"),
    ("float8_e4m3fn", 128, "sm_90", "wgmma e4m3"), ("float8_e4m3fn", 40, "sm_90", "wgmma e4m3"),
    ("float8_e4m3fn", 16, "sm_89", "head tiles"), ("float8_e4m3fn", 128, "sm_89", "head tiles"),
    ("bfloat16", 128, "sm_80", "head tiles"), ("bfloat16", 16, "sm_89", "head tiles"),
])
def test_default_path(kvn, heads, arch, path):
    ln = launch(kvn, heads, arch)
    got = "wgmma" if ln.wgmma else "heads in M" if ln.heads_in_m else "head tiles"
    assert got + (" e4m3" if ln.wgmma and ln.config.e4m3_mma else "") + \
        (" early" if ln.wgmma and ln.config.early_free else "") == path


@pytest.mark.parametrize("block_size,wgmma", [(16, False), (32, False), (64, True), (128, True)])
def test_16_bf16_heads_take_the_warpgroup_path_on_pages_of_a_whole_step(block_size, wgmma):
    """bf16 at 16 heads: the warpgroup-MMA path (one copy per 64-dim block of a 64-token step) where a page holds a
    whole step, heads in M on smaller pages (the warpgroup kernel would copy each (page, block) on its own); more
    heads and fp8 latents take the warpgroup path on every page size."""
    ln = launch(heads=16, block_size=block_size)
    assert ln.wgmma == wgmma and ln.heads_in_m == (not wgmma)
    assert launch(heads=128, block_size=block_size).wgmma and launch("float8_e4m3fn", 16, block_size=block_size).wgmma


def test_wgmma_launch_shape():
    """16 heads a CTA, 32 above 16; two 72 KB bf16 stages (16 heads: 169,984 bytes with q's 18 KB, P, barriers and
    the alignment slack; 32 heads: 191,488 with q's 36 KB and 2 KB of barriers and buffers), three 36 KB raw fp8
    stages plus the 72 KB operand tile (206,848; 32 heads 228,352, under the 232,448 an sm_90 CTA may have)."""
    bf, f8 = launch(heads=16, wgmma=True, early_free=0), launch("float8_e4m3fn", 16, wgmma=True, e4m3_mma=False)
    assert (bf.head_group, bf.step_tokens, bf.stages, bf.smem) == (16, 64, None, 169984)
    assert (f8.head_group, f8.step_tokens, f8.smem) == (16, 64, 206848)
    assert (launch(heads=128).head_group, launch(heads=128).smem) == (32, 191488)
    assert launch("float8_e4m3fn", 40, wgmma=True, head_group=32).smem == 228352
    assert launch(heads=128, head_group=16).head_group == 16
    assert isinstance(bf.config, configs.MLAWgConfig) and bf.config.arch_suffix == "a"
    assert launch(heads=128).config.name == "mla_wg_kvbfloat16_h32"
    assert f8.config.name == "mla_wg_kvfloat8_e4m3fn" and bf.tma
    assert max(bf.smem, f8.smem) <= H200_SMEM


def test_e4m3_mma_launch_shape():
    """fp8 latents into e4m3 MMAs: 16 heads a CTA, five raw 36 KB stages and no operand tile; q and P twice (hi and
    lo parts) in 64-byte rows: 1 KB barriers + 18 KB q + two 2 KB P buffers + 180 KB stages + 1 KB alignment
    slack; two warpgroups."""
    ln = launch("float8_e4m3fn", 16, wgmma=True, e4m3_mma=True)
    widened = launch("float8_e4m3fn", 16, wgmma=True, e4m3_mma=False)
    assert ln.config.e4m3_mma and ln.config.name == "mla_wg_kvfloat8_e4m3fn_e4m3mma"
    assert ln.smem == 1024 + 9 * 32 * 64 + 2 * 32 * 64 + 5 * 9 * 64 * 64 + 1024 == 208896
    assert (ln.config.threads, widened.config.threads) == (256, 128)  # scores + values warpgroups; one
    assert ("KVP_MLA_F8MMA", "1") in ln.config.macros()
    assert ("KVP_MLA_F8MMA", "1") not in widened.config.macros()
    assert launch("float8_e4m3fn", 16, wgmma=True).config == ln.config  # the default at 16 fp8 heads
    with pytest.raises(ValueError, match="16 heads"):
        configs.MLAWgConfig("bfloat16", 16, e4m3_mma=True)


def test_early_free_is_the_default_at_16_bf16_heads_a_cta():
    """PV in 2 commit groups by default for bf16 at 16 heads a CTA (its own cubin, the macro KVP_MLA_EARLY, the same
    shared memory), none at 32 heads a CTA or with fp8 latents; 4 groups and none on request."""
    ln = launch(heads=16)
    assert ln.config.name == "mla_wg_kvbfloat16_early2" and ("KVP_MLA_EARLY", "2") in ln.config.macros()
    assert ln.smem == launch(heads=16, wgmma=True, early_free=0).smem
    assert launch(heads=16, wgmma=True, early_free=4).config.name == "mla_wg_kvbfloat16_early4"
    assert launch(heads=40, early_free=2).config.name == "mla_wg_kvbfloat16_h32_early2"
    assert launch(heads=128).config.early_free == 0 and launch(heads=128, head_group=16).config.early_free == 2
    assert launch("float8_e4m3fn", 16).config.early_free == 0
    with pytest.raises(ValueError, match="early_free"):
        configs.MLAWgConfig("float8_e4m3fn", 16, early_free=2)


def test_options_of_the_other_paths_keep_the_default_off_wgmma():
    assert not launch(heads=128, stages=3).wgmma
    assert not launch(heads=128, launcher="cuda.core").wgmma
    assert launch(heads=128, tokens=16).config.tokens == 16
    assert not launch(heads=128, wgmma=False).wgmma
    assert not launch("float8_e4m3fn", 16, stages=3).wgmma  # (fp8 16 heads: the head tiles' stages)


def test_three_stages_are_opt_in_and_fill_an_sm90_cta_exactly():
    """wg_stages=3 (bf16 at 16 heads a CTA, pages of 64+ tokens): its own cubin (KVP_MLA_STAGES=3), no early refill
    unless asked, and shared memory of 1 KB barriers and buffers + 18 KB q + three 64 KB value stages + two 8 KB rope
    slots (P in the step's slot, no alignment slack): the sm_90 opt-in limit exactly. Never the default."""
    ln = launch(heads=16, wg_stages=3)
    assert ln.wgmma and ln.config.stages == 3 and ln.config.early_free == 0
    assert ln.config.name == "mla_wg_kvbfloat16_s3" and ("KVP_MLA_STAGES", "3") in ln.config.macros()
    assert ln.smem == 1024 + 9 * 16 * 128 + 3 * 8 * 64 * 128 + 2 * 64 * 128 == limits.SM90_SMEM_OPTIN == H200_SMEM
    assert ("KVP_MLA_WG_SMEM", str(H200_SMEM)) in ln.config.macros()
    assert launch(heads=16, wg_stages=3, early_free=2).config.name == "mla_wg_kvbfloat16_early2_s3"
    assert launch(heads=40, wg_stages=3, head_group=16, block_size=128).config.stages == 3
    for kw in (dict(), dict(wg_stages=2), dict(wg_stages=None), dict(wgmma=True)):
        ln2 = launch(heads=16, **kw)
        assert ln2.config.stages == 2 and ln2.config.early_free == 2 and ln2.smem == 169984
        assert not any(name == "KVP_MLA_STAGES" for name, _ in ln2.config.macros())
    for fn in configs.INSTANTIATION_SETS:  # CI's default set has none (tests/test_kernel_compile.py compiles it)
        assert not any(getattr(c, "stages", 2) == 3 and isinstance(c, configs.MLAWgConfig) for c in fn("sm_90"))
    with pytest.raises(ValueError, match="three stages"):
        limits.mla_wg_smem("float8_e4m3fn", 16, stages=3)
    with pytest.raises(ValueError, match="wg_stages"):
        configs.MLAWgConfig("bfloat16", 32, stages=3)
    with pytest.raises(ValueError, match="wg_stages=3 needs 232448 bytes of shared memory, the device has 200000"):
        mla_launch("bfloat16", 16, "sm_90", 200000, wg_stages=3)


@pytest.mark.parametrize("kw,needle", [
    (dict(arch="sm_80", wgmma=True), "sm_90 GPU"), (dict(launcher="cuda.core", wgmma=True), "driver launcher"),
    (dict(wgmma=True, tokens=32), "drop tokens"), (dict(wgmma=True, stages=3, tma=True), "drop stages, tma"),
    (dict(heads=32, heads_in_m=True), "heads_in_m needs"), (dict(tokens=48), "tokens must be one of"),
    (dict(heads=128, wgmma=False, stages=9), "stages must be"), (dict(heads=128, head_group=64), "head_group must"),
    (dict(heads=16, head_group=16, wgmma=False), "are options of the wgmma path"),
    (dict(kvn="float8_e4m3fn", wgmma=False, e4m3_mma=True), "are options of the wgmma path"),
    (dict(wgmma=True, e4m3_mma=True), "e4m3_mma needs fp8"),
    (dict(kvn="float8_e4m3fn", heads=40, wgmma=True, head_group=32, e4m3_mma=True), "e4m3_mma needs fp8"),
    (dict(wgmma=True, early_free=3), "early_free must be"), (dict(wgmma=True, early_free=True), "early_free must"),
    (dict(kvn="float8_e4m3fn", wgmma=True, early_free=2), "early_free must"),
    (dict(heads=128, wgmma=False, early_free=2), "are options of the wgmma path"),
    (dict(wg_stages=4), "wg_stages must be"), (dict(wg_stages=True), "wg_stages must be"),
    (dict(kvn="float8_e4m3fn", wg_stages=3), "wg_stages=3 needs bf16"),
    (dict(kvn="float8_e4m3fn", wg_stages=3, e4m3_mma=False), "wg_stages=3 needs bf16"),
    (dict(heads=40, wg_stages=3), "wg_stages=3 needs .* 16 heads"),
    (dict(heads=128, head_group=32, wg_stages=3), "wg_stages=3 needs"),
    (dict(wgmma=True, block_size=32, wg_stages=3), "pages of 64"),
    (dict(block_size=16, wg_stages=3), "wg_stages are options of the wgmma path"),
    (dict(wgmma=False, wg_stages=3), "wg_stages are options of the wgmma path"),
    (dict(heads=128, stages=3, wg_stages=3), "wg_stages are options of the wgmma path"),
])
def test_refusals_name_the_option(kw, needle):
    with pytest.raises(ValueError, match=needle):
        launch(**kw)


def test_wgmma_configs_compile_for_hopper_only():
    """CI compiles the two warpgroup-MMA instantiations for sm_90 (as sm_90a) and none for older GPUs."""
    names = {c.name for fn in configs.INSTANTIATION_SETS for c in fn("sm_90")}
    assert {"mla_wg_kvbfloat16_early2", "mla_wg_kvfloat8_e4m3fn", "mla_wg_kvbfloat16_h32",
            "mla_wg_kvfloat8_e4m3fn_h32", "mla_wg_kvfloat8_e4m3fn_e4m3mma"} <= names
    assert not any(c.name.startswith("mla_wg") for fn in configs.INSTANTIATION_SETS for c in fn("sm_80"))
    assert limits.MLA_WG_HEAD_GROUPS == (16, 32)


def test_wgmma_compiles_for_the_arch_specific_target():
    from kvplan.kernels import build

    assert build.target_arch(configs.MLAWgConfig(), "sm_90") == "sm_90a"
    assert build.target_arch(configs.MLAConfig("bfloat16", 16), "sm_90") == "sm_90"
