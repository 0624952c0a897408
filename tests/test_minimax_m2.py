"""MiniMax-M2.7 as vLLM 0.32.0 builds it (model_executor/models/minimax_m2.py): 62 full-attention layers, GQA
48 / 8 of head_dim 128, q and k normed over the whole projections (6,144 and 1,024 weights a layer, split with the
heads), 256 routed experts of 1,536 with a float32 router and a float32 correction bias, sigmoid scores, no shared
expert, no MTP layer. Expected values are hand arithmetic from the config and the checkpoint's tensor list (the
public report the bundled file cites), or vLLM's own routing (tests/data/vllm_routing.json, case minimax_m2)."""

import copy
import json
from pathlib import Path

import pytest

from conftest import load_yaml, run_kvplan
from kvplan.errors import KvplanError
from kvplan.model.config import Config
from kvplan.model.parse import parse_config
from kvplan.model.routing import Routing, routing
from kvplan.model.sources import resolve

ROOT = Path(__file__).resolve().parents[1]
M27 = "MiniMaxAI/MiniMax-M2.7"
H, VOCAB, LAYERS = 3072, 200064, 62


def bundled() -> dict:
    return load_yaml((ROOT / "model_specs" / (M27.replace("/", "--") + ".yaml")).read_text())


def test_parameters_are_what_vllm_allocates():
    attention = 6144 * H + 2 * 1024 * H + H * 6144 + 6144 + 1024  # q, k, v, o; q_norm and k_norm over all heads
    moe = 256 * 3 * 1536 * H + 256 * H + 256  # experts (w1, w3, w2), gate, e_score_correction_bias
    total = 2 * VOCAB * H + H + LAYERS * (2 * H + attention + moe)
    spec = parse_config(bundled()["config"], "estimate")
    assert spec.weights.parameters == total == 228_689_764_864
    # the report's stored-element total holds the float32 128x128 block scales besides (tests/test_params.py)
    scales = LAYERS * (256 * 3 * 12 * 24 + 2 * 48 * 24 + 2 * 8 * 24)
    assert total + scales == bundled()["weights"]["parameters"] == 228_703_644_928


def test_stored_bytes_equal_the_checkpoints_tensor_list():
    """Each tensor of the report's list at its dtype: bf16 embeddings, LM head and norms; fp8 projections with a
    float32 scale a 128 x 128 block; the router (gate) and the correction bias float32 (modules_to_not_convert)."""
    bf16 = 2 * (2 * VOCAB * H + H + LAYERS * (2 * H + 6144 + 1024))
    fp8 = LAYERS * (256 * 3 * 1536 * H + 2 * 6144 * H + 2 * 1024 * H)
    f32 = 4 * LAYERS * (256 * 3 * 288 + 2 * 1152 + 2 * 192 + 256 * H + 256)
    assert bf16 + fp8 + f32 == 230_121_630_720  # 214.32 GiB, the report's 张量累计大小
    assert parse_config(bundled()["config"], "estimate").weights.bytes == 230_121_630_720


def test_the_router_and_norms_by_group():
    groups = {g.name: g for g in parse_config(bundled()["config"], "estimate").params}
    router = groups["router"]
    assert router.parameters == LAYERS * (256 * H + 256)
    assert router.bytes == 4 * router.parameters == router.replicated  # float32, whole on every rank
    # K / V projections and k_norm split by KV heads: fp8 with their block scales, k_norm bf16
    assert groups["attention"].kv_split == ((8, LAYERS * (2 * (1024 * H + 4 * 8 * 24) + 2 * 1024)),)


def test_weights_a_gpu_at_tp_4_and_16(write_config):
    """From the config alone (the bundled file scales its estimate to the report's element count, scales included)."""
    config, total = write_config(bundled()["config"]), 230_121_630_720
    whole = LAYERS * 4 * (256 * H + 256) + 2 * (LAYERS * 2 * H + H)  # routers, biases and layer norms: every rank
    by_kv = LAYERS * (2 * (1024 * H + 4 * 8 * 24) + 2 * 1024)  # k, v (+ scales) and k_norm
    for tp, expected in ((4, (total - whole) // 4 + whole),
                         # 8 KV heads over 16 ranks: each holds one whole head of k, v and k_norm (1/8, not 1/16)
                         (16, (total - whole - by_kv) // 16 + by_kv // 8 + whole)):
        r = run_kvplan("estimate", config, "--gpu", "h200", "-tp", str(tp), "--format", "json")
        assert r.returncode == 0, r.stderr
        terms = json.loads(r.stdout)["plans"][0]["budget"]["terms"]
        assert next(t for t in terms if t["name"] == "weights")["bytes"] == expected
    assert (total - whole) // 4 + whole == 57_677_307_648  # 53.72 GiB a GPU at tp 4


def test_kv_cache_is_plain_gqa():
    spec = resolve(M27)
    assert len(spec.layers) == 62 and {layer.kind for layer in spec.layers} == {"full"}
    # 8 KV heads x 128 x (K, V) x 2 bytes x 62 layers, over 4 ranks
    r = run_kvplan("estimate", M27, "--gpu", "h200", "-tp", "4", "--format", "json")
    assert json.loads(r.stdout)["plans"][0]["kv_bytes_per_token_per_gpu"] == 2 * 128 * 2 * 2 * 62 == 63_488


def test_routing_as_minimax_m2_py_builds_it():
    # minimax_m2.py:96-108: scoring_func from the config, renormalize=True, the bias with use_routing_bias, no groups
    assert routing(Config(bundled()["config"], M27)) == Routing("sigmoid", True, correction_bias=True)
    config = {**bundled()["config"], "use_routing_bias": False, "scoring_func": "softmax"}
    assert routing(Config(config, "m")) == Routing("softmax", True)
    # routed_scaling_factor and norm_topk_prob are not passed to FusedMoE: ignored
    config = {**bundled()["config"], "routed_scaling_factor": 2.5, "norm_topk_prob": False}
    assert routing(Config(config, "m")) == Routing("sigmoid", True, correction_bias=True)


def test_without_the_routing_bias_no_correction_tensor():
    config = {**bundled()["config"], "use_routing_bias": False}
    assert parse_config(bundled()["config"], "a").weights.parameters - parse_config(config, "b").weights.parameters \
        == LAYERS * 256


@pytest.mark.parametrize("field, value, message", [
    ("scoring_func", None, "config field 'scoring_func' is missing"),  # vLLM reads config.scoring_func, no default
    ("scoring_func", "softplus", "config field 'scoring_func' must be one of softmax, sigmoid, got \"softplus\""),
    ("use_routing_bias", "yes", "config field 'use_routing_bias' must be true or false"),
])
def test_bad_routing_fields_are_named(field, value, message, write_config):
    config = copy.deepcopy(bundled()["config"])
    config[field] = value
    if value is None:
        del config[field]
    with pytest.raises(KvplanError, match=message):
        routing(Config(config, "m"))
    r = run_kvplan("estimate", write_config(config), "--gpu", "h200", "-tp", "4")
    assert r.returncode == 2 and r.stdout == "" and "Traceback" not in r.stderr
    line, = r.stderr.strip().splitlines()
    assert message in line


def _arch(tp: int, config: dict = None):
    from kvplan.verify.arch import architecture

    config = config or bundled()["config"]
    return architecture(config, parse_config(config, M27), tp)


def test_verify_builds_its_forward_from_the_config():
    """The facts verify's forward pass runs (kvplan/verify/arch.py), one rank of tp 4: 12 query heads and 2 KV heads
    of 128, rotary on the first 64 dims of each (rotary_dim), q and k normed over the whole projection (not per head),
    the router float32, sigmoid scores chosen with the correction bias, no groups, renormalised, no scale; every
    layer full attention and MoE of 256 experts of 1,536, top 8, no shared expert; fp8 linears and experts in
    128 x 128 blocks."""
    a = _arch(4)
    assert (a.heads_rank, a.kv_heads_rank, a.head_dim, a.rope_dim) == (12, 2, 128, 64)
    assert a.whole_qk_norm and not a.qk_norm and not a.attn_output_gate and not a.qkv_bias
    assert a.router_fp32 and a.routing == Routing("sigmoid", True, correction_bias=True) and a.routing.scale == 1.0
    assert (a.experts, a.top_k, a.expert_intermediate, a.shared_intermediate) == (256, 8, 1536, 0)
    assert {(layer.mixer, layer.ffn, layer.window) for layer in a.layers} == {("attention", "moe", None)}
    assert len(a.layers) == LAYERS and (a.linear_format, a.experts_format) == ("fp8_block", "fp8_block")
    # a partial_rotary_factor of the config's own wins over rotary_dim (minimax_m2.py:194-198)
    assert _arch(4, {**bundled()["config"], "partial_rotary_factor": 0.25}).rope_dim == 32


@pytest.mark.parametrize("field, value, message", [
    ("rotary_dim", None, "config field 'rotary_dim' is missing"),  # vLLM reads config.rotary_dim, no default
    ("rotary_dim", 130, r"config field 'rotary_dim' \(130\) must be even and at most head_dim \(128\)"),
    ("rotary_dim", 63, r"config field 'rotary_dim' \(63\) must be even"),
])
def test_a_bad_rotary_dim_is_named(field, value, message):
    config = {k: v for k, v in bundled()["config"].items() if k != field or value is not None}
    if value is not None:
        config[field] = value
    with pytest.raises(KvplanError, match=message):
        _arch(4, config)


def test_verify_allocates_the_checkpoints_bytes():
    """One rank's tensors (kvplan/verify/shards.py) are the hand-priced tensor list: at tp 1 the whole 230,121,630,720
    bytes; at tp 4 test_weights_a_gpu_at_tp_4_and_16's 57,677,307,648. The q_norm's 6,144 weights split with the query
    heads, k_norm's 1,024 by KV heads (one whole head a rank at tp 16, as vLLM's weight_shard_world_size); the
    router float32 on every rank."""
    from kvplan.verify.shards import layer_weights, weight_bytes

    assert weight_bytes(_arch(1)) == 230_121_630_720 and weight_bytes(_arch(4)) == 57_677_307_648
    for tp, q_norm, k_norm in ((4, 1536, 256), (8, 768, 128), (16, 384, 128)):
        a = _arch(tp)
        specs = {s.name: s for s in layer_weights(a, a.layers[0])}
        assert (specs["q_norm"].shape(tp), specs["k_norm"].shape(tp)) == ((q_norm,), (k_norm,))
        assert (specs["router"].dtype, specs["router"].shape(tp)) == ("fp32", (256, H))
        assert (specs["router_correction"].dtype, specs["router_correction"].shape(tp)) == ("fp32", (256,))
        assert "shared.gate_up" not in specs


def test_verify_runs_it_now(monkeypatch):
    """verify used to refuse MiniMax-M2 (per-head q/k norms only); now its architecture builds and verify goes on to
    the GPU (stopped here where it would load torch)."""
    from kvplan.gpu import nvml

    def stop():
        raise KvplanError("stopped before torch")

    monkeypatch.setattr(nvml, "import_stack", stop)
    r = run_kvplan("verify", M27, "-tp", "4")
    assert r.returncode == 2 and r.stdout == "" and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == ["kvplan: error: stopped before torch"]


def test_glm_routers_are_float32_as_vllm_builds_them():
    """vLLM 0.32.0 glm4_moe.py:141-146 builds Glm4MoE's gate as GateLinear(params_dtype=torch.float32), with a
    float32 e_score_correction_bias, and glm4_moe_lite.py's Glm4MoeLite subclasses it: GLM-4.7-Flash's 46 MoE layers
    hold 64 x 2,048 gate weights and 64 biases each, 4 bytes apiece, on every rank."""
    router = next(g for g in resolve("zai-org/GLM-4.7-Flash").params if g.name == "router")
    assert router.parameters == 46 * (64 * 2048 + 64) == 6032256
    assert router.bytes == 4 * router.parameters == router.replicated
