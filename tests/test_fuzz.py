"""Random configs never produce a traceback: the parser and planner either answer or raise KvplanError."""

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import run_kvplan
from kvplan.plan.budget import flag_budget
from kvplan.errors import KvplanError
from kvplan.model import parse_config
from kvplan.plan.plan import plan

values = st.one_of(st.none(), st.booleans(), st.integers(-4, 300), st.text(max_size=6),
                   st.floats(allow_nan=True), st.lists(st.integers(-1, 3), max_size=4))
layer_types = st.lists(st.sampled_from(["full_attention", "sliding_attention", "linear_attention", "x"]),
                       max_size=6)
keys = st.sampled_from([
    "num_hidden_layers", "n_layer", "num_attention_heads", "n_head", "hidden_size", "n_embd", "num_key_value_heads",
    "num_kv_heads", "multi_query", "head_dim", "sliding_window", "use_sliding_window", "sliding_window_pattern",
    "kv_lora_rank", "qk_rope_head_dim", "full_attention_interval", "torch_dtype", "model_type", "max_window_layers",
    "attention_chunk_size", "linear_num_value_heads", "vocab_size", "intermediate_size", "num_local_experts",
    "num_experts_per_tok", "quantization_config", "text_config", "max_position_embeddings"])
configs = st.dictionaries(keys, st.one_of(values, layer_types, st.just({"quant_method": "fp8"})), max_size=14)
sane = st.fixed_dictionaries({
    "num_hidden_layers": st.integers(1, 6), "num_attention_heads": st.sampled_from([1, 2, 4, 8, 12]),
    "hidden_size": st.sampled_from([64, 96, 128, 256]),
}, optional={"num_key_value_heads": st.integers(-1, 12), "head_dim": st.integers(0, 256),
             "sliding_window": st.integers(-2, 64), "layer_types": layer_types,
             "kv_lora_rank": st.integers(0, 64), "qk_rope_head_dim": st.integers(0, 16),
             "full_attention_interval": st.integers(0, 4), "torch_dtype": st.sampled_from(["bfloat16", "x"])})


def _plan_everything(raw):
    try:
        spec = parse_config(raw, "fuzz")
        for tp in (1, 2, 3, 8):
            plan(spec, context=100, kv_dtype="auto", tp=tp, budget_for=lambda _t: flag_budget(2**30))
    except KvplanError as exc:
        assert str(exc).strip() and "\n" not in str(exc)


@settings(max_examples=300, deadline=None)
@given(st.one_of(configs, sane))
def test_random_configs_never_traceback(raw):
    _plan_everything(raw)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(configs)
def test_random_configs_through_the_cli(write_config, raw):
    result = run_kvplan("estimate", write_config(json.dumps(raw)), "--kv-budget", "1GiB", "--format", "json")
    assert result.returncode in (0, 2)
    assert "Traceback" not in result.stderr
