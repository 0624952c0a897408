"""vLLM 0.19.1-0.33.0 installed transformers 5.5.4 ... 5.20.2 on their day, not 5.22.2 (class_defaults.
TRANSFORMERS_SINCE's comment maps each release). The script tests/data/transformers_config_defaults.py, run under
5.5.4 (0.19.1), 5.12.0 (0.23.0) and 5.17.0 (0.30.0, 0.31.0), froze tests/data/transformers_config_defaults_<version>
.json: DeepseekV3Config / Glm4MoeConfig fill no num_nextn_predict_layers before 5.14.1 and GlmMoeDsaConfig no
first_k_dense_replace before 5.12.0, hence tables for 0.19.1-0.22.1 (5.5.4) and 0.23.0-0.25.1 (5.12.0); 5.17.0 reads
as CLASS_DEFAULTS (5.22.2) does. A remedy naming another release reads the model with that release's table, in check
(commands/check/served.py read_model, keyed by it) and estimate (commands/estimate.py other_engine). Figures by hand."""

import json

import pytest

from tests.conftest import ROOT, run_kvplan

from kvplan.engines.vllm_versions import parse_version
from kvplan.model.class_defaults import CLASS_DEFAULTS, SAME_CLASS, family_defaults, transformers_for
from kvplan.model.parse import parse_config

DATA = ROOT / "tests" / "data"
FROZEN = {version: json.loads((DATA / f"transformers_config_defaults_{version}.json").read_text())
          for version in ("5.5.4", "5.12.0", "5.17.0")}
NEWEST = json.loads((DATA / "transformers_config_defaults.json").read_text())
NOT_FILLED = ("sliding_window", "use_sliding_window", "max_window_layers", "attention_chunk_size", "scoring_func")


def _plain(entry: dict) -> dict:
    return {field: value for field, value in entry["fields"].items()
            if field not in NOT_FILLED and isinstance(value, (bool, int, float))}


def _field(version: str, family: str, field: str):
    frozen = FROZEN[version] if version in FROZEN else NEWEST
    return frozen["families"][family]["fields"].get(field, "absent")


def test_the_frozen_files_name_their_transformers():
    for version, frozen in FROZEN.items():
        assert frozen["transformers"] == version
        assert frozen["command"].endswith(f"> tests/data/transformers_config_defaults_{version}.json")
    # classes transformers added later are said missing, not guessed
    assert {"laguna", "cohere2_moe", "deepseek_v4", "axk1"} <= set(FROZEN["5.5.4"]["no_class"])
    assert {"axk1", "mimo_v2_flash", "step3p5"} == set(FROZEN["5.12.0"]["no_class"])
    assert "no_class" not in FROZEN["5.17.0"]


def test_the_defaults_that_moved_within_transformers_5():
    """The cuts: num_nextn_predict_layers none in 5.12.0 (and 5.13.1, 0.25.x), 1 in 5.17.0 and 5.22.2; GLM-5's
    first_k_dense_replace none in 5.5.4 (its class derives mlp_layer_types instead), 3 from 5.12.0."""
    for family in ("deepseek_v3", "glm4_moe"):
        assert [_field(v, family, "num_nextn_predict_layers") for v in ("5.5.4", "5.12.0", "5.17.0", "5.22.2")] == \
            ["absent", "absent", 1, 1]
    assert [_field(v, "glm_moe_dsa", "first_k_dense_replace") for v in ("5.5.4", "5.12.0", "5.22.2")] == \
        ["absent", 3, 3]
    assert [transformers_for(parse_version(r)) for r in ("0.19.1", "0.22.1", "0.23.0", "0.25.1", "0.26.0", "0.30.0")] \
        == ["5.5.4", "5.5.4", "5.12.0", "5.12.0", None, None]


def test_transformers_5_17_reads_as_the_newest_table():
    """0.26.0-0.34.0 read CLASS_DEFAULTS: every plain default 5.17.0 fills, and every one the newest table holds, is
    what the reader fills (family_defaults: the table and FAMILY_FIELDS). 5.17.0 differs from 5.22.2 only in AXK1's
    first_k_dense_replace 1, which 5.20 on pops into mlp_layer_types (FAMILY_FIELDS keeps it), and MiMo-V2-Flash's
    sliding_window, which kvplan does not fill."""
    compared = 0
    for family, entry in FROZEN["5.17.0"]["families"].items():
        plain = _plain(entry)
        newest = CLASS_DEFAULTS.get(SAME_CLASS.get(family, family), {})
        filled = family_defaults(family)
        for field in set(plain) | set(newest):
            assert filled.get(field) == plain.get(field), (family, field)
            compared += 1
    assert compared >= 650  # 657 family fields when frozen
    assert _field("5.17.0", "axk1", "first_k_dense_replace") == 1
    assert _field("5.22.2", "axk1", "first_k_dense_replace") == "absent"


def _read(config: dict, release: str):
    return parse_config(config, "x", transformers=transformers_for(parse_version(release)))


# GLM-4.5-Air's shape, small: no num_nextn_predict_layers
GLM45 = {"model_type": "glm4_moe", "architectures": ["Glm4MoeForCausalLM"], "hidden_size": 1024,
         "num_hidden_layers": 4, "num_attention_heads": 8, "num_key_value_heads": 2, "head_dim": 128,
         "vocab_size": 1000, "n_routed_experts": 8, "num_experts_per_tok": 2, "moe_intermediate_size": 256,
         "intermediate_size": 2048, "torch_dtype": "bfloat16"}


@pytest.mark.parametrize("release, modules", [("0.10.0", 0), ("0.19.1", 0), ("0.25.1", 0), ("0.26.0", 1),
                                              ("0.34.0", 1)])
def test_mtp_module_without_num_nextn_predict_layers(release, modules):
    """Glm4MoeConfig / DeepseekV3Config fill num_nextn_predict_layers 1 from transformers 5.14.1 (vLLM 0.26.0), none
    before; the hand-written GLM-4.5 fields no longer override that by release."""
    assert _read(GLM45, release).mtp_modules == modules
    assert _read({**GLM45, "num_nextn_predict_layers": 1}, release).mtp_modules == 1


def test_glm5_without_first_k_dense_replace():
    """GLM-5.2's bundled config without first_k_dense_replace: 78 layers, 3 dense where the class fills 3 (5.12.0 on:
    75 MoE); before (0.19.1-0.22.1) the class lacks it and vLLM's deepseek_v2.py, reading
    config.first_k_dense_replace (0.19.1:1069), stops: refused (tests/test_leftovers_s73.py)."""
    import yaml

    from kvplan.errors import KvplanError

    config = yaml.safe_load((ROOT / "model_specs" / "zai-org--GLM-5.2.yaml").read_text())["config"]
    assert config["first_k_dense_replace"] == 3 and config["num_hidden_layers"] == 78
    bare = {k: v for k, v in config.items() if k != "first_k_dense_replace"}
    assert [_read(bare, r).moe_layers for r in ("0.23.0", "0.34.0")] == [78 - 3, 78 - 3]
    with pytest.raises(KvplanError, match="first_k_dense_replace"):
        _read(bare, "0.22.1")
    assert _read(config, "0.22.1").moe_layers == 75  # the published config names it


@pytest.mark.parametrize("release", ["0.30.0", "0.32.0", "0.34.0"])
def test_axk1_without_its_layer_fields_has_one_dense_layer(release):
    """vLLM 0.30.0's own AXK1Config (configs/AXK1.py:144) and transformers 5.19.0's fill first_k_dense_replace 1,
    read at AXK1.py 0.30.0:652 / 0.32.0:649; 5.22.2's pops it with 1 into mlp_layer_types, read at AXK1.py 0.34.0:
    98-106. 4 layers: 1 dense, 3 MoE (kvplan read 4 MoE before: the newest table holds no first_k_dense_replace)."""
    axk1 = {"model_type": "axk1", "architectures": ["AXK1ForCausalLM"], "hidden_size": 1024, "num_hidden_layers": 4,
            "num_attention_heads": 8, "num_key_value_heads": 8, "vocab_size": 1000, "n_routed_experts": 8,
            "num_experts_per_tok": 2, "moe_intermediate_size": 256, "intermediate_size": 2048,
            "torch_dtype": "bfloat16", "q_lora_rank": 256, "kv_lora_rank": 128, "qk_rope_head_dim": 32,
            "qk_nope_head_dim": 64, "v_head_dim": 64}
    assert _read(axk1, release).moe_layers == 3
    assert _read({**axk1, "mlp_layer_types": ["sparse"] * 4}, release).moe_layers == 4


# Gemma-2-9B's shape without intermediate_size and num_key_value_heads (tests/test_transformers_4x_defaults_s73.py)
GEMMA2 = {"model_type": "gemma2", "architectures": ["Gemma2ForCausalLM"], "hidden_size": 3584, "num_hidden_layers": 42,
          "num_attention_heads": 16, "head_dim": 256, "vocab_size": 256000, "torch_dtype": "bfloat16",
          "sliding_window": 4096, "max_position_embeddings": 8192}
# vLLM 0.5.0 has no Gemma2ForCausalLM (registered from 0.5.1): the remedy plans the later releases, across 0.6.5,
# where the widths change. Weights in bf16: 14,482,488,832 x 2 = 28,964,977,664 B = 26.98 GiB up to 0.6.4 (24,576 and
# 16 heads), 6,621,314,560 x 2 = 13,242,629,120 B = 12.33 GiB from 0.6.5 (9,216 and 4); an L4 offers 22.0 GiB x 0.90
# = 19.8 GiB: the weights fit from 0.6.5 only.
REMEDY = "vllm==0.6.5 or newer; or vLLM accepts {flag}vllm==0.5.1 (any release from 0.5.1 before 0.6.5), but then " \
         "the weights alone do not fit"


def test_estimate_remedy_reads_each_release_transformers(write_config):
    """Before: estimate planned every remedy release with the model as 0.5.0 reads it (16 KV heads, 24,576 wide), so
    it said "vLLM accepts --engine vllm==0.5.1 or newer, but then the weights alone do not fit"."""
    r = run_kvplan("estimate", write_config(GEMMA2), "-c", "4096", "--gpu", "L4", "--engine", "vllm==0.5.0",
                   "--format", "json")
    assert r.returncode == 0, r.stderr
    refusal = json.loads(r.stdout)["plans"][0]["engine"]["refusal"]
    assert refusal["remedy"] == "it starts with --engine " + REMEDY.format(flag="--engine ")


def test_check_remedy_reads_each_release_transformers(tmp_path, write_config):
    deployments = tmp_path / "d.yaml"
    deployments.write_text(f"deployments:\n- name: g2\n  model: {write_config(GEMMA2)}\n  tp: 1\n"
                           f"  engine: vllm==0.5.0\n  gpu: L4\n  context: 4096\n")
    r = run_kvplan("check", "--file", str(deployments), "--format", "json")
    assert r.returncode == 1, r.stderr
    (error,) = json.loads(r.stdout)["results"][0]["errors"]
    assert "it starts with engine " + REMEDY.format(flag="engine ") in error
