"""What vLLM 0.34.0's own --pooler-config parser, ModelConfig and EngineArgs make of a user's pooler config, frozen
as tests/data/vllm_pooler_config.json for tests/test_pooler_config.py. The JSON is parsed as `vllm serve` parses
the flag (engine/arg_utils.py 0.34.0:368-373: TypeAdapter(PoolerConfig).validate_json), then handed to ModelConfig
with the runner asked; EngineArgs' _set_default_chunked_prefill_and_prefix_caching_args and
_set_default_max_num_seqs_and_batched_tokens_args then set what `vllm serve` runs with. Pure Python from the source
release, no GPU, Hub offline:

    cd /tmp/s52/sd/vllm-0.34.0 && PYTHONPATH=. HF_HUB_OFFLINE=1 /tmp/v34/bin/python <repo>/benchmarks/vllm_reference/\
pooler_config.py > <repo>/tests/data/vllm_pooler_config.json

With no device, get_batch_defaults falls back to its 2,048 batched tokens / 256 sequences tier. The model is
Qwen3-8B's config.json (model_specs/Qwen--Qwen3-8B.yaml), and for "st_mean" the same beside a Sentence Transformers
modules.json whose 1_Pooling/config.json pools MEAN. Session 57 ran it with CPU torch 2.13.0 (/tmp/v34)."""

import json
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
LENGTH = 32_768
TRANSFORMER = {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}
POOLING = {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}
MEAN = {"pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True, "pooling_mode_lasttoken": False}
# (name, folder, runner, --pooler-config as typed)
CASES = (
    ("pooling_mean", "plain", "pooling", '{"pooling_type": "MEAN"}'),
    ("pooling_last", "plain", "pooling", '{"pooling_type": "LAST"}'),
    ("pooling_seq_mean", "plain", "pooling", '{"seq_pooling_type": "MEAN"}'),
    ("pooling_tok_step", "plain", "pooling", '{"tok_pooling_type": "STEP"}'),
    ("pooling_dimensions", "plain", "pooling", '{"dimensions": 256}'),
    ("st_mean_alone", "st_mean", "auto", None),
    ("st_mean_to_last", "st_mean", "auto", '{"pooling_type": "LAST"}'),
    ("st_mean_to_tok_all", "st_mean", "auto", '{"tok_pooling_type": "ALL"}'),
    ("generate_none", "plain", "generate", None),
    ("generate_mean", "plain", "generate", '{"pooling_type": "MEAN"}'),
    ("generate_last", "plain", "generate", '{"pooling_type": "LAST"}'),
    ("generate_dimensions", "plain", "generate", '{"dimensions": 256}'),
    ("bad_type", "plain", "pooling", '{"pooling_type": "MAX"}'),
    ("lower_case", "plain", "pooling", '{"pooling_type": "mean"}'),
    ("seq_given_tok", "plain", "pooling", '{"seq_pooling_type": "STEP"}'),
    ("both", "plain", "pooling", '{"pooling_type": "MEAN", "seq_pooling_type": "LAST"}'),
    ("unknown_field", "plain", "pooling", '{"pooling_typ": "MEAN"}'),
    ("removed_normalize", "plain", "pooling", '{"normalize": true}'),
    ("not_an_object", "plain", "pooling", '["MEAN"]'),
)


def parse(text: str):
    """The flag's value as vLLM's argparse type turns it into a PoolerConfig (arg_utils.py 0.34.0 parse_dataclass)."""
    from pydantic import TypeAdapter

    from vllm.config import PoolerConfig

    return TypeAdapter(PoolerConfig).validate_json(text)


def case(folders: dict, name: str, folder: str, runner: str, text) -> dict:
    from vllm.config import ModelConfig, ParallelConfig
    from vllm.engine.arg_utils import EngineArgs
    from vllm.usage.usage_lib import UsageContext

    row = {"name": name, "folder": folder, "runner": runner, "pooler_config": text}
    try:
        pooler = None if text is None else parse(text)
    except Exception as exc:  # the flag's own refusal, before any ModelConfig
        return dict(row, refused=type(exc).__name__, message=str(exc).splitlines()[0:6])
    try:
        model = ModelConfig(model=str(folders[folder]), skip_tokenizer_init=True, max_model_len=LENGTH,
                            runner=runner, pooler_config=pooler)
    except Exception as exc:
        return dict(row, refused=type(exc).__name__, message=str(exc).splitlines()[0:6])
    args = EngineArgs(model=str(folders[folder]))
    args._set_default_chunked_prefill_and_prefix_caching_args(model)
    args._set_default_max_num_seqs_and_batched_tokens_args(UsageContext.OPENAI_API_SERVER, model, ParallelConfig())
    kept = model.pooler_config
    return dict(row, runner_type=model.runner_type,
                seq_pooling_type=None if kept is None else kept.seq_pooling_type,
                tok_pooling_type=None if kept is None else kept.tok_pooling_type,
                attn_type=model.attn_type, chunked_prefill_supported=model.is_chunked_prefill_supported,
                prefix_caching_supported=model.is_prefix_caching_supported,
                enable_chunked_prefill=args.enable_chunked_prefill, enable_prefix_caching=args.enable_prefix_caching,
                max_num_batched_tokens=args.max_num_batched_tokens)


def main() -> None:
    import vllm
    from vllm.config import PoolerConfig

    base = dict(yaml.safe_load((REPO / "model_specs" / "Qwen--Qwen3-8B.yaml").read_text())["config"])
    with tempfile.TemporaryDirectory() as tmp:
        folders = {"plain": Path(tmp) / "plain", "st_mean": Path(tmp) / "st_mean"}
        for folder in folders.values():
            folder.mkdir()
            (folder / "config.json").write_text(json.dumps(base))
        (folders["st_mean"] / "modules.json").write_text(json.dumps([TRANSFORMER, POOLING]))
        (folders["st_mean"] / "1_Pooling").mkdir()
        (folders["st_mean"] / "1_Pooling" / "config.json").write_text(json.dumps(MEAN))
        cases = [case(folders, *row) for row in CASES]
    json.dump({"vllm": vllm.__version__, "script": "benchmarks/vllm_reference/pooler_config.py",
               "config": "model_specs/Qwen--Qwen3-8B.yaml", "max_model_len": LENGTH,
               "fields": sorted(PoolerConfig.__dataclass_fields__), "cases": cases}, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
