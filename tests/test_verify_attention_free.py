"""verify on attention-free models, as vLLM 0.32.0 builds them (model_executor/models/mamba.py MambaForCausalLM, which
FalconMambaForCausalLM maps to, registry.py:104; mamba2.py Mamba2ForCausalLM): every layer an RMSNorm and a Mamba
mixer, no MLP, no attention. Falcon-Mamba-7B's Mamba-1 mixer norms dt, B and C without weights at mixer_rms_eps
(mamba.py:60-73); Mamba's does not norm them. Their caches are state pools only: vLLM's block for a Mamba group is
one request's state (prefix caching off for attention-free models, so one block of max_model_len tokens a request),
every block allocated, and max_num_seqs caps the sequences the scheduler runs. Expected values are hand arithmetic
from the configs, the float64 reference (kvplan/gpu/reference.py) or `kvplan estimate`'s own figures."""

import json

import pytest

from conftest import run_kvplan
from tiny_models import TINY

torch = pytest.importorskip("torch")

from kvplan.errors import KvplanError  # noqa: E402
from kvplan.model import parse_config  # noqa: E402
from kvplan.model.sources import resolve  # noqa: E402
from kvplan.verify.arch import architecture  # noqa: E402
from kvplan.verify.shards import rank_weights, weight_bytes  # noqa: E402

FALCON_MAMBA = "tiiuae/falcon-mamba-7b"
TOL = 5e-4  # tests/test_verify_model.py's: float32 forward against the float64 reference
NAMES = ("falcon_mamba", "mamba", "mamba2")
STATE_BYTES = 64 * 2 * (3 * 8192 + 8192 * 16)  # Falcon-Mamba-7B, one sequence, tp 1: 64 layers of bf16 slots


def falcon_mamba(tp=1):
    raw: list = []
    spec = resolve(FALCON_MAMBA, raw_out=raw)
    return raw[0], spec, architecture(raw[0], spec, tp)


def tiny(name, tp=1):
    raw = TINY[name]
    return architecture(raw, parse_config(raw, name), tp)


def estimate(*args) -> dict:
    r = run_kvplan("estimate", *args, "--format", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["plans"][0]


# ---- the forward's shapes and tensors ------------------------------------------------------------------------

def test_falcon_mamba_7b_builds_as_vllm_does():
    """64 Mamba-1 layers without MLPs; 8,192 channels from intermediate_size (not expand 16 x 4,096), time_step_rank
    256, state 16, a 4-tap convolution with its bias; dt / B / C normed without weights at transformers'
    FalconMambaConfig.mixer_rms_eps default 1e-6 (the file names none), the block norms at layer_norm_epsilon 1e-5;
    the LM head untied as the file says."""
    _, _, arch = falcon_mamba()
    assert [layer.mixer for layer in arch.layers] == ["mamba1"] * 64
    assert {layer.ffn for layer in arch.layers} == {"none"} and arch.heads == 0
    assert (arch.mamba1_inner, arch.mamba_dt_rank, arch.ssm_state, arch.conv_kernel, arch.conv_bias) == \
        (8192, 256, 16, 4, True)
    assert (arch.mamba1_norm, arch.mamba1_norm_eps, arch.norm_eps) == ("unweighted", 1e-6, 1e-5)
    assert not arch.tied_embeddings and arch.padded_vocab == 65024
    names = {s.name.split(".", 2)[-1] for s in rank_weights(arch) if s.name.startswith("layers.0.")}
    assert names == {"attn_norm", "in_proj", "conv", "conv_bias", "x_proj", "dt_proj", "dt_bias", "A_log", "D", "o"}
    assert any("residual_in_fp32 is not applied" in note for note in arch.notes)


def test_the_tiny_forms_read_their_own_fields():
    """Mamba: no mixer norms, time_step_rank "auto" = ceil(64 / 16) = 4, channels expand 2 x 64, the LM head tied
    (transformers' MambaConfig default; the estimate ties it too). Mamba-2: 8 heads of 16 in 2 groups, its gated norm
    at layer_norm_epsilon."""
    m = tiny("mamba")
    assert (m.mamba1_norm, m.mamba_dt_rank, m.mamba1_inner, m.tied_embeddings) == ("none", 4, 128, True)
    assert "lm_head" not in {s.name for s in rank_weights(m)}
    f = tiny("falcon_mamba")
    assert (f.mamba1_norm, f.mamba1_norm_eps, f.mamba1_inner, f.mamba_dt_rank) == ("unweighted", 0.05, 128, 8)
    m2 = tiny("mamba2")
    assert [layer.mixer for layer in m2.layers] == ["mamba"] * 3
    assert (m2.mamba_heads, m2.mamba_head_dim, m2.mamba_groups, m2.ssm_state, m2.norm_eps) == (8, 16, 2, 16, 1e-5)


def test_a_rank_holds_the_estimates_weights():
    """Falcon-Mamba-7B by hand: per layer in_proj 2 x 8192 x 4096, conv 8192 x 4 + bias 8192, x_proj 288 x 8192,
    dt_proj 8192 x 256 + bias 8192, D 8192, out_proj 4096 x 8192 and the block norm 4096 in bf16, A 8192 x 16 in
    float32; embedding and LM head 65,024 x 4,096 and the final norm. At tp 2 every tensor halves but the 65 norms,
    whole on each rank. The estimate's weights term says the same."""
    bf16 = (2 * 8192 * 4096 + 8192 * 4 + 8192 + 288 * 8192 + 8192 * 256 + 8192 + 8192 + 4096 * 8192 + 4096) * 2
    layer = bf16 + 8192 * 16 * 4
    total = 64 * layer + 2 * 65024 * 4096 * 2 + 4096 * 2
    assert total == 14_562_107_392
    norms = 65 * 4096 * 2
    for tp, expected in ((1, total), (2, (total - norms) // 2 + norms)):
        _, _, arch = falcon_mamba(tp)
        assert weight_bytes(arch) == expected
        assert estimate(FALCON_MAMBA, "-tp", tp)["budget"]["weights_bytes_per_gpu"] == expected
    assert (total - norms) // 2 + norms == 7_281_319_936


@pytest.mark.parametrize("name", NAMES)
def test_tiny_ranks_hold_the_estimates_weights(name, write_config):
    """The tiny models at tp 1 and 2 against the estimate of the same config; Mamba-2's A (one value a head) is the
    model dtype in verify's layer (its step kernel reads it so) where vLLM keeps it float32 (mamba_mixer2.py), 2 bytes
    a head fewer: 3 layers x 8 heads x 2 at tp 1."""
    config = write_config(TINY[name])
    for tp in (1, 2):
        a_term = 3 * 8 // tp * 2 if name == "mamba2" else 0
        want = estimate(config, "-tp", tp)["budget"]["weights_bytes_per_gpu"]
        assert weight_bytes(tiny(name, tp)) == want - a_term, tp


# ---- the caches -----------------------------------------------------------------------------------------------

def _pools(budget: int, context: int = 2048):
    from kvplan.plan.budget import fixed_budget
    from kvplan.plan.catalog import find_gpu
    from kvplan.plan.plan import plan as make_plan
    from kvplan.verify.layout import cache_layout

    _, spec, _ = falcon_mamba()
    ideal = make_plan(spec, context=context, kv_dtype="auto", tp=1,
                      budget_for=fixed_budget(budget), engine="none", speed=False, suggest=False)
    engine = make_plan(spec, context=context, kv_dtype="auto", tp=1, engine="vllm", gpu=find_gpu("h100"),
                       budget_for=fixed_budget(budget), speed=False, suggest=False)
    return spec, cache_layout(spec, ideal), engine


def test_state_pools_hold_what_vllm_allocates():
    """The estimate's KV budget on an H100 (named: on a GPU machine estimate takes the local GPU), 78,216,094,024 -
    weights 14,562,107,392 - profile peak 536,870,912 - non-torch 536,870,912 - runner state 301,342,720 (V2's
    penalty counts, 1024 x (65,024 + 2,032) x 4 B, its other sampler rows, 1024 x 17,924 B, and structured-output
    bitmask, 1024 x (2,032 + 1) x 4 B) - graphs int(0.705 GiB) 756,987,985 = 61,521,914,103 bytes (60,936,724,808
    with the 1.25 GiB graph term before session 67), holds 61,521,914,103 // 19,922,944 = 3,087 sequences' states:
    one pool, 64 layers of [3,087, 3 x 8192 + 8192 x 16] bf16, no paged group. vLLM allocates the same:
    num_gpu_blocks = available // (64 layers x a 311,296-byte page) = 3,087 blocks, each one request's state (its
    null block among them), every block allocated whatever max_num_seqs says."""
    from kvplan.gpu.caches import state_elements
    from kvplan.verify.allocator import probe_boundary

    budget = estimate(FALCON_MAMBA, "--gpu", "h100")["kv_budget_bytes_per_gpu"]
    assert budget == 61_521_914_103
    spec, layout, engine = _pools(budget)
    (group,) = layout.groups
    assert (group.kind, len(group.layers), group.num_blocks, group.blocks_per_sequence, group.block_tokens) == \
        ("linear", 64, 3087, 1, 0)
    assert group.tensor_shapes == ((3087, 3 * 8192 + 8192 * 16),) and group.dtype == "bf16"
    assert layout.predicted_bytes == layout.allocated_bytes == 3087 * STATE_BYTES
    assert engine.engine.num_gpu_blocks == group.num_blocks and engine.engine.blocks_per_request == 1
    assert engine.block_size == 2048  # vLLM's Mamba block in "none" cache mode: max_model_len tokens
    _, _, arch = falcon_mamba()
    assert 64 * 2 * state_elements(arch) == STATE_BYTES
    for tp in (2, 4):
        _, _, sharded = falcon_mamba(tp)
        assert state_elements(sharded) == spec.linear_layers[0].state_elements_per_sequence(tp)
    boundary, _ = probe_boundary(layout, budget)
    assert boundary.confirmed and boundary.served == 3087 and boundary.budget_left_bytes == budget - 3087 * STATE_BYTES


def test_the_budget_verdict_weighs_the_sequences_before_the_cap():
    """Both plans meet max_num_seqs (1,024), which would agree whatever the budget terms: the verdict weighs the
    sequences each budget keeps resident before the cap, num_gpu_blocks less the null block: 3,072 on a planned
    budget of 61,238,067,528 bytes (a fixed input here, not the estimate's); 1 GiB less holds
    (61,238,067,528 - 1,073,741,824) // 19,922,944 - 1 = 3,018 (54 fewer: within 3%), 2 GiB less 2,964 (108 fewer:
    3.6%, outside)."""
    from kvplan.verify.judge import budget_counts, judge_budget

    budget = 61_238_067_528
    _, _, planned = _pools(budget)
    for low, resident, within in ((budget - 2**30, 3018, True), (budget - 2**31, 2964, False)):
        _, layout, measured = _pools(low)
        assert planned.max_concurrency == measured.max_concurrency == 1024
        counts = budget_counts(planned, measured)
        assert counts[:2] == (3072, resident) and counts[2].startswith("resident sequences (before the max_num_seqs")
        ok, why = judge_budget(*counts[:2], None, layout.max_concurrency, counts[2])
        assert ok == within, why
        assert why.startswith("planned resident sequences (before the max_num_seqs cap of 1,024")


def test_an_uncapped_plan_is_judged_on_its_max_concurrency():
    from kvplan.verify.judge import budget_counts

    raw: list = []
    spec = resolve("meta-llama/Llama-3.1-8B-Instruct", raw_out=raw)
    from kvplan.plan.budget import fixed_budget
    from kvplan.plan.plan import plan as make_plan

    plans = [make_plan(spec, context=131072, kv_dtype="auto", tp=1, speed=False, suggest=False,
                       budget_for=fixed_budget(b)) for b in (60 * 2**30, 59 * 2**30)]
    assert plans[0].max_concurrency_limited_by == "memory"
    assert budget_counts(*plans) == (plans[0].max_concurrency, plans[1].max_concurrency, "max concurrency")


def test_decode_is_timed_at_most_at_max_num_seqs_as_the_estimate_predicts():
    """vLLM's scheduler runs at most max_num_seqs sequences a step: verify times decode at batch 1 and min(served,
    max_num_seqs), and its estimate there is the plan's own decode point at max concurrency (the estimate's)."""
    from kvplan.gpu import rank as R
    from kvplan.model.precision import resolve_kv_dtype
    from kvplan.plan.catalog import find_gpu
    from kvplan.verify.terms import decode_batches, decode_prediction

    assert decode_batches(3073, 1024) == (1, 1024)
    assert decode_batches(300, 1024) == (1, 300) and decode_batches(1, 1024) == (1,)
    _, spec, _ = falcon_mamba()
    gpu = find_gpu("h100")
    opts = R.resolve_options(spec, R.Options(1, 2048, "auto", None, None, None, None), gpu, gpu.memory_bytes)
    plan = R.predicted_plan(spec, opts, gpu, gpu.memory_bytes)
    precision = resolve_kv_dtype("auto", spec.dtype, spec.auto_kv_dtype)
    top = plan.decode.points[-1]
    assert (top.batch, plan.max_concurrency) == (1024, 1024)
    predicted = decode_prediction(spec, plan, precision, 1024, gpu, gpu.decode_bandwidth)
    assert predicted["estimate_ms"] == pytest.approx(top.itl_ms, rel=1e-12)


# ---- the forward pass -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_forward_matches_the_reference(name):
    """Prefill (a 1-token prompt: its convolution window mostly zeros; 9 and 17 tokens) then decode on NaN-filled
    state pools, against the float64 reference token by token."""
    from test_verify_model import run_against_reference

    assert run_against_reference(tiny(name), prompt_lens=(1, 9, 17), steps=3) < TOL


def test_falcon_mamba_norms_take_the_mixers_eps_and_no_weight(monkeypatch):
    """The tiny Falcon-Mamba's mixer eps (0.05) against its block norms' (1e-5): norming dt, B and C at the block eps,
    or not at all, is far off the reference, so the forward's match above is not by chance."""
    from kvplan.gpu import mamba1
    from kvplan.gpu.ops import rms_norm
    from test_verify_model import run_against_reference

    arch = tiny("falcon_mamba")
    monkeypatch.setattr(mamba1.Mamba1, "_norm", lambda self, v, name: rms_norm(v.contiguous(), None, 1e-5))
    assert run_against_reference(arch, steps=1) > 0.05
    monkeypatch.setattr(mamba1.Mamba1, "_norm", lambda self, v, name: v)
    assert run_against_reference(arch, steps=1) > 0.05


def test_two_gloo_ranks_match_the_reference():
    """tp 2 on two CPU processes: channels (Mamba-1) or heads and groups (Mamba-2) split, x_proj's outputs
    all-reduced, the vocabulary split; the ranks' logits are the single-process float64 reference's."""
    from test_verify_tp import PROMPT, assert_ranks_match
    from kvplan.gpu.tp import forward_check, launch

    cases = [(TINY[name], 7, PROMPT, 2) for name in NAMES]
    ranks = launch(forward_check, (cases,), 2, "gloo", timeout_s=300)
    for name, got0, got1 in zip(NAMES, ranks[0], ranks[1]):
        assert_ranks_match(tiny(name), 7, PROMPT, got0, got1, name)


# ---- what stays refused -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("change, message", [
    ({"hidden_act": "gelu"}, "hidden_act is 'gelu'; verify's Mamba layers run the convolution's SiLU only"),
    ({"use_bias": True}, "has biases on its Mamba projections \\(use_bias\\); verify's Mamba layers have none"),
])
def test_forms_verify_does_not_run_are_refused_in_one_line(change, message):
    for name in NAMES:
        raw = {**TINY[name], **change}
        with pytest.raises(KvplanError, match=message):
            architecture(raw, parse_config(raw, name), 1)


def test_one_replicated_mamba2_group_is_refused_above_tp_1():
    """state-spaces/mamba2-780m's one B / C group: vLLM replicates it on every rank (mamba_mixer2.py
    extra_groups_for_head_shards), verify's Mamba-2 layer splits groups only; tp 1 builds."""
    from test_params import _script_config

    raw = _script_config("MAMBA2_780M")
    spec = parse_config(raw, "mamba2-780m")
    assert architecture(raw, spec, 1).mamba_groups == 1
    with pytest.raises(KvplanError, match="n_groups \\(1\\) is not divisible by tp 2"):
        architecture(raw, spec, 2)


def test_verify_goes_on_to_the_gpu(monkeypatch):
    """verify used to refuse Falcon-Mamba-7B (attention-free); now its architecture builds and verify goes on to the
    GPU (stopped here where it would load torch)."""
    from kvplan.gpu import nvml

    def stop():
        raise KvplanError("stopped before torch")

    monkeypatch.setattr(nvml, "import_stack", stop)
    r = run_kvplan("verify", FALCON_MAMBA, "--format", "json")
    assert r.returncode == 2 and r.stdout == "" and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == ["kvplan: error: stopped before torch"]


# ---- on a GPU ---------------------------------------------------------------------------------------------------

gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@gpu
@pytest.mark.parametrize("name", NAMES)
def test_forward_on_gpu_matches_the_reference(name):
    """The tiny models in bf16 through the bundled kernels (Mamba-1: the scan kernel for prompts and decode;
    Mamba-2: its step kernel), against the float64 reference (test_verify_gpu's tolerance)."""
    from test_verify_gpu import _run_tiny

    for graph in (False, True):
        worst, labels = _run_tiny(name, graph)
        assert worst < 0.1, (name, graph, worst)
        if name != "mamba2":
            assert labels["mamba1"].startswith("bundled Mamba-1 kernels") and labels["mamba1 prefill"] == \
                labels["mamba1"]


@gpu
def test_falcon_mamba_verify_end_to_end():
    """Falcon-Mamba-7B on the GPU with a small profile run and few graphs: one state pool, the capacity boundary
    confirmed, decode at batch 1 and max_num_seqs (8), the Mamba-1 kernels named, the budget verdict on the
    resident sequences before the cap where both plans meet it."""
    from rich.console import Console

    from kvplan.commands.verify import verify as run_verify
    from kvplan.verify.progress import Progress

    r = run_verify(FALCON_MAMBA, context=2048, gpu_util=0.5, max_num_seqs=8, max_num_batched_tokens=2048,
                   progress=Progress(Console(quiet=True))).result
    assert [g["kind"] for g in r["layout"]] == ["linear"] and r["layout"][0]["layers"] == 64
    assert r["boundary"]["confirmed"] and r["verdict"]["capacity_confirmed"]
    assert [p["batch"] for p in r["decode"]["points"]] == [1, 8]
    assert r["forward"]["labels"]["mamba1"].startswith("bundled Mamba-1 kernels")
    assert r["measured_plan"]["max_concurrency"] == 8
    assert "resident sequences (before the max_num_seqs cap of 8" in r["verdict"]["budget_reason"]
