"""Session 68's review of the session's changes: the defects it found, each pinned.

1. A release before the Transformers backend (0.7.2) resolves only the names its registry lists: no suffix swapped
   (vLLM 0.32.0's _normalize_arch, registry.py:1297-1320, came later) and no name listed only for that backend.
   Public refusals of such names by those releases: vllm#11647 (2024-12-31, vLLM 0.6.x: "Model architectures
   ['Gemma2ForSequenceClassification'] are not supported for now.") and ncsoft/offsetbias#2 ("Model architectures
   ['LlamaForSequenceClassification'] are not supported for now.", its supported list without that name). vLLM
   0.32.0 lists SmolLM3ForCausalLM only as ("transformers", "TransformersForCausalLM") (registry.py:727).
2. units' ", unquoted" said only of a quoted number that unquoted would be taken: '0' is no positive integer and
   '1.5' no fraction in (0, 1] either way."""

import json

import pytest
import yaml

from conftest import ROOT

import kvplan.api as api
from kvplan.engines.vllm_config_read import architecture_refusal, listed_anywhere
from kvplan.errors import FieldError

LLAMA = yaml.safe_load((ROOT / "model_specs" / "meta-llama--Llama-3.1-8B.yaml").read_text())["config"]
# vLLM 0.2.0's model_loader.py _MODEL_REGISTRY: served by every release from then until one retires them
LISTED_IN_0_2_0 = ("BaiChuanForCausalLM", "BaichuanForCausalLM", "BloomForCausalLM", "FalconForCausalLM",
                   "GPT2LMHeadModel", "GPTBigCodeForCausalLM", "GPTJForCausalLM", "GPTNeoXForCausalLM",
                   "InternLMForCausalLM", "LlamaForCausalLM", "LLaMAForCausalLM", "MistralForCausalLM",
                   "MPTForCausalLM", "OPTForCausalLM", "QWenLMHeadModel", "RWForCausalLM")


@pytest.mark.parametrize("name", ["LlamaForSequenceClassification", "Gemma2ForSequenceClassification",
                                  "SmolLM3ForCausalLM"])
def test_before_the_transformers_backend_a_name_it_does_not_list_is_refused(name):
    assert listed_anywhere(name)  # a later release serves it: from 0.7.2 on, no note either
    for release in ("0.5.5", "0.6.6", "0.7.1"):
        refusal = architecture_refusal(name, release)
        assert refusal is not None and refusal.reason.startswith(
            f"Model architectures ['{name}'] are not supported for now (vllm=={release} lists no such name"), release
        assert refusal.field == "engine"
    for release in ("0.7.2", "0.32.0"):
        assert architecture_refusal(name, release) is None


def test_a_sequence_classification_llama_is_refused_by_0_6_and_planned_by_0_7_2(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**LLAMA, "architectures": ["LlamaForSequenceClassification"]}))
    (old,) = api.estimate(str(path), max_model_len=8192, engine="vllm==0.6.6", gpu="H100")
    assert not old.fits and old.engine.refusal.reason.startswith(
        "Model architectures ['LlamaForSequenceClassification'] are not supported for now")
    (new,) = api.estimate(str(path), max_model_len=8192, engine="vllm==0.7.2", gpu="H100")
    assert new.fits and new.engine.refusal is None


@pytest.mark.parametrize("name", LISTED_IN_0_2_0)
def test_what_0_2_0_lists_it_serves(name):
    assert architecture_refusal(name, "0.2.0") is None


@pytest.mark.parametrize("keyword, value, unquoted", [
    ("max_num_seqs", "64", True), ("max_num_seqs", "0", False), ("max_num_seqs", "-4", False),
    ("gpu_memory_utilization", "0.9", True), ("gpu_memory_utilization", "1.5", False),
    ("gpu_memory_utilization", "nan", False), ("gpu_memory_utilization", "0", False)])
def test_unquoted_only_where_the_number_would_be_taken(keyword, value, unquoted):
    with pytest.raises(FieldError) as caught:
        api.estimate("meta-llama/Llama-3.1-8B-Instruct", max_model_len=8192, **{keyword: value})
    assert (", unquoted" in str(caught.value)) is unquoted, str(caught.value)
