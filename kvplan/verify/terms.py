"""The budget terms verify measures instead of holding, set beside what the plan predicts for each; the KV
budget rebuilt from the measured terms the way the plan's vLLM release arrives at "Available KV cache memory"
(requested less the terms it subtracts up to 0.33; 0.34's extensible KV cache sized from the memory measured after
warmup: measured_extensible_budget); the batch sizes the engine captures decode graphs for; and the decode /
prefill estimates a plan carries. Pure: no torch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..engines.vllm_versions import parse_version
from ..plan.budget import NCCL_BYTES
from ..plan.catalog import speed_profile
from ..plan.plan import Prompt, default_prompt
from ..plan.prefill import prefill
from ..plan.speed import basis, decode_point
from ..plan.work import decode_work

# term -> (what it is, how verify measures it)
TERMS = {
    "weights": ("weights of this rank", "torch.cuda.memory_allocated() delta over the dummy weights"),
    "activation_peak": ("profile-run peak above the weights",
                        "torch.cuda.max_memory_allocated() over a prefill of max_num_batched_tokens tokens "
                        "(min(max_num_seqs, tokens) sequences) and a sampler pass over max_num_seqs rows"),
    "non_torch": ("growth of memory outside torch's allocator once the CUDA context exists (cuBLAS's handles "
                  "before vLLM 0.33, kernel modules)",
                  "NVML used-memory growth less torch.cuda.memory_reserved() growth, from the engine's init snapshot "
                  "(after the CUDA context, NCCL and, from vLLM 0.33, cuBLAS's handles) to after the profile run, as "
                  "vLLM V1 counts it"),
    "cuda_graphs": ("decode CUDA graphs at the engine's capture sizes",
                    "cudaMemGetInfo used-memory delta over capturing them (torch's graph pool + driver objects)"),
    "nccl": ("NCCL communicator and buffers", "NVML used-memory delta over init_process_group and the first "
                                              "collectives (real TP group only)"),
    "runner_state": ("the model runner's persistent buffers (V2's penalty counts and sampler rows, structured-output "
                     "bitmask, embeddings buffer, block tables, an n-gram drafter's token history, the speculator's "
                     "buffers; vLLM 0.27+)",
                      "not measured: a tensor of that exact size, taken as predicted"),
}


# the rows only vLLM 0.34's extensible sizing has (vllm_budget.extensible_budget): what it keeps free, not used
EXTENSIBLE_TERMS = {
    "baseline": ("what the device holds at the engine's init snapshot: the CUDA context, cuBLAS / cuBLASLt handles "
                 "and workspaces and, at tp > 1, NCCL",
                 "cudaMemGetInfo used memory once the CUDA context (and a real group's NCCL) exists and a matmul and "
                 "a biased linear have made cuBLAS's handles, as the engine's worker does; one simulated rank of a "
                 "TP group adds NCCL's 1.75 GiB"),
    "margin": ("headroom kept free beside the transient peak: max(1 GiB (3 on ROCm), 0.75 x transient)",
               "from the measured transient peak (profile peak less what the profile left allocated)"),
}

BUDGET_NAMES = {"weights": "weights", "profile_peak": "activation_peak", "non_torch": "non_torch",
                "cuda_graphs": "cuda_graphs", "nccl": "nccl", "runner_state": "runner_state"}  # engine's -> verify's


def predicted_terms(plan) -> dict:
    """term -> bytes the plan's budget counts for it (the engine's own terms, kvplan/engines/). Every release's
    budget names its terms from memory, weights, profile_peak, non_torch, runner_state (0.27+, where counted),
    cuda_graphs and nccl; 0.34's extensible budget adds cuda_context and margin, which give the baseline and
    margin rows (None where an explicit gpu_memory_utilization binds instead: the budget then keeps neither)."""
    b = plan.budget
    terms = {BUDGET_NAMES[t.name]: t.bytes for t in b.terms if t.name in BUDGET_NAMES}
    if not terms:  # a budget without its term list: the stable field names
        terms = {"weights": b.weights_bytes_per_gpu, "activation_peak": b.activation_bytes,
                 "non_torch": b.cuda_context_bytes, "cuda_graphs": b.cuda_graph_bytes, "nccl": b.nccl_bytes}
    predicted = {name: terms.get(name) or 0 for name in TERMS}
    if plan_sized_after_warmup(plan):
        kept = {t.name: t.bytes for t in b.terms}
        device_binds = bool(kept.get("margin"))
        predicted["baseline"] = kept.get("cuda_context", 0) + kept.get("nccl", 0) if device_binds else None
        predicted["margin"] = kept.get("margin") if device_binds else None
    return predicted


def plan_sized_after_warmup(plan) -> bool:
    """Whether the plan's engine sizes the cache from memory measured after warmup (vLLM 0.34's extensible KV
    cache: plan.budget.MeasuredSizing) rather than subtracting its terms from the requested memory (the engine's
    own rule, from its release and flags: engines/vllm_budget.py sized_after_warmup)."""
    return getattr(plan.budget, "measured", None) is not None


def predicted_kv_init(plan) -> int:
    """The part of the plan's runner_state its engine builds with the cache, after the profile run's own figure
    (vLLM 0.34: V2's block tables, engines/vllm_budget.py extensible_budget's kv_init); 0 for a plan sized otherwise.
    Taken from the prediction, as runner_state is."""
    measured = getattr(plan.budget, "measured", None)
    return measured.kv_init_bytes if measured is not None else 0


def predicted_persistent(plan) -> int:
    """The part of the profile peak the plan's engine keeps allocated after the profile run (vLLM 0.34: the
    fused-MoE workspace and the Triton sampler's cached rows, engines/vllm_profile.py persistent_after_profile),
    which its measured sizing counts as used rather than transient; 0 for a plan sized otherwise."""
    measured = getattr(plan.budget, "measured", None)
    return measured.persistent_bytes if measured is not None else 0


CUBLAS_BEFORE_SNAPSHOT_SINCE = (0, 33)  # 0.33.0 v1/worker/gpu_worker.py:527-528, 0.34.0 :534-535 (none in 0.32.0)


def cublas_before_snapshot(version: str) -> bool:
    """Whether the engine's worker creates cuBLAS / cuBLASLt handles and workspaces (torch.mm and a biased
    F.linear on a 16 x 16 tensor) before its init memory snapshot, so that they count in its baseline rather than
    its non-torch growth: vLLM 0.33 on. Verify does the same warm-up before its own snapshot for those releases."""
    return parse_version(version) >= CUBLAS_BEFORE_SNAPSHOT_SINCE


def subtracted_terms(plan) -> tuple:
    """The terms the engine takes out of the KV budget: weights, the profile peak and non-torch memory always;
    CUDA graphs, NCCL and the sampler's penalty counts only where that engine release counts them there
    (kvplan/engines/vllm_budget.py: V1 starts NCCL before its memory baseline, so vLLM 0.32 subtracts no NCCL
    term)."""
    p = predicted_terms(plan)
    return tuple(name for name in TERMS if name in ("weights", "activation_peak", "non_torch") or p[name])


def extensible_subtracted(sizing: ExtensibleSizing) -> tuple:
    """The terms 0.34's measured figure takes out of the memory (device binding) or the requested memory: the
    resident terms and the whole profile peak (persistent + transient), and where the device binds its baseline and
    margin (NCCL sits in the baseline)."""
    resident = ("weights", "activation_peak", "non_torch", "runner_state", "cuda_graphs")
    return resident + (("baseline", "margin") if sizing.device_binds else ())


def measured_kv_budget(usable: int, measured: dict, subtracted=tuple(TERMS), predicted: Optional[dict] = None) -> int:
    """usable (memory x gpu_memory_utilization) less the measured terms the engine subtracts; a term not measured
    (None: NCCL on one simulated rank of a TP group) counts at its prediction, given `predicted`."""
    return usable - sum(_measured_or_predicted(name, measured, predicted) for name in subtracted)


def _measured_or_predicted(name: str, measured: dict, predicted: Optional[dict]) -> int:
    value = measured.get(name)
    return value if value is not None else (predicted or {}).get(name) or 0


@dataclass(frozen=True)
class ExtensibleSizing:
    """vLLM 0.34's sizing of the cache from measured memory, part by part (measured_extensible_budget)."""

    available: int  # the bytes the cache may commit (before its 2 MiB granules)
    memory: int  # the device's memory (cudaMemGetInfo total)
    requested: int  # ceil(memory x gpu_memory_utilization)
    used: int  # resident but the cache: weights + non-torch + runner state + graphs + what the profile left
    transient: int  # profile peak less what the engine leaves allocated after it: kept free in full
    margin: int  # max(floor, 0.75 x transient), kept free where the device binds
    baseline: int  # the device's used memory at the init snapshot
    device_binds: bool  # memory - baseline - margin binds (always at utilisation 1.0), not the requested memory
    profiled: int  # the profile run's own figure, checked before warmup (MeasuredSizing.profiled_bytes)
    persistent: int = 0  # the part of the profile peak counted as used (verify: the engine's, as predicted)


GiB = 2**30
MARGIN_FLOOR = {False: 1 * GiB, True: 3 * GiB}  # v1/worker/extensible_kv_cache.py:64 KV_CACHE_MARGIN_FLOOR_BYTES (0.34)
MARGIN_FRACTION = 0.75  # :65 KV_CACHE_MARGIN_FRACTION
USED_TERMS = ("weights", "non_torch", "runner_state", "cuda_graphs")  # resident after warmup, beside the persistent


def measured_extensible_budget(memory: int, requested: int, measured: dict, baseline: int, persistent: int,
                               rocm: bool = False, reserve_growth: int = 0, kv_init: int = 0) -> ExtensibleSizing:
    """vLLM 0.34's measure_kv_cache_bytes (v1/worker/extensible_kv_cache.py:592-618) on verify's measured terms:

        used      = weights + non-torch + runner state + CUDA graphs + persistent   (:612 non_kv_used)
        transient = profile peak - persistent          (utils/mem_utils.py:333-335 transient_peak_headroom)
        margin    = max(1 GiB (3 on ROCm), int(0.75 x transient))                  (:614, :64-65)
        available = min(requested - used, memory - baseline - used - margin)       (:613 headroom, :615)
                    - max(transient, torch's reservation growth)                   (:616)

    `memory`: the device's (cudaMemGetInfo total); `requested`: ceil(memory x gpu_memory_utilization) (0.34
    gpu_worker.py:1236 requested_memory); `baseline`: its used memory at the init snapshot (memory less
    init_free_memory, gpu_worker.py:1235); `persistent`: the part of the profile peak the engine keeps allocated
    after it (verify passes the engine's, as predicted: predicted_persistent); `reserve_growth`: torch's reservation
    growth over a sizing step, taken as no larger than the transient where not measured. `profiled`: requested less
    the profile's consumption, no graphs (gpu/model_runner.py:1121-1128), nor the runner state built with the cache
    after it (`kv_init`: predicted_kv_init). The result keeps this rank's own figure: a
    real TP group's minimum is taken after it (verify_run.py). used is the sum of the measured terms, not vLLM's
    free-memory drop since the snapshot (:612): verify's process holds what the engine's does not (the minimal caches
    it captures graphs over, its dequant scratch) and frees its graphs before sizing."""
    transient = max((measured.get("activation_peak") or 0) - persistent, 0)
    used = sum(measured.get(name) or 0 for name in USED_TERMS) + persistent
    margin = max(MARGIN_FLOOR[bool(rocm)], int(transient * MARGIN_FRACTION))
    device = memory - baseline - used - margin
    available = max(min(requested - used, device) - max(transient, reserve_growth), 0)
    profiled = requested - used + kv_init + (measured.get("cuda_graphs") or 0) - transient
    return ExtensibleSizing(available, memory, requested, used, transient, margin, baseline, device < requested - used,
                            profiled, persistent)


def extensible_baseline(snapshot_used: int, measured_nccl: Optional[int], tp: int) -> int:
    """The init snapshot's used memory as the engine sees it: a real TP group's NCCL exists before it (measured
    inside it); one simulated rank of a group (tp > 1) starts no NCCL, so NCCL's constant (plan/budget.py
    NCCL_BYTES, the one engines/vllm_budget.py extensible_budget keeps) stands in, whether or not the plan's own
    budget kept it (an explicit gpu_memory_utilization zeroes its baseline terms)."""
    return snapshot_used + (NCCL_BYTES if measured_nccl is None and tp > 1 else 0)


def term_rows(predicted: dict, measured: dict) -> list:
    """One row per term: predicted, measured, their difference and relative error (0.34's baseline and margin
    where `predicted` names them)."""
    rows = []
    extra = {name: row for name, row in EXTENSIBLE_TERMS.items() if name in predicted}
    for name, (what, how) in {**TERMS, **extra}.items():
        p, m = predicted.get(name), measured.get(name)
        rows.append({"term": name, "what": what, "how": how, "predicted_bytes": p, "measured_bytes": m,
                     "difference_bytes": None if p is None or m is None else m - p,
                     "error": None if not p or m is None else (m - p) / p})
    return rows


def responsible_term(rows: list) -> Optional[dict]:
    """The term whose measured value is furthest from its prediction (the one to fix first)."""
    known = [r for r in rows if r["difference_bytes"] is not None]
    return max(known, key=lambda r: abs(r["difference_bytes"])) if known else None


def capture_sizes(version: str, max_num_seqs: int, max_num_batched_tokens: int, sm100: bool = False,
                  architecture: str = "", max_capture_size: Optional[int] = None,
                  sizes: Optional[tuple] = None) -> list:
    """The decode batch sizes vLLM `version` captures FULL CUDA graphs for (engines/vllm_graphs.py decode_sizes: by
    default 1, 2, 4, multiples of 8 below 256, multiples of 16 from 256, within min(2 x max_num_seqs, 512,
    max_num_batched_tokens) and at most max_num_seqs sequences; gpt-oss's config hook raises the 512 to 1024), under
    --max-cudagraph-capture-size (`max_capture_size`) and --cudagraph-capture-sizes (`sizes`) where given."""
    from ..engines.vllm_graphs import decode_sizes

    return decode_sizes(parse_version(version), max_num_seqs, max_num_batched_tokens, sm100,
                        max_capture_size=max_capture_size, capture_sizes=sizes, architecture=architecture)


def largest_graph(version: str, max_num_seqs: int, max_num_batched_tokens: int, sm100: bool = False,
                  architecture: str = "", max_capture_size: Optional[int] = None, sizes: Optional[tuple] = None) -> int:
    """The most tokens any graph vLLM `version` captures holds, PIECEWISE or FULL (engines/vllm_graphs.py
    graph_counts, the same arguments as capture_sizes): a decode step of more runs without a graph (V1
    v1/cudagraph_dispatcher.py 0.32.0:270-279, num_tokens above max_cudagraph_capture_size; V2
    v1/worker/gpu/cudagraph_utils.py 0.32.0:518-548, no captured candidate)."""
    from ..engines.vllm_graphs import graph_counts

    counts = graph_counts(parse_version(version), max_num_seqs, max_num_batched_tokens, sm100=sm100,
                          max_capture_size=max_capture_size, capture_sizes=sizes, architecture=architecture)
    return max(counts.piecewise_largest, counts.full_largest)


MIN_PER_GRAPH = 1 << 20  # vLLM's floor for one graph's driver overhead (gpu_model_runner.py 0.32.0:6417-6420)


def vllm_method_estimate(samples: list, graphs: int) -> int:
    """What vLLM's profiler would charge for these captures (v1/worker/gpu_model_runner.py 0.32.0:6394-6423
    profile_cudagraph_memory): the largest graph's used-memory growth, plus every other graph at the second
    largest's growth (at least 1 MiB each). It extrapolates from two samples; `bytes` is what all of them hold."""
    per_graph = max(samples[1] if len(samples) > 1 else 0, MIN_PER_GRAPH)
    return int(samples[0] + (graphs - 1) * per_graph)

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
            "estimate_includes_allreduce": collectives, "tp_term_ms": tp_ms,
            "tp_term_per_layer_us": tp_ms / max(1, b.layer_units) * 1e3,
            "layer_us": profile.fit.layer_us, "estimate_source": f"plan/speed.py engine estimate ({profile.gpu})"}


def prefill_prediction(spec, plan, precision, input_len: int, chunk: int, gpu, bandwidth: float) -> float:
    """The planner's TTFT estimate (plan/prefill.py) of one `input_len`-token prompt in chunks of `chunk`."""
    return prefill(spec, plan.tp, precision, input_len, chunk, speed_profile(gpu), bandwidth).ttft_ms


def ttft_prompt(spec, context: int, chunk: int, version: Optional[str]) -> Prompt:
    """The prompt verify times (TTFT) and estimates: the longest vLLM `version` admits at the max model length
    `context` (plan.default_prompt: one token short from the release that keeps room for an output token), cut to
    one chunk of `chunk` (max_num_batched_tokens) tokens, as verify times one forward pass."""
    prompt = default_prompt(context, spec, version)
    return prompt if prompt.tokens <= chunk else Prompt(chunk, None)
