"""GLM-4.5 / 4.6 / 4.7 (model_type glm4_moe, Glm4MoeForCausalLM) as vLLM 0.32.0 builds and serves them
(model_executor/models/glm4_moe.py, glm4_moe_mtp.py): q / k / v biased when attention_bias, o_proj never
(glm4_moe.py:262-278); per-head q / k norms when use_qk_norm (:296-298); rotary on partial_rotary_factor of each
head, 0.5 unless the config says (:280, rope_parameters first); the first first_k_dense_replace layers dense, the
rest MoE of n_routed_experts with a float32 router and correction bias, sigmoid scores, n_group / topk_group,
renormalised with norm_topk_prob, the routed sum times routed_scaling_factor, beside n_shared_experts as one MLP
(:119-208); one MTP module per num_nextn_predict_layers to draft with.

Held to vLLM's own build (tests/data/vllm_glm4_moe_figures.json, made by benchmarks/vllm_reference/
glm4_moe_figures.py on the GLM-4.5-Air- and GLM-4.6-shaped configs of benchmarks/configs and two variants), to hand
arithmetic from the configs, to the float64 reference (the tiny glm4_moe of tests/tiny_models.py) and, as sanity
checks only, to the model card's rounded totals (zai-org/GLM-4.5 README: 355B total / 32B active; GLM-4.5-Air 106B /
12B). GPU tests skip without CUDA."""

import json
from pathlib import Path

import pytest

from conftest import run_kvplan, vllm_reference
from tiny_models import TINY

from kvplan.errors import KvplanError
from kvplan.model.config import Config
from kvplan.model.parse import parse_config
from kvplan.model.routing import Routing, routing
from kvplan.verify.arch import architecture
from kvplan.verify.judge import STAND_IN

ROOT = Path(__file__).resolve().parents[1]
DATA = json.loads((ROOT / "tests" / "data" / "vllm_glm4_moe_figures.json").read_text())
CASES = DATA["cases"]
AIR_PATH = "benchmarks/configs/zai-org--GLM-4.5-Air-shape.json"
GLM46_PATH = "benchmarks/configs/zai-org--GLM-4.6-shape.json"
AIR = json.loads((ROOT / AIR_PATH).read_text())
GLM46 = json.loads((ROOT / GLM46_PATH).read_text())
VOCAB = 151552


def _id(case: dict) -> str:
    i = case["inputs"]
    return f"{i['model'].split('/')[-1].split(':')[-1]}-tp{i['tp']}-{'mtp' if i['speculative_config'] else 'plain'}"


def _spec(case: dict):
    return parse_config(case["inputs"]["config"], case["inputs"]["model"])


def _arch(config: dict, tp: int, name: str = "glm"):
    return architecture(config, parse_config(config, name), tp)


# ---- the frozen figures -------------------------------------------------------------------------------------

def test_the_data_is_vllms_own_on_the_shipped_configs():
    header = DATA["header"]
    assert header["vllm_version"] == "0.32.0" and header["script"] == "benchmarks/vllm_reference/glm4_moe_figures.py"
    assert len(CASES) == 12 and not any(c.get("error") for c in CASES)
    assert {c["architecture_built"] for c in CASES} == {"Glm4MoeForCausalLM"}
    for case in CASES:  # the configs vLLM read are the ones shipped (the variants are the script's own)
        path = case["inputs"]["model"]
        if path.startswith("benchmarks/configs/"):
            assert case["inputs"]["config"] == json.loads((ROOT / path).read_text())
    assert {(c["inputs"]["model"], c["inputs"]["tp"]) for c in CASES if not c["inputs"]["speculative_config"]} >= {
        (m, tp) for m in (AIR_PATH, GLM46_PATH) for tp in (1, 4, 8)}


@pytest.mark.parametrize("case", [c for c in CASES if c["inputs"]["tp"] == 1], ids=_id)
def test_parameter_groups_are_vllms_at_tp_1(case):
    """Every group of the estimate (kvplan/model/params.py) is what vLLM registers, by element and by byte: bf16
    matrices, float32 gates and correction biases."""
    groups = {g.name: g for g in _spec(case).params if g.parameters}
    vllm = case["target"]["parameters"]
    assert set(groups) == set(vllm)
    for name, g in groups.items():
        assert (g.parameters, g.bytes) == (vllm[name]["parameters"], vllm[name]["bytes"]), name


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_a_ranks_bytes_are_vllms_in_the_estimate_and_in_verify(case):
    """What rank 0 of vLLM's TP group holds, against the estimate's weights term (plan/sharding.py stage_weights)
    and the tensors verify allocates (verify/shards.py): equal at tp 1, 4 and 8."""
    from kvplan.plan.sharding import stage_weights
    from kvplan.verify.shards import weight_bytes

    tp, spec = case["inputs"]["tp"], _spec(case)
    vllm = sum(g["bytes"] for g in case["target"]["parameters"].values())
    assert stage_weights(spec, tp) == vllm
    assert weight_bytes(architecture(case["inputs"]["config"], spec, tp)) == vllm


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_verify_runs_the_layers_vllm_built(case):
    """The attention and MoE verify's forward runs (verify/arch.py) against the modules of vLLM's model on the same
    rank: heads, head size, scale, biases on q / k / v (none on o_proj, which verify never gives one), q / k norms,
    the rotary width (half a head by default; rope_parameters' 0.25 where it says) and base, neox halves; MoE
    layers, experts, top k, groups, sigmoid scores, renormalisation, the scale on the routed sum, the correction
    bias, the float32 gate, the shared expert."""
    built, a = case["target"]["built"], architecture(case["inputs"]["config"], _spec(case), case["inputs"]["tp"])
    att = built["attention"]
    assert (a.heads_rank, a.kv_heads_rank, a.head_dim, a.rope_dim) == (att["num_heads"], att["num_kv_heads"],
                                                                        att["head_dim"], att["rotary_dim"])
    assert a.attn_scale == pytest.approx(att["scaling"], rel=1e-12)
    assert (a.qkv_bias, a.qk_norm, a.whole_qk_norm) == (att["qkv_bias"], att["qk_norm"], False)
    assert not att["o_proj_bias"] and att["is_neox_style"] and a.rope_style == "neox"
    assert {layer.rope_theta for layer in a.layers} == {float(att["rotary_base"])}
    assert [i for i, layer in enumerate(a.layers) if layer.ffn == "moe"] == built["moe_layers"]
    moe, r = built["moe"], a.routing
    assert (a.experts, a.top_k) == (moe["global_num_experts"], moe["top_k"])
    assert a.expert_intermediate // case["inputs"]["tp"] == moe["intermediate_size_per_partition"]
    assert moe["use_grouped_topk"] and (r.groups, r.topk_groups) == (moe["num_expert_group"], moe["topk_group"])
    assert (r.scoring, r.renormalize, r.correction_bias) == (moe["scoring_func"], moe["renormalize"],
                                                             moe["e_score_correction_bias"])
    assert r.scale == moe["runner_routed_scaling_factor"] and moe["routed_scaling_factor"] == 1.0  # runner, not router
    assert a.router_fp32 and moe["gate_dtype"] == moe["router_logits_dtype"] == "float32"
    assert bool(a.shared_intermediate) == moe["shared_experts"]


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_the_cache_blocks_and_residents_are_vllms(case, tmp_path):
    """vLLM's KV cache specs (the MTP module's attention layer among them with a drafter), num_gpu_blocks, its size
    line and the requests its KVCacheManager keeps resident, for 40 GiB a worker and 32K tokens."""
    from kvplan.engines.vllm import start
    from kvplan.engines.vllm_speculative import speculative_config, with_drafter
    from kvplan.model.precision import resolve_kv_dtype

    inputs, reference = case["inputs"], vllm_reference()
    path = tmp_path / "config.json"
    path.write_text(json.dumps(inputs["config"]))
    case = {**case, "inputs": {**inputs, "model": str(path)}}
    spec = reference.model_spec(str(path))
    if inputs["speculative_config"]:
        spec = with_drafter(spec, speculative_config(inputs["speculative_config"]), "0.32.0")
    _, settings = reference.kvplan_startup(case)
    result = start(spec, tp=inputs["tp"], precision=resolve_kv_dtype("auto", spec.dtype), settings=settings,
                   available=[inputs["available_kv_cache_bytes"]])
    fig = result.figures
    assert len(spec.layers) == case["num_kv_layers_per_rank"] == sum(case["layer_specs"].values())
    assert (fig.num_gpu_blocks, fig.block_size) == (case["kv"]["num_gpu_blocks"], case["kv"]["block_size"])
    assert reference.sizing(fig.log_lines) == case["log_lines"]
    assert fig.resident_sequences == case["resident"]["requests"]


@pytest.mark.parametrize("case", [c for c in CASES if c["draft"]], ids=_id)
def test_the_mtp_drafter_a_rank_holds_is_vllms(case):
    """Glm4MoeMTP at the case's TP: enorm, hnorm, shared_head.norm, eh_proj (an nn.Linear 2h -> h, whole on every
    rank) and a decoder layer at index num_hidden_layers, an MoE layer (glm4_moe_mtp.py:90-104); embed_tokens and
    shared_head.head are the target's (llm_base_proposer.py _maybe_share_*: 'Detected MTP model')."""
    from kvplan.engines.vllm_speculative import draft_weights, speculative_config, with_drafter

    modules = case["draft"]["modules"]
    own = sum(m["bytes"] for m in modules.values() if not m["shared_with_target"])
    spec = with_drafter(_spec(case), speculative_config(case["inputs"]["speculative_config"]), "0.32.0")
    assert spec.draft.modules == 1 and case["draft"]["architecture"] == "Glm4MoeMTPModel"
    assert draft_weights(spec.draft, case["inputs"]["tp"]) == own
    h = case["inputs"]["config"]["hidden_size"]
    n = case["inputs"]["config"]["num_hidden_layers"]
    assert modules[f"model.layers.{n}.eh_proj"]["parameters"] == 2 * h * h  # whole at every TP size


# ---- by hand ---------------------------------------------------------------------------------------------------

def test_glm_4_5_air_by_hand():
    """46 layers of hidden 4,096: q / k / v of 96 / 8 / 8 heads of 128 with biases, o_proj without; layer 0 a dense
    MLP of 10,944, layers 1-45 128 experts of 1,408 and one shared expert of 1,408, a 128 x 4,096 float32 gate and
    128 float32 correction biases; two norms a layer and the final one; untied embedding and LM head."""
    h, q, kv = 4096, 96 * 128, 8 * 128
    attention = (q + 2 * kv) * h + (q + 2 * kv) + h * q
    moe = 128 * 3 * 1408 * h + 3 * 1408 * h
    router = 128 * h + 128
    total = 2 * VOCAB * h + h + 46 * (2 * h + attention) + 3 * 10944 * h + 45 * (moe + router)
    spec = parse_config(AIR, "air")
    assert spec.weights.parameters == total == 106_852_251_264
    assert spec.weights.bytes == 2 * total + 2 * 45 * router == 213_751_699_968  # float32 routers: 2 bytes more each
    assert (spec.num_attention_heads, spec.kv_heads, spec.head_dim, spec.moe_layers) == (96, 8, 128, 45)


def test_glm_4_6_by_hand():
    """92 layers of hidden 5,120: q / k / v biased, o_proj not, q_norm and k_norm of 128 weights each; layers 0-2
    dense MLPs of 12,288, layers 3-91 160 experts of 1,536 plus a shared one, a float32 gate and correction bias."""
    h, q, kv = 5120, 96 * 128, 8 * 128
    attention = (q + 2 * kv) * h + (q + 2 * kv) + h * q + 2 * 128
    moe = 160 * 3 * 1536 * h + 3 * 1536 * h
    router = 160 * h + 160
    total = 2 * VOCAB * h + h + 92 * (2 * h + attention) + 3 * 3 * 12288 * h + 89 * (moe + router)
    assert parse_config(GLM46, "glm46").weights.parameters == total == 352_797_829_024


def test_the_model_cards_totals_as_sanity_checks():
    """zai-org/GLM-4.5's README: 355B total and 32B active parameters, GLM-4.5-Air 106B and 12B (rounded figures, so
    within 1% here). Active: everything but the embedding and LM head tables, with 8 of the routed experts."""
    for config, total, active in ((GLM46, 355e9, 32e9), (AIR, 106e9, 12e9)):
        groups = {g.name: g.parameters for g in parse_config(config, "g").params}
        experts = config["n_routed_experts"]
        routed = groups["experts"] * config["num_experts_per_tok"] // experts
        assert sum(groups.values()) == pytest.approx(total, rel=0.01)
        assert sum(groups.values()) - groups["embed"] - groups["lm_head"] - groups["experts"] + routed == \
            pytest.approx(active, rel=0.02)


def test_o_proj_is_never_biased_and_norms_follow_use_qk_norm():
    """attention_bias biases q, k and v only (glm4_moe.py:262-278): 14,336 values a layer at GLM-4.5-Air's shape,
    never o_proj's 4,096 (Llama's attention_bias biases o_proj too); use_qk_norm adds 2 x 128 a layer."""
    base = parse_config({**AIR, "attention_bias": False}, "a").weights.parameters
    assert parse_config(AIR, "a").weights.parameters - base == 46 * (96 + 16) * 128
    assert parse_config({**AIR, "use_qk_norm": True}, "a").weights.parameters - \
        parse_config(AIR, "a").weights.parameters == 46 * 2 * 128


def test_transformers_defaults_where_the_config_is_silent():
    """transformers 5.19 Glm4MoeConfig fills what a config leaves out (vLLM reads the filled object):
    first_k_dense_replace 1, n_shared_experts 1, num_nextn_predict_layers 1, partial_rotary_factor 0.5, no q/k
    norms, no attention biases; n_group / topk_group 1, norm_topk_prob true, routed_scaling_factor 1.0. The
    script's MINIMAL case is GLM-4.5-Air's config without them: vLLM built it as the tests above hold."""
    minimal = next(c for c in CASES if c["inputs"]["model"].endswith(":MINIMAL"))["inputs"]["config"]
    for key in ("partial_rotary_factor", "use_qk_norm", "attention_bias", "first_k_dense_replace",
                "n_shared_experts", "num_nextn_predict_layers", "routed_scaling_factor"):
        assert key not in minimal
    spec = parse_config(minimal, "m")
    assert (spec.moe_layers, spec.mtp_modules) == (45, 1)
    assert routing(Config(minimal, "m")) == Routing("sigmoid", True, 1.0, correction_bias=True)
    a = _arch(minimal, 1)
    assert (a.rope_dim, a.qk_norm, a.qkv_bias, a.shared_intermediate) == (64, False, False, 1408)
    no_eps = {k: v for k, v in minimal.items() if k != "rms_norm_eps"}
    assert _arch(no_eps, 1).norm_eps == 1e-5  # Glm4MoeConfig's epsilon (verify's generic fallback is 1e-6)


def test_num_mtp_layers_is_glm_4s_name_for_num_nextn_predict_layers():
    """Review finding (session 49): Glm4MoeConfig's attribute_map reads num_mtp_layers as num_nextn_predict_layers
    (configuration_glm4_moe.py:86-89), so a config saying num_mtp_layers 0 has no MTP module to draft with."""
    base = {k: v for k, v in AIR.items() if k != "num_nextn_predict_layers"}
    assert parse_config({**base, "num_mtp_layers": 0}, "a").mtp_modules == 0
    assert parse_config({**base, "num_mtp_layers": 2}, "a").mtp_modules == 2
    assert parse_config(base, "a").mtp_modules == 1  # the class default


def test_rope_parameters_win_over_the_top_level_fields():
    """transformers 5 reads the rotary settings from rope_parameters (or the legacy rope_scaling mapping), the
    top-level fields filling only what it lacks; vLLM passes rope_parameters to get_rope (glm4_moe.py:280-285)."""
    rope = {k: v for k, v in AIR.items() if k not in ("partial_rotary_factor", "rope_theta", "rope_scaling")}
    a = _arch({**rope, "rope_parameters": {"rope_type": "default", "rope_theta": 5e5, "partial_rotary_factor": 0.25},
               "partial_rotary_factor": 1.0}, 1)
    assert (a.rope_dim, a.layers[0].rope_theta) == (32, 5e5)
    assert _arch({**rope, "rope_scaling": {"rope_type": "default", "partial_rotary_factor": 0.75}}, 1).rope_dim == 96
    assert _arch({**rope, "rope_parameters": {"rope_type": "default"}, "partial_rotary_factor": 1.0}, 1).rope_dim == 128
    assert {layer.rope_theta for layer in _arch(rope, 1).layers} == {10000.0}  # Glm4MoeConfig's default theta


@pytest.mark.parametrize("field, value, message", [
    ("partial_rotary_factor", 1.5, "config field 'partial_rotary_factor' must be a number from 0 to 1, got 1.5"),
    ("partial_rotary_factor", "half", "config field 'partial_rotary_factor' must be a number from 0 to 1"),
    ("rope_parameters", {"partial_rotary_factor": -1}, "config field 'rope_parameters.partial_rotary_factor' must"),
    ("rope_theta", 0, "config field 'rope_theta' must be a positive number, got 0"),
])
def test_bad_rotary_fields_are_named(field, value, message):
    with pytest.raises(KvplanError, match=message):
        _arch({**AIR, field: value}, 1)


def test_a_config_without_head_dim_is_refused_in_one_line(write_config):
    """vLLM reads config.head_dim with no default (glm4_moe.py:344) and Glm4MoeConfig fills none: GLM's 128 is not
    hidden / heads (4,096 / 96), so kvplan does not guess."""
    config = {k: v for k, v in AIR.items() if k != "head_dim"}
    r = run_kvplan("estimate", write_config(config), "--gpu", "h200", "-tp", "4")
    assert r.returncode == 2 and r.stdout == "" and "Traceback" not in r.stderr
    line, = r.stderr.strip().splitlines()
    assert "config field 'head_dim' is missing" in line


def test_kv_cache_is_plain_gqa(write_config):
    """8 KV heads of 128 in each of 92 layers, K and V, bf16: 376,832 bytes a token, one KV head a rank at tp 8."""
    r = run_kvplan("estimate", write_config(GLM46), "--gpu", "h200", "-tp", "8", "--format", "json")
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)["plans"][0]
    assert plan["kv_bytes_per_token_per_gpu"] == 92 * 2 * 128 * 2 == 47_104
    assert plan["kv_bytes_per_token"] == 8 * 47_104


def test_verify_reaches_the_gpu_for_the_shape_configs(monkeypatch):
    """verify builds the forward of both shapes and goes on to the GPU (stopped where it would load torch)."""
    from kvplan.gpu import nvml

    def stop():
        raise KvplanError("stopped before torch")

    monkeypatch.setattr(nvml, "import_stack", stop)
    for path, tp in ((AIR_PATH, 4), (GLM46_PATH, 8)):
        r = run_kvplan("verify", ROOT / path, "-tp", str(tp))
        assert r.returncode == 2 and r.stdout == "" and "Traceback" not in r.stderr
        assert r.stderr.strip().splitlines() == ["kvplan: error: stopped before torch"]


# ---- the forward pass (torch) -----------------------------------------------------------------------------------

def test_tiny_glm_holds_what_the_estimate_counts():
    """The tiny glm4_moe (tests/tiny_models.py): dense layer 0, MoE layers 1-2; q / k / v biases and per-head q / k
    norms, no o_proj bias; rotary on 8 of 16 dims (the 0.5 default); verify's bytes equal the estimate's at tp 1
    and 2."""
    from kvplan.plan.sharding import stage_weights
    from kvplan.verify.shards import layer_weights, weight_bytes

    raw = TINY["glm4_moe"]
    assert "partial_rotary_factor" not in raw
    for tp in (1, 2):
        a = _arch(raw, tp, "glm4_moe")
        assert weight_bytes(a) == stage_weights(parse_config(raw, "glm4_moe"), tp)
    a = _arch(raw, 1, "glm4_moe")
    assert [layer.ffn for layer in a.layers] == ["dense", "moe", "moe"] and a.rope_dim == 8
    names = {s.name for s in layer_weights(a, a.layers[1])}
    assert {"qkv_bias", "q_norm", "k_norm", "router", "router_correction", "shared.gate_up"} <= names
    assert not any(name.startswith("o_") or name == "o_bias" for name in names)
    assert a.routing == Routing("sigmoid", True, 2.5, correction_bias=True)


def test_forward_matches_the_reference():
    """Prefill + decode of the tiny glm4_moe on paged caches (shuffled block tables, NaN in unused slots) against the
    float64 reference, with separate weights and as verify lays them out (the shared expert joined to the routed
    ones); the reference rotating whole heads instead, or skipping the q / k norms, is far off, so the test sees
    both."""
    pytest.importorskip("torch")
    from dataclasses import replace

    import test_verify_model
    from test_verify_model import TOL, run_against_reference, tiny

    from kvplan.gpu import reference

    arch, built = tiny("glm4_moe"), []
    assert run_against_reference(arch, built=built) < TOL
    assert run_against_reference(arch, stacked=True) < TOL
    labels = {**built[0].rt.paged.labels, **built[0].rt.labels}
    assert not any(STAND_IN in str(v) for v in labels.values())
    rope = reference._rope
    try:
        reference._rope = lambda x, pos, theta, dim, interleaved=False: rope(x, pos, theta, arch.head_dim)
        assert run_against_reference(arch) > 0.01
    finally:
        reference._rope = rope
    real = test_verify_model.Reference
    try:
        test_verify_model.Reference = lambda a, w: real(replace(a, qk_norm=False), w)
        assert run_against_reference(arch) > 0.01
    finally:
        test_verify_model.Reference = real


# ---- on a GPU ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("graph", [False, True])
def test_gpu_forward_runs_the_bundled_kernels(graph):
    """On the GPU (head_dim 64, rotary on 32 of it) the fused RoPE + paged K/V write, attention, norms, router and
    experts run through the bundled kernels: no part is a torch stand-in, so the decode step is judged. bf16
    against the float64 reference, as tests/test_verify_gpu.py holds the other tiny models."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    from test_verify_gpu import _run_tiny

    worst, labels = _run_tiny("glm4_moe", graph)
    assert worst < 0.1, worst
    assert "bundled CUDA kernel" in labels["attention"] and labels["rope_cache"].startswith("bundled RoPE")
    assert labels["router"].startswith("bundled router kernel"), labels["router"]
    assert labels["moe"].startswith("bundled MoE pairs kernel") and "shared expert as 1 more" in labels["moe"]
    assert not [part for part, label in labels.items() if STAND_IN in str(label)]
