"""The GPU half of `kvplan verify`: one TP rank (kvplan/gpu/tp.py runs one per GPU of a real group), run by
kvplan/gpu/rank.py, judged by kvplan/verify/judge.py.

Every GPU object of a rank hangs off one `held` dict (and the model in it); `verify_rank` releases them (and
clears the frames of any exception, which would otherwise keep tensors alive) before it returns, raises or
is interrupted, then empties torch's cache, so the GPU is left as it was found."""

from __future__ import annotations

import datetime
import gc
import math
import traceback
from dataclasses import asdict, replace

import torch

from ..engines.vllm_budget import EXTENSIBLE_GRANULE
from ..engines.vllm_runner import is_rocm
from ..errors import KvplanError
from ..plan.budget import MeasuredSizing
from ..plan.catalog import GPU, match_device_name
from ..verify.decode_terms import of_run
from ..verify.judge import (budget_counts, capacity_errors, judge, judge_budget, judge_capacity, judge_decode,
                            relative_error, stand_in_graphs_note, stand_ins, verdict_dict)
from ..verify.planned import plan_for_gpu
from ..verify.terms import (ExtensibleSizing, cublas_before_snapshot, decode_batches, decode_prediction,
                            extensible_baseline, extensible_subtracted, measured_extensible_budget, measured_kv_budget,
                            plan_sized_after_warmup, predicted_kv_init, predicted_persistent, predicted_terms,
                            prefill_prediction, responsible_term, subtracted_terms, term_rows, ttft_prompt)
from . import rank as R
from .deltanet import LABEL as DELTANET_LABEL
from .ffn import FP8_LABEL, GROUPED_LABEL, MXFP4_LABEL
from .mamba import LABEL as MAMBA_LABEL
from .mamba1 import LABEL as MAMBA1_LABEL
from .nvml import Nvml, import_stack


def release(held: dict) -> None:
    held.clear()
    gc.collect()
    try:
        torch.cuda.synchronize()
        clear = getattr(torch._C, "_cuda_clearCublasWorkspaces", None)
        if clear is not None:  # cuBLAS keeps a workspace per (handle, stream) in torch's allocator
            clear()
        torch.cuda.empty_cache()
    except Exception:
        pass


def device_gpu(info: dict, total: int) -> tuple:
    """(GPU the planner sizes with, where its bandwidth came from). Its compute capability, which the engine's
    rules read (sparse MLA's backend and `auto`, engines/vllm_sparse.py), is the catalog's for a GPU it knows and
    the device's own (info's, from torch on CUDA) for one it does not."""
    known = match_device_name(info["name"])
    if known is not None:
        return replace(known, memory_bytes=total, memory_source="torch.cuda.mem_get_info", detected=True), \
            f"catalog {known.name}"
    if info.get("bandwidth_nvml_bytes_per_s"):
        return GPU(info["name"], total, info["bandwidth_nvml_bytes_per_s"], (), "torch.cuda.mem_get_info", True,
                   compute_capability=tuple(info.get("compute_capability") or ())), "NVML bus width x memory clock"
    raise KvplanError(f"GPU {info['name']} is not in the catalog and NVML reports no memory bus width or clock, "
                      f"so there is no bandwidth to predict decode with.")


def verify_rank(spec, raw: dict, opts: R.Options, progress, comm=None, group: dict | None = None) -> dict:
    """This process's rank. `group` (real TP group): the memory its NCCL set-up took, measured by tp.py."""
    _, pynvml = import_stack()
    held, nvml, oom = {}, None, None
    try:
        nvml = Nvml(pynvml, torch)
        return _verify(spec, raw, opts, progress, comm, group, nvml, held)
    except torch.cuda.OutOfMemoryError as exc:
        traceback.clear_frames(exc.__traceback__)  # their locals would keep tensors alive
        oom = str(exc).splitlines()[0] if str(exc) else "out of memory"
    except BaseException as exc:  # KeyboardInterrupt included
        traceback.clear_frames(exc.__traceback__)
        raise
    finally:
        release(held)
        if nvml is not None:
            nvml.close()
    raise KvplanError(f"the GPU ran out of memory during verify ({oom.rstrip('.')}); another process may hold "
                      f"memory: free it or lower --gpu-util.")


def _gpu_info(nvml, held: dict, group, warm_cublas: bool) -> tuple:
    """GPU facts, and the memory baseline the engine's non-torch term counts from: after the CUDA context
    (and, in a TP group, NCCL) exist, as vLLM V1 snapshots it (gpu_worker.py init_device); `warm_cublas` (vLLM 0.33
    on, terms.cublas_before_snapshot): after cuBLAS's handles and workspaces too, as those releases make them first."""
    info = nvml.describe()
    before = group["nvml_used_before_bytes"] if group else nvml.used()
    held["context"] = torch.zeros(1, device="cuda")
    torch.cuda.synchronize()
    info["cuda_context_bytes_nvml"] = group["cuda_context_bytes"] if group else nvml.used() - before
    if warm_cublas:
        info["cublas_warmup_bytes_nvml"] = _warm_cublas(nvml)
    baseline = (nvml.used(), int(torch.cuda.memory_reserved()))
    free, total = torch.cuda.mem_get_info()
    props = torch.cuda.get_device_properties(torch.cuda.current_device())
    info.update(memory_total_bytes=int(total), memory_free_bytes=int(free), sm_count=props.multi_processor_count,
                torch=torch.__version__, cuda=torch.version.cuda,
                # CUDA's (major, minor); ROCm's numbers are a gfx arch, not one vLLM's CUDA rules read
                compute_capability=[props.major, props.minor] if torch.version.cuda else [])
    return info, baseline, int(total)


def _warm_cublas(nvml) -> int:
    """Make cuBLAS's and cuBLASLt's handles and workspaces the way vLLM 0.33+'s worker does before its init snapshot
    (0.34.0 v1/worker/gpu_worker.py:533-540: torch.mm and a biased F.linear over a 16 x 16 tensor, then gc and
    empty_cache), so the snapshot that follows is the engine's; returns the used memory they added (NVML), counted
    from a cache emptied first: blocks an earlier run in this process left cached would otherwise be freed inside
    the window and read as negative growth (an H100 in session 73: -4 MiB after other verify runs in one pytest)."""
    gc.collect()
    torch.cuda.empty_cache()
    used = nvml.used()
    x = torch.ones(16, 16, dtype=torch.bfloat16, device="cuda")  # the model's dtype in vLLM; verify's forward: bf16
    torch.mm(x, x)
    torch.nn.functional.linear(x, x, x[0])  # with a bias: cuBLASLt
    del x
    torch.cuda.synchronize()
    gc.collect()
    torch.cuda.empty_cache()
    return nvml.used() - used


def _extensible_sizing(plan, opts, info: dict, measured: dict, gpu) -> ExtensibleSizing:
    """vLLM 0.34's sizing after warmup on this rank's measured terms (verify/terms.py measured_extensible_budget):
    the init snapshot's used memory as the baseline (one simulated rank of a group adds NCCL), and as the part of
    the profile peak kept allocated the engine's, predicted (its Triton sampler rows and fused-MoE workspace; verify's
    own forward frees the one, has no other and keeps its own scratch: its figure is recorded beside it)."""
    total = info["memory_total_bytes"]
    baseline = extensible_baseline(total - info["memory_free_bytes"], measured["nccl"], opts.tp)
    return measured_extensible_budget(total, math.ceil(total * opts.gpu_util), measured, baseline,
                                      predicted_persistent(plan), is_rocm(gpu), kv_init=predicted_kv_init(plan))


def _verify(spec, raw, opts, progress, comm, group, nvml, held) -> dict:
    t0 = datetime.datetime.now()
    with progress.step("detecting the GPU (NVML) and starting CUDA"):
        warm = cublas_before_snapshot(R.plan_engine(spec, opts).version)
        info, baseline, total = _gpu_info(nvml, held, group, warm)
        gpu, source = device_gpu(info, total)
    info.update(bandwidth_planner_bytes_per_s=gpu.decode_bandwidth, bandwidth_planner_source=source)
    # the plan's bad input, as the stand-ins before CUDA met it (verify/stand_in.py), then the memory's verdicts
    spec, precision, opts, plan = plan_for_gpu(spec, opts, gpu, total)
    R.check_fits_gpu(spec, raw, opts, total, info["name"])
    if not plan.fits:
        raise KvplanError(R.no_fit_message(spec, plan, info["name"]))
    facts = R.build(spec, raw, opts, held, progress, comm, total, info["name"])
    read = R.bandwidth(progress)
    info.update(bandwidth_read_bytes_per_s=read["bytes_per_s"], bandwidth_read_method=read["method"])
    m = R.measure_terms(spec, opts, held, progress, plan, read["bytes_per_s"], nvml, baseline, gpu)
    predicted = predicted_terms(plan)
    measured = {"weights": facts["weights_bytes"], "activation_peak": m["profile"]["peak_bytes"],
                "non_torch": m["non_torch_bytes"], "cuda_graphs": m["graphs"]["bytes"],
                "nccl": group["nccl_bytes"] if group else None,
                "runner_state": predicted["runner_state"]}  # a known-size tensor (verify/terms.py)
    if plan_sized_after_warmup(plan):  # vLLM 0.34: sized from the memory measured after warmup
        sizing = _extensible_sizing(plan, opts, info, measured, gpu)
        measured.update(baseline=sizing.baseline, margin=sizing.margin)
        usable = total if sizing.device_binds else sizing.requested
        subtracted, own = extensible_subtracted(sizing), sizing.available
    else:
        sizing, subtracted = None, subtracted_terms(plan)
        usable = plan.budget.usable_bytes or int(total * opts.gpu_util)
        own = measured_kv_budget(usable, measured, subtracted, predicted)
    in_group = comm is not None and comm.real  # vLLM sizes every rank's cache by the group's smallest budget
    budget = comm.min_int(own) if in_group else own
    # the profile run's own figure, checked first, and the 2 MiB granules 0.34 commits in
    committed = None if sizing is None else MeasuredSizing(
        comm.min_int(sizing.profiled) if in_group else sizing.profiled, EXTENSIBLE_GRANULE, opts.gpu_util)
    engine_view = R.predicted_plan(spec, opts, gpu, total, budget=budget, measured=committed)
    pools = R.allocate_pools(spec, opts, held, progress, nvml, budget, plan.block_size)
    prompt = ttft_prompt(spec, opts.context, opts.max_num_batched_tokens, R.plan_engine(spec, opts).version)
    timed = R.time_forward(spec, opts, held, progress, pools, prompt.tokens, gpu)
    device = replace(gpu, memory_bytes=total)
    ttft_estimate = prefill_prediction(spec, plan, precision, prompt.tokens, opts.max_num_batched_tokens, device,
                                       gpu.decode_bandwidth)
    batches = decode_batches(pools["boundary"].served, opts.max_num_seqs)
    eager = R.graph_flags(spec, opts, gpu).graphs_off
    tp = R.time_all_reduce(held, progress, batches, plan, eager) if in_group else None
    return _result(spec, opts, info, plan, precision, facts, m, measured, usable, (own, budget), pools, timed,
                   ttft_estimate, tp, group, t0, engine_view, subtracted, device, sizing, prompt.note)


def ungraphed_batches_note(graphs: dict, batches: list) -> list:
    """A note where a decode batch timed in a graph holds more tokens than any graph the engine captures
    (terms.largest_graph): vLLM runs that step without one. None under --enforce-eager (every step eager there), nor
    for a result without the figure."""
    largest = graphs.get("largest_graph_tokens")
    above = [b for b in batches if largest and b > largest]
    if not above:
        return []
    return [f"decode batch {', '.join(map(str, above))} is above every CUDA graph vLLM captures (the largest holds "
            f"{largest} tokens), so vLLM runs that step without a graph; verify timed it in one"]


PERSISTENT_FROM = ("predicted (engines/vllm_profile.py persistent_after_profile: the Triton sampler's cached rows and "
                   "the fused-MoE workspace); verify's own forward keeps other buffers (persistent_measured)")


def extensible_record(sizing: ExtensibleSizing, profile: dict) -> dict:
    """0.34's sizing as the result records it: its parts (this rank's own figure as `available`), and beside the
    persistent part it used (the engine's, predicted) what verify's own profile run left allocated."""
    return {**asdict(sizing), "persistent_from": PERSISTENT_FROM,
            "persistent_measured": profile.get("persistent_bytes")}


def _result(spec, opts, info, plan, precision, facts, m, measured, usable, budgets, pools, timed, ttft_estimate,
            tp, group, t0, engine_view, subtracted, device, sizing=None, prompt_note=None) -> dict:
    """`budgets`: (this rank's measured KV budget, the one its cache is sized by: a real group's smallest);
    `prompt_note`: why the prompt timed is shorter than the max model length (terms.ttft_prompt), else None."""
    own, budget = budgets
    arch, layout, boundary = facts["arch"], pools["layout"], pools["boundary"]
    rows = term_rows(predicted_terms(plan), measured)
    responsible = responsible_term(rows)
    points = []
    simulated = opts.tp > 1 and group is None  # one rank, no all-reduce run: judged without the planner's TP term
    for p in timed["points"]:
        pred = decode_prediction(spec, plan, precision, p["batch"], device, info["bandwidth_planner_bytes_per_s"],
                                 collectives=not simulated)
        points.append({**p, **pred})
    split = of_run(points, info, tp)  # the step term by term, beside the estimate's terms
    for p in points:
        p["terms"] = split.get(p["batch"])
    first = points[0]
    at_read = first["roofline_ms"] * info["bandwidth_planner_bytes_per_s"] / info["bandwidth_read_bytes_per_s"]
    fixed_us = (first["measured_ms"] - at_read) / spec.num_hidden_layers * 1e3
    fixed_how = "(batch-1 step - its roofline bytes / measured read bandwidth) / layers"
    layer_row = next((row for row in split.get(1) or () if row["term"] == "per_layer_fixed"), None)
    if layer_row is not None and "measured_us" in layer_row:  # the figure the decode terms use: net of all-reduces
        fixed_us = layer_row["measured_us"]
        fixed_how = ("(batch-1 step - its roofline bytes / measured read bandwidth - its all-reduces, as timed alone "
                     "in a real group) / layers")
    torch_bytes, nvml_bytes = pools["torch_bytes"], pools["nvml_bytes"]
    mode = ("the whole model (tp 1)" if opts.tp == 1 else
            f"rank {group['rank']} of a real {opts.tp}-GPU group (NCCL)" if group else
            f"ONE SIMULATED RANK of {opts.tp}: this machine has fewer than {opts.tp} GPUs, so the other ranks and "
            f"their all-reduces are not run (the rank's shapes, memory and collectives-free step are)")
    notes = list(arch.notes)
    if group is None and opts.tp > 1:
        notes.append(f"tp {opts.tp} simulated on one GPU: all-reduce time and NCCL memory not measured")
    if spec.multimodal:
        notes.append("the language model only: planned as vLLM with --skip-mm-profiling (the vision tower and its "
                     "profile pass are not built)")
    labels = dict(timed["labels"])
    if arch.experts:
        labels.setdefault("moe", {"mxfp4": MXFP4_LABEL, "fp8_block": FP8_LABEL}.get(arch.experts_format, GROUPED_LABEL))
    if "linear" in arch.mixers:
        labels.setdefault("linear", DELTANET_LABEL)
    if "mamba" in arch.mixers:
        labels.setdefault("mamba", MAMBA_LABEL)
    if "mamba1" in arch.mixers:
        labels.setdefault("mamba1", MAMBA1_LABEL)
    parts = stand_ins(labels)
    notes += stand_in_graphs_note(parts, responsible)
    notes += ungraphed_batches_note(m["graphs"], [p["batch"] for p in points])
    planned, measured_count, counted = budget_counts(plan, engine_view)
    roundings = (layout.rounding_bytes, layout.torch_rounding_bytes)
    errors = capacity_errors(layout.predicted_bytes, torch_bytes, nvml_bytes, *roundings)
    verdict = judge(judge_capacity(layout.predicted_bytes, torch_bytes, nvml_bytes, boundary, *roundings),
                    judge_budget(planned, measured_count, responsible, boundary.served, counted),
                    judge_decode([{k: p.get(k) for k in ("batch", "measured_ms", "estimate_ms", "roofline_ms",
                                                         "estimate_terms", "terms", "eager")} for p in points],
                                 tuple(parts)), tuple(notes))
    for q in (tp or {}).get("points", ()):  # the planner's TP term at the same batch, per layer
        q["planner_per_layer_us"] = decode_prediction(spec, plan, precision, q["batch"], device,
                                                      info["bandwidth_planner_bytes_per_s"])["tp_term_per_layer_us"]
    prefill = dict(timed["prefill"], input_len_note=prompt_note, estimate_ms=ttft_estimate,
                   error=relative_error(timed["prefill"]["ttft_ms"], ttft_estimate) if ttft_estimate else None)
    return {
        "model": spec.name, "date": t0.date().isoformat(), "gpu": info,
        "options": {"engine": opts.engine, "tp": opts.tp, "context": opts.context, "kv_dtype": opts.kv_dtype,
                    "gpu_util": opts.gpu_util,
                    "block_size": opts.block_size, "max_num_seqs": opts.max_num_seqs,
                    "max_num_batched_tokens": opts.max_num_batched_tokens, "engine_flags": opts.given_flags()},
        "rank": {"tp": opts.tp, "mode": mode, "real_group": group is not None,
                 "weights_bytes_total": spec.weights.bytes,
                 "weights_bytes_per_gpu": plan.budget.weights_bytes_per_gpu, "arch_weights_bytes": facts["arch_bytes"],
                 "vision_held_bytes": facts["vision_held_bytes"],
                 "per_layer_input_buffer_bytes": facts["per_layer_input_buffer_bytes"]},
        "forward": {"labels": labels, "notes": list(arch.notes)},
        "plan": plan.to_dict(),
        "terms": rows,
        "budget": {"usable_bytes": usable, "predicted_kv_budget_bytes": plan.kv_budget_bytes_per_gpu,
                   "measured_kv_budget_bytes": budget, "rank_kv_budget_bytes": own,
                   "subtracted_terms": list(subtracted),
                   "engine": plan.budget.engine, "responsible_term": responsible and responsible["term"],
                   "verdict_counts": {"planned": planned, "measured": measured_count, "what": counted},
                   "sizing": "profile" if sizing is None else "extensible",
                   "extensible": None if sizing is None else extensible_record(sizing, m["profile"])},
        "profile": m["profile"], "graphs": m["graphs"], "gemm": m["gemm"],
        "measured_plan": {"kv_budget_bytes_per_gpu": budget, "kv_blocks": engine_view.kv_blocks,
                          "max_concurrency": engine_view.max_concurrency,
                          "max_concurrency_limited_by": engine_view.max_concurrency_limited_by,
                          "resident_sequences": engine_view.engine and engine_view.engine.resident_sequences,
                          "pool_blocks": pools["plan"].kv_blocks, "pool_sequences": pools["plan"].max_concurrency},
        "layout": [{"name": g.name, "kind": g.kind, "layers": len(g.layers), "window": g.window,
                    "num_blocks": g.num_blocks, "blocks_per_sequence": g.blocks_per_sequence,
                    "tensor_shapes": [list(s) for s in g.tensor_shapes], "dtype": g.dtype_label, "bytes": g.bytes}
                   for g in layout.groups],
        "allocation": {"layout_bytes": layout.predicted_bytes, "torch_bytes": torch_bytes, "nvml_bytes": nvml_bytes,
                       "torch_error": errors["torch"], "nvml_error": errors["NVML"],
                       "allocator_rounding_bytes": layout.rounding_bytes,
                       "allocator_torch_rounding_bytes": layout.torch_rounding_bytes,
                       "nvml_growth_bytes": pools.get("nvml_growth_bytes"),
                       "torch_cache_reused_bytes": pools.get("torch_cache_reused_bytes"),
                       "driver_free_drop_bytes": pools.get("driver_free_drop_bytes"),
                       "torch_reserved_bytes": pools.get("torch_reserved_bytes"),
                       "gpu_used_after_bytes": pools["gpu_used_after_bytes"],
                       "gpu_used_after_fraction": pools["gpu_used_after_bytes"] / info["nvml_total_bytes"]},
        "boundary": dict(boundary.__dict__),
        "decode": {"points": points, "per_layer_fixed_us": fixed_us, "per_layer_fixed_how": fixed_how,
                   "graphs_off_by": timed.get("graphs_off_by")},  # what made the steps eager (None: graphs)
        "prefill": prefill,
        "tp": tp,
        "verdict": verdict_dict(verdict),
        "elapsed_s": (datetime.datetime.now() - t0).total_seconds(),
    }
