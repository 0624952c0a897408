"""Which model runner each vLLM release runs a model with (kvplan/engines/vllm_runner.py), held to the releases' own
code: tests/data/vllm_model_runner.json is what each release's VllmConfig.use_v2_model_runner returned, run over
every combination of the properties it reads (tests/data/vllm_model_runner.py), and whether its Model Runner V2
profiled CUDA-graph memory. Then what the runner changes in a budget: the CUDA-graph term and the sampler pass."""

import json
from itertools import product
from pathlib import Path

import pytest

from conftest import run_kvplan
from kvplan.engines.vllm_runner import RULES, model_runner, uses_v2
from kvplan.engines.vllm_versions import behaviour
from kvplan.model.sources import resolve
from kvplan.plan.catalog import find_gpu

DATA = json.loads((Path(__file__).parent / "data" / "vllm_model_runner.json").read_text())
RELEASES = sorted(DATA["releases"], key=lambda v: tuple(int(p) for p in v.split(".")))
GiB = 2**30
# vLLM's graph term from 0.20: int(0.705 x 2**30) = 756,987,985 B, the median of the public estimates
# (tests/test_vllm_graph_estimate.py); --engine none keeps kvplan's generic int(1.25 x 2**30)
VLLM_GRAPHS = 756_987_985


@pytest.mark.parametrize("version", RELEASES)
def test_runner_choice_is_the_releases_own(version):
    release = DATA["releases"][version]
    rule = RULES[behaviour(version).runner]
    assert rule.v2_profiles_graphs == release["v2_profiles_graphs"]
    for platform in ("cuda", "rocm"):
        for arch, bits in release[platform].items():
            for bit, flags in zip(bits, product((False, True), repeat=4)):
                got = uses_v2(rule, (arch,), *flags, rocm=platform == "rocm")
                assert got == (bit == "1"), (version, platform, arch, dict(zip(DATA["flags"], flags)))


def test_every_release_between_has_a_rule():
    """Patch releases, minor series and the minors not read (none here) take the rule of the minor they belong to (a
    release vLLM never published, 0.31.2, is refused: engines/vllm_releases.py)."""
    assert behaviour("0.25.0").runner == behaviour("0.25.1").runner == "0.25"
    assert behaviour("0.31.0").runner == behaviour("0.31").runner == "0.30" and behaviour("0.21.0").runner == "v1"
    assert behaviour("0.20.2").runner == "v1"


# the bundled specs' properties as vLLM reads them: MoE, quantised checkpoint, hybrid, attention-free
@pytest.mark.parametrize("model,version,runner", [
    ("meta-llama/Llama-3.1-8B-Instruct", "0.21.0", "V1"),  # no V2 default yet
    ("meta-llama/Llama-3.1-8B-Instruct", "0.22.0", "V1"),  # 0.22 lists Qwen3 only
    ("Qwen/Qwen3-8B", "0.22.0", "V2"),
    ("meta-llama/Llama-3.1-8B-Instruct", "0.23.0", "V2"),
    ("deepseek-ai/DeepSeek-V2-Lite", "0.23.0", "V1"),  # not listed before 0.24
    ("deepseek-ai/DeepSeek-V2-Lite", "0.24.0", "V2"),
    ("google/gemma-3-27b-it", "0.24.0", "V1"),
    ("google/gemma-3-27b-it", "0.25.1", "V2"),  # 0.25: every dense, non-hybrid model
    ("mistralai/Mixtral-8x7B-v0.1", "0.28.0", "V1"),  # MoE, not listed
    ("openai/gpt-oss-20b", "0.25.1", "V1"),
    ("deepseek-ai/DeepSeek-V2-Lite", "0.26.0", "V2"),  # MoE, listed
    ("Qwen/Qwen3-Next-80B-A3B-Thinking", "0.27.1", "V1"),  # hybrid, not listed
    ("tiiuae/falcon-mamba-7b", "0.26.0", "V1"),  # attention-free
    ("mistralai/Mixtral-8x7B-v0.1", "0.29.0", "V2"),
    ("tiiuae/falcon-mamba-7b", "0.32.0", "V2"),
])
def test_bundled_models_take_the_releases_runner(model, version, runner):
    assert model_runner(resolve(model), behaviour(version), find_gpu("h100")).name == runner


def _terms(model, engine, gpu="h100"):
    (row,) = json.loads(run_kvplan("estimate", model, "--gpu", gpu, "-c", "8192", "--engine", engine,
                                   "--format", "json").stdout)["plans"]
    return {t["name"]: t for t in row["budget"]["terms"]}, row["engine"]["available_kv_cache_bytes"]


def test_v2_before_0_29_subtracts_no_graphs():
    """Llama-3.1-8B on an H100 (1,024 dummy requests x 128,256 logits, 8,192 profile tokens): 0.21 runs V1 (graph
    estimate subtracted; its sampler peak is the seeded forward_native pass, tests/test_s54_fix6.py: 1024 x 128256 x
    14 + 132 Triton rows x 128256 x 4 + (8,192 + 1,024) x 4,096 x 2 held = 1,981,894,656 bytes), 0.25 runs
    V2 with its placeholder estimate (0) and its bf16 Gumbel sampler (262,668,288 bytes, under the forward's 0.88
    GiB), 0.32 runs V2 with the profiled estimate. Same weights, non-torch memory and GPU in all three."""
    v1, avail_v1 = _terms("meta-llama/Llama-3.1-8B-Instruct", "vllm==0.21.0")
    v2_early, avail_early = _terms("meta-llama/Llama-3.1-8B-Instruct", "vllm==0.25.1")
    v2, avail_v2 = _terms("meta-llama/Llama-3.1-8B-Instruct", "vllm==0.32.0")
    assert v1["profile_peak"]["bytes"] == 1_981_894_656 and "x 14 B" in v1["profile_peak"]["source"]
    assert v1["cuda_graphs"]["bytes"] == VLLM_GRAPHS and v1["cuda_graphs"]["source"].startswith("V1")
    assert v2_early["cuda_graphs"]["bytes"] == 0 and "returns 0 before 0.29" in v2_early["cuda_graphs"]["source"]
    assert "x 2 B" in v2_early["profile_peak"]["source"]
    # the forward then sets the peak: 8,192 tokens x (hidden, residual, q/k/v 6,144 and 3 x 14,336 MLP values) x 2 B
    assert v2_early["profile_peak"]["bytes"] == v2["profile_peak"]["bytes"] == 939_524_096
    assert v2["cuda_graphs"]["bytes"] == VLLM_GRAPHS
    # 0.25.1 and 0.32 differ by the graph term and the runner buffers counted from 0.27: penalty counts (1024 x
    # (128,256 + 4,008) x 4 B), other sampler rows (1024 x 17,924 B) and the structured-output bitmask (1024 x
    # (4,008 + 1) x 4 B) (tests/test_vllm_runner_buffers.py); 0.32's memory request is the same ceil(total x 0.92)
    assert avail_early - avail_v2 == VLLM_GRAPHS + 541_753_344 + 1024 * 17_924 + 1024 * 4_009 * 4
    assert avail_early - avail_v1 == VLLM_GRAPHS + 1_981_894_656 - v2["profile_peak"]["bytes"]


def test_rocm_subtracts_graphs_from_0_26():
    """gpu_worker.py determine_available_memory profiles graphs on CUDA only up to 0.25.1 (`is_cuda()`, :479), on
    ROCm too from 0.26.0 (`is_cuda_alike()`, :502; 0.32.0 :696-704: "ROCm is included: #44825")."""
    terms, _ = _terms("meta-llama/Llama-3.1-8B-Instruct", "vllm==0.25.1", gpu="mi300x")
    assert terms["cuda_graphs"]["bytes"] == 0 and "ROCm" in terms["cuda_graphs"]["source"]
    for release in ("vllm==0.26.0", "vllm==0.29.0", "vllm"):  # V2 profiles graphs from 0.29: 0 on both before
        cuda, _ = _terms("meta-llama/Llama-3.1-8B-Instruct", release, gpu="h100")
        terms, _ = _terms("meta-llama/Llama-3.1-8B-Instruct", release, gpu="mi300x")
        assert terms["cuda_graphs"]["bytes"] == cuda["cuda_graphs"]["bytes"]
        assert (terms["cuda_graphs"]["bytes"] > 0) == (release != "vllm==0.26.0")
    terms, _ = _terms("meta-llama/Llama-3.1-8B-Instruct", "vllm==0.19.0", gpu="h100")
    assert terms["cuda_graphs"]["bytes"] == 0 and "after the cache was sized" in terms["cuda_graphs"]["source"]


def test_verify_profiles_the_sampler_the_runner_runs():
    from kvplan.engines import get_engine

    # V1 samples with FlashInfer's kernels by default again from 0.21 (tests/test_vllm_sampler.py)
    assert get_engine("vllm==0.21.0").dummy_sampler(resolve("meta-llama/Llama-3.1-8B-Instruct")) == "flashinfer"
    assert get_engine("vllm==0.25.1").dummy_sampler(resolve("meta-llama/Llama-3.1-8B-Instruct")) == "gumbel"
    assert get_engine("vllm==0.25.1").dummy_sampler(resolve("mistralai/Mixtral-8x7B-v0.1")) == "flashinfer"
    assert get_engine("vllm").dummy_sampler(resolve("mistralai/Mixtral-8x7B-v0.1")) == "gumbel"


# vLLM 0.32's model classes (vllm/model_executor/models/): the IsHybrid ones among the bundled architectures
# (jamba.py, nemotron_h.py, qwen3_next.py, qwen3_5.py: Qwen3_5ForConditionalGeneration and its MoE subclass) and the
# IsAttentionFree one (mamba.py MambaForCausalLM, which registry.py serves FalconMambaForCausalLM with)
VLLM_HYBRID = {"JambaForCausalLM", "NemotronHForCausalLM", "Qwen3NextForCausalLM", "Qwen3_5ForConditionalGeneration",
               "Qwen3_5MoeForConditionalGeneration",
               "KimiLinearForCausalLM"}  # vllm/models/kimi_k3/nvidia/model.py:1581-1589: IsHybrid
VLLM_ATTENTION_FREE = {"FalconMambaForCausalLM"}


def test_bundled_specs_read_hybrid_and_attention_free_as_vllm_does():
    """model_runner derives vLLM's is_hybrid / is_attention_free from the layer kinds (a state layer beside
    attention / no attention layer); for every bundled spec that is what vLLM's model class says."""
    from kvplan.engines.vllm_runner import model_properties
    from kvplan.model.bundled import bundled_names

    for name in bundled_names():
        spec = resolve(name)
        _, _, hybrid, attention_free = model_properties(spec)
        assert hybrid == (spec.architecture in VLLM_HYBRID), name
        assert attention_free == (spec.architecture in VLLM_ATTENTION_FREE), name


def test_enforce_eager_reserves_no_graph_memory():
    """vLLM's --enforce-eager sets cudagraph_mode NONE and gpu_worker.py determine_available_memory then skips
    profile_cudagraph_memory: 0.32 gives back the 0.705 GiB graph term, 0.19 (graphs never subtracted) nothing."""
    graphs, avail = _terms("meta-llama/Llama-3.1-8B-Instruct", "vllm")
    out = run_kvplan("estimate", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "h100", "-c", "8192",
                     "--enforce-eager", "--format", "json")
    (row,) = json.loads(out.stdout)["plans"]
    eager = {t["name"]: t for t in row["budget"]["terms"]}
    assert eager["cuda_graphs"]["bytes"] == 0 and "--enforce-eager" in eager["cuda_graphs"]["source"]
    assert row["engine"]["available_kv_cache_bytes"] - avail == graphs["cuda_graphs"]["bytes"] == VLLM_GRAPHS
    assert row["budget"]["engine"] == "vllm 0.32.0, enforce eager"
    old = [json.loads(run_kvplan("estimate", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "h100", "-c", "8192",
                                 "--engine", "vllm==0.19.0", *flags, "--format", "json").stdout)["plans"][0]
           for flags in ((), ("--enforce-eager",))]
    assert old[0]["engine"]["available_kv_cache_bytes"] == old[1]["engine"]["available_kv_cache_bytes"]


def test_enforce_eager_says_the_times_assume_graphs():
    out = run_kvplan("estimate", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "h100", "-c", "8192", "--enforce-eager",
                     env={"COLUMNS": "200"})
    assert out.returncode == 0, out.stderr
    assert "--enforce-eager: the decode and prefill times assume CUDA graphs" in " ".join(out.stdout.split())
    plain = run_kvplan("estimate", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "h100", "-c", "8192",
                       env={"COLUMNS": "200"})
    assert "--enforce-eager" not in plain.stdout


def test_api_takes_enforce_eager():
    import kvplan

    eager, = kvplan.estimate("meta-llama/Llama-3.1-8B-Instruct", gpu="h100", max_model_len=8192, enforce_eager=True)
    plain, = kvplan.estimate("meta-llama/Llama-3.1-8B-Instruct", gpu="h100", max_model_len=8192)
    assert eager.budget.cuda_graph_bytes == 0 and plain.budget.cuda_graph_bytes == VLLM_GRAPHS


def test_the_public_report_of_v2s_missing_graph_reserve():
    """vllm#49224: Llama-3.1-70B-Instruct FP8 at TP 8 on L40S started on 0.23.0, whose V1 runner reserved graph
    memory, and ran out of memory capturing graphs on 0.25.1, where Model Runner V2 (now the default for dense
    models) estimated 0."""
    args = ("meta-llama/Llama-3.1-70B-Instruct", "-q", "fp8", "--tp", "8", "--gpu", "l40s", "-c", "8192")
    graphs = {}
    for release in ("0.23.0", "0.25.1"):
        (row,) = json.loads(run_kvplan("estimate", *args, "--engine", f"vllm=={release}",
                                       "--format", "json").stdout)["plans"]
        graphs[release] = {t["name"]: t for t in row["budget"]["terms"]}["cuda_graphs"]
    assert graphs["0.23.0"]["bytes"] > 0 and graphs["0.23.0"]["source"].startswith("V1")
    assert graphs["0.25.1"]["bytes"] == 0 and "V2" in graphs["0.25.1"]["source"]


def test_the_table_says_why_a_release_reserves_no_graph_memory():
    out = run_kvplan("estimate", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "h100", "-c", "8192", "--engine",
                     "vllm==0.25.1", env={"COLUMNS": "200"})
    text = " ".join(out.stdout.split())
    assert "no CUDA-graph reserve: V2 (vllm/v1/worker/gpu/model_runner.py), whose profile_cudagraph_memory " \
           "returns 0 before 0.29" in text
    plain = run_kvplan("estimate", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "h100", "-c", "8192",
                       env={"COLUMNS": "200"})
    # 756,987,985 B / 2**20 = 721.9 MiB, which the table prints in MiB as it is under 1 GiB
    assert "no CUDA-graph reserve" not in plain.stdout and "CUDA graphs 722 MiB" in " ".join(plain.stdout.split())


def test_enforce_eager_drops_the_ideal_engines_graph_reserve_too():
    """--engine none reserves kvplan's generic 1.25 GiB for graphs; without graphs it reserves nothing."""
    plans = [json.loads(run_kvplan("estimate", "meta-llama/Llama-3.1-8B-Instruct", "--engine", "none", "--gpu",
                                   "h100", "-c", "8192", *flags, "--format", "json").stdout)["plans"][0]
             for flags in ((), ("--enforce-eager",))]
    graphs = [{t["name"]: t["bytes"] for t in p["budget"]["terms"]}["cuda_graphs"] for p in plans]
    assert graphs == [int(1.25 * GiB), 0]
    assert plans[1]["kv_budget_bytes_per_gpu"] - plans[0]["kv_budget_bytes_per_gpu"] == int(1.25 * GiB)
