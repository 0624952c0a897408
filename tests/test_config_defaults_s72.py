"""A config.json field left out is read as the engine's config loader fills it, or refused (session 72).

vLLM builds its config with transformers' AutoConfig, so a field the file omits reaches vLLM's model code as the
default of that model_type's config class. tests/data/transformers_config_defaults.json freezes those defaults as
transformers 5.22.2 fills them (made by tests/data/transformers_config_defaults.py; vLLM 0.34.0 requires
transformers>=5.16.1,<5.23.0); these tests hold kvplan/model/class_defaults.py and the reader to it without
transformers installed, and check the figures a filled field gives by hand arithmetic."""

import json
import math

import pytest

from tests.conftest import ROOT, one_error_line, run_kvplan
from tests.hub_configs import DEEPSEEK_V2_LITE, GPT2, LLAMA3_8B

from kvplan.errors import KvplanError
from kvplan.model.class_defaults import (CLASS_ALIASES, CLASS_DEFAULTS, FAMILY_FIELDS, HEAD_DIM_REQUIRED,
                                         MOE_LAYER_FIELDS, NO_DEFAULT, SAME_CLASS, WIDTH_FROM_HIDDEN, family_defaults)
from kvplan.model.config import Config
from kvplan.model.parse import parse_config

FROZEN = json.loads((ROOT / "tests" / "data" / "transformers_config_defaults.json").read_text())
ERROR = "kvplan: error: "
# the fields the generator records but kvplan does not fill: the windows (vLLM's models read them through
# layer_types, llama.py 0.34.0:185-204) and text
NOT_FILLED = ("sliding_window", "use_sliding_window", "max_window_layers", "attention_chunk_size", "scoring_func")


def _plain(value) -> bool:
    return isinstance(value, (bool, int, float))


def _parameters(spec, group: str) -> int:
    return sum(g.parameters for g in spec.params if g.name == group)


# ---- the table is the frozen transformers output -------------------------------------------------------------

def test_the_frozen_file_names_its_transformers():
    assert FROZEN["transformers"] == "5.22.2"
    assert FROZEN["script"] == "tests/data/transformers_config_defaults.py"
    # the families vLLM 0.34.0 builds with a config class of its own are listed, not guessed at
    assert {"kimi_linear", "refinedweb", "refinedwebmodel", "muse_spark"} <= set(FROZEN["not_transformers"])


def _entry(table: dict, family: str) -> dict:
    """A family's entry of CLASS_DEFAULTS or CLASS_ALIASES, its class's shared one where SAME_CLASS names it."""
    assert family not in table or family not in SAME_CLASS
    return table.get(SAME_CLASS.get(family, family), {})


def test_class_defaults_are_the_classes_plain_defaults():
    for family, entry in FROZEN["families"].items():
        expected = {field: value for field, value in entry["fields"].items()
                    if field not in NOT_FILLED and _plain(value)}
        assert _entry(CLASS_DEFAULTS, family) == expected, family
    assert set(CLASS_DEFAULTS) | set(SAME_CLASS) <= set(FROZEN["families"])
    # one class: DeepseekV3Config builds deepseek_v3, deepseek_v32 and kimi_k2 (vLLM 0.34.0 _CONFIG_REGISTRY)
    assert {FROZEN["families"][f]["class"] for f in ("deepseek_v3", "deepseek_v32", "kimi_k2")} == {"DeepseekV3Config"}


def test_class_aliases_are_the_classes_attribute_maps():
    for family, entry in FROZEN["families"].items():
        assert _entry(CLASS_ALIASES, family) == entry["aliases"], family


def test_the_hand_written_family_fields_agree_with_the_classes():
    """FAMILY_FIELDS (Gemma's text_config defaults, GLM-4.5's) holds fields beyond the table's; where the generator
    recorded the same field, the two agree."""
    compared = 0
    for family, fields in FAMILY_FIELDS.items():
        recorded = FROZEN["families"].get(family, {}).get("fields", {})
        for field, value in fields.items():
            if _plain(recorded.get(field)):
                assert value == recorded[field], (family, field)
                compared += 1
    assert compared >= 20


def test_the_reader_sees_every_class_default():
    """A config naming only its model_type (and the fields NO_DEFAULT requires that the newest class does not fill:
    GLM-5's first_k_dense_replace is required before 0.23.0 only) reads each class default."""
    for family in FROZEN["families"]:
        fields = {field: value for field, value in family_defaults(family).items() if field not in FAMILY_FIELDS.get(
            family, {})}
        required = [field for field in NO_DEFAULT.get(family, {}) if field not in fields]
        config = {"model_type": family, **dict.fromkeys(required, 1)}
        if family in MOE_LAYER_FIELDS:
            config["hybrid_override_pattern"] = "M*E"  # an MoE layer, where those fields are read
        seen = Config(config, "x").fields
        assert {field: seen[field] for field in fields} == fields, family


def test_nemotron_h_moe_defaults_only_where_the_pattern_has_moe_layers():
    """NemotronHConfig's n_routed_experts 8 reaches vLLM for a dense Nemotron-H too, whose model builds no MoE block
    without an "E" in the pattern (nemotron_h.py 0.34.0:552, :591): the dense model is not read as MoE."""
    dense = Config({"model_type": "nemotron_h", "hybrid_override_pattern": "M-M*-"}, "x")
    assert dense.optional_int("n_routed_experts") == 0 and not dense.has("moe_intermediate_size")
    moe = Config({"model_type": "nemotron_h", "hybrid_override_pattern": "MEM*E"}, "x")
    assert (moe.int("n_routed_experts"), moe.int("moe_intermediate_size")) == (8, 7688)


def test_a_files_alias_is_not_overwritten_by_the_default():
    """DeepseekV3Config's attribute_map: num_local_experts sets n_routed_experts, so a file naming 64 that way has 64
    routed experts, not the class's 256."""
    cfg = Config({"model_type": "deepseek_v3", "num_local_experts": 64}, "x")
    assert cfg.int("n_routed_experts") == 64


def test_a_files_own_value_and_null_win_over_the_default():
    cfg = Config({"model_type": "llama", "intermediate_size": 14336, "max_position_embeddings": None}, "x")
    assert cfg.int("intermediate_size") == 14336 and not cfg.has("max_position_embeddings")


# ---- every default the classes leave None or derive is read as they do, or refused -----------------------------

# (family, field) -> how kvplan reads the field where the file leaves it out, for every field the frozen classes
# leave None or derive from others (the window fields aside): "heads" num_attention_heads (parse._kv_heads), "head_dim"
# hidden_size // num_attention_heads (parse._head_dim), "4h" 4 x hidden_size (tensors.mlp_width, WIDTH_FROM_HIDDEN),
# "dense" no routed experts (0), "refused" (NO_DEFAULT, HEAD_DIM_REQUIRED), or a reason
ACCOUNTED = {
    **{(family, "num_key_value_heads"): "heads" for family in (
        "cohere2_moe", "granite", "granitemoe", "granitemoehybrid", "llama", "olmo", "olmo2", "olmo3", "olmoe", "phi",
        "phi3")},
    ("deepseek_v2", "num_key_value_heads"): "MLA: one latent per token, no KV heads",
    ("falcon", "num_kv_heads"): "heads",  # FalconConfig, new_decoder_architecture; multi_query's 1 otherwise
    ("zamba2", "num_key_value_heads"): "heads (given head_dim)",
    # GPTBigCodeConfig 5.22.2: num_key_value_heads = 1 if multi_query else n_head, as parse._kv_heads reads multi_query
    # (vLLM 0.34.0 gpt_bigcode.py reads multi_query too): tests/test_transformers_4x_defaults_s73.py
    ("gpt_bigcode", "num_key_value_heads"): "multi_query",
    **{(family, "head_dim"): "head_dim" for family in (
        "llama", "mistral", "mistral3", "qwen3_vl_moe", "qwen3_vl_moe_text", "falcon")},
    ("mixtral", "head_dim"): "head_dim",  # MixtralConfig None; vLLM 0.34.0 mixtral.py:173-175 hidden // heads
    # Zamba2Config's head_dim is an alias of attention_head_dim, 2 x hidden_size // heads: refused where absent
    # (HEAD_DIM_REQUIRED, test_zamba2_without_head_dim_is_refused), so kv_channels is not read either
    ("zamba2", "kv_channels"): "not read where head_dim is refused",
    **{(family, "n_inner"): "4h" for family in ("gpt2", "gpt_bigcode", "gptj")},  # vLLM gpt2.py:158, gpt_j.py:166
    ("falcon", "ffn_hidden_size"): "4h",
    ("zamba2", "intermediate_size"): "4h",
    **{(family, "intermediate_size"): "expand x hidden_size (layers.mamba1_inner, expand 2 filled)"
       for family in ("mamba", "falcon_mamba")},
    **{(family, "time_step_rank"): "ceil(hidden_size / 16) (tensors: 'auto')" for family in ("mamba", "falcon_mamba")},
    ("jamba", "mamba_dt_rank"): "ceil(hidden_size / 16) (tensors: 'auto')",
    ("ernie4_5_moe", "moe_layer_end_index"): "the last layer (layers.ernie_ffn_kinds: -1)",
    ("falcon", "num_ln_in_parallel_attn"): "2 with new_decoder_architecture (vLLM 0.34.0 falcon.py:284-288)",
    **{("deepseek_v2", field): "refused" for field in ("num_experts_per_tok", "n_group", "topk_group")},
    **{(family, field): "dense" for family in ("diffusion_gemma_text", "gemma4", "gemma4_text")
       for field in ("num_experts", "moe_intermediate_size", "top_k_experts")},
    **{(family, "intermediate_size"): "a list per layer: FAMILY_FIELDS 16,384, each layer's from the file"
       for family in ("gemma3n", "gemma3n_text")},
}


def test_every_none_or_derived_default_is_accounted_for():
    found = {(family, field) for family, entry in FROZEN["families"].items()
             for field, value in entry["fields"].items()
             if field not in NOT_FILLED and not _plain(value) and not isinstance(value, str)}
    assert found == set(ACCOUNTED)
    for (family, field), how in ACCOUNTED.items():
        if how == "refused":
            assert field in NO_DEFAULT.get(family, {}) or (field == "head_dim" and family in HEAD_DIM_REQUIRED)
        if how == "4h":
            assert family in WIDTH_FROM_HIDDEN


def _minimal(family: str, **fields) -> dict:
    config = {"model_type": family, "hidden_size": 1024, "num_hidden_layers": 2, "num_attention_heads": 16,
              "vocab_size": 1000, **fields}
    if family == "deepseek_v2":
        config.update(num_experts_per_tok=2, n_group=1, topk_group=1)
    if family.startswith("gemma4"):  # the window is not filled (NOT_FILLED); nor the wrapper's per-layer table
        config.update(sliding_window=512, hidden_size_per_layer_input=0)
    return config


@pytest.mark.parametrize("family, field", [key for key, how in ACCOUNTED.items() if how in ("heads", "head_dim")])
def test_derived_heads_as_the_class_derives_them(family, field):
    spec = parse_config(_minimal(family), "x")
    if ACCOUNTED[family, field] == "heads":
        # FalconConfig: num_kv_heads = heads, used as KV heads with new_decoder_architecture
        config = _minimal(family, new_decoder_architecture=True) if family == "falcon" else _minimal(family)
        assert parse_config(config, "x").kv_heads == 16
    else:
        assert spec.head_dim == 1024 // 16 == 64


@pytest.mark.parametrize("family", ["gpt2", "gpt_bigcode", "gptj", "falcon", "zamba2"])
def test_a_width_the_class_derives_from_hidden(family):
    config = _minimal(family, head_dim=128) if family == "zamba2" else _minimal(family)
    assert parse_config(config, "x").intermediate_size == 4 * 1024


@pytest.mark.parametrize("family", ["diffusion_gemma_text", "gemma4", "gemma4_text"])
def test_no_expert_count_is_a_dense_model(family):
    assert parse_config(_minimal(family), "x").experts == 0


# ---- the figures a filled field gives --------------------------------------------------------------------------

def test_llama_without_intermediate_size_is_priced_at_llamaconfigs_11008():
    """Llama-3.1-8B's config less intermediate_size: LlamaConfig fills 11,008 (transformers 5.22.2
    configuration_llama.py, frozen in the data file), so vLLM builds 11,008-wide MLPs, not 4 x 4,096 = 16,384.
    By hand, per layer: q 4096 x 4096 + k, v 4096 x 1024 each + o 4096 x 4096 = 41,943,040; gate, up and down
    3 x 4096 x 11008 = 135,266,304; two norms 8,192: 177,217,536, x 32 layers = 5,670,961,152; the embedding and the
    untied LM head 2 x 128256 x 4096 = 1,050,673,152 (LlamaConfig tie_word_embeddings false); the final norm 4,096.
    Total 6,721,638,400 (4 x hidden would give 8,835,567,616: the 8.84B of before)."""
    config = {key: value for key, value in LLAMA3_8B.items() if key != "intermediate_size"}
    spec = parse_config(config, "x")
    assert spec.intermediate_size == 11008
    assert _parameters(spec, "dense") == 32 * 3 * 4096 * 11008 == 4_328_521_728
    assert spec.weights.parameters == 32 * 177_217_536 + 2 * 128256 * 4096 + 4096 == 6_721_638_400
    # the file's own width still wins: 14,336 gives the published 8,030,261,248 (Hugging Face safetensors total)
    assert parse_config(LLAMA3_8B, "x").weights.parameters == 8_030_261_248


def test_llama_without_intermediate_size_on_the_command_line(write_config):
    config = {key: value for key, value in LLAMA3_8B.items() if key != "intermediate_size"}
    r = run_kvplan("estimate", write_config(config), "-c", "4096", "--format", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["model"]["parameters"] == 6_721_638_400


def test_mistral_without_kv_heads_reads_mistralconfigs_8():
    """MistralConfig's num_key_value_heads is 8, not num_attention_heads (LlamaConfig's derivation): a Mistral
    config without it caches 8 KV heads of 128 per layer, 2 x 8 x 128 x 2 bytes = 4,096 bytes per token a layer."""
    spec = parse_config({"model_type": "mistral", "hidden_size": 4096, "num_hidden_layers": 32,
                         "num_attention_heads": 32, "vocab_size": 32768, "torch_dtype": "bfloat16"}, "x")
    assert (spec.kv_heads, spec.head_dim) == (8, 128)
    assert spec.intermediate_size == 14336  # MistralConfig's too
    assert spec.max_position_embeddings == 131072  # MistralConfig's 4096 x 32
    # by hand: a layer's q, o 2 x 4096 x 4096 + k, v 2 x 4096 x 1024 = 41,943,040, MLP 3 x 4096 x 14336 = 176,160,768,
    # norms 8,192: 218,112,000 x 32; embedding and untied head 2 x 32768 x 4096; final norm 4,096 (Mistral-7B-v0.3's
    # shape: 7,248,023,552). With 32 KV heads (the reader's guess before) it was 8,053,329,920.
    assert spec.weights.parameters == 32 * 218_112_000 + 2 * 32768 * 4096 + 4096 == 7_248_023_552


@pytest.mark.parametrize("n_inner", ["absent", None])
def test_gpt2_without_n_inner_is_four_times_n_embd(n_inner):
    """GPT2Config leaves n_inner None and the model takes 4 x n_embd (vLLM 0.34.0 gpt2.py:158). GPT-2 small by hand:
    wte 50257 x 768 = 38,597,376 and wpe 1024 x 768 = 786,432; a layer: two LayerNorms 2 x 1,536, c_attn 768 x 2304
    + 2304 = 1,771,776, c_proj 768 x 768 + 768 = 590,592, c_fc 768 x 3072 + 3072 = 2,362,368, mlp c_proj 3072 x 768
    + 768 = 2,360,064: 7,087,872, x 12 = 85,054,464; ln_f 1,536; LM head tied (GPT2Config tie_word_embeddings true).
    Total 124,439,808."""
    config = dict(GPT2) if n_inner == "absent" else {**GPT2, "n_inner": None}
    spec = parse_config(config, "x")
    assert spec.intermediate_size == 4 * 768 == 3072
    assert spec.weights.parameters == 38_597_376 + 786_432 + 12 * 7_087_872 + 1_536 == 124_439_808


# ---- refusals: no default to fill -----------------------------------------------------------------------------

@pytest.mark.parametrize("field", ["n_group", "topk_group", "num_experts_per_tok"])
def test_deepseek_v2_without_a_field_its_class_leaves_none_is_refused(write_config, field):
    """DeepseekV2Config leaves num_experts_per_tok, n_group and topk_group None; vLLM 0.34.0 deepseek_v2.py:378,
    :383-385 hands them to FusedMoE, whose grouped top-k refuses None (router_factory.py:168-172)."""
    config = {key: value for key, value in DEEPSEEK_V2_LITE.items() if key != field}
    line = one_error_line(run_kvplan("estimate", write_config(config), "-c", "4096"))[len(ERROR):]
    assert line.startswith(f"config field '{field}' is missing; transformers' DeepseekV2Config (deepseek_v2) has no "
                           f"default for it, so vLLM cannot build the model: add {field}, ")


def test_a_dense_deepseek_v2_needs_no_routing_fields():
    """n_routed_experts null: every layer dense (deepseek_v2.py builds DeepseekV2MLP), nothing routed to refuse."""
    config = {key: value for key, value in DEEPSEEK_V2_LITE.items() if key not in ("n_group", "topk_group")}
    assert parse_config({**config, "n_routed_experts": None}, "x").experts == 0


def test_an_unknown_family_without_an_mlp_width_is_refused(write_config):
    """No transformers class of model_type 'acme' fills intermediate_size: 4 x hidden_size would be a guess."""
    config = {"model_type": "acme", "architectures": ["LlamaForCausalLM"], "hidden_size": 2048,
              "num_hidden_layers": 4, "num_attention_heads": 16, "vocab_size": 32000, "torch_dtype": "bfloat16"}
    line = one_error_line(run_kvplan("estimate", write_config(config), "-c", "4096"))[len(ERROR):]
    assert line == ("config field 'intermediate_size' is missing and kvplan knows no default for it in model_type "
                    "'acme' (no transformers config class of that type fills one); add intermediate_size, the width of "
                    "the model's dense MLP layers.")
    assert parse_config({**config, "intermediate_size": 5632}, "x").intermediate_size == 5632


def test_an_unknown_family_with_only_moe_layers_needs_no_mlp_width():
    config = {"model_type": "acme_moe", "hidden_size": 1024, "num_hidden_layers": 2, "num_attention_heads": 8,
              "vocab_size": 1000, "num_experts": 8, "num_experts_per_tok": 2, "moe_intermediate_size": 512}
    spec = parse_config(config, "x")
    assert spec.moe_layers == 2 and _parameters(spec, "dense") == 0


def test_zamba2_without_head_dim_is_refused():
    with pytest.raises(KvplanError, match=r"'head_dim' is missing; Zamba2Config derives it as 2 x hidden_size"):
        parse_config(_minimal("zamba2"), "x")
    assert parse_config(_minimal("zamba2", head_dim=128), "x").head_dim == 128


def test_falcon_without_multi_query_has_one_kv_head():
    """FalconConfig's multi_query defaults to true (vLLM 0.34.0 falcon.py:114 reads it): one KV head, not 16."""
    spec = parse_config(_minimal("falcon"), "x")
    assert spec.kv_heads == 1
    assert math.isclose(spec.intermediate_size / 1024, 4)


def test_the_tied_by_default_families_are_tied_by_their_classes():
    """tensors.TIED_BY_DEFAULT, the reader's fallback where a family has no class entry (vLLM's own RWConfig for
    refinedweb), agrees with every class that records the flag; the classes fill it for the rest (cohere2_moe,
    gpt_bigcode, qwen3_vl_moe_text... tie by default too)."""
    from kvplan.model.tensors import TIED_BY_DEFAULT

    for family in TIED_BY_DEFAULT:
        recorded = FROZEN["families"].get(family, {}).get("fields", {}).get("tie_word_embeddings", True)
        assert recorded is True, family
    assert Config({"model_type": "gpt_bigcode"}, "x").flag("tie_word_embeddings", False) is True
