"""Session 70 review of the nested-architecture commit (f6a9698c): two names it left reading otherwise than vLLM or the
checkpoint do.
- ROCm's V1 list: 0.27-0.28 subtract it from the default V2 list (config/vllm.py 0.27.1:91-101 and 0.28.0:84-93
  default_v2_model_runner_architectures, then `any(arch in default_architectures for arch in architectures)`,
  0.27.1:645-649, 0.28.0:699-703), so another listed name of the top-level list still counts; 0.29-0.31 keep V1
  where any name is in it (0.29.0:654-655, 0.30.0:700-701, 0.31.0:726-727).
- The LM head a pooled checkpoint ships: the class that saved it is the top-level config's, not the class a nested
  language-model config names."""

from dataclasses import replace

import yaml

from conftest import ROOT

from kvplan.engines.vllm_pooling_budget import without_lm_head
from kvplan.engines.vllm_runner import RULES, uses_v2
from kvplan.model.parse import parse_config
from kvplan.model.spec import Weights

MOE = (True, False, False, False)  # MoE, unquantised, not hybrid, has attention: V2 only where the list names it


def test_rocm_0_27_drops_kimi_k3_from_the_list_not_the_model():
    """0.27.1 on ROCm: the default list less KimiK3ForConditionalGeneration still holds DeepseekV2ForCausalLM, which
    any() finds in the list: V2; KimiK3 alone is a MoE model not listed there: V1."""
    rule = RULES["0.27"]
    assert uses_v2(rule, ("KimiK3ForConditionalGeneration", "DeepseekV2ForCausalLM"), *MOE, rocm=True)
    assert not uses_v2(rule, ("KimiK3ForConditionalGeneration",), *MOE, rocm=True)
    assert uses_v2(rule, ("KimiK3ForConditionalGeneration",), *MOE, rocm=False)


def test_rocm_0_28_drops_deepseek_v4_from_the_list_not_the_model():
    rule = RULES["0.28"]
    assert uses_v2(rule, ("DeepseekV4ForCausalLM", "Qwen2MoeForCausalLM"), *MOE, rocm=True)
    assert not uses_v2(rule, ("DeepseekV4ForCausalLM",), *MOE, rocm=True)


def test_rocm_0_30_still_vetoes_on_any_name():
    """0.30.0:700-701: any name of ROCM_DEFAULT_MRV1_ARCHITECTURES returns False before anything else is asked."""
    assert not uses_v2(RULES["0.30"], ("LlamaForCausalLM", "DeepseekV32ForCausalLM"), *MOE, rocm=True)


def test_a_pooled_wrappers_checkpoint_ships_the_head_its_own_class_saved():
    """A Llava checkpoint (LlavaForConditionalGeneration, a generating class, saved lm_head) whose text_config names
    LlamaModel: on the pooling runner the head it ships is dropped as for the flat LlavaForConditionalGeneration
    config; a flat LlamaModel checkpoint ships none."""
    llama = yaml.safe_load((ROOT / "model_specs" / "meta-llama--Llama-3.1-8B.yaml").read_text())["config"]
    text = {k: v for k, v in llama.items() if k not in ("architectures", "torch_dtype")}
    llava = {"architectures": ["LlavaForConditionalGeneration"], "model_type": "llava", "torch_dtype": "bfloat16",
             "text_config": {**text, "architectures": ["LlamaModel"]}}

    def dropped(config) -> int:
        spec = parse_config(config, "m")
        spec = replace(spec, runner="pooling", weights=Weights(spec.weights.parameters, spec.weights.bytes,
                                                               spec.weights.dtype, "safetensors metadata"))
        return spec.weights.bytes - without_lm_head(spec, "0.32.0").weights.bytes

    head = 128_256 * 4_096 * 2  # Llama 3.1 8B's untied head in bf16
    assert dropped(llava) == head
    assert dropped({**llama, "architectures": ["LlamaModel"]}) == 0
