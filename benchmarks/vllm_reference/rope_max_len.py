"""What vLLM 0.34.0's own _get_and_verify_max_len (config/model.py:2589-2720) derives from a config's RoPE scaling,
frozen as tests/data/vllm_rope_max_len.json for tests/test_vllm_rope_len.py. Each config is written to a temporary
folder and read as vLLM reads it (transformers_utils/config.py get_config, which runs patch_rope_parameters and
transformers' standardize_rope_params; get_hf_text_config; the model's ModelArchConfigConvertor), then:
- `default`: the length vLLM serves with no --max-model-len;
- `limit` / `limit_key`: the derived length and key its refusal of a longer --max-model-len prints (asked at
  ASKED tokens; None where nothing is refused);
- `refused_at` / `served_at`: whether `probe` tokens are refused, and what is served where they are not.
Both with and without --disable-sliding-window where the config has a window.

    cd /tmp/s52/sd/vllm-0.34.0 && VLLM_TARGET_DEVICE=cpu HF_HUB_OFFLINE=1 PYTHONPATH=. /tmp/v34/bin/python \\
        <repo>/benchmarks/vllm_reference/rope_max_len.py <repo>/tests/data/vllm_rope_max_len.json

Session 60 ran it with CPU torch 2.13.0 and transformers 5.22.2 (/tmp/v34). No GPU, no Hub, no weights."""

import json
import re
import sys
import tempfile
from pathlib import Path

ASKED = 10**8  # past every config's length: the refusal names the derived length
LLAMA = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096,
         "intermediate_size": 11008, "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
         "vocab_size": 32000, "torch_dtype": "bfloat16", "rope_theta": 10000.0}
QWEN2 = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 3584, "intermediate_size": 18944,
         "num_hidden_layers": 28, "num_attention_heads": 28, "num_key_value_heads": 4, "max_position_embeddings": 32768,
         "vocab_size": 152064, "torch_dtype": "bfloat16", "rope_theta": 1000000.0, "tie_word_embeddings": False,
         "sliding_window": 131072, "max_window_layers": 28, "use_sliding_window": False}
MISTRAL = {"architectures": ["MistralForCausalLM"], "model_type": "mistral", "hidden_size": 4096,
           "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
           "vocab_size": 32000, "torch_dtype": "bfloat16", "rope_theta": 10000.0, "max_position_embeddings": 32768,
           "sliding_window": 4096}
PHI3 = {"architectures": ["Phi3ForCausalLM"], "model_type": "phi3", "hidden_size": 3072, "intermediate_size": 8192,
        "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 32064,
        "torch_dtype": "bfloat16", "rope_theta": 10000.0, "max_position_embeddings": 131072,
        "original_max_position_embeddings": 4096, "sliding_window": 262144,
        "rope_scaling": {"type": "longrope", "long_factor": [1.0] * 48, "short_factor": [1.0] * 48}}
GEMMA3 = {"architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text", "hidden_size": 2560,
          "intermediate_size": 10240, "num_hidden_layers": 34, "num_attention_heads": 8, "num_key_value_heads": 4,
          "head_dim": 256, "vocab_size": 262208, "torch_dtype": "bfloat16", "max_position_embeddings": 131072,
          "sliding_window": 1024, "rope_scaling": {"factor": 8.0, "rope_type": "linear"}}
QWEN2_VL = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", **{k: v for k, v in QWEN2.items() if k not in (
    "architectures", "model_type")}, "max_position_embeddings": 128000,
    "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]}}
LLAVA = {"architectures": ["LlavaForConditionalGeneration"], "model_type": "llava", "image_token_index": 32000,
         "text_config": dict(LLAMA, max_position_embeddings=4096, rope_scaling={"type": "linear", "factor": 2.0}),
         "vision_config": {"model_type": "clip_vision_model", "hidden_size": 1024, "image_size": 336,
                           "intermediate_size": 4096, "num_attention_heads": 16, "num_hidden_layers": 24,
                           "patch_size": 14, "projection_dim": 768}}

# (name, config, probe): probe is a --max-model-len to try besides the default
CASES = (
    ("qwen_yarn_recipe", dict(QWEN2, rope_scaling={"factor": 4.0, "original_max_position_embeddings": 32768,
                                                   "type": "yarn"}), 131072),
    ("qwen_yarn_no_original", dict(QWEN2, rope_scaling={"factor": 4.0, "type": "yarn"}), 131072),
    ("deepseek_style_yarn", dict(QWEN2, max_position_embeddings=163840, rope_scaling={
        "factor": 40.0, "original_max_position_embeddings": 4096, "type": "yarn"}), 163840),
    ("linear_2", dict(LLAMA, max_position_embeddings=32768, rope_scaling={"type": "linear", "factor": 2.0}), 65536),
    ("linear_rope_type_2", dict(LLAMA, max_position_embeddings=4096, rope_scaling={"rope_type": "linear",
                                                                                   "factor": 2.0}), 8193),
    ("linear_1_5_fraction", dict(LLAMA, max_position_embeddings=4097, rope_scaling={"type": "linear",
                                                                                    "factor": 1.5}), 6146),
    ("dynamic_4", dict(LLAMA, max_position_embeddings=4096, rope_scaling={"type": "dynamic", "factor": 4.0}), 16384),
    ("null_factor_linear", dict(LLAMA, max_position_embeddings=4096, rope_scaling={"type": "linear",
                                                                                   "factor": None}), 4097),
    ("llama3_8", dict(LLAMA, max_position_embeddings=131072, rope_scaling={
        "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192}), 131072),
    ("longrope_phi3", PHI3, 131072),
    ("gemma3_linear_8", GEMMA3, 131072),
    ("mrope_no_factor", QWEN2_VL, 128000),
    ("no_scaling", dict(LLAMA, max_position_embeddings=4096), 4097),
    ("nested_text_config_linear_2", LLAVA, 8192),
    ("window_linear_2", dict(MISTRAL, rope_scaling={"type": "linear", "factor": 2.0}), 8193),
    ("window_yarn_4", dict(MISTRAL, rope_scaling={"type": "yarn", "factor": 4.0,
                                                  "original_max_position_embeddings": 8192}), 4097),
)
DERIVED = re.compile(r"derived max_model_len \((?P<key>[\w.]+)=(?P<value>[0-9.e+inf]+) or")


def verify(text_config, arch, max_model_len, disable_sliding_window):
    from vllm.config.model import _get_and_verify_max_len

    window = getattr(text_config, "sliding_window", None)  # ModelConfig.get_sliding_window (0.34.0:1645-1647)
    try:
        return _get_and_verify_max_len(text_config, arch, None, max_model_len, disable_sliding_window, window), None
    except ValueError as exc:
        return None, str(exc)


def run(name, config, probe):
    import vllm.config.model  # noqa: F401  (first: the convertor module imports it back)
    from vllm.transformers_utils.config import get_config, get_hf_text_config
    from vllm.transformers_utils.model_arch_config_convertor import (MODEL_ARCH_CONFIG_CONVERTORS,
                                                                     ModelArchConfigConvertorBase)

    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "config.json").write_text(json.dumps(config))
        hf_config = get_config(folder, trust_remote_code=False)
    text = get_hf_text_config(hf_config)
    convertor = MODEL_ARCH_CONFIG_CONVERTORS.get(hf_config.model_type, ModelArchConfigConvertorBase)
    arch = convertor(hf_config, text).convert()
    out = []
    windows = (False, True) if getattr(text, "sliding_window", None) is not None else (False,)
    for disable in windows:
        default, _ = verify(text, arch, None, disable)
        _, message = verify(text, arch, ASKED, disable)
        found = DERIVED.search(message or "")
        served, refusal = verify(text, arch, probe, disable)
        out.append({"name": name, "config": config, "disable_sliding_window": disable, "default": default,
                    "limit": float(found["value"]) if found else None, "limit_key": found["key"] if found else None,
                    "probe": probe, "probe_refused": refusal is not None, "probe_served": served,
                    "rope_parameters": json.loads(json.dumps(getattr(text, "rope_parameters", None)))})
    return out


def main():
    import transformers
    import vllm

    records = [row for name, config, probe in CASES for row in run(name, config, probe)]
    header = {"vllm_version": vllm.__version__, "transformers_version": transformers.__version__,
              "script": "benchmarks/vllm_reference/rope_max_len.py",
              "function": "vllm/config/model.py _get_and_verify_max_len (0.34.0:2589-2720)"}
    Path(sys.argv[1]).write_text(json.dumps({"header": header, "cases": records}, indent=1) + "\n")


if __name__ == "__main__":
    main()
