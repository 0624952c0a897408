"""Timing the forward pass over the allocated pools: the decode step of `batch` admitted sequences of `context`
tokens (the whole model, LM head and greedy pick included) captured in a CUDA graph and replayed (launched eagerly
under --enforce-eager or cudagraph_mode NONE, as vLLM then runs it); and the prefill of one prompt (TTFT), eager,
as its own allocator blocks."""

from __future__ import annotations

from typing import Optional

import torch

from ..model.kinds import blocks_for
from ..verify.allocator import kernel_block_table
from .generate import decode, prefill
from .timing import capture, time_replays


def _inputs(layout, allocator, batch: int, context: int) -> tuple:
    """(block tables per paged group [batch, W] int32, state slots [batch] or None) of sequences 0..batch-1."""
    tables, slots = {}, None
    for group in layout.groups:
        ids = [allocator.tables[s][group.name] for s in range(batch)]
        if group.kind == "linear":
            slots = torch.tensor([row[0] for row in ids], dtype=torch.int64, device="cuda")
            continue
        rows = [kernel_block_table(group, row, context) for row in ids]
        tables[group.name] = torch.tensor(rows, dtype=torch.int32, device="cuda")
    return tables, slots


def step_method(eager: Optional[str]) -> str:
    """How a decode step was timed: `eager` names what turned the graphs off (vllm_budget.graphs_off_cause), None
    for a graph."""
    how = f"eager launches ({eager}, as vLLM runs it)" if eager else "CUDA graph replay"
    return f"{how}, CUDA events, median"


def time_decode(model, layout, allocator, batch: int, context: int, reps: int = 20,
                eager: Optional[str] = None) -> dict:
    """Milliseconds of one decode step of `batch` sequences whose new token is token `context` - 1; `eager`: what
    turned the graphs off (vLLM's --enforce-eager, or cudagraph_mode NONE), each step launched kernel by kernel;
    None: the step captured in a graph and replayed."""
    tables, slots = _inputs(layout, allocator, batch, context)
    tokens = torch.randint(0, model.arch.vocab, (batch,), device="cuda")
    positions = torch.full((batch,), context - 1, dtype=torch.int64, device="cuda")

    def step():
        return decode(model, tokens, positions, tables, slots).argmax(-1)

    graph = None if eager else capture(step)[0]
    try:
        timing = time_replays(step if graph is None else graph.replay, reps=reps)
    finally:
        del graph
        torch.cuda.empty_cache()
    return {"batch": batch, "measured_ms": timing["ms"], "measured_ms_min": timing["ms_min"], "reps": timing["reps"],
            "tokens_per_s": batch / (timing["ms"] / 1e3), "eager": bool(eager), "method": step_method(eager)}


def time_prefill(model, layout, allocator, input_len: int, reps: int = 3) -> dict:
    """Milliseconds from a prompt of `input_len` tokens to its first token's logits (one sequence: sequence 0's
    blocks and state slot; eager, SDPA over the prompt, K/V stored in the paged cache)."""
    tables, slots = {}, None
    for group in layout.groups:
        blocks = allocator.tables[0][group.name]
        if group.kind == "linear":
            slots = torch.tensor([blocks[0]], dtype=torch.int64, device="cuda")
        else:
            if group.window is None:  # the prompt fills the first of the sequence's blocks
                blocks = blocks[:blocks_for(input_len, group.block_tokens)]
            tables[group.name] = [kernel_block_table(group, blocks, input_len)]
    ids = torch.randint(0, model.arch.vocab, (1, input_len), device="cuda")
    timing = time_replays(lambda: prefill(model, ids, tables, slots).argmax(-1), reps=reps, warmup=1)
    torch.cuda.empty_cache()
    return {"input_len": input_len, "ttft_ms": timing["ms"], "reps": reps,
            "method": "eager prefill (SDPA, windowed layers in query blocks of their window; linear-attention layers "
                      "chunked in float32 torch; paged K/V writes; LM head of the last token), CUDA events, median"}
