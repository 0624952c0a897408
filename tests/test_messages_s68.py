"""Session 68: two messages the fuzz round found short of what they should say."""

import json
from pathlib import Path

import yaml

from conftest import one_error_line, run_kvplan

ROOT = Path(__file__).resolve().parent.parent


def test_a_layer_types_list_of_the_wrong_length_says_how_many_it_has(write_config):
    config = yaml.safe_load((ROOT / "model_specs" / "Qwen--Qwen3.5-9B.yaml").read_text())["config"]
    text = config.get("text_config") or config
    text["layer_types"] = text["layer_types"][:5]  # 32 layers (3 linear to 1 full attention)
    line = one_error_line(run_kvplan("estimate", write_config(config), "-c", "8192"))
    assert line.startswith("kvplan: error: config field 'text_config.layer_types' must give one entry per layer (32), "
                           'got 5 entries: ["linear_attention", "linear_attention", "linear_attention", '
                           '"full_attention"....'), line  # json_value cuts a long value


def test_a_one_stage_partition_asks_for_one_count():
    r = run_kvplan("estimate", "meta-llama/Llama-3.1-8B-Instruct", "-c", "8192", "--pp-layer-partition", "8192",
                   "--format", "json")
    (plan,) = json.loads(r.stdout)["plans"]
    assert plan["tp_errors"] == ["--pp-layer-partition 8192 must be one positive layer count equal to "
                                 "num_hidden_layers (32)."]
