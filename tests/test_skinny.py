"""The skinny GEMM / MoE pairs kernel's pure parts (no GPU): its one instantiation, the k-split choice, the
launch geometry, and argument checks that raise one clear ValueError before anything needs CUDA."""

import re

import pytest

from kvplan.kernels import batch, configs
from kvplan.kernels import skinny_config as sc


def test_one_instantiation_per_arch_is_registered_for_the_compile_test():
    pairs = batch.every_instantiation(configs.DEFAULT_ARCHS)
    mine = [(c, a) for c, a in pairs if isinstance(c, sc.SkinnyConfig)]
    assert sorted(a for _, a in mine) == sorted(configs.DEFAULT_ARCHS)


def test_kernel_names_match_the_source():
    source = (configs.HERE / sc.SkinnyConfig.source).read_text()
    defined = set(re.findall(r"SK_(?:EXPERT_(?:ROWS_)?)?KERNEL\((kvp_\w+),", source)) | \
        set(re.findall(r"void __launch_bounds__\(256\) (kvp_\w+)\(", source))
    assert defined == set(sc.SkinnyConfig.ALL_KERNELS) == set(sc.SkinnyConfig().kernels)
    # the dense-only variant (KVP_SK_DENSE_ONLY) leaves out exactly the kernels between its #if and #endif
    guarded = source.split("#if !KVP_SK_DENSE_ONLY", 1)[1].split("#endif", 1)[0]
    left_out = set(re.findall(r"SK_EXPERT_(?:ROWS_)?KERNEL\((kvp_\w+),", guarded))
    assert set(sc.SkinnyConfig(dense_only=True).kernels) == defined - left_out and left_out
    for dtype in sc.DTYPES:
        for fmt in ("bf16", "mxfp4"):
            assert sc.kernel_name(dtype, fmt, 16, by_expert=True) in defined
            for cols in (1, 8, 9, 16):
                assert sc.kernel_name(dtype, fmt, cols) in defined
        assert sc.kernel_name(dtype, "bf16", 16, by_expert=True, rows=True) in defined
        assert sc.combine_name(dtype) in defined


def test_kernel_macros_are_the_python_limits():
    assert dict(sc.SkinnyConfig().macros()) == {"KVP_SK_WARPS": str(sc.WARPS), "KVP_SK_MAX_SLOTS": str(sc.MAX_SLOTS),
                                                "KVP_SK_ROW_TILES": str(sc.ROW_TILES),
                                                "KVP_SK_ROW_TILES_FP4": str(sc.ROW_TILES_FP4)}
    # the row-tile kernel's pairs per pass: 4 (mxfp4 8) 8-column MMA tiles
    assert (sc.row_pass("bf16"), sc.row_pass("fp8"), sc.row_pass("mxfp4")) == (32, 32, 64)


def test_variants_change_name_and_macros_only_when_not_default():
    default = sc.SkinnyConfig()
    assert default.name == "skinny_gemm"  # the default cubin's name and options are what they were
    assert sc.variant("bf16") == sc.variant("fp16", unroll=2) == sc.variant("mxfp4", unroll=1) == default
    u4 = sc.variant("bf16", unroll=4)
    assert u4.name == "skinny_gemm_u4"
    assert dict(u4.macros()) == dict(default.macros()) | {"KVP_SK_U": "4"}
    fp4 = sc.variant("mxfp4", unroll=2, min_blocks=1, prefetch=1)
    assert sc.variant("mxfp4", min_blocks=1) == default  # mxfp4's default launch bound is already 1
    fp4 = sc.variant("mxfp4", unroll=2, min_blocks=2, prefetch=1)
    assert fp4.name == "skinny_gemm_fu2_fmb2_pf1"
    assert dict(fp4.macros()) == dict(default.macros()) | {"KVP_SK_U_FP4": "2", "KVP_SK_MINB_FP4": "2",
                                                           "KVP_SK_PF": "1"}
    assert sc.variant("bf16", min_blocks=1).name == "skinny_gemm_mb1"
    assert sc.variant("mxfp4", expert_tiles=sc.EXPERT_TILES) == default
    assert dict(sc.variant("mxfp4", expert_tiles=4).macros()) == dict(default.macros()) | {"KVP_SK_EXPERT_TILES": "4"}
    # every sweep variant of the benchmark maps to a config (and the default to the default cubin)
    names = {v: sc.variant("bf16", o.get("unroll"), o.get("min_blocks"), o.get("prefetch")).name
             for v, o in sc.SWEEP.items()}
    assert names["u2"] == names["u2 fill"] == "skinny_gemm" and names["u8 mb1"] == "skinny_gemm_u8_mb1"


def test_source_defaults_are_the_python_defaults():
    """A macro left out must mean the Python default (the default config passes none of them)."""
    source = (configs.HERE / sc.SkinnyConfig.source).read_text()
    default = sc.SkinnyConfig()
    for macro, _, value, _ in default._extra():
        assert re.search(rf"#ifndef {macro}\n#define {macro} (\d+)\n", source).group(1) == str(value), macro


@pytest.mark.parametrize("kwargs, field", [
    (dict(unroll=3), "unroll"), (dict(unroll=0), "unroll"), (dict(unroll=True), "unroll"), (dict(unroll="4"), "unroll"),
    (dict(unroll=16), "unroll"), (dict(min_blocks=0), "min_blocks"), (dict(prefetch=-1), "prefetch"),
    (dict(expert_tiles=3), "expert_tiles"), (dict(expert_tiles=16), "expert_tiles"),
])
def test_variant_checks(kwargs, field):
    with pytest.raises(ValueError, match=f"^{field} must be one of 1, 2, 4, 8 or None" if field == "unroll"
                       else f"^{field} must be one of"):
        sc.variant("bf16", **kwargs)


def test_ksplit_rule_check():
    assert sc.check_ksplit_rule(None) == "wave"
    with pytest.raises(ValueError, match="ksplit_rule must be one of wave, fill"):
        sc.check_ksplit_rule("more")


def test_launch_geometry_by_hand():
    # plain tiles hold 32 rows, gated tiles 16 gate rows (+ their 16 up rows)
    assert sc.row_tiles(4096, gated=False) == 128
    assert sc.row_tiles(4097, gated=False) == 129
    assert sc.row_tiles(1408, gated=True) == 88
    # a step: 4 lanes x 8 values x 2 chunks (16-bit), 4 lanes x 32 values x 1 chunk (mxfp4)
    assert sc.k_steps(4096, "bf16", 8) == 64
    assert sc.k_steps(1000, "bf16", 3) == 16  # 15.6 -> 16: the last step is partial
    assert sc.k_steps(2880, "mxfp4", 16) == 23  # 22.5 -> 23
    # the unroll the plan compiled: 4 lanes x 8 values x 4 chunks = 128 values a step; mxfp4 x 2 = 256
    assert sc.k_steps(4096, "bf16", 8, unroll=4) == 32
    assert sc.k_steps(1000, "fp16", 3, unroll=4) == 8  # 7.8 -> 8
    assert sc.k_steps(4096, "bf16", 8, unroll=8) == 16
    assert sc.k_steps(2880, "mxfp4", 16, unroll=2) == 12  # 11.25 -> 12


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


def test_ksplit_fill_rule_by_hand():
    # "fill": the largest split that still fits one resident wave of 264 (132 SMs x 2)
    assert sc.choose_ksplit(128, 64, 264, "fill") == 2  # Llama-3.1-8B o: 256 <= 264 < 384
    assert sc.choose_ksplit(64, 128, 264, "fill") == 4  # Llama-3.2-1B down: 256
    assert sc.choose_ksplit(96, 32, 264, "fill") == 2  # 192; 288 would start a second wave
    assert sc.choose_ksplit(192, 64, 264, "fill") == 1  # one wave already
    assert sc.choose_ksplit(896, 64, 264, "fill") == 1  # several waves: never split
    assert sc.choose_ksplit(64, 16, 264, "fill") == 2  # 16 steps / 8 warps: at most 2
    assert sc.choose_ksplit(20, 512, 132, "fill") == 6  # one CTA per SM (u8 mb1): 120 <= 132
    assert sc.choose_ksplit(0, 512, 264, "fill") == 1


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


def test_fp8_kernels_and_steps_by_hand():
    """fp8 weights (block-scaled e4m3): 16 values a 16-byte chunk, the 16-bit kernels' unroll (2 chunks: 128 values, one
    scale block, a step); pair slots and by expert, the row-tile kernel when asked (expert_rows=True)."""
    assert [sc.kernel_name("bfloat16", "fp8", c) for c in (1, 8, 9, 16)] == ["kvp_skinny_fp8_c8"] * 2 + \
        ["kvp_skinny_fp8_c16"] * 2
    assert sc.kernel_name("bfloat16", "fp8", 16, by_expert=True) == "kvp_skinny_fp8_e"
    assert sc.kernel_name("bfloat16", "mxfp4", 16, by_expert=True, rows=True) == "kvp_skinny_mxfp4_er"
    assert sc.kernel_name("bfloat16", "fp8", 16, by_expert=True, rows=True) == "kvp_skinny_fp8_er"
    assert sc.k_steps(7168, "fp8", 8) == 56  # DeepSeek-V3's hidden: 56 blocks of 128
    assert sc.k_steps(2048, "fp8", 16) == 16
    assert sc.k_steps(7168, "fp8", 8, unroll=1) == 112 and sc.k_steps(7168, "fp8", 8, unroll=4) == 28
    assert sc.SkinnyConfig().unroll_for("fp8") == sc.UNROLL["16bit"]
    assert sc.variant("fp8") == sc.SkinnyConfig() and sc.variant("fp8", unroll=4).name == "skinny_gemm_u4"


@pytest.mark.parametrize("kwargs, field", [
    (dict(dtype="float16"), "fp8 experts take bfloat16 activations"),
    (dict(hidden=7104), "hidden must be a multiple of 128 for fp8"),
    (dict(intermediate=1344), "intermediate must be a multiple of 128 for fp8"),
])
def test_moe_checks_fp8(kwargs, field):
    args = dict(experts=256, hidden=7168, intermediate=2048, top_k=8, max_tokens=16, dtype="bfloat16",
                weight_format="fp8", activation="silu") | kwargs
    with pytest.raises(ValueError, match=field):
        sc.check_moe(**args)


def test_moe_and_dense_checks_take_deepseek_fp8_shapes():
    sc.check_moe(256, 7168, 2048, 8, 16, "bfloat16", "fp8", "silu")  # DeepSeek-V3's routed experts
    sc.check_moe(8, 512, 384, 2, 16, "bfloat16", "fp8", "relu2", gated=False)
    sc.check_dense(2112, 7168, "bfloat16", 16, "fp8")  # q_a + kv_a: 16.5 row blocks
    sc.check_dense(7168, 2048, "bfloat16", 16, "fp8")
    sc.check_dense(4096, 4104, "bfloat16", 8)  # 16-bit: k a multiple of 8 only


@pytest.mark.parametrize("kwargs, field", [
    (dict(dtype="float16"), "fp8 weights take bfloat16 activations"), (dict(k=7000), "k must be a multiple of 128"),
    (dict(weight_format="mxfp4"), "weight_format of a dense plan"), (dict(weight_format="fp16"), "does not match"),
])
def test_dense_checks_fp8(kwargs, field):
    args = dict(n=2112, k=7168, dtype="bfloat16", max_batch=8, weight_format="fp8") | kwargs
    with pytest.raises(ValueError, match=field):
        sc.check_dense(**args)


def test_fp8_weight_pairs_are_checked_by_name():
    """(values, scales) of fp8 weights: the argument's name and the part that is wrong (CPU tensors: shapes and dtypes
    are checked before the device)."""
    torch = pytest.importorskip("torch")
    from kvplan.kernels.skinny import _fp8_weights

    q = torch.zeros(4, 256, 512).to(torch.float8_e4m3fn)
    s = torch.ones(4, 2, 4)
    with pytest.raises(ValueError, match=r"^w13 must be \(values, scales\) for fp8 weights"):
        _fp8_weights(torch, "w13", q, (4,), 256, 512, 0)
    with pytest.raises(ValueError, match=r"^w13 values must be a float8_e4m3fn tensor of shape \(4, 256, 512\), "
                                         r"got float8_e4m3fn \(4, 128, 512\)"):
        _fp8_weights(torch, "w13", (q[:, :128], s), (4,), 256, 512, 0)
    with pytest.raises(ValueError, match="^w2 values must be a float8_e4m3fn tensor .* got bfloat16"):
        _fp8_weights(torch, "w2", (q.to(torch.bfloat16), s), (4,), 256, 512, 0)
    for bad in (torch.ones(4, 2, 5), torch.ones(4, 256, 4), torch.ones(4, 2, 4, dtype=torch.float64), None):
        with pytest.raises(ValueError, match=r"^w2 scales must be a float32 tensor of shape \(4, 2, 4\), got"):
            _fp8_weights(torch, "w2", (q, bad), (4,), 256, 512, 0)
    # the last row block may be partial: 2112 rows have ceil(2112 / 128) = 17 scale rows
    q = torch.zeros(2112, 7168).to(torch.float8_e4m3fn)
    with pytest.raises(ValueError, match=r"^w scales must be a float32 tensor of shape \(17, 56\), got float32 "
                                         r"\(16, 56\)"):
        _fp8_weights(torch, "w", (q, torch.ones(16, 56)), (), 2112, 7168, 0)
    with pytest.raises(ValueError, match="^w values must be on cuda:0"):  # right shapes: then where they are
        _fp8_weights(torch, "w", (q, torch.ones(17, 56)), (), 2112, 7168, 0)


def test_dequantize_block_fp8_by_hand():
    torch = pytest.importorskip("torch")
    from kvplan.kernels.skinny import dequantize_block_fp8

    # 2 x 256: one row block, two column blocks with scales 0.5 and 3
    vals = torch.tensor([[1.0, -2.0, 0.25, 448.0], [-0.5, 3.0, -448.0, 0.0]])
    q = torch.zeros(2, 256)
    q[:, [0, 127, 128, 255]] = vals
    q = q.to(torch.float8_e4m3fn)
    w = dequantize_block_fp8(q, torch.tensor([[0.5, 3.0]]))
    assert w.dtype == torch.float64 and w.shape == (2, 256)
    assert w[:, [0, 127, 128, 255]].tolist() == [[0.5, -1.0, 0.75, 1344.0], [-0.25, 1.5, -1344.0, 0.0]]
    assert int((w != 0).sum()) == 7
    # a subnormal e4m3 value (2^-9, the smallest) is kept, not flushed
    assert dequantize_block_fp8(torch.tensor([[2.0 ** -9]]).to(torch.float8_e4m3fn), torch.tensor([[4.0]])).item() \
        == 2.0 ** -7
    # partial last blocks are cropped: 3 x 3 values in 2 x 2 blocks of 2 (scales [[1, 2], [3, 4]])
    q = torch.arange(1.0, 10.0).reshape(3, 3).to(torch.float8_e4m3fn)
    w = dequantize_block_fp8(q, torch.tensor([[1.0, 2.0], [3.0, 4.0]]), block=2, dtype=torch.float32)
    assert w.dtype == torch.float32
    assert w.tolist() == [[1.0, 2.0, 6.0], [4.0, 5.0, 12.0], [21.0, 24.0, 36.0]]
    # batched over experts: [E, rows, cols] with [E, row blocks, column blocks]
    q = torch.ones(2, 130, 128).to(torch.float8_e4m3fn)
    s = torch.tensor([[[1.0], [2.0]], [[3.0], [4.0]]])
    w = dequantize_block_fp8(q, s)
    assert w.shape == (2, 130, 128)
    assert (w[0, 127, 0], w[0, 128, 5], w[1, 0, 0], w[1, 129, 127]) == (1, 2, 3, 4)


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
    with pytest.raises(ValueError, match="unroll must be one of 1, 2, 4, 8 or None, got 3"):
        skinny_gemm_plan(4096, 4096, torch.bfloat16, unroll=3)
    with pytest.raises(ValueError, match="unroll must be one of"):
        moe_pairs_plan(8, 4096, 7168, 2, max_tokens=16, weight_format="mxfp4", unroll=5)
    with pytest.raises(ValueError, match="ksplit_rule"):
        skinny_gemm_plan(4096, 4096, torch.bfloat16, ksplit_rule="all")
    with pytest.raises(ValueError, match="fp8 weights take bfloat16 activations"):
        skinny_gemm_plan(2112, 7168, torch.float16, weight_format="fp8")
    with pytest.raises(ValueError, match="k must be a multiple of 128 for fp8"):
        skinny_gemm_plan(2112, 7104, torch.bfloat16, weight_format="fp8")
    with pytest.raises(ValueError, match="fp8 experts take bfloat16 activations"):
        moe_pairs_plan(8, 512, 256, 2, dtype=torch.float16, weight_format="fp8")
    with pytest.raises(ValueError, match="hidden must be a multiple of 128 for fp8"):
        moe_pairs_plan(8, 520, 256, 2, weight_format="fp8")


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


def test_pairs_by_expert_sorts_and_counts_on_cpu():
    """The by-expert launch's pair order and per-expert ranges (torch on CPU; the kernels read them on the GPU)."""
    torch = pytest.importorskip("torch")
    from kvplan.kernels.skinny import pairs_by_expert

    ids = torch.tensor([[3, 1], [1, 3], [0, 7], [9, -1], [3, 0]])  # 8 experts: 9 and -1 are out of range
    order, offs = pairs_by_expert(torch, ids, 8)
    assert order.dtype == torch.int32 and offs.dtype == torch.int32
    assert offs.tolist() == [0, 2, 4, 4, 7, 7, 7, 7, 8, 10]  # experts 0..7, then the two out-of-range pairs
    flat = ids.reshape(-1).tolist()
    assert [flat[p] for p in order[:8].tolist()] == [0, 0, 1, 1, 3, 3, 3, 7]
    assert order[:8].tolist() == [4, 9, 1, 2, 0, 3, 8, 5]  # stable: pairs of one expert in token order
    assert sorted(order[8:].tolist()) == [6, 7]
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 64, (300, 6), generator=gen)
    order, offs = pairs_by_expert(torch, ids, 64)
    counts = torch.bincount(ids.reshape(-1), minlength=64)
    assert torch.equal((offs[1:65] - offs[:64]).long(), counts) and int(offs[-1]) == 1800
    assert sorted(order.tolist()) == list(range(1800))


def test_moe_kernel_policy_above_the_pair_slots():
    """Which MoE calls the bundled kernel takes (ffn.MoE._kernel_takes), on verify's max-concurrency batches: with the
    row-tile kernel on, by expert up to 24 pairs per expert on average (Qwen3-Next's 440 tokens x 11 pairs over 513
    experts, 9.4 each, its joined shared expert included), grouped GEMMs for DeepSeek-V2-Lite (408 x 8 over 66: 49
    each) and Mixtral (166 x 2 over 8: 41); without it pair slots up to 16 tokens only; mxfp4 experts below
    MXFP4_GROUPED_TOKENS (always without the dequantisation kernel)."""
    torch = pytest.importorskip("torch")
    import types

    from kvplan.gpu import ffn

    def takes(experts, tokens, pairs, mxfp4=False, dtype=torch.bfloat16, rows=True, joined=0, dequant=None):
        moe = object.__new__(ffn.MoE)
        moe.pairs = types.SimpleNamespace(max_tokens=16, experts=experts, dtype=torch.bfloat16, expert_rows=rows)
        moe.mxfp4, moe.fp8, moe.joined, moe.mx_dequant = mxfp4, False, joined, dequant
        return moe._kernel_takes(torch.empty(tokens, 8, dtype=dtype), torch.empty(tokens, pairs))

    assert takes(513, 300, 11) and takes(513, 16, 11) and takes(66, 16, 8)
    # a joined shared expert sees every token; its passes are spread over CTAs, so the same limit holds
    assert takes(513, 440, 11, joined=1) and takes(513, 1119, 11, joined=1) and not takes(513, 1120, 11, joined=1)
    assert not takes(66, 408, 8) and not takes(8, 166, 2)
    assert takes(66, 128, 8) and takes(66, 198, 8) and not takes(66, 199, 8)  # 24 pairs per expert at most
    assert takes(8, 96, 2) and not takes(8, 97, 2)  # Mixtral: 8 experts x 24 pairs
    assert not takes(513, 440, 11, rows=False) and takes(513, 16, 11, rows=False)  # the row-tile kernel off
    assert takes(32, 599, 4, mxfp4=True, rows=False) and takes(32, 8192, 4, mxfp4=True, rows=False)
    # with the mxfp4 -> bf16 kernel: grouped GEMMs from 448 tokens (gpt-oss-20b's 599 at max concurrency on an H200,
    # prefill); its 295 at max concurrency on an 80 GB H100 by expert
    kernel = object()
    assert takes(32, 17, 4, mxfp4=True, dequant=kernel) and takes(32, 447, 4, mxfp4=True, dequant=kernel)
    assert takes(32, 295, 4, mxfp4=True, dequant=kernel)
    assert not takes(32, 448, 4, mxfp4=True, dequant=kernel) and not takes(32, 599, 4, mxfp4=True, dequant=kernel)
    assert not takes(513, 4, 11, dtype=torch.float32)  # activations the plan was not built for


def test_moe_label_states_the_by_expert_limits():
    """verify's label for the routed experts names the row-tile kernel's limits, the joined one where it applies."""
    pytest.importorskip("torch")
    import types

    from kvplan.gpu import ffn

    def label(joined, rows=True):
        moe = object.__new__(ffn.MoE)
        moe.pairs = types.SimpleNamespace(max_tokens=16, expert_rows=rows)
        moe.mxfp4, moe.fp8, moe.joined, moe.pairs_refused, moe.one_token = False, False, joined, None, None
        return moe.label()

    assert "average <= 24, beyond that" in label(0) and "joined" not in label(0)
    assert "the joined shared expert's passes spread over CTAs that start first" in label(1)
    assert "row tile" not in label(0, rows=False) and "<= 16 tokens" in label(0, rows=False)


def test_moe_label_states_the_mxfp4_paths():
    """gpt-oss: by expert on the packed bytes, and from MXFP4_GROUPED_TOKENS on dequantised + grouped GEMMs where the
    dequantisation kernel loaded (only the by-expert sentence where it did not)."""
    pytest.importorskip("torch")
    import types

    from kvplan.gpu import ffn

    def label(dequant):
        moe = object.__new__(ffn.MoE)
        moe.pairs = types.SimpleNamespace(max_tokens=16, expert_rows=False)
        moe.mxfp4, moe.fp8, moe.joined, moe.pairs_refused, moe.mx_dequant = True, False, 0, None, dequant
        moe.one_token = None
        return moe.label()

    assert "packed bytes read once per 1,024 tokens" in label(None) and "grouped GEMMs" not in label(None)
    assert "from 448 tokens on every expert dequantised to bf16 by the bundled mxfp4 kernel" in label(object())


def test_one_token_gemvs_take_16bit_experts_of_at_least_1536_values_a_rank(monkeypatch):
    """At one token the streaming GEMVs run 16-bit experts whose per-rank intermediate is >= ONE_TOKEN_MIN_INTER
    (GLM-4.7-Flash 1,536, Nemotron-3-Nano 1,856, Mixtral at tp 2 7,168: faster on the H200); narrower ones
    (Qwen3-Next at tp 2 256, DeepSeek-V2-Lite 1,408), fp8 and mxfp4 experts keep the pairs kernel. The label says
    which; a plan that cannot be made leaves the pairs kernel."""
    torch = pytest.importorskip("torch")
    import types

    from kvplan.gpu import ffn
    from kvplan.kernels import moe_one_token

    made = []

    def fake_plan(experts, hidden, inter, pairs, dtype, **kw):
        made.append((experts, hidden, inter, pairs, kw.get("weight_format", "16bit"), kw["gated"]))
        if hidden == 0:
            raise ValueError("refused")
        return types.SimpleNamespace(dtype=dtype)

    monkeypatch.setattr(moe_one_token, "one_token_moe_plan", fake_plan)

    def plan(inter, hidden=2048, fmt=None, experts=64, top_k=4, joined=1, gated=True):
        moe = object.__new__(ffn.MoE)
        moe.arch = types.SimpleNamespace(experts=experts, top_k=top_k, hidden=hidden, activation="silu",
                                         gated_mlp=gated)
        moe.w = {"router": torch.empty(experts, 8, dtype=torch.bfloat16), "w2": torch.empty(1, hidden, inter)}
        moe.rt = types.SimpleNamespace()
        moe.mxfp4, moe.fp8, moe.joined = fmt == "mxfp4", fmt == "fp8", joined
        return moe._one_token_plan()

    assert plan(1536) is not None and made[-1] == (65, 2048, 1536, 5, "16bit", True)
    assert plan(1856, hidden=2688, experts=128, top_k=6, gated=False) is not None and made[-1][-1] is False
    n = len(made)
    assert plan(1408) is None and plan(256) is None and plan(1536, fmt="fp8") is None
    assert plan(2880, fmt="mxfp4") is None and len(made) == n  # none of these asked for a plan
    assert plan(1536, hidden=0) is None  # refused: the pairs kernel
    moe = object.__new__(ffn.MoE)
    moe.pairs = types.SimpleNamespace(max_tokens=16, expert_rows=True)
    moe.mxfp4, moe.fp8, moe.joined, moe.pairs_refused, moe.one_token = False, False, 0, None, object()
    assert "at one token the streaming GEMV over the token's experts" in moe.label()


def test_moe_label_states_the_fp8_by_expert_kernel():
    """DeepSeek-V3: fp8 experts above the pair slots take the row-tile kernel by default and the label says so; asked
    for the k-split kernel (expert_rows=False), it names that one's chunks of tokens."""
    pytest.importorskip("torch")
    import types

    from kvplan.gpu import ffn

    def label(rows):
        moe = object.__new__(ffn.MoE)
        moe.pairs = types.SimpleNamespace(max_tokens=16, expert_rows=rows)
        moe.mxfp4, moe.fp8, moe.joined, moe.pairs_refused, moe.mx_dequant = False, True, 0, None, None
        moe.one_token = None
        moe._fp8_dequant_ok = lambda x=None: False
        return moe.label()

    assert "a row tile per warp, each expert's e4m3 bytes read once per 32 pairs" in label(True)
    assert "read once per 1,024 tokens and its pairs taken 64 at a time" in label(False)


def test_moe_label_states_the_mxfp4_by_expert_kernel():
    """gpt-oss: mxfp4 experts above the pair slots take the row-tile kernel by default (session 64) and the label
    says so, with the dequantised grouped GEMMs from MXFP4_GROUPED_TOKENS on; the k-split kernel when asked."""
    pytest.importorskip("torch")
    import types

    from kvplan.gpu import ffn

    def label(rows):
        moe = object.__new__(ffn.MoE)
        moe.pairs = types.SimpleNamespace(max_tokens=16, expert_rows=rows)
        moe.mxfp4, moe.fp8, moe.joined, moe.pairs_refused, moe.mx_dequant = True, False, 0, None, object()
        moe.one_token = None
        return moe.label()

    assert ("mxfp4 as packed bytes dequantised in registers, activation fused, weighted sum in a third launch; above "
            "that the same kernel by expert: the pairs sorted by expert, a row tile per warp, each expert's packed "
            "bytes read once per 64 pairs; from 448 tokens on every expert dequantised") in label(True)
    assert "read once per 1,024 tokens and its pairs taken 64 at a time" in label(False)


def test_pair_slot_down_launches_take_fewer_warps_when_k_is_short():
    """A warp step is 4 lanes x 16-byte chunks x KVP_SK_U (2) chunks: 128 fp8 values, 64 16-bit ones, 128 mxfp4
    ones (one chunk a lane). DeepSeek-V3's experts at tp 8 (2,048 / 8 = 256 values) give two steps, so the down
    launch takes two warps a CTA instead of six idle ones; Qwen3-Next's at tp 2 (512 / 2 in bf16) four; k long
    enough for eight steps keeps eight (DeepSeek-V2-Lite's 1,408, gpt-oss's 2,880 mxfp4)."""
    assert sc.pair_warps(256, "fp8") == 2
    assert sc.pair_warps(128, "fp8") == 1
    assert sc.pair_warps(384, "fp8") == 2  # three steps: the largest power of two under them
    assert sc.pair_warps(256, "bf16") == 4
    assert sc.pair_warps(1408, "bf16") == sc.WARPS
    assert sc.pair_warps(2880, "mxfp4") == sc.WARPS
    cfg = sc.SkinnyConfig(warps=2)
    assert cfg.threads == 64 and cfg.name == "skinny_gemm_w2" and ("KVP_SK_WARPS", "2") in cfg.macros()
    assert sc.SkinnyConfig().name == "skinny_gemm" and ("KVP_SK_WARPS", "8") in sc.SkinnyConfig().macros()
    # with two warps a k of 16 steps may split up to eight ways (a step for each warp), with eight two ways
    assert sc.choose_ksplit(1, 16, 264, "fill", warps=2) == 8 and sc.choose_ksplit(1, 16, 264, "fill") == 2
