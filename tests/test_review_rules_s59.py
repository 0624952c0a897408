"""Session 59 review, engine rules (review defects 1, 3, 5 and 6), held to vLLM's source read by hand (unpacked
sdists, vllm-X/vllm/...; 0.15.x from wheels) and to hand arithmetic.

1. The Mamba SSM state's dtype. --mamba-ssm-cache-dtype is 'auto' by default (config/cache.py 0.11.0:100,
   0.34.0:310): the model dtype (mamba_utils.py _mamba_state_dtype, 0.12.0:57-63), unless a config handler picked by
   the architecture (config/vllm.py try_verify_and_update_config, 0.13.0:1232-1242) sets it. NemotronHForCausalLMConfig
   sets it to the config's own mamba_ssm_cache_dtype, else to getattr's default: "float16" from 0.13.0 (models/config.py
   0.13.0:500-510, map :530; 0.15.1:573-582; 0.19.1:491-500), "float32" from 0.20.0 (DEFAULT_MAMBA_SSM_CACHE_DTYPE
   0.20.0:410, 0.34.0:1144). 0.11.x-0.12.0 have no such handler (models/config.py 0.12.0 names no NemotronH).
   NemotronHPuzzleForCausalLM joins the map in 0.16.0 (:613); NemotronH_Nano_VL_V2 is mapped from 0.18.0 to a
   handler that only sets a video backend (0.18.0:434-440, :668) and updates the dtype from its text_config from
   0.20.0 (:439-445).
   Nemotron-H-8B at tp 1 (bf16; hub_configs.NEMOTRON_H_8B): a Mamba-2 state is a conv window of (64 x 128 + 2 x 8 x
   128) = 10,240 channels x 3 taps x 2 B = 61,440 B plus 128 heads x 64 x 128 = 1,048,576 SSM values: x 2 B =
   2,097,152 (2,158,592 in all) or x 4 B = 4,194,304 (4,255,744). An attention token is 2 x 8 x 128 x 2 B = 4,096 B,
   so the block is 16 x cdiv(2,158,592, 65,536) = 16 x 33 = 528 tokens or 16 x cdiv(4,255,744, 65,536) = 16 x 65 =
   1,040; 28 cache layers in 7 groups of 4 (1 attention, 6 Mamba), so a block of the pool is 4 pages: 4 x 528 x
   4,096 = 8,650,752 B or 4 x 1,040 x 4,096 = 17,039,360 B. At 8,192 tokens with prefix caching off (before 0.28)
   a request holds cdiv(8,192, 528) = 16 + 6 = 22 blocks, or cdiv(8,192, 1,040) = 8 + 6 = 14.
   Nemotron-3-Nano (benchmarks/configs, mamba_ssm_cache_dtype "float32" in its config.json): 64 heads x 64 x 128 =
   524,288 SSM values, conv (64 x 64 + 2 x 8 x 128) x 3 x 2 B = 36,864 B; an attention token 2 x 2 x 128 x 2 B =
   1,024 B: float32 gives 16 x cdiv(2,134,016, 16,384) = 16 x 131 = 2,096 tokens, bf16 16 x cdiv(1,085,440, 16,384) =
   16 x 67 = 1,072.
3. Dense MLA on SM10x: 0.15.0-0.17.1 force FLASHINFER_MLA only where qk_nope_head_dim == 128 (platforms/cuda.py
   0.15.0:188-204, 0.17.0:208-224), else CUTLASS_MLA, whose block is a multiple of 128 (:225-229). From 0.18 the block
   is the chosen backend's preferred one; FLASHINFER_MLA refuses qk_nope_head_dim outside [64, 128] in 0.18.x
   (flashinfer_mla.py 0.18.0:80-90) and outside [64, 128, 192] from 0.19.0 (0.19.0:80-90, 0.34.0:240-248); the next
   SM10x backend is CUTLASS_MLA (cuda.py 0.18.0:68-69, kernel blocks [128], cutlass_mla.py 0.18.0:49-50).
   GLM-4.7-Flash: qk_nope_head_dim 192, 47 MLA layers x (512 + 64) x 2 B = 54,144 B a token.
5. --convert reward: from 0.13.0 _get_convert_type warns "`--convert reward` is deprecated and will be removed in
   v0.15. Please use `--convert embed` instead." and returns "embed" (config/model.py 0.13.0:813-818, 0.15.0:857-862);
   0.12.0 builds as_reward_model (model_loader/utils.py 0.12.0:210-212).
6. --convert mm_encoder_only: ConvertType lists it in 0.14.0-0.15.1 (config/model.py 0.14.0:78, 0.15.1:78; 0.13.0:74
   and 0.16.0:77 do not). 0.14: as_mm_encoder_only_model returns a class without embed_multimodal unchanged
   (adapters.py 0.14.0:534-540); 0.15: "--convert mm_encoder_only is deprecated", convert becomes "none" and
   mm_encoder_only reaches only a multimodal model's config (config/model.py 0.15.0:502-509, :577-597). A text model is
   served as with --convert none; a multimodal one loses its language model (an encoder instance, no KV cache)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from kvplan.engines import EngineFlags
from kvplan.engines.vllm_mamba_state import ssm_state_dtype
from kvplan.engines.vllm_pooling import pooling_note
from kvplan.engines.vllm_runner_flag import convert_choice, runner_refusal
from kvplan.engines.vllm_specs import dense_mla_backend, dense_mla_block
from kvplan.model.parse import parse_config
from kvplan.model.sources import resolve
from tests.conftest import estimate_plan
from tests.hub_configs import NEMOTRON_H_8B

ROOT = Path(__file__).resolve().parents[1]
NEMOTRON_H = "nvidia/Nemotron-H-8B-Base-8K"
NANO = str(ROOT / "benchmarks/configs/nvidia--NVIDIA-Nemotron-3-Nano-30B-A3B-BF16.json")
GLM_FLASH = "zai-org/GLM-4.7-Flash"
B200 = (10, 0)


def _engine(model: str, version: str, *args) -> dict:
    return estimate_plan(model, "--engine", f"vllm=={version}", *args)["engine"]


# ---- 1. the SSM state's dtype --------------------------------------------------------------------------------------

@pytest.mark.parametrize("version, dtype, logged", [
    ("0.11.0", "bf16", None), ("0.12.0", "bf16", None),  # no NemotronH handler: 'auto', the model dtype
    ("0.13.0", "fp16", "float16"), ("0.15.1", "fp16", "float16"), ("0.19.1", "fp16", "float16"),
    ("0.20.0", "fp32", "float32"), ("0.32.0", "fp32", "float32"), ("0.34.0", "fp32", "float32"),
])
def test_nemotron_h_ssm_state_dtype_by_release(version, dtype, logged):
    said, line = ssm_state_dtype(resolve(NEMOTRON_H), version)
    assert said == dtype
    assert line == (f"Updating mamba_ssm_cache_dtype to '{logged}' for NemotronH model" if logged else "")


@pytest.mark.parametrize("version, block, per_request", [
    ("0.11.0", 528, 22), ("0.12.0", 528, 22), ("0.15.1", 528, 22), ("0.19.1", 528, 22), ("0.20.0", 1040, 14),
])
def test_nemotron_h_8b_on_an_h100_at_8k(version, block, per_request):
    engine = _engine(NEMOTRON_H, version, "--gpu", "h100", "-c", "8K")
    assert (engine["block_size"], engine["blocks_per_request"]) == (block, per_request)
    assert engine["num_gpu_blocks"] == engine["available_kv_cache_bytes"] // (4 * block * 4096)
    assert engine["max_concurrency"] == pytest.approx(engine["num_gpu_blocks"] / per_request)
    if version == "0.15.1":  # the review's re-run: 3,204 blocks and 228.9 at float32 before
        assert (engine["num_gpu_blocks"], round(engine["max_concurrency"], 2)) == (6311, 286.86)


@pytest.mark.parametrize("version, block, logged", [("0.12.0", 1072, False), ("0.15.1", 2096, True),
                                                    ("0.20.0", 2096, True)])
def test_the_configs_own_ssm_dtype_where_the_handler_runs(version, block, logged):
    engine = _engine(NANO, version, "--gpu", "h200", "-c", "8K")
    assert engine["block_size"] == block
    assert ("Updating mamba_ssm_cache_dtype to 'float32' for NemotronH model" in engine["log_lines"]) is logged


def test_the_config_is_read_as_written():
    def spec(value):
        return parse_config({**NEMOTRON_H_8B, "mamba_ssm_cache_dtype": value}, NEMOTRON_H)

    assert spec("float16").ssm_cache_dtype == "float16" and parse_config(dict(NEMOTRON_H_8B), "x").ssm_cache_dtype == ""
    assert spec("fp32").ssm_cache_dtype == ""  # not a MambaDType: not read
    assert ssm_state_dtype(spec("float16"), "0.20.0")[0] == "fp16"  # the config before the 0.20 default
    assert ssm_state_dtype(spec("auto"), "0.20.0") == ("bf16", "Updating mamba_ssm_cache_dtype to 'auto' for "
                                                               "NemotronH model")
    assert ssm_state_dtype(spec("float32"), "0.12.0")[0] == "bf16"  # no handler reads it


def test_the_handler_by_architecture_and_release():
    base = resolve(NEMOTRON_H)
    puzzle = replace(base, architecture="NemotronHPuzzleForCausalLM")
    assert [ssm_state_dtype(puzzle, v)[0] for v in ("0.15.1", "0.16.0", "0.20.0")] == ["bf16", "fp16", "fp32"]
    vl = replace(base, registered_architecture="NemotronH_Nano_VL_V2")
    assert [ssm_state_dtype(vl, v)[0] for v in ("0.15.1", "0.19.1", "0.20.0")] == ["bf16", "bf16", "fp32"]
    other = replace(base, architecture="GraniteMoeHybridForCausalLM", ssm_cache_dtype="float32")
    assert ssm_state_dtype(other, "0.34.0") == ("bf16", "")  # no handler of its own: 'auto'


# ---- 3. dense MLA on SM10x by qk_nope_head_dim --------------------------------------------------------------------

@pytest.mark.parametrize("version, nope_192, nope_128, nope_64", [
    ("0.14.1", "CUTLASS_MLA", "CUTLASS_MLA", "CUTLASS_MLA"),
    ("0.15.0", "CUTLASS_MLA", "FLASHINFER_MLA", "CUTLASS_MLA"),
    ("0.17.1", "CUTLASS_MLA", "FLASHINFER_MLA", "CUTLASS_MLA"),
    ("0.18.0", "CUTLASS_MLA", "FLASHINFER_MLA", "FLASHINFER_MLA"),
    ("0.18.1", "CUTLASS_MLA", "FLASHINFER_MLA", "FLASHINFER_MLA"),
    ("0.19.0", "FLASHINFER_MLA", "FLASHINFER_MLA", "FLASHINFER_MLA"),
    ("0.34.0", "FLASHINFER_MLA", "FLASHINFER_MLA", "FLASHINFER_MLA"),
])
def test_sm10x_dense_mla_backend_by_qk_nope(version, nope_192, nope_128, nope_64):
    assert [dense_mla_backend(False, version, B200, nope) for nope in (192, 128, 64)] == [nope_192, nope_128, nope_64]
    assert dense_mla_backend(False, version, B200, 1) == "CUTLASS_MLA"  # a config without the key: getattr's 1


@pytest.mark.parametrize("version, block", [("0.15.0", 128), ("0.16.0", 128), ("0.17.1", 128), ("0.18.0", 128),
                                            ("0.18.1", 128), ("0.19.0", 32), ("0.33.0", 32), ("0.34.0", 64)])
def test_glm_4_7_flash_on_a_b200(version, block):
    assert resolve(GLM_FLASH).layers[0].qk_nope_head_dim == 192
    engine = _engine(GLM_FLASH, version, "--gpu", "b200", "-c", "32K")
    assert engine["block_size"] == block and engine["blocks_per_request"] == 32768 // block
    if version != "0.34.0":  # 0.34 sizes the pool after warmup (its extensible KV cache), not by this division
        assert engine["num_gpu_blocks"] == engine["available_kv_cache_bytes"] // (block * 54_144)


def test_a_given_block_for_cutlass_mla():
    assert dense_mla_block(64, False, "0.15.0", B200, 192) == 128  # forced: not a multiple of 128
    assert dense_mla_block(256, False, "0.17.1", B200, 192) == 256
    assert dense_mla_block(64, False, "0.18.0", B200, 192) == 64  # from 0.18 --block-size is kept
    assert dense_mla_block(None, False, "0.18.0", B200, 128) == 32  # FLASHINFER_MLA's preferred, as before


# ---- 5. --convert reward from 0.13 --------------------------------------------------------------------------------

def _qwen3(runner: str = "auto", convert: str = "auto"):
    return EngineFlags(runner=runner, convert=convert).with_runner(resolve("Qwen/Qwen3-8B"))


@pytest.mark.parametrize("version, adapter, warned", [("0.12.0", "reward", False), ("0.13.0", "embed", True),
                                                      ("0.15.1", "embed", True)])
def test_the_reward_note_says_what_vllm_does(version, adapter, warned):
    note = pooling_note(_qwen3("pooling", "reward"), version)
    assert f"converts it with its {adapter} adapter" in note
    assert ("warns that --convert reward is deprecated" in note) is warned


# ---- 6. --convert mm_encoder_only ---------------------------------------------------------------------------------

def test_mm_encoder_only_is_a_choice_kvplan_takes():
    assert convert_choice("mm_encoder_only") == "mm_encoder_only"


@pytest.mark.parametrize("version, refused", [("0.13.0", "auto, none, embed, classify, reward ("),
                                              ("0.14.0", None), ("0.14.1", None), ("0.15.0", None), ("0.15.1", None),
                                              ("0.16.0", "auto, none, embed, classify (")])
def test_mm_encoder_only_by_release_for_a_text_model(version, refused):
    said = runner_refusal(_qwen3(convert="mm_encoder_only"), version)
    if refused is None:
        assert said is None
    else:
        assert f"vLLM {version} refuses --convert mm_encoder_only: its choices are {refused}" in said


def test_a_text_model_under_mm_encoder_only_is_planned_as_under_none():
    for version in ("0.14.0", "0.15.0"):
        asked = _engine("Qwen/Qwen3-8B", version, "--gpu", "h100", "-c", "8K", "--convert", "mm_encoder_only")
        plain = _engine("Qwen/Qwen3-8B", version, "--gpu", "h100", "-c", "8K", "--convert", "none")
        assert json.dumps(asked, sort_keys=True) == json.dumps(plain, sort_keys=True)
    said = runner_refusal(_qwen3("pooling", "mm_encoder_only"), "0.14.0")  # ModelConfig: not a pooling converter
    assert "refuses Qwen3ForCausalLM with --runner pooling and --convert mm_encoder_only" in said


def test_a_multimodal_model_under_mm_encoder_only_is_not_planned():
    gemma = resolve("google/gemma-3-27b-it")
    assert gemma.multimodal
    for version in ("0.14.0", "0.15.1"):
        said = runner_refusal(EngineFlags(convert="mm_encoder_only").with_runner(gemma), version)
        assert said.startswith("kvplan does not plan Gemma3ForConditionalGeneration with --convert mm_encoder_only")
        assert "keeps no KV cache" in said
    pooled = runner_refusal(EngineFlags(runner="pooling", convert="mm_encoder_only").with_runner(gemma), "0.15.1")
    assert "This model does not support `--runner pooling`" in pooled  # vLLM's check comes first
