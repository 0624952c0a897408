"""kvplan verify on ERNIE-4.5 (model_type ernie4_5_moe, and the dense ernie4_5) as vLLM 0.32.0 builds them
(model_executor/models/ernie45_moe.py, ernie45.py): the rotary embedding turns interleaved pairs (2i, 2i + 1),
GPT-J style (get_rope(..., is_neox_style=False), ernie45_moe.py:272-277; Ernie4_5ForCausalLM sets
rotary_emb.is_neox_style = False on its Llama layers, ernie45.py:49-51), where the other families turn halves
(i, i + dim/2). The interleaved rotation by hand, the tiny models' forward against the float64 reference (one rank
and two gloo ranks), and ERNIE-4.5-21B-A3B's shape (tests/test_ernie45_moe.py A3B): what verify's forward reads
from it and the bytes a rank holds against the estimate's weights. GPU tests skip without CUDA."""

import json
import math

import pytest

from conftest import run_kvplan
from test_ernie45_moe import A3B
from tiny_models import TINY

from kvplan.errors import KvplanError
from kvplan.model.parse import parse_config
from kvplan.model.routing import Routing
from kvplan.verify.arch import architecture
from kvplan.verify.judge import STAND_IN

A3B_NAME = "baidu/ERNIE-4.5-21B-A3B-PT"
H = 2560


def _arch(tp: int, config: dict = None):
    config = config or A3B
    return architecture(config, parse_config(config, A3B_NAME), tp)


# ---- what verify's forward reads from the config (pure: no torch) ---------------------------------------------

def test_verify_builds_ernie_4_5_21b_a3b():
    """One rank of tp 2: 10 query heads and 2 KV heads of 128 (hidden / heads), the whole head rotated on
    interleaved pairs at theta 500,000; layer 0 a dense MLP of 12,288, layers 1-27 MoE of 64 experts of 1,536, top 6,
    two shared experts summed into one MLP of 3,072 (ernie45_moe.py:168-172), no gate on it; the router float32
    (GateLinear params and out float32, :156-162) with its float32 correction bias, softmax chosen with the bias and
    renormalised; unbiased projections; tied embeddings."""
    a = _arch(2)
    assert (a.heads_rank, a.kv_heads_rank, a.head_dim, a.rope_dim, a.rope_style) == (10, 2, 128, 128, "gptj")
    assert {layer.rope_theta for layer in a.layers} == {500000.0}
    assert [layer.ffn for layer in a.layers] == ["dense"] + ["moe"] * 27
    assert {(layer.mixer, layer.window) for layer in a.layers} == {("attention", None)}
    assert (a.intermediate, a.experts, a.top_k, a.expert_intermediate, a.shared_intermediate) == \
        (12288, 64, 6, 1536, 3072)
    assert not a.shared_gate and a.router_fp32 and a.routing == Routing("softmax", True, correction_bias=True)
    assert not (a.qkv_bias or a.qk_norm or a.whole_qk_norm or a.attn_output_gate) and a.tied_embeddings
    assert (a.activation, a.gated_mlp, a.norm_eps) == ("silu", True, 1e-5)


def test_other_families_keep_the_neox_rotation():
    for name in ("llama", "minimax_m2", "qwen3_next"):
        raw = TINY[name]
        assert architecture(raw, parse_config(raw, name), 1).rope_style == "neox"
    raw = TINY["ernie4_5"]
    assert architecture(raw, parse_config(raw, "ernie4_5"), 1).rope_style == "gptj"


def test_theta_defaults_to_500000_and_the_lm_head_to_tied():
    """Without rope_theta vLLM sets 500,000 (ernie45_moe.py:316 set_default_rope_theta); without
    tie_word_embeddings transformers' Ernie4_5_MoeConfig ties (tie_word_embeddings = True): the estimate then counts
    one embedding, verify allocates no LM head."""
    config = {k: v for k, v in A3B.items() if k not in ("rope_theta", "tie_word_embeddings")}
    a = _arch(1, config)
    assert {layer.rope_theta for layer in a.layers} == {500000.0} and a.tied_embeddings
    assert parse_config(config, "e").weights.parameters == parse_config(A3B, "e").weights.parameters
    untied = parse_config({**A3B, "tie_word_embeddings": False}, "e").weights.parameters
    assert untied - parse_config(config, "e").weights.parameters == 103424 * H


def test_use_bias_is_refused_in_one_line():
    """use_bias biases ERNIE's QKV and dense MLPs (ernie45_moe.py:326, :361): verify's layers have none."""
    with pytest.raises(KvplanError, match="sets use_bias"):
        _arch(1, {**A3B, "use_bias": True})


def test_rank_bytes_are_the_estimates_weights(write_config):
    """The tensors one rank holds (kvplan/verify/shards.py) against the estimate's weights a GPU, and by hand: at
    tp 1 tests/test_ernie45_moe.py's 43,659,726,592 bytes; at tp 2 half of everything but what every rank holds
    whole (the 57 RMSNorms in bf16; the 27 routers and correction biases in float32), the embedding's 103,424 rows
    (a multiple of 64: no padding) and the 4 KV heads split in two."""
    from kvplan.verify.shards import weight_bytes

    whole = 2 * (28 * 2 * H + H) + 4 * 27 * (64 * H + 64)
    total = 43_659_726_592
    hand = {1: total, 2: (total - whole) // 2 + whole}
    assert hand[2] == 21_838_860_032
    config = write_config(A3B)
    for tp in (1, 2):
        r = run_kvplan("estimate", config, "--gpu", "h200", "-tp", str(tp), "--format", "json")
        assert r.returncode == 0, r.stderr
        terms = json.loads(r.stdout)["plans"][0]["budget"]["terms"]
        estimate = next(t for t in terms if t["name"] == "weights")["bytes"]
        assert weight_bytes(_arch(tp)) == estimate == hand[tp]


def test_the_router_group_is_float32_as_vllm_builds_it():
    """FP32_ROUTER's ERNIE entry: GateLinear(params_dtype=torch.float32) and a float32 e_score_correction_bias
    (ernie45_moe.py:156-166) in each of the 27 MoE layers, 64 x 2,560 + 64 values, 4 bytes apiece, on every rank;
    verify allocates both float32."""
    from kvplan.verify.shards import layer_weights

    router = next(g for g in parse_config(A3B, "e").params if g.name == "router")
    assert router.parameters == 27 * (64 * H + 64) == 4_425_408
    assert router.bytes == 4 * router.parameters == router.replicated
    a = _arch(2)
    specs = {s.name: s for s in layer_weights(a, a.layers[1])}
    assert (specs["router"].dtype, specs["router"].shape(2)) == ("fp32", (64, H))
    assert (specs["router_correction"].dtype, specs["router_correction"].shape(2)) == ("fp32", (64,))
    assert specs["shared.gate_up"].shape(2) == (3072, H) and specs["w13"].shape(2) == (64, 1536, H)


def test_verify_runs_it_now(monkeypatch, write_config):
    """verify used to refuse ERNIE-4.5 MoE (its rotary); now its architecture builds and verify goes on to the GPU
    (stopped here where it would load torch)."""
    from kvplan.gpu import nvml

    def stop():
        raise KvplanError("stopped before torch")

    monkeypatch.setattr(nvml, "import_stack", stop)
    r = run_kvplan("verify", write_config(A3B), "-tp", "2")
    assert r.returncode == 2 and r.stdout == "" and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == ["kvplan: error: stopped before torch"]


# ---- the rotation and the forward pass (torch) ------------------------------------------------------------------

def test_interleaved_rotation_by_hand():
    """head_dim 6, rotary on the first 4 dims, theta 100, position 1: pair (x0, x1) turns by 1 rad (frequency
    100^0), pair (x2, x3) by 0.1 rad (100^(-2/4)); x4, x5 stay. The NeoX form turns (x0, x2) and (x1, x3)
    instead. Both verify's torch rotation (ops.Rope) and the float64 reference's (reference._rope)."""
    torch = pytest.importorskip("torch")
    from kvplan.gpu.ops import Rope
    from kvplan.gpu.reference import _rope

    x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    c1, s1, c2, s2 = math.cos(1.0), math.sin(1.0), math.cos(0.1), math.sin(0.1)
    pairs = [x[0] * c1 - x[1] * s1, x[1] * c1 + x[0] * s1, x[2] * c2 - x[3] * s2, x[3] * c2 + x[2] * s2, 5.0, 6.0]
    halves = [x[0] * c1 - x[2] * s1, x[1] * c2 - x[3] * s2, x[2] * c1 + x[0] * s1, x[3] * c2 + x[1] * s2, 5.0, 6.0]
    rope = Rope(4, "cpu", torch.float64)
    cos, sin = rope.tables(torch.tensor([1]), 100.0)
    t = torch.tensor(x, dtype=torch.float64).view(1, 1, 6)
    assert Rope.apply_interleaved(t, cos, sin).flatten().tolist() == pytest.approx(pairs, abs=1e-6)
    assert Rope.apply(t, cos, sin).flatten().tolist() == pytest.approx(halves, abs=1e-6)
    assert _rope(t[0], 1, 100.0, 4, interleaved=True).flatten().tolist() == pytest.approx(pairs, abs=1e-12)
    assert _rope(t[0], 1, 100.0, 4).flatten().tolist() == pytest.approx(halves, abs=1e-12)
    assert max(abs(p - q) for p, q in zip(pairs, halves)) > 0.5


def test_interleaved_is_the_neox_form_of_the_deinterleaved_dims():
    """Turning pairs (2i, 2i + 1) is turning pairs (i, i + d/2) of the same values reordered as [x0, x2, .., x1,
    x3, ..] (HF's checkpoints of NeoX-rotated models permute q/k rows so): 64 positions, 3 heads, rotary on 8 of 12."""
    torch = pytest.importorskip("torch")
    from kvplan.gpu.ops import Rope

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, 12, generator=gen, dtype=torch.float64)
    rope = Rope(8, "cpu", torch.float64)
    cos, sin = rope.tables(torch.arange(64), 500000.0)
    order = torch.tensor([0, 2, 4, 6, 1, 3, 5, 7, 8, 9, 10, 11])
    back = torch.argsort(order)
    want = Rope.apply(x[..., order], cos, sin)[..., back]
    assert torch.allclose(Rope.apply_interleaved(x, cos, sin), want, atol=1e-12)
    assert not torch.allclose(Rope.apply(x, cos, sin), want, atol=1e-3)


@pytest.mark.parametrize("name", ["ernie4_5_moe", "ernie4_5"])
def test_forward_matches_the_reference(name):
    """The tiny ERNIE models (tests/tiny_models.py) prefill + decode on paged caches with shuffled block tables and
    NaN in unused slots, against the float64 reference, separate weights and as verify lays them out (the two
    shared experts joined to the routed ones as two more); with the reference turning halves instead, the logits are
    off by tens of percent, so the test sees the rotation."""
    pytest.importorskip("torch")
    from test_verify_model import TOL, run_against_reference, tiny

    from kvplan.gpu import reference
    from kvplan.gpu.mixers import INTERLEAVED_LABEL

    arch, built = tiny(name), []
    assert run_against_reference(arch, built=built) < TOL
    assert run_against_reference(arch, stacked=True) < TOL
    labels = {**built[0].rt.paged.labels, **built[0].rt.labels}
    # the interleaved rotation and cache writes are torch glue (some 16 launches a layer where vLLM runs one): the only
    # stand-in, so decode is not judged
    assert labels["rope_cache"] == INTERLEAVED_LABEL
    assert [part for part, label in labels.items() if STAND_IN in str(label)] == ["rope_cache"]
    if name == "ernie4_5_moe":
        assert [layer.ffn for layer in arch.layers] == ["dense", "moe", "moe", "dense"]
        assert arch.router_fp32 and arch.shared_intermediate == 2 * arch.expert_intermediate == 64
    halves = reference._rope
    try:
        reference._rope = lambda x, pos, theta, dim, interleaved=False: halves(x, pos, theta, dim)
        assert run_against_reference(arch) > 0.1
    finally:
        reference._rope = halves


def test_ernie_router_is_allocated_float32():
    torch = pytest.importorskip("torch")
    from test_verify_model import tiny

    from kvplan.gpu.weights import allocate_weights

    w = allocate_weights(tiny("ernie4_5_moe"), "meta", fill=False)
    assert w["layers.1.router"].dtype == w["layers.1.router_correction"].dtype == torch.float32
    assert w["layers.1.w13"].dtype == torch.bfloat16 and "layers.0.router" not in w and "layers.3.router" not in w
    assert tuple(w["layers.0.mlp.gate_up"].shape) == (192, 64) and tuple(w["layers.3.mlp.gate_up"].shape) == (192, 64)


# ---- on a GPU ---------------------------------------------------------------------------------------------------

def _cuda():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    return torch


@pytest.mark.parametrize("name", ["ernie4_5_moe", "ernie4_5"])
@pytest.mark.parametrize("graph", [False, True])
def test_gpu_forward_runs_the_bundled_attention_with_torch_rotary_glue(name, graph):
    """On the GPU the interleaved rotation and the cache writes run in torch (the fused rope_cache.cu kernel turns
    halves: a stand-in, so the decode step is not judged), attention, norms, router and experts through the bundled
    kernels. bf16 against the float64 reference, as tests/test_verify_gpu.py holds the others."""
    _cuda()
    from test_verify_gpu import _run_tiny

    from kvplan.gpu.mixers import INTERLEAVED_LABEL

    worst, labels = _run_tiny(name, graph)
    assert worst < 0.1, worst
    assert labels["rope_cache"] == INTERLEAVED_LABEL
    assert "bundled CUDA kernel" in labels["attention"]
    assert [part for part, label in labels.items() if STAND_IN in str(label)] == ["rope_cache"]
    if name == "ernie4_5_moe":
        assert labels["router"].startswith("bundled router kernel"), labels["router"]
        assert labels["moe"].startswith("bundled MoE pairs kernel") and "shared expert as 2 more" in labels["moe"]
