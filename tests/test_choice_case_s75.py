"""--dcp-comm-backend takes vLLM's spellings only: vLLM builds the flag from the DCPCommBackend Literal ("ag_rs",
"a2a": config/parallel.py 0.18.0:39) as argparse choices (engine/arg_utils.py 0.18.0:833-835, literal_to_kwargs
:174-187), which compare the string as given, so `--dcp-comm-backend A2A` is argparse's "invalid choice" (exit 2)."""

from __future__ import annotations

import pytest

from conftest import estimate_plan, one_error_line, run_kvplan

DSV3 = "deepseek-ai/DeepSeek-V3"
H200 = ("--gpu", "H200", "-tp", "8", "-dcp", "8")


@pytest.mark.parametrize("value", ["A2A", "AG_RS", "Ag_rs"])
def test_upper_case_is_refused_as_vllm_refuses_it(value):
    line = one_error_line(run_kvplan("estimate", DSV3, *H200, "--dcp-comm-backend", value))
    assert line == (f"kvplan: error: --dcp-comm-backend must be one of ag_rs, a2a (vLLM's --dcp-comm-backend, in lower "
                    f"case), got '{value}'.")


def test_lower_case_is_taken():
    assert estimate_plan(DSV3, *H200, "--dcp-comm-backend", "a2a")["dcp_comm_backend"] == "a2a"


def test_deployments_file_alike(tmp_path):
    path = tmp_path / "d.yaml"
    path.write_text(f"deployments:\n  - name: a\n    model: {DSV3}\n    gpu: H200\n    tp: 8\n    dcp: 8\n"
                    f"    dcp_comm_backend: A2A\n")
    result = run_kvplan("check", "--file", str(path))
    assert result.returncode == 2 and "ag_rs, a2a" in result.stderr and "'A2A'" in result.stderr
