"""The defaults a config.json's omitted fields take are those of the transformers the planned vLLM release installs
(session 73). vLLM 0.2.0-0.19.0 ran on transformers 4.x, whose config classes fill some fields differently:
tests/data/transformers_config_defaults_4.57.6.json and _4.45.2.json freeze them (the same script as the 5.22.2
file, tests/data/transformers_config_defaults.py, run under that transformers); kvplan/model/class_defaults.py holds
them as OLDER_DEFAULTS, read by release through transformers_for. Figures below by hand arithmetic."""

import json

import pytest

from tests.conftest import ROOT, run_kvplan

from kvplan.engines.vllm_releases import PUBLISHED
from kvplan.engines.vllm_versions import parse_version
from kvplan.model.class_defaults import (CLASS_DEFAULTS, OLDER_DEFAULTS, SAME_CLASS, TRANSFORMERS_SINCE,
                                         defaults_table, transformers_for)
from kvplan.model.parse import parse_config

DATA = ROOT / "tests" / "data"
NEWEST = json.loads((DATA / "transformers_config_defaults.json").read_text())
OLDER = {version: json.loads((DATA / f"transformers_config_defaults_{version}.json").read_text())
         for version in OLDER_DEFAULTS}
# as tests/test_config_defaults_s72.py: the windows and text are recorded, not filled
NOT_FILLED = ("sliding_window", "use_sliding_window", "max_window_layers", "attention_chunk_size", "scoring_func")


def _plain(entry: dict) -> dict:
    return {field: value for field, value in entry["fields"].items()
            if field not in NOT_FILLED and isinstance(value, (bool, int, float))}


def test_the_frozen_files_name_their_transformers_and_script():
    assert NEWEST["transformers"] == TRANSFORMERS_SINCE[0][1] == "5.22.2"
    for version, frozen in OLDER.items():
        assert frozen["transformers"] == version
        assert frozen["script"] == "tests/data/transformers_config_defaults.py"
        assert frozen["command"].endswith(f"> tests/data/transformers_config_defaults_{version}.json")
    # families added to transformers after 4.57 have no class there, and are said so, not guessed
    assert {"gemma4_text", "qwen3_5_text", "deepseek_v4"} <= set(OLDER["4.57.6"]["no_class"])
    assert {"deepseek_v3", "qwen3_moe", "gemma3_text"} <= set(OLDER["4.45.2"]["no_class"])


@pytest.mark.parametrize("release, transformers", [
    ("0.2.0", "4.45.2"), ("0.6.4.post1", "4.45.2"),  # day one: transformers 4.33.3 ... 4.46.2
    ("0.6.5", "4.57.6"), ("0.19.0", "4.57.6"), ("0.19", "4.57.6"),  # 4.47.1 ... 4.57.6 (0.11.1-0.19.0: <5)
    ("0.19.1", "5.5.4"), ("0.22.1", "5.5.4"), ("0.23.0", "5.12.0"), ("0.25.1", "5.12.0"),  # 5.5.4 ... 5.13.1
    ("0.26.0", None), ("0.34.0", None),  # 5.14.1 ... 5.22.2: CLASS_DEFAULTS as it is
])
def test_the_transformers_a_release_installs(release, transformers):
    """Requires-Dist of the wheels: 0.6.4.post1 transformers>=4.45.2 (4.46.2 the newest that day), 0.6.5 >=4.45.2
    (4.47.1, whose Gemma2Config has the 9,216 / 4 defaults), 0.19.0 >=4.56.0,<5, 0.19.1 >=4.56.0 but not 5.0-5.5.0
    (5.5.4), 0.24.0 >=5.5.3 (the first to require 5); tests/test_transformers_5x_defaults_s73.py: the 5.x cuts."""
    assert transformers_for(parse_version(release)) == transformers
    assert transformers_for(None) is None  # --engine none: the newest


def test_every_published_release_reads_a_frozen_table():
    tables = {transformers_for(parse_version(release)) for release in PUBLISHED}
    assert tables == {None, *OLDER_DEFAULTS}


def _entry(table: dict, family: str) -> dict:
    return table.get(SAME_CLASS.get(family, family), {})


@pytest.mark.parametrize("version", list(OLDER_DEFAULTS))
def test_an_older_table_is_its_frozen_transformers(version):
    """Every family that transformers has a class for reads exactly its plain defaults; one it has none for keeps
    the newer table's entry (the next frozen version's; CLASS_DEFAULTS for 4.57.6)."""
    versions = list(OLDER_DEFAULTS)
    newer = None if version == versions[0] else versions[versions.index(version) - 1]
    frozen = OLDER[version]
    for family, entry in frozen["families"].items():
        assert _entry(defaults_table(version), family) == _plain(entry), family
    for family in frozen["no_class"]:
        assert _entry(defaults_table(version), family) == _entry(defaults_table(newer), family), family
    for family, fields in OLDER_DEFAULTS[version].items():  # no entry that changes nothing
        for field, value in fields.items():
            assert defaults_table(newer)[family].get(field) != value, (family, field)
    assert defaults_table(None) is CLASS_DEFAULTS


# ---- what moves -------------------------------------------------------------------------------------------------

# Gemma-2-9B's shape without intermediate_size and num_key_value_heads, which transformers fills
GEMMA2 = {"model_type": "gemma2", "architectures": ["Gemma2ForCausalLM"], "hidden_size": 3584, "num_hidden_layers": 42,
          "num_attention_heads": 16, "head_dim": 256, "vocab_size": 256000, "torch_dtype": "bfloat16",
          "sliding_window": 4096, "max_position_embeddings": 8192}


@pytest.mark.parametrize("release, kv_heads, width", [("0.6.4", 16, 24576), ("0.6.5", 4, 9216), ("0.34.0", 4, 9216)])
def test_gemma2_without_its_widths_reads_the_release_transformers(write_config, release, kv_heads, width):
    """transformers 4.45.2 Gemma2Config: intermediate_size 24,576, num_key_value_heads 16 (Gemma 1's); 4.47 on: 9,216
    and 4. KV per token 2 x kv_heads x 256 x 2 bytes x 42 layers: 688,128 (16 heads) or 172,032 (4). Parameters: q and
    o 2 x 3584 x 4096 = 29,360,128, k and v 2 x 3584 x (kv_heads x 256), MLP 3 x 3584 x width, four norms 14,336 a
    layer, x 42; the tied embedding 256000 x 3584 = 917,504,000 and the final norm 3,584."""
    r = run_kvplan("estimate", write_config(GEMMA2), "-c", "4096", "--gpu", "H100", "--engine", f"vllm=={release}",
                   "--format", "json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    layer = 29_360_128 + 2 * 3584 * kv_heads * 256 + 3 * 3584 * width + 14_336
    assert out["model"]["parameters"] == 42 * layer + 917_504_000 + 3584
    assert out["plans"][0]["kv_bytes_per_token"] == 2 * kv_heads * 256 * 2 * 42
    assert {16: 14_482_488_832, 4: 6_621_314_560}[kv_heads] == out["model"]["parameters"]


def test_qwen3_vl_moe_text_without_tie_is_untied_before_transformers_5():
    """Qwen3VLMoeTextConfig: tie_word_embeddings False in 4.57.6, True in 5.22.2; untied, the LM head is one more
    vocab x hidden matrix: 151,936 x 2,048 = 311,164,928 parameters."""
    config = {"model_type": "qwen3_vl_moe_text", "architectures": ["Qwen3VLMoeForConditionalGeneration"],
              "hidden_size": 2048, "num_hidden_layers": 2, "num_attention_heads": 32, "num_key_value_heads": 4,
              "head_dim": 128, "vocab_size": 151936, "num_experts": 8, "num_experts_per_tok": 2,
              "moe_intermediate_size": 768, "torch_dtype": "bfloat16"}
    tied, untied = (parse_config(config, "x", transformers=t).weights.parameters for t in (None, "4.57.6"))
    assert untied - tied == 151_936 * 2048 == 311_164_928
    assert parse_config({**config, "tie_word_embeddings": True}, "x", transformers="4.57.6").weights.parameters == tied


def test_gpt_bigcode_kv_heads_follow_multi_query():
    """GPTBigCodeConfig (5.22.2 __post_init__): num_key_value_heads = 1 if multi_query else n_head; vLLM 0.34.0
    gpt_bigcode.py reads multi_query. The frozen table held a plain 1 (the bare class's), read for multi_query false
    too; the freezer now flips multi_query and records the derivation."""
    assert NEWEST["families"]["gpt_bigcode"]["fields"]["num_key_value_heads"] == {
        "derived": "1 if multi_query else num_attention_heads"}
    config = {"model_type": "gpt_bigcode", "n_embd": 1024, "n_layer": 2, "n_head": 16, "vocab_size": 1000}
    assert parse_config({**config, "multi_query": False}, "x").kv_heads == 16
    assert parse_config(config, "x").kv_heads == 1  # GPTBigCodeConfig's multi_query defaults to true


def test_check_reads_the_deployment_release_transformers(tmp_path, write_config):
    """`kvplan check --file`: two deployments of one config under 0.6.4 and 0.34.0 read 16 and 4 KV heads."""
    path = write_config(GEMMA2)
    deployments = tmp_path / "d.yaml"
    deployments.write_text("deployments:\n" + "".join(
        f"- name: {name}\n  model: {path}\n  tp: 1\n  engine: vllm=={release}\n  gpu: H100\n"
        for name, release in (("old", "0.6.4"), ("new", "0.34.0"))))
    r = run_kvplan("check", "--file", str(deployments), "--format", "json")
    assert r.returncode in (0, 1), r.stderr
    rows = json.loads(r.stdout)["results"]
    kv = {row["name"]: (row["num_key_value_heads"], row["kv_bytes_per_token"]) for row in rows}
    assert kv == {"old": (16, 2 * 16 * 256 * 2 * 42), "new": (4, 2 * 4 * 256 * 2 * 42)}
