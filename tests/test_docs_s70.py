"""Session 70's fresh read of README.md against what kvplan does: the claims it found stale, each read from the page
itself and held to the tool, so that a page that drifts again fails here. The vLLM facts behind each are in the
tests the docstrings name; these pin the page to the tool.

- A compressed-tensors kv_cache_scheme overwrites any --kv-cache-dtype from vLLM 0.15 (session 58 read 0.15.0's wheel:
  attention/layer.py 0.15.0:198-203), to 0.21; the README said 0.16 (tests/test_vllm_015_s58.py).
- Kimi Delta Attention reads --mamba-ssm-cache-dtype from vLLM 0.30 (mamba_utils.py 0.30.0:133-147), float16 refused;
  the README said never (engines/vllm_cache_flags.py).
- int4_per_token_head is a --kv-cache-dtype choice from 0.25, not 0.20 with the other per-token-head formats.
- The runner's persistent buffers are `runner buffers` in the budget line and `runner_state` in JSON; LoRA's slots
  are the `lora` term, "LoRA slots" in the line.
- A configuration refusal's `field` is also quantization, dtype or mamba_ssm_cache_dtype, not only the five named.
"""
import re

import pytest

from conftest import ROOT, estimate_plan, one_error_line, run_kvplan
from hub_configs import LLAMA3_8B
from checkpoints import checkpoint_folder

README = " ".join((ROOT / "README.md").read_text().split())
KIMI = "moonshotai/Kimi-Linear-48B-A3B-Instruct"
LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
# a compressed-tensors fp8 checkpoint with a per-tensor fp8 kv_cache_scheme (tests/test_kv_auto_release.py's)
FP8_GROUP = {"num_bits": 8, "type": "float", "strategy": "tensor", "dynamic": False, "symmetric": True}
CT_FP8 = {"quant_method": "compressed-tensors", "format": "float-quantized", "ignore": ["lm_head"],
          "config_groups": {"group_0": {"targets": ["Linear"], "weights": FP8_GROUP, "input_activations": FP8_GROUP}},
          "kv_cache_scheme": FP8_GROUP}
BF16_TOKEN, FP8_TOKEN = 32 * 2 * 8 * 128 * 2, 32 * 2 * 8 * 128  # Llama-3-8B: layers x K,V x heads x dim x bytes


def said(pattern: str, text: str = README) -> tuple:
    """The groups of the one place `text` says `pattern`."""
    (found,) = re.findall(pattern, text)
    return found if isinstance(found, tuple) else (found,)


def minor(release: str, step: int) -> str:
    """The minor series `step` away from 0.N ('0.15', -1 -> 'vllm==0.14'), as --engine takes a series."""
    major, number = release.split(".")
    return f"vllm=={major}.{int(number) + step}"


def test_a_kv_cache_scheme_overwrites_any_dtype_over_the_releases_the_readme_names(tmp_path):
    first, last = said(r"whatever `--kv-cache-dtype` asks in (0\.\d+)-(0\.\d+),")
    help_first, help_last = said(r"in (0\.\d+)-(0\.\d+) whatever is asked",
                                 " ".join(run_kvplan("estimate", "-h", env={"COLUMNS": "400"}).stdout.split()))
    assert (first, last) == (help_first, help_last)  # the page and --help name one range
    folder = checkpoint_folder(tmp_path, {**LLAMA3_8B, "max_position_embeddings": 8192, "quantization_config": CT_FP8})
    for engine, stored in ((minor(first, -1), BF16_TOKEN), (minor(first, 0), FP8_TOKEN), (minor(last, 0), FP8_TOKEN),
                           (minor(last, 1), BF16_TOKEN)):
        plan = estimate_plan(folder, "--gpu", "h100", "--engine", engine, "--kv-cache-dtype", "bfloat16")
        assert plan["kv_bytes_per_token"] == stored, engine


def test_kda_reads_the_ssm_flag_from_the_release_the_readme_names():
    """From that release a bfloat16 recurrent state halves the float32 one (the small convolution window stays in the
    model dtype, so the state a request is a little over half); the release before keeps float32; float16 is
    refused as vLLM's kda_state_dtype refuses it."""
    (first,) = said(r"Kimi Delta Attention from (0\.\d+) \(float32 under `auto`; bfloat16 or float32, float16 refused")
    common = ("-c", "8192", "--gpu", "h200")

    def state(engine: str, dtype: str) -> int:
        return estimate_plan(KIMI, *common, "--engine", engine, "--mamba-ssm-cache-dtype",
                             dtype)["state_bytes_per_sequence_per_gpu"]

    before, since = minor(first, -1), minor(first, 0)
    assert state(before, "bfloat16") == state(before, "auto")
    assert state(since, "auto") / 2 < state(since, "bfloat16") < state(since, "auto") * 0.52
    refused = estimate_plan(KIMI, *common, "--engine", since, "--mamba-ssm-cache-dtype", "float16")
    refusal = refused["engine"]["refusal"]
    assert (refusal["configuration"], refusal["field"]) == (True, "mamba_ssm_cache_dtype")


def test_the_kv_dtypes_the_readme_dates_are_choices_from_those_releases():
    """Each dtype the sentence dates is refused by the release series before (argparse's choices) and listed in its
    own (where a model-layout refusal may still follow: nvfp4_ds_mla is MLA's)."""
    sentence = README[README.index("as its argparse refuses the rest:"):README.index("and sizes each the way")]
    dated = {"bfloat16": said(r"`bfloat16` from (0\.\d+)", sentence)[0],
             "float16": said(r"`float16` from (0\.\d+)", sentence)[0],
             "int4_per_token_head": said(r"`int4_per_token_head` from (0\.\d+)", sentence)[0],
             "nvfp4_ds_mla": said(r"`nvfp4_ds_mla` from (0\.\d+)", sentence)[0],
             "octave_k3v4": said(r"the `octave_\*` formats from (0\.\d+)", sentence)[0]}
    per_token_and_turboquant = said(r"and turboquant formats from (0\.\d+)", sentence)[0]
    dated |= dict.fromkeys(("fp8_per_token_head", "int8_per_token_head", "turboquant_k8v4"), per_token_and_turboquant)
    for dtype, first in dated.items():
        before = one_error_line(run_kvplan("estimate", LLAMA, "-c", "8192", "--engine", minor(first, -1),
                                           "--kv-cache-dtype", dtype))
        assert "is not a choice of vLLM" in before, (dtype, before)
        assert re.search(rf"first listed in {re.escape(first)}\.\d+\)", before), (dtype, before)
        taken = run_kvplan("estimate", LLAMA, "-c", "8192", "--engine", minor(first, 0), "--kv-cache-dtype", dtype)
        assert "is not a choice of vLLM" not in taken.stderr, (dtype, taken.stderr)  # a layout refusal may follow


def test_the_budget_names_the_readme_quotes():
    """The runner's buffers: `runner buffers` in the text's budget line, `runner_state` among JSON's terms; LoRA's
    slots: the `lora` term, "LoRA slots" in the line."""
    line_name, term_name = said(r"The runner's persistent buffers \(`([a-z ]+)` in the budget line, the `([a-z_]+)` "
                                r"term in JSON:")
    lora_term, lora_words = said(r"shown as the budget's `([a-z]+)` term \(\"([A-Za-z ]+)\" in its line\)")
    args = (LLAMA, "-c", "8192", "--gpu", "h100", "--enable-lora")
    text = " ".join(run_kvplan("estimate", *args, env={"COLUMNS": "400"}).stdout.split())
    budget_line = next(line for line in text.split(". ") if line.startswith("KV budget"))
    assert f" - {line_name} " in budget_line and f" - {lora_words} " in budget_line
    terms = [term["name"] for term in estimate_plan(*args)["budget"]["terms"]]
    assert {term_name, lora_term} <= set(terms)


@pytest.mark.parametrize("args, field", [
    (("openai/gpt-oss-20b", "--gpu", "T4"), "quantization"),  # mxfp4 below compute capability 8.0
    (("google/gemma-3-4b-it", "--gpu", "T4", "--dtype", "bfloat16"), "dtype"),  # no bfloat16 on a T4
    ((KIMI, "--gpu", "h200", "--mamba-ssm-cache-dtype", "float16"), "mamba_ssm_cache_dtype"),
])
def test_the_refusal_fields_the_readme_adds(args, field):
    named = said(r"other flags by their own names \(`(\w+)`, `(\w+)`, `(\w+)`, \.\.\.\)")
    assert field in named
    refusal = estimate_plan(*args, "-c", "8192")["engine"]["refusal"]
    assert (refusal["configuration"], refusal["field"]) == (True, field)
