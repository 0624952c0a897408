"""Qwen3.5's text decoders build Qwen3-Next's attention (vLLM 0.32.0 qwen3_5.py -> qwen3_next.py
Qwen3NextAttention): q_proj yields the output gate beside the queries unless attn_output_gate is false
(QKVParallelLinear over total_num_heads x (1 + attn_output_gate) heads), and each head's q and k are normed. kvplan
counted neither for Qwen3.5 (only for model_type qwen3_next). Expected values by hand from the bundled config."""

import copy

from conftest import load_yaml
from kvplan.model.bundled import spec_dir
from kvplan.model.parse import parse_config
from kvplan.model.sources import resolve
from kvplan.verify.arch import architecture


def bundled_config(name: str) -> dict:
    return copy.deepcopy(load_yaml((spec_dir() / name).read_text())["config"])


def qwen35_27b(**text_fields):
    raw = bundled_config("Qwen--Qwen3.5-27B.yaml")
    raw["text_config"].update(text_fields)
    return parse_config(raw, "qwen3.5-27b")


def test_qwen35_full_layers_carry_the_output_gate_and_qk_norms():
    # 16 full-attention layers (every 4th of 64), 24 heads of 256, hidden 5,120
    gated, plain = qwen35_27b(), qwen35_27b(attn_output_gate=False)
    assert gated.param_count("attention") - plain.param_count("attention") == 16 * 24 * 256 * 5120
    per_layer = (2 * 24 * 256 * 5120 + 2 * 4 * 256 * 5120 + 5120 * 24 * 256 + 2 * 256)  # q + gate, k, v, o, norms
    assert gated.param_count("attention") == 16 * per_layer
    assert resolve("Qwen/Qwen3.5-27B").param_count("attention") == gated.param_count("attention")


def test_verify_builds_the_gate_where_the_estimate_counts_it():
    def gate(name: str, tp: int) -> bool:
        raw = bundled_config(name)
        return architecture(raw, parse_config(raw, name), tp).attn_output_gate

    assert gate("Qwen--Qwen3.5-27B.yaml", 1) and gate("Qwen--Qwen3-Next-80B-A3B-Thinking.yaml", 2)
    assert not gate("Qwen--Qwen3-14B.yaml", 1)
