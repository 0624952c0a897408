"""The review of the default prompt (plan.default_prompt / prompt_for / check_input_len): pooling models, the prefill
chunk bound, --chart with --input-len, the wording at a max model length of 1.

vLLM's front end, read by hand: a prompt as long as max_model_len is refused only where
- 0.11.1 v1/engine/processor.py:601-606 and 0.16.0 v1/engine/input_processor.py:765-770: `prompt_type == "decoder"
  and not model_config.is_multimodal_model and self.model_config.runner_type != "pooling"`;
- 0.17.0 input_processor.py:392 and 0.34.0 :588: `model_config.runner_type == "generate"`;
- 0.11.0 processor.py:512 refuses only a longer one.
So a pooling model (embedding, classification, reward) is served its whole length by every release.

Which runner `--runner auto` gives (ModelConfig._get_default_runner_type, config/model.py 0.34.0:1303-1325) was run in
vLLM 0.34.0's own code (the registry imported on CPU, no modules.json beside the config): RUNNER below, except the
*Model embedding aliases (see ALIASES)."""

from __future__ import annotations

import json

import pytest

from conftest import estimate_plan, load_yaml, one_error_line, run_kvplan

TEXT = "Qwen/Qwen3-8B"
KEEPS_ROOM = "keeps room for one output token"


def qwen3_config(architecture: str) -> dict:
    """Qwen/Qwen3-8B's bundled config under another architecture name."""
    from conftest import ROOT

    config = dict(load_yaml((ROOT / "model_specs" / "Qwen--Qwen3-8B.yaml").read_text())["config"])
    config["architectures"] = [architecture]
    return config


def named(architecture: str):
    """A stand-in spec: pooling_runner and registry_multimodal read the served architecture alone."""
    from types import SimpleNamespace

    return SimpleNamespace(registered_architecture=architecture, architecture=architecture)


# --- which runner vLLM resolves -----------------------------------------------------------------------------------

# (architecture, pooling) as vLLM 0.34.0's _get_default_runner_type answered for each, and why
RUNNER = [
    ("Qwen3ForSequenceClassification", True),  # unregistered: suffix ForSequenceClassification (model.py:2391)
    ("LlamaForTokenClassification", True),  # unregistered: ForTokenClassification (model.py:2392)
    ("Qwen3Model", True),  # unregistered: the catch-all "Model" (model.py:2400)
    ("Qwen2ForRewardModel", True),  # registry.py:302, _REWARD_MODELS, a pooling class
    ("InternLM2ForRewardModel", True),  # registry.py:301
    ("JambaForSequenceClassification", True),  # registry.py:336
    ("JinaForRanking", True),  # registry.py:285: a pooling class whose name matches no suffix
    ("HF_ColBERT", True),  # registry.py:281
    ("Qwen3ForCausalLM", False),  # registered generating class
    ("GPT2LMHeadModel", False),  # "LMHeadModel" comes before "Model" (model.py:2388)
    ("ChatGLMModel", False),  # registry.py:85: ChatGLMForCausalLM, a generating class named *Model
    ("UltravoxModel", False),  # registry.py:657: a generating multimodal class named *Model
]
# Registered to a generating class (registry.py:240, :247, :251, :233), so 0.34.0's code answers "generate" from
# config.json alone; that class cannot load a *Model checkpoint (adapters.py:206-207: only the pooling adapter loads
# both prefixes) and vLLM's docs list them as embedding models (embed.md:43-53): kvplan plans them pooling.
ALIASES = ["LlamaModel", "MistralModel", "Qwen2Model", "Gemma2Model"]


@pytest.mark.parametrize("architecture, pooling", RUNNER)
def test_runner_as_vllm_resolves_it(architecture, pooling):
    from kvplan.engines.vllm_pooling import pooling_runner

    assert pooling_runner(named(architecture)) is pooling


@pytest.mark.parametrize("architecture", ALIASES)
def test_embedding_aliases_are_pooling(architecture):
    from kvplan.engines.vllm_pooling import pooling_runner

    assert pooling_runner(named(architecture))


# --- the default prompt and an asked one, release by release --------------------------------------------------------

POOLING = ["Qwen3ForSequenceClassification", "Qwen2ForRewardModel", "MistralModel"]
# (release, a generating text model's default prompt at -c 8192): the lines in the module docstring
BOUNDARIES = [("0.11.0", 8192), ("0.11.1", 8191), ("0.16.0", 8191), ("0.17.0", 8191), ("0.34.0", 8191)]


@pytest.fixture
def pooling_specs(write_config):
    from kvplan.model.sources import resolve

    return {name: resolve(str(write_config(qwen3_config(name), f"{name}.json")), None) for name in POOLING}


@pytest.mark.parametrize("release, text", BOUNDARIES)
def test_pooling_model_gets_the_whole_length(pooling_specs, release, text):
    from kvplan.model.sources import resolve
    from kvplan.plan.plan import check_input_len, default_prompt

    assert default_prompt(8192, resolve(TEXT, None), release).tokens == text
    for name, spec in pooling_specs.items():
        prompt = default_prompt(8192, spec, release)
        assert (prompt.tokens, prompt.note) == (8192, None), (name, release)
        check_input_len(8192, 8192, spec, release)  # vLLM serves it: no refusal


@pytest.mark.parametrize("release", ["0.16.0", "0.34.0"])  # one release of each rule row
def test_estimate_pooling_full_prompt(write_config, release):
    path = write_config(qwen3_config("Qwen2ForRewardModel"))
    prefill = estimate_plan(path, "--gpu", "H100", "-c", "8K", "--engine", f"vllm=={release}")["prefill"]
    assert (prefill["input_len"], prefill["input_len_note"]) == (8192, None)
    asked = estimate_plan(path, "--gpu", "H100", "-c", "8K", "--input-len", "8192", "--engine", f"vllm=={release}")
    assert asked["prefill"]["input_len"] == 8192


def test_pooling_model_decode_is_noted(write_config):
    """A pooling model generates no tokens: kvplan keeps its decode figures (a generating model of its shape) and
    says so, in the text and in the JSON's model rules; a generating model gets no such note."""
    path = write_config(qwen3_config("Qwen3ForSequenceClassification"))
    out = run_kvplan("estimate", path, "--gpu", "H100", "-c", "8K", "--engine", "vllm==0.34.0")
    said = " ".join(out.stdout.split())
    assert out.returncode == 0
    assert "Qwen3ForSequenceClassification runs on vLLM's pooling runner" in said
    assert "it generates no tokens, so its ITL and tok/s are those of a generating model of its shape" in said
    data = json.loads(run_kvplan("estimate", path, "--gpu", "H100", "-c", "8K", "--format", "json").stdout)
    assert any("pooling runner" in rule for rule in data["model"]["rules"])
    text = json.loads(run_kvplan("estimate", TEXT, "--gpu", "H100", "-c", "8K", "--format", "json").stdout)
    assert not any("pooling runner" in rule for rule in text["model"]["rules"])


# --- the prefill chunk bound counts the prompt timed -----------------------------------------------------------------

def test_chunk_bound_counts_the_default_prompt():
    """MAX_PREFILL_CHUNKS = 2**15 = 32,768. Under 0.34 the default prompt at -c 524,289 is 524,288 tokens = 16 x 32,768:
    32,768 chunks of 16, within the bound (as --input-len 524288 is); at -c 524,290 it is 524,289: 32,769 chunks."""
    flags = ("--gpu", "H100", "--max-num-batched-tokens", "16", "--max-num-seqs", "16", "--engine", "vllm==0.34.0")
    assert run_kvplan("estimate", TEXT, "-c", "524289", *flags).returncode == 0
    assert run_kvplan("estimate", TEXT, "-c", "524289", "--input-len", "524288", *flags).returncode == 0
    line = one_error_line(run_kvplan("estimate", TEXT, "-c", "524290", *flags))
    assert "into 32,769 prefill chunks, more than the 32,768" in line


def test_chunk_bound_whole_length_where_admitted():
    """The ideal engine times the whole length: 524,288 / 16 = 32,768 chunks fit, 524,289 tokens need 32,769."""
    flags = ("--gpu", "H100", "--max-num-batched-tokens", "16", "--max-num-seqs", "16", "--engine", "none")
    assert run_kvplan("estimate", TEXT, "-c", "524288", *flags).returncode == 0
    assert "32,769 prefill chunks" in one_error_line(run_kvplan("estimate", TEXT, "-c", "524289", *flags))


def test_bounded_prefill_takes_prompt_tokens():
    from kvplan.commands.estimate import bounded_prefill
    from kvplan.errors import FieldError

    bounded_prefill([2**19], 16, 1)  # 32,768 chunks
    bounded_prefill([0], 1, 1)  # no prompt (-c 1): no chunk
    with pytest.raises(FieldError):
        bounded_prefill([2**19 + 1], 16, 1)


def test_check_bound_counts_the_default_prompt(tmp_path):
    """check runs the same bound on a deployment's max_num_batched_tokens: at 524,289 tokens and chunks of 16 under
    0.34 the prompt is 524,288 tokens, 32,768 chunks, no longer refused for one chunk too many; at 524,290 it is
    32,769."""
    from kvplan.commands.estimate import MAX_PREFILL_CHUNKS

    assert MAX_PREFILL_CHUNKS == 32768

    def deployment(context: int):
        path = tmp_path / f"deploy-{context}.yaml"
        path.write_text(f"deployments:\n  - name: long\n    model: {TEXT}\n    tp: 1\n    gpu: H100\n"
                        f"    context: {context}\n    max_num_batched_tokens: 16\n    max_num_seqs: 16\n"
                        f"    engine: vllm==0.34.0\n")
        return run_kvplan("check", "--file", path)

    within = deployment(524289)
    assert within.returncode in (0, 1) and "prefill chunks" not in within.stdout + within.stderr, within.stderr
    assert "into 32,769 prefill chunks" in one_error_line(deployment(524290))


# --- --chart with --input-len -----------------------------------------------------------------------------------------

def test_chart_with_input_len():
    """The chart's lengths (1,024 doubling to 8,192) are shorter than the prompt at some points: they time decode
    alone, and the plan keeps the asked prompt."""
    out = run_kvplan("estimate", TEXT, "--gpu", "H100", "-c", "8192", "--input-len", "4000", "--chart",
                     "--format", "json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["plans"][0]["prefill"]["input_len"] == 4000
    (curve,) = data["curves"]
    assert [p["context"] for p in curve["points"]] == [1024, 2048, 4096, 8192]
    assert all(p["max_concurrency"] > 0 for p in curve["points"])
    assert run_kvplan("estimate", TEXT, "--gpu", "H100", "-c", "8192", "--input-len", "4000", "--chart").returncode == 0


# --- a max model length of 1 ------------------------------------------------------------------------------------------

def test_asked_prompt_at_length_one_says_two_tokens():
    line = one_error_line(run_kvplan("estimate", TEXT, "--gpu", "H100", "-c", "1", "--input-len", "1",
                                     "--engine", "vllm==0.34.0"))
    assert line.endswith(f"{KEEPS_ROOM} (\"The decoder prompt (length 1) plus the number of requested output tokens "
                         f"(at least 1) is longer than the maximum model length of 1.\"); a prompt needs a max model "
                         f"length of at least 2.")
    assert "at most 0" not in line


def test_no_prompt_line_at_length_one():
    out = run_kvplan("estimate", TEXT, "--gpu", "H100", "-c", "1", "--engine", "vllm==0.34.0")
    assert out.returncode == 0
    said = " ".join(out.stdout.split())
    assert (f"Time to first token: none at max len 1 (tp 1): vLLM 0.34.0 {KEEPS_ROOM}, so a prompt needs a max "
            f"model length of at least 2.") in said
    older = run_kvplan("estimate", TEXT, "--gpu", "H100", "-c", "1", "--engine", "vllm==0.11.0").stdout
    older = " ".join(older.split())
    assert "Time to first token, 1-token prompt at batch 1 (tp 1):" in older  # 0.11.0 serves it
    assert "Time to first token: none" not in older


# --- help and README --------------------------------------------------------------------------------------------------

def test_help_names_the_exemptions():
    from conftest import ROOT

    out = run_kvplan("estimate", "--help", env={"COLUMNS": "400"})
    said = " ".join(out.stdout.replace("│", " ").split())
    assert "from 0.11.1 for a text model, from 0.17 for a multimodal one too, never for a pooling model" in said
    assert "`input_len_note`" in (ROOT / "README.md").read_text()
