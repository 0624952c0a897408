"""Make tests/data/transformers_config_defaults.json: what transformers' config class fills in, family by family,
for each config field kvplan's reader (kvplan/model/) reads with a fallback, when config.json leaves the field out.
vLLM builds its config through transformers' AutoConfig (transformers_utils/config.py), so a missing field reaches
vLLM's model code as this value. Run with transformers installed (no torch needed), in the range the vLLM release
requires (vLLM 0.34.0's METADATA: transformers>=5.16.1,<5.23.0):

    python -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install transformers==5.22.2
    /tmp/tfvenv/bin/python tests/data/transformers_config_defaults.py > tests/data/transformers_config_defaults.json
    /tmp/tfvenv/bin/python tests/data/transformers_config_defaults.py --kvplan  # kvplan/model/class_defaults.py's

Under an older transformers (5.17.0, 5.12.0, 5.5.4, 4.57.6, 4.45.2: ones vLLM 0.2.0-0.31.0 installed,
class_defaults.TRANSFORMERS_SINCE) it writes tests/data/transformers_config_defaults_<version>.json (its `command`), a
family that transformers has no class for listed under `no_class`; class_defaults.OLDER_DEFAULTS holds what those
tables fill differently.

Each class is built as from_dict builds it from a file without the field: once bare (cls()), then once for each of
hidden_size, num_attention_heads and num_hidden_layers it has, that one doubled (under the class's own name for it),
and once with its multi_query flipped where it has that switch.
A field the same in every probe is the class's plain default, recorded as the value (null: None, no default); one
that follows the probes is {"derived": the expression that reproduces them all, of those in DERIVED}; a field the
class does not have is not recorded. Families vLLM 0.34.0 builds with a config class of its own (_CONFIG_REGISTRY
naming a class transformers does not have) are listed under `not_transformers` and not probed. A multimodal wrapper
(Gemma3Config...) is recorded with its text_config class's fields, as kvplan flattens the text_config over the
wrapper, then the wrapper's own fields the text class lacks (the text class: SubConfigSpec's, as transformers 5.22
builds a text_config dict without a model_type; 5.16.1 has no SubConfigSpec, and its wrappers record their own
fields only)."""

import dataclasses
import json
import sys
import textwrap

import transformers
from transformers import CONFIG_MAPPING

try:  # transformers 5's dataclass configs validate through huggingface_hub; 4.x's plain classes raise ValueError
    from huggingface_hub.errors import StrictDataclassError
except ImportError:
    StrictDataclassError = ValueError
# the base class: PreTrainedConfig from transformers 5, PretrainedConfig in 4.x
BASE = getattr(transformers, "PreTrainedConfig", None) or transformers.PretrainedConfig

# Every model_type kvplan's reader names (kvplan/model/*.py, engines' tables) or a bundled spec declares
# (model_specs/*.yaml, nested text_config included) that transformers 5.22 has a config class for.
MODEL_TYPES = sorted("""
bamba cohere2_moe deepseek_v2 deepseek_v3 deepseek_v32 deepseek_v4 diffusion_gemma_text ernie4_5 ernie4_5_moe
exaone4 exaone_moe falcon falcon_h1 falcon_mamba gemma gemma2 gemma3 gemma3_text gemma3n gemma3n_text gemma4
gemma4_text gemma4_unified_text glm4 glm4_moe glm4_moe_lite glm_moe_dsa gpt2 gpt_bigcode gpt_neox gpt_oss gptj
granite granitemoe granitemoehybrid jamba kimi_k2 laguna lfm2 lfm2_moe llama llama4 llama4_text mamba mamba2
mimo_v2_flash minimax_m2 ministral3 mistral mistral3 mixtral nemotron_h olmo olmo2 olmo3 olmoe phi phi3 phimoe
qwen2 qwen2_5_vl qwen2_moe qwen2_vl qwen3 qwen3_5 qwen3_5_moe qwen3_5_moe_text qwen3_5_text qwen3_moe qwen3_next
qwen3_vl qwen3_vl_moe qwen3_vl_moe_text qwen3_vl_text zamba2
axk1 beam flint kimi_linear muse_spark muse_spark_text step3p5 refinedweb refinedwebmodel
""".split())

# vLLM 0.34.0 transformers_utils/config.py:123-181 _CONFIG_REGISTRY: model types built by another class than
# transformers' own for that type. Those naming a transformers class are probed with it; the rest are vLLM's own.
VLLM_REGISTRY = {"deepseek_v32": "DeepseekV3Config", "kimi_k2": "DeepseekV3Config", "kimi_linear": None,
                 "muse_spark": None, "muse_spark_text": None, "beam": None, "flint": None,
                 "refinedweb": None, "refinedwebmodel": None, "step3p5": "Step3p7TextConfig"}

# The config fields kvplan/model/ reads with a fallback (config.py optional_int / int(default=) / flag / get)
FIELDS = """
intermediate_size n_inner ffn_hidden_size
num_key_value_heads num_kv_heads n_head_kv n_kv_heads multi_query_group_num multi_query
head_dim kv_channels
max_position_embeddings n_positions seq_length max_seq_len
n_routed_experts num_local_experts num_experts moe_num_experts
num_experts_per_tok num_experts_per_token moe_topk moe_k top_k_experts
moe_intermediate_size shared_expert_intermediate_size moe_shared_expert_intermediate_size n_shared_experts
num_shared_experts moe_num_shared_experts intermediate_size_mlp shared_intermediate_size
first_k_dense_replace moe_layer_freq decoder_sparse_step expert_layer_period expert_layer_offset num_dense_layers
moe_layer_start_index moe_layer_end_index moe_layer_interval
q_lora_rank qk_rope_head_dim qk_nope_head_dim v_head_dim kv_lora_rank
sliding_window use_sliding_window max_window_layers attention_chunk_size no_rope_layer_interval
attn_layer_period attn_layer_offset
expand mamba_expand conv_kernel mamba_d_conv n_groups mamba_n_groups state_size ssm_state_size mamba_d_state
mamba_num_heads mamba_head_dim time_step_rank mamba_dt_rank
num_nextn_predict_layers mtp_num_hidden_layers
global_head_dim num_kv_shared_layers hidden_size_per_layer_input num_global_key_value_heads attention_k_eq_v
use_double_wide_mlp
n_group topk_group num_expert_group routed_scaling_factor norm_topk_prob scoring_func
block_ff_dim block_multiple_of block_auto_adjust_ff_dim
num_ln_in_parallel_attn parallel_attn new_decoder_architecture bias
tie_word_embeddings attention_bias mlp_bias
mm_tokens_per_image spatial_merge_size
""".split()

HIDDEN = ("hidden_size", "n_embd", "d_model", "dim")
HEADS = ("num_attention_heads", "n_head", "num_heads", "n_heads")
LAYERS = ("num_hidden_layers", "n_layer", "num_layers", "n_layers")
# expressions a derived default is matched against, over the probe's core sizes (hidden, heads, layers) and its
# multi_query (None where the class has none)
DERIVED = {
    "num_attention_heads": lambda h, a, n, m: a,
    "hidden_size // num_attention_heads": lambda h, a, n, m: h // a,
    "2 * hidden_size // num_attention_heads": lambda h, a, n, m: 2 * h // a,
    "4 * hidden_size": lambda h, a, n, m: 4 * h,
    "2 * hidden_size": lambda h, a, n, m: 2 * h,
    "hidden_size": lambda h, a, n, m: h,
    "ceil(hidden_size / 16)": lambda h, a, n, m: -(-h // 16),
    "num_hidden_layers - 1": lambda h, a, n, m: n - 1,
    "1 if multi_query else num_attention_heads": lambda h, a, n, m: 1 if m else a,
}


def own_name(cls, names) -> str:
    declared = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
    return next((name for name in names if name in declared), names[0])


def read(config, field: str, missing):
    """The attribute as vLLM's model code reads it (getattr); a heterogeneous (per-layer) config that refuses a global
    read is read with its own switch for that (allow_global_per_layer_attribute_access)."""
    try:
        return getattr(config, field, missing)
    except RuntimeError:  # transformers' AmbiguousGlobalPerLayerAttributeError
        config.allow_global_per_layer_attribute_access = True
        return getattr(config, field, missing)


def probes(cls) -> list:
    """(instance, (hidden, heads, layers, multi_query), the field the probe changed) for the bare class, one probe
    per core size it has, doubled, and one with its multi_query flipped where it has that switch (GPTBigCodeConfig
    derives num_key_value_heads from it: 1 if multi_query else n_head)."""
    bare = cls()
    sizes = [read(bare, name, None) for name in ("hidden_size", "num_attention_heads", "num_hidden_layers")]
    switch = read(bare, "multi_query", None)
    switch = switch if isinstance(switch, bool) else None
    out = [(bare, (*sizes, switch), None)]
    for i, names in enumerate((HIDDEN, HEADS, LAYERS)):
        if isinstance(sizes[i], int) and not isinstance(sizes[i], bool):
            probe = list(sizes)
            probe[i] *= 2
            try:
                out.append((cls(**{own_name(cls, names): probe[i]}), (*probe, switch), own_name(cls, names)))
            except (ValueError, TypeError, StrictDataclassError) as exc:  # the class's validation refuses it
                print(f"{cls.__name__}: no probe with {names[0]} doubled ({str(exc).splitlines()[-1][:80]})",
                      file=sys.stderr)
    if switch is not None:
        out.append((cls(multi_query=not switch), (*sizes, not switch), "multi_query"))
    return out


MISSING = object()


def classify(field: str, runs: list):
    """The field's plain default (a number, bool, text or None), {"derived": expression}, {"not_scalar": ...}, or
    MISSING where the class has no such attribute."""
    runs = [run for run in runs if run[2] != field]  # a switch probed is not its own default's witness
    values = [read(config, field, MISSING) for config, _, _ in runs]
    if any(value is MISSING for value in values):
        return MISSING
    if all(value == values[0] and type(value) is type(values[0]) for value in values):
        value = values[0]
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        return {"not_scalar": shown(value)}
    for name, expression in DERIVED.items():
        try:
            if all(value == expression(*sizes) for value, (_, sizes, _) in zip(values, runs)):
                return {"derived": name}
        except TypeError:  # a size the class does not have
            continue
    return {"derived": "other", "probes": [shown(value) for value in values]}


def shown(value):
    if isinstance(value, (int, float, bool, str)) or value is None:
        return value
    if isinstance(value, list) and len(set(map(repr, value))) == 1:
        return f"list of {len(value)} x {value[0]!r}"
    return type(value).__name__


def aliases(cls) -> dict:
    """{alias: field} of the class's attribute_map where either side is one of FIELDS: a file's alias sets the field."""
    return {alias: field for alias, field in getattr(cls, "attribute_map", {}).items()
            if alias in FIELDS or field in FIELDS}


def record(cls) -> dict:
    runs = probes(cls)
    fields = {}
    for field in FIELDS:
        if field in aliases(cls):  # another field's second name, recorded under aliases
            continue
        found = classify(field, runs)
        if found is not MISSING:
            fields[field] = found
    return fields


def text_class(cls):
    """The class a wrapper builds its text_config with from a dict without a model_type (SubConfigSpec.
    create_subconfig: the spec's class, or AutoConfig's default model type's; the spec's init_kwargs apply only
    where text_config is absent, which kvplan does not read as a wrapper)."""
    spec = (getattr(cls, "sub_configs_defaults", None) or {}).get("text_config")
    if spec is None:
        return _text_class_4x(cls)
    if isinstance(spec.config_class, type) and issubclass(spec.config_class, BASE):
        return spec.config_class
    return CONFIG_MAPPING[spec.model_type]


def _text_class_4x(cls):
    """transformers 4.x (no SubConfigSpec): the class its sub_configs names for text_config, or where that is
    AutoConfig (Mistral3Config), the class of the text_config its __init__ builds by default (MistralConfig)."""
    named = (getattr(cls, "sub_configs", None) or {}).get("text_config")
    if named is None:
        return None
    if isinstance(named, type) and issubclass(named, BASE) and named is not BASE and getattr(named, "model_type", ""):
        return named
    built = getattr(cls(), "text_config", None)
    return type(built) if isinstance(built, BASE) else None


def family(model_type: str) -> dict:
    """The family's record; {} where vLLM builds it with a class of its own; {"missing": ...} where this transformers
    has no class for it (an older release: 4.57 has no Gemma 4)."""
    if model_type in VLLM_REGISTRY and VLLM_REGISTRY[model_type] is None:
        return {}
    name = VLLM_REGISTRY.get(model_type)
    cls = getattr(transformers, name, None) if name else \
        CONFIG_MAPPING[model_type] if model_type in CONFIG_MAPPING else None
    if cls is None:
        return {"missing": name or model_type}
    text = text_class(cls)
    if text is None or text is cls:
        return {"class": cls.__name__, "fields": record(cls), "aliases": aliases(cls)}
    # kvplan reads the text_config over the wrapper (config._first_text_config): its class's fields first
    own = record(cls)
    inner = record(text)
    return {"class": f"{text.__name__} (text_config of {cls.__name__})",
            "fields": {**{k: v for k, v in own.items() if k not in inner}, **inner}, "aliases": aliases(text)}


# Fields kvplan fills from the class (kvplan/model/class_defaults.py CLASS_DEFAULTS): FIELDS but the window
# fields, which vLLM's models read through layer_types (llama.py 0.34.0:185-204: a MistralConfig's sliding_window
# 4096 builds no window), and text
NOT_FILLED = ("sliding_window", "use_sliding_window", "max_window_layers", "attention_chunk_size", "scoring_func")


def kvplan_table(out: dict) -> tuple:
    """(CLASS_DEFAULTS, CLASS_ALIASES, SAME_CLASS) as kvplan/model/class_defaults.py holds them: each family's plain
    defaults and attribute_map, once per config class, and {family: the family holding its class's entry} where two
    model types are built by one class with the same result (DeepseekV3Config for deepseek_v3, deepseek_v32 and
    kimi_k2; a wrapper and its text_config type), the text type's own entry preferred."""
    table, aliases, same, seen = {}, {}, {}, {}
    for model_type, entry in out["families"].items():
        plain = {field: found for field, found in entry["fields"].items()
                 if field not in NOT_FILLED and isinstance(found, (bool, int, float))}
        key = (entry["class"].split(" (")[0], tuple(plain.items()), tuple(entry["aliases"].items()))
        seen.setdefault(key, []).append((" (text_config of " in entry["class"], model_type, plain, entry["aliases"]))
    for members in seen.values():
        _, canonical, plain, alias = sorted(members)[0]
        if plain:
            table[canonical] = plain
        if alias:
            aliases[canonical] = alias
        same.update({model_type: canonical for _, model_type, _, _ in members if model_type != canonical})
    order = list(out["families"])
    return ({k: table[k] for k in order if k in table}, {k: aliases[k] for k in order if k in aliases},
            {k: same[k] for k in order if k in same})


def python_entries(table: dict, width: int = 120) -> str:
    """`table`'s entries as Python source lines of at most `width` columns, one family's dict each."""
    lines = []
    for key, fields in table.items():
        items = [f"{json.dumps(field)}: {value!r}" if not isinstance(value, str) else
                 f"{json.dumps(field)}: {json.dumps(value)}" for field, value in fields.items()]
        indent = " " * (len(json.dumps(key)) + 7)
        line = f"    {json.dumps(key)}: {{"
        for i, item in enumerate(items):
            piece = item + (", " if i < len(items) - 1 else "},")
            if len(line) + len(piece.rstrip()) > width:
                lines.append(line.rstrip())
                line = indent
            line += piece
        lines.append(line.rstrip())
    return "\n".join(lines) + "\n"


# the transformers kvplan's newest table is frozen from (vLLM 0.34.0's); an older one's file is named by its version
NEWEST = "5.22.2"
OUT = "tests/data/transformers_config_defaults.json" if transformers.__version__ == NEWEST else \
    f"tests/data/transformers_config_defaults_{transformers.__version__}.json"
COMMAND = f"python tests/data/transformers_config_defaults.py > {OUT}"


def main() -> None:
    families, skipped, missing = {}, {}, {}
    for model_type in MODEL_TYPES:
        entry = family(model_type)
        if "missing" in entry:
            missing[model_type] = f"transformers {transformers.__version__} has no {entry['missing']}"
        elif entry:
            families[model_type] = entry
        else:
            skipped[model_type] = "vLLM 0.34.0 builds it with a config class of its own (_CONFIG_REGISTRY)"
    out = {"transformers": transformers.__version__, "script": "tests/data/transformers_config_defaults.py",
           "command": COMMAND,
           "families": families, "not_transformers": skipped}
    if missing:  # an older transformers (the 4.x freezes); 5.22.2 has a class for every type
        out["no_class"] = missing
    if sys.argv[1:] == ["--kvplan"]:  # the tables kvplan/model/class_defaults.py holds
        width = 120
        table, aliases, same = kvplan_table(out)
        print("CLASS_DEFAULTS = {\n" + python_entries(table) + "}\n")
        print("CLASS_ALIASES = {\n" + python_entries(aliases) + "}\n")
        items = ", ".join(f"{json.dumps(k)}:\0{json.dumps(v)}" for k, v in same.items())  # \0: a pair stays whole
        lines = textwrap.fill(items, width, initial_indent="    ", subsequent_indent="    ").replace("\0", " ")
        print("SAME_CLASS = {\n" + lines + ",\n}")
        return
    # one family a line: small, and a change reads as one line in a diff
    lines = [f" {json.dumps(model_type)}: {json.dumps(entry, sort_keys=True)}"
             for model_type, entry in families.items()]
    header = {key: value for key, value in out.items() if key != "families"}
    text = json.dumps(header, indent=1, sort_keys=True)
    sys.stdout.write(text[:-2] + ',\n "families": {\n' + ",\n".join(lines) + "\n }\n}\n")


if __name__ == "__main__":
    main()
