"""What vLLM 0.34.0's own ModelConfig and EngineArgs make of a pooling model's config.json, frozen as
tests/data/vllm_pooling_defaults.json for tests/test_pooling_budget.py: the runner, the pooler config's pooling
types, head_dtype, attn_type, is_chunked_prefill_supported / is_prefix_caching_supported, and what EngineArgs'
_set_default_chunked_prefill_and_prefix_caching_args and _set_default_max_num_seqs_and_batched_tokens_args set for
`vllm serve` (UsageContext.OPENAI_API_SERVER). Pure Python from the source release, no GPU, Hub offline:

    cd /tmp/s52/sd/vllm-0.34.0 && PYTHONPATH=. HF_HUB_OFFLINE=1 /tmp/v34/bin/python <repo>/benchmarks/vllm_reference/\
pooling_defaults.py > <repo>/tests/data/vllm_pooling_defaults.json

With no device, get_batch_defaults falls back to its "other GPUs" tier (2,048 batched tokens / 256 sequences,
engine/arg_utils.py 0.34.0 get_batch_defaults), kvplan's tier for a GPU under 70 GiB or an A100. The configs are
Qwen3-8B's (model_specs/Qwen--Qwen3-8B.yaml) with the architecture (and, for Qwen2's reward classes, model_type)
switched. Session 57 ran it with CPU torch 2.13.0 (/tmp/v34)."""

import json
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
ARCHITECTURES = (("Qwen3ForSequenceClassification", "qwen3"), ("Qwen3Model", "qwen3"),
                 ("Qwen2ForRewardModel", "qwen2"), ("Qwen2ForProcessRewardModel", "qwen2"))
LENGTHS = (32_768, 1_024)  # above and below the 2,048 default: max(max_model_len, default) with chunked prefill off


def case(folder: Path, architecture: str, length: int) -> dict:
    from vllm.config import ModelConfig, ParallelConfig
    from vllm.engine.arg_utils import EngineArgs
    from vllm.usage.usage_lib import UsageContext

    model = ModelConfig(model=str(folder), skip_tokenizer_init=True, max_model_len=length)
    args = EngineArgs(model=str(folder))
    args._set_default_chunked_prefill_and_prefix_caching_args(model)
    args._set_default_max_num_seqs_and_batched_tokens_args(UsageContext.OPENAI_API_SERVER, model, ParallelConfig())
    pooler = model.pooler_config
    return {"architecture": architecture, "max_model_len": length, "runner_type": model.runner_type,
            "seq_pooling_type": pooler.seq_pooling_type, "tok_pooling_type": pooler.tok_pooling_type,
            "head_dtype": str(model.head_dtype), "attn_type": model.attn_type,
            "chunked_prefill_supported": model.is_chunked_prefill_supported,
            "prefix_caching_supported": model.is_prefix_caching_supported,
            "enable_chunked_prefill": args.enable_chunked_prefill, "enable_prefix_caching": args.enable_prefix_caching,
            "max_num_batched_tokens": args.max_num_batched_tokens, "max_num_seqs": args.max_num_seqs}


def main() -> None:
    import vllm

    base = dict(yaml.safe_load((REPO / "model_specs" / "Qwen--Qwen3-8B.yaml").read_text())["config"])
    cases = []
    with tempfile.TemporaryDirectory() as tmp:
        for architecture, model_type in ARCHITECTURES:
            folder = Path(tmp) / architecture
            folder.mkdir()
            config = dict(base, architectures=[architecture], model_type=model_type)
            (folder / "config.json").write_text(json.dumps(config))
            cases += [case(folder, architecture, length) for length in LENGTHS]
    json.dump({"vllm": vllm.__version__, "script": "benchmarks/vllm_reference/pooling_defaults.py",
               "config": "model_specs/Qwen--Qwen3-8B.yaml, architecture switched", "cases": cases},
              sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
