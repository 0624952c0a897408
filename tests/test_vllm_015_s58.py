"""vLLM 0.15.0 and 0.15.1 (no source release on PyPI) read in their wheels, unpacked in session 58, against what
kvplan had taken from 0.14.1 or first seen in 0.16.0. Paths are under vllm/ of the release named; the 0.15.0 and
0.15.1 files differ only in MoE kernels, Step3p5, a Whisper graph fix and the speculative config (diff -rq), none of
them read here, so a line cited for one holds for both. Each number below is read off those lines or worked by hand.

- --convert reward: ConvertType lists it in 0.15.0 and 0.15.1 (config/model.py :78), not in 0.16.0 (:77);
  _RUNNER_CONVERTS["pooling"], which the --convert none refusal prints, keeps it to 0.18.0 (:91; 0.16.0 :90), not
  0.19.0 (:96).
- SM10x dense MLA: platforms/cuda.py 0.15.0:185-239 forces FLASHINFER_MLA where qk_nope_head_dim == 128 (a block
  neither 32 nor a multiple of 64 becomes 64); 0.14.1 forces CUTLASS_MLA's 128.
- a compressed-tensors kv_cache_scheme: attention/layer.py 0.15.0:198-203 sets the layer's and the cache config's
  dtype to "fp8" whatever was asked (0.14.1 :190-198 has no such step); compressed_tensors.py 0.15.0:984 takes the
  strategies ("tensor", "attn_head") (0.14.1 :969 "tensor" only).
- AutoRound: quantization/__init__.py 0.15.0:163 maps "auto-round" to INCConfig, whose override claims quant_method
  auto-round (inc.py 0.15.0:457-464; "inc" in the overrides, config/model.py 0.15.0:899); 0.14.1 has AutoRoundConfig.
- BitBLAS / Marlin 2:4: bitblas.py and gptq_marlin_24.py are unchanged from 0.14.1 in 0.15.x, registered
  (__init__.py 0.15.0:148-150) and deprecated (:46-47); 0.16.0 has neither file.
- LoRA: registry.py 0.15.0:156 serves MistralForCausalLM from the mistral module, whose class has embedding_modules {}
  (mistral.py 0.15.0:238-240); qwen3.py 0.15.x has no embedding_modules (0.16.0:274 has); minimax_m2.py 0.15.0:487
  MiniMaxM2ForCausalLM(nn.Module, SupportsLoRA, SupportsPP) (0.14.1 :490 without SupportsLoRA).
- registry.py 0.15.0:115 adds Glm4MoeLiteForCausalLM (GLM-4.7-Flash's), absent from 0.14.1's.
- hybrid models: is_prefix_caching_supported returns False for attn_type "hybrid" (config/model.py 0.15.1:1667-1672)
  and arg_utils.py 0.15.1:1895, :1927-1928 take it as the default, so MambaModelConfig sets mamba_cache_mode "none"
  and mamba_block_size max_model_len (models/config.py 0.15.0:373-380): a state block of the whole length a request
  (kv_cache_interface.py 0.15.1:294-300, 1 + speculative blocks). From 0.28.0 the default is on (arg_utils.py
  0.28.0:2650, config/model.py :2072-2074): "align", 2 blocks (0.28.0), 3 for Mamba-2 from 0.32.0 (its prefill
  checkpoint, mamba_mixer2.py 0.32.0:1098-1108; 0.31.0's mixer has no get_kv_cache_spec of its own).
- the rest as 0.14.1: CacheConfig gpu_memory_utilization 0.9 (config/cache.py 0.15.1:51), block 16 where unset
  (platforms/cuda.py 0.15.1:160-161), get_batch_defaults identical to 0.14.1's (engine/arg_utils.py 0.15.1:1808),
  VLLM_USE_FLASHINFER_SAMPLER unset -> None (envs.py 0.15.1:691-694: the native top-k / top-p), topk_topp_sampler.py
  identical to 0.14.1's, VLLM_FUSED_MOE_CHUNK_SIZE 16384 (envs.py 0.15.1:827-828), TritonExperts.workspace_shapes
  (fused_moe.py 0.15.0:1965-1980), no VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS; PoolerConfig's fields as 0.14.1's
  (config/pooler.py identical), @config without extra="forbid" (config/utils.py: no "forbid").
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from kvplan import api
from kvplan.engines import EngineFlags
from kvplan.engines.vllm_config_read import ADDED_ARCHITECTURES
from kvplan.engines.vllm_settings import Settings, with_model_defaults
from kvplan.engines.vllm_ct_kv import STRATEGY_014, scheme_problem
from kvplan.engines.vllm_lora import LLAMA, NO_EMBEDDINGS, PRICED
from kvplan.engines.vllm_lora_classes import WITHOUT_LORA
from kvplan.engines.vllm_pooler_config import pooler_config_choice, pooler_config_refusal, release_fields
from kvplan.engines.vllm_quant import DEPRECATED_REFUSAL, gpu_quantization_refusal, vllm_method
from kvplan.engines.vllm_runner_flag import runner_refusal
from kvplan.engines.vllm_specs import dense_mla_backend, dense_mla_block
from kvplan.engines.vllm_versions import behaviour, release_rule
from kvplan.engines.vllm_wna16 import class_refusal
from kvplan.model.bundled import find_bundled, load_bundled
from kvplan.model.parse import parse_config
from tests.checkpoints import checkpoint_folder
from tests.conftest import estimate_plan, load_yaml
from tests.hub_configs import LLAMA3_8B

ROOT = Path(__file__).resolve().parents[1]
QWEN3_8B = dict(load_yaml((ROOT / "model_specs" / "Qwen--Qwen3-8B.yaml").read_text())["config"])
H100, B200 = (9, 0), (10, 0)


def _qwen3(runner: str = "auto", convert: str = "auto"):
    spec = parse_config(dict(QWEN3_8B), "Qwen3ForCausalLM")
    return EngineFlags(runner=runner, convert=convert).with_runner(spec)


def _bundled(model: str):
    return load_bundled(find_bundled(model))[1]


def _engine(model: str, version: str, *args) -> dict:
    return estimate_plan(model, "--engine", f"vllm=={version}", *args)["engine"]


# ---- --runner / --convert ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("version, refused", [("0.14.1", False), ("0.15.0", False), ("0.15.1", False),
                                              ("0.16.0", True)])
def test_convert_reward_is_a_choice_through_0_15(version, refused):
    said = runner_refusal(_qwen3("pooling", "reward"), version) or ""
    assert ("refuses --convert reward" in said) is refused, said


@pytest.mark.parametrize("version, listed", [("0.15.1", True), ("0.16.0", True), ("0.18.0", True),
                                             ("0.19.0", False)])
def test_the_convert_none_refusal_lists_reward_to_0_18(version, listed):
    said = runner_refusal(_qwen3("pooling", "none"), version)
    assert ("--convert <embed|classify|reward>" if listed else "--convert <embed|classify>") in said


# ---- dense MLA on SM10x --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("version, backend, block", [("0.14.1", "CUTLASS_MLA", 128), ("0.15.0", "FLASHINFER_MLA", 64),
                                                     ("0.15.1", "FLASHINFER_MLA", 64)])
def test_sm10x_forces_flashinfer_mla_from_0_15(version, backend, block):
    assert dense_mla_backend(False, version, B200) == backend
    assert dense_mla_block(None, False, version, B200) == block
    assert dense_mla_block(96, False, version, B200) == (64 if block == 64 else 128)  # 96: not a multiple of 64
    assert dense_mla_block(32, False, version, B200) == (32 if block == 64 else 128)  # FLASHINFER_MLA keeps 32


def test_deepseek_v2_lite_on_a_b200_pages_at_64_from_0_15():
    """27 MLA layers x (kv_lora_rank 512 + rope 64) x 2 bytes = 31,104 bytes a token, so a block of 64 tokens takes
    1,990,656 bytes and 128 twice that; the blocks are the available bytes over that."""
    old, new = (_engine("deepseek-ai/DeepSeek-V2-Lite", version, "--gpu", "b200", "-c", "32768")
                for version in ("0.14.1", "0.15.1"))
    assert (old["block_size"], new["block_size"]) == (128, 64)
    assert new["num_gpu_blocks"] == new["available_kv_cache_bytes"] // (64 * 31_104)
    assert old["num_gpu_blocks"] == old["available_kv_cache_bytes"] // (128 * 31_104)


# ---- compressed-tensors kv_cache_scheme ---------------------------------------------------------------------------

FP8_GROUP = {"num_bits": 8, "type": "float", "strategy": "tensor", "dynamic": False, "symmetric": True}
CT_FP8 = {"quant_method": "compressed-tensors", "format": "float-quantized", "ignore": ["lm_head"],
          "config_groups": {"group_0": {"targets": ["Linear"], "weights": FP8_GROUP, "input_activations": FP8_GROUP}},
          "kv_cache_scheme": dict(FP8_GROUP)}
BF16_TOKEN, FP8_TOKEN = 32 * 2 * 8 * 128 * 2, 32 * 2 * 8 * 128  # Llama-3-8B: layers x K, V x KV heads x head dim


@pytest.mark.parametrize("version, token_bytes", [("0.14.1", BF16_TOKEN), ("0.15.0", FP8_TOKEN),
                                                  ("0.15.1", FP8_TOKEN)])
def test_a_kv_cache_scheme_makes_any_asked_dtype_fp8_from_0_15(tmp_path, version, token_bytes):
    folder = checkpoint_folder(tmp_path, {**LLAMA3_8B, "quantization_config": CT_FP8})
    for asked in ("auto", "bfloat16"):
        plan = estimate_plan(folder, "-c", "8192", "--gpu", "h100", "--engine", f"vllm=={version}",
                             "--kv-cache-dtype", asked)
        assert plan["kv_bytes_per_token"] == token_bytes, (version, asked)


@pytest.mark.parametrize("version, refused", [("0.14.1", True), ("0.15.0", False), ("0.15.1", False)])
def test_the_attn_head_strategy_passes_from_0_15(version, refused):
    scheme = (("type", "float"), ("num_bits", 8), ("strategy", "attn_head"), ("symmetric", True))
    assert scheme_problem(scheme, version) == (STRATEGY_014.format(strategy="attn_head") if refused else "")


# ---- weight quantisation ------------------------------------------------------------------------------------------

def _checkpoint(fields: dict):
    return SimpleNamespace(quantization=fields["quant_method"], quantization_asked="", dtype="fp16",
                           quantization_fields=tuple(fields.items()), model_type="llama", params=())


def test_an_auto_round_checkpoint_runs_as_inc_from_0_15():
    spec = _checkpoint({"quant_method": "auto-round", "bits": 4, "group_size": 128, "sym": True})
    assert vllm_method(spec, H100, "0.14.1") == "auto-round"
    assert vllm_method(spec, H100, "0.15.0") == "inc" == vllm_method(spec, H100, "0.15.1")
    assert class_refusal(spec, "inc", "0.15.0") is None  # AutoRound's INCConfig, not Intel Gaudi's
    assert "Intel Gaudi" in class_refusal(spec, "inc", "0.14.1")


def test_a_marlin_24_checkpoint_keeps_its_class_through_0_15_1():
    spec = _checkpoint({"quant_method": "gptq", "bits": 4, "group_size": 128, "checkpoint_format": "marlin_24"})
    assert vllm_method(spec, H100, "0.15.1") == "gptq_marlin_24"
    assert gpu_quantization_refusal(spec, H100, "0.15.1").reason == DEPRECATED_REFUSAL.format(method="gptq_marlin_24")
    assert gpu_quantization_refusal(spec, H100, "0.16.0").reason.startswith(
        "vLLM removed gptq_marlin_24 (the class for checkpoint_format marlin_24) after 0.15.1,")


# ---- LoRA ----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("architecture, version, layout", [
    ("MistralForCausalLM", "0.14.1", LLAMA), ("MistralForCausalLM", "0.15.0", NO_EMBEDDINGS),
    ("Qwen3ForCausalLM", "0.15.1", NO_EMBEDDINGS), ("Qwen3ForCausalLM", "0.16.0", LLAMA),
])
def test_lora_layouts_by_release(architecture, version, layout):
    assert release_rule(PRICED[architecture], version) == layout


def test_minimax_m2_takes_lora_from_0_15():
    assert WITHOUT_LORA["MiniMaxM2ForCausalLM"] == ("0.15.0", "MiniMaxM2ForCausalLM")


# ---- the registry --------------------------------------------------------------------------------------------------

def test_glm_4_7_flash_is_served_from_0_15():
    assert ADDED_ARCHITECTURES["Glm4MoeLiteForCausalLM"] == "0.15.0"
    old = api.estimate("zai-org/GLM-4.7-Flash", gpu="h100", max_model_len=32768, engine="vllm==0.14.1")[0]
    assert not old.engine.starts and "not supported for now" in old.engine.refusal.reason
    assert "v0.15.0" in old.engine.refusal.reason
    assert api.estimate("zai-org/GLM-4.7-Flash", gpu="h100", max_model_len=32768, engine="vllm==0.15.0")[0].fits


# ---- hybrid models' prefix caching --------------------------------------------------------------------------------

def test_a_hybrid_starts_without_prefix_caching_before_0_28():
    hybrid, dense = _bundled("nvidia/Nemotron-H-8B-Base-8K"), _bundled("Qwen/Qwen3-8B")
    on = Settings(8192, 8192, 256, 2, prefix_caching=True)
    assert with_model_defaults(hybrid, on, "0.15.1").prefix_caching is False
    assert with_model_defaults(hybrid, on, "0.27.1").prefix_caching is False
    assert with_model_defaults(hybrid, on, "0.28.0").prefix_caching is True
    assert with_model_defaults(dense, on, "0.15.1").prefix_caching is True


@pytest.mark.parametrize("version, block, per_request", [
    ("0.15.1", 528, 16 + 6 * 1), ("0.27.1", 1040, 8 + 6 * 1), ("0.28.0", 1040, 8 + 6 * 2), ("0.31.0", 1040, 8 + 6 * 2),
    ("0.32.0", 1040, 8 + 6 * 3)])
def test_nemotron_h_8b_blocks_a_request_by_release(version, block, per_request):
    """Nemotron-H-8B-Base-8K at tp 1, bf16, 8,192 tokens: a Mamba-2 state is conv (8,192 + 2 x 8 x 128 = 10,240
    channels x 3 taps x 2 B = 61,440) + SSM (128 heads x 64 x 128 = 1,048,576 values) in the dtype vLLM's NemotronH
    config handler picks for a config that names none: float16 in 0.13-0.19 (models/config.py 0.15.1:573-582), so
    2,097,152 + 61,440 = 2,158,592 bytes; float32 from 0.20 (DEFAULT_MAMBA_SSM_CACHE_DTYPE, 0.20.0:410), so
    4,194,304 + 61,440 = 4,255,744. An attention token is 2 x 8 x 128 x 2 = 4,096 bytes, so the block is
    16 x cdiv(2,158,592, 16 x 4,096) = 528 tokens (float16) or 16 x cdiv(4,255,744, 16 x 4,096) = 1,040 (float32).
    Four attention layers and 24 Mamba-2 layers: groups of 4, one attention group (cdiv(8,192, 528) = 16 blocks,
    cdiv(8,192, 1,040) = 8) and six Mamba groups (1 block each with prefix caching off, 2 in "align", 3 with
    Mamba-2's checkpoint)."""
    engine = _engine("nvidia/Nemotron-H-8B-Base-8K", version, "--gpu", "h100")
    assert (engine["block_size"], engine["num_kv_cache_groups"]) == (block, 7)
    assert engine["blocks_per_request"] == per_request
    assert engine["max_concurrency"] == pytest.approx(engine["num_gpu_blocks"] / per_request)


# ---- pooler config and the release's other defaults ---------------------------------------------------------------

POOLER_015 = ("pooling_type", "seq_pooling_type", "tok_pooling_type", "normalize", "dimensions",
              "enable_chunked_processing", "max_embed_len", "softmax", "activation", "use_activation", "logit_bias",
              "step_tag_id", "returned_token_ids")  # config/pooler.py 0.15.0 and 0.15.1 :26-101


def test_pooler_config_fields_and_unknown_names_in_0_15():
    for version in ("0.15.0", "0.15.1"):
        assert sorted(release_fields(version)) == sorted(POOLER_015)
    pooled = EngineFlags(runner="pooling").with_runner(_bundled("Qwen/Qwen3-8B"))
    spec = replace(pooled, pooler_config=pooler_config_choice('{"pooling_typ": "MEAN"}'))
    assert pooler_config_refusal(spec, "0.15.1") is None  # ignored, as 0.14.1's pydantic dataclass does
    assert pooler_config_refusal(spec, "0.16.0") is not None


def test_0_15s_other_rules_are_0_14s():
    old, new = behaviour("0.14.1"), behaviour("0.15.1")
    assert new == old == behaviour("0.15.0")
    assert (new.default_gpu_util, new.block_size, new.batch_defaults) == (0.9, 16, "0.9")
    assert (new.v1_sampler, new.topk_topp, new.moe_buffers, new.moe_chunk_tokens) == ("native", "sort", "workspace",
                                                                                      16384)
    assert (new.graphs_subtracted, new.tokens_rule, new.null_block_in_check) == (False, "blocks_per_group", False)
