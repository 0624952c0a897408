"""Kimi Linear as vLLM 0.32.0 serves it: Kimi Delta Attention (KDA) layers where linear_attn_config.kda_layers says
(1-based), MLA elsewhere; a KDA layer's fixed state (a conv window over q, k and v in the model dtype, a float32
recurrent state), the hybrid block size, the weights vLLM allocates (experts padded at TP 8) and what stays refused
(Kimi K3 and its fields; verify's forward pass: tests/test_verify_kda.py). Expected values are hand arithmetic from
the bundled config and vLLM's own figures: tests/data/vllm_0.32.0_kv_figures.json (the kimi grid,
benchmarks/vllm_reference/make_figures.py) and tests/data/vllm_kimi_linear_weights.json
(benchmarks/vllm_reference/kimi_weights.py), both made with vLLM 0.32.0's model code on the CPU."""

import copy
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from conftest import load_yaml, run_kvplan
from kvplan.engines.vllm import layer_specs
from kvplan.engines.vllm_settings import Settings
from kvplan.engines.vllm_versions import behaviour
from kvplan.errors import KvplanError
from kvplan.model.kinds import LinearState, MLALatent
from kvplan.model.parse import parse_config
from kvplan.model.precision import PRECISIONS
from kvplan.model.sources import resolve
from kvplan.plan.capacity import token_bytes
from kvplan.plan.sharding import expert_padding, stage_weights

ROOT = Path(__file__).resolve().parents[1]
KIMI = "moonshotai/Kimi-Linear-48B-A3B-Instruct"
BF16, FP8 = PRECISIONS["bf16"], PRECISIONS["fp8_e4m3"]

_spec = importlib.util.spec_from_file_location("engine_vllm_reference",
                                               ROOT / "benchmarks" / "engine_vllm_reference.py")
reference = sys.modules["engine_vllm_reference"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(reference)
FROZEN = [c for c in reference.load()["cases"] if c["inputs"]["grid"] == "kimi"]
WEIGHTS = json.loads((ROOT / "tests" / "data" / "vllm_kimi_linear_weights.json").read_text())

# the bundled config: 32 KDA heads of 128, kernel 4; MLA latent 512 + 64
CONV_TP1 = 3 * 3 * 32 * 128 * 2  # (kernel - 1) x (q, k, v) x 4096 channels, bf16 = 73,728
STATE_TP1 = 32 * 128 * 128 * 4  # heads x head_dim x head_dim, float32 = 2,097,152


def bundled_config() -> dict:
    return load_yaml((ROOT / "model_specs" / (KIMI.replace("/", "--") + ".yaml")).read_text())["config"]


def with_fields(**fields) -> dict:
    config = copy.deepcopy(bundled_config())
    config.update(fields)
    return config


def with_kda(**fields) -> dict:
    config = copy.deepcopy(bundled_config())
    config["linear_attn_config"].update(fields)
    return config


def test_kda_on_the_layers_kda_layers_names_counting_from_one():
    layers = resolve(KIMI).layers
    assert len(layers) == 27
    mla = [i for i, layer in enumerate(layers) if isinstance(layer, MLALatent)]
    assert mla == [3, 7, 11, 15, 19, 23, 26]  # full_attn_layers 4, 8, ..., 24, 27 less one
    assert all(isinstance(layers[i], LinearState) and layers[i].flavor == "kda" for i in range(27) if i not in mla)
    assert layers[3] == MLALatent(512, 64)


def test_a_kda_state_by_hand_and_as_vllm_shapes_it():
    kda = resolve(KIMI).linear_layers[0]
    assert kda.state_bytes(1, 2) == CONV_TP1 + STATE_TP1 == 2170880
    # the recurrent state stays float32 whatever dtype the caller passes (kda_state_dtype 'auto')
    assert kda.state_bytes(1, 2, 2) == kda.state_bytes(1, 2, 4) == 2170880
    assert kda.state_bytes(2, 2) == 2170880 // 2 and kda.state_bytes(8, 2) == 2170880 // 8
    tp1 = next(c for c in FROZEN if c["inputs"]["tp"] == 1 and c.get("kv"))
    mamba = tp1["kv"]["groups"][0]
    assert mamba["shapes"] == [[3, 3 * 4096], [32, 128, 128]] and mamba["dtypes"] == ["bfloat16", "float32"]
    assert mamba["real_page_size_bytes"] == 2170880


def test_bytes_a_token_are_the_seven_mla_latents():
    assert token_bytes(resolve(KIMI), 1, BF16) == 7 * 576 * 2 == 8064
    assert token_bytes(resolve(KIMI), 8, BF16) == 8064  # replicated on every rank
    assert token_bytes(resolve(KIMI), 1, FP8) == 7 * 576


@pytest.mark.parametrize("precision, block", [(BF16, 1920), (FP8, 3840)])
def test_the_block_holds_one_state_in_an_mla_page(precision, block):
    # MLA hybrids align to 128 tokens: ceil(2,170,880 / (128 x bytes a latent)) x 128 tokens; the state page is
    # padded to that attention page (2,211,840 bytes either way)
    per_token = 576 * precision.bits // 8
    assert block == 128 * -(-2170880 // (128 * per_token))
    settings = Settings(32768, 8192, 1024, 2)
    specs, bs, lines = layer_specs(resolve(KIMI), 1, precision, settings, None, behaviour("0.32.0"))
    assert bs == block and {s.page_bytes for s in specs} == {block * per_token} == {2211840}
    assert lines[0] == f"Setting attention block size to {block} tokens to ensure that attention page size is >= " \
                       f"mamba page size."
    frozen = next(c for c in FROZEN if c["inputs"]["kv_cache_dtype"] == ("auto" if precision is BF16 else "fp8")
                  and c.get("kv"))
    assert frozen["kv"]["block_size"] == block


def test_vllm_groups_twenty_kda_layers_as_three_groups_beside_the_mla_group():
    # 7 MLA layers: the KDA layers split into groups of 7 (7, 7, 6 + one padding layer), four pages a block
    case = next(c for c in FROZEN if c["inputs"]["tp"] == 1 and c.get("kv"))
    assert [g["num_layers"] for g in case["kv"]["groups"]] == [7, 7, 6, 7]
    assert case["kv"]["bytes_per_block"] == 7 * 2211840
    assert case["log_lines"][0] == "Add 1 padding layers, may waste at most 5.00% KV cache memory"


def test_one_32k_request_by_hand_against_vllm():
    # blocks a request: the MLA group cdiv(32768, 1920) = 18, each KDA group 2 state blocks ("align" mode: the
    # state of the last step and of this one): 24 blocks of 7 pages of 2,211,840 bytes
    case = next(c for c in FROZEN if c["inputs"]["tp"] == 1 and c["inputs"]["max_model_len"] == 32768
                and c["inputs"]["available_kv_cache_bytes"] == 40 * 2**30 and c["inputs"]["kv_cache_dtype"] == "auto")
    assert [g["blocks_per_request"] for g in case["kv"]["groups"]] == [2, 2, 2, 18]
    blocks = 40 * 2**30 // (7 * 2211840)
    assert case["kv"]["num_gpu_blocks"] == blocks == 2774
    assert case["kv"]["max_concurrency"] == blocks / 24


def test_weights_as_vllm_allocates_them_at_every_tp():
    spec = resolve(KIMI)
    for case in WEIGHTS["cases"]:
        tp = case["inputs"]["tp"]
        # vLLM's MLA layers hold 5 float32 scalars more each (the attention layer's scales): 7 x 5 x 4 bytes
        assert case["total"]["bytes"] - stage_weights(spec, tp) == 7 * 5 * 4, tp
    assert sum(g.parameters for g in spec.params) == WEIGHTS["cases"][0]["total"]["elements"] - 35


def test_experts_are_padded_to_256_columns_a_rank_at_tp_8():
    spec = resolve(KIMI)
    # moe_intermediate_size 1024: 128 a rank at TP 8 is padded to 256 (kimi_k3 KimiMoE), so a rank holds what TP 4's
    assert [expert_padding(spec, tp) for tp in (1, 2, 4, 8)] == [1.0, 1.0, 1.0, 2.0]
    assert expert_padding(spec, 8, expert_parallel=True) == 1.0
    routed = {c["inputs"]["tp"]: c["groups"]["routed_experts"]["bytes"] for c in WEIGHTS["cases"]}
    assert routed[8] == routed[4] == 256 * 26 * 3 * 2304 * 256 * 2


def test_the_default_length_is_model_max_length():
    spec = resolve(KIMI)
    assert spec.max_position_embeddings == 1048576 and spec.length_key == "model_max_length"
    refused = next(c for c in FROZEN if c["inputs"]["max_model_len"] == 2097152)
    assert "model_max_length=1048576.0 or model_max_length=1048576" in refused["error"]


@pytest.mark.parametrize("config, needle", [
    (with_fields(attn_res_block_size=6), "attn_res_block_size"),
    (with_fields(mla_use_output_gate=True), "mla_use_output_gate"),
    (with_fields(routed_expert_hidden_size=1152), "routed_expert_hidden_size"),
    (with_kda(use_full_rank_gate=True), "use_full_rank_gate"),
])
def test_kimi_k3_features_stay_refused(config, needle):
    with pytest.raises(KvplanError, match=needle):
        parse_config(config, "k3-like")


@pytest.mark.parametrize("config, needle", [
    (with_kda(kda_layers=[0, 1]), "linear_attn_config.kda_layers"),
    (with_kda(kda_layers=[28]), "linear_attn_config.kda_layers"),
    (with_kda(num_heads=0), "linear_attn_config.num_heads"),
    (with_kda(short_conv_kernel_size=None), "linear_attn_config.short_conv_kernel_size"),
    (with_fields(linear_attn_config=[1, 2]), "linear_attn_config"),
])
def test_bad_kda_fields_are_refused_in_one_line(write_config, config, needle):
    result = run_kvplan("estimate", write_config(config), "--gpu", "h200")
    assert result.returncode == 2 and result.stdout == "" and "Traceback" not in result.stderr
    line, = result.stderr.strip().splitlines()
    assert needle in line, line


def test_kda_heads_must_divide_tp():
    result = run_kvplan("check", KIMI, "-tp", "3", "--format", "json")
    assert result.returncode == 1
    assert "linear-attention state heads (32) are not divisible by tp 3" in result.stdout
