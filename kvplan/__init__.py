"""kvplan: how many requests of what length fit on my GPUs, at which KV precision and TP degree, and how fast
decode will be, in vLLM's terms.

    import kvplan
    plans = kvplan.estimate("meta-llama/Llama-3.1-8B-Instruct", gpu="L4", max_model_len=[8192, "32K"])
    plans[0].max_concurrency

`estimate`, `check`, `models`, `gpus` and `find_gpu` take vLLM's keyword names (kvplan/api.py; `kvplan.api.verify`
runs verify on the local GPU and returns a `Verification`: `kvplan.verify` is the package of its pure parts);
MODEL is a Hub id, a config.json, a model folder or a config.json's object as a dict; `check_deployments` takes a
deployments file or its content as dicts; `emit(result, "table")` renders what `estimate` / `check` / `verify`
returned as the command does, and `result.to_dict()` is its `--format json` document. Importing kvplan loads
neither typer, rich, torch nor the Hub client."""

__version__ = "0.1.0"

from .api import (Checks, Plans, Verification, check, check_deployments, emit, estimate, find_gpu, gpus,  # noqa: E402
                  models)
from .errors import FieldError, KvplanError  # noqa: E402

__all__ = ["estimate", "check", "check_deployments", "emit", "models", "gpus", "find_gpu", "Plans", "Checks",
           "Verification", "FieldError", "KvplanError", "__version__"]
