"""The speed model on the command line: decode points and prefill in the JSON contract, --batch, --input-len,
--quantization and --dtype, their errors, and every number finite for every bundled model."""

import json
import math

import pytest

from conftest import run_kvplan
from golden_cases import bundled_ids
from kvplan.errors import FieldError
from kvplan.model.quantization import apply_weight_precision
from kvplan.model.sources import resolve


def plans(*args):
    result = run_kvplan("estimate", *args, "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["plans"]


def numbers(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from numbers(v)
    elif isinstance(value, list):
        for v in value:
            yield from numbers(v)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield value


@pytest.mark.parametrize("model", bundled_ids())
def test_decode_and_prefill_for_every_valid_tp_and_every_number_finite(model):
    for p in plans(model, "--tp", "1,2,8", "--context", "4096", "--batch", "1,64,4096", "--gpu", "h100"):
        if not p["tp_valid"]:
            assert p["decode"] is None and p["prefill"] is None
            continue
        batches = [q["batch"] for q in p["decode"]["points"]]
        assert batches == sorted(set(batches)) and {1, 64, 4096} <= set(batches)
        if p["max_concurrency"]:
            assert p["max_concurrency"] in batches
        for q in p["decode"]["points"]:
            assert q["fits"] == (q["batch"] <= p["max_concurrency"])
            assert 0 < q["roofline_itl_ms"] < q["itl_ms"]
        # vLLM 0.32.0 (the default engine) keeps room for one output token: input_processor.py:593-602
        assert p["prefill"]["input_len"] == 4095 and p["prefill"]["ttft_ms"] > 0
        assert all(math.isfinite(x) for x in numbers(p["decode"]) if x is not None)
        assert all(math.isfinite(x) for x in numbers(p["prefill"]))


def test_a_plan_that_does_not_fit_still_estimates_decode():
    (p,) = plans("meta-llama/Llama-3.1-405B", "--tp", "1", "--gpu", "h100", "--batch", "4")
    assert not p["fits"]
    assert [(q["batch"], q["fits"]) for q in p["decode"]["points"]] == [(1, False), (4, False)]


def test_more_tensor_parallelism_lowers_itl_at_batch_one():
    one, eight = plans("meta-llama/Meta-Llama-3-70B", "--tp", "1,8", "--gpu", "h200")
    assert eight["decode"]["points"][0]["itl_ms"] < one["decode"]["points"][0]["itl_ms"]
    assert one["decode"]["constants"]["gpu"] == "H200" and one["decode"]["constants"]["fallback"] is None


def test_input_len_sets_the_prompt_and_may_not_exceed_the_context():
    (p,) = plans("meta-llama/Meta-Llama-3-8B", "--context", "8192", "--input-len", "512", "--gpu", "h100")
    (whole,) = plans("meta-llama/Meta-Llama-3-8B", "--context", "8192", "--gpu", "h100")
    # the default prompt: the longest vLLM 0.32.0 admits, 8,192 - 1 (input_processor.py:593-602)
    assert p["prefill"]["input_len"] == 512 and whole["prefill"]["input_len"] == 8191
    assert p["prefill"]["ttft_ms"] < whole["prefill"]["ttft_ms"]
    (chunked,) = plans("meta-llama/Meta-Llama-3-8B", "--context", "32k", "--gpu", "h100",
                       "--max-num-batched-tokens", "4096")
    assert chunked["prefill"]["chunks"] == 8 and chunked["prefill"]["chunk_tokens"] == 4096
    bad = run_kvplan("estimate", "meta-llama/Meta-Llama-3-8B", "--context", "8192", "--input-len", "9000")
    assert bad.returncode == 2 and "--input-len" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.parametrize("value", ["0", "8,x", "-4"])
def test_bad_batch_names_the_flag(value):
    result = run_kvplan("estimate", "meta-llama/Meta-Llama-3-8B", "--batch", value)
    assert result.returncode == 2 and "--batch" in result.stderr and "Traceback" not in result.stderr


def test_quantization_fp8_halves_the_linear_weights_and_uses_the_fp8_peak():
    (bf16,) = plans("meta-llama/Meta-Llama-3-8B", "--gpu", "h100")
    (fp8,) = plans("meta-llama/Meta-Llama-3-8B", "--gpu", "h100", "--quantization", "fp8")
    linear = 32 * 4096 * 128 * 80 + 32 * 3 * 4096 * 14336  # attention + MLP: 2 bytes -> 1; embedding, head, norms stay
    saved = bf16["budget"]["weights_bytes_per_gpu"] - fp8["budget"]["weights_bytes_per_gpu"]
    assert saved == pytest.approx(linear, abs=1e4)  # less one float32 scale per matrix
    assert fp8["kv_budget_bytes_per_gpu"] > bf16["kv_budget_bytes_per_gpu"]
    one, two = bf16["decode"]["points"][0], fp8["decode"]["points"][0]
    assert two["roofline_itl_ms"] < 0.6 * one["roofline_itl_ms"] and two["itl_ms"] < one["itl_ms"]


def test_quantization_rules():
    llama = resolve("meta-llama/Meta-Llama-3-8B")
    for method in ("awq", "gptq"):  # vLLM reads AWQ / GPTQ settings from a checkpoint only (model/quantization.py)
        with pytest.raises(FieldError, match=f"needs a checkpoint quantised with {method.upper()}"):
            apply_weight_precision(llama, method)
    same = apply_weight_precision(llama, "mxfp4")  # vLLM's mxfp4 quantises routed experts only
    assert same.weights.bytes == llama.weights.bytes and any("experts only" in n for n in same.notes)
    oss = resolve("openai/gpt-oss-120b")
    assert apply_weight_precision(oss, "mxfp4") is oss  # already stored so
    fp32 = apply_weight_precision(llama, dtype="float32")
    assert fp32.dtype == "fp32" and {g.bytes_per_param for g in fp32.params} == {4}
    assert fp32.weights.bytes == 2 * llama.weights.bytes
    deepseek = apply_weight_precision(resolve("deepseek-ai/DeepSeek-V3"), dtype="half")
    kept = {g.name: g.stored for g in deepseek.params}
    assert kept["experts"] == "fp8" and kept["embed"] == "fp16"  # --dtype moves the unquantised groups only


def test_quantization_errors_name_the_flag():
    mismatch = run_kvplan("estimate", "openai/gpt-oss-120b", "--quantization", "fp8")
    assert mismatch.returncode == 2 and "--quantization" in mismatch.stderr and "mxfp4" in mismatch.stderr
    unknown = run_kvplan("estimate", "meta-llama/Meta-Llama-3-8B", "--quantization", "int3")
    assert unknown.returncode == 2 and "--quantization" in unknown.stderr and "fp8, awq, gptq, mxfp4" in unknown.stderr
    dtype = run_kvplan("estimate", "meta-llama/Meta-Llama-3-8B", "--dtype", "float64")
    assert dtype.returncode == 2 and "--dtype" in dtype.stderr and "bfloat16" in dtype.stderr


def test_dtype_float32_doubles_the_kv_cache_of_kv_auto():
    (p,) = plans("meta-llama/Meta-Llama-3-8B", "--dtype", "float32", "--gpu", "h200")
    assert p["kv_dtype"] == "fp32" and p["kv_bytes_per_token_per_gpu"] == 32 * 2 * 8 * 128 * 4


def test_the_table_shows_itl_and_tokens_per_second():
    result = run_kvplan("estimate", "meta-llama/Meta-Llama-3-8B", "--gpu", "l40s", env={"COLUMNS": "160"})
    assert result.returncode == 0
    assert "ITL ms b1|max" in result.stdout and "tok/s b1|max" in result.stdout
    assert "Time to first token" in result.stdout and "nearest measured architecture" in result.stdout
