"""vLLM 0.34.0's own CUDA-graph capture sizes for a few scheduler settings, frozen as
tests/data/vllm_cudagraph_sizes_034.json for tests/test_vllm_graph_estimate.py. It calls VllmConfig._set_cudagraph_sizes
(config/vllm.py:2322, with _split_cudagraph_capture_sizes :2558) on a VllmConfig holding only what that method reads
(a model config that is not eager, a CompilationConfig, a SchedulerConfig, no speculative config), with the platform's
is_device_capability_family answering 100 for the SM100 cases, then counts the graphs Model Runner V2 captures from
the result: PIECEWISE one per prefill token size, FULL one per decode_cudagraph_capture_shapes shape
(v1/worker/gpu/cudagraph_utils.py:289-379, q = 1). Its "family_cases" run a model's own config hook first
(GptOssForCausalLMConfig.verify_and_update_config, model_executor/models/config.py:840-881), with a speculative
config of k draft tokens where given (q = 1 + k; static, no adaptive verification). Pure Python: runs on the CPU from the 0.34.0 source release:

    cd vllm-0.34.0 && PYTHONPATH=. /tmp/v34/bin/python <repo>/benchmarks/vllm_reference/cudagraph_sizes.py \
        > <repo>/tests/data/vllm_cudagraph_sizes_034.json

Session 60 ran it with vLLM 0.34.0's source release and CPU torch 2.13."""

import json
import logging
import types

logging.disable(logging.WARNING)

import vllm.platforms as platforms  # noqa: E402
from vllm.config import CompilationConfig, SchedulerConfig, VllmConfig  # noqa: E402
from vllm.model_executor.models.config import MODELS_CONFIG_MAP  # noqa: E402
from vllm.config.compilation import (CUDAGraphMode, decode_cudagraph_capture_max_tokens,  # noqa: E402
                                     decode_cudagraph_capture_shapes)

CASES = [  # name, max_num_seqs, max_num_batched_tokens, sm100, max_cudagraph_capture_size, cudagraph_capture_sizes
    ("h100 default 1024 seqs 8192 tokens", 1024, 8192, False, None, None),
    ("256 seqs 8192 tokens", 256, 8192, False, None, None),
    ("128 seqs 2048 tokens", 128, 2048, False, None, None),
    ("64 seqs 16384 tokens", 64, 16384, False, None, None),
    ("100 seqs: max_num_seqs appended", 100, 8192, False, None, None),
    ("256 seqs 300 tokens: the batch cap binds", 256, 300, False, None, None),
    ("max capture 128", 256, 8192, False, 128, None),
    ("max capture 1000", 1024, 8192, False, 1000, None),
    ("explicit sizes", 256, 8192, False, None, [1, 2, 4, 8, 16, 32, 64, 100]),
    ("b200 default 1024 seqs 8192 tokens", 1024, 8192, True, None, None),
    ("b200 256 seqs 16384 tokens", 256, 16384, True, None, None),
    ("b200 with max capture 512", 1024, 8192, True, 512, None),
]

FAMILY_CASES = [  # name, architecture, max_num_seqs, max_num_batched_tokens, sm100, max capture, sizes, draft tokens
    ("gpt-oss h100 1024 seqs 8192 tokens", "GptOssForCausalLM", 1024, 8192, False, None, None, 0),
    ("gpt-oss h100 256 seqs 2048 tokens", "GptOssForCausalLM", 256, 2048, False, None, None, 0),
    ("gpt-oss h100 128 seqs 512 tokens: the batch cap binds", "GptOssForCausalLM", 128, 512, False, None, None, 0),
    ("gpt-oss h100 1024 seqs 3 draft tokens", "GptOssForCausalLM", 1024, 8192, False, None, None, 3),
    ("gpt-oss with max capture 256: no override", "GptOssForCausalLM", 1024, 8192, False, 256, None, 0),
    ("gpt-oss b200: SM100's own defaults", "GptOssForCausalLM", 1024, 8192, True, None, None, 0),
]


def resolve(max_num_seqs, max_num_batched_tokens, sm100, max_capture, sizes, architecture=None,
            draft_tokens=0) -> dict:
    platform = type(platforms.current_platform)
    platform.is_device_capability_family = classmethod(lambda cls, family, device_id=0: sm100 and family == 100)
    config = object.__new__(VllmConfig)
    fields = {} if max_capture is None else {"max_cudagraph_capture_size": max_capture}
    if sizes is not None:
        fields["cudagraph_capture_sizes"] = sizes
    compilation = CompilationConfig(**fields)
    compilation.cudagraph_mode = CUDAGraphMode.FULL_AND_PIECEWISE
    config.__dict__.update(model_config=types.SimpleNamespace(enforce_eager=False), compilation_config=compilation,
                           scheduler_config=SchedulerConfig(max_model_len=8192, is_encoder_decoder=False,
                                                            max_num_seqs=max_num_seqs,
                                                            max_num_batched_tokens=max_num_batched_tokens),
                           speculative_config=_draft(draft_tokens), performance_mode="balanced",
                           diffusion_config=None, parallel_config=types.SimpleNamespace(data_parallel_size=1),
                           structured_outputs_config=types.SimpleNamespace(reasoning_parser="given"))
    if architecture is not None:
        MODELS_CONFIG_MAP[architecture].verify_and_update_config(config)
    VllmConfig._set_cudagraph_sizes(config)
    query_len = 1 + draft_tokens
    prefill = sorted(compilation.prefill_cudagraph_capture_token_sizes or [])
    shapes = decode_cudagraph_capture_shapes(compilation.decode_cudagraph_capture_request_sizes or [],
                                             {query_len: max_num_seqs},
                                             decode_cudagraph_capture_max_tokens(compilation))
    return {"resolved_capture_sizes": compilation.cudagraph_capture_sizes,
            "resolved_max_capture_size": compilation.max_cudagraph_capture_size,
            "piecewise": len(prefill), "piecewise_largest": max(prefill, default=0),
            "full": len(shapes), "full_largest": max((n * q for n, q in shapes), default=0)}


def _draft(tokens: int):
    """A static speculative config of `tokens` draft tokens (what _set_cudagraph_sizes reads of it), or None."""
    if not tokens:
        return None
    return types.SimpleNamespace(num_speculative_tokens=tokens, method="ngram", enable_adaptive_verification=False,
                                 uses_dynamic_speculative_decoding=lambda: False,
                                 use_multi_module_mtp=lambda: False, use_gemma4_mtp=lambda: False)


if __name__ == "__main__":
    cases = [{"name": name, "max_num_seqs": seqs, "max_num_batched_tokens": tokens, "sm100": sm100,
              "max_cudagraph_capture_size": cap, "cudagraph_capture_sizes": sizes,
              **resolve(seqs, tokens, sm100, cap, sizes)} for name, seqs, tokens, sm100, cap, sizes in CASES]
    print(json.dumps({"source": "vLLM 0.34.0 config/vllm.py _set_cudagraph_sizes, run by "
                                "benchmarks/vllm_reference/cudagraph_sizes.py (session 60)",
                      "version": "0.34.0", "cases": cases,
                      "family_cases": [{"name": name, "architecture": arch, "max_num_seqs": seqs,
                                        "max_num_batched_tokens": tokens, "sm100": sm100,
                                        "max_cudagraph_capture_size": cap, "cudagraph_capture_sizes": sizes,
                                        "num_speculative_tokens": draft,
                                        **resolve(seqs, tokens, sm100, cap, sizes, arch, draft)}
                                       for name, arch, seqs, tokens, sm100, cap, sizes, draft in FAMILY_CASES]},
                     indent=1))
