"""Two V0 rules read in the wheels (kvplan/engines/vllm_settings.py, vllm_v0_chunked.py, vllm_rope_len.py) and the
post-releases that changed a rule kvplan models (vllm_versions.release_order, vllm_releases.py).

1. A pooling model's batched tokens up to 0.7 (SchedulerConfig, no max_num_seqs x max_model_len cap on V0):
   0.4.3-0.5.5  `elif embedding_mode: max(max_model_len, 32768)` after `if enable_chunked_prefill: 512`
                (config.py 0.4.3:23, :663-670; 0.5.5:898-905): past 32K with chunked prefill on, 512 stands;
   0.6.0-0.7.3  `if embedding_mode` (0.6.0:983-988; task "embedding" 0.6.4:1120-1125; runner_type "pooling"
                0.6.5:1350-1355, 0.7.3:1538-1543): max(the pick, 32768) whatever chunked prefill;
   0.4.0-0.4.2  no such constant in config.py.
2. Post-releases: 0.6.1.post1 keeps a multimodal model's chunked prefill off (engine/arg_utils.py 0.6.1.post1:887:
   `if use_long_context and not model_config.is_multimodal_model`; 0.6.1's line has no such test), 0.5.3.post1 reads
   the RoPE types 0.5.4 does (config.py 0.5.3:1497-1499 {"su", "longrope", "extended"} against 0.5.3.post1:1497
   ("su", "longrope", "llama3")).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import load_yaml
from kvplan.engines.vllm_engine import VllmEngine
from kvplan.engines.vllm_rope_len import derived_length
from kvplan.engines.vllm_settings import early_v0_batched_tokens
from kvplan.engines.vllm_v0_chunked import v0_chunked_prefill
from kvplan.engines.vllm_versions import behaviour, in_span, release_order, release_rule
from kvplan.model.parse import parse_config
from kvplan.plan.catalog import find_gpu

ROOT = Path(__file__).resolve().parents[1]
QWEN3_8B = dict(load_yaml((ROOT / "model_specs" / "Qwen--Qwen3-8B.yaml").read_text())["config"])


def embedding_spec():
    """e5-mistral's class, MistralModel: an embedding model in every release from 0.4.3 (registry)."""
    return parse_config(dict(QWEN3_8B, architectures=["MistralModel"], model_type="mistral"), "MistralModel")


def batched(version, context, spec=None):
    return VllmEngine(version).settings(context, find_gpu("H100"), spec=spec or embedding_spec()).max_num_batched_tokens


# 1. the pooling floor

@pytest.mark.parametrize("version, context, tokens", [
    ("0.4.2", 4096, 4096),      # no floor: max(4,096, 2,048)
    ("0.4.3", 4096, 32768),     # max(4,096, 32,768)
    ("0.5.5", 4096, 32768),
    ("0.5.5", 40960, 512),      # past 32K: chunked prefill on, 512, the elif not reached
    ("0.6.0", 40960, 32768),    # 512, then max(512, 32,768)
    ("0.6.3", 4096, 32768),     # max(4,096, 2,048) = 4,096, then max(4,096, 32,768)
    ("0.6.4", 40960, 32768),
    ("0.6.5", 40960, 40960),    # the pooling runner keeps chunked prefill off: max(40,960, 2,048) over 32,768
    ("0.7.3", 4096, 32768),
    ("0.7.3", 64, 32768),       # V0 caps nothing by max_num_seqs x max_model_len (256 x 64 = 16,384)
])
def test_pooling_floor(version, context, tokens):
    assert batched(version, context) == tokens


def test_a_generating_model_takes_no_floor():
    generating = parse_config(dict(QWEN3_8B, architectures=["MistralForCausalLM"], model_type="mistral"),
                              "MistralForCausalLM")
    assert batched("0.6.3", 4096, generating) == 4096


def test_the_floor_is_profiled():
    """The profile run covers the batched tokens (vllm_profile.profile_peak): 32,768 tokens cost more than 4,096."""
    spec, gpu = embedding_spec(), find_gpu("H100")
    floored = VllmEngine("0.6.3").budget(spec, 1, gpu, None, context=4096)
    before = VllmEngine("0.4.2").budget(spec, 1, gpu, None, context=4096)
    assert floored.kv_budget_bytes_per_gpu < before.kv_budget_bytes_per_gpu


# 2. post-releases

def test_release_order_puts_a_fix_between_its_base_and_the_next():
    assert release_order("0.6.1") < release_order("0.6.1.post1") < release_order("0.6.1.post2") < \
        release_order("0.6.2")
    assert release_order("0.10.1.1") == (0, 10, 1, 1) and release_order("0.10") == (0, 10)
    # a three-part boundary takes a fix as its base, as before
    assert in_span("0.6.1.post2", ((0, 6, 1), (0, 6, 2))) and not in_span("0.8.5.post1", ((0, 8, 6), (1, 0)))
    assert release_rule((((0, 6, 1, 1), "fix"), ((0, 6), "base")), "0.6.1") == "base"
    assert release_rule((((0, 6, 1, 1), "fix"), ((0, 6), "base")), "0.6.1.post1") == "fix"


@pytest.mark.parametrize("version, chunked", [("0.6.1", True), ("0.6.1.post1", False), ("0.6.1.post2", False),
                                              ("0.6.2", False)])
def test_multimodal_chunked_prefill_from_0_6_1_post1(version, chunked):
    assert v0_chunked_prefill(40960, version, multimodal=True) is chunked
    assert v0_chunked_prefill(40960, version)  # a text model: on past 32K in all four
    # with it on, 0.6.1's chunk of 512 rises to the multimodal floor 4,096 (config.py 0.6.1:996-1000); off, the length
    assert early_v0_batched_tokens(40960, behaviour(version), version, True) == (4096 if chunked else 40960)


@pytest.mark.parametrize("version, length", [("0.5.3", 131072 * 8), ("0.5.3.post1", 131072), ("0.5.4", 131072)])
def test_llama3_rope_from_0_5_3_post1(version, length):
    """rope_scaling {"type": "llama3", "factor": 8}: 0.5.3 scales 131,072 by 8; the fix leaves it."""
    config = dict(QWEN3_8B, architectures=["LlamaForCausalLM"], model_type="llama", max_position_embeddings=131072,
                  rope_scaling={"type": "llama3", "factor": 8.0, "original_max_position_embeddings": 8192})
    spec = parse_config(config, "LlamaForCausalLM")
    assert derived_length(spec, version)[0] == length
