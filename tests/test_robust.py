"""Hostile and careless input, case by case (each one a failure found by probing kvplan, issue 16): every one
ends in exit 0, 1 or 2 with one stderr line, or in exit 3 / 130 with one line, never a traceback or a hang, and
nothing prints a number that is not finite or not of its type."""

from __future__ import annotations

import errno
import io
import json
import math
import os
import struct
import sys
import time

import pytest

from conftest import run_kvplan
from hub_configs import DEEPSEEK_V3, GEMMA2_9B, LLAMA3_8B


def one_line(result, *needles, code=2) -> str:
    assert result.returncode == code, (result.returncode, result.stdout[:300], result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def finite_numbers(text: str) -> dict:
    """JSON that a strict reader accepts (no NaN/Infinity), every number finite."""
    def refuse(name):
        raise AssertionError(f"{name} in JSON output")
    return json.loads(text, parse_constant=refuse)


def write(tmp_path, config, name="config.json"):
    folder = tmp_path / "model"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(config if isinstance(config, str) else json.dumps(config))
    return folder


# ---- config values: the traceback and nonsense cases of the issue ---------------------------------------------

@pytest.mark.parametrize("base, field, value, needle", [
    (LLAMA3_8B, "num_attention_heads", 10**44, "at most 1,048,576"),
    (DEEPSEEK_V3, "qk_nope_head_dim", 1e308, "'qk_nope_head_dim' must be at most"),
    (DEEPSEEK_V3, "first_k_dense_replace", 0.5, "'first_k_dense_replace' must be an integer >= 0, got 0.5"),
    (LLAMA3_8B, "head_dim", 0.5, "'head_dim' must be a positive integer, got 0.5"),
    (LLAMA3_8B, "intermediate_size", -14336, "'intermediate_size' must be an integer >= 0, got -14336"),
    (LLAMA3_8B, "num_hidden_layers", 1_000_000, "'num_hidden_layers' must be at most 1,024"),
    (GEMMA2_9B, "num_hidden_layers", 2**63, "'num_hidden_layers' must be at most 1,024"),
    (LLAMA3_8B, "num_key_value_heads", True, "got true"),
    (LLAMA3_8B, "hidden_size", "4096", 'got "4096"'),
    (LLAMA3_8B, "tie_word_embeddings", "no", "'tie_word_embeddings' must be true or false"),
    (LLAMA3_8B, "quantization_config", [1], "'quantization_config' must be a mapping"),
    (LLAMA3_8B, "num_experts_per_tok", 9, None),  # dense model: no experts to exceed, accepted
])
def test_bad_config_values_are_one_line(tmp_path, base, field, value, needle):
    result = run_kvplan("estimate", write(tmp_path, {**base, field: value}), "--format", "json")
    if needle is None:
        assert result.returncode == 0, result.stderr
        finite_numbers(result.stdout)
    else:
        one_line(result, needle)


@pytest.mark.parametrize("literal, needle", [
    ("NaN", "got NaN"), ("Infinity", "got Infinity"), ("-Infinity", "got -Infinity"),
    ("1" * 4301, "got <an integer of 4,301 digits>"), ("1e400", "got Infinity"),
])
def test_literals_python_json_would_choke_on(tmp_path, literal, needle):
    text = json.dumps({**LLAMA3_8B, "head_dim": "@"}).replace('"@"', literal)
    one_line(run_kvplan("estimate", write(tmp_path, text)), "'head_dim'", needle)


def test_deep_nesting_is_refused_not_recursed(tmp_path):
    for depth in (40, 990, 100_000):
        text = json.dumps(LLAMA3_8B)[:-1] + ', "x": ' + '{"a": ' * depth + "1" + "}" * depth + "}"
        one_line(run_kvplan("estimate", write(tmp_path, text)), "nests deeper than 32 levels")


def test_consistency_checks(tmp_path):
    one_line(run_kvplan("estimate", write(tmp_path, {**DEEPSEEK_V3, "num_experts_per_tok": 300})),
             "'num_experts_per_tok' (300) must be at most the number of routed experts (256)")
    mistral = {**LLAMA3_8B, "sliding_window": 65536, "max_position_embeddings": 8192}
    data = finite_numbers(run_kvplan("estimate", write(tmp_path, mistral), "--format", "json").stdout)
    assert any("sliding_window (65,536) exceeds max_position_embeddings (8,192)" in r for r in data["model"]["rules"])


def test_accepted_configs_print_integer_bytes(tmp_path):
    """An integral float (1024.0) is accepted as the integer it is: byte counts stay integers."""
    result = run_kvplan("estimate", write(tmp_path, {**LLAMA3_8B, "head_dim": 128.0, "num_hidden_layers": 32.0}),
                        "--format", "json")
    plan = finite_numbers(result.stdout)["plans"][0]
    assert plan["kv_bytes_per_token"] == 32 * 2 * 8 * 128 * 2 and isinstance(plan["kv_bytes_per_token"], int)


# ---- files: bounded reads, regular files only ------------------------------------------------------------------

def shard(header: bytes, declared: int | None = None) -> bytes:
    return struct.pack("<Q", len(header) if declared is None else declared) + header


@pytest.mark.parametrize("content, why", [
    (shard(b"{}", 2**40), "declares a 1,099,511,627,776-byte header"),
    (b"\x01\x02", "shorter than a safetensors header"),
    (shard(b"not json"), "is not valid JSON"),
    (shard(json.dumps({"w": {"dtype": "BF16", "shape": [-1, 2**70]}}).encode()), "malformed entry for tensor 'w'"),
    (shard(json.dumps({"w": {"dtype": {"x": 1}, "shape": [2]}}).encode()), "malformed entry for tensor 'w'"),
])
def test_malformed_safetensors_headers_fall_back_to_the_estimate(tmp_path, content, why):
    folder = write(tmp_path, LLAMA3_8B)
    (folder / "model.safetensors").write_bytes(content)
    started = time.monotonic()
    data = finite_numbers(run_kvplan("estimate", folder, "--format", "json").stdout)
    assert time.monotonic() - started < 5
    assert data["model"]["weights_source"] == "estimated from config"
    assert any(why in rule for rule in data["model"]["rules"]), data["model"]["rules"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifos_are_refused_not_waited_on(tmp_path):
    folder = write(tmp_path, LLAMA3_8B)
    os.mkfifo(folder / "model-00001-of-00002.safetensors")
    data = finite_numbers(run_kvplan("estimate", folder, "--format", "json").stdout)
    assert any("is not a regular file" in rule for rule in data["model"]["rules"])
    fifo = tmp_path / "fifo"
    fifo.mkdir()
    os.mkfifo(fifo / "config.json")
    one_line(run_kvplan("estimate", fifo), "is not a regular file")
    os.mkfifo(tmp_path / "deploy.yaml")
    one_line(run_kvplan("check", "--file", tmp_path / "deploy.yaml"), "--file", "not a regular file")


def test_paths_that_cannot_be_looked_at(tmp_path):
    one_line(run_kvplan("estimate", "~nosuchuser-kvplan/x"), "names no known user's home folder")
    one_line(run_kvplan("estimate", "./" + "a" * 300 + "/config.json"), "cannot be looked up", "name too long")
    one_line(run_kvplan("estimate", "/dev/zero"), "not a regular file")


def test_folder_named_like_a_bundled_id_does_not_replace_it(tmp_path):
    shadow = tmp_path / "meta-llama" / "Llama-3.1-8B"
    shadow.mkdir(parents=True)
    (shadow / "config.json").write_text(json.dumps({**LLAMA3_8B, "num_hidden_layers": 2}))
    bundled = finite_numbers(run_kvplan("estimate", "meta-llama/Llama-3.1-8B", "--format", "json",
                                        cwd=tmp_path).stdout)
    assert bundled["model"]["num_hidden_layers"] == 32
    assert any("./meta-llama/Llama-3.1-8B exists here" in rule for rule in bundled["model"]["rules"])
    local = finite_numbers(run_kvplan("estimate", "./meta-llama/Llama-3.1-8B", "--format", "json",
                                      cwd=tmp_path).stdout)
    assert local["model"]["num_hidden_layers"] == 2


# ---- flags -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("args, needle", [
    (["--context", "9" * 400], "--context must be at most 1,099,511,627,776 tokens, got '999"),
    (["--context", "²"], "--context must be a whole number"),
    (["--context", "٣"], "--context must be a whole number"),
    (["--context", ",".join(["8"] * 65)], "--context takes at most 64 values"),
    (["--kv-budget", "1e400"], "--kv-budget must be at most 1 EiB (2**60 bytes), got '1e400'"),  # whole: bytes
    (["--kv-budget", "1e10000"], "--kv-budget '1e10000' is not a size"),  # an exponent past 4 digits
    (["--kv-budget", "9" * 400], "--kv-budget must be at most 1 EiB"),
    (["--kv-budget", "1" * 5000], "--kv-budget '1111"),
    (["--gpu-memory", "1e308GiB"], "--gpu-memory '1e308GiB' is not a size"),
    (["--gpu-memory", "9" * 300 + "GiB"], "--gpu-memory must be at most 1 EiB"),
    (["--gpu-util", "nan"], "--gpu-util must be a fraction in (0, 1]"),
    (["--tp", "99999999999999999999"], "--tp must be at most"),
    (["--block-size", "1048576"], "--block-size must be at most 65,536"),
    (["--revision", "../../x"], "--revision must be a branch or tag name"),
    (["--revision", "a/b"], "no other '/'"),
    (["--hub-timeout", "0"], "--hub-timeout must be a number of seconds in (0, 3600]"),
    (["--hub-timeout", "nan"], "--hub-timeout must be a number of seconds"),
    (["--context", "1,2,3,4,5,6,7,8", "--tp", "1,2,4,8,16,32,64", "--kv-dtype", "auto,fp8,bf16,fp16,fp32"],
     "the sweep asks for 280 plans"),
])
def test_hostile_flags_are_one_line(args, needle):
    one_line(run_kvplan("estimate", "meta-llama/Llama-3.1-8B", *args), needle)


def test_hub_timeout_environment_variable():
    one_line(run_kvplan("estimate", "acme/never-bundled", env={"KVPLAN_HUB_TIMEOUT": "soon"}),
             "KVPLAN_HUB_TIMEOUT must be a number of seconds")


def test_unknown_ids_suggest_a_bundled_one():
    line = one_line(run_kvplan("estimate", "meta-llama/Llama-3.1-8B-Instuct"), "HF_HUB_OFFLINE")
    assert "Did you mean meta-llama/Llama-3.1-8B-Instruct (bundled)?" in line
    assert "Did you mean" not in one_line(run_kvplan("estimate", "acme/zzzz-qqqq"))


# ---- the deployments file --------------------------------------------------------------------------------------

def check_file(tmp_path, text, *args, env=None):
    path = tmp_path / "deployments.yaml"
    path.write_text(text)
    return run_kvplan("check", "--file", path, *args, env=env)


def test_duplicate_deployments_key_cannot_bypass_the_gate(tmp_path):
    """The bypass from the issue: a null first `deployments:` and a failing entry under the second used to
    print '0 deployments, all pass' and exit 0."""
    text = ("deployments:\n"
            "deployments:\n"
            "  - name: chat\n    model: meta-llama/Llama-3.1-8B\n    tp: 3\n")
    one_line(check_file(tmp_path, text), "deployments.yaml:2:", "repeats key 'deployments' (first at line 1)")


@pytest.mark.parametrize("text, needle", [
    ("deployments:\n  - &b\n    name: a\n    model: meta-llama/Llama-3.1-8B\n    tp: 2\n  - <<: *b\n    name: b\n",
     ":6: merge keys (<<) are not supported"),
    ("<<: {deployments: []}\n", ":1: merge keys (<<) are not supported"),
    ("deployments:\n  - name: a\n    model: meta-llama/Llama-3.1-8B\n    tp: 010\n",
     ":4: deployment 'a' field 'tp' is written '010', which YAML 1.1 reads as an octal number"),
    ("deployments:\n  - name: a\n    model: meta-llama/Llama-3.1-8B\n    tp: 2\n    context: 2:16:32\n",
     ":5: deployment 'a' field 'context' is written '2:16:32', which YAML 1.1 reads as a base-60"),
    ("deployments:\n  - name: a\n    model: meta-llama/Llama-3.1-8B\n    tp: 0x8\n", "hexadecimal"),
    ("deployments:\n  - name: a\n    model: meta-llama/Llama-3.1-8B\n    tp: 2\n    revision: ../../etc\n",
     ":5: deployment 'a' field 'revision' must be a branch or tag name"),
    ("deployments:\n  - name: a\n    model: meta-llama/Llama-3.1-8B\n    tp: 2\n    gpu: " + "[" * 5000 + "]" * 5000,
     "nests deeper than 32 levels"),
    ("deployments:\n  ? [a, b]\n  : 1\n", ":2: a key must be a plain name"),
])
def test_yaml_traps_are_refused_with_their_line(tmp_path, text, needle):
    one_line(check_file(tmp_path, text), needle)


def test_billion_laughs_in_a_field_is_fast(tmp_path):
    """Nine levels of nine aliases: 9**9 strings if expanded, which error messages used to print."""
    levels = ['&a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    levels += [f"&a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    text = ("deployments:\n  - name: a\n    model: meta-llama/Llama-3.1-8B\n    tp: 2\n"
            "    gpu: [" + ", ".join(levels) + "]\n")
    started = time.monotonic()
    one_line(check_file(tmp_path, text), ":5: the file expands to more than 20,000 values")
    assert time.monotonic() - started < 5


def test_lines_come_from_the_same_parse_as_values(tmp_path):
    text = ("# comment\n\ndeployments:\n  - name: ok\n    model: meta-llama/Llama-3.1-8B\n    tp: 8\n"
            "  - name: bad\n\n    model: meta-llama/Llama-3.1-8B\n    tp: 3\n")
    result = check_file(tmp_path, text, "--format", "json", env={"GITHUB_ACTIONS": "true"})
    assert result.returncode == 1
    bad = [r for r in json.loads(result.stdout)["results"] if r["name"] == "bad"][0]
    assert bad["line"] == 7 and bad["findings"][0]["line"] == 10
    assert "::error file=" in result.stderr and ",line=10::" in result.stderr


@pytest.mark.parametrize("fmt", ["csv", "table", "json", "yaml"])
def test_no_output_line_is_a_github_workflow_command(tmp_path, fmt):
    # a name with a line break in it (a\n::warning::b, \u2028::notice::y) is refused: tests/test_fuzz_s59.py
    names = ['"::error::pwned"', '" ::warning::b"', "'##[error]x'", '"x ::notice::y"']
    entries = "".join(f"  - name: {name}\n    model: meta-llama/Llama-3.1-8B\n    tp: {2 + i % 2}\n"
                      for i, name in enumerate(names))
    result = check_file(tmp_path, "deployments:\n" + entries, "--format", fmt, env={"GITHUB_ACTIONS": "true"})
    assert result.returncode == 1, result.stderr
    for line in result.stdout.splitlines():
        assert not line.lstrip().startswith("::") and "##[" not in line, line
    for line in result.stderr.splitlines():  # only kvplan's own annotations, one per finding
        assert line.startswith(("::error file=", "::warning file=")) and "##[" not in line.split("::", 2)[1], line
    if fmt == "json":
        assert [r["name"] for r in json.loads(result.stdout)["results"]] == \
            ["::error::pwned", " ::warning::b", "##[error]x", "x ::notice::y"]
    if fmt == "yaml":
        import yaml
        assert yaml.safe_load(result.stdout)["results"][2]["name"] == "##[error]x"


# ---- exits: crashes, interrupts, outputs that cannot be written -------------------------------------------------

def test_a_crash_exits_3_in_one_line(monkeypatch):
    import kvplan.plan.plan as plan_module

    def broken(*args, **kwargs):
        return 1 // 0

    monkeypatch.setattr(plan_module, "capacity", broken)
    line = one_line(run_kvplan("estimate", "meta-llama/Llama-3.1-8B"), code=3)
    assert line.startswith("kvplan: internal error (exit 3): ZeroDivisionError") and "plan/plan.py" in line


@pytest.mark.parametrize("field, value, why", [
    ("kv_bytes_per_token", math.nan, "[0].kv_bytes_per_token is nan"),
    ("max_concurrency", math.inf, "[0].max_concurrency is inf"),
    ("kv_bytes_per_sequence_per_gpu", 1.5, "[0].kv_bytes_per_sequence_per_gpu counts something but is 1.5"),
])
@pytest.mark.parametrize("fmt", ["json", "yaml", "csv"])
def test_a_number_not_finite_or_not_its_type_never_reaches_the_output(monkeypatch, field, value, why, fmt):
    """The renderer's guard: were a bug to produce NaN, Infinity or a fractional byte count, nothing is written
    and the run ends as a crash (exit 3), not as a JSON file a strict reader rejects."""
    from kvplan.commands.estimate import EstimateResult

    rows = EstimateResult.rows
    monkeypatch.setattr(EstimateResult, "rows", lambda self: [{**rows(self)[0], field: value}])
    result = run_kvplan("estimate", "meta-llama/Llama-3.1-8B", "--format", fmt)
    one_line(result, "internal error (exit 3): OutputInvariantError", why, code=3)
    assert result.stdout == ""


def test_interrupt_in_process_is_one_line_130(monkeypatch):
    import kvplan.commands.estimate as estimate

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(estimate, "resolve", interrupted)
    assert one_line(run_kvplan("estimate", "meta-llama/Llama-3.1-8B"), code=130) == "kvplan: interrupted."


class FullDisk(io.StringIO):
    def write(self, text):
        raise OSError(errno.ENOSPC, "No space left on device")


def test_full_disk_and_closed_stdout_are_one_line(monkeypatch):
    from kvplan.cli import main

    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setattr(sys, "stdout", FullDisk())
    monkeypatch.setattr("kvplan.cli.app._drop_stdout", lambda: None)
    assert main(["models"]) == 2
    assert err.getvalue() == "kvplan: error: cannot write the output to stdout: No space left on device.\n"
    err.truncate(0), err.seek(0)
    monkeypatch.setattr(sys, "stdout", None)
    assert main(["models"]) == 2
    assert err.getvalue() == "kvplan: error: cannot write the output: stdout is closed.\n"


def test_bounded_work_on_the_largest_accepted_model(tmp_path):
    """1,024 layers (the ceiling) and the largest sweep of plans that do not fit (each searches TP degrees and
    context lengths, runs the engine model over every layer, prices decode and every prefill chunk) stays well
    inside the 5 s the issue allows; a larger sweep of such a model is refused in one line."""
    folder = write(tmp_path, {**GEMMA2_9B, "num_hidden_layers": 1024, "max_position_embeddings": 2**40})
    started = time.monotonic()
    result = run_kvplan("estimate", folder, "--context", "1K,64K,4M,16M", "--tp", "1,3", "--format", "json",
                        "--max-num-batched-tokens", "1M")
    assert result.returncode == 0, result.stderr
    assert len(finite_numbers(result.stdout)["plans"]) == 8
    assert time.monotonic() - started < 5
    one_line(run_kvplan("estimate", folder, "--context", "1K,2K,4K", "--tp", "1,2,4"),
             "the sweep asks for 9 plans of a 1,024-layer model; at most 8,192 plans x layers per run (8 plans")


def test_prefill_chunks_are_bounded():
    """Time to first token prices every chunk of the prompt: a run that would price more than 32,768 says so."""
    one_line(run_kvplan("estimate", "meta-llama/Llama-3.1-8B", "--context", str(2**40)),
             "--max-num-batched-tokens (vLLM's default here, 8,192) splits the prompts of this run into 134,217,728 "
             "prefill chunks")
    one_line(run_kvplan("estimate", "meta-llama/Llama-3.1-8B", "--context", "131072", "--max-num-batched-tokens",
                        "1"), "into 131,071 prefill chunks")  # the default prompt: one token short (0.17+)
