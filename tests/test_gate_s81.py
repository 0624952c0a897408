"""`kvplan check` as a platform engineer first wires it into CI (session 81): the docs' commands and files run as
shown, the pre-commit hook checks only kvplan's files, and every failure says what would fix it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import deployments_file, one_error_line, run_kvplan

ROOT = Path(__file__).resolve().parents[1]


def _result(*args) -> tuple:
    run = run_kvplan("check", *args, "--format", "json")
    assert run.returncode in (0, 1), run.stderr
    return run.returncode, json.loads(run.stdout)["results"]


def test_file_help_names_every_key_an_entry_takes():
    """--file's help lists the keys an entry takes; `pcp` (vLLM's --prefill-context-parallel-size, a valid key since
    session 73) was missing from it, so `kvplan check -h` sent a user to an incomplete list."""
    from kvplan.cli.app import click_command
    from kvplan.commands.deployments import VALID_KEYS

    (files,) = [p for p in click_command().commands["check"].params if p.name == "files"]
    missing = [key for key in VALID_KEYS if not re.search(rf"\b{key}\b", files.help)]
    assert missing == []


def _hook_files() -> "re.Pattern":
    import yaml

    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "kvplan-check" and hook["entry"] == "kvplan check --file"
    return re.compile(hook["files"])  # pre-commit matches it with Python's re.search on the repo-relative path


@pytest.mark.parametrize("path", ["deployments.yaml", "deploy/deployments.yaml", "deploy.yaml", "deploy.yml",
                                  "serving/deployments-prod.yaml", "deploy_staging.yml", "deployments.gpu.yaml"])
def test_the_hook_checks_kvplans_files(path):
    assert _hook_files().search(path)


@pytest.mark.parametrize("path", ["chart/templates/deployment.yaml", "k8s/deployment.yml", "deployment.yaml",
                                  "k8s/deployment-vllm.yaml", "deploy/values.yaml", "deployments.yaml.bak"])
def test_the_hook_leaves_kubernetes_manifests_alone(path):
    """A Kubernetes Deployment manifest is deployment.yaml (`helm create` writes templates/deployment.yaml): the hook's
    deploy*.yaml pattern ran `kvplan check --file` on it, which refuses it (exit 2, "unknown key 'apiVersion'"), so
    the documented hook failed every commit of a repository with a Helm chart."""
    assert not _hook_files().search(path)


def test_a_kubernetes_manifest_is_not_a_deployments_file(tmp_path):
    """What the hook ran on such a file: bad input, which no kvplan file in the hook's pattern is for this reason."""
    path = tmp_path / "deployment.yaml"
    path.write_text("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: vllm\n")
    assert "unknown key 'apiVersion'" in one_error_line(run_kvplan("check", "--file", path))


@pytest.mark.parametrize("flag, near", [
    ("--foo 1", None),  # was: did you mean --format?
    ("--formats json", None),
    ("--enginee vllm", None),  # was: --engine, kvplan's own
    ("--kv-dtypes fp8", "--dtype or --kv-cache-dtype"),  # was: --kv-dtype or --dtype or --kv-cache-dtype
    ("--gpu-memry-utilization 0.9", "--gpu-memory-utilization"),  # was: ... or --gpu-memory or --gpu-util
    ("--tensor-paralel-size 2", "--tensor-parallel-size or --data-parallel-size or --pipeline-parallel-size"),
])
def test_a_serve_commands_unknown_flag_is_offered_only_vllms_near_flags(tmp_path, flag, near):
    """An unknown flag in `serve:` was offered kvplan's near flags, which the same command then refuses ("holds
    --format, a flag of kvplan check's run"; "--kv-dtype, kvplan's name for vLLM's --kv-cache-dtype"): only the
    flags `vllm serve` takes are offered."""
    path = deployments_file(tmp_path, f"  - name: x\n    serve: vllm serve Qwen/Qwen3-8B {flag}\n")
    line = one_error_line(run_kvplan("check", "--file", path))
    typed = flag.split()[0]
    head = f"kvplan: error: {path}:3: deployment 'x' field 'serve': kvplan check has no option {typed}; "
    assert line == head + (f"did you mean {near}?" if near else "`kvplan check -h` lists the options it takes.")


def test_the_command_line_still_offers_kvplans_own_flags():
    """On check's own command line --format is a flag: offered there as before."""
    line = one_error_line(run_kvplan("check", "Qwen/Qwen3-8B", "-tp", "1", "--formats", "json"))
    assert line == "kvplan: error: kvplan check has no option --formats; did you mean --format?"


def test_a_fixed_length_short_of_min_model_len_names_the_fix(tmp_path):
    """context 16K below min_model_len 32K: the error said "context 32768 holds 1", which reads as if 32K held a
    single request (Qwen3-8B at 32,768 on an H100 holds 12: estimate's "Maximum concurrency ... 12.21x"). It now
    says the fix in the words every other remedy uses: "would fit with context 32768"."""
    path = deployments_file(tmp_path, "  - name: short\n    model: Qwen/Qwen3-8B\n    tp: 1\n    gpu: H100\n"
                                      "    context: 16K\n    min_model_len: 32K\n")
    code, (row,) = _result("--file", path)
    assert code == 1 and row["errors"] == ["max_model_len 16384 < min_model_len 32768: context 16384 as set; "
                                           "would fit with context 32768."]


def test_a_tp_the_heads_refuse_names_the_tp_degrees_that_shard_them(tmp_path):
    """A sharding error said only the rule ("so tp must divide 28"): the gate's most common failure had no fix in the
    CI log. The last TP error now names the degrees within one node that shard the model. Qwen2.5-7B, 28 query and
    4 KV heads, up to 8 GPUs: 1, 2, 4 divide both (7 divides 28 but neither 4 nor 7 divides the other); Qwen3-8B,
    32 / 8 heads: 1, 2, 4, 8; with gpus_per_node 4: 1, 2, 4."""
    path = deployments_file(tmp_path, "  - name: qwen25\n    model: Qwen/Qwen2.5-7B\n    tp: 8\n"
                                      "  - name: qwen3\n    model: Qwen/Qwen3-8B\n    tp: 3\n"
                                      "  - name: small-node\n    model: Qwen/Qwen3-8B\n    tp: 6\n"
                                      "    gpus_per_node: 4\n"
                                      "  - name: fine\n    model: Qwen/Qwen3-8B\n    tp: 4\n")
    code, (qwen25, qwen3, small, fine) = _result("--file", path)
    assert code == 1 and fine["passed"] and fine["errors"] == []
    assert qwen25["errors"] == ["num_attention_heads (28) is not divisible by tp 8: vLLM splits query heads evenly, "
                                "so tp must divide 28; would shard with tp 1, 2 or 4 within one H100-80GB-SXM node."]
    first, last = qwen3["errors"]
    assert first == "num_attention_heads (32) is not divisible by tp 3: vLLM splits query heads evenly, so tp must " \
                    "divide 32."
    assert last.endswith("the KV heads to divide tp; would shard with tp 1, 2, 4 or 8 within one H100-80GB-SXM node.")
    assert small["errors"][-1].endswith("; would shard with tp 1, 2 or 4 within one node of gpus_per_node 4.")
    assert [f["key"] for f in qwen3["findings"] if f["level"] == "error"] == ["tp", "tp"]


def test_model_tp_names_them_as_flags():
    code, (row,) = _result("Qwen/Qwen2.5-7B", "-tp", "8")
    assert code == 1 and row["errors"][0].endswith("; would shard with --tensor-parallel-size 1, 2 or 4 within one "
                                                   "H100-80GB-SXM node.")


def test_standard_input_is_said_as_not_read(tmp_path):
    """`--file -` (the usual spelling of standard input) said "--file - does not exist": the file is read by its path
    only, and the sentence now says so."""
    line = one_error_line(run_kvplan("check", "--file", "-"))
    assert line == ("kvplan: error: --file - is standard input, which kvplan check does not read; give the "
                    "deployments file's path.")


@pytest.mark.parametrize("written, means", [("yes", "true"), ("on", "true"), ("No", "false"), ("OFF", "false")])
def test_a_yaml_1_1_boolean_is_refused_as_its_numbers_are(tmp_path, written, means):
    """`enforce_eager: no` was read as false (PyYAML's YAML 1.1), while a YAML 1.2 reader (Go's yaml.v3, a deploy
    script) reads the text "no", which a script that tests it for truth takes as on: the file is read strictly so
    that what kvplan checks is what any YAML reader sees, as 010 and 1_000 are refused in number fields."""
    path = deployments_file(tmp_path, f"  - name: x\n    model: Qwen/Qwen3-8B\n    tp: 1\n"
                                      f"    enforce_eager: {written}\n")
    assert one_error_line(run_kvplan("check", "--file", path)) == (
        f"kvplan: error: {path}:5: deployment 'x' field 'enforce_eager' is written '{written}', which YAML 1.1 reads "
        f"as {means} and YAML 1.2 as text; write {means}.")


def test_yaml_1_2_booleans_and_text_that_looks_like_one_still_read(tmp_path):
    path = deployments_file(tmp_path, "  - name: yes\n    model: Qwen/Qwen3-8B\n    tp: 1\n    enforce_eager: True\n"
                                      "  - name: b\n    model: Qwen/Qwen3-8B\n    tp: 1\n    enforce_eager: FALSE\n")
    code, (first, second) = _result("--file", path)
    assert code == 0 and first["name"] == "yes" and second["name"] == "b"


def test_a_yaml_1_1_boolean_inside_a_mapping_is_refused_at_its_field(tmp_path):
    path = deployments_file(tmp_path, "  - name: x\n    model: Qwen/Qwen3-8B\n    tp: 1\n"
                                      "    compilation_config:\n      use_cudagraph: off\n")
    line = one_error_line(run_kvplan("check", "--file", path))
    assert line == (f"kvplan: error: {path}:5: deployment 'x' field 'compilation_config' has use_cudagraph: off at "
                    f"line 6, which YAML 1.1 reads as false and YAML 1.2 as text; write false, or quote it to mean "
                    f"the text.")


def test_a_yaml_1_1_boolean_in_a_field_that_takes_text_is_its_text(tmp_path):
    """In a field that takes no boolean, `yes` is read as YAML 1.2 reads it, the text, which the field's own check
    then says of (mm_encoder_tp_mode takes weights or data)."""
    path = deployments_file(tmp_path, "  - name: x\n    model: Qwen/Qwen3-8B\n    tp: 1\n    mm_encoder_tp_mode: yes\n")
    line = one_error_line(run_kvplan("check", "--file", path))
    assert "field 'mm_encoder_tp_mode'" in line and "'yes'" in line and "weights, data" in line


@pytest.mark.parametrize("value, said", [
    ("compilation_config:\n      mode: 3\n      use_cudagraph: off",
     "has use_cudagraph: off at line 7, which YAML 1.1 reads as false and YAML 1.2 as text; write false, or quote it "
     "to mean the text."),
    ("mm_processor_kwargs: {do_pan_and_scan: yes}",
     "has do_pan_and_scan: yes at line 5, which YAML 1.1 reads as true and YAML 1.2 as text; write true, or quote it "
     "to mean the text."),
    ("cudagraph_capture_sizes:\n      - 1\n      - on",
     "has 'on' at line 7, which YAML 1.1 reads as true and YAML 1.2 as text; write true, or quote it to mean the "
     "text.")])
def test_a_yaml_1_1_boolean_inside_a_field_is_named_with_its_key_and_line(tmp_path, value, said):
    """Inside a mapping or list the message said "field 'compilation_config' is written 'off'" at the field's line:
    the field holds a mapping, not 'off', and in a long compilation_config the user was not told which key or line
    held it (the file's other nested refusals, a repeated or merge key, say their line)."""
    path = deployments_file(tmp_path, f"  - name: x\n    model: Qwen/Qwen3-8B\n    tp: 1\n    {value}\n")
    assert one_error_line(run_kvplan("check", "--file", path)) == (
        f"kvplan: error: {path}:5: deployment 'x' field '{value.partition(':')[0]}' {said}")


def test_a_yaml_1_1_boolean_in_a_serve_list_is_told_to_be_quoted(tmp_path):
    """A `serve:` list holds text only (a boolean in it is refused as not text), so "write true" sent the user to
    another refusal; the fix is to quote it."""
    path = deployments_file(tmp_path, "  - name: x\n    serve: [vllm, serve, Qwen/Qwen3-8B, --model-impl, on]\n")
    assert one_error_line(run_kvplan("check", "--file", path)) == (
        f"kvplan: error: {path}:3: deployment 'x' field 'serve' has 'on' at line 3, which YAML 1.1 reads as true and "
        f"YAML 1.2 as text; quote it to mean the text.")


# ---- a bad input's place as a GitHub workflow annotation ------------------------------------------------------

def _github(*args, cwd, env=None):
    return run_kvplan(*args, cwd=cwd, env={"GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": "", **(env or {})})


def test_a_bad_input_at_a_files_line_is_annotated_under_github_actions(tmp_path):
    """check's violations were annotated on their line, but a bad input (exit 2) with a file and line only said it in
    the log: the pull request's diff showed nothing at the line at fault. Now it gets the same ::error command."""
    deployments_file(tmp_path, "  - name: x\n    model: Qwen/Qwen3-8B\n    tp: 1\n    enforce_eager: yes\n")
    run = _github("check", "--file", "deployments.yaml", cwd=tmp_path)
    said = ("deployment 'x' field 'enforce_eager' is written 'yes', which YAML 1.1 reads as true and YAML 1.2 as text; "
            "write true.")
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.splitlines() == [f"kvplan: error: deployments.yaml:5: {said}",
                                       f"::error file=deployments.yaml,line=5::{said}"]


def test_the_annotation_escapes_as_checks_violations_do(tmp_path):
    """GitHub's escaping: % in the message (data), and : , % in the file property; an absolute path inside the
    checkout is said relative to GITHUB_WORKSPACE, as check's violations' annotations say it."""
    path = tmp_path / "deploy,a:b%.yaml"
    path.write_text("deployments:\n  - name: 50%\n    model: Qwen/Qwen3-8B\n    tp: 1\n    tpp: 2\n")
    run = _github("check", "--file", path, cwd=tmp_path, env={"GITHUB_WORKSPACE": str(tmp_path)})
    assert run.returncode == 2
    error, annotation = run.stderr.splitlines()
    assert error.startswith(f"kvplan: error: {path}:5: deployment '50%' (entry 1) has unknown key 'tpp'")
    assert annotation.startswith("::error file=deploy%2Ca%3Ab%25.yaml,line=5::deployment '50%25' (entry 1) has "
                                 "unknown key 'tpp'")


def test_a_file_that_does_not_parse_is_annotated_at_its_line(tmp_path):
    deployments_file(tmp_path, "  - name: x\n    tp: [1\n")
    run = _github("check", "--file", "deployments.yaml", cwd=tmp_path)
    error, annotation = run.stderr.splitlines()
    assert error == ("kvplan: error: --file deployments.yaml is not valid YAML at line 4: did not find expected ',' "
                     "or ']'.")
    assert annotation == ("::error file=deployments.yaml,line=4::--file deployments.yaml is not valid YAML at line 4: "
                          "did not find expected ',' or ']'.")


@pytest.mark.parametrize("args", [("--file", "missing.yaml"), ("Qwen/Qwen3-8B", "-tp", "1", "--kv-dtype", "fp9")])
def test_a_bad_input_without_a_files_line_is_not_annotated(tmp_path, args):
    run = _github("check", *args, cwd=tmp_path)
    assert run.returncode == 2 and len(run.stderr.splitlines()) == 1 and "::error" not in run.stderr


def test_no_annotation_outside_github_actions(tmp_path):
    deployments_file(tmp_path, "  - name: x\n    model: Qwen/Qwen3-8B\n    tp: 1\n    enforce_eager: yes\n")
    run = run_kvplan("check", "--file", "deployments.yaml", cwd=tmp_path, env={"GITHUB_ACTIONS": ""})
    assert one_error_line(run).startswith("kvplan: error: deployments.yaml:5: ")
