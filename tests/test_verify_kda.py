"""verify's forward pass of Kimi Linear (moonshotai/Kimi-Linear-48B-A3B-Instruct, bundled) as vLLM 0.32.0 builds it
(vllm/models/kimi_k3/nvidia/model.py KimiLinearForCausalLM; the KDA layer model_executor/layers/mamba/gdn/
kimi_gdn_linear_attn.py; its ops vllm/models/kimi_k3/nvidia/ops/third_party/kda/): Kimi Delta Attention (a log decay
per key channel, three short convolutions, a float32 recurrent state) as a torch stand-in, MLA without RoPE, MoE with
a shared expert. Expected values: hand arithmetic from the bundled config; vLLM's own figures (tests/data/
vllm_kimi_linear_weights.json: rank 0's parameters by group as vLLM 0.32.0 allocates them at each TP; the kimi grid of
tests/data/vllm_0.32.0_kv_figures.json: the KDA state's tensors); the float64 reference (kvplan/gpu/reference.py,
token by token) and the token recurrence (kvplan/gpu/kda.py kda_recurrent)."""

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

from conftest import load_yaml, run_kvplan
from tiny_models import TINY

torch = pytest.importorskip("torch")

from test_verify_model import TOL, run_against_reference  # noqa: E402
from kvplan.errors import KvplanError  # noqa: E402
from kvplan.gpu import kda  # noqa: E402
from kvplan.gpu.caches import caches_from_layout  # noqa: E402
from kvplan.gpu.reference import Reference  # noqa: E402
from kvplan.gpu.weights import full_weights, shard_weights  # noqa: E402
from kvplan.model import parse_config  # noqa: E402
from kvplan.model.routing import Routing  # noqa: E402
from kvplan.model.sources import resolve  # noqa: E402
from kvplan.plan.budget import fixed_budget  # noqa: E402
from kvplan.plan.plan import plan as make_plan  # noqa: E402
from kvplan.plan.sharding import stage_weights  # noqa: E402
from kvplan.verify.arch import architecture  # noqa: E402
from kvplan.verify.judge import stand_ins  # noqa: E402
from kvplan.verify.layout import cache_layout  # noqa: E402
from kvplan.verify.shards import STORED_BYTES, layer_weights, rank_weights, shard_slices  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
KIMI = "moonshotai/Kimi-Linear-48B-A3B-Instruct"
GiB = 2**30
VLLM_WEIGHTS = json.loads((ROOT / "tests" / "data" / "vllm_kimi_linear_weights.json").read_text())
MLA_LAYERS = [3, 7, 11, 15, 19, 23, 26]  # full_attn_layers 4, 8, ..., 24, 27 counted from 0


def bundled() -> dict:
    return load_yaml((ROOT / "model_specs" / (KIMI.replace("/", "--") + ".yaml")).read_text())["config"]


def kimi_arch(tp: int, config: dict = None):
    config = config or bundled()
    return architecture(config, parse_config(config, KIMI), tp)


def tiny_arch(tp: int = 1, **kda_fields):
    raw = TINY["kimi_linear"]
    if kda_fields:
        raw = {**raw, "linear_attn_config": {**raw["linear_attn_config"], **kda_fields}}
    return architecture(raw, parse_config(raw, "tiny-kimi"), tp)


def frozen_kv_cases() -> list:
    """The kimi grid of vLLM 0.32.0's own KV figures (tests/test_kimi_linear.py reads them the same way)."""
    path = ROOT / "benchmarks" / "engine_vllm_reference.py"
    spec = importlib.util.spec_from_file_location("engine_vllm_reference", path)
    module = sys.modules.get("engine_vllm_reference")
    if module is None:
        module = sys.modules["engine_vllm_reference"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return [c for c in module.load()["cases"] if c["inputs"]["grid"] == "kimi" and c.get("kv")]


# ---- the architecture ------------------------------------------------------------------------------------------

def test_verify_builds_kimi_linears_forward_from_the_config():
    """One rank of tp 2: KDA on the 20 layers kda_layers names (32 heads of 128, kernel 4, the softplus gate), MLA on
    the other 7 with a full-rank q (q_lora_rank null), a latent of 512 + 64 and no rotation (mla_use_nope), scaled by
    (128 + 64)^-0.5; layer 0 a dense MLP of 9,216, then MoE: 256 experts of 1,024, top 8, one shared expert of 1,024,
    sigmoid scores chosen with the correction bias, renormalised, times 2.446 (vLLM KimiMoE)."""
    a = kimi_arch(2)
    assert [i for i, layer in enumerate(a.layers) if layer.mixer == "mla"] == MLA_LAYERS
    assert all(layer.mixer == "kda" for i, layer in enumerate(a.layers) if i not in MLA_LAYERS)
    assert [layer.ffn for layer in a.layers] == ["dense"] + ["moe"] * 26
    assert (a.lin_key_heads, a.lin_value_heads, a.lin_key_dim, a.lin_value_dim, a.conv_kernel) == (32, 32, 128, 128, 4)
    assert a.kda_gate_lower_bound == 0.0 and a.conv_dim_rank == 3 * 4096 // 2
    assert (a.q_lora_rank, a.kv_lora_rank, a.qk_nope_dim, a.qk_rope_dim, a.v_head_dim) == (0, 512, 128, 64, 128)
    assert not a.mla_rope and a.attn_scale == 192 ** -0.5 and a.heads_rank == 16
    assert (a.intermediate, a.experts, a.top_k, a.expert_intermediate, a.shared_intermediate) == (9216, 256, 8, 1024,
                                                                                                   1024)
    assert a.routing == Routing("sigmoid", True, 2.446, 1, 1, correction_bias=True) and not a.router_fp32
    assert (a.expert_min_share, kimi_arch(1).expert_min_share) == (256, 0)  # KimiMoE pads only at tp > 1
    assert any("without RoPE" in note for note in a.notes) and any("Kimi Delta Attention" in n for n in a.notes)


def test_a_gate_lower_bound_is_read_and_a_bad_one_named():
    assert tiny_arch(gate_lower_bound=-2.0).kda_gate_lower_bound == -2.0
    for bad in (0.5, -6, "x", True):
        with pytest.raises(KvplanError, match=r"config field 'linear_attn_config.gate_lower_bound' must be a number "
                                              r"in \[-5, 0\)"):
            tiny_arch(gate_lower_bound=bad)


def test_verify_gets_past_its_architecture_now(monkeypatch):
    """verify used to refuse Kimi Linear (no KDA layer); its architecture now builds and verify goes on to the GPU
    (stopped here where it would load torch)."""
    from kvplan.gpu import nvml

    def stop():
        raise KvplanError("stopped before torch")

    monkeypatch.setattr(nvml, "import_stack", stop)
    r = run_kvplan("verify", KIMI)
    assert r.returncode == 2 and r.stdout == "" and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == ["kvplan: error: stopped before torch"]


def test_a_bad_gate_lower_bound_stops_verify_in_one_line(write_config):
    config = bundled()
    config["linear_attn_config"] = {**config["linear_attn_config"], "gate_lower_bound": 1.0}
    r = run_kvplan("verify", write_config(config))
    assert r.returncode == 2 and r.stdout == "" and "Traceback" not in r.stderr
    line, = r.stderr.strip().splitlines()
    assert "linear_attn_config.gate_lower_bound" in line and "got 1.0" in line


# ---- the weights a rank holds ----------------------------------------------------------------------------------

def _vllm_group(name: str, arch) -> str:
    """The group of vLLM's figures (benchmarks/vllm_reference/kimi_weights.py part_of) a tensor of verify's falls in."""
    if name in ("embed", "lm_head"):
        return name
    if name == "norm":
        return "norms"
    _, index, base = name.split(".", 2)
    if base in ("attn_norm", "ffn_norm"):
        return "norms"
    groups = {"mlp": "dense_mlp", "shared": "shared_experts", "router": "router", "router_correction": "router",
              "w13": "routed_experts", "w2": "routed_experts"}
    group = groups.get(base.split(".")[0])
    return group or ("kda" if arch.layers[int(index)].mixer == "kda" else "mla")


@pytest.mark.parametrize("case", VLLM_WEIGHTS["cases"], ids=lambda c: f"tp{c['inputs']['tp']}")
def test_a_ranks_weights_are_vllms_group_by_group_and_the_estimates(case):
    """Every group of one rank's tensors (kvplan/verify/shards.py) holds the bytes vLLM 0.32.0 allocates for it at
    tp 1, 2, 4 and 8 (experts padded to 256 columns a rank at 8), but MLA: vLLM's attention layers hold five float32
    scalars more each (k/v/q/prob scales and the like, 7 x 20 bytes); the whole equals the estimate's weights term."""
    tp = case["inputs"]["tp"]
    a = kimi_arch(tp)
    groups: dict = {}
    for s in rank_weights(a):
        group = _vllm_group(s.name, a)
        groups[group] = groups.get(group, 0) + s.elements(tp) * STORED_BYTES.get(s.dtype, 2)
    want = {name: g["bytes"] for name, g in case["groups"].items()}
    assert groups["mla"] == want["mla"] - 7 * 5 * 4
    assert {k: v for k, v in groups.items() if k != "mla"} == {k: v for k, v in want.items() if k != "mla"}
    assert sum(groups.values()) == stage_weights(resolve(KIMI), tp) == case["total"]["bytes"] - 140


def test_a_kda_layers_tensors_by_hand_at_tp_2():
    """At tp 2 (16 heads a rank): in_proj's rows are q, k, v (2,048 each), beta (16) and f_a (128, whole on every
    rank: vLLM's replicated shard 4); f_b and g_b 2,048 x 128; the convolution [6,144, 4] and dt_bias [2,048] float32;
    A_log [16] float32; g_a [128, 2,304] whole; o [2,304, 2,048]."""
    a = kimi_arch(2)
    specs = {s.name: s for s in layer_weights(a, a.layers[0])}
    shapes = {n: (specs[n].shape(2), specs[n].dtype) for n in ("in_proj", "f_b", "dt_bias", "conv", "A_log", "g_a",
                                                               "g_b", "o_norm", "o")}
    assert shapes == {"in_proj": ((6288, 2304), "model"), "f_b": ((2048, 128), "model"),
                      "dt_bias": ((2048,), "fp32"), "conv": ((6144, 4), "fp32"), "A_log": ((16,), "fp32"),
                      "g_a": ((128, 2304), "model"), "g_b": ((2048, 128), "model"), "o_norm": ((128,), "model"),
                      "o": ((2304, 2048), "model")}
    # rank 1's rows of the full [12,448, 2,304] in_proj: the second half of q, of k, of v and of beta, all of f_a
    assert shard_slices(specs["in_proj"], 1, 2) == [(2048, 4096), (6144, 8192), (10240, 12288), (12304, 12320),
                                                    (12320, 12448)]
    assert shard_slices(specs["conv"], 1, 2) == [(2048, 4096), (6144, 8192), (10240, 12288)]


def test_expert_columns_past_a_ranks_share_are_zeros():
    """The tiny model's 32-column experts at tp 2: 16 a rank, padded to 256 (KimiMoE's floor) with zeros after each
    of gate and up (w13) and after the down projection's columns (w2), as vLLM zero-fills them."""
    a1, a2 = tiny_arch(1), tiny_arch(2)
    full = full_weights(a1, 0)
    shard = shard_weights(full, a2, 1)
    w13, w2 = shard["layers.1.w13"], shard["layers.1.w2"]
    assert w13.shape == (8, 512, 64) and w2.shape == (8, 64, 256)
    assert torch.equal(w13[:, :16], full["layers.1.w13"][:, 16:32]) and not w13[:, 16:256].any()
    assert torch.equal(w13[:, 256:272], full["layers.1.w13"][:, 48:64]) and not w13[:, 272:].any()
    assert torch.equal(w2[:, :, :16], full["layers.1.w2"][:, :, 16:32]) and not w2[:, :, 16:].any()
    assert shard["layers.1.shared.gate_up"].shape == (32, 64)  # the shared expert is an MLP: not padded


# ---- the state pool --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("tp", [1, 2, 4, 8])
def test_the_kda_state_pool_is_vllms_two_tensors_and_the_plans_bytes(tp):
    """A KDA slot on a rank: the convolution window, 3 taps of 3 x 4,096 / tp channels in bf16, and the recurrent
    state, 32 / tp heads of 128 x 128 in float32 (vLLM's kimi grid: shapes [[3, 12288 / tp], [32 / tp, 128, 128]],
    bfloat16 and float32): 73,728 + 2,097,152 bytes at tp 1 (hand arithmetic), and the pools verify allocates equal
    what the plan predicts."""
    spec = resolve(KIMI)
    p = make_plan(spec, context=32768, kv_dtype="auto", tp=tp, budget_for=fixed_budget(40 * GiB),
                  block_size=None, engine="none", speed=False, suggest=False)
    layout = cache_layout(spec, p)
    state, = [g for g in layout.groups if g.kind == "linear"]
    slots = p.max_concurrency
    assert len(state.layers) == 20 and state.num_blocks == slots
    assert state.tensor_shapes == ((slots, 3 * 3 * 4096 // tp), (slots, 32 * 128 * 128 // tp))
    assert state.dtypes == ("bf16", "fp32") and state.dtype_label == "bf16 + fp32"
    assert state.layer_bytes == slots * (73728 + 2097152) // tp
    vllm = next(c for c in frozen_kv_cases() if c["inputs"]["tp"] == tp)["kv"]["groups"][0]
    assert [math.prod(s) for s in vllm["shapes"]] == [3 * 3 * 4096 // tp, 32 * 128 * 128 // tp]
    assert vllm["dtypes"] == ["bfloat16", "float32"] and vllm["real_page_size_bytes"] == (73728 + 2097152) // tp
    assert layout.allocated_bytes == layout.predicted_bytes
    assert p.state_bytes_per_sequence_per_gpu == 20 * (73728 + 2097152) // tp
    caches = caches_from_layout(layout, torch.device("meta"))
    conv, recurrent = caches[0].tensors
    assert (conv.dtype, recurrent.dtype) == (torch.bfloat16, torch.float32)
    assert (tuple(conv.shape), tuple(recurrent.shape)) == state.tensor_shapes
    mla, = [g for g in layout.groups if g.kind == "mla"]
    assert caches[MLA_LAYERS[0]].tensors[0].shape[-1] == 576 and len(mla.layers) == 7


# ---- the layer's pieces ----------------------------------------------------------------------------------------

def test_the_gate_is_a_decay_per_key_channel_by_hand():
    """g = -exp(A_log) softplus(raw + dt_bias) per channel: raw 0 with dt_bias (0, 1) gives softplus ln 2 and
    ln(1 + e) = 1.3133; A_log (0, ln 2) scales head 0 by 1 and head 1 by 2; above 20 softplus is its argument (vLLM's
    threshold); with a lower bound b, b sigmoid(exp(A_log) x)."""
    raw = torch.tensor([[0.0, 0.0, 0.0, 30.0]])
    dt_bias, a_log = torch.tensor([0.0, 1.0, 0.0, 1.0]), torch.tensor([0.0, math.log(2)])
    g = kda.kda_gate(raw, dt_bias, a_log, 2, 2)
    assert torch.allclose(g[0], torch.tensor([[-math.log(2), -math.log(1 + math.e)], [-2 * math.log(2), -62.0]]))
    bounded = kda.kda_gate(raw, dt_bias, a_log, 2, 2, lower_bound=-2.0)
    sig = 1 / (1 + math.exp(-1.0))
    assert torch.allclose(bounded[0], torch.tensor([[-1.0, -2 * sig], [-1.0, -2.0]]))


def _random_inputs(r, n, h, d, seed, strong=False):
    gen = torch.Generator().manual_seed(seed)

    def unit(x):
        return x / x.norm(dim=-1, keepdim=True)

    q = unit(torch.randn(r, n, h, d, generator=gen, dtype=torch.float64)) * d ** -0.5
    k = unit(torch.randn(r, n, h, d, generator=gen, dtype=torch.float64))
    v = torch.randn(r, n, h, d, generator=gen, dtype=torch.float64)
    # log decays per channel: strong ones (to -40 a token) sum to thousands over a chunk, which a chunk form that
    # divided by exp(G) would overflow
    g = -torch.rand(r, n, h, d, generator=gen, dtype=torch.float64) * (40.0 if strong else 0.3)
    beta = torch.rand(r, n, h, generator=gen, dtype=torch.float64)
    state = torch.randn(r, h, d, d, generator=gen, dtype=torch.float64) * 0.1
    return q, k, v, g, beta, state


@pytest.mark.parametrize("n", [1, 5, 64, 150])
@pytest.mark.parametrize("strong", [False, True])
def test_chunked_prefill_is_the_token_recurrence(n, strong, monkeypatch):
    """kda_chunked in float32 against kda_recurrent in float64, from a non-zero state: one short chunk, exactly one,
    and three of 64 with the last part padded; the pair decays made in slices of any size (PAIR_BYTES)."""
    q, k, v, g, beta, state = _random_inputs(2, n, 3, 16, seed=n)
    if strong:
        g = _random_inputs(2, n, 3, 16, seed=n, strong=True)[3]
    want, want_state = kda.kda_recurrent(q, k, v, g, beta, state)
    for pair_bytes in (kda.PAIR_BYTES, 1):
        monkeypatch.setattr(kda, "PAIR_BYTES", pair_bytes)
        got, got_state = kda.kda_chunked(q.float(), k.float(), v.float(), g.float(), beta.float(), state.float())
        assert got.shape == want.shape and got_state.shape == want_state.shape
        # float32 rounding: at most 2.3e-7 here (session 49); with the decays summed in float32, strong ones were
        # 1.7e-5 off (a pair's decay the difference of two sums in the thousands)
        assert float((got.double() - want).abs().max() / want.abs().max()) < 1e-6
        assert float((got_state.double() - want_state).abs().max() / want_state.abs().max()) < 1e-6


def test_the_recurrence_is_the_rule_written_out():
    """One head, two tokens, two channels, by hand: S1 = k1 (b1 v1)^T from S0 = 0; S2 = D2 S1 + k2 (b2 (v2 - (D2 S1)^T
    k2))^T with D2 = diag(e^g2) decaying each key channel at its own rate; o_t = S_t^T q_t."""
    q = torch.tensor([[[[1.0, 0.0]], [[0.0, 1.0]]]], dtype=torch.float64)  # [R, L, H, D]
    k = torch.tensor([[[[1.0, 0.0]], [[0.6, 0.8]]]], dtype=torch.float64)
    v = torch.tensor([[[[2.0, 1.0]], [[1.0, 3.0]]]], dtype=torch.float64)
    g = torch.tensor([[[[0.0, 0.0]], [[math.log(0.5), math.log(0.25)]]]], dtype=torch.float64)
    beta = torch.tensor([[[0.5], [1.0]]], dtype=torch.float64)
    out, s = kda.kda_recurrent(q, k, v, g, beta, torch.zeros(1, 1, 2, 2, dtype=torch.float64))
    # S1 = [[1, 0.5], [0, 0]]; decayed rows (x 0.5, x 0.25): [[0.5, 0.25], [0, 0]]; its k2 read: 0.6 x (0.5, 0.25) =
    # (0.3, 0.15); delta = (1 - 0.3, 3 - 0.15) = (0.7, 2.85); S2 = [[0.5 + 0.42, 0.25 + 1.71], [0.56, 2.28]]
    assert torch.allclose(out[0, 0, 0], torch.tensor([1.0, 0.5], dtype=torch.float64))
    assert torch.allclose(s[0, 0], torch.tensor([[0.92, 1.96], [0.56, 2.28]], dtype=torch.float64))
    assert torch.allclose(out[0, 1, 0], torch.tensor([0.56, 2.28], dtype=torch.float64))


# ---- the whole forward pass against the float64 reference ------------------------------------------------------

def test_tiny_kimi_linear_matches_the_reference():
    """Prefill (ragged prompts, paged MLA latents with shuffled block tables, NaN in unused slots) and decode of the
    tiny model: 3.5e-6 of the logits' scale on the CPU (session 49); with the gate's mean over a head's channels
    instead (a per-head gate) 1.5 off, with the o_norm's eps 1e-6 instead of 1e-5 1.3 off (0.8 without experts)."""
    built = []
    assert run_against_reference(tiny_arch(), built=built) < TOL
    labels = {**built[0].rt.paged.labels, **built[0].rt.labels}
    assert "NOT a CUDA kernel" in labels["kda"] and "kda" in stand_ins(labels)


def test_long_prompts_over_several_chunks_match_the_reference(monkeypatch):
    """Prompts of 70 and 133 tokens (2 and 3 chunks of 64), and the short ones in chunks of 4 with the pair decays a
    chunk at a time: the chunk boundaries and the state carried across them (4.7e-6 and 3.8e-6, session 49)."""
    assert run_against_reference(tiny_arch(), prompt_lens=(70, 133), steps=2, block=8) < TOL
    monkeypatch.setattr(kda, "CHUNK", 4)
    monkeypatch.setattr(kda, "PAIR_BYTES", 1)
    assert run_against_reference(tiny_arch(), prompt_lens=(5, 13)) < TOL


def test_the_bounded_gate_matches_the_reference():
    assert run_against_reference(tiny_arch(gate_lower_bound=-2.0)) < TOL


def test_stacked_weights_and_a_joined_shared_expert_match_the_reference():
    """As verify allocates them: the shared expert (1 x 32 columns) joined to the routed experts' launches."""
    built = []
    assert run_against_reference(tiny_arch(), stacked=True, built=built) < TOL
    assert built[0].blocks[1].ffn.joined == 1


def test_decode_slices_the_batch_under_the_gather_limit(monkeypatch):
    """The decode step gathers at most STATE_GATHER_BYTES of states at once: one sequence a slice here."""
    monkeypatch.setattr(kda, "STATE_GATHER_BYTES", 1)
    assert run_against_reference(tiny_arch(), prompt_lens=(5, 13, 8)) < TOL


def test_the_profile_run_skips_the_recurrence():
    """Without a cache (the profile run) vLLM's KDA layer returns before the convolution, the recurrence and the norm:
    the layer's output is o_proj of zeros; the projections still run."""
    from kvplan.gpu.model import Runtime, Transformer, layer_weights as block_weights
    from kvplan.gpu.step import prefill_step

    a = tiny_arch()
    weights = full_weights(a, 0)
    model = Transformer(a, weights, Runtime("cpu"))
    layer = kda.KimiDeltaAttention(a, a.layers[0], block_weights(weights, 0), model.rt)
    x = torch.randn(2 * 6, a.hidden)
    out = layer(x, prefill_step(2, 6, "cpu"), None)
    assert out.shape == (12, a.hidden) and not out.any()
    assert "kda" not in model.rt.labels
    logits = model(torch.randint(0, a.vocab, (12,)), prefill_step(2, 6, "cpu"))
    assert logits.shape == (2, a.vocab) and torch.isfinite(logits).all()


def _kda128():
    """A Kimi Linear of the real KDA head (128 channels, 4 heads), one KDA layer and one MLA layer, no experts."""
    raw = {k: v for k, v in TINY["kimi_linear"].items() if k not in ("num_experts", "num_experts_per_token")}
    raw.update(hidden_size=256, num_hidden_layers=2,
               linear_attn_config={"kda_layers": [1], "full_attn_layers": [2], "num_heads": 4, "head_dim": 128,
                                   "short_conv_kernel_size": 4})
    return raw


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU"))])
def test_a_real_kda_head_matches_the_reference(device):
    """Heads of 128 key and value channels (the bundled model's): a 70-token prompt (two chunks) and three decode
    steps in float32 against the float64 reference, on the CPU (9.7e-7, session 49) and (where there is one) on the
    GPU's torch path."""
    from kvplan.gpu.caches import small_caches
    from kvplan.gpu.generate import decode, prefill
    from kvplan.gpu.model import Runtime, Transformer

    raw = _kda128()
    a = architecture(raw, parse_config(raw, "kda128"), 1)
    weights = full_weights(a, 5)
    model = Transformer(a, {k: v.to(device) for k, v in weights.items()}, Runtime(device))
    model.caches = small_caches(a, 32, 16, 1, torch.float32, device)
    ref = Reference(a, weights)
    gen = torch.Generator().manual_seed(6)
    prompt = torch.randint(0, a.vocab, (70,), generator=gen)
    row = list(range(31, 21, -1))
    paged = {c.group for c in model.caches.values() if c.kind != "state"}
    slots = torch.tensor([0], device=device)
    out = prefill(model, prompt[None].to(device), {g: [row] for g in paged}, slots)[0]
    for token in prompt.tolist():
        want = ref.step(token)
    worst = float((out.double().cpu() - want).abs().max() / want.abs().max())
    tables = {g: torch.tensor([row], dtype=torch.int32, device=device) for g in paged}
    for i in range(3):
        token = torch.randint(0, a.vocab, (1,), generator=gen)
        out = decode(model, token.to(device), torch.tensor([70 + i], device=device), tables, slots)[0]
        want = ref.step(int(token))
        worst = max(worst, float((out.double().cpu() - want).abs().max() / want.abs().max()))
    assert worst < TOL, worst


def test_mla_decode_reads_the_hybrids_1920_token_blocks_as_the_kernels_pages():
    """Kimi Linear's MLA blocks are 1,920 tokens (raised to hold a KDA state page; tests/test_kimi_linear.py), more
    than the bundled MLA kernel takes (16-128): its plan gets them as 15 pages of 128 each, and reading them so gives
    the attention over the 1,920-token pages (a stand-in plan runs the torch form here; NaN in unused slots)."""
    from types import SimpleNamespace

    from kvplan.gpu import paged

    seen = []

    def plan(heads, rank, rope, block_size, dtype, max_batch, max_blocks_per_seq, device):
        seen.append((block_size, max_blocks_per_seq))
        return SimpleNamespace(path="stand-in", run=lambda q, r, cache, table, lens, scale: paged.torch_paged_mla(
            q, r, cache, table, lens, scale))

    g = torch.Generator().manual_seed(3)
    bs, width = 1920, 24
    cache = torch.full((3, bs, width), float("nan"))
    lens = torch.tensor([2500, 700])
    table = torch.tensor([[2, 0], [1, 2]], dtype=torch.int32)
    for b, n in enumerate(lens.tolist()):
        for t in range(n):
            cache[table[b, t // bs], t % bs] = torch.randn(width, generator=g)
    q_latent, q_rope = torch.randn(2, 4, 16, generator=g), torch.randn(2, 4, 8, generator=g)
    want = paged.torch_paged_mla(q_latent, q_rope, cache, table, lens, 0.2)
    attention = paged.PagedAttention("cpu")
    attention.cuda, attention._kernels = True, SimpleNamespace(paged_mla_decode_plan=plan)
    got = attention.mla(q_latent, q_rope, cache, table, lens, 0.2)
    assert seen == [(128, 2 * 15)] and attention.labels["mla"].endswith("stand-in")
    assert torch.isfinite(got).all() and torch.allclose(got, want, atol=1e-6)


# ---- on a GPU --------------------------------------------------------------------------------------------------

@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_chunked_prefill_on_the_gpu_is_the_recurrence():
    """The chunk form's float32 torch on the GPU (cuBLAS, full float32 products) at the real head, 128 x 128, over
    300 tokens of strong decays, against the float64 recurrence on the CPU."""
    q, k, v, g, beta, state = _random_inputs(1, 300, 4, 128, seed=1, strong=True)
    want, want_state = kda.kda_recurrent(q, k, v, g, beta, state)
    got, got_state = kda.kda_chunked(*(x.float().cuda() for x in (q, k, v, g, beta, state)))
    assert float((got.double().cpu() - want).abs().max() / want.abs().max()) < 1e-4
    assert float((got_state.double().cpu() - want_state).abs().max() / want_state.abs().max()) < 1e-4


@pytest.mark.parametrize("value", [False, None])
def test_rotated_mla_is_refused_as_vllm_builds_none(value):
    """Review finding (session 49): vLLM 0.32.0's Kimi Linear asserts mla_use_nope (models/kimi_k3/nvidia/model.py:918)
    and its config class defaults it to False (transformers_utils/configs/kimi_linear.py:47): a config without it,
    or with it false, is one that vLLM does not serve, so verify refuses it in one line."""
    config = bundled()
    if value is None:
        config.pop("mla_use_nope", None)
    else:
        config["mla_use_nope"] = value
    with pytest.raises(KvplanError, match="config field 'mla_use_nope' must be true"):
        kimi_arch(1, config)
