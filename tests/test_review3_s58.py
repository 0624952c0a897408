"""Two defects the s58 third review found in the merged review fixes.

- check dropped the plan's "not modelled" line for a hybrid whose Mamba states vLLM keeps in "all" mode (estimate
  warned it): Nemotron-H on the pooling runner with LAST pooling at 0.15.0 has prefix caching on (config/model.py
  0.15.1:1640-1661) and its class supports Mamba prefix caching, so models/config.py 0.15.0:332-347 picks "all".
  Since s59 kvplan models "all" mode (test_mamba_all_mode_s59.py), so neither says it.
- a quoted number with spaces was refused for gpu_util and taken for cpu_offload_gb; the flags strip the text
  (--gpu-util ' 0.9 ' is 0.9), so both fields do.
"""

from __future__ import annotations

import json

import pytest
from conftest import deployments_file, run_kvplan

from kvplan.commands.deployments import load_deployments

NEMOTRON_H = "nvidia/Nemotron-H-8B-Base-8K"
LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
POOLED = ("--tp", "1", "-c", "8K", "--gpu", "h100", "--engine", "vllm==0.15.0", "--pooler-config",
          '{"pooling_type":"LAST"}', "--format", "json")


def _warnings(command: str) -> list:
    out = run_kvplan(command, NEMOTRON_H, *POOLED)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    if command == "check":
        return data["results"][0]["warnings"]
    return data["plans"][0]["tp_warnings"]


def test_neither_check_nor_estimate_warns_of_all_mode_now_modelled():
    estimated = [w for w in _warnings("estimate") if '"all" mode' in w]
    checked = [w for w in _warnings("check") if '"all" mode' in w]
    assert estimated == checked == []


def test_check_says_nothing_of_all_mode_for_a_plain_decoder():
    out = run_kvplan("check", LLAMA, "--tp", "1", "-c", "8K", "--gpu", "h100", "--format", "json")
    assert out.returncode == 0, out.stderr
    assert not [w for w in json.loads(out.stdout)["results"][0]["warnings"] if "all\" mode" in w]


@pytest.mark.parametrize("line, key, value", [
    ("gpu_util: ' 0.9 '", "gpu_util", 0.9), ("cpu_offload_gb: ' 8 '", "cpu_offload_gb", 8.0),
])
def test_quoted_numbers_with_spaces_read_alike(tmp_path, line, key, value):
    path = deployments_file(tmp_path, f"  - name: a\n    model: {LLAMA}\n    tp: 1\n    {line}\n")
    (deployment,) = load_deployments(str(path))
    assert getattr(deployment, key) == value
