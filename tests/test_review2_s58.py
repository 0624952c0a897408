"""Defects the s58 second review found, each reproduced here with figures from vLLM's sources read by hand
(/tmp/s52/sd/vllm-X/vllm; 0.15.x from its sdists) and hand arithmetic.

D1  a hybrid on the POOLING runner was planned with prefix caching off in 0.11.1-0.25.x, where vLLM turns it on:
    0.11.1's pooling branch never reads is_hybrid (engine/arg_utils.py 0.11.1:1838-1858), and from 0.12 a model
    with a pooler config has the class's attn_type, "decoder" (config/model.py 0.15.1:1566-1572), which with LAST
    pooling supports prefix caching (0.15.1:1640-1661). Still off on every runner in 0.11.0 (models/config.py
    0.11.0:296) and 0.26-0.27 (arg_utils.py 0.26.0:2518-2522). A class without SupportsMambaPrefixCaching has it
    turned off again before 0.15 (models/config.py 0.11.1:293-305) and runs "align" from 0.15 (0.15.0:332-347); one
    with it runs "all", which kvplan said it did not model, and since s59 models (test_mamba_all_mode_s59.py).
D2  deployments float fields took YAML 1.1-only number forms (010 octal, 0x8, 0b1, 1_000.5, 1:30); '0.9' was refused
    for gpu_util while '8' passed for cpu_offload_gb.
D3  api.estimate(max_model_len=["auto"]) was refused as auto in a list; -c auto,auto too.
D4  the hybrid block alignment was 0.27's in every release (platforms/interface.py 0.27.0:876-888).
"""

from __future__ import annotations

import json

import pytest
from conftest import deployments_file, one_error_line, run_kvplan

from kvplan import api
from kvplan.commands.deployments import load_deployments

NEMOTRON_H = "nvidia/Nemotron-H-8B-Base-8K"
QWEN3_NEXT = "Qwen/Qwen3-Next-80B-A3B-Instruct"
KIMI_LINEAR = "moonshotai/Kimi-Linear-48B-A3B-Instruct"
LLAMA = "meta-llama/Llama-3.1-8B-Instruct"


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _embed(model: str, version: str, **kwargs):
    (plan,) = api.estimate(model, gpu=kwargs.pop("gpu", "h100"), max_model_len=8192, runner="pooling",
                           convert="embed", engine=f"vllm=={version}", **kwargs)
    return plan


# ---- D1 ----------------------------------------------------------------------------------------------------------
# Nemotron-H-8B at 8K: 4 attention layers, 24 Mamba-2 layers (hybrid_override_pattern), grouped 4 a group: one
# attention group of cdiv(8192, block) blocks (block 1040 = 16 x 65, the smallest holding a Mamba state with a float32
# SSM state, from 0.20; 528 = 16 x 33 with a 2-byte one up to 0.19: test_review_rules_s59.py) and 6 Mamba groups of
# one state block each with prefix caching off (mamba_cache_mode "none": MambaSpec.max_memory_usage_bytes 1 page,
# v1/kv_cache_interface.py 0.15.1:299-300), two in "align" mode (0.15.1:297-298).
NEMOTRON_OFF = _cdiv(8192, 1040) + 6 * 1  # 14
NEMOTRON_ON = _cdiv(8192, 1040) + 6 * 2  # 20
HALF_OFF = _cdiv(8192, 528) + 6 * 1  # 22
# "all" mode (test_mamba_all_mode_s59.py): the block the lowest multiple of the Mamba chunk, 128, holding a state
# (640 with the 2-byte SSM state, 1,152 with the float32 one), a state block every block in each of the 7 groups
ALL_HALF, ALL_FP32 = 7 * _cdiv(8192, 640), 7 * _cdiv(8192, 1152)  # 91, 56


@pytest.mark.parametrize("version, block, blocks", [
    ("0.11.0", 528, HALF_OFF),  # MambaModelConfig turns it off (models/config.py 0.11.0:296), every runner
    ("0.11.1", 640, ALL_HALF),  # the pooling branch: LAST keeps it (arg_utils.py 0.11.1:1849-1858)
    ("0.14.1", 640, ALL_HALF),  # NemotronH supports Mamba prefix caching (nemotron_h.py 0.14.1): kept
    ("0.20.0", 1152, ALL_FP32),  # attn_type "decoder" with a pooler (config/model.py 0.15.1:1566-1572)
    ("0.26.0", 1040, NEMOTRON_OFF),  # `and not model_config.is_hybrid` (arg_utils.py 0.26.0:2518-2522)
    ("0.27.1", 1040, NEMOTRON_OFF),  # the same (arg_utils.py 0.27.1:2605)
    ("0.28.0", 1040, NEMOTRON_ON),  # every hybrid, "align" for every class (models/config.py 0.28.0:602-609)
])
def test_hybrid_pooling_prefix_caching_by_release(version, block, blocks):
    plan = _embed(NEMOTRON_H, version)
    assert plan.engine.block_size == block and plan.engine.blocks_per_request == blocks
    assert not any('"all" mode' in w for w in plan.tp_warnings)


def test_hybrid_generate_runner_keeps_prefix_caching_off_before_028():
    """The generate runner's rule is unchanged: off up to 0.27 (config/model.py 0.15.1:1665-1672, attn_type
    "hybrid"), so the review's repro answer 14 stays the generating model's."""
    (plan,) = api.estimate(NEMOTRON_H, gpu="h100", max_model_len=8192, engine="vllm==0.20.0")
    assert plan.engine.blocks_per_request == NEMOTRON_OFF and not plan.tp_warnings


def test_hybrid_pooling_mean_keeps_prefix_caching_off():
    """MEAN pooling: is_prefix_caching_supported is False for a causal pooler (config/model.py 0.15.1:1642-1652)."""
    plan = _embed(NEMOTRON_H, "0.20.0", pooler_config={"pooling_type": "MEAN"})
    assert plan.engine.blocks_per_request == NEMOTRON_OFF and not plan.tp_warnings


def test_hybrid_generate_runner_with_pooler_config_from_012():
    """From 0.12 attn_type looks at `self.pooler_config is not None`, not at the runner (config/model.py
    0.12.0:1754-1761): a --pooler-config on the generate runner makes it "decoder" too."""
    (plan,) = api.estimate(NEMOTRON_H, gpu="h100", max_model_len=8192, engine="vllm==0.20.0",
                           pooler_config={"pooling_type": "LAST"})
    assert plan.runner == "generate" and plan.engine.blocks_per_request == ALL_FP32  # "all" mode, as pooling


# Qwen3-Next (no SupportsMambaPrefixCaching: qwen3_next.py 0.14.1 and 0.20.0) at tp 4, 8K: 12 attention layers, 36
# gated-DeltaNet layers, grouped 12 a group; block 272 = 16 x cdiv(274,432, 16 x 1,024) (the state page at tp 4, the
# attention page a token: 1 KV head x 256 x 2 x 2 B); one attention group of cdiv(8192, 272) = 31 blocks.
@pytest.mark.parametrize("version, blocks", [
    ("0.14.1", 31 + 3 * 1),  # prefix caching turned off again (models/config.py 0.14.1:333-345)
    ("0.20.0", 31 + 3 * 2),  # "align" mode (models/config.py 0.20.0:363-380), which kvplan models
])
def test_hybrid_pooling_without_mamba_prefix_support(version, blocks):
    plan = _embed(QWEN3_NEXT, version, gpu="h200", tensor_parallel_size=4)
    assert plan.engine.block_size == 272 and plan.engine.blocks_per_request == blocks
    assert not any('"all" mode' in w for w in plan.tp_warnings)


def test_all_mode_is_modelled_so_the_table_says_no_note():
    run = run_kvplan("estimate", NEMOTRON_H, "--gpu", "h100", "-c", "8K", "--runner", "pooling", "--convert",
                     "embed", "--engine", "vllm==0.20.0")
    assert run.returncode == 0, run.stderr
    assert "not modelled" not in " ".join(run.stdout.split())


# ---- D2 ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("line, form", [
    ("cpu_offload_gb: 010", "an octal number"),
    ("cpu_offload_gb: 1:30", "a base-60 (sexagesimal) number"),
    ("cpu_offload_gb: 0x8", "a hexadecimal, binary or octal number"),
    ("cpu_offload_gb: 0b1000", "a hexadecimal, binary or octal number"),
    ("cpu_offload_gb: 1_000.5", "a number with '_' separators"),
    ("cpu_offload_gb: 1:30.5", "a base-60 (sexagesimal) number"),
    ("gpu_util: 0b1", "a hexadecimal, binary or octal number"),
])
def test_float_fields_refuse_yaml_1_1_numbers(tmp_path, line, form):
    path = deployments_file(tmp_path, f"  - name: a\n    model: {LLAMA}\n    tp: 1\n    {line}\n")
    error = one_error_line(run_kvplan("check", "--file", str(path)))
    key, text = line.split(": ")
    assert f"field '{key}' is written '{text}', which YAML 1.1 reads as {form}" in error
    assert "write a plain decimal number" in error


@pytest.mark.parametrize("line, key, value", [
    ("gpu_util: '0.9'", "gpu_util", 0.9), ("gpu_util: \"0.9\"", "gpu_util", 0.9),
    ("cpu_offload_gb: '8'", "cpu_offload_gb", 8.0), ("cpu_offload_gb: '010'", "cpu_offload_gb", 10.0),
    ("gpu_util: 9e-1", "gpu_util", 0.9), ("cpu_offload_gb: 8", "cpu_offload_gb", 8.0),
    ("gpu_util: 0.9", "gpu_util", 0.9), ("cpu_offload_gb: 1.5", "cpu_offload_gb", 1.5),
])
def test_float_fields_read_quoted_decimals_alike(tmp_path, line, key, value):
    """Quoted decimal text is the number in both fields (as --gpu-util '0.9' and --cpu-offload-gb '8' are)."""
    path = deployments_file(tmp_path, f"  - name: a\n    model: {LLAMA}\n    tp: 1\n    {line}\n")
    (deployment,) = load_deployments(str(path))
    assert getattr(deployment, key) == value


# ---- D3 ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [["auto"], [-1], ("auto",), ["auto", "auto"], "auto,auto", "auto, -1"])
def test_auto_in_a_list_of_autos_is_auto(value):
    (plan,) = api.estimate(LLAMA, max_model_len=value, gpu="h100")
    (alone,) = api.estimate(LLAMA, max_model_len="auto", gpu="h100")
    assert plan.context == alone.context


def test_cli_auto_repeated_is_auto():
    run = run_kvplan("estimate", LLAMA, "--gpu", "h100", "-c", "auto,auto", "-f", "json")
    alone = run_kvplan("estimate", LLAMA, "--gpu", "h100", "-c", "auto", "-f", "json")
    assert run.returncode == alone.returncode == 0, run.stderr
    assert [p["context"] for p in json.loads(run.stdout)["plans"]] == \
        [p["context"] for p in json.loads(alone.stdout)["plans"]]


def test_auto_beside_a_length_still_refused():
    with pytest.raises(Exception, match="only alone"):
        api.estimate(LLAMA, max_model_len=["auto", 8192], gpu="h100")


# ---- D4 ----------------------------------------------------------------------------------------------------------
# Kimi-Linear at tp 2: the KDA state page 1,085,440 B, the MLA latent 576 x 2 B = 1,152 B a token.
@pytest.mark.parametrize("version, block", [
    ("0.15.1", 64 * _cdiv(1_085_440, 64 * 1_152)),  # 960: MLA 64 (models/config.py 0.15.0:416-421)
    ("0.19.0", 64 * _cdiv(1_085_440, 64 * 1_152)),  # 960: (0.19.0:204-210)
    ("0.20.0", 16 * _cdiv(1_085_440, 16 * 1_152)),  # 944: FLASH_ATTN_MLA's MultipleOf(16) (interface.py 0.20.0:576)
    ("0.27.0", 128 * _cdiv(1_085_440, 128 * 1_152)),  # 1024: at least 128 for MLA (interface.py 0.27.0:888)
    ("0.32.0", 128 * _cdiv(1_085_440, 128 * 1_152)),
])
def test_mla_hybrid_block_by_release(version, block):
    (plan,) = api.estimate(KIMI_LINEAR, gpu="h100", tensor_parallel_size=2, max_model_len=8192,
                           engine=f"vllm=={version}")
    assert plan.engine.block_size == block
    assert plan.engine.log_lines[0] == (f"Setting attention block size to {block} tokens to ensure that attention "
                                        f"page size is >= mamba page size.")


# Qwen3-Next at tp 4 (head size 256): state page 274,432 B, attention 1,024 B a token; flashinfer#1993's 32 on
# SM10x in 0.11.1-0.17.x (models/config.py 0.11.1:359-368 capability 10.0 only; 0.13.0:366-375 and 0.17.1:471-480
# the 10.x family), gone in 0.18.0 (:149).
@pytest.mark.parametrize("version, gpu, block", [
    ("0.11.0", "b200", 16 * _cdiv(274_432, 16 * 1_024)),  # 272: 16 for every hybrid (models/config.py 0.11.0:364-367)
    ("0.11.1", "b200", 32 * _cdiv(274_432, 32 * 1_024)),  # 288
    ("0.12.0", "b300", 16 * _cdiv(274_432, 16 * 1_024)),  # 272: B300 is 10.3, not is_device_capability(100)
    ("0.13.0", "b300", 32 * _cdiv(274_432, 32 * 1_024)),  # 288: is_device_capability_family(100)
    ("0.15.1", "b200", 288),
    ("0.17.1", "b200", 288),
    ("0.15.1", "h100", 272),  # Hopper: 16
    ("0.18.0", "b200", 272),
])
def test_head_256_hybrid_block_on_blackwell(version, gpu, block):
    (plan,) = api.estimate(QWEN3_NEXT, gpu=gpu, tensor_parallel_size=4, max_model_len=8192,
                           engine=f"vllm=={version}")
    assert plan.engine.block_size == block


# ---- nits ----------------------------------------------------------------------------------------------------------
SWITCHES = ("enforce_eager", "skip_mm_profiling", "language_model_only", "enable_expert_parallel", "enable_eplb",
            "enable_lora", "fully_sharded_loras")


@pytest.mark.parametrize("switch", SWITCHES)
def test_api_switch_none_is_the_default(switch):
    """None is off, as every other keyword takes None for its default (a string or 0 is still refused:
    test_fuzz_s58.test_api_switches_are_python_bools)."""
    (plan,) = api.estimate(LLAMA, max_model_len=8192, gpu="h100", **{switch: None})
    (default,) = api.estimate(LLAMA, max_model_len=8192, gpu="h100")
    assert plan.engine.num_gpu_blocks == default.engine.num_gpu_blocks
    (result,) = api.check(LLAMA, tensor_parallel_size=1, max_model_len=8192, **{switch: None})
    assert result["passed"]


@pytest.mark.parametrize("name, stored", [(" 0.32.0", "0.32.0"), ("0.10.01", "0.10.1"), ("0.32.0 ", "0.32.0"),
                                          ("0.10", "0.10")])
def test_engine_version_is_the_published_spelling(name, stored):
    run = run_kvplan("estimate", LLAMA, "--gpu", "h100", "-c", "8K", "--engine", f"vllm=={name}", "-f", "json")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["plans"][0]["engine"]["version"] == stored
    table = run_kvplan("estimate", LLAMA, "--gpu", "h100", "-c", "8K", "--engine", f"vllm=={name}")
    assert table.stdout.startswith(f"vllm {stored} at --max-model-len 8192")
