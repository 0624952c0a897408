"""vLLM's --mamba-cache-dtype, --mamba-ssm-cache-dtype and --disable-sliding-window (engines/vllm_cache_flags.py).

Sources: tests/data/vllm_cache_flags.json, made by vLLM 0.34.0's own code (tests/data/vllm_cache_flags.py: its
MambaDType, MambaStateDtypeCalculator, the Nemotron-H / Qwen3.5 config handlers, _get_and_verify_max_len); the
values each release's argparse takes read by hand (config/cache.py MambaDType: 0.10.1:26 and 0.12.0:32 auto,
float32; 0.13.0:32 and 0.21.0:35 + float16; 0.22.0:35 + bfloat16; 0.10.0's arg_utils.py has neither flag); the
gated DeltaNet's state dtype by release read by hand (mamba_utils.py 0.16.0:79-85 gated_delta_net_state_dtype takes
no SSM dtype, 0.17.0:79-88 does); page and block sizes by hand from the bundled configs."""

import json
from pathlib import Path

import pytest

from conftest import deployments_file, estimate_plan, one_error_line, run_kvplan

from kvplan import api
from kvplan.engines import EngineFlags
from kvplan.engines.vllm_mamba_state import ssm_state_dtype
from kvplan.engines.vllm_cache_flags import conv_state_dtype, mamba_dtype_choices, with_cache_flags
from kvplan.errors import FieldError, KvplanError
from kvplan.model.sources import resolve

FROZEN = json.loads((Path(__file__).parent / "data" / "vllm_cache_flags.json").read_text())
NAMES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
NEMOTRON, QWEN_NEXT = "nvidia/Nemotron-H-8B-Base-8K", "Qwen/Qwen3-Next-80B-A3B-Thinking"
H100 = ("--gpu", "H100", "--engine", "vllm==0.32.0")


def test_frozen_figures_are_vllm_0_34():
    assert FROZEN["vllm"] == "0.34.0" and FROZEN["script"] == "tests/data/vllm_cache_flags.py"


@pytest.mark.parametrize("version, values", [
    ("0.10.0", ()), ("0.10.1", ("auto", "float32")), ("0.12.0", ("auto", "float32")),
    ("0.13.0", ("auto", "float32", "float16")), ("0.21.0", ("auto", "float32", "float16")),
    ("0.22.0", ("auto", "float32", "float16", "bfloat16")), ("0.32.0", ("auto", "float32", "float16", "bfloat16"))])
def test_values_by_release(version, values):
    assert mamba_dtype_choices(version) == values


def test_newest_values_are_vllm_0_34s():
    assert list(mamba_dtype_choices("0.34.0")) == FROZEN["choices"]


def _states(model, cache, ssm, version="0.34.0"):
    spec = with_cache_flags(resolve(model), EngineFlags(mamba_cache_dtype=cache, mamba_ssm_cache_dtype=ssm))
    return [NAMES[conv_state_dtype(spec)], NAMES[ssm_state_dtype(spec, version)[0]]]


@pytest.mark.parametrize("cache", FROZEN["choices"])
@pytest.mark.parametrize("ssm", FROZEN["choices"])
def test_nemotron_h_states_as_vllm_resolves_them(cache, ssm):
    """Nemotron-H's handler first (the config names no mamba_ssm_cache_dtype: float32 on 'auto'), then mamba2's."""
    handled = FROZEN["handlers"]["nemotron_h_no_config_dtype"][ssm]
    assert _states(NEMOTRON, cache, ssm) == FROZEN["states"][f"{cache},{handled}"]["mamba2"]


@pytest.mark.parametrize("cache", FROZEN["choices"])
@pytest.mark.parametrize("ssm", FROZEN["choices"])
def test_qwen3_next_states_as_vllm_resolves_them(cache, ssm):
    """No handler for Qwen3-Next: the gated DeltaNet's calculator as it is (0.17+ reads the SSM flag)."""
    assert _states(QWEN_NEXT, cache, ssm) == FROZEN["states"][f"{cache},{ssm}"]["gdn"]


def test_gated_deltanet_ignores_the_ssm_flag_before_0_17():
    assert _states(QWEN_NEXT, None, "float32", "0.16.0") == ["bfloat16", "bfloat16"]
    assert _states(QWEN_NEXT, "float32", None, "0.16.0") == ["float32", "float32"]


def test_qwen3_5_handler_only_on_auto():
    handled = FROZEN["handlers"]["qwen3_5_config_float32"]
    assert handled["auto"] == "float32" and handled["float16"] == "float16"  # an explicit flag wins


def test_kda_recurrent_state_stays_float32():
    """Kimi Delta Attention called as kimi_gdn_linear_attn.py:163-165 calls it (--mamba-cache-dtype alone): conv in
    that dtype, recurrent float32 (kda row of the frozen table). The class vLLM registers passes
    --mamba-ssm-cache-dtype too from 0.30 (tests/test_s61_review_fixes.py): float32 up to 0.29, bfloat16 as asked
    from 0.30."""
    assert FROZEN["states"]["auto,float16"]["kda"] == ["bfloat16", "float32"]
    spec = with_cache_flags(resolve("moonshotai/Kimi-Linear-48B-A3B-Instruct"),
                            EngineFlags(mamba_ssm_cache_dtype="bfloat16"))
    assert ssm_state_dtype(spec, "0.29.0")[0] == "fp32" and ssm_state_dtype(spec, "0.30.0")[0] == "bf16"


# Nemotron-H-8B at tp 1 (its bundled config): conv 3 x (128 x 64 + 2 x 8 x 128) = 30,720 elements, SSM
# 128 x 64 x 128 = 1,048,576; attention 2 x 8 KV heads x 128 x 2 bytes = 4,096 bytes a token. The hybrid block is the
# smallest multiple of 16 whose attention page holds the state page (vLLM 0.32.0 on an H100):
# default (conv bf16, SSM float32 by the handler): 61,440 + 4,194,304 = 4,255,744 bytes -> 1,039 tokens -> 1,040;
# --mamba-ssm-cache-dtype float16: 61,440 + 2,097,152 = 2,158,592 -> 527 -> 528;
# --mamba-cache-dtype float32 (SSM still float32): 122,880 + 4,194,304 = 4,317,184 -> 1,054 -> 1,056.
@pytest.mark.parametrize("flags, block", [((), 1040), (("--mamba-ssm-cache-dtype", "float16"), 528),
                                          (("--mamba-cache-dtype", "float32"), 1056)])
def test_nemotron_h_block_size(flags, block):
    plan = estimate_plan(NEMOTRON, "-c", "8K", *H100, *flags)
    assert plan["block_size"] == block


def test_smaller_state_holds_more_requests():
    before = estimate_plan(NEMOTRON, "-c", "8K", *H100)["max_concurrency"]
    after = estimate_plan(NEMOTRON, "-c", "8K", *H100, "--mamba-ssm-cache-dtype", "float16")["max_concurrency"]
    assert after > before


# Qwen3-Next at tp 4: conv 3 x (2 x 16 x 128 + 32 x 128) / 4 = 6,144 elements, SSM 32 x 128 x 128 / 4 = 131,072;
# attention: 2 KV heads under tp 4, one replicated head: 2 x 256 x 2 = 1,024 bytes a token.
# bf16 both: 274,432 bytes -> 268 -> 272; SSM float32 (0.17+): 12,288 + 524,288 = 536,576 -> 524 -> 528.
def test_qwen3_next_block_size_by_release():
    args = (QWEN_NEXT, "-c", "32K", "-tp", "4", "--gpu", "H100")
    assert estimate_plan(*args, "--engine", "vllm==0.32.0")["block_size"] == 272
    assert estimate_plan(*args, "--engine", "vllm==0.32.0", "--mamba-ssm-cache-dtype", "float32")["block_size"] == 528
    assert estimate_plan(*args, "--engine", "vllm==0.16.0", "--mamba-ssm-cache-dtype", "float32")["block_size"] == 272


def test_note_says_what_the_flag_did():
    r = run_kvplan("estimate", NEMOTRON, "-c", "8K", *H100, "--mamba-ssm-cache-dtype", "float16")
    text = " ".join(r.stdout.split())
    assert r.returncode == 0 and "temporal (SSM) state in float16" in text and "convolution state in bfloat16" in text


def test_note_on_a_model_without_state_layers():
    r = run_kvplan("estimate", "openai/gpt-oss-20b", "-c", "8K", *H100, "--mamba-cache-dtype", "float32")
    assert r.returncode == 0 and "nothing changes" in " ".join(r.stdout.split())


@pytest.mark.parametrize("version, value, said", [
    ("0.20.0", "bfloat16", "bfloat16 is not a choice of vLLM 0.20.0; it takes auto, float32, float16."),
    ("0.12.0", "float16", "float16 is not a choice of vLLM 0.12.0; it takes auto, float32."),
    ("0.10.0", "float32", "needs vLLM 0.10.1 or later")])
def test_value_the_release_refuses(version, value, said):
    line = one_error_line(run_kvplan("estimate", NEMOTRON, "--gpu", "H100", "--engine", f"vllm=={version}",
                                     "--mamba-ssm-cache-dtype", value))
    assert "--mamba-ssm-cache-dtype" in line and said in line


def test_value_no_release_takes():
    line = one_error_line(run_kvplan("estimate", NEMOTRON, "--mamba-cache-dtype", "fp8"))
    assert "--mamba-cache-dtype must be one of auto, float32, float16, bfloat16" in line


def test_api_keywords():
    (plan,) = api.estimate(NEMOTRON, max_model_len=8192, gpu="H100", engine="vllm==0.32.0",
                           mamba_ssm_cache_dtype="float16")
    assert plan.block_size == 528
    with pytest.raises(FieldError) as error:
        api.estimate(NEMOTRON, gpu="H100", engine="vllm==0.20.0", mamba_cache_dtype="bfloat16")
    assert error.value.field == "mamba_cache_dtype" and "auto, float32, float16" in str(error.value)
    with pytest.raises(FieldError):
        api.estimate("google/gemma-3-27b-it", disable_sliding_window="yes")


def test_check_yaml_keys(tmp_path):
    path = deployments_file(tmp_path, "  - name: n\n    model: nvidia/Nemotron-H-8B-Base-8K\n    tp: 1\n"
                                      "    gpu: H100\n    context: 8192\n    engine: vllm==0.32.0\n"
                                      "    mamba_ssm_cache_dtype: float16\n")
    r = run_kvplan("check", "--file", path, "--format", "json")
    assert r.returncode == 0, r.stderr
    (result,) = json.loads(r.stdout)["results"]
    want = estimate_plan(NEMOTRON, "-c", "8K", *H100, "--mamba-ssm-cache-dtype", "float16")["max_concurrency"]
    assert result["max_concurrency"] == want
    assert any("temporal (SSM) state in float16" in w for w in result["warnings"])


def test_check_yaml_bad_value(tmp_path):
    path = deployments_file(tmp_path, "  - name: n\n    model: nvidia/Nemotron-H-8B-Base-8K\n    tp: 1\n"
                                      "    mamba_cache_dtype: fp8\n")
    line = one_error_line(run_kvplan("check", "--file", path))
    assert "mamba_cache_dtype" in line and "auto, float32, float16, bfloat16" in line


def test_help_lists_the_flags():
    r = run_kvplan("estimate", "--help")
    for name in ("--mamba-cache-dtype", "--mamba-ssm-cache-dtype", "--disable-sliding-window"):
        assert name in r.stdout


# --disable-sliding-window: the length vLLM derives and refuses past (frozen: _get_and_verify_max_len)
@pytest.mark.parametrize("model, frozen", [("google/gemma-3-27b-it", "gemma-3-27b-it"),
                                           ("openai/gpt-oss-20b", "gpt-oss-20b"),
                                           ("mistralai/Mistral-7B-v0.1", "Mistral-7B-v0.1")])
def test_disabled_window_caps_the_length(model, frozen):
    want = FROZEN["max_len"][frozen]
    plan = estimate_plan(model, "--gpu", "H100", "--engine", "vllm==0.32.0", "--disable-sliding-window")
    assert plan["context"] == want["default_disabled"]
    refused = estimate_plan(model, "-c", "32K", "--gpu", "H100", "--engine", "vllm==0.32.0",
                            "--disable-sliding-window")["engine"]["refusal"]
    assert refused["reason"].startswith(want["32768_disabled"].removeprefix("refused: "))
    assert refused["estimated_max_model_len"] == want["default_disabled"]


def test_without_the_flag_the_length_is_the_models():
    assert FROZEN["max_len"]["gemma-3-27b-it"]["default"] == 131072
    assert estimate_plan("google/gemma-3-27b-it", "--gpu", "H100", "--engine", "vllm==0.32.0",
                         "--kv-cache-memory-bytes", "10G")["context"] == 131072


# gemma-3-27b-it at 1K with every layer full: 62 layers x 2 x 16 KV heads x 128 x 2 bytes = 507,904 bytes a token
def test_every_layer_full():
    plan = estimate_plan("google/gemma-3-27b-it", "-c", "1K", "--gpu", "H100", "--engine", "vllm==0.32.0",
                         "--disable-sliding-window")
    assert plan["kv_bytes_per_token"] == 62 * 2 * 16 * 128 * 2
    spec = with_cache_flags(resolve("google/gemma-3-27b-it"), EngineFlags(disable_sliding_window=True))
    assert {layer.kind for layer in spec.layers} == {"full"} and spec.length_key == "sliding_window"


def test_chunked_layers_stay_chunked():
    spec = resolve("meta-llama/Llama-4-Scout-17B-16E-Instruct")
    assert with_cache_flags(spec, EngineFlags(disable_sliding_window=True)).layers == spec.layers


def test_no_sliding_layers_no_change():
    spec = resolve("Qwen/Qwen2.5-72B-Instruct")  # use_sliding_window false: transformers leaves sliding_window None
    assert with_cache_flags(spec, EngineFlags(disable_sliding_window=True)) == spec


def test_sliding_refused_where_not_modelled():
    with pytest.raises(KvplanError, match="not modelled"):
        with_cache_flags(resolve("google/gemma-3n-E2B"), EngineFlags(disable_sliding_window=True))


def test_sliding_flag_releases():
    line = one_error_line(run_kvplan("estimate", "google/gemma-3-27b-it", "--engine", "vllm==0.10.2",
                                     "--disable-sliding-window"))
    assert "--disable-sliding-window is modelled from vLLM 0.11" in line
    line = one_error_line(run_kvplan("estimate", "google/gemma-3-27b-it", "--engine", "none",
                                     "--disable-sliding-window"))
    assert "--disable-sliding-window is modelled with vLLM only" in line
