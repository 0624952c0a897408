"""Qwen3.5's SSM-dtype config handler as the engine model keeps it (engines/vllm_mamba_state.py QWEN3_5_SSM_HANDLER),
keyed on the architecture vLLM serves, not on the config's first name; the reader only records the config's
mamba_ssm_dtype (ModelSpec.config_ssm_dtype).

Sources, read by hand in each release's wheel:
- the handler: model_executor/models/config.py Qwen3_5ForConditionalGenerationConfig.verify_and_update_config,
  0.17.0:634-638 and 0.32.0:862-866: `mamba_ssm_dtype = getattr(hf_text_config, "mamba_ssm_dtype", None)`, copied
  into cache_config.mamba_ssm_cache_dtype as it is, only `if cache_config.mamba_ssm_cache_dtype == "auto"`; an
  explicit value is kept, with a warning (0.32.0:867-877).
- its mapping (MODELS_CONFIG_MAP): the ConditionalGeneration pair 0.17.0:685-686 (none in 0.16.0), ColQwen3_5
  0.19.0:719, the CausalLM pair 0.27.0:959-962 (0.26.0's map has the ConditionalGeneration pair only, :863-864).
- the lookup: config/vllm.py try_verify_and_update_config, MODELS_CONFIG_MAP.get(model_config.architecture)
  (0.17.0:1577-1588, 0.32.0:2638-2658), the architecture registry.inspect_model_cls resolved from the whole list
  (config/model.py 0.17.0:528-530, 0.32.0:730-732): the first name the release's registry lists.
- registry.py: Qwen3_5ForConditionalGeneration from 0.17.0 (:496-499), Qwen3_5ForCausalLM from 0.27.0 (:201).
- the state dtypes: mamba_utils.py _mamba_state_dtype (0.32.0:97-110): the temporal state in
  STR_DTYPE_TO_TORCH_DTYPE[mamba_ssm_cache_dtype] (utils/torch_utils.py 0.32.0:33-37: float32, half, float16,
  bfloat16), 'auto' the conv state's dtype; gated_delta_net_state_dtype takes the SSM dtype from 0.17.0 (:79-88),
  not in 0.16.0 (:79-85).

Hand arithmetic, Qwen3.5-9B (bundled config: 24 gated-DeltaNet layers, 16 key / 32 value heads of 128, conv kernel
4; 8 attention layers of 4 KV heads x 256): conv state 3 x (2 x 16 x 128 + 32 x 128) = 24,576 elements, recurrent
32 x 128 x 128 = 524,288. bf16 conv + float32 recurrent: 24,576 x 2 + 524,288 x 4 = 2,146,304 B a layer; both bf16:
(24,576 + 524,288) x 2 = 1,097,728 B. The attention page a token: 4 x 256 x 2 (K, V) x 2 B = 4,096 B, so the block
vLLM 0.32 raises to hold a state: 2,146,304 / 4,096 = 524 -> 528 (a multiple of 16); 1,097,728 / 4,096 = 268 -> 272.
"""

import copy
import json

import pytest

from tests.conftest import ROOT, estimate_plan, load_yaml

from kvplan import verify as V
from kvplan.engines import EngineFlags, get_engine
from kvplan.engines.vllm_cache_flags import with_cache_flags
from kvplan.engines.vllm_mamba_state import hybrid_pages, mamba_state_bytes, ssm_state_dtype
from kvplan.engines.vllm_registry import served_architecture
from kvplan.model import parse_config
from kvplan.model.precision import resolve_kv_dtype
from kvplan.plan.budget import fixed_budget
from kvplan.plan.catalog import find_gpu
from kvplan.plan.plan import plan
from kvplan.verify.layout import served_spec

GiB = 1 << 30
GDN_LAYERS = 24
CONV, RECURRENT = 3 * (2 * 16 * 128 + 32 * 128), 32 * 128 * 128
FP32_STATE, BF16_STATE = CONV * 2 + RECURRENT * 4, (CONV + RECURRENT) * 2
ATTENTION_TOKEN = 4 * 256 * 2 * 2
COND, CAUSAL, NEXT = "Qwen3_5ForConditionalGeneration", "Qwen3_5ForCausalLM", "Qwen3NextForCausalLM"


def _config(architectures=(COND,), text_config=True, **text_fields) -> dict:
    """The bundled Qwen3.5-9B config naming `architectures`; flattened to its text model where `text_config` is false
    (a CausalLM checkpoint), `text_fields` written into the language model's config (None: removed)."""
    raw = copy.deepcopy(load_yaml((ROOT / "model_specs" / "Qwen--Qwen3.5-9B.yaml").read_text())["config"])
    if not text_config:
        raw = {**raw.pop("text_config"), "tie_word_embeddings": raw.get("tie_word_embeddings", False)}
    inner = raw["text_config"] if text_config else raw
    for key, value in text_fields.items():
        if value is None:
            inner.pop(key)
        else:
            inner[key] = value
    raw["architectures"] = list(architectures)
    return raw


def _spec(*architectures, text_config=True, **text_fields):
    return parse_config(_config(architectures or (COND,), text_config, **text_fields), "qwen35-test")


def test_hand_arithmetic():
    assert (CONV, RECURRENT) == (24576, 524288)
    assert (FP32_STATE, BF16_STATE, ATTENTION_TOKEN) == (2146304, 1097728, 4096)


def test_the_reader_records_the_config_and_decides_nothing():
    spec = _spec()
    assert spec.config_ssm_dtype == "float32"
    assert {layer.ssm_bytes for layer in spec.linear_layers} == {0}  # no engine rule at read time
    assert _spec(mamba_ssm_dtype=None).config_ssm_dtype == ""
    assert _spec(mamba_ssm_dtype="fp32").config_ssm_dtype == ""  # not a value vLLM's dtype table takes
    # the handler reads hf_text_config: a field on the outer config alone is not the language model's
    outer = _config()
    outer["text_config"].pop("mamba_ssm_dtype")
    outer["mamba_ssm_dtype"] = "float32"
    assert parse_config(outer, "x").config_ssm_dtype == ""


def test_served_name_not_first_name_gets_the_handler():
    """An unlisted first name: vLLM serves the Qwen3.5 class listed after it, whose handler keeps float32."""
    spec = _spec("SomeUnlistedWrapper", COND)
    assert served_architecture(spec, "0.32.0") == COND
    assert ssm_state_dtype(spec, "0.32.0") == ("fp32", "")
    assert mamba_state_bytes(spec, "0.32.0") == (2, 4)
    assert hybrid_pages(spec, 1, resolve_kv_dtype("auto", "bf16"), "0.32.0")[1:] == (ATTENTION_TOKEN, FP32_STATE)


@pytest.mark.parametrize("architectures, version, served", [
    ((COND, NEXT), "0.16.0", NEXT),  # Qwen3.5 unlisted before 0.17: Qwen3-Next's class, which has no handler
    ((CAUSAL, NEXT), "0.26.0", NEXT),  # the CausalLM name unlisted before 0.27
])
def test_first_name_qwen35_but_served_another_keeps_auto(architectures, version, served):
    spec = _spec(*architectures)
    assert served_architecture(spec, version) == served
    assert ssm_state_dtype(spec, version) == ("bf16", "")
    assert mamba_state_bytes(spec, version) == (2, 2)


@pytest.mark.parametrize("architectures, text_config, version, dtype", [
    ((COND,), True, "0.16.0", "bf16"), ((COND,), True, "0.17.0", "fp32"), ((COND,), True, "0.26.0", "fp32"),
    ((CAUSAL,), False, "0.26.0", "bf16"), ((CAUSAL,), False, "0.27.0", "fp32"), ((CAUSAL,), False, "0.32.0", "fp32"),
    (("Qwen3_5MoeForCausalLM",), False, "0.26.0", "bf16"), (("Qwen3_5MoeForCausalLM",), False, "0.27.0", "fp32"),
    (("ColQwen3_5",), True, "0.18.0", "bf16"), (("ColQwen3_5",), True, "0.19.0", "fp32"),
    ((CAUSAL, NEXT), True, "0.27.0", "fp32"),  # from 0.27 the CausalLM name is listed, so served
])
def test_the_handler_by_release(architectures, text_config, version, dtype):
    assert ssm_state_dtype(_spec(*architectures, text_config=text_config), version)[0] == dtype


@pytest.mark.parametrize("asked, version, dtype", [
    ("bfloat16", "0.32.0", "bf16"), ("float16", "0.32.0", "fp16"),  # an explicit value wins (0.32.0:867-877)
    ("auto", "0.32.0", "fp32"),  # an explicit 'auto' is the handler's 'auto' (0.32.0:864)
    ("float32", "0.16.0", "bf16"),  # before 0.17 the gated DeltaNet reads no SSM dtype
])
def test_an_explicit_flag(asked, version, dtype):
    spec = with_cache_flags(_spec(), EngineFlags(mamba_ssm_cache_dtype=asked))
    assert ssm_state_dtype(spec, version)[0] == dtype


@pytest.mark.parametrize("named, dtype", [("bfloat16", "bf16"), ("float16", "fp16"), ("auto", "bf16"),
                                          (None, "bf16")])
def test_the_handler_copies_what_the_config_names(named, dtype):
    """Any dtype the config names is copied (0.32.0:865-866); 'auto' or none leaves the conv state's dtype."""
    assert ssm_state_dtype(_spec(mamba_ssm_dtype=named), "0.32.0")[0] == dtype


def test_mamba_cache_dtype_alone_leaves_the_handler_its_float32():
    spec = with_cache_flags(_spec(), EngineFlags(mamba_cache_dtype="float16"))
    assert mamba_state_bytes(spec, "0.32.0") == (2, 4)


@pytest.mark.parametrize("args, block, state", [
    ((), 528, FP32_STATE), (("--mamba-ssm-cache-dtype", "bfloat16"), 272, BF16_STATE)])
def test_estimate_pages_by_hand(tmp_path, args, block, state):
    (tmp_path / "config.json").write_text(json.dumps(_config(("SomeUnlistedWrapper", COND))))
    got = estimate_plan(tmp_path / "config.json", "-c", "32K", "--gpu", "H100", "--engine", "vllm==0.32.0", *args)
    assert got["state_bytes_per_sequence_per_gpu"] == GDN_LAYERS * state
    assert got["engine"]["block_size"] == block


def test_verify_lays_out_what_estimate_plans():
    """The engine's view (served_spec) carries (bf16, fp32): two pools a layer, the layout's bytes the plan's."""
    spec = served_spec(_spec("SomeUnlistedWrapper", COND), get_engine("vllm==0.32.0"), find_gpu("H200"))
    assert spec.state_dtypes == ("bf16", "fp32")
    p = plan(spec, context=8192, kv_dtype="auto", tp=1, budget_for=fixed_budget(40 * GiB), block_size=None)
    assert p.state_bytes_per_sequence_per_gpu == GDN_LAYERS * FP32_STATE
    layout = V.cache_layout(spec, p)
    (state,) = [g for g in layout.groups if g.kind == "linear"]
    assert state.dtypes == ("bf16", "fp32") and state.tensor_shapes[1][1] == RECURRENT
    assert layout.allocated_bytes == layout.predicted_bytes


@pytest.mark.parametrize("named, state", [("float32", FP32_STATE), (None, BF16_STATE), ("auto", BF16_STATE)])
def test_no_engine_keeps_the_dtype_the_config_declares(tmp_path, named, state):
    """--engine none runs no engine's handler, but keeps the recurrent state in the dtype the model's own config
    declares for it (the bundled 9B's float32), else the model's bfloat16 (engines/ideal.py on_gpu)."""
    (tmp_path / "config.json").write_text(json.dumps(_config(mamba_ssm_dtype=named)))
    got = estimate_plan(tmp_path / "config.json", "-c", "32K", "--gpu", "H100", "--engine", "none")
    assert got["state_bytes_per_sequence_per_gpu"] == GDN_LAYERS * state


@pytest.mark.parametrize("named, per_layer", [
    # Nemotron-H-8B's Mamba-2 layer: a conv window of 3 x (8192 + 2 x 8 x 128) = 30,720 values in the model's bf16,
    # and 128 heads x 64 x 128 = 1,048,576 SSM values in the declared dtype (4 bytes) or bf16 (2)
    ("float32", 30720 * 2 + 1048576 * 4), (None, (30720 + 1048576) * 2)])
def test_no_engine_keeps_nemotron_h_declared_dtype(tmp_path, named, per_layer):
    raw = load_yaml((ROOT / "model_specs" / "nvidia--Nemotron-H-8B-Base-8K.yaml").read_text())["config"]
    if named:
        raw["mamba_ssm_cache_dtype"] = named
    (tmp_path / "config.json").write_text(json.dumps(raw))
    got = estimate_plan(tmp_path / "config.json", "-c", "8K", "--gpu", "H100", "--engine", "none")
    assert got["state_bytes_per_sequence_per_gpu"] == 24 * per_layer
