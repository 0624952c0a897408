"""What vLLM 0.32.0 makes of --speculative-config, run by its own code on the CPU (no GPU, no weights): for each
case, make_figures.py's pipeline (Hopper emulation, meta-device model, the engine core's get_kv_cache_configs, the
KVCacheManager admission) with the speculative config given to EngineArgs, and the drafter built beside the target
as the proposer builds it (v1/spec_decode/llm_base_proposer.py load_model -> get_model with the draft model config),
so its attention layers join the KV cache specs (v1/worker/gpu/attn_utils.py get_kv_cache_spec reads every
attention layer the config registered). The drafter's parameters are counted per TP rank by module; the ones the
proposer replaces by the target's (_maybe_share_embeddings, _maybe_share_lm_head: embed_tokens and the MTP
shared_head.head, at pipeline size 1) are listed apart, as vLLM frees them.

    HF_HUB_OFFLINE=1 /tmp/vllm-venv/bin/python benchmarks/vllm_reference/speculative_figures.py \
        --out tests/data/vllm_speculative_figures.json
"""

import argparse
import functools
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import make_figures as mf  # noqa: E402

GIB = 1 << 30
# EAGLE heads for Llama-3.1-8B-Instruct in the shape of the public EAGLE checkpoints' config.json (one Llama decoder
# layer; EAGLE-3 with a 32,000-token draft vocabulary), kept here and frozen with the records (inputs.draft_config)
EAGLE_LLAMA = {"architectures": ["LlamaForCausalLM"], "hidden_act": "silu", "hidden_size": 4096,
               "intermediate_size": 14336, "max_position_embeddings": 8192, "model_type": "llama",
               "num_attention_heads": 32, "num_key_value_heads": 8, "num_hidden_layers": 1, "rms_norm_eps": 1e-05,
               "rope_theta": 500000.0, "tie_word_embeddings": False, "torch_dtype": "bfloat16", "vocab_size": 128256}
EAGLE3_LLAMA = dict(EAGLE_LLAMA, architectures=["LlamaForCausalLMEagle3"], draft_vocab_size=32000,
                    max_position_embeddings=2048)
mf.SCRIPT_CONFIGS.update(EAGLE_LLAMA=EAGLE_LLAMA, EAGLE3_LLAMA=EAGLE3_LLAMA)
# (model, tp, max_model_len, budget, speculative config)
CASES = [
    ("deepseek-ai/DeepSeek-V3", 8, 32768, 40 * GIB, {"method": "mtp", "num_speculative_tokens": 1}),
    ("deepseek-ai/DeepSeek-V3", 8, 32768, 40 * GIB, {"method": "mtp", "num_speculative_tokens": 3}),
    ("deepseek-ai/DeepSeek-V3", 8, 32768, 40 * GIB, None),
    ("Qwen/Qwen3-Next-80B-A3B-Thinking", 4, 32768, 10 * GIB, {"method": "mtp", "num_speculative_tokens": 2}),
    ("Qwen/Qwen3-Next-80B-A3B-Thinking", 4, 32768, 10 * GIB, None),
    ("Qwen/Qwen3-Next-80B-A3B-Thinking", 4, 32768, 10 * GIB, {"method": "ngram", "num_speculative_tokens": 4,
                                                               "prompt_lookup_max": 4}),
    ("meta-llama/Llama-3.1-8B", 1, 32768, 10 * GIB, {"method": "ngram", "num_speculative_tokens": 4,
                                                      "prompt_lookup_max": 4}),
    # a separate draft model (method inferred from "model"), at the target's TP
    ("meta-llama/Llama-3.1-8B", 1, 32768, 10 * GIB, {"model": "meta-llama/Llama-3.2-1B-Instruct",
                                                      "num_speculative_tokens": 4}),
    ("meta-llama/Llama-3.1-8B", 2, 32768, 10 * GIB, {"model": "meta-llama/Llama-3.2-1B-Instruct",
                                                      "num_speculative_tokens": 4}),
    ("meta-llama/Llama-3.1-8B", 1, 32768, 10 * GIB, {"method": "eagle", "model": "make_figures.py:EAGLE_LLAMA",
                                                      "num_speculative_tokens": 3}),
    ("meta-llama/Llama-3.1-8B", 2, 32768, 10 * GIB, {"method": "eagle3", "model": "make_figures.py:EAGLE3_LLAMA",
                                                      "num_speculative_tokens": 3}),
]
# replaced by the target's at pipeline size 1 (a draft model keeps its own: draft_model.py overrides both to pass);
# for EAGLE heads as the public checkpoints are laid out: no embed_tokens of their own (EAGLE-3's 32,000-row
# lm_head is its own: process_eagle_weight sets has_own_lm_head, and it differs from the target's)
SHARED = ("embed_tokens.", "shared_head.head.", "lm_head.")
DRAFTS: list = []


def _drafter_too(orig):
    """initialize_model that also builds the drafter, in the same config, when the target is built."""
    def both(vllm_config, **kwargs):
        model = orig(vllm_config=vllm_config, **kwargs)
        sc = vllm_config.speculative_config
        if sc is not None and "model_config" not in kwargs and "prefix" not in kwargs and sc.method not in (
                "ngram", "suffix"):
            if sc.method == "draft_model":  # v1/spec_decode/draft_model.py _create_draft_vllm_config, _get_model
                from dataclasses import replace

                draft_config = replace(vllm_config, quant_config=None, parallel_config=sc.draft_parallel_config,
                                       model_config=sc.draft_model_config)
                draft = orig(vllm_config=draft_config, prefix="draft_model")
            else:
                draft = orig(vllm_config=vllm_config, model_config=sc.draft_model_config, prefix="draft")
            modules: dict = {}
            for name, p in draft.named_parameters():
                shared = sc.method != "draft_model" and any(s in "." + name + "." for s in ("." + t for t in SHARED))
                shared &= not (sc.method == "eagle3" and name.startswith("lm_head."))  # its own, draft_vocab_size
                key = name.rsplit(".", 1)[0] if shared else ".".join(name.split(".")[:4])
                row = modules.setdefault(key, {"parameters": 0, "bytes": 0, "shared_with_target": shared})
                row["parameters"] += p.numel()
                row["bytes"] += p.numel() * p.element_size()
            DRAFTS.append({"architecture": sc.draft_model_config.architecture, "modules": modules})
            model._kvref_draft = draft  # kept alive with the target
        return model
    return both


def _draft_dirs(config: dict) -> dict:
    """The speculative config with a draft model's id replaced by a directory holding its bundled config.json."""
    config = dict(config)
    if "model" in config:
        config["model"] = mf.config_dir(config["model"], False)
    return config


def speculative_vllm_config(made, case, drop_quant):
    """The case's VllmConfig with its speculative config given to EngineArgs (a draft model's id as a directory of
    its bundled config.json); `made` (make_figures.make_vllm_config) where the case has none."""
    from vllm.engine.arg_utils import EngineArgs
    from vllm.usage.usage_lib import UsageContext

    if case.get("speculative_config") is None:
        return made(case, drop_quant)
    name, memory = mf.GPUS[case["gpu"]]
    mf._EMULATED_GPU.update(name=name, memory=memory)
    kwargs = dict(model=mf.config_dir(case["model"], drop_quant), skip_tokenizer_init=True, load_format="dummy",
                  kv_cache_dtype=case["kv_cache_dtype"], tensor_parallel_size=case["tp"],
                  max_model_len=case["max_model_len"], speculative_config=_draft_dirs(case["speculative_config"]))
    return EngineArgs(**kwargs).create_engine_config(UsageContext.OPENAI_API_SERVER)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    args = ap.parse_args()
    from vllm.model_executor.model_loader import utils

    with_speculation = functools.partial(speculative_vllm_config, mf.make_vllm_config)

    mf.make_vllm_config = with_speculation
    utils.initialize_model = _drafter_too(utils.initialize_model)
    mf.install_gpu_emulation()
    mf.attach_capture()
    records = []
    for model, tp, length, budget, speculative in CASES:
        DRAFTS.clear()
        mf._SPEC_CACHE.clear()  # its key has no speculative config: build every case
        case = dict(model=model, family=model, tp=tp, kv_cache_dtype="auto", available_kv_cache_bytes=budget,
                    max_model_len=length, gpu=mf.DEFAULT_GPU, grid="speculative", speculative_config=speculative)
        rec = mf.run_case(case, 4096)
        if speculative and str(speculative.get("model", "")).startswith("make_figures.py:"):
            rec["inputs"]["draft_config"] = mf.load_model_config(speculative["model"])
        rec["draft"] = DRAFTS[0] if DRAFTS else None
        vc = None
        try:
            vc = with_speculation(case, bool(rec.get("weights_quantization_dropped")))
        except Exception:  # noqa: BLE001
            pass
        if vc is not None:
            rec["speculation"] = {"num_speculative_tokens": vc.num_speculative_tokens,
                                  "num_lookahead_tokens": vc.num_lookahead_tokens,
                                  "num_prefill_lookahead_tokens": vc.num_prefill_lookahead_tokens,
                                  "max_num_batched_tokens": vc.scheduler_config.max_num_batched_tokens,
                                  "max_num_seqs": vc.scheduler_config.max_num_seqs}
        print(json.dumps({"inputs": rec["inputs"], "starts": rec.get("starts"), "error": rec.get("error"),
                          "layers": rec.get("layer_specs"), "kv": {k: rec.get("kv", {}).get(k) for k in (
                              "num_gpu_blocks", "bytes_per_block", "num_groups", "gpu_kv_cache_tokens")},
                          "resident": rec.get("resident", {}).get("requests"), "log": rec.get("log_lines"),
                          "speculation": rec.get("speculation"), "draft": rec["draft"]}), flush=True)
        records.append(rec)
    if args.out:
        mf.write_frozen(args.out, "benchmarks/vllm_reference/speculative_figures.py",
                        "make_figures.py run_case with EngineArgs(speculative_config=...) and the drafter "
                        "built beside the target on the meta device", records)


if __name__ == "__main__":
    main()
