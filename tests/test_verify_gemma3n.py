"""verify's Gemma 3n forward pass as vLLM 0.32.0 model_executor/models/gemma3n.py (and gemma3n_mm.py) runs it (the
shapes: kvplan/verify/arch.py, its Gemma 3n section; the layers: kvplan/gpu/gemma3n.py): AltUp's streams predicted
and corrected around each layer, Laurel blocks, activation-sparse MLPs of per-layer widths, q / k norms and v's
weightless one, sliding and full layers of their own RoPE theta, KV-sharing layers at vLLM's fixed targets,
per-layer inputs, soft-capped logits. On the CPU against the float64 reference (kvplan/gpu/reference.py: one token at
a time, contiguous caches, the streams as lists of vectors) with paged caches in shuffled blocks and NaN in every
unused slot; tp 2 on gloo ranks; the bytes a rank holds against the estimate's weights and against vLLM's own
meta-device parameter count (tests/data/vllm_gemma3n_figures.json) for the bundled google/gemma-3n-E2B. GPU tests
at the end skip without CUDA (benchmarks/sessions/s50_gemma3n_device.sh runs them)."""

import copy
import json
import re

import pytest

from conftest import ROOT, load_yaml, run_kvplan
from tiny_models import TINY

torch = pytest.importorskip("torch")

from bf16_forward import unit_attention_logits, worst_bf16_error  # noqa: E402
from test_verify_model import TOL, run_against_reference  # noqa: E402
from kvplan.errors import KvplanError  # noqa: E402
from kvplan.gpu.caches import caches_from_layout, small_caches  # noqa: E402
from kvplan.gpu.gemma3n import SparseMLP, std_normal_quantile  # noqa: E402
from kvplan.gpu.generate import decode, prefill  # noqa: E402
from kvplan.gpu.model import Runtime, Transformer  # noqa: E402
from kvplan.gpu.reference import Reference  # noqa: E402
from kvplan.gpu.weights import allocate_weights, full_weights  # noqa: E402
from kvplan.model import parse_config  # noqa: E402
from kvplan.model.sources import resolve  # noqa: E402
from kvplan.plan.budget import fixed_budget  # noqa: E402
from kvplan.plan.plan import plan as make_plan  # noqa: E402
from kvplan.plan.sharding import stage_weights  # noqa: E402
from kvplan.verify.arch import HeadShape, architecture  # noqa: E402
from kvplan.verify.judge import STAND_IN, stand_ins  # noqa: E402
from kvplan.verify.layout import cache_layout  # noqa: E402
from kvplan.verify.shards import rank_weights, tower_bytes, weight_bytes  # noqa: E402

E2B = "google/gemma-3n-E2B"
GiB = 2**30
FIGURES = json.loads((ROOT / "tests" / "data" / "vllm_gemma3n_figures.json").read_text())
TOWERS = ("vision_tower", "audio_tower", "embed_vision", "embed_audio")  # vLLM's modules beside the language model
# the same tiny as vLLM's text-only Gemma3nForCausalLM, which its model runner calls without per-layer inputs: the
# normed projection alone
CAUSAL_LM = {**TINY["gemma3n"], "architectures": ["Gemma3nForCausalLM"]}


def tiny(raw=None, tp=1):
    raw = raw or TINY["gemma3n"]
    return architecture(raw, parse_config(raw, "tiny-gemma3n"), tp)


def bundled(tp=1):
    raw: list = []
    spec = resolve(E2B, raw_out=raw)
    return spec, raw[0], architecture(raw[0], spec, tp)


def bundled_config() -> dict:
    return load_yaml((ROOT / "model_specs" / "google--gemma-3n-E2B.yaml").read_text())["config"]


# ---- the forward against the float64 reference ----------------------------------------------------------------

@pytest.mark.parametrize("prompt_lens, block, seed", [((5, 13), 4, 0), ((30, 17), 8, 1), ((2, 21), 16, 2)])
def test_forward_matches_the_reference(prompt_lens, block, seed):
    # float32 against float64: ~2e-5 (the same code in float64: 7e-7, the float32 rotary tables). Mutations measured
    # on the first case: the prediction coefficients untransposed 0.76, the MLPs dense (no sparsity) 1.17, the
    # correction without its + 1 1.68, the unembedded streams not rescaled 0.18, the per-layer inputs' sqrt(width)
    # and rsqrt(2) unrounded (not held in bf16) 1.4e-4, Gemma 4's 1 / sqrt(hidden) on the projection 1.3e-4
    assert run_against_reference(tiny(), prompt_lens, block=block, seed=seed) < TOL


def test_the_causal_lm_architecture_reads_no_per_layer_table():
    """vLLM's Gemma3nForCausalLM takes per_layer_inputs=None from the model runner (nothing in vllm/v1 passes them):
    get_per_layer_inputs (gemma3n.py:701-706) keeps the normed projection alone, the table built and loaded but not
    read. The multimodal wrapper's tiny reads it."""
    a = tiny(CAUSAL_LM)
    assert not a.per_layer_table and tiny().per_layer_table and any("Gemma3nForCausalLM" in n for n in a.notes)
    assert run_against_reference(a, (5, 13)) < TOL
    assert weight_bytes(a) == weight_bytes(tiny())  # the table still held


def test_two_gloo_ranks_match_the_reference_with_each_ranks_sparsity_statistics():
    """tp 2: the 2 KV heads split, q / o / gate-up / down / Laurel by rows or columns, the AltUp projections and the
    per-layer projection by rows with their outputs gathered, the per-layer table and the embedding by vocabulary,
    the AltUp coefficients, router and per-layer gates whole. The activation-sparse gate's mean and std are each
    rank's own half (vLLM's gelu_and_mul_sparse keeps them local): the reference with 2 shards of the gate matches
    the ranks, the whole-gate one does not."""
    from kvplan.gpu.tp import forward_check, launch

    prompt = [3, 17, 5, 99, 42, 7, 1, 0, 64, 12, 100, 127, 96]  # 100, 127, 96: past the per-layer vocabulary
    ranks = launch(forward_check, ([(TINY["gemma3n"], 7, prompt, 3)],), 2, "gloo", timeout_s=300)
    got0, got1 = ranks[0][0], ranks[1][0]
    arch = tiny()
    weights = full_weights(arch, 7)
    split, whole = Reference(arch, weights, shards=2), Reference(arch, weights)
    for token in prompt:
        want, whole_gate = split.step(token), whole.step(token)
    for step, (a, b) in enumerate(zip(got0, got1)):
        a, b = torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)
        scale = want.abs().max()
        assert float((a - want).abs().max() / scale) < 1e-4, step
        assert float((a - b).abs().max() / scale) < 1e-5, step
        if step == 0:
            assert float((a - whole_gate).abs().max() / scale) > 1e-2  # the statistics' split matters
        if step < len(got0) - 1:
            want = split.step(int(a.argmax()))


# ---- the activation sparsity by hand -------------------------------------------------------------------------

def test_the_sparse_gate_by_hand():
    """GeluAndMulSparse at 0.95: the standard normal's 0.95 quantile 1.6448536 (the published z-value), the gate
    [1, 2, 3, 4, 10] (mean 4, population std sqrt(10)) less 4 + 1.6449 sqrt(10) = 9.2015: only 10 - 9.2015 = 0.7985
    is left, its tanh-GELU times up (2.0) the one value the down projection (the identity) sees."""
    assert std_normal_quantile(0.95) == pytest.approx(1.6448536, abs=1e-7)
    arch = tiny()
    layer = arch.layers[0]
    assert layer.sparsity == 0.95
    eye = torch.eye(5, dtype=torch.float64)
    w = {"mlp.gate_up": torch.cat([eye, eye]), "mlp.down": eye}
    mlp = SparseMLP(arch, layer, w, Runtime("cpu"))
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0, 10.0]], dtype=torch.float64)
    out = mlp.partial(x)
    left = 10 - (4 + 1.6448536269514722 * 10 ** 0.5)
    gelu = 0.5 * left * (1 + torch.tanh(torch.tensor(0.7978845608028654 * (left + 0.044715 * left ** 3))))
    assert torch.allclose(out, torch.tensor([[0, 0, 0, 0, float(gelu) * 10]], dtype=torch.float64), atol=1e-6)


# ---- the architecture from the bundled config --------------------------------------------------------------------

def test_the_e2b_layers_as_vllm_builds_them():
    """30 layers, every 5th full (4, 9, ..., 29) at theta 1e6, the others a 512-token window at rope_local_base_freq
    1e4, all rotating the whole 256-wide head; 8 query and 2 KV heads, scaling 1.0 (gemma3n.py:394), plain RMS norms
    (x * w); layers 20-29 hold no cache and read layer 18 (sliding, 2 before the first shared layer) or 19 (full, 1
    before: gemma3n.py:359-360); MLPs 8,192 wide, the first 10 activation-sparse at 0.95; 4 AltUp streams, Laurel rank
    64, per-layer inputs of 256 from a 262,144-token table; logits capped at 30; sqrt(2,048) = 45.25 in bf16."""
    _, _, a = bundled()
    full = [layer.index for layer in a.layers if layer.window is None]
    assert full == [4, 9, 14, 19, 24, 29]
    assert {(layer.window, layer.rope_theta) for layer in a.layers} == {(512, 1e4), (None, 1e6)}
    assert {a.attention(layer) for layer in a.layers} == {HeadShape(8, 2, 256, 256, 256, 1.0)}
    assert [layer.cache for layer in a.layers] == list(range(20)) + [None] * 10
    assert [layer.reads for layer in a.layers[20:]] == [19 if i in (24, 29) else 18 for i in range(20, 30)]
    assert {layer.intermediate for layer in a.layers} == {8192}
    assert [layer.sparsity for layer in a.layers] == [0.95] * 10 + [0.0] * 20
    assert (a.altup_inputs, a.altup_active, a.laurel_rank, a.per_layer_input, a.per_layer_vocab) == (4, 0, 64, 256,
                                                                                                    262144)
    assert (a.logit_softcap, a.norm_plus_one, a.embed_scale, a.tied_embeddings, a.qk_norm) == (30.0, False, 45.25,
                                                                                                True, True)
    assert a.per_layer_table  # Gemma3nForConditionalGeneration


def test_the_tiny_layers():
    a = tiny()
    assert [layer.reads for layer in a.layers] == [None] * 4 + [2, 2, 3]
    assert [layer.intermediate for layer in a.layers] == [96, 128, 64, 96, 128, 64, 96]
    assert [layer.rope_theta for layer in a.layers] == [1e4, 1e6, 1e4, 1e6, 1e4, 1e4, 1e6]


# ---- the bytes a rank holds --------------------------------------------------------------------------------------

@pytest.mark.parametrize("tp", [1, 2, 4, 8])
def test_a_rank_holds_the_estimates_weights(tp):
    """The tensors verify allocates on one rank plus the towers it holds as a buffer (gpu/rank.py: tower_bytes) are
    the estimate's weights a GPU (kvplan/plan/sharding.py stage_weights). At tp 4 and 8 the 2 KV heads are
    replicated, a head a rank; the towers are whole on every rank but their embedders' split tables and projections."""
    spec, _, a = bundled(tp)
    assert weight_bytes(a) + tower_bytes(spec, tp) == stage_weights(spec, tp)
    allocated = allocate_weights(a, "meta", fill=False)  # what verify's build allocates (shapes only)
    assert sum(t.numel() * t.element_size() for t in allocated.values()) == weight_bytes(a)


@pytest.mark.parametrize("tp", [1, 2])
def test_a_rank_holds_vllms_language_model(tp):
    """Against vLLM's own build (Gemma3nForConditionalGeneration on the meta device, rank 0, frozen in
    tests/data/vllm_gemma3n_figures.json): the language model's parameters at 2 bytes each, plus 2 more for each
    float32 correct_output_scale value (30 layers x 2,048), are the bytes verify allocates; the towers' parameters
    at 2 bytes are the buffer it holds beside them."""
    spec, _, a = bundled(tp)
    (vllm,) = [w for w in FIGURES["weights"] if w["model"] == E2B and w["tp"] == tp]
    towers = sum(vllm["parts"][name] for name in TOWERS)
    assert weight_bytes(a) == 2 * (vllm["parameters"] - towers) + 2 * 30 * 2048
    assert tower_bytes(spec, tp) == 2 * towers
    assert weight_bytes(a) == {1: 8_870_488_256, 2: 4_467_517_632}[tp]


def test_a_ranks_tensors_by_hand():
    """tp 2: a layer's fused QKV 4 query heads + 1 K + 1 V head of 256; a KV-sharing layer's q alone; Laurel's pair
    32 of its 64 ranks; AltUp's projections half their rows, its coefficients and router whole, its output scale
    float32; the per-layer table and embedding half the vocabulary (262,144 / 2 and 262,400 / 2), the per-layer
    projection half its 30 x 256 rows."""
    specs = {s.name: s for s in rank_weights(bundled(2)[2])}
    shapes = {name: specs[name].shape(2) for name in specs}
    assert shapes["layers.0.qkv"] == (4 * 256 + 256 + 256, 2048) and shapes["layers.0.o"] == (2048, 1024)
    assert shapes["layers.20.q"] == (1024, 2048) and "layers.20.qkv" not in shapes and "layers.20.k_norm" not in specs
    assert shapes["layers.0.laurel_left"] == (32, 2048) and shapes["layers.0.laurel_right"] == (2048, 32)
    assert shapes["layers.0.mlp.gate_up"] == (8192, 2048) and shapes["layers.0.mlp.down"] == (2048, 4096)
    assert shapes["layers.0.altup_prediction"] == (16, 4) and shapes["layers.0.altup_router"] == (4, 2048)
    assert specs["layers.0.altup_output_scale"].dtype == "fp32"
    assert shapes["layers.0.ple_gate"] == (256, 2048) and shapes["layers.0.ple_proj"] == (2048, 256)
    assert shapes["altup_proj.2"] == (1024, 2048) and shapes["altup_unembed.0"] == (1024, 2048)
    assert "altup_proj.3" not in shapes
    assert shapes["ple_embed"] == (131072, 7680) and shapes["embed"] == (131200, 2048)
    assert shapes["ple_model_proj"] == (3840, 2048) and "lm_head" not in shapes


def test_the_other_towers_are_held_as_before():
    """tower_bytes: a tower no rank holds whole (Gemma 3's, Gemma 4's: no replicated bytes) is split over the ranks
    as the build held it before."""
    for model in ("google/gemma-3-4b-it", "google/gemma-4-31B-it"):
        spec = resolve(model)
        vision = sum(g.bytes for g in spec.params if g.name == "vision")
        assert tower_bytes(spec, 4) == vision // 4 and tower_bytes(spec, 1) == vision


def test_the_rank_holds_the_wrappers_per_layer_input_buffer():
    """gemma3n_mm.py:636-642: max_num_batched_tokens x 30 x 256 bf16 zeros at build (the weights term)."""
    from kvplan.engines.vllm_budget import per_layer_input_buffer
    from kvplan.gpu.rank import Options

    assert per_layer_input_buffer(resolve(E2B), Options(1, 8192, "auto", 0.92, None, 256, 8192)) == 8192 * 30 * 256 * 2


@pytest.mark.parametrize("tp", [1, 2])
def test_the_real_shapes_run_through_the_forward(tp):
    """The bundled model's real shapes through verify's forward on meta tensors: the profile run's prefill without
    caches (the sharing layers take their targets' K/V from the same pass), then a decode step over the layout's two
    groups (16 sliding, 4 full layers; the 10 sharing layers none); one rank of tp 2 simulated alone."""
    spec, _, a = bundled(tp)
    model = Transformer(a, allocate_weights(a, "meta", fill=False), Runtime("meta"))
    assert prefill(model, torch.zeros(3, 40, dtype=torch.long, device="meta")).shape == (3, 262400 // tp)
    plan = make_plan(spec, context=64, kv_dtype="auto", tp=tp, budget_for=fixed_budget(GiB),
                     block_size=16, engine="none", speed=False, suggest=False)
    layout = cache_layout(spec, plan)
    assert sorted(i for g in layout.groups for i in g.layers) == list(range(20))
    model.caches = caches_from_layout(layout, "meta", pools={g.name: 8 for g in layout.groups})
    tables = {g.name: torch.zeros(2, 4, dtype=torch.int32, device="meta") for g in layout.groups}
    out = decode(model, torch.zeros(2, dtype=torch.long, device="meta"), torch.tensor([40, 41], device="meta"), tables)
    assert out.shape == (2, 262400 // tp)


# ---- caches and labels ------------------------------------------------------------------------------------------

def test_sharing_layers_allocate_nothing_and_say_what_ran():
    """The tiny's layers 4-6 keep no cache and read 2, 2 and 3; on the CPU the attention runs torch over gathered
    pages, the sharing layers' q path is labelled as Gemma 4's (a stand-in: the decode step is not judged)."""
    a = tiny()
    model = Transformer(a, full_weights(a, 0), Runtime("cpu"))
    model.caches = small_caches(a, 8, 4, 1, torch.float32)
    assert sorted(model.caches) == [0, 1, 2, 3] and [block.cache for block in model.blocks] == [0, 1, 2, 3, 2, 2, 3]
    groups = {c.group for c in model.caches.values()}
    prefill(model, torch.tensor([[1, 2, 3]]), {g: [[5, 6]] for g in groups})
    decode(model, torch.tensor([4]), torch.tensor([3]), {g: torch.tensor([[5, 6]], dtype=torch.int32) for g in groups})
    labels = {**model.rt.paged.labels, **model.rt.labels}
    assert labels["attention"] == "torch over gathered pages (CPU)"
    assert stand_ins(labels) == ["KV-sharing layers"]


def test_one_simulated_rank_runs_the_whole_vocabulary():
    """One rank of tp 2 alone (verify on a machine with fewer GPUs): ids past its vocabulary slice read zeros, the
    gathered AltUp and per-layer projections repeat its share."""
    a = tiny(tp=2)
    model = Transformer(a, allocate_weights(a, "cpu", torch.float32), Runtime("cpu"))
    out = prefill(model, torch.tensor([[1, 120, 3]]))
    assert out.shape == (1, a.vocab_rank) and bool(torch.isfinite(out).all())


# ---- refusals, one line each ------------------------------------------------------------------------------------

@pytest.mark.parametrize("change, message", [
    ({"attention_bias": True}, "has attention biases"),
    ({"hidden_activation": "silu"}, "config field 'hidden_activation' is 'silu'; vLLM's Gemma 3n MLP takes"),
    ({"altup_correct_scale": False}, "config field 'altup_correct_scale' is false"),
    ({"rope_scaling": {"rope_type": "yarn", "factor": 4.0}}, "the full_attention layers' rope_type is 'yarn'"),
    ({"activation_sparsity_pattern": [0.95] * 6}, "must give one sparsity per layer (7)"),
    ({"activation_sparsity_pattern": [1.0] + [0.0] * 6}, "must hold numbers from 0 up to (not including) 1, got 1.0"),
    ({"altup_active_idx": 4}, "config field 'altup_active_idx' must be at most 3"),
    ({"rope_local_base_freq": 0}, "config field 'rope_local_base_freq' must be a positive number"),
    ({"quantization_config": {"quant_method": "fp8", "activation_scheme": "dynamic"}}, "stores weights as fp8"),
])
def test_what_verify_does_not_run_is_refused_in_one_line(change, message, write_config):
    raw = {**TINY["gemma3n"], **change}
    with pytest.raises(KvplanError, match=re.escape(message)):
        architecture(raw, parse_config(raw, "tiny"), 1)
    r = run_kvplan("verify", write_config(raw))
    assert r.returncode == 2 and r.stdout == "" and "Traceback" not in r.stderr
    line, = r.stderr.strip().splitlines()
    assert message in line


def test_a_tp_that_cannot_split_laurel_is_refused():
    raw = copy.deepcopy(bundled_config())
    raw["text_config"]["laurel_rank"] = 6
    with pytest.raises(KvplanError, match=re.escape("laurel_rank (6) is not divisible by tp 4")):
        architecture(raw, parse_config(raw, "e2b-odd"), 4)


def test_verify_runs_it_now(monkeypatch):
    """verify refused Gemma 3n in one line; now its architecture builds and verify goes on to the GPU (stopped here
    where it would load torch)."""
    from kvplan.gpu import nvml

    def stop():
        raise KvplanError("stopped before torch")

    monkeypatch.setattr(nvml, "import_stack", stop)
    r = run_kvplan("verify", E2B, "--context", "8192")
    assert r.returncode == 2 and r.stderr.strip().splitlines() == ["kvplan: error: stopped before torch"]


# ---- on a GPU (skipped without CUDA) --------------------------------------------------------------------------

gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_gemma3n_in_bf16_on_the_cpu_is_the_gpu_tests_noise_floor():
    """The GPU test's yardstick, pinned: torch's bf16 forward of the tiny Gemma 3n on the CPU, unit-variance
    attention logits, 0.0206 off float64 at seed 3 (session 50)."""
    arch = tiny()
    assert worst_bf16_error(arch, unit_attention_logits(arch, full_weights(arch, 3)), "cpu")[0] < 0.05


@gpu
@pytest.mark.parametrize("graph", [False, True])
def test_gemma3n_on_the_gpu(graph):
    """bf16 on the GPU against float64: the 64-wide layers through the bundled decode kernel and the fused RoPE +
    cache-write kernel, the decode step captured in a CUDA graph; the sparse activation and the sharing layers' q
    path say they ran torch. Tolerance: the same model's bf16 error on the CPU, doubled (bf16_forward.py)."""
    arch = tiny()
    full = unit_attention_logits(arch, full_weights(arch, 3))
    cpu, _ = worst_bf16_error(arch, full, "cpu")
    gpu, labels = worst_bf16_error(arch, full, "cuda", graph)
    assert gpu < max(0.1, 2 * cpu), (gpu, cpu)
    assert labels["attention"].startswith("bundled CUDA kernel")
    assert labels["rope_cache"].startswith("bundled RoPE + paged K/V write kernel")
    assert sorted(stand_ins(labels)) == ["KV-sharing layers", "activation-sparse MLPs"]
    assert STAND_IN in labels["activation-sparse MLPs"]
