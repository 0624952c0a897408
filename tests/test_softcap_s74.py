"""Gemma 2's attention logit soft-cap on V0's XFormers backend (vllm_backend_refusals.softcap_refusal), read from the
vLLM wheels by hand:

- XFormersImpl.__init__ raises ValueError("XFormers does not support attention logits soft capping.") for any
  logits_soft_cap not None in 0.5.4-0.6.4 (xformers.py 0.5.4:416-418, 0.6.3:424-426, 0.6.4:388-390); 0.6.5 on only
  warns ("XFormers does not support logits soft cap. Outputs may be slightly off.", 0.6.5:386-388, 0.10.2:398-400),
  so 0.8-0.10's V0 fallback starts;
- gemma2.py passes config.attn_logit_softcapping to Attention from 0.5.4 (0.5.4:155, :194); 0.5.1-0.5.3 pass none;
  Gemma 3 passes None (gemma3.py 0.8.5:297);
- V0's CUDA selector (attention/selector.py 0.6.3:222-249) leaves FlashAttention-2 for XFormers below SM 8.0, for a
  cache dtype starting "fp8" and for a block not a multiple of 16; ROCm takes ROCM_FLASH;
- transformers' Gemma2Config fills attn_logit_softcapping=50.0 where the file omits it (4.45.2
  configuration_gemma2.py:127): the bundled google/gemma-2-9b spec omits it.
"""

from __future__ import annotations

import json

import pytest

from conftest import deployments_file, estimate_plan, one_error_line, run_kvplan

from kvplan.errors import KvplanError
from kvplan.model.parse import parse_config

GEMMA2 = "google/gemma-2-9b-it"
A100 = ("--gpu", "A100-80GB", "-c", "4096")
REFUSAL = "XFormers does not support attention logits soft capping."  # xformers.py 0.6.3:426, verbatim

# google/gemma-2-9b's config (model_specs/google--gemma-2-9b.yaml), no attn_logit_softcapping
CONFIG = {"architectures": ["Gemma2ForCausalLM"], "model_type": "gemma2", "hidden_size": 3584,
          "intermediate_size": 14336, "num_hidden_layers": 42, "num_attention_heads": 16, "num_key_value_heads": 8,
          "head_dim": 256, "vocab_size": 256000, "max_position_embeddings": 8192, "sliding_window": 4096,
          "torch_dtype": "bfloat16"}


@pytest.mark.parametrize("extra, capped", [
    ({}, True),  # Gemma2Config's 50.0
    ({"attn_logit_softcapping": 50.0}, True),
    ({"attn_logit_softcapping": None}, False),  # gemma2.py hands Attention None
])
def test_gemma2_softcap_read_from_the_config(extra, capped):
    assert parse_config({**CONFIG, **extra}, "x").attention_softcap is capped


def test_gemma3_and_llama_have_no_softcap():
    gemma3 = {**CONFIG, "architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text",
              "attn_logit_softcapping": None}
    assert parse_config(gemma3, "x").attention_softcap is False
    llama = {**CONFIG, "architectures": ["LlamaForCausalLM"], "model_type": "llama", "attn_logit_softcapping": 50.0}
    assert parse_config(llama, "x").attention_softcap is False  # llama.py builds no cap, whatever the file says


def test_bad_softcap_value_is_one_line(write_config):
    with pytest.raises(KvplanError, match="attn_logit_softcapping' must be a number or null"):
        parse_config({**CONFIG, "attn_logit_softcapping": "big"}, "x")
    path = write_config({**CONFIG, "attn_logit_softcapping": True})
    line = one_error_line(run_kvplan("estimate", path, *A100, "--engine", "vllm==0.6.3"))
    assert "attn_logit_softcapping" in line and "number or null" in line


def _refusal(*args):
    return estimate_plan(GEMMA2, *A100, *args)["engine"].get("refusal")


@pytest.mark.parametrize("version", ["0.5.4", "0.6.0", "0.6.3", "0.6.4"])
def test_fp8_refused_where_xformers_raises(version):
    refusal = _refusal("--engine", f"vllm=={version}", "--kv-cache-dtype", "fp8")
    assert refusal["reason"] == REFUSAL and refusal["field"] == "kv_dtype"
    assert refusal["remedy"] == "it starts with --kv-cache-dtype auto"


@pytest.mark.parametrize("version", ["0.5.3", "0.6.5", "0.7.3", "0.8.5", "0.10.1.1"])
def test_fp8_starts_where_xformers_does_not_raise(version):
    """0.5.3: gemma2.py builds no cap; 0.6.5 on: a warning. Before this rule 0.6.3 planned 77 requests: 0.6.5 keeps
    that (the same 51.4 GiB budget and 168 KiB a token)."""
    engine = estimate_plan(GEMMA2, *A100, "--engine", f"vllm=={version}", "--kv-cache-dtype", "fp8")["engine"]
    assert engine["starts"] and engine.get("refusal") is None


def test_fp8_e5m2_refused_and_auto_starts():
    assert _refusal("--engine", "vllm==0.6.3", "--kv-cache-dtype", "fp8_e5m2")["reason"] == REFUSAL  # startswith fp8
    engine = estimate_plan(GEMMA2, *A100, "--engine", "vllm==0.6.3")["engine"]
    assert engine["starts"] and engine["max_concurrency"] > 38  # FlashAttention-2 takes the cap: 38 requests


def test_rocm_picks_rocm_flash():
    engine = estimate_plan(GEMMA2, "--gpu", "MI300X", "-c", "4096", "--engine", "vllm==0.6.3",
                           "--kv-cache-dtype", "fp8")["engine"]
    assert engine["starts"]


def test_block_8_refused_with_block_remedy():
    refusal = _refusal("--engine", "vllm==0.6.3", "--block-size", "8")
    assert refusal["reason"] == REFUSAL and refusal["field"] == "block_size"
    assert "--block-size 16" in refusal["remedy"]


def test_turing_refused_whatever_the_dtype():
    """T4 (SM 7.5): XFormers with `auto` too; the remedy is the first release that only warns."""
    plan = estimate_plan(GEMMA2, "--gpu", "T4", "-c", "2048", "--engine", "vllm==0.6.3")
    refusal = plan["engine"]["refusal"]
    assert refusal["reason"] == REFUSAL and refusal["field"] == "engine"
    assert "vllm==0.6.5" in refusal["remedy"]


def test_check_no_longer_offers_fp8(tmp_path):
    """bf16 holds 38 requests at 4,096 on an A100 in 0.6.3; before this rule check said "would fit with tp 2,
    kv_dtype fp8 or context 2640"."""
    path = deployments_file(tmp_path, "  - name: g2\n    model: google/gemma-2-9b-it\n    tp: 1\n"
                                      "    gpu: A100-80GB\n    context: 4096\n    engine: vllm==0.6.3\n"
                                      "    min_concurrency: 60\n")
    r = run_kvplan("check", "--file", path)
    assert r.returncode == 1
    text = " ".join(r.stdout.split() + r.stderr.split())
    assert "would fit with tp 2 or context 2640" in text and "kv_dtype fp8" not in text
    report = json.loads(run_kvplan("check", "--file", path, "--format", "json").stdout)
    assert "fp8" not in json.dumps(report.get("results", report)).replace("fp8_", "")
