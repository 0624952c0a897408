"""The budget terms verify measures instead of holding, set beside what the plan predicts for each; the KV
budget rebuilt from the measured terms (the way vLLM arrives at "Available KV cache memory"); the batch sizes
the engine captures decode graphs for; and the decode / prefill estimates a plan carries. Pure: no torch."""

from __future__ import annotations

from typing import Optional

from ..plan.speed import decode_roofline

# term -> (what it is, how verify measures it)
TERMS = {
    "weights": ("weights of this rank", "torch.cuda.memory_allocated() delta over the dummy weights"),
    "activation_peak": ("profile-run peak above the weights",
                        "torch.cuda.max_memory_allocated() over a prefill of max_num_batched_tokens tokens "
                        "(min(max_num_seqs, tokens) sequences) and a sampler pass over max_num_seqs rows"),
    "non_torch": ("memory outside torch's allocator (CUDA context, cuBLAS, kernel modules)",
                  "NVML used - torch.cuda.memory_reserved() after the profile run"),
    "cuda_graphs": ("decode CUDA graphs at the engine's capture sizes",
                    "cudaMemGetInfo used-memory delta over capturing them (torch's graph pool + driver objects)"),
    "nccl": ("NCCL communicator and buffers", "NVML used-memory delta over init_process_group and the first "
                                              "collectives (real TP group only)"),
}


def predicted_terms(plan) -> dict:
    """term -> bytes the plan's budget reserves for it (the names the budget gives them today)."""
    b = plan.budget

    def first(*names):
        return next((getattr(b, n) for n in names if getattr(b, n, None) is not None), None)

    return {"weights": first("weights_bytes_per_gpu"),
            "activation_peak": first("profile_peak_bytes", "activation_bytes"),
            "non_torch": first("non_torch_bytes", "cuda_context_bytes"),
            "cuda_graphs": first("cuda_graph_bytes"),
            "nccl": first("nccl_bytes") or 0}


def measured_kv_budget(usable: int, measured: dict) -> int:
    """usable (memory x gpu_memory_utilization) less every measured term."""
    return usable - sum(v for v in measured.values() if v)


def term_rows(predicted: dict, measured: dict) -> list:
    """One row per term: predicted, measured, their difference and relative error."""
    rows = []
    for name, (what, how) in TERMS.items():
        p, m = predicted.get(name), measured.get(name)
        rows.append({"term": name, "what": what, "how": how, "predicted_bytes": p, "measured_bytes": m,
                     "difference_bytes": None if p is None or m is None else m - p,
                     "error": None if not p or m is None else (m - p) / p})
    return rows


def responsible_term(rows: list) -> Optional[dict]:
    """The term whose measured value is furthest from its prediction (the one to fix first)."""
    known = [r for r in rows if r["difference_bytes"] is not None]
    return max(known, key=lambda r: abs(r["difference_bytes"])) if known else None


def capture_sizes(max_num_seqs: int, max_num_batched_tokens: int) -> list:
    """The decode batch sizes vLLM captures CUDA graphs for by default (vllm/config/vllm.py,
    VllmConfig._set_cudagraph_sizes): 1, 2, 4, multiples of 8 below 256, multiples of 16 from 256, up to
    min(2 x max_num_seqs, 512, max_num_batched_tokens)."""
    top = min(2 * max_num_seqs, 512, max_num_batched_tokens)
    sizes = [s for s in (1, 2, 4) if s <= top] + list(range(8, min(top + 1, 256), 8)) + list(range(256, top + 1, 16))
    return sorted(set(sizes))


def decode_prediction(spec, plan, precision, batch: int, bandwidth: float) -> dict:
    """What the plan predicts for one decode step at `batch`: the calibrated engine estimate where the plan
    carries one for this batch (plan.decode.points), and the roofline (bytes / bandwidth) always."""
    roofline = decode_roofline(spec, plan.tp, precision, plan.context, batch, bandwidth).ms_per_step_at_max
    estimate, tp_term = None, None
    for point in getattr(plan.decode, "points", None) or ():
        get = point.get if isinstance(point, dict) else (lambda k, p=point: getattr(p, k, None))
        if get("batch") == batch:
            estimate = get("itl_ms")
            tp_term = get("tp_ms")
    return {"batch": batch, "estimate_ms": estimate, "roofline_ms": roofline, "tp_term_ms": tp_term,
            "estimate_source": "plan.decode.points (calibrated engine estimate)" if estimate is not None else None}


def prefill_prediction(plan) -> tuple:
    """(input_len, ttft_ms) of the plan's prefill estimate, or (None, None) when it carries none."""
    prefill = getattr(plan, "prefill", None)
    if prefill is None:
        return None, None
    get = prefill.get if isinstance(prefill, dict) else (lambda k: getattr(prefill, k, None))
    return get("input_len"), get("ttft_ms")
