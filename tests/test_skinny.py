"""The skinny GEMM / MoE pairs kernel's pure parts (no GPU): its one instantiation, the k-split choice, the
launch geometry, and argument checks that raise one clear ValueError before anything needs CUDA."""

import re

import pytest

from kvplan.kernels import build, configs
from kvplan.kernels import skinny_config as sc


def test_one_instantiation_per_arch_is_registered_for_the_compile_test():
    pairs = build.every_instantiation(configs.DEFAULT_ARCHS)
    mine = [(c, a) for c, a in pairs if isinstance(c, sc.SkinnyConfig)]
    assert sorted(a for _, a in mine) == sorted(configs.DEFAULT_ARCHS)


def test_kernel_names_match_the_source():
    source = (configs.HERE / sc.SkinnyConfig.source).read_text()
    defined = set(re.findall(r"SK_KERNEL\((kvp_\w+),", source)) | set(re.findall(r"void __launch_bounds__\(256\) (kvp_\w+)\(", source))
    assert defined == set(sc.SkinnyConfig.kernels)
    for dtype in sc.DTYPES:
        for fmt in ("bf16", "mxfp4"):
            for cols in (1, 8, 9, 16):
                assert sc.kernel_name(dtype, fmt, cols) in defined
        assert sc.combine_name(dtype) in defined


def test_first_kernel_has_no_static_shared_memory():
    """The loader gives the first kernel the device's whole opt-in shared memory as its dynamic limit."""
    assert sc.SkinnyConfig.kernels[0].startswith("kvp_skinny_combine")


def test_kernel_macros_are_the_python_limits():
    assert dict(sc.SkinnyConfig().macros()) == {"KVP_SK_WARPS": str(sc.WARPS), "KVP_SK_MAX_SLOTS": str(sc.MAX_SLOTS)}


def test_launch_geometry_by_hand():
    # plain tiles hold 32 rows, gated tiles 16 gate rows (+ their 16 up rows)
    assert sc.row_tiles(4096, gated=False) == 128
    assert sc.row_tiles(4097, gated=False) == 129
    assert sc.row_tiles(1408, gated=True) == 88
    # a step: 4 lanes x 8 values x 2 chunks (16-bit), 4 lanes x 32 values x 1 chunk (mxfp4)
    assert sc.k_steps(4096, "bf16", 8) == 64
    assert sc.k_steps(1000, "bf16", 3) == 16  # 15.6 -> 16: the last step is partial
    assert sc.k_steps(2880, "mxfp4", 16) == 23  # 22.5 -> 23


def test_ksplit_fills_the_gpu_only_when_needed():
    # 264 resident CTAs (132 SMs x 2); a wave of 132 or more streams at full speed
    assert sc.choose_ksplit(264, 512, 264) == 1  # one full wave
    assert sc.choose_ksplit(200, 512, 264) == 1  # 200 >= 132 in flight: nothing to gain
    assert sc.choose_ksplit(64, 512, 264) == 2  # 64/132 = 48%; 128/132 = 97%
    assert sc.choose_ksplit(20, 512, 264) == 6  # 20, 40, ... 120/132 = 91% at 6
    # 300: one wave + 36 that run as long as 132 would: 300/396 = 76%; 600: 2 waves + 72: 600/660 = 91%
    assert sc.choose_ksplit(300, 512, 264) == 2
    # k too short to give every warp of every split a step: at most steps // warps splits
    assert sc.choose_ksplit(64, 16, 264) == 2
    assert sc.choose_ksplit(20, 16, 264) == 2
    assert sc.choose_ksplit(64, 7, 264) == 1
    assert sc.choose_ksplit(0, 512, 264) == 1


@pytest.mark.parametrize("kwargs, field", [
    (dict(n=0), "n"), (dict(k=1001), "k must be a multiple of 8"), (dict(max_batch=17), "max_batch"),
    (dict(dtype="float32"), "dtype"), (dict(n=True), "n"),
])
def test_dense_checks(kwargs, field):
    args = dict(n=4096, k=4096, dtype="bfloat16", max_batch=8) | kwargs
    with pytest.raises(ValueError, match=field):
        sc.check_dense(**args)


@pytest.mark.parametrize("kwargs, field", [
    (dict(top_k=9), "top_k"), (dict(max_tokens=17), "max_tokens"), (dict(activation="relu"), "activation"),
    (dict(weight_format="mxfp4", dtype="float16"), "bfloat16"), (dict(weight_format="mxfp4", intermediate=1400),
                                                                 "intermediate must be a multiple of 32"),
    (dict(weight_format="fp16"), "does not match"), (dict(hidden=2044), "hidden must be a multiple of 8"),
    (dict(weight_format="int4"), "weight_format"), (dict(experts=-1), "experts"),
])
def test_moe_checks(kwargs, field):
    args = dict(experts=8, hidden=4096, intermediate=1408, top_k=2, max_tokens=16, dtype="bfloat16",
                weight_format="bf16", activation="silu") | kwargs
    with pytest.raises(ValueError, match=field):
        sc.check_moe(**args)


def test_moe_pair_limit():
    with pytest.raises(ValueError, match="pairs exceeds"):
        sc.check_moe(512, 2048, 512, 20, 16, "bfloat16", "bf16", "silu")
    sc.check_moe(512, 2048, 512, 10, 16, "bfloat16", "bf16", "silu")  # Qwen3-Next: 160 pairs


def test_plans_refuse_bad_arguments_before_needing_cuda():
    torch = pytest.importorskip("torch")
    from kvplan.kernels.skinny import moe_pairs_plan, skinny_gemm_plan

    with pytest.raises(ValueError, match="k must be a multiple of 8"):
        skinny_gemm_plan(4096, 4100, torch.bfloat16)
    with pytest.raises(ValueError, match="dtype"):
        skinny_gemm_plan(4096, 4096, torch.float32)
    with pytest.raises(ValueError, match="ksplit"):
        skinny_gemm_plan(4096, 4096, torch.bfloat16, ksplit=0)
    with pytest.raises(ValueError, match="max_tokens"):
        moe_pairs_plan(8, 4096, 7168, 2, max_tokens=32)


def test_moe_on_the_cpu_keeps_the_torch_path_and_says_so():
    pytest.importorskip("torch")
    from kvplan.gpu.ffn import GROUPED_LABEL, MoE
    from kvplan.gpu.model import Runtime
    from kvplan.gpu.weights import allocate_weights
    from kvplan.model import parse_config
    from kvplan.verify.arch import architecture
    from tiny_models import TINY

    name = next(n for n, raw in TINY.items() if raw.get("num_experts") or raw.get("num_local_experts")
                or raw.get("n_routed_experts"))
    spec = parse_config(TINY[name], name=name)
    arch = architecture(TINY[name], spec, 1)
    weights = allocate_weights(arch, "cpu")
    layer = next(x for x in arch.layers if x.ffn == "moe")
    prefix = f"layers.{layer.index}."
    rt = Runtime("cpu")
    moe = MoE(arch, {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}, rt)
    assert moe.pairs is None and rt.labels["moe"] == GROUPED_LABEL
