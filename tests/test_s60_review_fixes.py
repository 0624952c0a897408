"""Fixes of the s60 review's findings, each pinned to the vLLM source line that decides it (sources read by hand:
the unpacked sdists of each release; 0.34.0 also imported, CPU torch).

1. Mamba "all" mode is a property of the class the registry resolves an architecture to.
2. --block-size: the release's argparse choices up to 0.17, from 0.18 any int an attention backend takes.
3. GritLM is encoder-only from 0.10.2.
4. GritLM generates too; JambaForSequenceClassification's generate refusal names the right reason.
5. --pooler-config integers as strict as vLLM's pydantic.
6. The `requests` column: what the engine holds at once, with vLLM's logged figure beside it where they differ.
"""

from __future__ import annotations

import json

import pytest

from conftest import run_kvplan
from hub_configs import LLAMA3_8B

from kvplan import api
from kvplan.model.bundled import find_bundled, load_bundled

NEMOTRON_H = "nvidia/Nemotron-H-8B-Base-8K"
JAMBA = "ai21labs/AI21-Jamba-1.5-Mini"
LLAMA = "meta-llama/Llama-3.1-8B-Instruct"


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _bundled_as(model: str, architecture: str, tmp_path, **fields):
    """The bundled model's config.json under another architecture name (a folder for api.estimate)."""
    config = {**load_bundled(find_bundled(model))[0]["config"], "architectures": [architecture], **fields}
    folder = tmp_path / architecture
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    return str(folder)


def _engine(model, version: str, tp: int = 1, **kwargs):
    (plan,) = api.estimate(model, gpu="h100", max_model_len=8192, engine=f"vllm=={version}",
                           tensor_parallel_size=tp, **kwargs)
    return plan.engine


# ---- 1. Mamba "all" mode by the resolved class ---------------------------------------------------------------------
# vLLM asks the resolved class (supports_mamba_prefix_caching(model), model_executor/models/registry.py 0.14.1:594).
# JambaForSequenceClassification(JambaForCausalLM) (jamba.py 0.14.1:576, 0.20.0:584) inherits SupportsMambaPrefixCaching
# (JambaForCausalLM's bases, jamba.py 0.20.0:463). It is a pooling model (registry.py 0.14.1:213, 0.20.0:318) with
# LAST pooling, so prefix caching stays on and "all" mode applies: the same cache as JambaForCausalLM --runner pooling
# --convert classify. Jamba-1.5-Mini at tp 2 (test_mamba_all_mode_s59's arithmetic): a state 155,648 B over 2,048 B a
# token, chunk 2048 (Jamba has no chunk field: vLLM's default), block lcm(2048, 16) x 1 = 2,048; per request 8 groups
# x cdiv(8,192, 2,048) = 32. Before: block 80 (align mode) in 0.20.0; prefix caching off in 0.14.1.
@pytest.mark.parametrize("version", ["0.14.1", "0.20.0"])
def test_jamba_sequence_classification_runs_all_mode(tmp_path, version):
    seq = _engine(_bundled_as(JAMBA, "JambaForSequenceClassification", tmp_path, num_labels=1), version, tp=2)
    lm = _engine(JAMBA, version, tp=2, runner="pooling", convert="classify")
    assert (seq.block_size, seq.blocks_per_request) == (2048, 8 * _cdiv(8192, 2048))
    assert (seq.block_size, seq.blocks_per_request, seq.num_gpu_blocks) == \
        (lm.block_size, lm.blocks_per_request, lm.num_gpu_blocks)


# NemotronHPuzzleForCausalLM -> ("nemotron_h", "NemotronHForCausalLM") (registry.py 0.16.0:168, 0.20.0:177): the same
# class, so the same "all" block as Nemotron-H-8B on the pooling runner (test_mamba_all_mode_s59: 1,152 in 0.20.0, 7
# groups x cdiv(8,192, 1,152) = 56 a request), not align mode's 1,040.
def test_nemotron_h_puzzle_runs_all_mode(tmp_path):
    puzzle = _engine(_bundled_as(NEMOTRON_H, "NemotronHPuzzleForCausalLM", tmp_path), "0.20.0", runner="pooling")
    assert (puzzle.block_size, puzzle.blocks_per_request) == (1152, 7 * _cdiv(8192, 1152))


# ---- 2. --block-size from 0.18 ---------------------------------------------------------------------------------------
# config/cache.py 0.18.0:36 types block_size int (SkipValidation[int]); the selector passes a block given by hand to
# every backend (v1/attention/selector.py 0.18.0:74), which takes it where one of its kernel block sizes divides it
# (v1/attention/backend.py 0.18.0:170-186): FLASH_ATTN MultipleOf(16) (flash_attn.py 0.18.0:91), TRITON_ATTN
# MultipleOf(16) (triton_attn.py 0.18.0:274-275, 0.34.0:339-340). No backend -> "No valid attention backend found"
# (platforms/cuda.py 0.18.0:282). FLEX_ATTENTION lists no kernel block in 0.18-0.20 (base [MultipleOf(1)],
# backend.py 0.18.0:65) and takes 16-bit caches only (flex_attention.py 0.18.0:83-87); MultipleOf(16) from 0.21
# (flex_attention.py 0.21.0:143-144).
def test_a_block_kvplan_itself_suggests_is_taken():
    """Nemotron-H-8B --runner pooling on 0.19.1 at --block-size 2048 is told to start with 640 or less
    (test_mamba_all_mode_s59); 640 = 40 x 16 is a block vLLM 0.19.1's argparse and backends take."""
    e = _engine(NEMOTRON_H, "0.19.1", runner="pooling", block_size=640)
    assert e.starts and e.block_size == 640


@pytest.mark.parametrize("version, block, remedy", [
    ("0.34.0", 48, ""),  # FLASH_ATTN MultipleOf(16): 48 = 3 x 16
    ("0.25.0", 24, "16, 32"),  # no backend takes 24 (Flex MultipleOf(16) from 0.21): the multiples of 16 around it
    ("0.21.0", 40, "32, 48"),
    ("0.34.0", 1, "16"),
    ("0.20.0", 40, ""),  # FLEX_ATTENTION, bf16 cache
    ("0.18.0", 8, ""),
])
def test_blocks_from_018_by_the_backends(version, block, remedy):
    e = _engine(LLAMA, version, block_size=block)
    assert e.starts == (not remedy)
    if not remedy:
        assert e.block_size == block
    else:
        assert e.refusal.configuration and e.refusal.field == "block_size"
        assert e.refusal.reason.startswith(f"No valid attention backend found for block size {block}:")
        assert e.refusal.remedy == f"it starts with block_size {remedy}"


def test_flex_takes_no_fp8_cache():
    """flex_attention.py 0.18.0:83-87: auto, float16, bfloat16 only; FLASH_ATTN and TRITON_ATTN want 16's multiples."""
    (plan,) = api.estimate(LLAMA, gpu="h100", max_model_len=8192, engine="vllm==0.20.0", block_size=40,
                           kv_cache_dtype="fp8")
    assert not plan.engine.starts and plan.engine.refusal.field == "block_size"


def test_a_hybrid_block_raised_before_selection_in_019():
    """A Mamba hybrid's block is raised to hold a state in VllmConfig.__post_init__ (config/vllm.py 0.18.0:669,
    models/config.py 0.18.0:135-149) before the layers pick backends: --block-size 40 becomes 528 (Nemotron-H
    generate runner, a state in 33 x 16 tokens) in 0.19.1; from 0.20 the raise comes after the selection
    (platforms/interface.py 0.20.0:499) and the selector sees 40 (refused from 0.21)."""
    assert _engine(NEMOTRON_H, "0.19.1", block_size=40).block_size == 528
    assert not _engine(NEMOTRON_H, "0.21.0", block_size=40).starts


@pytest.mark.parametrize("version", ["0.11.1", "0.17.1"])
def test_before_018_the_choices_rule(version):
    """config/cache.py 0.11.1:23, 0.17.1:22: BlockSize 1, 8, 16, 32, 64, 128, 256."""
    from kvplan.errors import FieldError

    with pytest.raises(FieldError, match="640 is not a choice of vLLM"):
        _engine(NEMOTRON_H, version, runner="pooling", block_size=640)


def test_the_cli_takes_any_positive_block(write_config):
    """48 was refused as "not a power of two" whatever the release; 0.34.0 starts with it (FLASH_ATTN above)."""
    result = run_kvplan("estimate", write_config(LLAMA3_8B), "--engine", "vllm==0.34.0", "--block-size", "48",
                        "--format", "json")
    assert result.returncode == 0 and json.loads(result.stdout)["plans"][0]["engine"]["block_size"] == 48


# ---- 3. GritLM encoder-only from 0.10.2; Llama / Qwen2's is_causal from 0.10.1 --------------------------------------
GRITLM = {"architectures": ["GritLM"], "model_type": "mistral", "hidden_size": 4096, "intermediate_size": 14336,
          "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128,
          "max_position_embeddings": 32768, "vocab_size": 32000, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
          "sliding_window": None, "tie_word_embeddings": False, "torch_dtype": "bfloat16", "hidden_act": "silu"}


def _encoder_only(config: dict, version: str, write_config, *flags) -> bool:
    result = run_kvplan("estimate", write_config(config), "--gpu", "h100", "-c", "8192", "--engine",
                        f"vllm=={version}", *flags)
    return result.returncode == 2 and "is an encoder-only model" in result.stderr


@pytest.mark.parametrize("version, encoder_only", [
    # gritlm.py 0.10.1:218 GritLM(LlamaForCausalLM, SupportsV0Only): V0, a cache for every layer
    ("0.10.1", False),
    # gritlm.py 0.10.2:219 no SupportsV0Only; :245-247 is_causal False on the pooling runner (its default: registry
    # is_pooling_model first, config/__init__.py 0.10.2:936-939); llama.py 0.10.2:193-194, :271-274
    # EncoderOnlyAttention; v1/worker/gpu_model_runner.py 0.10.2:3692-3694 no cache for it
    ("0.10.2", True),
    ("0.11.0", True),
])
def test_gritlm_is_encoder_only_from_0102(write_config, version, encoder_only):
    assert _encoder_only(GRITLM, version, write_config) == encoder_only


@pytest.mark.parametrize("version, encoder_only", [
    ("0.10.0", False),  # not modelled: 0.10.0's V1 FlashAttentionImpl raises for it (flash_attn.py 0.10.0:378-382)
    # llama.py 0.10.1:251-254 ENCODER_ONLY; flash_attn.py 0.10.1:393 runs it; gpu_model_runner.py 0.10.1:3256-3258
    ("0.10.1", True),
])
def test_llama_is_causal_false_from_0101(write_config, version, encoder_only):
    config = {**GRITLM, "architectures": ["LlamaForCausalLM"], "model_type": "llama", "is_causal": False}
    assert _encoder_only(config, version, write_config) == encoder_only


# ---- 4. GritLM generates; JambaForSequenceClassification's generate refusal -----------------------------------------
def test_gritlm_runner_generate_is_a_causal_llama(write_config):
    """registry.py 0.11.0:98 (_TEXT_GENERATION_MODELS) and :167 (_EMBEDDING_MODELS), 0.28.0:127 and :231; GritLM
    subclasses LlamaForCausalLM (gritlm.py 0.11.0:219), so ModelConfig's is_generative_model lets --runner generate
    through (config/model.py 0.11.0:527-532); is_causal stays true off the pooling runner (gritlm.py 0.11.0:245-247).
    Its cache is then a Llama's: 32 layers x 8 KV heads x 128 x 2 (K, V) x 2 B = 131,072 B a token."""
    from dataclasses import replace

    from kvplan.engines.vllm_runner_flag import runner_refusal
    from kvplan.model.parse import parse_config

    assert runner_refusal(replace(parse_config(GRITLM, "gritlm"), runner="generate"), "0.20.0") is None
    e = _engine(str(write_config(GRITLM)), "0.20.0", runner="generate")
    assert e.starts and e.runner == "generate"
    assert e.gpu_kv_cache_tokens == e.available_kv_cache_bytes // (16 * 131072) * 16


def test_jamba_sequence_classification_generate_refusal_names_the_assert(tmp_path):
    """JambaForSequenceClassification is registered (registry.py 0.20.0:318) and subclasses JambaForCausalLM
    (jamba.py 0.20.0:584), so ModelConfig takes it as generating; its __init__ asserts a pooler config (jamba.py
    0.20.0:605), which only the pooling runner sets (config/model.py 0.20.0:580-582)."""
    folder = _bundled_as(JAMBA, "JambaForSequenceClassification", tmp_path, num_labels=1)
    result = run_kvplan("estimate", folder, "--gpu", "h100", "--tp", "2", "-c", "8192", "--engine", "vllm==0.20.0",
                        "--runner", "generate")
    assert result.returncode == 2 and "TransformersForCausalLM" not in result.stderr
    assert "asserts a pooler config" in result.stderr and "jamba.py 0.11.0:559" in result.stderr


# ---- 5. --pooler-config numbers as pydantic parses them ------------------------------------------------------------
# vLLM 0.34.0's TypeAdapter(PoolerConfig).validate_json (engine/arg_utils.py 0.34.0:368-373), pydantic 2.14.4, run on
# {"dimensions": X} (int | None) and {"logit_mean": X} (float | None): "" = taken.
INT_CASES = [("7.", False), ("\u0667", False), ("\u0661", False), ("\uff17", False), ("7.0", True), ("7.00", True),
             (" 7 ", True), ("1_000", True), ("1_0.0", True), ("1.0_0", False), ("+_1", False), ("7\u3000", True),
             ("\x1c7", False), ("7\x85", True)]
FLOAT_CASES = [("7.", True), ("\u0667", False), ("\u0661", False), ("\u0661.5", False), ("1e3", True),
               ("1_e3", True), ("_1", False), ("1__0", False), ("inf", True), ("\x1c7", False), ("7\x1f", False),
               ("7\u2003", True)]


@pytest.mark.parametrize("text, taken", INT_CASES)
def test_int_fields_as_pydantic(text, taken):
    from kvplan.engines.vllm_pooler_config import _value_words

    assert (_value_words("dimensions", text, (0, 34))[1] == "") == taken


@pytest.mark.parametrize("text, taken", FLOAT_CASES)
def test_float_fields_as_pydantic(text, taken):
    from kvplan.engines.vllm_pooler_config import _value_words

    assert (_value_words("logit_mean", text, (0, 34))[1] == "") == taken


# ---- 6. the requests column ----------------------------------------------------------------------------------------
# vLLM logs "Maximum concurrency" as blocks / blocks a whole max-len request needs (v1/core/kv_cache_utils.py
# get_max_concurrency_for_kv_cache_config); the table shows what the engine holds at once (vllm_admission: sliding
# windows recycle their blocks). gemma-3-12b at 32K: the two differ, and the note gives both; Llama 3.1 8B (full
# attention only): they agree, no note.
def _text_and_json(model: str, context: str):
    args = ("estimate", model, "--gpu", "h100", "-c", context)
    text = run_kvplan(*args)
    (plan,) = json.loads(run_kvplan(*args, "--format", "json").stdout)["plans"]
    return " ".join(text.stdout.split()), plan


def test_the_requests_note_gives_both_figures():
    text, plan = _text_and_json("google/gemma-3-12b-it", "32768")
    shown, logged = plan["max_concurrency"], plan["engine"]["max_concurrency"]
    assert shown != int(logged)
    assert (f"max len 32,768 bf16 tp 1: requests {shown:,} is what the engine holds at once; vLLM logs \"Maximum "
            f"concurrency\" {logged:,.2f}x (vLLM's figure counts each request at the blocks of its whole max "
            f"len") in text
    assert "requests of max len the engine holds at once" in text


def test_no_note_where_they_agree():
    text, plan = _text_and_json(LLAMA, "8192")
    assert plan["max_concurrency"] == int(plan["engine"]["max_concurrency"])
    assert "is what the engine holds at once" not in text
