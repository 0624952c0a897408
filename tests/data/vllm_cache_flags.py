"""Make tests/data/vllm_cache_flags.json: what vLLM's own code makes of --mamba-cache-dtype,
--mamba-ssm-cache-dtype and --disable-sliding-window (tests/test_vllm_cache_flags.py). Run with the pure-python
import of the vLLM 0.34.0 source release (CPU torch):

    cd /tmp/s52/sd/vllm-0.34.0 && PYTHONPATH=. /tmp/v34/bin/python /work/wt/cacheflags/tests/data/vllm_cache_flags.py \
        > /work/wt/cacheflags/tests/data/vllm_cache_flags.json

- "choices": config/cache.py MambaDType, the values argparse takes for both flags.
- "states": MambaStateDtypeCalculator (model_executor/layers/mamba/mamba_utils.py) for a bfloat16 model, every
  (--mamba-cache-dtype, --mamba-ssm-cache-dtype) pair, as each layer kind calls it: Mamba-2 and the gated DeltaNet
  with both flags, Kimi Delta Attention with --mamba-cache-dtype alone (kimi_gdn_linear_attn.py:163-165), LFM2's
  short convolution (one conv state).
- "handlers": the SSM dtype after the config handlers of models/config.py run on a CacheConfig holding the flag
  (NemotronHForCausalLMConfig.verify_and_update_config with and without the config's own mamba_ssm_cache_dtype,
  Qwen3_5ForConditionalGenerationConfig with mamba_ssm_dtype float32).
- "max_len": config/model.py _get_and_verify_max_len for transformers' Gemma 3 text, gpt-oss and Mistral configs,
  the window passed as ModelConfig passes get_sliding_window(), with and without disable_sliding_window: the length
  it derives, or its refusal of a longer max_model_len."""

import json
import sys
from types import SimpleNamespace
from typing import get_args

import torch
from vllm import __version__
from vllm.config.cache import CacheConfig, MambaDType
from vllm.config.model import _get_and_verify_max_len
from vllm.model_executor.layers.mamba.mamba_utils import MambaStateDtypeCalculator as Calc
from vllm.model_executor.models.config import NemotronHForCausalLMConfig, Qwen3_5ForConditionalGenerationConfig

NAMES = {torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}


def names(dtypes) -> list:
    return [NAMES[d] for d in dtypes]


def states(choices) -> dict:
    out = {}
    for conv in choices:
        for ssm in choices:
            key = f"{conv},{ssm}"
            out[key] = {"mamba2": names(Calc.mamba2_state_dtype(torch.bfloat16, conv, ssm)),
                        "gdn": names(Calc.gated_delta_net_state_dtype(torch.bfloat16, conv, ssm)),
                        "kda": names(Calc.kda_state_dtype(torch.bfloat16, conv)),
                        "short_conv": names(Calc.short_conv_state_dtype(torch.bfloat16, conv))}
    return out


def handled(handler, asked: str, hf_fields: dict) -> str:
    cache = CacheConfig(mamba_ssm_cache_dtype=asked)
    hf = SimpleNamespace(**hf_fields)
    model = SimpleNamespace(hf_config=hf, hf_text_config=hf)
    handler.verify_and_update_config(SimpleNamespace(cache_config=cache, model_config=model))
    return cache.mamba_ssm_cache_dtype


def handlers(choices) -> dict:
    return {"nemotron_h_no_config_dtype": {a: handled(NemotronHForCausalLMConfig, a, {}) for a in choices},
            "nemotron_h_config_float16": {a: handled(NemotronHForCausalLMConfig, a,
                                                     {"mamba_ssm_cache_dtype": "float16"}) for a in choices},
            "qwen3_5_config_float32": {a: handled(Qwen3_5ForConditionalGenerationConfig, a,
                                                  {"mamba_ssm_dtype": "float32"}) for a in choices}}


def derived(hf, asked, disable: bool):
    arch = SimpleNamespace(derived_max_model_len_and_key=(float(hf.max_position_embeddings),
                                                          "max_position_embeddings"))
    try:
        return _get_and_verify_max_len(hf, arch, None, asked, disable, getattr(hf, "sliding_window", None))
    except ValueError as exc:
        return "refused: " + str(exc).split(" To allow")[0]


def max_len() -> dict:
    from transformers import Gemma3TextConfig, GptOssConfig, MistralConfig

    configs = {  # the bundled specs' values (model_specs/*.yaml)
        "gemma-3-27b-it": Gemma3TextConfig(sliding_window=1024, max_position_embeddings=131072,
                                           rope_scaling={"rope_type": "linear", "factor": 8.0}),
        "gpt-oss-20b": GptOssConfig(sliding_window=128, max_position_embeddings=131072),
        "Mistral-7B-v0.1": MistralConfig(sliding_window=4096, max_position_embeddings=32768),
    }
    out = {}
    for name, hf in configs.items():
        out[name] = {"model_type": hf.model_type,
                     "default": derived(hf, None, False), "default_disabled": derived(hf, None, True),
                     "32768_disabled": derived(hf, 32768, True), "window_disabled": derived(hf, hf.sliding_window,
                                                                                            True)}
    return out


def main():
    choices = list(get_args(MambaDType))
    json.dump({"vllm": __version__, "script": "tests/data/vllm_cache_flags.py", "choices": choices,
               "states": states(choices), "handlers": handlers(choices), "max_len": max_len()},
              sys.stdout, indent=1, sort_keys=True)
    print()


if __name__ == "__main__":
    main()
