"""vLLM 0.8-0.10.1 serve a model with Mamba / linear-attention state on the V0 engine by default (runs_v0); since s73
kvplan plans them by V0's rules (tests/test_mamba_v0_s73.py), so the s72 refusal tests went there.

Read release by release in engine/arg_utils.py EngineArgs._is_v1_supported_oracle:
- 0.8.0:1518-1519, 0.9.0:1300-1302, 0.9.1:1354: `if not model_config.is_v1_compatible` -> V0; every class with
  HasInnerState (jamba.py, mamba.py, mamba2.py, bamba.py, zamba2.py; nemotron_h.py in 0.9.1) is SupportsV0Only.
- 0.9.2:1402-1404, 0.10.0:1375-1377, 0.10.1:1428-1430: "V1 mamba models are unoptimized", `has_inner_state and
  _warn_or_fallback("Mamba")`, which falls back to V0 unless VLLM_USE_V1=1 is set (0.10.0:1693-1705).
- 0.10.2:1479-1490: no Mamba fallback; only SupportsV0Only classes (phi4flash.py 0.10.2:598) fall back.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from kvplan import api
from kvplan.engines.vllm_mamba_v0 import runs_v0


NEMOTRON_H = "nvidia/Nemotron-H-8B-Base-8K"
JAMBA = "ai21labs/AI21-Jamba-1.5-Mini"


def _plan(model: str, version: str, tp: int = 1, **kwargs):
    (plan,) = api.estimate(model, gpu="h100", max_model_len=8192, engine=f"vllm=={version}",
                           tensor_parallel_size=tp, **kwargs)
    return plan


def test_nemotron_h_older_than_its_registry_keeps_the_architecture_refusal():
    # NemotronHForCausalLM enters the registry in 0.9.1: 0.9.0 refuses the architecture first
    assert "are not supported for now" in _plan(NEMOTRON_H, "0.9.0").engine.refusal.reason


def test_jamba_at_0_10_2_plans_v1_by_hand():
    # Jamba-1.5-Mini tp 2: attention 4 KV heads x 128 x 2 (K, V) x 2 B = 2,048 B a token; Mamba page
    # ((3, 4096), (4096, 16)) in bf16 = (3 x 4,096 + 4,096 x 16) x 2 = 155,648 B. The attention block
    # (models/config.py 0.10.2:381: 16 x cdiv(mamba page, 16 x attention page of 1 token)) = 16 x cdiv(155,648,
    # 32,768) = 16 x 5 = 80 tokens. Groups: 4 attention layers, 28 Mamba in groups of 4 -> 1 + 7 = 8.
    plan = _plan(JAMBA, "0.10.2", 2)
    assert plan.engine.starts
    assert 16 * -(-((3 * 4096 + 4096 * 16) * 2) // (16 * 2048)) == 80
    assert plan.engine.gpu_kv_cache_tokens == plan.engine.num_gpu_blocks // 8 * 80


def test_nemotron_h_0_10_2_unchanged():
    # Nemotron-H-8B tp 1 at 8K: block 528 (the pad line), 477,840 tokens = 905 blocks of 528 (as before s72)
    plan = _plan(NEMOTRON_H, "0.10.2")
    assert plan.engine.starts and plan.engine.gpu_kv_cache_tokens == 905 * 528 == 477_840


def test_dense_model_in_a_v0_hybrid_release_still_plans():
    assert _plan("meta-llama/Llama-3.1-8B", "0.10.0").engine.starts


@pytest.mark.parametrize("architecture,states,version,expected", [
    ("NemotronHForCausalLM", 1, "0.7.3", False),  # kvplan's own era "v0" plans it as before
    ("NemotronHForCausalLM", 1, "0.8.0", True), ("NemotronHForCausalLM", 1, "0.10.1", True),
    ("NemotronHForCausalLM", 1, "0.10.2", False), ("LlamaForCausalLM", 0, "0.10.1", False),
    ("Phi4FlashForCausalLM", 1, "0.10.2", True)])  # SupportsV0Only, phi4flash.py 0.10.2:598
def test_runs_v0_by_release(architecture, states, version, expected):
    spec = SimpleNamespace(architecture=architecture, architectures=(architecture,), linear_layers=(0,) * states)
    assert runs_v0(spec, version) is expected
