"""The budget terms verify measures instead of holding, set beside what the plan predicts for each; the KV
budget rebuilt from the measured terms (the way vLLM arrives at "Available KV cache memory"); the batch sizes
the engine captures decode graphs for; and the decode / prefill estimates a plan carries. Pure: no torch."""

from __future__ import annotations

from typing import Optional

from ..plan.catalog import speed_profile
from ..plan.prefill import prefill
from ..plan.speed import basis, decode_point
from ..plan.work import decode_work

# term -> (what it is, how verify measures it)
TERMS = {
    "weights": ("weights of this rank", "torch.cuda.memory_allocated() delta over the dummy weights"),
    "activation_peak": ("profile-run peak above the weights",
                        "torch.cuda.max_memory_allocated() over a prefill of max_num_batched_tokens tokens "
                        "(min(max_num_seqs, tokens) sequences) and a sampler pass over max_num_seqs rows"),
    "non_torch": ("growth of memory outside torch's allocator once the CUDA context exists (cuBLAS, kernel "
                  "modules)", "NVML used-memory growth less torch.cuda.memory_reserved() growth, from after the "
                              "CUDA context (and NCCL) to after the profile run, as vLLM V1 counts it"),
    "cuda_graphs": ("decode CUDA graphs at the engine's capture sizes",
                    "cudaMemGetInfo used-memory delta over capturing them (torch's graph pool + driver objects)"),
    "nccl": ("NCCL communicator and buffers", "NVML used-memory delta over init_process_group and the first "
                                              "collectives (real TP group only)"),
    "runner_state": ("the model runner's persistent buffers (V2's penalty counts and sampler rows, structured-output "
                     "bitmask, embeddings buffer, block tables, an n-gram drafter's token history; vLLM 0.27+)",
                      "not measured: a tensor of that exact size, taken as predicted"),
}


BUDGET_NAMES = {"weights": "weights", "profile_peak": "activation_peak", "non_torch": "non_torch",
                "cuda_graphs": "cuda_graphs", "nccl": "nccl", "runner_state": "runner_state"}  # engine's -> verify's


def predicted_terms(plan) -> dict:
    """term -> bytes the plan's budget subtracts for it (the engine's own terms, kvplan/engines/)."""
    b = plan.budget
    terms = {BUDGET_NAMES[t.name]: t.bytes for t in b.terms if t.name in BUDGET_NAMES}
    if not terms:  # a budget without its term list: the stable field names
        terms = {"weights": b.weights_bytes_per_gpu, "activation_peak": b.activation_bytes,
                 "non_torch": b.cuda_context_bytes, "cuda_graphs": b.cuda_graph_bytes, "nccl": b.nccl_bytes}
    return {name: terms.get(name) or 0 for name in TERMS}


def subtracted_terms(plan) -> tuple:
    """The terms the engine takes out of the KV budget: weights, the profile peak and non-torch memory always;
    CUDA graphs, NCCL and the sampler's penalty counts only where that engine release counts them there
    (kvplan/engines/vllm_budget.py: V1 starts NCCL before its memory baseline, so vLLM 0.32 subtracts no NCCL
    term)."""
    p = predicted_terms(plan)
    return tuple(name for name in TERMS if name in ("weights", "activation_peak", "non_torch") or p[name])


def measured_kv_budget(usable: int, measured: dict, subtracted=tuple(TERMS)) -> int:
    """usable (memory x gpu_memory_utilization) less the measured terms the engine subtracts."""
    return usable - sum(measured.get(name) or 0 for name in subtracted)


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


def decode_batches(served: int, max_num_seqs: int) -> tuple:
    """The decode batches verify times: 1 and the most sequences the engine runs in one step, which is what the
    pools admit (the boundary's served) but never above max_num_seqs (vLLM's scheduler admits no more: an
    attention-free model's state pool, one block a request, holds thousands more at vLLM's defaults)."""
    return tuple(dict.fromkeys((1, min(served, max_num_seqs))))


def decode_prediction(spec, plan, precision, batch: int, gpu, bandwidth: float, collectives: bool = True) -> dict:
    """What the planner predicts for one decode step of `batch` sequences of the plan's context on `gpu`: the
    calibrated engine estimate (plan/speed.py, the same function the plan's decode points come from, here at
    the batch verify measured) with its all-reduce term, and the roofline beside it. `collectives=False` (one
    simulated rank of a TP group, which runs no all-reduce) compares like with like: `estimate_ms` leaves the
    all-reduce term out and `engine_estimate_ms` keeps the plan's figure."""
    profile = speed_profile(gpu)
    work = decode_work(spec, plan.tp, precision, plan.context, batch)
    point = decode_point(spec, plan.tp, precision, plan.context, batch, profile, bandwidth, True)
    b = basis(work, bandwidth, profile.compute)
    tp_ms = b.allreduce_calls * profile.fit.allreduce_us * 1e-3 + b.allreduce_bytes_ms
    # the estimate term by term (plan/speed.py engine_ms), so a verdict can name the one a measurement disputes
    terms = {"roofline_ms": b.roofline_ms, "fixed_ms": b.layer_units * profile.fit.layer_us * 1e-3,
             "allreduce_ms": tp_ms if collectives else 0.0, "compute_ms": b.peak_ms / profile.fit.gemm_efficiency,
             "layers": b.layer_units, "layer_us": profile.fit.layer_us}
    return {"batch": batch, "estimate_ms": point.itl_ms - (0.0 if collectives else tp_ms), "estimate_terms": terms,
            "engine_estimate_ms": point.itl_ms, "roofline_ms": point.roofline_itl_ms,
            "estimate_includes_allreduce": collectives, "tp_term_ms": tp_ms, "tp_term_per_layer_us": tp_ms / max(1, b.layer_units) * 1e3,
            "layer_us": profile.fit.layer_us, "estimate_source": f"plan/speed.py engine estimate ({profile.gpu})"}


def prefill_prediction(spec, plan, precision, input_len: int, chunk: int, gpu, bandwidth: float) -> float:
    """The planner's TTFT estimate (plan/prefill.py) of one `input_len`-token prompt in chunks of `chunk`."""
    return prefill(spec, plan.tp, precision, input_len, chunk, speed_profile(gpu), bandwidth).ttft_ms
