"""Property tests over configs, flags and deployment files (hypothesis; a fixed seed when CI is set, a few
seconds in all). Whatever the input: exit 0 or 2 (1 for a failed check), one stderr line for 2, no traceback,
and every number printed finite and of its declared type. benchmarks/fuzz_campaign.py runs the same checks
on tens of thousands of inputs, offline."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hub_configs
from conftest import load_yaml, run_kvplan
from kvplan.commands.estimate import EstimateResult
from kvplan.errors import KvplanError
from kvplan.model import parse_config
from kvplan.model.sources import bundled_files
from kvplan.plan.budget import fixed_budget
from kvplan.plan.plan import plan
from kvplan.render import emit

CI = bool(os.environ.get("CI"))
FAST = dict(deadline=None, derandomize=CI, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                      HealthCheck.too_slow])

BASES = [load_yaml(p.read_text())["config"] for p in bundled_files()] + \
    [v for k, v in vars(hub_configs).items() if k.isupper() and isinstance(v, dict)]
RULE_KEYS = sorted({key for base in BASES for key in base if key not in ("architectures", "vision_config")})
BUNDLED_IDS = [load_yaml(p.read_text())["id"] for p in bundled_files()]

evil = st.one_of(
    st.integers(-2**70, 2**70), st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.none(),
    st.text(max_size=6), st.lists(st.integers(-2, 3), max_size=4), st.just({"a": 1}),
    st.sampled_from([10**44, 2**63, 0.5, 1e308, -14336, 1024.0, 0, -1, "bfloat16", "float8", "full_attention"]),
)
mild = st.sampled_from([1, 2, 3, 7, 8, 64, 128, 1000, 1024, 4096, 65536])


@st.composite
def configs(draw):
    config = json.loads(json.dumps(draw(st.sampled_from(BASES))))
    target = config["text_config"] if isinstance(config.get("text_config"), dict) else config
    for key in draw(st.lists(st.sampled_from(RULE_KEYS), min_size=1, max_size=4)):
        action = draw(st.sampled_from(["evil", "mild", "drop"]))
        if action == "drop":
            target.pop(key, None)
        else:
            target[key] = draw(evil if action == "evil" else mild)
    return config


def no_nonsense(data) -> None:
    """Finite numbers (already a strict JSON parse), no negative number outside the budget fields, and a plan
    that fits holds at least one sequence."""
    stack = [(None, data)]
    while stack:
        key, value = stack.pop()
        if isinstance(value, dict):
            if value.get("fits") is True and "max_concurrency" in value:  # a plan (decode points say fits too)
                assert value["max_concurrency"] >= 1, value
            stack.extend(value.items())
        elif isinstance(value, list):
            stack.extend((key, v) for v in value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and \
                not any(word in str(key) for word in ("budget", "available")):  # weights past the GPU: negative
            assert value >= 0, (key, value)


def strict_json(text: str):
    def refuse(name):
        raise AssertionError(f"{name} in JSON output")
    return json.loads(text, parse_constant=refuse)


def one_line_or_ok(result, codes=(0, 2)) -> None:
    assert result.returncode in codes, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    if result.returncode == 2:  # one line, and under GitHub Actions at most its ::error annotation (a file's line)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("::error file=")), result.stderr
        assert result.stdout == ""


@settings(max_examples=150, **FAST)
@given(configs())
def test_random_configs_plan_and_render_only_sane_numbers(raw):
    """The planning core on mutated real configs: a one-line KvplanError, or plans whose JSON is strict,
    finite, integer where it counts and never negative outside the budget (emit's own guard raises on
    anything else)."""
    try:
        spec = parse_config(raw, "fuzz")
        plans = [plan(spec, context=c, kv_dtype=d, tp=tp, budget_for=fixed_budget(2**34),
                      bandwidth=3e12) for c, d, tp in ((100, "auto", 1), (32768, "fp8", 2), (2**40, "auto", 8))]
    except KvplanError as exc:
        assert str(exc).strip() and "\n" not in str(exc)
        return
    no_nonsense(strict_json(emit(EstimateResult(spec, plans), "json")))


@settings(max_examples=25, **FAST)
@given(raw=configs(), flags=st.sampled_from([[], ["--tp", "1,2,8"], ["--context", "4096,1000000"],
                                             ["--kv-budget", "1GiB"], ["--kv-dtype", "auto,fp8"]]))
def test_random_configs_through_the_cli(write_config, raw, flags):
    result = run_kvplan("estimate", write_config(raw), "--format", "json", *flags)
    one_line_or_ok(result)
    if result.returncode == 0:
        no_nonsense(strict_json(result.stdout))


flag_values = {
    "--context": st.one_of(st.sampled_from(["8192", "32k", "9" * 400, "²", "٣", "0", "-1", "1,,2", "1e400"]),
                           st.text(max_size=6)),
    "--kv-budget": st.sampled_from(["10GiB", "1e400", "1e308GiB", "nan", "-5", "0x10", "²", "1" * 500, "0.5"]),
    "--gpu-memory": st.sampled_from(["80GB", "1e308GiB", "0", "nan", "79.2GiB", "9" * 400]),
    "--gpu-util": st.sampled_from(["0.9", "nan", "inf", "-0.1", "1e-300", "2", "abc"]),
    "--tp": st.sampled_from(["1", "0", "3", "1,2,4,8", "9" * 30, "²", "64"]),
    "--block-size": st.sampled_from(["16", "0", "3", "1048576", "-16", "1e3"]),
    "--revision": st.sampled_from(["main", "../x", "a/b", "x" * 300, "refs/pr/1"]),
    "--hub-timeout": st.sampled_from(["0", "nan", "5", "-1", "1e9"]),
    "--kv-dtype": st.sampled_from(["auto", "fp8", "fp7", "auto,fp8", "", "int4"]),
    "--gpu": st.sampled_from(["H100", "H900", "", "x" * 300, "##[error]x"]),
    "--format": st.sampled_from(["json", "csv", "yaml", "table", "xml"]),
}


@settings(max_examples=40, **FAST)
@given(model=st.sampled_from(BUNDLED_IDS + ["nobody/nothing", "~nosuchuser/x", "a" * 300, "/dev/zero", ""]),
       flags=st.dictionaries(st.sampled_from(sorted(flag_values)), st.none(), max_size=4), data=st.data())
def test_random_flags(model, flags, data):
    args = [a for option in flags for a in (option, data.draw(flag_values[option]))]
    result = run_kvplan("estimate", model, *args)
    one_line_or_ok(result)
    for line in result.stdout.splitlines():
        assert not line.lstrip().startswith("::") and "##[" not in line


yaml_scalars = st.sampled_from(["2", "8", "010", "0x8", "2:16:32", "1_000", ".nan", ".inf", "-1", "'8'", "yes",
                                "null", "[1, 2]", "{a: 1}", "1e400", "32k", "10GiB", "fp8", "H100", "main",
                                "../x", '"::error::x"', "'##[error]'", "!!python/name:os.system", "*nope"])
entry_keys = st.sampled_from(["name", "model", "tp", "pp", "gpu", "gpu_util", "kv_budget", "context", "kv_dtype",
                              "min_concurrency", "revision", "tpp", "<<"])


@st.composite
def deployment_files(draw):
    lines = ["deployments:"]
    for index in range(draw(st.integers(0, 3))):
        lines += [f"  - name: d{index}", f"    model: {draw(st.sampled_from(BUNDLED_IDS))}", "    tp: 2"]
        for key in draw(st.lists(entry_keys, max_size=3)):
            lines.append(f"    {key}: {draw(yaml_scalars)}")
    text = "\n".join(lines) + "\n"
    if draw(st.booleans()):
        text = draw(st.sampled_from(["deployments:\n", "deployments: &d\n", "x: 1\n", "<<: {a: 1}\n", "---\n"])) + text
    return text


@settings(max_examples=30, **FAST)
@given(text=deployment_files(), fmt=st.sampled_from(["table", "json", "csv", "yaml"]))
def test_random_deployment_files(tmp_path, text, fmt):
    path = tmp_path / "deployments.yaml"
    path.write_text(text)
    result = run_kvplan("check", "--file", path, "--format", fmt, env={"GITHUB_ACTIONS": "true"})
    one_line_or_ok(result, codes=(0, 1, 2))
    if result.returncode in (0, 1) and fmt == "json":
        strict_json(result.stdout)
    for line in result.stdout.splitlines():
        assert not line.lstrip().startswith("::") and "##[" not in line


@pytest.mark.parametrize("text", [
    "deployments:\ndeployments:\n  - name: chat\n    model: meta-llama/Llama-3.1-8B\n    tp: 3\n",
])
def test_duplicate_deployments_bypass_fails_closed(tmp_path, text):
    """The issue's bypass (also in test_robust.py with its message): exit 2, never '0 deployments, all pass'."""
    path = tmp_path / "deployments.yaml"
    path.write_text(text)
    result = run_kvplan("check", "--file", path)
    assert result.returncode == 2 and "all pass" not in result.stdout
