"""Weights estimated from a config alone, against the exact parameter counts the bundled specs cite
(safetensors metadata or model cards), and the stored size of quantised checkpoints."""

import pytest
import yaml

from hub_configs import DEEPSEEK_V3, GPT_OSS_20B, LLAMA3_8B
from kvplan.model import parse_config
from kvplan.model.sources import bundled_files

# Text-only checkpoints: the config describes every weight. Others carry a vision tower (Gemma 3, Llama 4),
# an MTP layer (DeepSeek V3/R1) or gated-attention extras (Qwen3-Next) the estimate leaves out.
APPROXIMATE = {"google/gemma-3-4b-it": 0.10, "google/gemma-3-27b-it": 0.02, "deepseek-ai/DeepSeek-V3": 0.02,
               "deepseek-ai/DeepSeek-R1": 0.02, "meta-llama/Llama-4-Scout-17B-16E-Instruct": 0.01,
               "Qwen/Qwen3-Next-80B-A3B-Thinking": 0.025}


def exact_counts():
    for path in bundled_files():
        entry = yaml.safe_load(path.read_text())
        exact = (entry.get("weights") or {}).get("parameters")
        if exact:
            yield pytest.param(entry, exact, id=entry["id"])


@pytest.mark.parametrize("entry,exact", list(exact_counts()))
def test_estimate_matches_exact_parameter_count(entry, exact):
    estimate = parse_config(entry["config"], entry["id"]).weights.parameters
    tolerance = APPROXIMATE.get(entry["id"], 0.001)
    assert abs(estimate / exact - 1) < tolerance, (estimate, exact)


def test_llama3_8b_by_hand():
    # embed + untied head: 2 x 128256 x 4096; per layer: q,o 4096x4096, k,v 4096x1024, MLP 3 x 4096 x 14336,
    # two norms; final norm.
    layer = 2 * 4096 * 4096 + 2 * 4096 * 1024 + 3 * 4096 * 14336 + 2 * 4096
    expected = 2 * 128256 * 4096 + 32 * layer + 4096
    weights = parse_config(LLAMA3_8B, "x").weights
    assert weights.parameters == expected == 8_030_261_248
    assert weights.bytes == 2 * expected


def test_quantized_checkpoints_at_stored_size():
    oss = parse_config(GPT_OSS_20B, "oss").weights
    assert oss.dtype == "mxfp4"
    assert oss.bytes < 0.35 * 2 * oss.parameters  # experts at 4.25 bits, attention and embeddings bf16
    v3 = parse_config(DEEPSEEK_V3, "v3").weights
    assert v3.dtype == "fp8" and v3.bytes < 1.01 * v3.parameters
    awq = parse_config({**LLAMA3_8B, "quantization_config": {"quant_method": "awq", "bits": 4, "group_size": 128}},
                       "awq").weights
    linear = 32 * (2 * 4096 * 4096 + 2 * 4096 * 1024 + 3 * 4096 * 14336)
    assert awq.bytes == int(linear * (0.5 + 4 / 128) + (awq.parameters - linear) * 2)
