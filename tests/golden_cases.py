"""The commands whose JSON output is pinned in tests/golden/ (see tests/golden/regen.py)."""

from __future__ import annotations

import functools
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SWEEP = ["--max-model-len", "8192,32K", "--kv-cache-dtype", "auto,fp8", "-tp", "1,2,8", "--gpu", "h200"]
CHECKED = ("meta-llama/Llama-3.1-70B-Instruct", "deepseek-ai/DeepSeek-V3", "Qwen/Qwen3-Next-80B-A3B-Thinking",
           "google/gemma-3-27b-it", "openai/gpt-oss-120b")


def bundled_ids() -> list:
    return list(_bundled_ids())


@functools.lru_cache(maxsize=None)
def _bundled_ids() -> tuple:
    """Read once per process: test_golden's parametrize and ids, and test_speed_cli's, ask at collection."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return tuple(str(yaml.load(path.read_text(), Loader=loader)["id"])
                 for path in sorted((ROOT / "model_specs").glob("*.yaml")))


def cases() -> list:
    """(golden file stem, argv) pairs."""
    out = [("models", ["models", "--format", "json"]), ("gpus", ["gpus", "--format", "json"])]
    for model in bundled_ids():
        stem = model.replace("/", "--")
        out.append((f"estimate--{stem}", ["estimate", model, "--format", "json", "--gpu", "h100"]))
        out.append((f"sweep--{stem}", ["estimate", model, *SWEEP, "--format", "json"]))
    for model in CHECKED:
        stem = model.replace("/", "--")
        out.append((f"check--{stem}", ["check", model, "-tp", "1,2,4,8", "--min-concurrency", "4",
                                       "--max-model-len", "32K", "--gpu", "h100", "--format", "json"]))
    return out
