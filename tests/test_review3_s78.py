"""Review of session 78's chunked-prefill merge: V0 releases that refuse chunked prefill on for a model, read in the
wheels (vllm_chunked_flag.v0_refusal):

- JambaForCausalLM.__init__ asserts `not scheduler_config.chunked_prefill_enabled` ("Jamba currently does not support
  chunked prefill") in vllm 0.5.4 (models/jamba.py:588-589), 0.5.5 (:571-572), 0.6.0 (:572-573), 0.6.1 / 0.6.2
  (:574-575); 0.5.3's and 0.6.3.post1's jamba.py have no such assert. V0 keeps Jamba's chunked prefill off by default
  there (contains_seqlen_agnostic_layers, 0.5.4-0.6.2), so only --enable-chunked-prefill meets it.
- EngineArgs raises "Chunked prefill is not supported for pooling models" where chunked prefill is on and the runner is
  pooling, on V0 (engine/arg_utils.py 0.6.5:1101-1104, 0.7.3:1202-1205; 0.6.4 has no such line); V0 keeps a pooling
  model's chunked prefill off by default (0.6.5-0.10.1), so only --enable-chunked-prefill meets it.
"""

from __future__ import annotations

import json

import pytest

from conftest import deployments_file, load_yaml, one_error_line, run_kvplan

import kvplan.api as api
from kvplan.errors import FieldError

JAMBA = "ai21labs/AI21-Jamba-1.5-Mini"


@pytest.mark.parametrize("version", ["0.5.4", "0.6.0", "0.6.2"])
def test_jamba_with_chunked_prefill_on_is_refused_where_its_class_asserts_it_off(version):
    line = one_error_line(run_kvplan("estimate", JAMBA, "--gpu", "H100", "-c", "8192", "--engine",
                                     f"vllm=={version}", "--enable-chunked-prefill"))
    assert "Jamba currently does not support chunked prefill" in line and f"vLLM {version}" in line


@pytest.mark.parametrize("version", ["0.5.3", "0.6.3"])
def test_jamba_with_chunked_prefill_on_is_planned_where_no_assert(version):
    r = run_kvplan("estimate", JAMBA, "--gpu", "H100", "-c", "8192", "--engine", f"vllm=={version}",
                   "--enable-chunked-prefill", "--format", "json")
    assert r.returncode == 0, r.stderr


def _embedding_config(tmp_path) -> str:
    """e5-mistral's class, MistralModel (a pooling architecture in every release read), on Qwen3-8B's shapes."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    config = dict(load_yaml((root / "model_specs" / "Qwen--Qwen3-8B.yaml").read_text())["config"],
                  architectures=["MistralModel"], model_type="mistral")
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return str(path)


@pytest.mark.parametrize("version", ["0.6.5", "0.7.3"])
def test_a_pooling_model_with_chunked_prefill_on_is_refused_on_v0(tmp_path, version):
    model = _embedding_config(tmp_path)
    line = one_error_line(run_kvplan("estimate", model, "--gpu", "H100", "-c", "8192", "--engine",
                                     f"vllm=={version}", "--enable-chunked-prefill"))
    assert "Chunked prefill is not supported for pooling models" in line
    # left out, or on 0.6.4 (no such line), planned
    assert run_kvplan("estimate", model, "--gpu", "H100", "-c", "8192", "--engine", f"vllm=={version}").returncode == 0
    assert run_kvplan("estimate", model, "--gpu", "H100", "-c", "8192", "--engine", "vllm==0.6.4",
                      "--enable-chunked-prefill").returncode == 0


def test_the_api_and_a_deployments_file_refuse_them(tmp_path):
    with pytest.raises(FieldError, match="Jamba currently does not support chunked prefill"):
        api.estimate(JAMBA, max_model_len=8192, gpu="H100", engine="vllm==0.6.0", enable_chunked_prefill=True)
    path = deployments_file(tmp_path, f"  - name: j\n    model: {JAMBA}\n    tp: 1\n    context: 8K\n    gpu: H100\n"
                                      f"    engine: vllm==0.6.0\n    enable_chunked_prefill: true\n")
    r = run_kvplan("check", "--file", path)
    assert r.returncode == 2 and "Jamba currently does not support chunked prefill" in r.stderr, r.stderr
