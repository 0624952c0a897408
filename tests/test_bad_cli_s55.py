"""The s55 bad-command-line fixes, each against an independent source: stdout's one write (a full disk, a closed
stdout, an ASCII encoding), --input-len against the max model length as vLLM's input processor refuses it, the Hub's
failures for a bundled id at a revision, empty flag values, --speculative-config's fields by release (read by hand
from each release's config/speculative.py), and the multimodal flags on a text-only model (vLLM's registry and
ModelConfig by release)."""

from __future__ import annotations

import contextlib
import json
import errno
import io
import sys

import pytest

from conftest import (deployments_file, environment, estimate_plan, one_error_line, run_hub, run_installed,
                      run_kvplan)

# rich's SIMPLE_HEAD / HEAVY_HEAD rules and the chart's blocks
BOX = "─━┃│┏┓┳┡┩╇└┘┴█▓▒░·■"


class Recorder(io.StringIO):
    """A text stdout in `encoding` that records each write and fails as a real one would: UnicodeEncodeError for a
    character the encoding lacks, OSError(ENOSPC) for every write when `full` (/dev/full)."""

    def __init__(self, encoding: str = "utf-8", full: bool = False):
        super().__init__()
        self._encoding, self.full, self.writes = encoding, full, []

    @property
    def encoding(self) -> str:
        return self._encoding

    def write(self, text):
        if self.full:
            raise OSError(errno.ENOSPC, "No space left on device")
        text.encode(self._encoding)  # strict, as TextIOWrapper encodes
        self.writes.append(text)
        return super().write(text)


def run_to(stream, *args, columns: int = 100):
    """kvplan.cli.main(args) with `stream` as stdout (None: closed); (exit code, stderr)."""
    from kvplan.cli import main

    err = io.StringIO()
    saved = sys.stdout
    with environment({"HF_HUB_OFFLINE": "1", "COLUMNS": str(columns)}), contextlib.redirect_stderr(err):
        sys.stdout = stream
        try:
            code = main([str(a) for a in args])
        finally:
            sys.stdout = saved
    return code, err.getvalue()


# --- stdout: one write, a full disk, a closed stdout, ASCII --------------------------------------------------------

@pytest.mark.parametrize("args", [("--version",), ("estimate", "--help"), ("models",),
                                  ("estimate", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "L4")])
def test_full_disk_is_one_line_exit_2(args):
    stream = Recorder(full=True)
    code, err = run_to(stream, *args)
    assert code == 2 and err.strip() == "kvplan: error: cannot write the output to stdout: No space left on device."
    assert stream.getvalue() == ""


@pytest.mark.parametrize("args", [("--version",), ("estimate", "--help"), ("estimate", "Qwen/Qwen3-8B", "--gpu", "L4")])
def test_closed_stdout_is_one_line_exit_2(args):
    code, err = run_to(None, *args)
    assert code == 2 and err.strip() == "kvplan: error: cannot write the output: stdout is closed."


@pytest.mark.parametrize("args", [("estimate", "--help"), ("--help",), ("check", "--help"), ("--version",)])
def test_help_and_version_are_one_write(args):
    stream = Recorder()
    code, err = run_to(stream, *args)
    assert code == 0 and err == ""
    assert len(stream.writes) == 1 and stream.writes[0] == stream.getvalue() and stream.getvalue().strip()


def test_help_under_ascii_degrades_instead_of_failing():
    """The whole help in ASCII, exit 0 (it used to fail after ~972 bytes, at rich's '\u2026' cutting a long option name;
    since session 79 a long name is folded, not cut: test_review_s79.py)."""
    stream = Recorder("ascii")
    code, err = run_to(stream, "estimate", "--help", columns=80)
    text = stream.getvalue()
    assert code == 0 and err == "" and len(stream.writes) == 1
    assert "Usage: kvplan estimate" in text and "--speculative-config" in text and "--input-len" in text
    assert "+- Arguments -" in text  # rich's ASCII box where the encoding has none
    assert "--pipeline-parallel-size,--p" in text and ",--?" not in text  # folded, not cut to "?"
    text.encode("ascii")


def test_help_under_ascii_in_a_real_process():
    r = run_installed("estimate", "--help", env={"PYTHONIOENCODING": "ascii", "COLUMNS": "80"})
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert "--max-num-batched-tokens" in r.stdout and len(r.stdout) > 5000
    r.stdout.encode("ascii")


def test_ascii_table_and_chart():
    """The estimate table's rule in '-', the chart's bars in '#' (the KV cache '='), nothing outside ASCII; the same
    run on UTF-8 draws the box and block characters."""
    ascii_out, utf8_out = Recorder("ascii"), Recorder("utf-8")
    for stream in (ascii_out, utf8_out):
        code, err = run_to(stream, "estimate", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "L4", "--chart")
        assert code == 0, err
    text = ascii_out.getvalue()
    text.encode("ascii")
    assert not set(text) & set(BOX)
    assert "  1,024  ###" in text and "= KV cache" in text and "# weights" in text
    assert set(utf8_out.getvalue()) & set("─█■")
    lines = [line for line in text.splitlines() if set(line.strip()) <= set("- ") and "--" in line]
    assert lines, "the table's header rule"


def test_a_failure_after_output_leaves_none(monkeypatch):
    """A command that fails after rendering writes nothing at all: the held text is dropped with the error."""
    from kvplan.cli import app as app_module

    def failing_show(result, fmt, **options):
        sys.stdout.write("half an output\n")
        raise app_module.KvplanError("failed after writing")

    monkeypatch.setattr(app_module, "show", failing_show)
    stream = Recorder()
    code, err = run_to(stream, "estimate", "Qwen/Qwen3-8B", "--gpu", "L4")
    assert code == 2 and err.strip() == "kvplan: error: failed after writing"
    assert stream.writes == []


# --- multimodal flags on a text-only model: vLLM's registry decides ------------------------------------------------

PHI3V = {"architectures": ["Phi3VForCausalLM"], "model_type": "phi3_v", "hidden_size": 3072,
         "intermediate_size": 8192, "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 32,
         "vocab_size": 32064, "max_position_embeddings": 131072, "rms_norm_eps": 1e-05, "torch_dtype": "bfloat16",
         "hidden_act": "silu", "img_processor": {"image_dim_out": 1024, "name": "clip_vision_model",
                                                 "num_img_tokens": 144}}


class Named:
    """A spec as registry_multimodal reads it: its architecture alone."""

    def __init__(self, architecture: str):
        self.architecture, self.registered_architecture = architecture, ""


@pytest.mark.parametrize("architecture, multimodal", [
    # vLLM 0.32.0 model_executor/models/registry.py _MULTIMODAL_MODELS: :556, :558, :527, :544, :545
    ("Phi3VForCausalLM", True), ("Phi4MMForCausalLM", True), ("MolmoForCausalLM", True), ("Ovis", True),
    ("Ovis2_5", True),
    # :404 Gemma3ForConditionalGeneration and :622 WhisperForConditionalGeneration (_MULTIMODAL_MODELS)
    ("Gemma3ForConditionalGeneration", True), ("WhisperForConditionalGeneration", True),
    # _TEXT_GENERATION_MODELS: :83 ChatGLM's ...ForConditionalGeneration builds chatglm.py:432 ChatGLMForCausalLM,
    # no SupportsMultiModal; :134 HCXVisionV2ForCausalLM builds hyperclovax_vision_v2.py:364, SupportsMultiModal
    ("ChatGLMForConditionalGeneration", False), ("HCXVisionV2ForCausalLM", True),
    ("Qwen3ForCausalLM", False), ("LlamaForCausalLM", False), ("Phi3ForCausalLM", False),
])
def test_registry_multimodal(architecture, multimodal):
    from kvplan.engines.vllm_multimodal import registry_multimodal

    assert registry_multimodal(Named(architecture)) is multimodal


def test_phi3_vision_takes_its_media_flags(write_config):
    """Phi-3-vision's config has no vision_config (its tower is img_processor), yet vLLM's registry serves it as a
    multimodal class (0.32.0 registry.py:556): --limit-mm-per-prompt is no flag it ignores."""
    path = write_config(PHI3V)
    r = run_kvplan("estimate", path, "--gpu", "H100", "-c", "8K", "--limit-mm-per-prompt", "image=2")
    assert r.returncode == 0, r.stderr
    assert "nothing here" not in r.stdout


def test_text_model_notes_its_media_flags():
    r = run_kvplan("estimate", "Qwen/Qwen3-8B", "--gpu", "L4", "-c", "8K", "--limit-mm-per-prompt", "image=2",
                   "--skip-mm-profiling")
    assert r.returncode == 0, r.stderr
    text = " ".join(r.stdout.split())
    assert ("--skip-mm-profiling, --limit-mm-per-prompt change nothing here: vLLM serves Qwen/Qwen3-8B "
            "(Qwen3ForCausalLM) as a text-only model") in text


# --- up to 0.10.0 vLLM refused the media flags on a text class -----------------------------------------------------
# ModelConfig._init_multimodal_config raised "`limit_mm_per_prompt` is only supported for multimodal models." (and
# the same for mm_processor_kwargs) on a text class, as users met it on 0.8.5 and 0.9.2 (vllm#21120); 0.11.0's
# config/model.py:603-630 builds MultiModalConfig under `if self._model_info.supports_multimodal:` with no else.
# 0.10.1 as the first release without the raise is kvplan's (uncertain) boundary.

def refusal_of(*args) -> dict:
    plan = estimate_plan("Qwen/Qwen3-8B", "--gpu", "L4", "-c", "8K", *args)
    return plan["engine"]["refusal"]


@pytest.mark.parametrize("release", ["0.8.5", "0.9.2", "0.10.0"])
def test_old_release_refuses_media_limits_on_a_text_model(release):
    refusal = refusal_of("--engine", f"vllm=={release}", "--limit-mm-per-prompt", "image=2")
    assert refusal["reason"] == "`limit_mm_per_prompt` is only supported for multimodal models."
    assert refusal["configuration"] is True and refusal["field"] == "engine"
    assert refusal["remedy"] == ("it starts with --engine vllm==0.10.1 or newer; or leave --limit-mm-per-prompt "
                                 "out")


def test_old_release_refuses_processor_kwargs_on_a_text_model():
    refusal = refusal_of("--engine", "vllm==0.9.2", "--mm-processor-kwargs", '{"max_pixels": 100000}')
    assert refusal["reason"] == "`mm_processor_kwargs` is only supported for multimodal models."


def test_old_release_lets_an_empty_mapping_pass():
    """vLLM tested each for truth (`if self.limit_mm_per_prompt:`): '{}', its own default, passes."""
    r = run_kvplan("estimate", "Qwen/Qwen3-8B", "--gpu", "L4", "-c", "8K", "--engine", "vllm==0.9.2",
                   "--limit-mm-per-prompt", "{}", "--format", "json")
    assert r.returncode == 0, r.stderr
    import json

    data = json.loads(r.stdout)
    assert data["plans"][0]["engine"]["refusal"] is None
    assert any("changes nothing here" in rule for rule in data["model"]["rules"])


@pytest.mark.parametrize("release", ["0.10.1", "0.11.0", "0.32.0"])
def test_later_release_notes_the_flag(release):
    r = run_kvplan("estimate", "Qwen/Qwen3-8B", "--gpu", "L4", "-c", "8K", "--engine", f"vllm=={release}",
                   "--limit-mm-per-prompt", "image=2")
    assert r.returncode == 0, r.stderr
    assert "--limit-mm-per-prompt changes nothing here" in r.stdout and "only supported" not in r.stdout


def test_old_release_takes_media_limits_on_a_multimodal_model():
    plan = estimate_plan("Qwen/Qwen2.5-VL-7B-Instruct", "--gpu", "H100", "-c", "8K", "--engine", "vllm==0.9.2",
                         "--limit-mm-per-prompt", "image=2")
    assert plan["engine"]["refusal"] is None


def test_check_fails_the_old_release_and_warns_the_new(tmp_path):
    body = "".join(f"  - name: {name}\n    model: Qwen/Qwen3-8B\n    gpu: L4\n    tp: 1\n    context: 8192\n"
                   f"    engine: vllm=={release}\n    limit_mm_per_prompt: {{image: 2}}\n"
                   for name, release in (("old", "0.9.2"), ("new", "0.10.1")))
    path = deployments_file(tmp_path, body)
    r = run_kvplan("check", "--file", path, "--format", "json")
    assert r.returncode == 1, r.stderr
    import json

    results = {d["name"]: d for d in json.loads(r.stdout)["results"]}
    old, new = results["old"], results["new"]
    assert not old["passed"] and new["passed"]
    assert any("`limit_mm_per_prompt` is only supported for multimodal models" in f["message"]
               and f["key"] == "engine" for f in old["findings"])
    assert any(f["level"] == "warning" and f["key"] == "limit_mm_per_prompt" and "changes nothing here" in f["message"]
               for f in new["findings"])


# --- --input-len against the max model length, as vLLM's front end validates a prompt -----------------------------

def input_len_error(*args) -> str:
    return one_error_line(run_kvplan("estimate", *args))


@pytest.mark.parametrize("release", ["0.14.0", "0.18.0", "0.25.0", "0.32.0", "0.34.0"])
def test_prompt_as_long_as_the_length_is_refused(release):
    """0.14.0 v1/engine/input_processor.py:694-707 (a text model), 0.18.0 :365, 0.25.0 :423, 0.32.0 :593-602,
    0.34.0 :588: "plus the number of requested output tokens (at least 1)" when prompt_len == max_model_len."""
    line = input_len_error("Qwen/Qwen3-8B", "--gpu", "H100", "-c", "8K", "--input-len", "8192",
                           "--engine", f"vllm=={release}")
    assert line == (f"kvplan: error: --input-len (8,192) must be below -c (8,192) for vLLM {release}, which keeps "
                    f"room for one output token (\"The decoder prompt (length 8192) plus the number of requested "
                    f"output tokens (at least 1) is longer than the maximum model length of 8192.\"); at most 8,191.")


def test_prompt_as_long_as_the_length_passes_0_11_0():
    """0.11.0 v1/engine/processor.py:511-537 refuses only prompt_len > max_model_len."""
    plan = estimate_plan("Qwen/Qwen3-8B", "--gpu", "H100", "-c", "8K", "--input-len", "8192",
                         "--engine", "vllm==0.11.0")
    assert plan["prefill"]["input_len"] == 8192


def test_one_token_short_passes():
    plan = estimate_plan("Qwen/Qwen3-8B", "--gpu", "H100", "-c", "8K", "--input-len", "8191")
    assert plan["prefill"]["input_len"] == 8191


@pytest.mark.parametrize("release, refused", [("0.16.0", False), ("0.17.0", True)])
def test_multimodal_full_prompt_by_release(release, refused):
    """0.16.0 input_processor.py:766-769 exempts `model_config.is_multimodal_model`; 0.17.0 :392 refuses every
    runner_type "generate" model."""
    args = ("Qwen/Qwen2.5-VL-7B-Instruct", "--gpu", "H100", "-c", "8K", "--input-len", "8192",
            "--engine", f"vllm=={release}")
    if refused:
        assert "must be below -c (8,192)" in input_len_error(*args)
    else:
        assert estimate_plan(*args)["prefill"]["input_len"] == 8192


def test_longer_prompt_named_before_the_chunk_bound():
    """A prompt past the shortest length is input_len's fault, not the 1-token chunk that would cut it into 9,000
    prefill steps (vLLM 0.32.0 input_processor.py:574-591)."""
    line = input_len_error("Qwen/Qwen3-8B", "--gpu", "H100", "-c", "8K,32K", "--input-len", "9000",
                           "--max-num-batched-tokens", "1")
    assert line == ("kvplan: error: --input-len (9,000) must not exceed -c (8,192): vLLM refuses a prompt longer "
                    "than its max model length (\"The decoder prompt (length 9000) is longer than the maximum model "
                    "length of 8192.\").")


def test_ideal_engine_takes_a_full_prompt():
    plan = estimate_plan("Qwen/Qwen3-8B", "--gpu", "H100", "-c", "8K", "--input-len", "8192", "--engine", "none")
    assert plan["prefill"]["input_len"] == 8192
    line = input_len_error("Qwen/Qwen3-8B", "--gpu", "H100", "-c", "8K", "--input-len", "8193", "--engine", "none")
    assert line.endswith("must not exceed -c (8,192): a prompt longer than the max model length does not fit.")


def test_plan_and_estimate_share_the_rule():
    """plan() itself (the API's path past estimate) refuses as estimate does, by the engine's release."""
    from kvplan.errors import FieldError
    from kvplan.model.sources import resolve
    from kvplan.plan.budget import fixed_budget
    from kvplan.plan.plan import plan

    spec = resolve("Qwen/Qwen3-8B", None)

    def planned(engine: str):
        return plan(spec, context=8192, kv_dtype="auto", tp=1, budget_for=fixed_budget(8 * 2**30), engine=engine,
                    input_len=8192, suggest=False, speed=False)

    with pytest.raises(FieldError) as caught:
        planned("vllm==0.32.0")
    assert caught.value.field == "input_len" and caught.value.problem.endswith("at most 8,191.")
    assert planned("vllm==0.11.0").context == 8192 and planned("none").context == 8192


# --- the Hub: a bundled id at a revision, and config.json named by repo and revision ------------------------------

from http.server import BaseHTTPRequestHandler  # noqa: E402

from fake_hub import cached_repo, hub_env, send_error, send_file, serving  # noqa: E402

BUNDLED = "meta-llama/Llama-3.1-8B-Instruct"
TINY = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 512, "intermediate_size": 1024,
        "num_attention_heads": 8, "num_key_value_heads": 2, "num_hidden_layers": 4, "vocab_size": 1000,
        "max_position_embeddings": 4096, "torch_dtype": "bfloat16"}
HUGE = 16 * 2**20 + 1  # one byte past files.MAX_JSON_BYTES


class RevisionHub(BaseHTTPRequestHandler):
    """/{owner}/{name}/resolve/{revision}/{file}: the revision picks the answer."""

    protocol_version = "HTTP/1.1"
    answers = {"nofile": (404, "EntryNotFound"), "norepo": (404, "RepoNotFound")}
    bodies = {"bad": b'{"hidden_size": 512,', "huge": b" " * HUGE}

    def log_message(self, *args):
        pass

    def _answer(self, body: bool):
        parts = self.path.split("?")[0].strip("/").split("/")
        revision = parts[3] if len(parts) > 4 and parts[2] == "resolve" else ""
        if revision in self.answers:
            return send_error(self, *self.answers[revision])
        if parts[-1] != "config.json":
            return send_error(self, 404, "EntryNotFound")
        send_file(self, self.bodies.get(revision, json.dumps(TINY).encode()), body)

    def do_HEAD(self):
        self._answer(body=False)

    def do_GET(self):
        self._answer(body=True)


@pytest.fixture(scope="module")
def revision_hub():
    with serving(RevisionHub) as endpoint:
        yield endpoint


def closed_endpoint() -> str:
    import socket

    with socket.socket() as sock:  # a port nobody listens on: connection refused
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def hub_error(tmp_path, env, *args) -> str:
    r = run_hub("estimate", *args, "--gpu", "H100", env=env)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and r.stdout == "", r.stderr
    assert "snapshots" not in lines[0] and str(tmp_path) not in lines[0], lines[0]
    return lines[0]


def past_bundled(why: str) -> str:
    return (f"kvplan: error: --revision 'v9' reads {BUNDLED} from the Hugging Face Hub, past its bundled spec (which "
            f"has no revisions), and {why}; drop --revision to use the bundled spec.")


def test_bundled_at_a_revision_unreachable_hub(tmp_path):
    line = hub_error(tmp_path, hub_env(tmp_path, closed_endpoint()), BUNDLED, "--revision", "v9")
    assert line == past_bundled("the Hub could not be reached")


def test_local_entry_not_found_online_is_no_missing_file(monkeypatch):
    """huggingface_hub's LocalEntryNotFoundError (nothing cached, the Hub not asked or not answering) is an
    EntryNotFoundError too: online it must be said as the unreachable Hub, not as a config.json the Hub lacks."""
    from huggingface_hub import constants, errors

    from kvplan.model.hub import _past_bundled

    assert issubclass(errors.LocalEntryNotFoundError, errors.EntryNotFoundError)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    error = _past_bundled(BUNDLED, "v9", errors.LocalEntryNotFoundError("not cached"), 10.0)
    assert error.field == "revision" and "and the Hub could not be reached;" in error.problem
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    error = _past_bundled(BUNDLED, "v9", errors.LocalEntryNotFoundError("not cached"), 10.0)
    assert "and HF_HUB_OFFLINE is set and the Hugging Face cache holds no copy;" in error.problem


def test_bundled_at_a_revision_offline(tmp_path):
    line = hub_error(tmp_path, hub_env(tmp_path, offline=True), BUNDLED, "--revision", "v9")
    assert line == past_bundled("HF_HUB_OFFLINE is set and the Hugging Face cache holds no copy")


def test_bundled_at_a_revision_without_config(tmp_path, revision_hub):
    RevisionHub.answers["v9"] = (404, "EntryNotFound")
    try:
        line = hub_error(tmp_path, hub_env(tmp_path, revision_hub), BUNDLED, "--revision", "v9")
    finally:
        del RevisionHub.answers["v9"]
    assert line == past_bundled("the Hub has no config.json there")


def test_bundled_at_a_revision_that_works(tmp_path, revision_hub):
    r = run_hub("estimate", BUNDLED, "--revision", "v1", "--gpu", "H100", "--kv-budget", "1GiB", "--format",
                "json", env=hub_env(tmp_path, revision_hub))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["model"]["num_hidden_layers"] == 4  # the Hub's config, not the bundled 32 layers


def test_malformed_hub_config_named_by_repo_and_revision(tmp_path, revision_hub):
    line = hub_error(tmp_path, hub_env(tmp_path, revision_hub), "acme/tiny", "--revision", "bad")
    assert line.startswith("kvplan: error: config.json of acme/tiny at revision bad on the Hugging Face Hub is not "
                           "valid JSON: "), line


def test_oversized_hub_config_named_by_repo_and_revision(tmp_path, revision_hub):
    line = hub_error(tmp_path, hub_env(tmp_path, revision_hub), "acme/tiny", "--revision", "huge")
    assert line == (f"kvplan: error: config.json of acme/tiny at revision huge on the Hugging Face Hub is "
                    f"{HUGE:,} bytes, more than the {16 * 2**20:,} a file of its kind can sensibly hold.")


def test_cached_malformed_config_without_revision(tmp_path):
    cached_repo(tmp_path, "acme/cached", {"config.json": TINY})
    snapshot = next((tmp_path / "cache").glob("models--acme--cached/snapshots/*"))
    (snapshot / "config.json").write_text("[1, 2")
    line = hub_error(tmp_path, hub_env(tmp_path, offline=True), "acme/cached")
    assert line.startswith("kvplan: error: config.json of acme/cached on the Hugging Face Hub is not valid JSON"), line


# --- empty flag values: refused as any bad value is, naming the flag ------------------------------------------------

@pytest.mark.parametrize("flag, words", [
    ("--gpu", "--gpu '' is not in the GPU catalog"),
    ("--batch", "--batch takes positive whole numbers separated by commas (e.g. 1,8,64), got ''."),
    ("--pp-layer-partition", "--pp-layer-partition takes positive whole numbers separated by commas (e.g. 31,30), "
                             "got ''."),
    # vLLM parses the flag with json.loads (0.32.0 engine/arg_utils.py:413-414), and json.loads('') raises
    ("--limit-mm-per-prompt", "--limit-mm-per-prompt must be vLLM's form"),
    ("--mm-processor-kwargs", "--mm-processor-kwargs must be vLLM's form"),
    ("--speculative-config", "--speculative-config must be a JSON object"),
])
def test_empty_flag_value_is_refused(flag, words):
    line = one_error_line(run_kvplan("estimate", "Qwen/Qwen3-8B", "-c", "8K", flag, ""))
    assert line.startswith(f"kvplan: error: {words}"), line
    assert line.endswith("got ''.") or "''" in line


def test_json_refuses_the_empty_string():
    """The control behind the media flags' refusal: vLLM's parser is json.loads, which takes no empty text."""
    with pytest.raises(json.JSONDecodeError):
        json.loads("")


def test_empty_file_name_is_refused():
    line = one_error_line(run_kvplan("check", "--file", ""))
    assert line == ("kvplan: error: --file is empty (''); give a YAML file with a list of entries under "
                    "'deployments:'.")


def test_a_space_is_a_file_name(tmp_path):
    """' ' names a file like any other (POSIX allows it): read when it exists, said quoted when it does not."""
    missing = one_error_line(run_kvplan("check", "--file", " ", cwd=tmp_path))
    assert missing == ("kvplan: error: --file ' ' does not exist; give a YAML file with a list of entries under "
                       "'deployments:'.")
    (tmp_path / " ").write_text("deployments:\n  - name: chat\n    model: Qwen/Qwen3-8B\n    tp: 1\n    gpu: H100\n"
                                "    context: 8192\n")
    r = run_kvplan("check", "--file", " ", cwd=tmp_path)
    assert r.returncode == 0 and "chat" in r.stdout, r.stderr


# --- --speculative-config's keys by release: SpeculativeConfig's fields read in each release's source -------------
# The annotated fields of the class body (the keywords its pydantic __init__ takes; extra="forbid"), field: line in
# vllm/config/speculative.py. 0.34.0's custom_method (:479) is init=False: no keyword.

FIELDS_READ = {
    "0.32.0": {  # class SpeculativeConfig at :387
        "enforce_eager": 390, "num_speculative_tokens": 393, "model": 396, "method": 399,
        "draft_tensor_parallel_size": 407, "tensor_parallel_size": 410, "quantization": 415, "moe_backend": 419,
        "attention_backend": 424, "kv_cache_dtype": 428, "max_model_len": 431, "revision": 434, "code_revision": 438,
        "index_share_for_mtp_iteration": 442, "disable_padded_drafter_batch": 447, "disable_eagle_block_drop": 452,
        "use_local_argmax_reduction": 457, "use_heterogeneous_vocab": 463, "prompt_lookup_max": 470,
        "prompt_lookup_min": 473, "parallel_drafting": 478, "target_model_config": 485,
        "target_parallel_config": 487, "num_speculative_tokens_per_batch_size": 491, "draft_model_config": 499,
        "draft_parallel_config": 501, "suffix_decoding_max_tree_depth": 505,
        "suffix_decoding_max_cached_requests": 509, "suffix_decoding_max_spec_factor": 515,
        "suffix_decoding_min_token_prob": 520, "draft_load_config": 525, "rejection_sample_method": 529,
        "synthetic_acceptance_rates": 537, "synthetic_acceptance_length": 545, "enable_adaptive_verification": 551,
        "draft_sample_method": 600, "dspark_draft_topk": 608},
    "0.33.0": {  # class SpeculativeConfig at :407
        "enforce_eager": 410, "num_speculative_tokens": 413, "model": 416, "method": 419,
        "draft_tensor_parallel_size": 427, "tensor_parallel_size": 430, "quantization": 435, "moe_backend": 439,
        "attention_backend": 444, "kv_cache_dtype": 448, "max_model_len": 452, "revision": 455, "code_revision": 459,
        "index_share_for_mtp_iteration": 463, "disable_padded_drafter_batch": 468, "disable_eagle_block_drop": 473,
        "disable_lookahead_block_hashes": 478, "draft_lm_head_quantization": 484, "use_local_argmax_reduction": 490,
        "use_heterogeneous_vocab": 496, "prompt_lookup_max": 503, "prompt_lookup_min": 506,
        "parallel_drafting": 511, "target_model_config": 518, "target_parallel_config": 520,
        "num_speculative_tokens_per_batch_size": 524, "draft_model_config": 532, "draft_parallel_config": 534,
        "suffix_decoding_max_tree_depth": 538, "suffix_decoding_max_cached_requests": 542,
        "suffix_decoding_max_spec_factor": 548, "suffix_decoding_min_token_prob": 553, "draft_load_config": 558,
        "rejection_sample_method": 562, "synthetic_acceptance_rates": 571, "synthetic_acceptance_length": 579,
        "enable_adaptive_verification": 585, "draft_sample_method": 634, "dspark_draft_topk": 642,
        "xpress_topc": 646, "fly_window_size": 652, "fly_entropy_threshold": 656, "fly_entropy_top_k": 659},
    "0.34.0": {  # class SpeculativeConfig at :449
        "enforce_eager": 452, "num_speculative_tokens": 455, "model": 458, "method": 461,
        "draft_tensor_parallel_size": 481, "draft_decode_context_parallel_size": 484, "tensor_parallel_size": 489,
        "quantization": 494, "moe_backend": 498, "attention_backend": 503, "kv_cache_dtype": 507,
        "max_model_len": 511, "revision": 514, "code_revision": 518, "index_share_for_mtp_iteration": 522,
        "disable_eagle_block_drop": 527, "disable_lookahead_block_hashes": 532, "draft_lm_head_quantization": 538,
        "use_local_argmax_reduction": 544, "prompt_lookup_max": 551, "prompt_lookup_min": 554,
        "parallel_drafting": 559, "target_model_config": 564, "target_parallel_config": 566,
        "num_speculative_tokens_per_batch_size": 570, "draft_model_config": 578, "draft_parallel_config": 580,
        "suffix_decoding_max_tree_depth": 584, "suffix_decoding_max_cached_requests": 587,
        "suffix_decoding_corpus_tokens": 592, "suffix_decoding_max_spec_factor": 598,
        "suffix_decoding_min_token_prob": 602, "draft_load_config": 606, "rejection_sample_method": 610,
        "synthetic_acceptance_rates": 619, "synthetic_acceptance_length": 627, "enable_adaptive_verification": 633,
        "draft_sample_method": 682, "dspark_draft_topk": 690, "xpress_topc": 694, "speculator_options": 700,
        "fly_window_size": 704, "fly_entropy_threshold": 708, "fly_entropy_top_k": 711},
}
ALL_FIELDS = sorted(set().union(*FIELDS_READ.values()))


def test_field_counts_read():
    # 0.34.0 annotates 45, custom_method (init=False) no keyword
    assert [len(FIELDS_READ[r]) for r in ("0.32.0", "0.33.0", "0.34.0")] == [37, 43, 44]
    assert "custom_method" not in FIELDS_READ["0.34.0"]


@pytest.mark.parametrize("release", sorted(FIELDS_READ))
@pytest.mark.parametrize("key", ALL_FIELDS)
def test_speculative_key_by_release(release, key):
    from kvplan.engines.vllm_speculative import check_fields
    from kvplan.errors import FieldError

    if key in FIELDS_READ[release]:
        check_fields({key}, release)
        return
    with pytest.raises(FieldError) as caught:
        check_fields({key}, release)
    having = [r[:-2] for r in sorted(FIELDS_READ) if key in FIELDS_READ[r]]
    where = f"(from {having[0]})" if having[-1] == "0.34" else f"(vLLM {having[0]} to {having[-1]} have it)"
    assert caught.value.problem.startswith(f"names {key}, which vllm=={release}'s SpeculativeConfig does not have "
                                           f"{where}; vLLM refuses any key but its fields: ")


@pytest.mark.parametrize("release", sorted(FIELDS_READ))
def test_speculative_listed_fields_are_the_release_s(release):
    """The fields the refusal lists are the release's, no more, no fewer."""
    from kvplan.engines.vllm_speculative import check_fields
    from kvplan.errors import FieldError

    with pytest.raises(FieldError) as caught:
        check_fields({"no_such_field"}, release)
    listed = caught.value.problem.split("its fields: ", 1)[1].rstrip(".").split(", ")
    assert sorted(listed) == sorted(FIELDS_READ[release])
    assert caught.value.problem.startswith(f"names 'no_such_field', which vllm=={release}'s SpeculativeConfig does "
                                           f"not have; ")


def test_speculative_key_spelled_with_dashes_on_the_command_line():
    """EngineArgs reads each '-' of a key as '_' (0.32.0 engine/arg_utils.py:2085-2099); 0.32.0 lacks FLy's
    window (0.33.0 :652 first has it)."""
    config = json.dumps({"method": "ngram", "num_speculative_tokens": 2, "prompt-lookup-max": 3,
                         "fly-window-size": 1})
    line = one_error_line(run_kvplan("estimate", "Qwen/Qwen3-8B", "-c", "4096", "--engine", "vllm==0.32.0",
                                     "--speculative-config", config))
    assert line.startswith("kvplan: error: --speculative-config names fly_window_size, which vllm==0.32.0's "
                           "SpeculativeConfig does not have (from 0.33); ")
