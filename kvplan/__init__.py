"""kvplan: how many requests of what length fit on my GPUs, at which KV precision and TP degree, and how fast
decode will be. The planning core (model, plan) imports neither torch nor the Hub client."""

__version__ = "0.1.0"
