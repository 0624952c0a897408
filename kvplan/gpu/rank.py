"""One TP rank of `kvplan verify`, step by step: the GPU and its CUDA context, the predicted plan, the dummy
weights, the matmul forms, the profile run, the decode graphs' memory, the KV pools sized from what is really
left, the capacity boundary, decode and prefill timed. Every GPU object hangs off `held` (or the model) so
that the caller can release them all. Collectives (a real TP group) happen in the same order on every rank."""

from __future__ import annotations

import torch

from ..errors import FieldError, KvplanError
from ..engines import EngineFlags
from ..engines.vllm_budget import graphs_off_cause, per_layer_input_buffer
from ..engines.vllm_registry import served_architecture
from ..plan.budget import fixed_budget
from ..plan.plan import plan as make_plan
from ..render.text import size
from ..verify.allocator import probe_boundary
from ..verify.arch import architecture
from ..verify.shards import tower_bytes, weight_bytes
from ..verify.judge import pool_bytes_in_nvml_view
from ..verify.layout import cache_layout
# the plan's half that needs no GPU, worked out before CUDA too (commands/verify.py): kept under these names here
from ..verify.planned import (VERIFY_FLAGS, Options, graph_flags, no_fit_message, plan_engine,  # noqa: F401
                              predicted_plan, resolve_options)
from ..verify.terms import capture_sizes, decode_batches, largest_graph
from .caches import caches_from_layout
from .decode import time_decode, time_prefill
from .gemm import choose_forms, decode_order_stream
from .measure import graph_memory, profile_run
from .model import Runtime, Transformer
from .sparse_mla import fill_keys
from .timing import capture, read_bandwidth, time_replays
from .weights import allocate_weights


def fill_random(t) -> None:
    """Fresh random values (never zeros); 1-byte caches through bf16 in chunks."""
    if t.element_size() > 1:
        t.normal_()
        return
    rows = t.view(t.shape[0], -1)
    step = max(1, (256 * 2**20) // max(1, rows.shape[1] * 2))
    for i in range(0, rows.shape[0], step):
        chunk = rows[i:i + step]
        chunk.copy_(torch.randn(chunk.shape, device=chunk.device, dtype=torch.bfloat16))


def check_fits_gpu(spec, raw, opts: Options, total: int, gpu_name: str) -> None:
    """A rank whose weights alone exceed the GPU: one line naming the TP degree that would fit."""
    arch_bytes = weight_bytes(architecture(raw, spec, opts.tp))
    if arch_bytes <= total:
        return

    def fits(t):
        try:
            return weight_bytes(architecture(raw, spec, t)) < 0.9 * total
        except KvplanError:
            return False

    need = next((t for t in (2, 4, 8, 16, 32, 64) if t > opts.tp and fits(t)), None)
    raise FieldError("tp", f"{opts.tp} leaves {size(arch_bytes)} of weights on each rank, more than this "
                           f"{gpu_name}'s {size(total)}" + (f"; {need} would fit (verify then runs one rank of it "
                                                            f"on this GPU)." if need else "."))


def build(spec, raw, opts: Options, held: dict, progress, comm, total: int, gpu_name: str) -> dict:
    """Weights and model of this rank; the weights term measured. Returns facts for the result."""
    arch = architecture(raw, spec, opts.tp)
    arch_bytes = weight_bytes(arch)
    # multimodal checkpoints: the engine keeps the towers resident; held here as their bytes on a rank, not run
    extra = tower_bytes(spec, opts.tp)
    # Gemma 4's multimodal wrapper allocates a per-layer-input buffer when built (the engine's weights term)
    buffer = per_layer_input_buffer(spec, opts)
    with progress.step(f"allocating and filling this rank's weights ({size(arch_bytes + extra + buffer)})"):
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        weights = held["weights"] = allocate_weights(arch, "cuda")
        if extra:
            held["vision"] = torch.empty(extra, dtype=torch.uint8, device="cuda")
        if buffer:
            held["per_layer_input_buffer"] = torch.zeros(buffer, dtype=torch.uint8, device="cuda")
        torch.cuda.synchronize()
        measured = torch.cuda.memory_allocated() - before
    # the layers load their kernels as they are built: NVRTC compiles on a fresh machine (Qwen3-Next tp 2 on an H200,
    # 50 s; cached after the first run, then about a second)
    with progress.step("building the layers and loading their kernels (compiled once, then cached)"):
        rt = Runtime("cuda", comm)
        held["model"] = Transformer(arch, weights, rt)
        torch.cuda.synchronize()
    return {"arch": arch, "weights_bytes": measured, "arch_bytes": arch_bytes, "vision_held_bytes": extra,
            "per_layer_input_buffer_bytes": buffer}


def measure_terms(spec, opts: Options, held: dict, progress, plan, read_bw: float, nvml, baseline: tuple,
                  gpu=None) -> dict:
    """Matmul forms, the profile run and the graph memory of this rank (`gpu`: the catalog's, whose engine core,
    V0 or V1, decides the graphs: graph_flags)."""
    model = held["model"]
    with progress.step("choosing the skinny matmul form per weight shape (batches 1-8)"):
        gemm = choose_forms(model.rt.mm, held["weights"], model.arch.tied_embeddings, read_bw)
        gemm["decode_order"] = decode_order_stream(model.rt.mm, held["weights"], model.arch.tied_embeddings, read_bw)
    with progress.step(f"profile run: prefill of {opts.max_num_batched_tokens:,} tokens + sampler"):
        profile = profile_run(model, model.arch.vocab, opts.max_num_batched_tokens, opts.max_num_seqs,
                              plan_engine(spec, opts).dummy_sampler(spec, kv_dtype=opts.kv_dtype))
        torch.cuda.synchronize()  # growth of memory outside torch's pool since the baseline (NVML)
        outside = nvml.used() - baseline[0] - (torch.cuda.memory_reserved() - baseline[1])
    capability = torch.cuda.get_device_capability()
    version, flags = plan_engine(spec, opts).version, graph_flags(spec, opts, gpu)
    asked = (version, opts.max_num_seqs, opts.max_num_batched_tokens, capability[0] == 10,
             served_architecture(spec, version), flags.max_cudagraph_capture_size,  # as vllm_budget's
             flags.cudagraph_capture_sizes)
    sizes = [] if flags.graphs_off else capture_sizes(*asked)
    if not sizes:  # --enforce-eager / cudagraph_mode NONE, or no size within max_num_batched_tokens: vLLM captures none
        return {"gemm": gemm, "profile": profile, "non_torch_bytes": outside, "graphs": no_graphs(flags)}
    with progress.step(f"capturing the decode graphs at {len(sizes)} batch sizes (1..{max(sizes)})"):
        graphs = graph_memory(model, cache_layout(spec, plan), sizes)
    graphs["largest_graph_tokens"] = largest_graph(*asked)  # a decode step of more runs without a graph in vLLM
    return {"gemm": gemm, "profile": profile, "non_torch_bytes": outside, "graphs": graphs}


def no_graphs(flags: EngineFlags) -> dict:
    """The graphs record where none is captured, as vLLM captures none: --enforce-eager (cudagraph_mode NONE, config/
    vllm.py 0.32.0:1928-1932), the compilation config's cudagraph_mode NONE (-O0's too: graph_flags, resolved), or no
    capture size left within max_num_batched_tokens. `flags` resolved (graph_flags)."""
    cause = graphs_off_cause(flags) if flags.graphs_off else None
    why = (f"{cause}: vLLM captures no CUDA graph, so neither does verify, and decode runs eagerly" if cause
           else "no capture size is within max_num_batched_tokens: vLLM captures none")
    return {"sizes": [], "bytes": 0, "pool_bytes": 0, "driver_bytes": 0, "seconds": 0.0, "first_capture_bytes": 0,
            "second_capture_bytes": None, "vllm_method_bytes": 0, "eager": flags.graphs_off, "why": why}


def pool_plan(spec, opts: Options, budget: int, block_size: int):
    """The measured budget laid out with ideal paging (every block a sequence can use; the engine's own admission
    holds back its null block and in-flight reserves) at the engine plan's block size (`block_size`: the one its
    flags leave, a hybrid's raised to hold a Mamba state), one state slot a sequence."""
    return make_plan(spec, context=opts.context, kv_dtype=opts.kv_dtype, tp=opts.tp, budget_for=fixed_budget(budget),
                     block_size=block_size, engine="none", speed=False, suggest=False)


def allocate_pools(spec, opts: Options, held: dict, progress, nvml, budget: int, block_size: int) -> dict:
    """Lay out the measured budget (pool_plan), allocate the pools, prove the boundary."""
    plan = pool_plan(spec, opts, budget, block_size)
    if not plan.fits:
        raise KvplanError(f"{spec.name}: the measured budget ({size(budget)} after the measured weights, profile "
                          f"peak, non-torch memory and graphs) leaves no room for one {opts.context:,}-token sequence.")
    layout = cache_layout(spec, plan)
    torch.cuda.synchronize()
    # torch's cached blocks are free for the pools, and NVML then sees the pools' own cudaMalloc calls
    torch.cuda.empty_cache()
    free = torch.cuda.mem_get_info()[0]
    if layout.allocated_bytes > free:
        raise KvplanError(f"the KV pools need {size(layout.allocated_bytes)} but the GPU has {size(free)} free (this "
                          f"process: {size(torch.cuda.memory_allocated())} in torch tensors, "
                          f"{size(torch.cuda.memory_reserved())} reserved): another process holds memory; free it or "
                          f"lower the GPU memory utilization.")
    with progress.step(f"allocating the paged KV pools ({size(layout.allocated_bytes)}) and filling them"):
        # besides NVML's used memory, the driver's free memory and torch's reserved bytes around the same calls:
        # pools that land in torch's own cache do not grow NVML's figure (judge.pool_bytes_in_nvml_view)
        torch_0, nvml_0 = torch.cuda.memory_allocated(), nvml.used()
        free_0, reserved_0 = torch.cuda.mem_get_info()[0], torch.cuda.memory_reserved()
        caches = held["model"].caches = caches_from_layout(layout, "cuda")
        torch.cuda.synchronize()
        torch_1, nvml_1 = torch.cuda.memory_allocated(), nvml.used()
        free_1, reserved_1 = torch.cuda.mem_get_info()[0], torch.cuda.memory_reserved()
        for cache in caches.values():
            for t in cache.tensors:
                if cache.kind == "state":
                    t.normal_(0.0, 0.1)
                elif cache.kind == "keys":  # a lightning indexer's e4m3 values and float32 scales
                    fill_keys(t)
                else:
                    fill_random(t)
        torch.cuda.synchronize()
    pools = {g.name: caches[g.layers[0]].tensors[0].shape[0] for g in layout.groups}
    boundary, allocator = probe_boundary(layout, budget, pools)
    held["allocator"] = allocator
    reused = max(0, (torch_1 - torch_0) - (reserved_1 - reserved_0))
    return {"plan": plan, "layout": layout, "boundary": boundary, "allocator": allocator,
            "torch_bytes": torch_1 - torch_0, "gpu_used_after_bytes": nvml_1,
            "nvml_bytes": pool_bytes_in_nvml_view(nvml_1 - nvml_0, torch_1 - torch_0, reserved_1 - reserved_0),
            "nvml_growth_bytes": nvml_1 - nvml_0, "torch_cache_reused_bytes": reused,
            "driver_free_drop_bytes": free_0 - free_1, "torch_reserved_bytes": reserved_1 - reserved_0}


def time_forward(spec, opts: Options, held: dict, progress, pools: dict, input_len: int, gpu=None) -> dict:
    model, layout, allocator = held["model"], pools["layout"], pools["allocator"]
    # --enforce-eager or cudagraph_mode NONE: the step as vLLM runs it then, no graph; `off_by` names which
    flags = graph_flags(spec, opts, gpu)
    points, off_by = [], graphs_off_cause(flags) if flags.graphs_off else None
    for batch in decode_batches(pools["boundary"].served, opts.max_num_seqs):
        with progress.step(f"decode, batch {batch} ({'eager' if off_by else 'CUDA graph of the whole step'})"):
            points.append(time_decode(model, layout, allocator, batch, opts.context, eager=off_by))
    with progress.step(f"prefill of one {input_len:,}-token prompt (TTFT)"):
        prefill = time_prefill(model, layout, allocator, input_len)
    return {"points": points, "prefill": prefill, "labels": {**model.rt.paged.labels, **model.rt.labels},
            "graphs_off_by": off_by}


def bandwidth(progress) -> dict:
    with progress.step("measuring the read bandwidth (a pure read over a buffer far larger than L2)"):
        return read_bandwidth(min(4 * 2**30, torch.cuda.mem_get_info()[0] // 4))


def time_all_reduce(held: dict, progress, batches: tuple, plan, eager: bool = False) -> dict:
    """The decode step's collectives alone: two all-reduces of [batch, hidden] per layer, in a CUDA graph (launched
    eagerly under --enforce-eager: `eager`), at the decode batches timed (terms.decode_batches)."""
    model = held["model"]
    comm, arch = model.rt.comm, model.arch
    layers = len(arch.layers)
    points = []
    for batch in batches:
        with progress.step(f"all-reduce, batch {batch} (2 per layer, {'eager' if eager else 'CUDA graph'})"):
            x = torch.randn(batch, arch.hidden, dtype=held["weights"]["norm"].dtype, device="cuda")

            def reduce(x=x):
                return [comm.all_reduce(x) for _ in range(2 * layers)]

            graph = None if eager else capture(reduce)[0]
            t = time_replays(reduce if graph is None else graph.replay, reps=10)
            del graph
        points.append({"batch": batch, "ms": t["ms"], "per_layer_us": t["ms"] / layers * 1e3,
                       "bytes_per_call": batch * arch.hidden * x.element_size()})
    return {"calls_per_layer": 2, "points": points, "ranks": comm.size, "eager": eager}
