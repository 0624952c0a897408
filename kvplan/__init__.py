"""kvplan: how many requests of what length fit on my GPUs, at which KV precision and TP degree, and how fast
decode will be, in vLLM's terms.

    import kvplan
    plans = kvplan.estimate("meta-llama/Llama-3.1-8B-Instruct", gpu="L4", max_model_len=[8192, "32K"])
    plans[0].max_concurrency

`estimate`, `check`, `models`, `gpus` and `find_gpu` take vLLM's keyword names (kvplan/api.py; `kvplan.api.verify`
runs verify on the local GPU: `kvplan.verify` is the package of its pure parts). Importing kvplan loads neither
typer, rich, torch nor the Hub client."""

__version__ = "0.1.0"

from .api import check, estimate, find_gpu, gpus, models  # noqa: E402
from .errors import FieldError, KvplanError  # noqa: E402

__all__ = ["estimate", "check", "models", "gpus", "find_gpu", "FieldError", "KvplanError", "__version__"]
