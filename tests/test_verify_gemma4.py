"""verify's Gemma 4 forward pass as vLLM 0.32.0 model_executor/models/gemma4.py builds it (the shapes:
kvplan/verify/arch.py; the layers: kvplan/gpu/gemma4.py): sliding and full layers of different head shapes, the
full layers' proportional rotation, KV-sharing layers that keep no cache and read their target's, per-layer inputs,
the MoE block beside the MLP (26B-A4B), soft-capped logits. On the CPU against the float64 reference
(kvplan/gpu/reference.py: one token at a time, contiguous caches) with paged caches in shuffled blocks and NaN in
every unused slot; tp 2 on gloo ranks; the bytes a rank holds against the estimate's weights for the bundled 31B
and E4B (the estimate's own figures are checked against the published parameter count in tests/test_gemma4.py) and
hand arithmetic. GPU tests at the end skip without CUDA (benchmarks/sessions/s49_gemma4_device.sh runs them)."""

import copy
import math
import re

import pytest

from conftest import ROOT, load_yaml, run_kvplan
from tiny_models import TINY

torch = pytest.importorskip("torch")

from bf16_forward import unit_attention_logits, worst_bf16_error  # noqa: E402
from test_verify_model import TOL, run_against_reference  # noqa: E402
from test_verify_tp import assert_ranks_match  # noqa: E402
from kvplan.errors import KvplanError  # noqa: E402
from kvplan.gpu.caches import caches_from_layout, small_caches  # noqa: E402
from kvplan.gpu.gemma4 import Gemma4Rope, inverse_frequencies  # noqa: E402
from kvplan.gpu.generate import decode, prefill  # noqa: E402
from kvplan.gpu.model import Runtime, Transformer  # noqa: E402
from kvplan.gpu.ops import Rope  # noqa: E402
from kvplan.gpu.weights import full_weights  # noqa: E402
from kvplan.model import parse_config  # noqa: E402
from kvplan.model.sources import resolve  # noqa: E402
from kvplan.plan.budget import fixed_budget  # noqa: E402
from kvplan.plan.plan import plan as make_plan  # noqa: E402
from kvplan.plan.sharding import stage_weights  # noqa: E402
from kvplan.verify.arch import DEFAULT_ROPE, HeadShape, architecture  # noqa: E402
from kvplan.verify.judge import STAND_IN, stand_ins  # noqa: E402
from kvplan.verify.layout import cache_layout  # noqa: E402
from kvplan.verify.shards import rank_weights, weight_bytes  # noqa: E402

E4B, DENSE = "google/gemma-4-E4B-it", "google/gemma-4-31B-it"
GiB = 2**30
# Gemma 4 as the 31B and 26B-A4B: full layers of one KV head of 512 (attention_k_eq_v, num_global_key_value_heads),
# no sharing, no per-layer inputs; the 26B-A4B's dense MLP and MoE block side by side in every layer (softmax top 2
# of 4, renormalised, per-expert scales). Kept here, not in TINY: its router reads hidden^-0.5 of the normed stream,
# near ties that bf16 flips on the GPU unless the test makes the routing decisive (test_gemma4_on_the_gpu does)
MOE = {**TINY["gemma4"], "num_hidden_layers": 4, "attention_k_eq_v": True, "num_global_key_value_heads": 1,
       "layer_types": ["sliding_attention", "full_attention", "sliding_attention", "full_attention"],
       "num_kv_shared_layers": 0, "use_double_wide_mlp": False, "hidden_size_per_layer_input": 0,
       "enable_moe_block": True, "num_experts": 4, "top_k_experts": 2, "moe_intermediate_size": 32}
CONFIGS = {"gemma4": TINY["gemma4"], "gemma4_moe": MOE}


def tiny(name, tp=1):
    raw = CONFIGS[name]
    return architecture(raw, parse_config(raw, name), tp)


def bundled(model, tp=1):
    raw: list = []
    spec = resolve(model, raw_out=raw)
    return spec, raw[0], architecture(raw[0], spec, tp)


def bundled_config(model: str) -> dict:
    return load_yaml((ROOT / "model_specs" / (model.replace("/", "--") + ".yaml")).read_text())["config"]


# ---- the forward against the float64 reference ----------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("prompt_lens, block, seed", [((5, 13), 4, 0), ((30, 17), 8, 1), ((2, 21), 16, 2)])
def test_forward_matches_the_reference(name, prompt_lens, block, seed):
    # float32 against float64: ~2e-5; the full layers rotated on every pair (not a quarter of them) are 0.4 off, the
    # per-layer inputs without their vocabulary mask 0.9, v without its norm 0.5, the logits uncapped 7e-3
    assert run_against_reference(tiny(name), prompt_lens, block=block, seed=seed) < TOL


def test_two_gloo_ranks_match_the_reference():
    """tp 2: the sliding layers' 2 KV heads split, the MoE tiny's full layers' one KV head on both ranks, the
    per-layer table split by vocabulary and its projection by rows (its output gathered), the experts by their
    intermediate size; the ranks' logits are the single-process float64 reference's."""
    from kvplan.gpu.tp import forward_check, launch

    prompt = [3, 17, 5, 99, 42, 7, 1, 0, 64, 12, 100, 127, 96]  # 100, 127, 96: past the per-layer vocabulary
    names = sorted(CONFIGS)
    ranks = launch(forward_check, ([(CONFIGS[n], 7, prompt, 3) for n in names],), 2, "gloo", timeout_s=300)
    for name, got0, got1 in zip(names, ranks[0], ranks[1]):
        assert_ranks_match(tiny(name), 7, prompt, got0, got1, name)


def test_wide_prefill_in_query_blocks_is_causal_attention(monkeypatch):
    """The 512-wide layers' prefill, queries a block at a time, against one causal SDPA over the whole prompt (GQA:
    4 query heads on 2 KV heads); and the whole forward with blocks of 8 against the reference."""
    from kvplan.gpu import gemma4
    from kvplan.gpu.mixers import sdpa_prefill
    from kvplan.gpu.step import Step

    monkeypatch.setattr(gemma4, "WIDE_QUERY_BLOCK", 8)
    gen = torch.Generator().manual_seed(9)
    step = Step(False, torch.arange(21).repeat(2), 2, seq_len=21)
    q = torch.randn(42, 4, 512, generator=gen, dtype=torch.float64)
    k, v = (torch.randn(42, 2, 512, generator=gen, dtype=torch.float64) for _ in range(2))
    want = sdpa_prefill(q, k, v, step, None, 1.0)
    assert torch.allclose(gemma4.wide_prefill(q, k, v, step, None, 1.0), want, atol=1e-12)
    assert run_against_reference(tiny("gemma4"), (30, 17), block=8) < TOL


# ---- the architecture from the bundled configs --------------------------------------------------------------------

def test_the_31b_layers_as_vllm_builds_them():
    """Every 6th layer full (5, 11, ..., 59): 4 KV heads (num_global_key_value_heads under attention_k_eq_v) of 512,
    RoPE theta 1e6 turning 64 of each head's 256 pairs (partial_rotary_factor 0.25: rotary_dim 128, the
    proportional form); the others 16 KV heads of 256 over a 1,024-token window, theta 1e4 on every pair.
    Scaling 1.0 (gemma4.py:400), plain RMS norms (x * w, not Gemma 3's 1 + w), logits capped at 30."""
    _, _, a = bundled(DENSE)
    full = [layer for layer in a.layers if layer.window is None]
    assert [layer.index for layer in full] == list(range(5, 60, 6))
    assert {(a.attention(layer), layer.rope_theta) for layer in full} \
        == {(HeadShape(32, 4, 512, 512, 128, 1.0, rope_type="proportional"), 1e6)}
    sliding = [layer for layer in a.layers if layer.window is not None]
    assert {(a.attention(layer), layer.window, layer.rope_theta) for layer in sliding} \
        == {(HeadShape(32, 16, 256, 256, 256, 1.0), 1024, 1e4)}
    assert all(layer.reads is None and layer.cache == layer.index and layer.intermediate == 21504 for layer in a.layers)
    assert (a.heads, a.attn_scale, a.norm_plus_one, a.logit_softcap, a.per_layer_input) == (32, 1.0, False, 30.0, 0)
    # sqrt(5,376) = 73.32 held in bf16 as vLLM holds it (gemma4.py:1090-1097): 73.5
    assert a.tied_embeddings and a.embed_scale == 73.5 and not a.experts


def test_the_e4b_layers_as_vllm_builds_them():
    """Layers 24-41 share: no cache, each reads the last earlier layer of its type among 0-23 (gemma4.py:473-492):
    22 (sliding) or 23 (full); per-layer inputs of 256 values a layer over a 262,144-token table."""
    _, _, a = bundled(E4B)
    assert [layer.cache for layer in a.layers] == list(range(24)) + [None] * 18
    assert [layer.reads for layer in a.layers[24:]] == [23 if layer.window is None else 22 for layer in a.layers[24:]]
    kv = [(layer.window, a.attention(layer).kv_heads, a.attention(layer).head_dim) for layer in a.layers]
    assert {(k, d) for w, k, d in kv if w is None} == {(2, 512)}  # KV-sharing layers: their target's heads too
    assert {(k, d) for w, k, d in kv if w} == {(2, 256)}
    assert (a.per_layer_input, a.per_layer_vocab, a.heads) == (256, 262144, 8)
    assert {layer.intermediate for layer in a.layers} == {10240}  # use_double_wide_mlp false


def test_the_tiny_double_wide_mlp_and_moe():
    a = tiny("gemma4")
    assert [layer.intermediate for layer in a.layers] == [96] * 4 + [192] * 3  # the 3 KV-sharing layers: 2 x 96
    assert [layer.reads for layer in a.layers] == [None] * 4 + [2, 3, 2]
    m = tiny("gemma4_moe")
    assert {layer.ffn for layer in m.layers} == {"moe"} and (m.experts, m.top_k, m.expert_intermediate) == (4, 2, 32)
    names = {s.name.split(".", 2)[-1] for s in rank_weights(m) if s.name.startswith("layers.1.")}
    assert {"mlp.gate_up", "mlp.down", "router", "router_norm", "router_per_expert", "w13", "w2", "mlp_post_norm",
            "moe_pre_norm", "moe_post_norm", "qkv", "k_norm"} <= names


# ---- the bytes a rank holds --------------------------------------------------------------------------------------

@pytest.mark.parametrize("model, tp", [(DENSE, 1), (DENSE, 2), (DENSE, 4), (DENSE, 8), (E4B, 1), (E4B, 2), (E4B, 8)])
def test_a_rank_holds_the_estimates_weights(model, tp):
    """The tensors verify allocates on one rank are the estimate's weights a GPU (kvplan/plan/sharding.py
    stage_weights) less the vision tower's share (verify holds the tower as its bytes beside them, gpu/rank.py). At
    tp 8 the 31B's full layers' 4 KV heads are replicated on 2 ranks each while the sliding layers' 16 split: each
    layer type's K / V rows by its own heads, in verify's HeadShape and the estimate's kv_split alike."""
    from kvplan.gpu.weights import allocate_weights

    spec, _, a = bundled(model, tp)
    vision = sum(g.bytes for g in spec.params if g.name == "vision")
    assert weight_bytes(a) == stage_weights(spec, tp) - vision // tp
    if tp == 1:
        assert weight_bytes(a) == sum(g.bytes for g in spec.params if g.name != "vision")
    allocated = allocate_weights(a, "meta", fill=False)  # what verify's build allocates (shapes only)
    assert sum(t.numel() * t.element_size() for t in allocated.values()) == weight_bytes(a)


@pytest.mark.parametrize("model, tp", [(DENSE, 1), (E4B, 1), (E4B, 2)])
def test_the_real_shapes_run_through_the_forward(model, tp):
    """The bundled models' real shapes through verify's forward on meta tensors (shapes only, no memory): the
    profile run's prefill without caches (the sharing layers take their targets' K/V from the same pass), then a
    decode step over the layout's caches; one rank of tp 2 simulated alone (its per-layer-input share stands in for
    the gathered projection, its logits the rank's share of the vocabulary)."""
    from kvplan.gpu.weights import allocate_weights

    spec, _, a = bundled(model, tp)
    model_ = Transformer(a, allocate_weights(a, "meta", fill=False), Runtime("meta"))
    assert prefill(model_, torch.zeros(3, 40, dtype=torch.long, device="meta")).shape == (3, 262144 // tp)
    plan = make_plan(spec, context=64, kv_dtype="auto", tp=tp, budget_for=fixed_budget(GiB),
                     block_size=16, engine="none", speed=False, suggest=False)
    layout = cache_layout(spec, plan)
    model_.caches = caches_from_layout(layout, "meta", pools={g.name: 8 for g in layout.groups})
    tables = {g.name: torch.zeros(2, 4, dtype=torch.int32, device="meta") for g in layout.groups}
    out = decode(model_, torch.zeros(2, dtype=torch.long, device="meta"), torch.tensor([40, 41], device="meta"), tables)
    assert out.shape == (2, 262144 // tp)


def test_the_whole_models_bytes_by_hand():
    # 31B: the checkpoint's 62,546,177,752 bytes less its vision tower, plus the V rows vLLM allocates for the 10
    # K = V layers (4 heads x 512 x 5,376, bf16)
    spec, _, a = bundled(DENSE)
    vision = sum(g.bytes for g in spec.params if g.name == "vision")
    assert weight_bytes(a) == 62_546_177_752 - vision + 10 * 2048 * 5376 * 2 == 61_614_891_640
    # E4B's embedding and per-layer table, split by vocabulary: 262,144 x (2,560 + 42 x 256) bf16 over 2 ranks
    specs = {s.name: s for s in rank_weights(bundled(E4B, 2)[2])}
    assert specs["embed"].shape(2) == (131072, 2560) and specs["ple_embed"].shape(2) == (131072, 10752)
    assert specs["ple_model_proj"].shape(2) == (5376, 2560) and specs["layers.30.ple_gate"].shape(2) == (256, 2560)
    assert specs["layers.29.q"].shape(2) == (4 * 512, 2560) and "layers.29.qkv" not in specs  # full, KV-sharing
    assert specs["layers.30.q"].shape(2) == (4 * 256, 2560)  # sliding, KV-sharing


def test_at_tp_8_the_31b_full_layers_kv_heads_are_replicated():
    """4 KV heads over 8 ranks: each rank holds a whole head of K and V (vLLM QKVParallelLinear replicates KV heads
    fewer than the ranks), 16 / 8 = 2 of each sliding layer's 16. q: 32 / 8 = 4 heads."""
    specs = {s.name: s for s in rank_weights(bundled(DENSE, 8)[2])}
    assert specs["layers.5.qkv"].shape(8) == (4 * 512 + 512 + 512, 5376)
    assert specs["layers.0.qkv"].shape(8) == (4 * 256 + 2 * 256 + 2 * 256, 5376)
    assert specs["layers.5.o"].shape(8) == (5376, 4 * 512)


def test_the_rank_holds_the_wrappers_per_layer_input_buffer():
    """vLLM's Gemma4ForConditionalGeneration allocates max_num_batched_tokens x layers x 256 bf16 at build (the
    estimate's weights term, engines/vllm_budget.py); verify's build holds the same bytes beside the weights."""
    from kvplan.engines.vllm_budget import per_layer_input_buffer
    from kvplan.gpu.rank import Options

    opts = Options(1, 8192, "auto", 0.92, None, 256, 8192)
    assert per_layer_input_buffer(resolve(E4B), opts) == 8192 * 42 * 256 * 2
    assert per_layer_input_buffer(resolve(DENSE), opts) == 0  # no per-layer inputs


# ---- caches ---------------------------------------------------------------------------------------------------

def test_sharing_layers_allocate_nothing():
    """The E4B's 18 KV-sharing layers have no group and no tensors; its 24 own layers hold exactly what the plan
    predicts: 137 sequences of 8,192 tokens in 20 GiB, each 20 sliding layers x 33 blocks (a 512-token window in
    blocks of 16) and 4 full layers x 512 blocks, 2 KV heads of 256 and 512."""
    spec = resolve(E4B)
    plan = make_plan(spec, context=8192, kv_dtype="auto", tp=1, budget_for=fixed_budget(20 * GiB),
                     block_size=16, engine="none", speed=False, suggest=False)
    layout = cache_layout(spec, plan)
    assert sorted(i for g in layout.groups for i in g.layers) == list(range(24))
    per_sequence = 20 * 33 * 16 * 2 * 256 * 2 * 2 + 4 * 512 * 16 * 2 * 512 * 2 * 2
    assert layout.max_concurrency == 20 * GiB // per_sequence == 137
    assert layout.allocated_bytes == layout.predicted_bytes == 137 * per_sequence
    caches = caches_from_layout(layout, "meta")
    assert sorted(caches) == list(range(24))
    assert caches[23].tensors[0].shape == (137 * 512, 16, 2, 512)
    assert caches[22].tensors[0].shape == (137 * 33, 16, 2, 256)
    a = tiny("gemma4")
    small = small_caches(a, 8, 4, 1, torch.float32)
    assert sorted(small) == [0, 1, 2, 3]  # layers 4-6 read 2, 3 and 2
    assert small[2].tensors[0].shape == (8, 4, 2, 512) and small[3].tensors[0].shape == (8, 4, 2, 64)
    model = Transformer(a, full_weights(a, 0), Runtime("cpu"))
    assert [block.cache for block in model.blocks] == [0, 1, 2, 3, 2, 3, 2]


def test_the_wide_layers_say_they_ran_torch():
    """The 512-wide full layers' decode attention runs torch over gathered pages (the bundled kernel takes head_dim
    64, 128, 256) and says so in the words judge.py reads as a stand-in: the decode step is then not judged; the
    64-wide layers go through PagedAttention.gqa (the bundled kernel on a GPU)."""
    a = tiny("gemma4")
    model = Transformer(a, full_weights(a, 0), Runtime("cpu"))
    model.caches = small_caches(a, 8, 4, 1, torch.float32)
    groups = {c.group for c in model.caches.values()}
    prefill(model, torch.tensor([[1, 2, 3]]), {g: [[5, 6]] for g in groups})
    decode(model, torch.tensor([4]), torch.tensor([3]), {g: torch.tensor([[5, 6]], dtype=torch.int32) for g in groups})
    labels = {**model.rt.paged.labels, **model.rt.labels}
    # the wide layers' attention and their torch RoPE + cache writes, and the sharing layers' torch RoPE on q
    assert stand_ins(labels) == ["attention, head_dim 512", "rope_cache, head_dim 512", "KV-sharing layers"]
    assert STAND_IN in labels["attention, head_dim 512"] and "64, 128, 256" in labels["attention, head_dim 512"]
    assert labels["attention"] == "torch over gathered pages (CPU)"
    assert "KV-sharing layers" in labels


# ---- rotations ----------------------------------------------------------------------------------------------------

def test_the_proportional_rotation_by_hand():
    """gemma4_rope.py: rotary_dim // 2 = 64 frequencies theta^(-2i / 512), then 192 zeros (pairs left as they are);
    the default form over 256 dims theta^(-2i / 256)."""
    inv = inverse_frequencies("proportional", 1e6, 512, 128)
    assert len(inv) == 256 and inv[0] == 1.0 and inv[1] == pytest.approx(1e6 ** (-2 / 512))
    assert inv[63] == pytest.approx(1e6 ** (-126 / 512)) and set(inv[64:]) == {0.0}
    default = inverse_frequencies("default", 1e4, 256, 256)
    assert len(default) == 128 and default[1] == pytest.approx(1e4 ** (-2 / 256))
    layer = tiny("gemma4").layers[2]  # full, 512 wide
    cos, sin = Gemma4Rope(tiny("gemma4"), "cpu", torch.float64).tables(torch.tensor([3]))[
        ("proportional", 1e6, 512, 128)]
    x = torch.randn(1, 1, 512, dtype=torch.float64)
    y = Rope.apply(x, cos, sin)
    # pair (0, 256) turned by 3 rad; pairs 64.. (and 320..) unchanged
    assert torch.allclose(y[0, 0, 0], x[0, 0, 0] * math.cos(3) - x[0, 0, 256] * math.sin(3))
    assert torch.allclose(y[0, 0, 256], x[0, 0, 256] * math.cos(3) + x[0, 0, 0] * math.sin(3))
    assert torch.equal(y[..., 64:256], x[..., 64:256]) and torch.equal(y[..., 320:], x[..., 320:])
    assert tiny("gemma4").attention(layer).rope_dim == 128


# ---- refusals, one line each ------------------------------------------------------------------------------------

@pytest.mark.parametrize("change, message", [
    ({"attn_logit_softcapping": 50.0}, "soft-caps its attention logits"),
    ({"attention_bias": True}, "has attention biases"),
    ({"use_bidirectional_attention": "all"}, "attends bidirectionally over every token"),
    ({"rope_parameters": {"full_attention": {"rope_type": "yarn", "factor": 4.0}}},
     "the full_attention layers' rope_type is 'yarn'"),
    ({"quantization_config": {"quant_method": "fp8", "activation_scheme": "dynamic"}}, "stores weights as fp8"),
])
def test_what_verify_does_not_run_is_refused_in_one_line(change, message, write_config):
    raw = {**TINY["gemma4"], **change}
    with pytest.raises(KvplanError, match=message):
        architecture(raw, parse_config(raw, "tiny"), 1)
    r = run_kvplan("verify", write_config(raw))
    assert r.returncode == 2 and r.stdout == "" and "Traceback" not in r.stderr
    line, = r.stderr.strip().splitlines()
    assert message in line


@pytest.mark.parametrize("model", [E4B, DENSE])
def test_verify_runs_it_now(model, monkeypatch):
    """verify used to refuse Gemma 4 in one line; now its architecture builds and verify goes on to the GPU (stopped
    here where it would load torch)."""
    from kvplan.gpu import nvml

    def stop():
        raise KvplanError("stopped before torch")

    monkeypatch.setattr(nvml, "import_stack", stop)
    r = run_kvplan("verify", model, "--context", "8192")
    assert r.returncode == 2 and r.stderr.strip().splitlines() == ["kvplan: error: stopped before torch"]


def test_a_tp_that_cannot_split_the_per_layer_inputs_is_refused():
    raw = copy.deepcopy(bundled_config(E4B))
    raw["text_config"]["hidden_size_per_layer_input"] = 250  # 42 x 250 = 10,500: not a multiple of 8 ranks
    with pytest.raises(KvplanError, match="num_hidden_layers x hidden_size_per_layer_input \\(10500\\) is not "
                                          "divisible by tp 8"):
        architecture(raw, parse_config(raw, "e4b-odd"), 8)


# ---- on a GPU (skipped without CUDA) --------------------------------------------------------------------------

gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@gpu
@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("graph", [False, True])
def test_gemma4_on_the_gpu(name, graph):
    """bf16 on the GPU against float64: the 64-wide layers through the bundled decode kernel and the fused RoPE +
    cache-write kernel, the 512-wide ones through torch (labelled), the decode step captured in a CUDA graph. The
    tolerance is the same model's bf16 error on the CPU (torch throughout), doubled: the tiny Gemma 4 in bf16 runs
    0.03-0.12 off float64 by rounding alone over seeds 3-6 (session 50), where a wrong kernel is off by ~1."""
    arch = tiny(name)
    full = full_weights(arch, 3)
    for key in [k for k in full if k.endswith(".router")]:  # decisive routing: bf16 must not flip near ties
        full[key] = full[key] * 64
    full = unit_attention_logits(arch, full)
    cpu, _ = worst_bf16_error(arch, full, "cpu")
    gpu, labels = worst_bf16_error(arch, full, "cuda", graph)
    assert gpu < max(0.1, 2 * cpu), (name, gpu, cpu)
    assert labels["attention"].startswith("bundled CUDA kernel")
    assert labels["rope_cache"].startswith("bundled RoPE + paged K/V write kernel")
    # the wide layers' attention and their torch RoPE + cache writes, and the sharing layers' torch RoPE on q (the
    # MoE form shares no caches)
    sharing = ["KV-sharing layers"] if CONFIGS[name].get("num_kv_shared_layers") else []
    assert stand_ins(labels) == ["attention, head_dim 512", "rope_cache, head_dim 512", *sharing]


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_gemma4_in_bf16_on_the_cpu_is_the_gpu_tests_noise_floor(name):
    """The GPU test's yardstick: torch's bf16 forward on the CPU, with unit-variance attention logits, stays within
    the rounding the GPU test allows (0.031 / 0.119 at seed 3, session 50); at the tiny's unit q/k norm weights it was
    0.34 / 0.16 off, as the H200 measured (0.18-0.34)."""
    arch = tiny(name)
    full = full_weights(arch, 3)
    for key in [k for k in full if k.endswith(".router")]:
        full[key] = full[key] * 64
    assert worst_bf16_error(arch, unit_attention_logits(arch, full), "cpu")[0] < 0.15
    assert worst_bf16_error(arch, full, "cpu")[0] > 0.15  # what the conditioning is for


def test_one_simulated_rank_reads_ids_past_its_vocabulary_slice_as_zeros():
    """Review finding (session 49): one rank of tp 2 simulated alone (verify on a machine with fewer GPUs) takes ids
    from the whole vocabulary; the per-layer-input table's and the embedding's slices are half of it, so an id past
    the slice must read zeros (as a real rank's does before the all-reduce), not index past the table."""
    raw = dict(TINY["gemma4"], vocab_size_per_layer_input=256, vocab_size=256)
    arch = architecture(raw, parse_config(raw, "tiny-gemma4"), 2)
    from kvplan.gpu.weights import allocate_weights

    model = Transformer(arch, allocate_weights(arch, "cpu", torch.float32), Runtime("cpu"))
    out = prefill(model, torch.tensor([[1, 200, 3]]))
    assert out.shape == (1, arch.vocab_rank) and bool(torch.isfinite(out).all())


@pytest.mark.parametrize("layer, field, value, message", [
    ("full_attention", "rope_theta", "x", "'rope_parameters.full_attention.rope_theta' must be a positive"),
    ("full_attention", "rope_theta", 0, "'rope_parameters.full_attention.rope_theta' must be a positive"),
    ("sliding_attention", "partial_rotary_factor", "half",
     "config field 'rope_parameters.sliding_attention.partial_rotary_factor' must be a number from 0 to 1"),
    ("full_attention", "rope_dim", "8", "the full_attention layers rotate '8' of 512 dims a head")])
def test_bad_rope_parameters_are_named_in_one_line(layer, field, value, message):
    """Review finding (session 49): these went through float() / int() unchecked (an internal error, exit 3, or a
    theta of 0 dividing by zero on the GPU)."""
    config = copy.deepcopy(bundled_config(DENSE))
    text = config["text_config"]
    text["rope_parameters"] = copy.deepcopy(DEFAULT_ROPE)
    text["rope_parameters"][layer][field] = value
    with pytest.raises(KvplanError, match=re.escape(message)):
        architecture(config, parse_config(config, DENSE), 1)


def test_the_mlp_activation_is_the_configs():
    """Review finding (session 49): vLLM's Gemma 4 MLP takes hidden_activation by name (gemma4.py:280
    get_act_and_mul_fn); verify had tanh GELU whatever it said."""
    config = copy.deepcopy(bundled_config(DENSE))
    config["text_config"]["hidden_activation"] = "silu"
    assert architecture(config, parse_config(config, DENSE), 1).activation == "silu"
    config["text_config"]["hidden_activation"] = "relu"
    with pytest.raises(KvplanError, match="config field 'hidden_activation' is 'relu'"):
        architecture(config, parse_config(config, DENSE), 1)
    assert bundled(DENSE)[2].activation == "gelu_tanh"  # its config's gelu_pytorch_tanh
