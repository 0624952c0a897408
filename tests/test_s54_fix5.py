"""Session 54 (fix5, review 6): GPTQ checkpoints in a format whose class vLLM removed, Marlin 2:4's storage, and
encoder-only models (engines/vllm_quant.py gone_format_refusal, model/params.py, model/unmodelled.py).

Read by hand in vLLM's sources (model_executor/layers/quantization/ unless a path says otherwise):
- gptq_marlin_24.py 0.13.0:208-270 create_weights, K inputs x N outputs per layer, 4 bits (pack_factor 32 // 4 = 8,
  tile_size 16): B_24 int32 [K / 16 / 2, N * 16 / 8] = K * N / 4 bytes; B_meta int16 [K / 8 / 2 / 2, N * 2] =
  K * N / 8 bytes; s [K / 128, N] in the model dtype (float16: :163-165), 1 row for group_size -1; workspace int32
  zeros (N // 128) * 64 = N / 2 words. :274-277 (0.14.1) register B_24, B_meta, s, workspace. No qzeros, no g_idx.
- 0.16.0 has no gptq_marlin_24.py or bitblas.py (0.15.0 and 0.15.1 have both, their wheels: quantization/__init__.py
  :148-150); auto_gptq.py 0.32.0:427-429 registers qweight, scales, qzeros.
"""

import json

import pytest

from tests.conftest import estimate_plan, run_kvplan
from tests.hub_configs import QWEN2_5_7B

from kvplan.engines.vllm_quant import gpu_quantization_refusal
from kvplan.model.parse import parse_config

H100 = (9, 0)
MARLIN24 = {"quant_method": "gptq", "bits": 4, "group_size": 128, "checkpoint_format": "marlin_24"}
GONE = ("vLLM removed {method} (the class for {form}) after 0.15.1, so vLLM {version} would load this checkpoint as "
        "plain GPTQ and look for GPTQ tensors (qweight, qzeros, scales) it lacks.")


def _write(tmp_path, config: dict, name: str = "config.json"):
    path = tmp_path / name
    path.write_text(json.dumps(config))
    return path


def _plan(path, *args):
    return estimate_plan(path, "-c", "512", *args)


def _checkpoint(qcfg: dict, dtype: str = "float16"):
    return parse_config({**QWEN2_5_7B, "torch_dtype": dtype, "quantization_config": qcfg}, "ckpt")


# -- 1: the format's class is gone from 0.16.0 -----------------------------------------------------------------------

def test_marlin_24_with_keys_added_is_still_refused_from_0_16(tmp_path):
    """The reviewer's m24fix: desc_act false and sym true added. 0.32.0 builds AutoGPTQ's qweight / scales / qzeros
    (auto_gptq.py 0.32.0:427-429), the checkpoint holds B_24 / B_meta / s (gptq_marlin_24.py 0.14.1:274-277)."""
    fixed = {**QWEN2_5_7B, "torch_dtype": "float16",
             "quantization_config": {**MARLIN24, "desc_act": False, "sym": True}}
    refused = _plan(_write(tmp_path, fixed), "--gpu", "H100", "--engine", "vllm==0.32.0")["engine"]["refusal"]
    assert refused["reason"] == GONE.format(method="gptq_marlin_24", form="checkpoint_format marlin_24",
                                            version="0.32.0")
    # Qwen2ForCausalLM is registered from 0.3.0 (models/__init__.py 0.3.0:40): the run starts there
    assert refused["remedy"] == "it starts with --engine vllm==0.13.0 (any release from 0.3.0 before 0.14.0)"


def test_without_keys_no_key_addition_is_offered(tmp_path):
    """The bare m24 config: before, kvplan offered "desc_act": false and "sym": true (a false start)."""
    path = _write(tmp_path, {**QWEN2_5_7B, "torch_dtype": "float16", "quantization_config": MARLIN24})
    for version in ("0.16.0", "0.32.0", "0.34.0"):
        refused = _plan(path, "--gpu", "H100", "--engine", f"vllm=={version}")["engine"]["refusal"]
        assert refused["reason"] == GONE.format(method="gptq_marlin_24", form="checkpoint_format marlin_24",
                                                version=version)
        assert "desc_act" not in refused["remedy"] and "sym" not in refused["remedy"]


def test_bfloat16_marlin_24_names_float16_on_the_old_release():
    """gptq_marlin_24.py 0.13.0 get_supported_act_dtypes [torch.half] (:93-95): 0.13.0 takes it in float16 only."""
    refused = gpu_quantization_refusal(_checkpoint(MARLIN24, "bfloat16"), H100, "0.32.0")
    assert refused.remedy == "vLLM accepts --engine vllm==0.13.0 or older with --dtype float16"


def test_bitblas_format_is_refused_from_0_16_and_0_14_keeps_the_bypass():
    """bitblas.py 0.14.1:355-357 stores qweight, scales, zeros (no qzeros); gone in 0.16.0. 0.14.x: deprecated
    (__init__.py 0.14.0:51), the existing bypass refusal."""
    spec = _checkpoint({"quant_method": "gptq", "bits": 4, "group_size": 128, "is_bitblas_format": True})
    assert gpu_quantization_refusal(spec, H100, "0.16.0").reason == GONE.format(
        method="bitblas", form="BitBLAS checkpoints", version="0.16.0")
    assert "allow-deprecated-quantization" in gpu_quantization_refusal(spec, H100, "0.14.1").reason
    assert gpu_quantization_refusal(spec, H100, "0.13.0") is None


# -- 3: encoder-only models get no KV cache ---------------------------------------------------------------------------

BERT = {"architectures": ["BertModel"], "model_type": "bert", "hidden_size": 768, "num_hidden_layers": 12,
        "num_attention_heads": 12, "intermediate_size": 3072, "vocab_size": 30522, "max_position_embeddings": 512,
        "torch_dtype": "float32"}
LLAMA = {"model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
         "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256, "max_position_embeddings": 8192,
         "torch_dtype": "bfloat16"}


def _error(tmp_path, config: dict) -> str:
    r = run_kvplan("estimate", _write(tmp_path, config), "--gpu", "H100", "-c", "512")
    assert r.returncode == 2 and r.stdout == "", r.stdout
    return r.stderr


@pytest.mark.parametrize("architecture", ["BertModel", "RobertaModel", "XLMRobertaModel", "ModernBertModel",
                                          "NomicBertModel", "BertForSequenceClassification"])
def test_bert_family_is_refused(tmp_path, architecture):
    """registry.py 0.32.0:215-328 maps these to bert.py / roberta.py / modernbert.py / bert_with_rope.py, whose layers
    are EncoderOnlyAttention (bert.py 0.32.0:266, modernbert.py :110, bert_with_rope.py :137). Before: BertModel -c 512
    on an H100 got a KV cache of 2,052,176 tokens."""
    assert f"({architecture}) is an encoder-only model" in _error(tmp_path, {**BERT, "architectures": [architecture]})


@pytest.mark.parametrize("architecture, extra, refused", [
    ("JinaEmbeddingsV5Model", {"is_decoder": False}, True),  # models/config.py 0.32.0:549-552
    ("JinaEmbeddingsV5Model", {}, False),  # is_decoder defaults true: the Qwen3 decoder variant keeps its cache
    ("LlamaNemotronVLModel", {}, True),  # is_causal = False unconditionally (:643)
    ("LlamaModel", {"is_causal": False}, True),  # llama.py 0.32.0:280
    ("Qwen3ForCausalLM", {"is_causal": False, "head_dim": 128}, True),  # qwen3.py 0.32.0:197
    ("LlamaForCausalLM", {"is_causal": True}, False),
])
def test_config_switches(tmp_path, architecture, extra, refused):
    stderr = _error(tmp_path, {**LLAMA, "architectures": [architecture], **extra}) if refused else ""
    if refused:
        assert f"({architecture}) is an encoder-only model" in stderr
    else:
        r = run_kvplan("estimate", _write(tmp_path, {**LLAMA, "architectures": [architecture], **extra}),
                       "--gpu", "H100", "-c", "512")
        assert "encoder-only" not in r.stderr


# -- 2: Marlin 2:4's storage ------------------------------------------------------------------------------------------

# a tiny Llama: 2 layers, hidden 256, MLP 512, 4 heads of 64 (2 KV heads), vocab 1,000, untied, float16
TINY = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 256, "intermediate_size": 512,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 1000,
        "max_position_embeddings": 4096, "torch_dtype": "float16", "tie_word_embeddings": False}


def _marlin24(out: int, inputs: int) -> int:
    """One 4-bit 2:4 layer, group 128 (module docstring): B_24 in*out/4, B_meta in*out/8, s (in/128)*out*2 bytes,
    workspace out/128*64 int32 words."""
    return inputs * out // 4 + inputs * out // 8 + inputs // 128 * out * 2 + out // 128 * 64 * 4


def test_marlin_24_is_priced_as_2_4_sparse_storage():
    assert _marlin24(256, 256) == 16384 + 8192 + 1024 + 512 == 26112
    assert _marlin24(128, 256) == 8192 + 4096 + 512 + 256 == 13056
    assert _marlin24(512, 256) == 32768 + 16384 + 2048 + 1024 == 52224
    assert _marlin24(256, 512) == 32768 + 16384 + 2048 + 512 == 51712
    layer = 2 * 26112 + 2 * 13056 + 2 * 52224 + 51712  # q, o; k, v; gate, up; down
    rest = 2 * 1000 * 256 * 2 + 2 * 2 * 256 * 2 + 256 * 2  # embed + lm_head, 2 norms a layer, the final norm
    spec = parse_config({**TINY, "quantization_config": MARLIN24}, "tiny")
    assert spec.weights.bytes == 2 * layer + rest == 1_495_552
    dense = parse_config({**TINY, "quantization_config": {**MARLIN24, "checkpoint_format": "gptq"}}, "tiny")
    assert dense.weights.bytes == 1_639_424  # test_s54_qcfg's dense int4 GPTQ of the same model, unchanged
