"""Measuring the budget terms the planner predicts, the way the engine incurs them (vllm/v1/worker/
gpu_worker.py determine_available_memory, gpu_model_runner.py profile_run / _dummy_sampler_run):

- the profile run: one forward over max_num_batched_tokens tokens split into min(max_num_seqs, tokens)
  sequences, no KV cache, then the engine's sampler pass over their last tokens' logits; its peak is torch's
  max_memory_allocated above the weights; what verify's own run leaves allocated (persistent) is recorded, not
  the engine's (vLLM 0.34 keeps its Triton sampler rows and fused-MoE workspace, which verify frees or lacks, and
  not verify's scratch): 0.34's measured sizing takes the engine's part as predicted (gpu/verify_run.py);
- memory outside torch's allocator after it: cudaMemGetInfo's used memory less torch's reserved pool;
- the decode CUDA graphs: captured at every engine capture size over a minimal cache (one block per pool, as
  vLLM profiles them before the KV cache exists), largest first into one shared pool; their cost is the
  used-memory delta once torch's cache of the warm-up runs is emptied."""

from __future__ import annotations

import time

import torch

from .caches import caches_from_layout
from .generate import decode, prefill
from ..verify.terms import vllm_method_estimate
from .timing import capture


def used_bytes() -> int:
    free, total = torch.cuda.mem_get_info()
    return int(total - free)


GUMBEL_ROWS = 64  # rows per chunk: the engine's Triton kernel draws the noise in registers; chunks keep ours small


WARMUP_TOP_K = 50  # SamplingParams.for_sampler_warmup()'s top_k (vLLM 0.33 sampling_params.py:1477-1493)


def sampler_pass(logits, kind: str = "gumbel", temperature: float = 0.5, top_p: float = 0.9):
    """The engine's dummy sampler over `logits` [requests, vocab], holding what it holds (engines/vllm_profile.py
    dummy_sampler says which): "gumbel" keeps the logits in their dtype and takes argmax(logits / T + Gumbel
    noise) a few rows at a time; "v2-flashinfer" / "v2-triton" (Model Runner V2 from vLLM 0.33) add the warmup
    parameters' pass (warmup_pass); every V1 kind ("flashinfer", "sort", "triton") runs here as V1's float32
    temperature, top-p by sorting, softmax and an exponential race (verify plans with vLLM 0.32 by default, whose
    runner is V2 for every model on CUDA)."""
    if kind == "gumbel":
        out = torch.empty(logits.shape[0], dtype=torch.int64, device=logits.device)
        for i in range(0, logits.shape[0], GUMBEL_ROWS):
            rows = logits[i:i + GUMBEL_ROWS].float() / temperature
            noise = torch.empty_like(rows).exponential_().log_().neg_()
            out[i:i + GUMBEL_ROWS] = rows.add_(noise).argmax(dim=-1)
        return out
    if kind in ("v2-flashinfer", "v2-triton"):
        sampler_pass(logits, "gumbel", temperature)  # the default pass, freed before the next
        return warmup_pass(logits, kind == "v2-flashinfer", temperature)
    logits = logits.float() / temperature
    ordered, order = logits.sort(dim=-1)
    cumulative = ordered.softmax(dim=-1).cumsum(dim=-1)
    ordered = ordered.masked_fill(cumulative <= 1 - top_p, float("-inf"))
    probs = torch.empty_like(logits).scatter_(-1, order, ordered).softmax(dim=-1)
    return probs.div_(torch.empty_like(probs).exponential_()).argmax(dim=-1)


def warmup_pass(logits, masked_copy: bool, temperature: float = 0.9):
    """V2's pass with the warmup parameters, holding what vLLM 0.33 holds (vllm_profile.sampler_pass_bytes): the
    logits, a float32 copy with temperature applied in place, then the top-k either masked into a new tensor whose
    softmax is a third ("v2-flashinfer": FlashInfer's top_k_mask_logits and softmax) or masked in place with the
    Triton kernel's cached float32 rows beside it ("v2-triton"), and a Gumbel draw a few rows at a time."""
    processed = logits.float().div_(temperature)
    kth = torch.cat([processed[i:i + GUMBEL_ROWS].topk(WARMUP_TOP_K, dim=-1).values[:, -1:]
                     for i in range(0, processed.shape[0], GUMBEL_ROWS)])  # by rows: torch.topk's workspace
    if masked_copy:
        probs = processed.masked_fill(processed < kth, float("-inf")).softmax(dim=-1)
        return sampler_pass(probs.log_(), "gumbel", 1.0)
    rows = triton_rows(logits)
    for i in range(0, processed.shape[0], GUMBEL_ROWS):  # in place, a few rows' boolean mask at a time
        chunk = processed[i:i + GUMBEL_ROWS]
        chunk.masked_fill_(chunk < kth[i:i + GUMBEL_ROWS], float("-inf"))
    sampled = sampler_pass(processed, "gumbel", 1.0)
    del rows
    return sampled


def triton_rows(logits):
    """The float32 vocabulary rows vLLM's Triton top-k / top-p kernel caches: min(next power of two of min(SMs,
    requests), SMs) (v1/sample/ops/topk_topp_triton.py:1688-1696 in 0.33)."""
    requests, vocab = logits.shape
    sms = torch.cuda.get_device_properties(logits.device).multi_processor_count if logits.is_cuda else 1
    return torch.empty(min(1 << (min(sms, requests) - 1).bit_length(), sms), vocab, device=logits.device)


def profile_run(model, vocab: int, tokens: int, max_num_seqs: int, sampler: str = "gumbel") -> dict:
    """Peak bytes of the profile forward + sampler above what was allocated before it."""
    seqs = min(max_num_seqs, tokens)
    per_seq = tokens // seqs
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    t0 = time.perf_counter()
    ids = torch.randint(0, vocab, (seqs, per_seq), device="cuda")
    logits = prefill(model, ids)
    sampler_pass(logits, sampler)
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base
    del ids, logits
    torch.cuda.empty_cache()
    # what verify's run left allocated (its own scratch, cuBLAS workspaces in torch's pool): recorded beside the
    # engine's part vLLM 0.34's sizing counts as used (utils/mem_utils.py:333-335 transient = peak - allocated)
    persistent = max(torch.cuda.memory_allocated() - base, 0)
    return {"tokens": seqs * per_seq, "sequences": seqs, "tokens_per_sequence": per_seq, "peak_bytes": int(peak),
            "persistent_bytes": int(persistent),
            "reserved_after_bytes": int(torch.cuda.memory_reserved()), "seconds": time.perf_counter() - t0,
            "attention": "torch SDPA over each sequence's tokens (no KV cache exists yet)", "sampler": sampler}


def non_torch_bytes() -> int:
    torch.cuda.synchronize()
    return used_bytes() - int(torch.cuda.memory_reserved())


def graph_memory(model, layout, sizes: list) -> dict:
    """Used-memory cost of capturing the decode step at every size in `sizes` (one shared graph pool)."""
    saved = model.caches
    model.caches = caches_from_layout(layout, "cuda", pools={g.name: 1 for g in layout.groups})
    for cache in model.caches.values():
        for t in cache.tensors:
            t.zero_()
    biggest = max(sizes)
    paged = [g.name for g in layout.groups if g.kind != "linear"]
    tables = {name: torch.zeros(biggest, 1, dtype=torch.int32, device="cuda") for name in paged}
    positions = torch.zeros(biggest, dtype=torch.int64, device="cuda")
    slots = torch.zeros(biggest, dtype=torch.int64, device="cuda") if len(paged) < len(layout.groups) else None
    tokens = torch.zeros(biggest, dtype=torch.int64, device="cuda")
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    before_used, before_reserved = used_bytes(), int(torch.cuda.memory_reserved())
    t0 = time.perf_counter()
    pool = torch.cuda.graph_pool_handle()
    graphs, samples = [], []
    try:
        for b in sorted(sizes, reverse=True):  # largest first: the smaller graphs reuse its pool
            def step(b=b):
                return decode(model, tokens[:b], positions[:b], {n: t[:b] for n, t in tables.items()},
                              None if slots is None else slots[:b]).argmax(-1)
            used_before = used_bytes() if len(graphs) < 2 else 0
            graphs.append(capture(step, pool))
            if len(graphs) <= 2:  # vLLM's estimator samples the two largest captures (vllm_method_estimate)
                torch.cuda.synchronize()
                samples.append(used_bytes() - used_before)
        torch.cuda.synchronize()
        torch.cuda.empty_cache()  # the warm-up runs' blocks, not the graphs'
        after_used, after_reserved = used_bytes(), int(torch.cuda.memory_reserved())
        seconds = time.perf_counter() - t0
    finally:
        graphs.clear()
        model.caches = saved
        del tables, positions, slots, tokens
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
    return {"sizes": list(sizes), "bytes": after_used - before_used, "pool_bytes": after_reserved - before_reserved,
            "driver_bytes": (after_used - before_used) - (after_reserved - before_reserved), "seconds": seconds,
            "first_capture_bytes": samples[0], "second_capture_bytes": samples[1] if len(samples) > 1 else None,
            "vllm_method_bytes": vllm_method_estimate(samples, len(sizes))}

