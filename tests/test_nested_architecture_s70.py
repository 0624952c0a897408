"""Session 70: a multimodal config whose nested language-model config (text_config, llm_config, language_config) names
its own class. Which name each vLLM rule reads, from vLLM's code (0.32.0 unless said; 0.23.0, 0.28.0 and 0.30.0 read
in their wheels for the runner):
- vLLM resolves the top-level hf_config.architectures once (config/model.py:730-733, registry.py inspect_model_cls
  :1323-1374): model_config.architecture and _model_info are that class's. MODELS_CONFIG_MAP's handlers are looked up
  by it (config/vllm.py:2638-2659: gpt-oss's capture sizes, DeepSeek-V3.2's and GLM-5's cache dtypes, Qwen3.5's SSM
  dtype, NemotronH_Nano_VL_V2's), so is --mm-encoder-tp-mode data (config/model.py:818-829), the multimodal
  processor (multimodal/registry.py:115-125) and what the wrapper's own __init__ allocates (gemma4_mm.py:1143-1156).
- Model Runner V2's default list (0.22-0.28) and ROCm's V1 list (0.27-0.31) read model_config.architectures, the
  top-level list, any name of it (config/vllm.py 0.23.0:552-554, 0.28.0:699-703, 0.30.0:699-701).
- The language model is built by init_vllm_registered_model (models/utils.py:624-643) from the nested config;
  llava.py:569-573, internvl.py:618-622, nano_nemotron_vl.py:986-990 hand it on as it is, so with_hf_config keeps its
  own `architectures` (config/vllm.py:939-952) and the copy resolves them by the registry's walk
  (model_loader/utils.py:299-307, registry.py resolve_model_cls :1411-1415). That class's own layers read the nested
  config (llama.py:369 hf_config, which the copy swapped, config/vllm.py:987; is_causal :277-283).
So a nested config's class changes only rules of the language model's own code; the plans below are compared with
the same config whose nested part names no class (what vLLM's top-level rules cannot tell apart), and with the flat
config of the inner class (where the inner name would have been planned as the served one)."""

import json
import re
from itertools import count

import pytest
import yaml

from conftest import ROOT
from hub_configs import INTERNVL_LLM, NEMOTRON_H_8B

import kvplan.api as api
from kvplan.engines.vllm_e5m2 import attention_without_quant_config
from kvplan.engines.vllm_mamba_mode import mamba_all_mode
from kvplan.engines.vllm_pooling import architecture_runner
from kvplan.engines.vllm_registry import served_name
from kvplan.engines.vllm_runner import RULES, model_runner, uses_v2
from kvplan.engines.vllm_versions import behaviour
from kvplan.errors import KvplanError
from kvplan.model.parse import parse_config
from kvplan.plan.catalog import find_gpu
from kvplan.verify.arch import architecture

H100 = find_gpu("h100")
FILES = count()


def _bundled(name: str) -> dict:
    return yaml.safe_load((ROOT / "model_specs" / f"{name}.yaml").read_text())["config"]


def _text(config: dict, *drop) -> dict:
    return {k: v for k, v in config.items() if k not in ("architectures", "torch_dtype") + drop}


def _named(config: dict, key: str, names) -> dict:
    """`config` with its nested config `key` naming `names` (None: naming none)."""
    inner = {k: v for k, v in config[key].items() if k != "architectures"}
    return {**config, key: inner if names is None else {**inner, "architectures": names}}


LLAMA = _bundled("meta-llama--Llama-3.1-8B")
# llava-hf's layout (LlavaForConditionalGeneration over a text_config naming LlamaForCausalLM, a CLIP ViT-L/336
# tower), here over Llama 3.1 8B's language model
LLAVA = {"architectures": ["LlavaForConditionalGeneration"], "model_type": "llava", "torch_dtype": "bfloat16",
         "text_config": {**_text(LLAMA), "architectures": ["LlamaForCausalLM"]},
         "vision_config": {"model_type": "clip_vision_model", "hidden_size": 1024, "intermediate_size": 4096,
                           "num_hidden_layers": 24, "num_attention_heads": 16, "patch_size": 14, "image_size": 336}}
V2_LITE = _bundled("deepseek-ai--DeepSeek-V2-Lite")
# deepseek-ai/deepseek-vl2's layout: language_config naming DeepseekV2ForCausalLM (deepseek_vl2.py:347, :381-385 hand
# it on), here over DeepSeek-V2-Lite's language model
DEEPSEEK_VL2 = {"architectures": ["DeepseekVLV2ForCausalLM"], "model_type": "deepseek_vl_v2", "torch_dtype": "bfloat16",
                "language_config": {**_text(V2_LITE), "architectures": ["DeepseekV2ForCausalLM"]},
                "vision_config": {"model_name": "siglip_so400m_patch14_384", "layers": 27, "width": 1152,
                                  "patch_size": 14, "image_size": 384}}
# nvidia/NVIDIA-Nemotron-Nano-12B-v2-VL's layout: llm_config naming NemotronHForCausalLM, a RADIO tower
NEMOTRON_VL = {"architectures": ["NemotronH_Nano_VL_V2"], "model_type": "NemotronH_Nano_VL_V2",
               "torch_dtype": "bfloat16", "llm_config": NEMOTRON_H_8B,
               "vision_config": {"model_type": "radio", "hidden_size": 1280, "patch_size": 16, "image_size": 512}}
GEMMA4_E4B = _bundled("google--gemma-4-E4B-it")
GEMMA3_4B = _bundled("google--gemma-3-4b-it")
QWEN25_VL = _bundled("Qwen--Qwen2.5-VL-7B-Instruct")
# the same checkpoint as transformers' Qwen2_5_VLConfig writes it since it nests the language model
QWEN25_VL_NESTED = {"architectures": QWEN25_VL["architectures"], "model_type": "qwen2_5_vl", "torch_dtype": "bfloat16",
                    "vision_config": QWEN25_VL["vision_config"],
                    "text_config": {**_text(QWEN25_VL, "vision_config", "model_type"),
                                    "model_type": "qwen2_5_vl_text"}}


def _plan(tmp_path, config, **flags):
    path = tmp_path / f"config{next(FILES)}.json"
    path.write_text(json.dumps(config))
    (plan,) = api.estimate(str(path), max_model_len=8192, gpu="H100", **flags)
    return plan


def _figures(tmp_path, config, **flags) -> dict:
    """Everything a plan reports but the file it was read from."""
    return {k: v for k, v in _plan(tmp_path, config, **flags).to_dict().items() if k != "model"}


def _runner(config, version: str) -> str:
    return model_runner(parse_config(config, "m"), behaviour(version), H100).name


# ---- the runner: the top-level list, any name of it -----------------------------------------------------------------

def test_a_wrapper_over_a_v2_default_class_stays_on_v1():
    """0.23.0 checks ["LlavaForConditionalGeneration"] against {Qwen3, Llama, Mistral}ForCausalLM: V1, though the
    language model it builds is LlamaForCausalLM, which alone is dense, unquantised and listed: V2."""
    assert _runner(LLAVA, "0.23.0") == "V1"
    assert _runner(_named(LLAVA, "text_config", None), "0.23.0") == "V1"
    assert _runner(LLAMA, "0.23.0") == "V2"


def test_deepseek_vl2s_language_config_does_not_list_it():
    """0.24.0 lists DeepseekV2ForCausalLM whatever its experts (vllm_runner._V24), but reads DeepseekVLV2ForCausalLM."""
    assert _runner(DEEPSEEK_VL2, "0.24.0") == "V1"
    assert _runner(V2_LITE, "0.24.0") == "V2"


def test_any_listed_top_level_name_picks_v2():
    """[Qwen2ForCausalLM, LlamaForCausalLM]: the registry serves the first it lists (Qwen2, from 0.3.0), but
    0.23.0's any() finds LlamaForCausalLM in the list."""
    names = ["Qwen2ForCausalLM", "LlamaForCausalLM"]
    assert served_name(names, "0.23.0") == "Qwen2ForCausalLM"
    assert _runner({**LLAMA, "architectures": names}, "0.23.0") == "V2"
    assert _runner({**LLAMA, "architectures": ["Qwen2ForCausalLM"]}, "0.23.0") == "V1"


def test_rocms_v1_list_takes_any_name_too():
    """0.30.0:699-706: any name in ROCM_DEFAULT_MRV1_ARCHITECTURES keeps the model on V1."""
    rule = RULES["0.30"]
    flags = (True, False, False, False)  # MoE, unquantised, not hybrid, has attention
    assert not uses_v2(rule, ("FooBarForCausalLM", "DeepseekV32ForCausalLM"), *flags, rocm=True)
    assert uses_v2(rule, ("FooBarForCausalLM", "DeepseekV32ForCausalLM"), *flags, rocm=False)


def test_a_wrappers_plan_does_not_see_its_inner_name_in_the_runner(tmp_path):
    assert _figures(tmp_path, LLAVA, engine="vllm==0.23.0") == \
        _figures(tmp_path, _named(LLAVA, "text_config", None), engine="vllm==0.23.0")


# ---- handlers and class properties: the served top-level class ------------------------------------------------------

def _graphs(tmp_path, config) -> str:
    terms = _plan(tmp_path, config, engine="vllm==0.32.0").budget.terms
    return next(term.source for term in terms if term.name == "cuda_graphs")


def test_gpt_oss_capture_sizes_only_for_the_served_gpt_oss(tmp_path):
    """GptOssForCausalLMConfig raises the capture cap to 1024 (models/config.py 0.32.0:471-483) where
    MODELS_CONFIG_MAP finds GptOssForCausalLM; a wrapper (no entry: :1063-1114) keeps 512, whatever its
    text_config names."""
    gpt_oss = _bundled("openai--gpt-oss-20b")
    nested = {"architectures": ["LlavaForConditionalGeneration"], "model_type": "llava", "torch_dtype": "bfloat16",
              "text_config": {**_text(gpt_oss), "architectures": ["GptOssForCausalLM"]}}
    assert "(largest=1024)" in _graphs(tmp_path, gpt_oss)
    assert "(largest=512)" in _graphs(tmp_path, nested)
    assert _graphs(tmp_path, nested) == _graphs(tmp_path, _named(nested, "text_config", None))


def test_gemma4s_wrapper_keeps_its_per_layer_buffer_and_processor(tmp_path):
    """Gemma4ForConditionalGeneration allocates the per-layer-input buffer (gemma4_mm.py:1143-1156) and runs its
    processor, whose media floor kvplan plans; text_config naming Gemma4ForCausalLM (the class gemma4_mm.py:1140
    builds) changes neither."""
    named = _named(GEMMA4_E4B, "text_config", ["Gemma4ForCausalLM"])
    for engine in ("vllm==0.20.0", "vllm==0.32.0"):
        assert _figures(tmp_path, named, engine=engine) == _figures(tmp_path, GEMMA4_E4B, engine=engine), engine


def test_qwen25_vls_tower_stays_data_parallel(tmp_path):
    """Qwen2_5_VLForConditionalGeneration sets supports_encoder_tp_data (qwen2_5_vl.py:1324); vLLM asks the served
    class (config/model.py:818-829), not the Qwen2ForCausalLM it builds the text model as (:1444-1447)."""
    flags = {"engine": "vllm==0.32.0", "tensor_parallel_size": 2, "mm_encoder_tp_mode": "data"}
    named = _named(QWEN25_VL_NESTED, "text_config", ["Qwen2ForCausalLM"])
    plan = _plan(tmp_path, named, **flags)
    weights = next(term.source for term in plan.budget.terms if term.name == "weights")
    assert "the vision tower whole" in weights and "falls back" not in weights
    assert _figures(tmp_path, named, **flags) == _figures(tmp_path, QWEN25_VL_NESTED, **flags)


@pytest.mark.parametrize("engine", ["vllm==0.23.0", "vllm==0.32.0"])
def test_gemma3s_text_config_name_changes_nothing(tmp_path, engine):
    named = _named(GEMMA3_4B, "text_config", ["Gemma3ForCausalLM"])
    assert _figures(tmp_path, named, engine=engine) == _figures(tmp_path, GEMMA3_4B, engine=engine)


@pytest.mark.parametrize("engine", ["vllm==0.23.0", "vllm==0.28.0", "vllm==0.32.0"])
def test_internvls_llm_config_name_changes_nothing(tmp_path, engine):
    assert _figures(tmp_path, INTERNVL_LLM, engine=engine) == \
        _figures(tmp_path, _named(INTERNVL_LLM, "llm_config", None), engine=engine)


def test_nemotron_vl_is_not_a_mamba_prefix_caching_class():
    """0.23.0 nano_nemotron_vl.py:901-903: NemotronH_Nano_VL_V2 is HasInnerState, IsHybrid, SupportsMultiModal and
    SupportsMultiModalPruning, not SupportsMambaPrefixCaching (interfaces.py 0.23.0:972-975 reads the class's flag);
    NemotronHForCausalLM is, so the flat model keeps a state every block ("all", freeing from 0.14) and the VL one
    does not."""
    assert mamba_all_mode(parse_config(NEMOTRON_VL, "m"), "0.23.0", True) == ""
    assert mamba_all_mode(parse_config(NEMOTRON_H_8B, "m"), "0.23.0", True) == "frees"


def test_the_pooling_runner_is_the_served_classes():
    """LlamaModel is a pooling class of vLLM's registry; a Llava whose text_config names it is still served as
    LlavaForConditionalGeneration, a generating class."""
    assert architecture_runner(parse_config(_named(LLAVA, "text_config", ["LlamaModel"]), "m")) == "generate"
    assert architecture_runner(parse_config({**LLAMA, "architectures": ["LlamaModel"]}, "m")) == "pooling"


def test_a_wrapper_kvplan_does_not_size_is_refused_by_its_own_name(tmp_path):
    """vLLM serves KimiK3ForConditionalGeneration (registry.py:474-476, kimi_k3), whatever class its text_config
    names; kvplan refuses that class by name (model/unmodelled.py ARCHITECTURES)."""
    k3 = {"architectures": ["KimiK3ForConditionalGeneration"], "model_type": "kimi_k3", "torch_dtype": "bfloat16",
          "text_config": {**_text(LLAMA), "architectures": ["KimiK3ForCausalLM"]}}
    with pytest.raises(KvplanError, match=r"architecture KimiK3ForConditionalGeneration has Kimi K3's"):
        parse_config(k3, "m")


def test_an_audio_wrapper_is_multimodal_by_its_served_name():
    """Qwen/Qwen2-Audio-7B's layout (an audio tower, no vision_config); vLLM serves the ForConditionalGeneration
    class and profiles its tower, whatever its text_config names."""
    audio = {"architectures": ["Qwen2AudioForConditionalGeneration"], "model_type": "qwen2_audio",
             "torch_dtype": "bfloat16",
             "audio_config": {"model_type": "qwen2_audio_encoder", "d_model": 1280, "encoder_layers": 32,
                              "encoder_attention_heads": 20, "encoder_ffn_dim": 5120, "num_mel_bins": 128},
             "text_config": {"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"], "hidden_size": 4096,
                             "intermediate_size": 11008, "num_hidden_layers": 32, "num_attention_heads": 32,
                             "num_key_value_heads": 32, "vocab_size": 156032, "max_position_embeddings": 8192}}
    assert parse_config(audio, "m").multimodal and parse_config(_named(audio, "text_config", None), "m").multimodal


def test_gemma3ns_verify_forward_is_the_wrappers():
    """gemma3n_mm.py:636-642, :806-815: the wrapper fills the per-layer inputs from the table; a text_config naming
    Gemma3nForCausalLM (the class it builds) does not make the forward the text-only class's."""
    bundled = _bundled("google--gemma-3n-E2B")
    named = _named(bundled, "text_config", ["Gemma3nForCausalLM"])
    forwards = [architecture(config, parse_config(config, "m"), 1) for config in (bundled, named)]
    assert [(arch.per_layer_table, arch.notes) for arch in forwards] == [(True, forwards[0].notes)] * 2


# ---- the language model's own code: the nested config's class, walked as the registry walks -----------------------

def test_nemotron_vls_attention_is_nemotron_hs():
    """nemotron_h.py builds its attention without quant_config up to 0.13 (0.13.0:484) and with it from 0.14.0
    (:480-487; vllm_e5m2.NO_QUANT_CONFIG_ATTENTION); nano_nemotron_vl.py builds NemotronHForCausalLM from llm_config."""
    spec = parse_config(NEMOTRON_VL, "m")
    assert attention_without_quant_config(spec, "0.13.0") and not attention_without_quant_config(spec, "0.14.0")


def test_a_nested_list_is_walked_as_the_registry_walks():
    """resolve_model_cls (:1411-1415) takes the first name it can load: FooBarForCausalLM is in no registry, so the
    language model is NemotronHForCausalLM; the reader's own rules key on the first name (model/ reads no
    registry), the top-level name stays the served one."""
    config = _named(NEMOTRON_VL, "llm_config", ["FooBarForCausalLM", "NemotronHForCausalLM"])
    spec = parse_config(config, "m")
    assert spec.language_architectures == ("FooBarForCausalLM", "NemotronHForCausalLM")
    assert attention_without_quant_config(spec, "0.13.0")
    assert parse_config(NEMOTRON_VL, "m").language_architectures == ()


def test_a_flat_list_builds_the_served_class():
    """Without a nested config the served class is the language model: [FooBarForCausalLM, NemotronHForCausalLM]
    is built as NemotronHForCausalLM (registry.py :1357-1361), whose attention 0.13 builds without quant_config."""
    spec = parse_config({**NEMOTRON_H_8B, "architectures": ["FooBarForCausalLM", "NemotronHForCausalLM"]}, "m")
    assert attention_without_quant_config(spec, "0.13.0") and not attention_without_quant_config(spec, "0.14.0")


def test_a_nested_qwen2_with_is_causal_false_is_encoder_only(tmp_path):
    """InternVL builds its language model from llm_config (Qwen2ForCausalLM), whose Qwen2DecoderLayer reads that
    config's is_causal (vllm_config_read.ENCODER_ONLY_FROM: from 0.10.1): no KV cache to size. 0.10.0 builds it
    causal."""
    config = {**INTERNVL_LLM, "llm_config": {**INTERNVL_LLM["llm_config"], "is_causal": False}}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    for engine, first in (("vllm==0.32.0", "vLLM 0.32.0"), ("none", "vLLM (from 0.10.1)")):
        with pytest.raises(KvplanError, match=re.escape(f"(Qwen2ForCausalLM) is an encoder-only model: {first} ")):
            api.estimate(str(path), max_model_len=8192, gpu="H100", engine=engine)
    assert _plan(tmp_path, config, engine="vllm==0.10.0").engine.refusal is None
