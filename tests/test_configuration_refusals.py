"""vLLM's refusals of a configuration that are not about memory: a --max-model-len past the model's own maximum
(vllm/config/model.py 0.32.0:2637-2666, _get_and_verify_max_len: ValueError "User-specified max_model_len (N) is
greater than the derived max_model_len ...", raised while the config is read, before any memory is profiled) and an
architecture the release's registry does not list (vllm/model_executor/models/registry.py 0.32.0:1186-1209,
_raise_for_unsupported: "was supported in vLLM until v..." / "are not supported for now"). kvplan used to print them
as memory failures ("does not fit: one request needs 15.3 GiB of KV per GPU, the budget is 68.3 GiB"); now they are
configuration refusals, each on the field at fault, with a remedy in kvplan's words.

Hand figures (the bundled configs, read as Hugging Face publishes them):
- Llama-3.2-1B-Instruct: 16 layers x 8 KV heads x head_dim 64, bf16: 2 x 16 x 8 x 64 x 2 = 32,768 bytes a token;
  max_position_embeddings 131,072. A 500,000-token request is 500,000 x 32,768 = 15.26 GiB, well under the H100's
  KV budget: memory is not why vLLM refuses it.
- Meta-Llama-3-70B: max_position_embeddings 8,192; 70.6B bf16 parameters (~131 GiB) do not fit one H200
  (141 GiB x 0.92 = 130 GiB), so at 8,192 tokens it needs tp 2.
- tiiuae/falcon-7b: architectures ["RWForCausalLM"], which 0.32.0's registry lists in _PREVIOUSLY_SUPPORTED_MODELS
  as "0.28.0"."""

import json

import pytest

from conftest import deployments_file as deployments, line_of, run_kvplan

from kvplan.api import estimate

LLAMA_1B, LLAMA_70B, FALCON = "meta-llama/Llama-3.2-1B-Instruct", "meta-llama/Meta-Llama-3-70B", "tiiuae/falcon-7b"
V32 = "deepseek-ai/DeepSeek-V3.2"
GiB = 2**30
# vLLM 0.32.0 config/model.py:2645-2664, its f-strings filled in by hand for 500,000 over 131,072
LENGTH_REASON = ("User-specified max_model_len (500000) is greater than the derived max_model_len "
                 "(max_position_embeddings=131072.0 or model_max_length=None in model's config.json). To allow "
                 "overriding this maximum, set the env var VLLM_ALLOW_LONG_MAX_MODEL_LEN=1. "
                 "VLLM_ALLOW_LONG_MAX_MODEL_LEN must be used with extreme caution. If the model uses relative position "
                 "encoding (RoPE), positions exceeding derived_max_model_len lead to nan. If the model uses absolute "
                 "position encoding, positions exceeding derived_max_model_len will cause a CUDA array out-of-bounds "
                 "error.")
LENGTH_FIRST = ("User-specified max_model_len (500000) is greater than the derived max_model_len "
                "(max_position_embeddings=131072.0 or model_max_length=None in model's config.json)")


def flat(text: str) -> str:
    return " ".join(text.split())


def json_of(*args) -> dict:
    r = run_kvplan(*args, "--format", "json")
    assert r.returncode in (0, 1), r.stderr
    return json.loads(r.stdout)


# -- a length past the model's own ------------------------------------------------------------------------------------

def test_hand_figures():
    per_token = 2 * 16 * 8 * 64 * 2
    assert per_token == 32768 and 500_000 * per_token / GiB == pytest.approx(15.26, abs=0.01)
    assert 131_072 * per_token == 4 * GiB


def test_estimate_says_a_length_past_the_models_own_does_not_start_not_that_it_does_not_fit():
    r = run_kvplan("estimate", LLAMA_1B, "--max-model-len", "500000", "--gpu", "h100", env={"COLUMNS": "200"})
    assert r.returncode == 0, r.stderr
    text = flat(r.stdout)
    assert ("max len 500,000 bf16 tp 1 does not start: vllm 0.32.0 refuses the configuration: " + LENGTH_FIRST
            + "; it starts with --max-model-len 131072 or less (the model's own maximum; or "
              "VLLM_ALLOW_LONG_MAX_MODEL_LEN=1, at your own risk).") in text  # planned there: it fits
    assert "does not fit" not in text and "one request needs" not in text
    # vLLM's own words stay verbatim in the start-up block
    assert "refuses to start: " + LENGTH_REASON in text
    # no prompt runs on a server that does not start: no time to first token for it, no decode cells
    assert "Time to first token, 500,000-token prompt" not in text
    row = next(line.split() for line in r.stdout.splitlines() if line.strip().startswith("500,000"))
    assert row[-2:] == ["-", "-"]


def test_the_remedy_is_spelled_as_the_other_suggestions_are():
    """The command line teaches vLLM's flag (as "would fit with" does), whatever alias was typed; the Python API
    and deployments files name the field."""
    text = flat(run_kvplan("estimate", LLAMA_1B, "--context", "500000", "--gpu", "h100").stdout)
    assert "; it starts with --max-model-len 131072 or less" in text
    (plan,) = estimate(LLAMA_1B, max_model_len=500000, gpu="h100")  # the API's keyword (api.py KEYWORDS)
    assert "; it starts with max_model_len 131072 or less" in plan.suggestion()
    assert plan.to_dict()["engine"]["refusal"]["remedy"].startswith("it starts with max_model_len 131072 or less")


def test_json_marks_the_length_refusal_a_configuration_refusal_on_context():
    (plan,) = json_of("estimate", LLAMA_1B, "--max-model-len", "500000", "--gpu", "h100")["plans"]
    refusal = plan["engine"]["refusal"]
    assert refusal == {"reason": LENGTH_REASON, "estimated_max_model_len": 131072, "configuration": True,
                       "field": "context",
                       "remedy": "it starts with --max-model-len 131072 or less (the model's own maximum; or "
                                 "VLLM_ALLOW_LONG_MAX_MODEL_LEN=1, at your own risk)"}
    assert plan["engine"]["starts"] is False and plan["max_concurrency"] == 0
    assert plan["max_concurrency_limited_by"] in ("memory", "max_num_seqs")  # design.md: no new values
    # memory is not the reason: the bytes of one request are far below the budget
    assert plan["kv_bytes_per_sequence_per_gpu"] < plan["kv_budget_bytes_per_gpu"] / 4
    assert plan["suggestion"].startswith("vllm 0.32.0 refuses the configuration: " + LENGTH_FIRST + "; ")
    assert plan["suggestion"].endswith("; it starts with --max-model-len 131072 or less (the model's own maximum; "
                                       "or VLLM_ALLOW_LONG_MAX_MODEL_LEN=1, at your own risk)")


def test_a_memory_refusal_keeps_its_keys_and_words():
    """A real memory refusal (4 GiB of KV for one 131,072-token request, a 1 GiB budget) is not a configuration
    refusal: no configuration / field / remedy keys, and the table still says what one request needs."""
    (plan,) = json_of("estimate", LLAMA_1B, "--max-model-len", "131072", "--kv-cache-memory-bytes", "1GiB")["plans"]
    refusal = plan["engine"]["refusal"]
    assert refusal["reason"].startswith("To serve at least one request with the model's max seq len (131072)")
    assert not {"configuration", "field", "remedy"} & set(refusal)
    text = flat(run_kvplan("estimate", LLAMA_1B, "--max-model-len", "131072", "--kv-cache-memory-bytes",
                           "1GiB").stdout)
    assert "does not fit: one request needs 4.00 GiB of KV per GPU, the budget is 1.00 GiB" in text


def test_the_suggestion_for_a_refused_length_is_searched_at_the_models_own():
    """Every TP degree is refused at 32,768 tokens (the check is on the config), so the old search found none and
    said "the weights alone exceed the budget of one GPU" for tp 1. At the model's own 8,192 tokens tp 2 holds it;
    tp 1 does not (the weights)."""
    (one,) = estimate(LLAMA_70B, max_model_len=32768, gpu="h200")
    assert one.fits_with == (("tp", 2),)
    assert one.suggestion().endswith("; vLLM accepts max_model_len 8192 or less (the model's own maximum; or "
                                     "VLLM_ALLOW_LONG_MAX_MODEL_LEN=1, at your own risk), but at max_model_len 8192 "
                                     "the weights alone do not fit; at max_model_len 8192 it would fit with "
                                     "tensor_parallel_size 2")
    assert estimate(LLAMA_70B, max_model_len=8192, gpu="h200", tensor_parallel_size=2)[0].max_concurrency > 0
    assert estimate(LLAMA_70B, max_model_len=8192, gpu="h200")[0].max_concurrency == 0
    (two,) = estimate(LLAMA_70B, max_model_len=32768, gpu="h200", tensor_parallel_size=2)
    assert two.fits_with == (("context", 8192),) and two.suggestion().endswith(
        "; it starts with max_model_len 8192 or less (the model's own maximum; or VLLM_ALLOW_LONG_MAX_MODEL_LEN=1, at "
        "your own risk)")
    (small,) = estimate(LLAMA_1B, max_model_len=500000, gpu="h100")
    assert small.fits_with == (("context", 131072),)  # never a TP degree: none starts at 500,000
    text = flat(run_kvplan("estimate", LLAMA_70B, "--max-model-len", "32K", "--gpu", "h200").stdout)
    assert ("max len 32,768 bf16 tp 1 does not start: vllm 0.32.0 refuses the configuration: User-specified "
            "max_model_len (32768) is greater than the derived max_model_len (max_position_embeddings=8192.0") in text
    assert "at --max-model-len 8192 it would fit with --tensor-parallel-size 2." in text
    # the weights would stop it next (vLLM reports its first error only): said too, without claiming it starts
    assert "the weights alone do not fit at tp 1" in text and "it starts with" not in text


def test_check_fails_a_refused_length_on_context(tmp_path):
    """A deployment vLLM refuses to start is an error on the field at fault (exit 1), not a warning that "not one
    sequence fits", and not a capacity error beside a budget four times what one request needs."""
    r = run_kvplan("check", LLAMA_1B, "-tp", "1", "--max-model-len", "500000", "--gpu", "h100")
    assert r.returncode == 1, (r.stdout, r.stderr)
    text = flat(r.stdout)
    assert ("vLLM 0.32.0 does not start: " + LENGTH_FIRST + "; it starts with --max-model-len 131072 or less (the "
            "model's own maximum; or VLLM_ALLOW_LONG_MAX_MODEL_LEN=1, at your own risk).") in text
    assert "not one sequence fits" not in text and "keeps 0 sequences" not in text
    path = deployments(tmp_path, """  - name: long
    model: meta-llama/Llama-3.2-1B-Instruct
    tp: 1
    gpu: h100
    context: 500000
    min_concurrency: 2
""")
    r = run_kvplan("check", "--file", path, "--format", "json")
    assert r.returncode == 1, r.stderr
    (result,) = json.loads(r.stdout)["results"]
    assert not result["passed"]
    (finding,) = result["findings"]  # the context warning and the capacity error said the same thing, or worse
    assert finding["level"] == "error" and finding["key"] == "context"
    assert finding["line"] == line_of(path, "context: 500000", "name: long")
    assert finding["message"].endswith("; it starts with context 131072 or less (the model's own maximum; or "
                                       "VLLM_ALLOW_LONG_MAX_MODEL_LEN=1, at your own risk).")
    assert result["engine"]["refusal"]["field"] == "context"
    assert result["engine"]["refusal"]["remedy"].startswith("it starts with context 131072 or less")
    assert result["max_concurrency_limited_by"] in ("memory", "max_num_seqs")


def test_check_passes_the_models_own_length():
    assert run_kvplan("check", LLAMA_1B, "-tp", "1", "--max-model-len", "131072", "--gpu", "h100").returncode == 0


def test_the_chart_marks_lengths_vllm_refuses():
    """--chart draws lengths up to the longest asked; those past 131,072 are refused, not 0 requests that "do not
    fit"; the JSON curve points carry `refused` (the field at fault) only there."""
    r = run_kvplan("estimate", LLAMA_1B, "--max-model-len", "500000", "--gpu", "h100", "--chart")
    lines = {line.split()[0]: line for line in r.stdout.splitlines() if line.strip()[:1].isdigit()}
    assert lines["262,144"].split()[-1] == "refused" and lines["500,000"].split()[-1] == "refused"
    assert "refused" not in lines["131,072"]
    assert "refused: vLLM refuses that configuration whatever the memory" in flat(r.stdout)
    (curve,) = json_of("estimate", LLAMA_1B, "--max-model-len", "500000", "--gpu", "h100", "--chart")["curves"]
    refused = {p["context"]: p.get("refused") for p in curve["points"]}
    assert refused[262144] == refused[500000] == "context"
    assert refused[131072] is None and all(v is None for k, v in refused.items() if k <= 131072)


def test_verify_says_vllm_refuses_the_length():
    """verify's early stop for a plan that does not start (gpu/rank.py no_fit_message) names the refusal, not "no
    room for one sequence" (it printed the KV budget and one sequence's bytes, which fit)."""
    pytest.importorskip("torch")
    from kvplan.gpu.rank import no_fit_message

    (plan,) = estimate(LLAMA_1B, max_model_len=4_000_000, gpu="h100")
    message = no_fit_message(plan_spec(), plan, "H100")
    assert message.startswith("meta-llama/Llama-3.2-1B-Instruct at tp 1, 4,000,000-token sequences: vllm 0.32.0 "
                              "refuses the configuration: User-specified max_model_len (4000000)")
    assert "leaves no room" not in message and "it starts with max_model_len 131072 or less" in message


def plan_spec():
    from kvplan.model.sources import resolve

    return resolve(LLAMA_1B, None)


# -- an architecture the release does not serve -----------------------------------------------------------------------

REMOVED_FIRST = ("Model architecture RWForCausalLM was supported in vLLM until v0.28.0, and is not supported "
                 "anymore")


def test_estimate_says_a_removed_architecture_does_not_start():
    text = flat(run_kvplan("estimate", FALCON, "--gpu", "h100").stdout)
    assert ("max len 2,048 bf16 tp 1 does not start: vllm 0.32.0 refuses the model: " + REMOVED_FIRST
            + "; it starts with --engine vllm==0.28.0 or older.") in text
    assert "does not fit" not in text and "Time to first token" not in text
    (plan,) = json_of("estimate", FALCON, "--gpu", "h100")["plans"]
    refusal = plan["engine"]["refusal"]
    assert refusal["reason"] == (REMOVED_FIRST + ". Please use an older version of vLLM if you want to use this "
                                 "model architecture.")  # registry.py:1190-1195, verbatim
    assert (refusal["configuration"], refusal["field"]) == (True, "engine")
    assert refusal["remedy"] == "it starts with --engine vllm==0.28.0 or older"
    assert plan["suggestion"].endswith("; it starts with --engine vllm==0.28.0 or older")


def test_the_architecture_remedy_is_true():
    """0.28.0 serves falcon-7b (it fits an H100 at its 2,048 tokens); 0.11.0 serves DeepSeek-V3.2, which 0.10.2
    refuses."""
    assert estimate(FALCON, gpu="h100", engine="vllm==0.28.0")[0].max_concurrency > 0
    (old,) = estimate(V32, gpu="h200", tensor_parallel_size=8, max_model_len=32768, engine="vllm==0.10.2")
    assert old.engine.refusal.field == "engine" and old.fits_with == (("engine", "vllm==0.11.0"),)
    assert old.engine.refusal.advice() == "it starts with engine vllm==0.11.0 or newer"
    (new,) = estimate(V32, gpu="h200", tensor_parallel_size=8, max_model_len=32768, engine="vllm==0.11.0")
    assert new.engine.refusal is None and new.max_concurrency > 0


def test_check_fails_a_removed_architecture_on_engine(tmp_path):
    r = run_kvplan("check", FALCON, "-tp", "1", "--gpu", "h100")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert ("vLLM 0.32.0 does not start: " + REMOVED_FIRST + "; it starts with --engine vllm==0.28.0 or older.") \
        in flat(r.stdout)
    path = deployments(tmp_path, """  - name: old
    model: tiiuae/falcon-7b
    tp: 1
    gpu: h100
    engine: vllm
""")
    (result,) = json.loads(run_kvplan("check", "--file", path, "--format", "json").stdout)["results"]
    (finding,) = result["findings"]
    assert (finding["level"], finding["key"]) == ("error", "engine")
    assert finding["line"] == line_of(path, "engine: vllm", "name: old")
    assert finding["message"].endswith("; it starts with engine vllm==0.28.0 or older.")
    path = deployments(tmp_path, """  - name: older
    model: tiiuae/falcon-7b
    tp: 1
    gpu: h100
    engine: vllm==0.28.0
""")
    assert run_kvplan("check", "--file", path).returncode == 0


# -- the sparse-dtype refusal, spelled as the caller spells it ---------------------------------------------------------

def test_a_deployments_file_spells_the_dtype_remedy_as_its_key(tmp_path):
    """Was "--kv-cache-dtype auto, ..." in a file whose key is kv_dtype: the remedy now names the field as the caller
    spells it, on the command line as before."""
    path = deployments(tmp_path, """  - name: v32
    model: deepseek-ai/DeepSeek-V3.2
    tp: 8
    gpu: h200
    engine: vllm==0.25.1
    kv_dtype: fp8_e4m3
    context: 32768
""")
    r = run_kvplan("check", "--file", path, "--format", "json")
    assert r.returncode == 1, r.stderr
    (result,) = json.loads(r.stdout)["results"]
    (finding,) = [f for f in result["findings"] if f["level"] != "notice"]  # the RoPE note besides
    assert finding["key"] == "kv_dtype" and finding["line"] == line_of(path, "kv_dtype:", "name: v32")
    assert finding["message"].endswith("; it starts with kv_dtype auto, bfloat16, fp8, fp8_ds_mla.")
    assert result["engine"]["refusal"]["field"] == "kv_dtype"
