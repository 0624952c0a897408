"""Review of the graph term's named causes (session 80's EngineFlags.cudagraph_mode_why): the other places that say
why vLLM captures no CUDA graph say the same rule.

- estimate's speed note named "the compilation config" whatever rule decided (-O0 is --optimization-level from 0.12,
  a pooling model's downgrade is the pooler config's): it now names the graph term's cause, word for word.
- check's notices wrote --enforce-eager as the deployment's key (enforce_eager) but the new causes' flags
  (--compilation-config, --optimization-level) as the command line writes them: a deployments file names its keys.
- verify's --compilation-config / -O help said only "cudagraph_mode NONE (-O0)" captures no decode graph, "the other
  modes" changing the graph term alone, where PIECEWISE with splitting_ops [] or stock torch.compile (mode 1) also
  leave none (vllm_splitting_ops.py, vllm_stock_compile.py; compilation.py 0.34.0:1374-1399, config/vllm.py
  0.34.0:3439-3455).

The causes' words are those test_graph_reason_s80 fixes for the graph term (one deciding rule each).
"""

from __future__ import annotations

import json

import pytest
from conftest import deployments_file, run_kvplan

QWEN3 = "Qwen/Qwen3-8B"
LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
H100 = ("--gpu", "H100", "--max-model-len", "8192")
TAIL = "the decode and prefill times assume CUDA graphs"


def _text(*args) -> str:
    r = run_kvplan("estimate", *args, env={"COLUMNS": "400"})
    assert r.returncode == 0, r.stderr
    return " ".join(r.stdout.split())


@pytest.mark.parametrize("release, args, cause", [
    ("0.34.0", ("-cc", '{"mode": 1}'), "stock torch.compile (--compilation-config mode 1)"),
    ("0.34.0", ("-cc", '{"cudagraph_mode": "PIECEWISE", "splitting_ops": []}'),
     "PIECEWISE with splitting_ops [] (--compilation-config)"),
    ("0.34.0", ("--runner", "pooling", "-cc", '{"splitting_ops": []}'),
     "the pooler config's PIECEWISE downgrade, then splitting_ops [] (--compilation-config)"),
    ("0.34.0", ("-O", "0"), "cudagraph_mode NONE (--compilation-config, -O0)"),
    ("0.24.0", ("-cc", '{"mode": 0}'), "cudagraph_mode FULL_AND_PIECEWISE below VLLM_COMPILE (--compilation-config "
                                       "mode 0)"),
])
def test_speed_note_names_the_graph_terms_cause(release, args, cause):
    text = _text(QWEN3, "--engine", f"vllm=={release}", *H100, *args)
    # the budget line and the speed note name one rule
    assert f"no CUDA-graph reserve: {cause} captures no graphs" in text
    assert f"No CUDA graphs: {cause} captures none, and {TAIL}" in text
    assert "the compilation config)" not in text


def test_speed_note_of_use_cudagraph_false_before_0_20():
    # 0.10.1: the graphs are captured after the cache is sized, so only the words say so
    text = _text(LLAMA, "--gpu", "H100", "--engine", "vllm==0.10.1", "-O", '{"use_cudagraph": false}')
    assert f"No CUDA graphs: use_cudagraph false (--compilation-config) captures none, and {TAIL}" in text


@pytest.mark.parametrize("release", ["0.34.0", "0.25.0", "0.10.1"])
def test_enforce_eager_keeps_its_note(release):
    text = _text(QWEN3, "--engine", f"vllm=={release}", *H100, "--enforce-eager")
    assert f"--enforce-eager: {TAIL}" in text and "No CUDA graphs" not in text


def test_graphs_kept_say_nothing():
    assert "No CUDA graphs" not in _text(QWEN3, "--engine", "vllm==0.34.0", *H100, "-cc", '{"splitting_ops": []}')


def test_check_notice_spells_the_deployments_keys(tmp_path):
    body = ""
    for name, key in (("stock", "compilation_config: '{\"mode\": 1}'"),
                      ("below", "optimization_level: 0\n    compilation_config: '{\"cudagraph_mode\": \"PIECEWISE\"}'"),
                      ("eager", "enforce_eager: true")):
        body += (f"  - name: {name}\n    model: {QWEN3}\n    tp: 1\n    gpu: H100\n    context: 8192\n"
                 f"    engine: vllm==0.34.0\n    {key}\n")
    r = run_kvplan("check", "--file", deployments_file(tmp_path, body), "--format", "json")
    assert r.returncode == 0, r.stderr
    said = {row["name"]: [f["message"] for f in row["findings"] if "CUDA-graph" in f["message"]]
            for row in json.loads(r.stdout)["results"]}
    assert said == {
        "stock": ["no CUDA-graph reserve: stock torch.compile (compilation_config mode 1) captures no graphs."],
        "below": ["no CUDA-graph reserve: cudagraph_mode PIECEWISE below VLLM_COMPILE (optimization_level 0) "
                  "captures no graphs."],
        "eager": ["no CUDA-graph reserve: enforce_eager captures no graphs."]}


def test_check_command_line_keeps_the_flags():
    r = run_kvplan("check", QWEN3, "-tp", "1", "--gpu", "H100", "-c", "8192", "--engine", "vllm==0.34.0",
                   "-cc", '{"mode": 1}', "--format", "json")
    assert r.returncode == 0, r.stderr
    (row,) = json.loads(r.stdout)["results"]
    assert "no CUDA-graph reserve: stock torch.compile (--compilation-config mode 1) captures no graphs." in \
        [f["message"] for f in row["findings"]]


def test_verify_help_names_the_rules_that_leave_no_graph():
    from kvplan.cli.flags import VERIFY_COMPILATION

    for rule in ("below VLLM_COMPILE", "splitting_ops [] with PIECEWISE", "PIECEWISE downgrade",
                 "stock torch.compile", "use_cudagraph false", "-O0"):
        assert rule in VERIFY_COMPILATION, rule
    r = run_kvplan("verify", "--help", env={"COLUMNS": "400"})
    assert "splitting_ops [] with PIECEWISE" in " ".join(r.stdout.replace("│", " ").split())
