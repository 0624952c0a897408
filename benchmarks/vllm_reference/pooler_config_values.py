"""What each release's own PoolerConfig makes of a --pooler-config field's value, frozen as
tests/data/vllm_pooler_config_values.json for tests/test_review_text_s59.py. Each value is parsed alone, as `vllm
serve` parses the flag (engine/arg_utils.py 0.11.0:198-202, 0.34.0:368-373: TypeAdapter(PoolerConfig).validate_json):
"ok" where it is taken, else pydantic's (or __post_init__'s) first words. Pure Python from each source release, no GPU;
run once per release, each line appended to the JSON's "releases":

    cd /tmp/s52/sd/vllm-X.Y.Z && PYTHONPATH=. /tmp/v34/bin/python <repo>/benchmarks/vllm_reference/\
pooler_config_values.py

Session 59 ran it with the pydantic of the vLLM 0.34.0 environment (2.14.4) on 0.11.0, 0.11.1, 0.12.0, 0.14.1,
0.15.1 (its wheel's source), 0.16.0, 0.17.0, 0.19.0, 0.20.0, 0.32.0 and 0.34.0 (the releases where PoolerConfig's
fields or types change); the
older releases' requirements name pydantic 2.x too, whose lax rules for int, bool, float and list are the same.
Releases that import gguf at start-up are given an empty stand-in module (the pooler config does not use it)."""

import importlib.abc
import importlib.machinery
import json
import sys
import types

# (field, the value as JSON text): each parsed alone
CASES = (
    ("dimensions", "1e999"), ("dimensions", "NaN"), ("dimensions", "-Infinity"), ("dimensions", "-5"),
    ("dimensions", "0"), ("dimensions", "3.0"), ("dimensions", "3.5"), ("dimensions", "true"), ("dimensions", '"7"'),
    ("dimensions", '"7.5"'), ("dimensions", '"abc"'), ("dimensions", "[]"), ("dimensions", "null"),
    ("dimensions", "1e20"), ("max_embed_len", "-1"), ("max_embed_len", "2.5"), ("step_tag_id", "false"),
    ("step_tag_id", '"x"'), ("returned_token_ids", '[1, "2", 3.0, true]'), ("returned_token_ids", "[1.5]"),
    ("returned_token_ids", "5"), ("returned_token_ids", "[null]"), ("use_activation", "1"), ("use_activation", "2"),
    ("use_activation", '"yes"'), ("use_activation", '" yes "'), ("use_activation", "null"),
    ("use_activation", "0.5"), ("normalize", '"no"'), ("normalize", "3"), ("enable_chunked_processing", "null"),
    ("enable_chunked_processing", '"on"'), ("enable_chunked_processing", "2"),
    ("enable_flash_late_interaction", "null"), ("enable_flash_late_interaction", "false"),
    ("logit_bias", '"1.5"'), ("logit_bias", "NaN"), ("logit_bias", '"abc"'), ("logit_mean", "1e999"),
    ("logit_mean", "[]"), ("logit_sigma", "0"), ("logit_sigma", "0.0"), ("logit_sigma", '"0"'), ("logit_sigma", "2"),
    ("softmax", "2.5"), ("softmax", "true"), ("activation", "0.5"), ("task", '"embed"'), ("task", '"EMBED"'),
    ("task", "5"), ("task", '"score"'), ("pooling_type", "5"), ("pooling_type", '"MEAN"'),
)


class _Empty(importlib.abc.Loader):
    def create_module(self, spec):
        module = types.ModuleType(spec.name)
        module.__path__ = []
        module.__getattr__ = lambda name: type(name, (), {})
        return module

    def exec_module(self, module):
        pass


class _GgufStandIn(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "gguf" or name.startswith("gguf."):
            return importlib.machinery.ModuleSpec(name, _Empty(), is_package=True)
        return None


def verdict(adapter, field: str, value: str) -> str:
    try:
        adapter.validate_json(f'{{"{field}": {value}}}')
    except Exception as exc:  # pydantic's ValidationError, or __post_init__'s ValueError within it
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        words = next((line for line in lines if " [type=" in line), lines[-1])  # the error's own line
        return words.split(" [type=")[0]
    return "ok"


def main() -> None:
    try:
        import gguf  # noqa: F401
    except ImportError:
        sys.meta_path.insert(0, _GgufStandIn())
    import vllm
    from pydantic import TypeAdapter
    from vllm.config.pooler import PoolerConfig

    adapter = TypeAdapter(PoolerConfig)
    release = getattr(vllm, "__version__", "")
    results = {f"{field}={value}": verdict(adapter, field, value) for field, value in CASES}
    print(json.dumps({"release": release, "fields": sorted(PoolerConfig.__dataclass_fields__), "cases": results}))


if __name__ == "__main__":
    main()
