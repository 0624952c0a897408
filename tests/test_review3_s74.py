"""Review 3 of session 74's merges (the V1/V0 oracle for vLLM 0.8.0-0.10.2, the V0 leftovers): defects found by
probing the CLI against the wheels, each a test that failed before its fix.

1. check's remedies replan `auto` by the model dtype's name (plan._plan_afresh: "bf16"), which the oracle read as a
   --kv-cache-dtype V1 does not take, so every remedy of a V1 deployment on 0.8.0-0.10.1 was planned by V0's rules:
   Llama-3.1-8B on an A100 under 0.8.5 at 128K for 8 requests was told "--max-model-len 54032", which holds 7 when
   rerun. 0.8-0.10.2's --kv-cache-dtype lists auto and fp8 spellings only (arg_utils.py 0.8.0:369, config.py
   0.10.0:1609 CacheDType), so a 16-bit name there is kvplan's own replan of auto.
   Hand figures (V1, 0.8.5, A100-80GB, bf16): 51.25 GiB of KV = 419,840 tokens = 26,240 blocks of 16; V1's block
   pool keeps one null block (26,239 free), and 8 requests of L tokens need 8 x ceil(L / 16) blocks: 8 x 3,279 =
   26,232 fit, 8 x 3,280 = 26,240 do not, so the longest length is 3,279 x 16 = 52,464.
2. A dense MLA model (DeepSeek-V2-Lite) with --kv-cache-dtype fp8 on 0.8.0-0.10.2 was planned though every CUDA MLA
   impl of those releases raises NotImplementedError in __init__ for a quantized cache (V0's FlashMLA and TritonMLA:
   attention/backends/flashmla.py 0.8.0:211-213, triton_mla.py 0.8.0:62-64; V1's: mla/flashmla.py 0.8.0:119-121,
   mla/triton_mla.py 0.8.0:65-67 and 0.10.2:67-69, mla/cutlass_mla.py 0.10.1.1:111-113), but 0.10.2's V1 FlashMLA
   (Hopper) and CUTLASS_MLA (10.0), which store fp8; and check offered fp8 as a remedy there.
"""

from __future__ import annotations

import re

import pytest
from conftest import run_kvplan

import kvplan
from kvplan.engines.vllm_kv_dtype import release_view
from kvplan.engines.vllm_v1_oracle import v0_fallback
from kvplan.model.sources import resolve

LLAMA_8B = "meta-llama/Llama-3.1-8B-Instruct"
DEEPSEEK_LITE = "deepseek-ai/DeepSeek-V2-Lite"
A100, H100 = (8, 0), (9, 0)


def check_row(*args) -> str:
    run = run_kvplan("check", *args)
    return " ".join(run.stdout.split())


@pytest.mark.parametrize("name", ["bf16", "bfloat16", "fp16", "float16"])
def test_a_16_bit_name_is_auto_to_the_oracle(name):
    assert v0_fallback(resolve(LLAMA_8B), "0.8.5", kv_dtype=name, capability=A100) is None
    assert v0_fallback(resolve(LLAMA_8B), "0.8.5", kv_dtype="fp8", capability=A100) is not None


def test_the_length_remedy_of_a_v1_deployment_holds_when_rerun():
    asked = ("--engine", "vllm==0.8.5", "--gpu", "A100-80GB", "-tp", "1", "--min-concurrency", "8")
    out = check_row(LLAMA_8B, *asked, "-c", "128K")
    length = int(re.search(r"--max-model-len (\d+)", out).group(1))
    assert length == 3279 * 16  # docstring: 52,464 (54,032 by V0's rules before the fix)
    assert " pass" in check_row(LLAMA_8B, *asked, "-c", str(length))
    assert " FAIL" in check_row(LLAMA_8B, *asked, "-c", str(length + 1))


@pytest.mark.parametrize("version, gpu, words", [
    ("0.8.0", "H100", "FlashMLA with FP8 KV cache not yet supported"),  # V0: no fp8 cache on 0.8.0's V1
    ("0.8.5", "H100", "FlashMLA V1 with FP8 KV cache not yet supported"),  # FA 3 takes fp8: V1
    ("0.9.2", "A100-80GB", "TritonMLA with FP8 KV cache not yet supported"),  # V0 on an A100
    ("0.10.0", "B200", "TritonMLA V1 with FP8 KV cache not yet supported"),  # 10.0 keeps block 16: Triton
    ("0.10.1", "B200", "CutlassMLA V1 with FP8 KV cache not yet supported"),  # 128 forced: CUTLASS_MLA
    ("0.10.2", "A100-80GB", "TritonMLA V1 with FP8 KV cache not yet supported"),
])
def test_a_quantized_mla_cache_never_starts_before_0_10_2(version, gpu, words):
    (plan,) = kvplan.estimate(DEEPSEEK_LITE, gpu=gpu, kv_cache_dtype="fp8", engine=f"vllm=={version}",
                              max_model_len=8192)
    assert plan.engine.refusal is not None and words in plan.engine.refusal.reason
    assert plan.max_concurrency == 0
    (auto,) = kvplan.estimate(DEEPSEEK_LITE, gpu=gpu, engine=f"vllm=={version}", max_model_len=8192)
    assert auto.engine.refusal is None and auto.max_concurrency > 0


@pytest.mark.parametrize("gpu", ["H100", "B200"])
def test_0_10_2_flashmla_and_cutlass_mla_store_fp8(gpu):
    (plan,) = kvplan.estimate(DEEPSEEK_LITE, gpu=gpu, kv_cache_dtype="fp8", engine="vllm==0.10.2",
                              max_model_len=8192)
    assert plan.engine.refusal is None and plan.max_concurrency > 0


def test_check_offers_no_fp8_remedy_for_mla_where_it_never_starts():
    asked = ("--engine", "vllm==0.9.2", "--gpu", "H100", "-tp", "1", "--min-concurrency", "60")
    out = check_row(DEEPSEEK_LITE, *asked, "-c", "128K")
    assert "--kv-cache-dtype fp8" not in out.split("would fit with", 1)[1].split("notice")[0]
    length = int(re.search(r"--max-model-len (\d+)", out).group(1))
    assert " pass" in check_row(DEEPSEEK_LITE, *asked, "-c", str(length))


@pytest.mark.parametrize("version, words", [
    ("0.6.3", "Gemma 2 uses sliding window attention for every odd layer, which is currently not supported by vLLM"),
    ("0.6.4", "gemma2 has interleaved attention, which is currently not supported by vLLM"),  # config.py 0.6.4:236-237
])
def test_gemma2_window_note_quotes_the_release_own_warning(version, words):
    """3. vLLM 0.6.4 words the warning by model type (config.py 0.6.4:235-238 f"{model_type} has interleaved
    attention, ..."); the note quoted 0.5.1-0.6.3's words for it."""
    note = next(n for n in release_view(resolve("google/gemma-2-9b"), version).notes
                if n.startswith("Gemma 2's sliding window"))
    assert f'("{words}")' in note
