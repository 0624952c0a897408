"""Spaces around a choice-valued flag's value: refused as `vllm serve` refuses them (model/choices.py refuse_spaces).

vLLM 0.32.0 turns each Literal field into argparse `choices` with type str (engine/arg_utils.py 0.32.0:214-228
literal_to_kwargs, :381-382), and argparse compares the string as typed, so `--kv-cache-dtype " fp8 "` is "invalid
choice"; FlexibleArgumentParser strips only its human-readable integers (utils/argparse_utils.py 0.32.0:39, :88), so
numbers keep being read past spaces. The fields: CacheDType (config/cache.py 0.32.0:39), MambaDType (:62), ModelDType
(config/model.py 0.32.0:99), LoRADType (config/lora.py 0.32.0:25), RunnerOption / ConvertOption and
MMEncoderTPMode (config/model.py, config/multimodal.py), DCPCommBackend (0.18+); --quantization is any text that
_verify_quantization refuses unless listed as written (config/model.py 0.32.0:1370-1456). --runner / --convert took
no spaces already (vllm_runner_flag._choice, session 59: tests/test_review_text_s59.py)."""

from __future__ import annotations

import pytest

import kvplan.api as api
from conftest import deployments_file, one_error_line, run_kvplan
from kvplan.errors import FieldError

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
PLAN = ("estimate", LLAMA, "--gpu", "H100", "-c", "8192")


def _said(flag: str, value: str, meant: str) -> str:
    return (f"kvplan: error: {flag} '{value}' has spaces around it: `vllm serve` matches these values exactly as "
            f"typed and stops on it; write {meant}.")


@pytest.mark.parametrize("flag, value, meant, extra", [
    ("--kv-cache-dtype", " fp8 ", "fp8", ()), ("--kv-cache-dtype", "fp8_e4m3 ", "fp8_e4m3", ()),
    ("--dtype", " half", "half", ()), ("-q", "fp8 ", "fp8", ()),
    ("--mamba-cache-dtype", " float32", "float32", ()), ("--mamba-ssm-cache-dtype", "auto ", "auto", ()),
    ("--lora-dtype", " bfloat16", "bfloat16", ("--enable-lora",)), ("--mm-encoder-tp-mode", " data", "data", ()),
    ("--dcp-comm-backend", "a2a ", "a2a", ()),
])
def test_estimate_refuses_spaces(flag, value, meant, extra):
    assert one_error_line(run_kvplan(*PLAN, flag, value, *extra)) == _said(flag, value, meant)


def test_a_sweeps_items_are_matched_as_typed():
    """A comma list is kvplan's (vLLM takes one value): its items are matched as typed too, so `auto, fp8` names the
    item with the space; `auto,fp8` plans both."""
    assert one_error_line(run_kvplan(*PLAN, "--kv-cache-dtype", "auto, fp8")) == \
        _said("--kv-cache-dtype", " fp8", "fp8")
    assert run_kvplan(*PLAN, "--kv-cache-dtype", "auto,fp8").returncode == 0


def test_check_and_verify_refuse_them():
    assert one_error_line(run_kvplan("check", LLAMA, "-tp", "1", "-c", "8192", "--kv-cache-dtype", " fp8 ")) == \
        _said("--kv-cache-dtype", " fp8 ", "fp8")
    line = one_error_line(run_kvplan("verify", LLAMA, "-c", "8192", "--kv-cache-dtype", "fp8 "))
    assert line == _said("--kv-cache-dtype", "fp8 ", "fp8")  # before the GPU: no "needs a CUDA GPU"


def test_the_api_refuses_them():
    with pytest.raises(FieldError, match="kv_cache_dtype ' fp8 ' has spaces around it"):
        api.estimate(LLAMA, max_model_len=8192, gpu="H100", kv_cache_dtype=" fp8 ")
    with pytest.raises(FieldError, match="dtype 'half ' has spaces around it"):
        api.estimate(LLAMA, max_model_len=8192, gpu="H100", dtype="half ")
    with pytest.raises(FieldError, match="kv_cache_dtype ' fp8' has spaces around it"):
        api.verify(LLAMA, max_model_len=8192, kv_cache_dtype=" fp8")


def test_a_deployments_file_refuses_them(tmp_path):
    """YAML strings are held to the same rule; its numbers are read as before (tp 1, context 8K)."""
    entry = f"  - name: chat\n    model: {LLAMA}\n    tp: 1\n    context: 8K\n    gpu: H100\n"
    path = deployments_file(tmp_path, entry + "    kv_dtype: ' fp8 '\n")
    line = one_error_line(run_kvplan("check", "--file", path))
    assert line == (f"kvplan: error: {path}:7: deployment 'chat' field 'kv_dtype' ' fp8 ' has spaces around it: "
                    f"`vllm serve` matches these values exactly as typed and stops on it; write fp8.")
    path = deployments_file(tmp_path, entry + "    kv_dtype: fp8\n")
    assert run_kvplan("check", "--file", path).returncode == 0


def test_case_is_still_its_own_refusal():
    """" FP8 " is wrong twice: the case refusal (session 77) names the lower-case spelling."""
    assert "' FP8 ' is not vLLM's spelling" in one_error_line(run_kvplan(*PLAN, "--kv-cache-dtype", " FP8 "))
    line = one_error_line(run_kvplan(*PLAN, "--lora-dtype", "FLOAT16", "--enable-lora"))
    assert line == ("kvplan: error: --lora-dtype must be one of auto, float16, bfloat16 (vLLM's LoRADType), got "
                    "'FLOAT16'.")
