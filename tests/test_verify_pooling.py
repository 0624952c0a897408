"""verify refuses a model vLLM serves with its pooling runner, in one line before torch (commands/verify.py
refuse_pooling): its rank would hold no LM head and run a pooler pass instead of the sampler
(engines/vllm_pooling_budget.py), none of which verify's generating forward builds or times."""

from __future__ import annotations

import json
from pathlib import Path


from tests.conftest import load_yaml, one_error_line, run_kvplan

ROOT = Path(__file__).resolve().parents[1]
QWEN3_8B = dict(load_yaml((ROOT / "model_specs" / "Qwen--Qwen3-8B.yaml").read_text())["config"])


def _folder(tmp_path, architecture: str, modules=None):
    folder = tmp_path / architecture
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(dict(QWEN3_8B, architectures=[architecture])))
    if modules is not None:
        (folder / "modules.json").write_text(json.dumps(modules))
    return folder


def test_a_classifier_is_refused_before_torch(tmp_path):
    line = one_error_line(run_kvplan("verify", _folder(tmp_path, "Qwen3ForSequenceClassification")))
    assert "pooling runner" in line and "kvplan estimate" in line and "CUDA" not in line


def test_a_causal_lm_served_pooling_by_its_modules_json_is_refused(tmp_path):
    pooling = {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}
    line = one_error_line(run_kvplan("verify", _folder(tmp_path, "Qwen3ForCausalLM", [pooling])))
    assert "pooling runner" in line


def test_a_generating_model_passes_on_to_the_gpu_check(tmp_path):
    """Without a GPU here the next refusal is the GPU's own: the pooling check let it through."""
    line = one_error_line(run_kvplan("verify", _folder(tmp_path, "Qwen3ForCausalLM")))
    assert "pooling" not in line
