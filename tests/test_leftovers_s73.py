"""Session 73's leftovers: GLM-5 without first_k_dense_replace on vLLM 0.19.1-0.22.1, online MXFP4's linear padding
per TP rank (and the partition vLLM cannot quantise), and the gates online MXFP4 quantises beside the routers.

Sources read (wheels; paths under vllm/model_executor/ unless named):
- transformers 5.5.4 / 5.10.2 GlmMoeDsaConfig declares no first_k_dense_replace (configuration_glm_moe_dsa.py
  5.5.4:114-129, 5.10.2:115-145: mlp_layer_types derived, 3 dense); 5.12.0 fills 3 (:128). vLLM's deepseek_v2.py
  reads config.first_k_dense_replace for every decoder layer (models/deepseek_v2.py 0.19.1:1069, 0.22.1:1131) and for
  num_moe_layers (0.19.1:1357, 0.22.1:1650).
- Mxfp4OnlineLinearMethod.create_weights gets each rank's partition and raises "MXFP4 requires
  input_size_per_partition (K) to be divisible by 32." (layers/quantization/online/mxfp4.py 0.28.0:100-104,
  0.32.0:101-105, 0.34.0:107-111); FlashInfer CuteDSL pads the partition's scale rows to 128
  (kernels/linear/mxfp4/flashinfer.py 0.32.0:38-47), Marlin pads output_size_per_partition /
  input_size_per_partition (quantization/utils/marlin_utils_fp4.py 0.32.0:231-232).
- Gemma 4 builds per_layer_input_gate / per_layer_projection as ReplicatedLinear with the quant config
  (models/gemma4.py 0.32.0:682-697, 0.34.0:704-719), Gemma 3n too (gemma3n.py 0.32.0:493-506) and its AltUp
  coefficients (:89-110, 4 inputs). ERNIE-4.5-VL's text_experts_gate / vision_experts_gate likewise
  (ernie45_vl_moe.py 0.32.0 and 0.34.0 :255-262, :292-299), but kvplan does not read that family (its
  moe_num_experts is a list): refused at the config, nothing to price.
"""

from __future__ import annotations

import json

import pytest
import yaml

from tests.conftest import ROOT, run_kvplan

from kvplan.api import estimate
from kvplan.engines.vllm_kv_dtype import release_view
from kvplan.engines.vllm_mxfp4_online import linear_padding
from kvplan.engines.vllm_runner import cuda_capability
from kvplan.model.class_defaults import filled_since
from kvplan.model.quantization import apply_weight_precision
from kvplan.model.sources import resolve
from kvplan.model.spec import LinearShape
from kvplan.plan.catalog import find_gpu

LITE, QWEN = "deepseek-ai/DeepSeek-V2-Lite", "Qwen/Qwen3-30B-A3B"


# 1. GLM-5 without first_k_dense_replace

def _glm5(write_config, **changes):
    config = yaml.safe_load((ROOT / "model_specs" / "zai-org--GLM-5.2.yaml").read_text())["config"]
    config = {k: v for k, v in config.items() if k != "first_k_dense_replace"}
    return write_config({**config, **changes})


@pytest.mark.parametrize("release", ["0.19.1", "0.22.1"])
def test_glm5_without_first_k_dense_replace_is_refused_before_0_23(write_config, release):
    """Before: planned with 78 MoE layers (no dense one). After: vLLM's AttributeError, one line, exit 2."""
    r = run_kvplan("estimate", _glm5(write_config), "--engine", f"vllm=={release}", "-tp", "8", "--gpu", "H200",
                   "-c", "8192")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert "config field 'first_k_dense_replace' is missing" in r.stderr
    assert "before 5.12.0, which vLLM 0.23.0 installs" in r.stderr
    assert r.stderr.rstrip().endswith("or serve it with vLLM 0.23.0 or newer.")


@pytest.mark.parametrize("release", ["0.23.0", "0.34.0"])
def test_glm5_without_it_plans_from_0_23(write_config, release):
    r = run_kvplan("estimate", _glm5(write_config), "--engine", f"vllm=={release}", "-tp", "8", "--gpu", "H200",
                   "-c", "8192", "--format", "json")
    assert r.returncode == 0, r.stderr


def test_glm5_null_first_k_dense_replace_names_no_release(write_config):
    """A null the file gives is its own: no release fills it (0.34.0's class takes the null; layer_idx >= None)."""
    r = run_kvplan("estimate", _glm5(write_config, first_k_dense_replace=None), "--engine", "vllm==0.34.0", "-tp",
                   "8", "--gpu", "H200", "-c", "8192")
    assert r.returncode == 2
    assert "first_k_dense_replace" in r.stderr and "0.23.0" not in r.stderr


def test_filled_since():
    assert filled_since("glm_moe_dsa", "first_k_dense_replace") == (0, 23, 0)
    assert filled_since("deepseek_v2", "n_group") is None  # no transformers fills it: refused on every release


# 2. Online MXFP4: the linear kernels' padding at each rank's partition

def _served(model: str, version: str = "0.32.0"):
    return release_view(apply_weight_precision(resolve(model, None), "mxfp4"), version)


def _weights(model: str, gpu: str, tp: int) -> int:
    plan, = estimate(model, gpu=gpu, engine="vllm==0.32.0", quantization="mxfp4", tensor_parallel_size=tp)
    return plan.budget.weights_bytes_per_gpu


def test_rank_shapes():
    """Qwen3-30B-A3B's qkv_proj: 32 query heads and 4 KV heads of 128 (5,120 rows, 1,024 of them K / V); a rank of
    tp 2 holds 16 + 2 x 2 heads (2,560 rows), of tp 8 4 + 2 x 1 (768: one KV head each, replicated). o_proj
    (row-parallel) keeps its 2,048 rows and splits its 4,096 inputs."""
    qkv = LinearShape(5120, 2048, "rows", 1024, 4)
    assert [qkv.on_rank(tp) for tp in (1, 2, 8)] == [(5120, 2048), (2560, 2048), (768, 2048)]
    assert LinearShape(2048, 4096, "cols").on_rank(8) == (2048, 512)
    assert LinearShape(576, 2048, "").on_rank(2) == (576, 2048)  # kv_a_proj_with_mqa: whole on every rank
    attention = next(g for g in _served(QWEN).params if g.name == "attention")
    assert dict(attention.linear.shapes) == {LinearShape(2048, 4096, "cols"): 48,
                                             LinearShape(5120, 2048, "rows", 1024, 4): 48}


# DeepSeek-V2-Lite at tp 2 (27 layers, the first dense; model_specs/deepseek-ai--DeepSeek-V2-Lite.yaml), each rank's
# partitions: kv_a_proj_with_mqa 576 x 2,048 whole; q_proj 1,536 x 2,048; kv_b_proj 2,048 x 512; o_proj 2,048 x
# 1,024; the dense layer's gate_up_proj 10,944 x 2,048 and down_proj 2,048 x 5,472; shared experts' 2,816 x 2,048 and
# 2,048 x 1,408.
# B200, CuteDSL (scale rows to 128, scale columns K / 32 to 4):
#   kv_a: 576 -> 640 rows of 64 scale bytes: 64 x 64 = 4,096 a layer, 27 layers: 110,592
#   dense gate_up: 10,944 -> 11,008 rows of 64: 64 x 64 = 4,096
#   dense down: 5,472 / 32 = 171 -> 172 scale columns of 2,048 rows: 2,048
#   every other N a multiple of 128 and K / 32 of 4
LITE_TP2_CUTEDSL = 110_592 + 4_096 + 2_048  # 116,736
# H100, Marlin (N to 64 and K to 128, or N to 128 and K to 64, the smaller): the dense down_proj's 2,048 x 5,472 to
# 2,048 x 5,504 (5,472 = 42.75 x 128 = 85.5 x 64), 2,048 x 32 weights at 17/32 bytes; 576 = 9 x 64 and 10,944 =
# 171 x 64 with K 2,048 pad nothing
LITE_TP2_MARLIN = 2048 * 32 * 17 // 32  # 34,816


def test_deepseek_v2_lite_padding_at_tp_2(monkeypatch):
    """Before: 0 at any tp > 1. After: each rank's partition padded, in the weights a rank holds."""
    assert (LITE_TP2_CUTEDSL, LITE_TP2_MARLIN) == (116_736, 34_816)
    spec = _served(LITE)
    assert linear_padding(spec, cuda_capability(find_gpu("B200")), 2) == LITE_TP2_CUTEDSL
    assert linear_padding(spec, cuda_capability(find_gpu("H100")), 2) == LITE_TP2_MARLIN
    padded = {gpu: _weights(LITE, gpu, 2) for gpu in ("B200", "H100")}
    monkeypatch.setattr("kvplan.engines.vllm_budget.online_linear_padding", lambda *_: 0)
    assert {gpu: padded[gpu] - _weights(LITE, gpu, 2) for gpu in padded} == \
        {"B200": LITE_TP2_CUTEDSL, "H100": LITE_TP2_MARLIN}


def test_qwen3_moe_pads_nothing_at_tp_2_and_8():
    """Every partition of Qwen3-30B-A3B's linears is a multiple of the tiles: qkv 2,560 / 768 rows, o_proj 2,048 x
    2,048 / 512, the replicated 128 x 2,048 gate."""
    spec = _served(QWEN)
    for gpu in ("B200", "H100"):
        assert [linear_padding(spec, cuda_capability(find_gpu(gpu)), tp) for tp in (2, 8)] == [0, 0]


def _refusal(model: str, tp: int, version: str = "0.32.0", gpu: str = "H100"):
    plan, = estimate(model, gpu=gpu, engine=f"vllm=={version}", quantization="mxfp4", tensor_parallel_size=tp,
                     max_model_len=4096)
    return plan.engine.refusal


def test_partition_input_not_a_multiple_of_32_is_refused():
    """DeepSeek-V2-Lite's dense down_proj at tp 4: 10,944 / 4 = 2,736 inputs a rank, 85.5 blocks of 32 (tp 2: 5,472
    = 171 x 32 starts). Before: planned."""
    refusal = _refusal(LITE, 4)
    assert refusal is not None and refusal.configuration
    assert "MXFP4 requires input_size_per_partition (2736) to be divisible by 32." in refusal.reason
    assert refusal.remedy == "vLLM accepts the model without quantization mxfp4"  # the API spells the field
    assert _refusal(LITE, 2) is None
    assert _refusal(LITE, 4, version="0.27.0") is None  # Mxfp4Config quantises the experts alone


def test_gemma3n_altup_coefficients_are_refused():
    """Gemma 3n's AltUp correction / prediction coefficients read altup_num_inputs (4) inputs, on every rank."""
    refusal = _refusal("google/gemma-3n-E2B", 1)
    assert refusal is not None and "input_size_per_partition (4)" in refusal.reason


# 3. Gates built with the quant config

def test_gemma4_per_layer_input_gate_is_mxfp4():
    """gemma-4-E4B (42 layers, hidden 2,560, hidden_size_per_layer_input 256): per_layer_input_gate 256 x 2,560 and
    per_layer_projection 2,560 x 256, ReplicatedLinear: whole on every rank, at 17/32 bytes a weight, already priced
    so before this session's leftovers (the dense group's linear matrices): 42 x 2 x 655,360 x 17 / 32 bytes."""
    dense = next(g for g in _served("google/gemma-4-E4B-it").params if g.name == "dense")
    assert dense.linear.stored == "mxfp4"
    assert dict(dense.linear.shapes)[LinearShape(256, 2560, "")] == 42
    assert dense.replicated == 42 * 2 * 256 * 2560 * 17 // 32 == 29_245_440


def test_ernie_vl_is_not_read(write_config):
    """ERNIE-4.5-VL (text_experts_gate / vision_experts_gate quantised by vLLM) is refused at its config."""
    config = {"architectures": ["Ernie4_5_VLMoeForConditionalGeneration"], "model_type": "ernie4_5_moe_vl",
              "hidden_size": 2560, "num_hidden_layers": 28, "num_attention_heads": 20, "num_key_value_heads": 4,
              "moe_num_experts": [64, 64], "moe_k": 6, "vocab_size": 103424, "torch_dtype": "bfloat16"}
    r = run_kvplan("estimate", write_config(json.dumps(config)), "--engine", "vllm==0.32.0", "-q", "mxfp4")
    assert r.returncode == 2 and "moe_num_experts" in r.stderr
