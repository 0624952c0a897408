"""What the suite's speed-ups must not change (session 59): the click command built once per process carries nothing
from one call to the next (option defaults, COLUMNS, environment variables); conftest.run_hub leaves the Hub client
as this process had it; the caches of make_figures.py's configs and of the bundled specs hand out copies and notice
a rewritten file.

Numbers by hand: Llama-3.1-8B (model_specs/meta-llama--Llama-3.1-8B.yaml: 32 layers, 8 KV heads, head_dim 4096 / 32 =
128, bf16, max_position_embeddings 131,072) holds 32 x 2 (K and V) x 8 x 128 x 2 B = 131,072 bytes of KV a token;
its fp8 cache half that, 65,536; at tp 2 each GPU holds 4 of the 8 KV heads."""

import ast
import json
import os

import pytest

from conftest import ROOT, environment, run_hub, run_kvplan
from fake_hub import hub_env

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"


def _plan(*args, env=None) -> dict:
    r = run_kvplan("estimate", LLAMA, "--gpu", "h100", *args, "--format", "json", env=env)
    assert r.returncode == 0, r.stderr
    (plan,) = json.loads(r.stdout)["plans"]
    return plan


# ---- the command built once ----------------------------------------------------------------------------------------

def test_the_click_command_is_built_once(monkeypatch):
    import typer.main

    from kvplan.cli.app import click_command

    assert click_command() is click_command()
    click_command()  # built now, if no test before did

    def rebuilt(*args):
        raise AssertionError("typer built the command again")

    monkeypatch.setattr(typer.main, "get_command", rebuilt)
    assert _plan("-c", "8192")["kv_bytes_per_token"] == 131_072


def test_no_option_keeps_a_value_from_the_call_before():
    asked = _plan("-c", "8192", "--kv-cache-dtype", "fp8", "-tp", "2", "--block-size", "32")
    assert (asked["context"], asked["kv_bytes_per_token"], asked["tp"], asked["block_size"]) == (8192, 65_536, 2, 32)
    assert asked["kv_heads_per_gpu"] == 4
    default = _plan()
    assert (default["context"], default["kv_dtype"], default["kv_bytes_per_token"]) == (131_072, "bf16", 131_072)
    assert (default["tp"], default["kv_heads_per_gpu"], default["block_size"]) == (1, 8, 16)


def test_a_list_option_starts_empty_each_call():
    """A repeated or comma option (here --max-model-len's sweep) is parsed afresh, not appended to the last call's."""
    r = run_kvplan("estimate", LLAMA, "--gpu", "h100", "-c", "8K,32K", "--format", "json")
    assert [p["context"] for p in json.loads(r.stdout)["plans"]] == [8192, 32768]
    r = run_kvplan("estimate", LLAMA, "--gpu", "h100", "-c", "16K", "--format", "json")
    assert [p["context"] for p in json.loads(r.stdout)["plans"]] == [16384]


def test_help_and_tables_follow_each_calls_columns():
    narrow = run_kvplan("estimate", "--help", env={"COLUMNS": "80"}).stdout
    wide = run_kvplan("estimate", "--help", env={"COLUMNS": "150"}).stdout
    assert max(map(len, narrow.splitlines())) <= 80 < max(map(len, wide.splitlines())) <= 150
    assert run_kvplan("estimate", "--help", env={"COLUMNS": "80"}).stdout == narrow
    table = run_kvplan("estimate", LLAMA, "--gpu", "h100", env={"COLUMNS": "80"}).stdout
    assert max(map(len, table.splitlines())) <= 80


def test_an_environment_variable_is_read_at_each_call():
    """KVPLAN_HUB_TIMEOUT is read when a command runs (model/hub.py hub_timeout_seconds): a bad value set for one
    call is refused there and gone at the next."""
    bad = run_kvplan("estimate", "acme/not-bundled", env={"KVPLAN_HUB_TIMEOUT": "soon"})
    assert bad.returncode == 2 and "KVPLAN_HUB_TIMEOUT must be a number of seconds" in bad.stderr, bad.stderr
    assert "KVPLAN_HUB_TIMEOUT" not in os.environ
    offline = run_kvplan("estimate", "acme/not-bundled")
    assert offline.returncode == 2 and "KVPLAN_HUB_TIMEOUT" not in offline.stderr, offline.stderr


def test_kvplan_traceback_still_lets_the_crash_through(monkeypatch):
    """KVPLAN_TRACEBACK=1 runs typer's own app (its traceback printer); without it, exit 3 in one line."""
    import kvplan.plan.plan as plan_module
    from kvplan.cli import main

    def broken(*args, **kwargs):
        return 1 // 0

    monkeypatch.setattr(plan_module, "capacity", broken)
    assert run_kvplan("estimate", "meta-llama/Llama-3.1-8B").returncode == 3
    with environment({"KVPLAN_TRACEBACK": "1", "HF_HUB_OFFLINE": "1"}), pytest.raises(ZeroDivisionError):
        main(["estimate", "meta-llama/Llama-3.1-8B", "--format", "json"])


# ---- the Hub client in this process ------------------------------------------------------------------------------

def test_run_hub_leaves_the_client_as_it_found_it(tmp_path):
    from huggingface_hub import constants, hf_api

    before = (constants.ENDPOINT, constants.HF_HUB_CACHE, constants.HF_HUB_OFFLINE, hf_api.api.endpoint)
    environ = dict(os.environ)
    r = run_hub("estimate", "acme/never-seen", env=hub_env(tmp_path, "http://127.0.0.1:9", offline=True))
    assert r.returncode == 2 and "HF_HUB_OFFLINE" in r.stderr, r.stderr
    assert (constants.ENDPOINT, constants.HF_HUB_CACHE, constants.HF_HUB_OFFLINE, hf_api.api.endpoint) == before
    assert dict(os.environ) == environ


def test_run_hub_points_the_client_at_the_tests_hub(tmp_path):
    from conftest import hub_client
    from huggingface_hub import constants, hf_api, hf_hub_url

    with hub_client(hub_env(tmp_path, "http://127.0.0.1:9")):
        assert hf_api.api.endpoint == constants.ENDPOINT == "http://127.0.0.1:9"
        assert hf_hub_url("acme/x", "config.json") == "http://127.0.0.1:9/acme/x/resolve/main/config.json"
        assert constants.HF_HUB_CACHE == str(tmp_path / "cache") and constants.HF_HUB_OFFLINE is False


# ---- the caches --------------------------------------------------------------------------------------------------

def test_script_config_parses_once_and_hands_out_copies():
    from conftest import vllm_reference

    module = vllm_reference()
    source = (ROOT / "benchmarks" / "vllm_reference" / "make_figures.py").read_text()
    node = next(n for n in ast.parse(source).body if isinstance(n, ast.Assign)
                and getattr(n.targets[0], "id", None) == "MAMBA2_780M")
    first = module.script_config("MAMBA2_780M")
    assert first == ast.literal_eval(node.value)
    first["num_hidden_layers"] = -1
    assert module.script_config("MAMBA2_780M") == ast.literal_eval(node.value)
    assert module._script_assignments() is module._script_assignments()


def test_a_bundled_spec_is_a_copy_and_read_again_once_rewritten(tmp_path):
    from kvplan.model.bundled import load_bundled

    path = tmp_path / "meta-llama--Llama-3.1-8B.yaml"
    path.write_text((ROOT / "model_specs" / path.name).read_text())
    entry, spec = load_bundled(path)
    assert spec.num_hidden_layers == 32 and entry["config"]["num_hidden_layers"] == 32
    entry["config"]["num_hidden_layers"] = 1
    again, same = load_bundled(path)
    assert again["config"]["num_hidden_layers"] == 32 and same is spec
    path.write_text(path.read_text().replace("num_hidden_layers: 32", "num_hidden_layers: 8"))
    assert load_bundled(path)[1].num_hidden_layers == 8


def test_a_warning_in_a_hub_run_reaches_its_stderr(tmp_path, monkeypatch):
    """A fresh interpreter prints a client's UserWarning on stderr, where the Hub tests' one-line checks see it;
    run_hub does the same (a DeprecationWarning stays hidden, as the default filters hide it)."""
    import warnings

    import kvplan.model.hub as hub

    offline = hub._offline

    def warning_offline():
        warnings.warn("the client says something", UserWarning)
        warnings.warn("old spelling", DeprecationWarning)
        return offline()

    monkeypatch.setattr(hub, "_offline", warning_offline)
    r = run_hub("estimate", "acme/never-seen", env=hub_env(tmp_path, offline=True))
    assert r.returncode == 2 and "UserWarning: the client says something" in r.stderr, r.stderr
    assert "old spelling" not in r.stderr and len(r.stderr.strip().splitlines()) > 1
