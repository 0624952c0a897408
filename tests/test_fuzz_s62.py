"""Defects the s62 fuzz round (benchmarks/fuzz_campaign.py --fields/--parity/--contract) found, each reproduced here.
Bad input is one line on stderr naming the field and what is valid, exit 2; exit 3 (kvplan's crash code) is a defect.

G1  a RoPE factor whose product with the model's length overflows a float (1e308 x 131,072 = inf) crashed the
    release's length rule (int(inf): OverflowError, exit 3) instead of being refused by name like a factor of 1e300.
G2  enable_lora on a model kvplan does not price LoRA for (an MoE, a multimodal model) at a TP degree that does not
    split the heads: estimate refused it (exit 2, it builds the budget at every TP degree) while check reported only
    the failed sharding rule (exit 1), so the same deployment got two answers (the --parity family).
G3  speed (the design's 0.5 s bound): a hybrid's state page re-derived the model's state dtypes once per linear layer
    (45 of Qwen3.5-397B's 60, each time through the release's NemotronH handler rules) in every plan the remedies
    replan: `estimate Qwen/Qwen3.5-397B-A17B -tp 1,2,4,8` took 0.8-0.9 s here, now about half that.
"""

from __future__ import annotations

import json

import pytest
from conftest import one_error_line, run_kvplan

# Llama-3.1-8B's shape (its config.json), the RoPE entry replaced by the case's
LLAMA_CONFIG = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096,
                "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
                "num_key_value_heads": 8, "vocab_size": 128256, "max_position_embeddings": 131072,
                "tie_word_embeddings": False, "torch_dtype": "bfloat16"}


def _folder(tmp_path, **fields):
    (tmp_path / "config.json").write_text(json.dumps({**LLAMA_CONFIG, **fields}))
    return tmp_path


# ---- G1: a RoPE factor that overflows the float product ---------------------------------------------------------

@pytest.mark.parametrize("scaling, engine", [
    ({"type": "linear", "factor": 1e308}, "vllm"),  # 0.32 multiplies a linear factor in
    ({"type": "yarn", "factor": 1e308, "original_max_position_embeddings": 4096}, "vllm==0.15.0"),  # original x f
    ({"type": "dynamic", "factor": 1.7976931348623157e308}, "vllm==0.11.0"),  # the largest float itself
])
def test_an_overflowing_rope_factor_is_refused_by_name(tmp_path, scaling, engine):
    base = scaling.get("original_max_position_embeddings", 131072)
    assert base * scaling["factor"] == float("inf")  # the case: the float product overflows (float64 arithmetic)
    line = one_error_line(run_kvplan("estimate", _folder(tmp_path, rope_scaling=scaling), "--engine", engine))
    assert "'rope_scaling.factor'" in line and "past kvplan's bound of 2**40" in line and "--max-model-len" in line
    assert "1.8e+308 tokens" in line  # the largest float stands in for the overflowed length, shown short


def test_an_overflowing_rope_factor_with_a_max_model_len_is_planned(tmp_path):
    """vLLM compares an asked --max-model-len with the derived float (config/model.py 0.34.0:2700): 8192 < inf is
    served. The note gives the derived length in 3 digits, not 309."""
    r = run_kvplan("estimate", _folder(tmp_path, rope_scaling={"type": "linear", "factor": 1e308}),
                   "--max-model-len", "8192", "--format", "json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["plans"][0]["context"] == 8192
    note = next(n for n in data["model"]["rules"] if n.startswith("RoPE scaling"))
    assert "max model length of 1.8e+308 = max_position_embeddings 131,072 x linear RoPE factor 1e+308" in note


def test_a_large_finite_rope_factor_keeps_its_digits_short(tmp_path):
    """1e300 x 131,072 = 1.31e305 is finite: refused as before, and its note (with a length given) no longer prints
    all 306 digits."""
    folder = _folder(tmp_path, rope_scaling={"type": "linear", "factor": 1e300})
    assert "1.31e+305 tokens" in one_error_line(run_kvplan("estimate", folder))
    r = run_kvplan("estimate", folder, "--max-model-len", "8192")
    assert r.returncode == 0 and "1.31e+305 = max_position_embeddings 131,072" in r.stdout.replace("\n", " ")


# ---- G2: unpriced LoRA is bad input in check as in estimate, whatever the TP degree -----------------------------

GLM_FLASH = "zai-org/GLM-4.7-Flash"  # 20 query heads (its config.json): tp 8 does not split them; MoE experts


@pytest.mark.parametrize("tp", ["8", "2"])
def test_unpriced_lora_is_refused_alike_by_estimate_and_check(tmp_path, tp):
    said = one_error_line(run_kvplan("estimate", GLM_FLASH, "-tp", tp, "--enable-lora"))
    assert "--enable-lora is not priced by kvplan" in said and "(MoE experts)" in said
    said = one_error_line(run_kvplan("check", GLM_FLASH, "-tp", tp, "--enable-lora"))
    assert "--enable-lora is not priced by kvplan" in said
    path = tmp_path / "d.yaml"
    path.write_text(f"deployments:\n  - name: d\n    model: {GLM_FLASH}\n    tp: {tp}\n    enable_lora: true\n")
    said = one_error_line(run_kvplan("check", "--file", path))
    assert "d.yaml:5:" in said and "field 'enable_lora' is not priced by kvplan" in said


def test_priced_lora_at_a_refused_tp_stays_a_failed_rule():
    """Llama-3.1-8B is priced (a dense LlamaForCausalLM): at tp 3 its 32 heads do not split, a failed rule (exit 1),
    as before; estimate plans it as an invalid TP (exit 0)."""
    done = run_kvplan("check", "meta-llama/Llama-3.1-8B", "-tp", "3", "--enable-lora")
    assert done.returncode == 1 and "num_attention_heads (32) is not divisible by tp 3" in done.stdout
    assert run_kvplan("estimate", "meta-llama/Llama-3.1-8B", "-tp", "3", "--enable-lora").returncode == 0


# ---- G3: a hybrid's state page prices the model's state dtypes once ---------------------------------------------

def test_a_hybrid_state_page_reads_the_state_dtypes_once(monkeypatch):
    """Qwen3.5-397B-A17B (its config.json): gated DeltaNet layers with 16 key heads and 64 value heads of 128, conv
    kernel 4, bf16, mamba_ssm_dtype float32. One sequence's state on one GPU at tp 1 in vLLM 0.32.0 (GatedDeltaNet
    get_state_shape: conv (kernel - 1) x (2 x 16 x 128 + 64 x 128) in the model dtype, temporal 64 x 128 x 128 in
    float32 by Qwen3.5's config hook, models/config.py 0.32.0:853-879): 4,268,032 bytes, the dtypes worked out
    once, not once per layer."""
    from kvplan.engines import vllm
    from kvplan.model.precision import PRECISIONS
    from kvplan.model.sources import resolve

    spec = resolve("Qwen/Qwen3.5-397B-A17B")
    calls, priced = [], vllm.mamba_state_bytes
    monkeypatch.setattr(vllm, "mamba_state_bytes", lambda *a: calls.append(a) or priced(*a))
    attention, per_token, page = vllm.hybrid_pages(spec, 1, PRECISIONS["bf16"], "0.32.0")
    assert page == 2 * (4 - 1) * (2 * 16 * 128 + 64 * 128) + 4 * 64 * 128 * 128 == 4_268_032
    assert per_token == 2 * 2 * 256 * 2  # the first full-attention layer: K and V, 2 KV heads of 256, bf16
    assert len(calls) == 1
