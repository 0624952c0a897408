"""The GPU half of `kvplan verify` (torch + NVML): one TP rank, held, allocated, probed and timed.

Everything the run allocates hangs off one `Rank` object; `verify_on_gpu` releases it (and clears the
frames of any exception, which would otherwise keep tensors alive) before it returns, raises or is
interrupted, then empties torch's cache, so the GPU is left as it was found.
"""

from __future__ import annotations

import datetime
import time
import traceback

from rich.markup import escape

from ..errors import KvplanError
from ..model.spec import ModelSpec
from ..plan.budget import gpu_budget
from ..plan.catalog import GPU, match_device_name
from ..plan.plan import plan as make_plan
from ..render.text import size
from ..verify.allocator import probe_boundary
from ..verify.judge import judge, relative_error, verdict_dict
from ..verify.layout import cache_layout, kernel_kv_dtype
from .decode import decode_sweep, torch_dtype
from .nvml import Nvml, import_stack
from .timing import COPY_BYTES, DEVICE, copy_bandwidth


class Rank:
    """Holds every GPU object of the run, so that release() can drop them all."""

    def __init__(self, torch):
        self.torch = torch
        self.objects: dict = {}

    def keep(self, name: str, value):
        self.objects[name] = value
        return value

    def release(self) -> None:
        torch = self.torch
        self.objects.clear()
        try:
            torch.cuda.synchronize()
        except Exception:
            pass
        import gc

        gc.collect()
        try:
            clear = getattr(torch._C, "_cuda_clearCublasWorkspaces", None)
            if clear is not None:  # cuBLAS keeps a workspace per (handle, stream) in torch's allocator
                clear()
            torch.cuda.empty_cache()
        except Exception:
            pass


def _fill_random(torch, tensor) -> None:
    """Fresh random values (never zeros: they hide bugs and can run faster than real data)."""
    if tensor.dtype in (torch.float16, torch.bfloat16, torch.float32):
        tensor.normal_()
        return
    rows = tensor.view(tensor.shape[0], -1)
    step = max(1, (256 * 2**20) // max(1, rows.shape[1] * 2))
    for i in range(0, rows.shape[0], step):
        chunk = rows[i:i + step]
        chunk.copy_(torch.randn(chunk.shape, device=chunk.device, dtype=torch.bfloat16))


def _device_gpu(info: dict, total: int) -> tuple:
    """(GPU the planner sizes with, where its bandwidth came from)."""
    known = match_device_name(info["name"])
    if known is not None:
        return GPU(known.name, total, known.bandwidth, known.aliases, "torch.cuda.mem_get_info", True), \
            f"catalog {known.name}"
    if info.get("bandwidth_nvml_bytes_per_s"):
        return GPU(info["name"], total, info["bandwidth_nvml_bytes_per_s"], (), "torch.cuda.mem_get_info",
                   True), "NVML bus width x memory clock"
    raise KvplanError(f"GPU {info['name']} is not in the catalog and NVML reports no memory bus width or clock, "
                      f"so there is no bandwidth to predict decode with.")


def _no_fit_message(spec: ModelSpec, plan, gpu_name: str) -> str:
    b = plan.budget
    reserves = b.activation_bytes + b.cuda_context_bytes + b.cuda_graph_bytes + b.nccl_bytes
    why = (f"KV budget {size(plan.kv_budget_bytes_per_gpu)} = {size(b.gpu_memory_bytes)} x {b.gpu_util:.2f} - "
           f"weights/TP {size(b.weights_bytes_per_gpu)} - reserves {size(reserves)}")
    if plan.kv_budget_bytes_per_gpu > 0:
        why += f", one sequence needs {size(plan.kv_bytes_per_sequence_per_gpu + plan.state_bytes_per_sequence_per_gpu)}"
    hint = f"; {plan.suggestion}" if plan.suggestion else ""
    return (f"{spec.name} at --tp {plan.tp} leaves no room for one {plan.context:,}-token sequence on one rank of "
            f"this {gpu_name} ({why}){hint}.")


def verify_on_gpu(spec: ModelSpec, *, tp: int, context: int, kv_dtype: str, gpu_util: float, block_size: int,
                  progress) -> dict:
    torch, pynvml = import_stack()
    rank = Rank(torch)
    nvml, oom = None, None
    try:
        nvml = Nvml(pynvml, torch)
        return _verify(torch, nvml, rank, spec, tp=tp, context=context, kv_dtype=kv_dtype, gpu_util=gpu_util,
                       block_size=block_size, progress=progress)
    except torch.cuda.OutOfMemoryError as exc:
        traceback.clear_frames(exc.__traceback__)  # their locals would keep tensors alive
        oom = str(exc).splitlines()[0] if str(exc) else "out of memory"
    except BaseException as exc:  # KeyboardInterrupt included
        traceback.clear_frames(exc.__traceback__)
        raise
    finally:
        rank.release()
        if nvml is not None:
            nvml.close()
    raise KvplanError(f"the GPU ran out of memory during verify ({oom.rstrip('.')}); another process may hold "
                      f"memory: free it or lower --gpu-util.")


def _verify(torch, nvml: Nvml, rank: Rank, spec: ModelSpec, *, tp: int, context: int, kv_dtype: str,
            gpu_util: float, block_size: int, progress) -> dict:
    t_start = time.perf_counter()
    notes = []
    # -- 1. the GPU -------------------------------------------------------------------------------------------
    with progress.step("detecting the GPU (NVML) and starting CUDA"):
        info = nvml.describe()
        before = nvml.used()
        rank.keep("context", torch.zeros(1, device=DEVICE))
        torch.cuda.synchronize()
        info["cuda_context_bytes_nvml"] = nvml.used() - before
        free, total = torch.cuda.mem_get_info()
        props = torch.cuda.get_device_properties(torch.cuda.current_device())
        info.update(memory_total_bytes=int(total), memory_free_bytes=int(free), sm_count=props.multi_processor_count,
                    torch=torch.__version__, cuda=torch.version.cuda)
        gpu, bandwidth_source = _device_gpu(info, int(total))
        info.update(catalog_name=gpu.name if bandwidth_source.startswith("catalog") else None,
                    bandwidth_planner_bytes_per_s=gpu.decode_bandwidth, bandwidth_planner_source=bandwidth_source)

    # -- 2. the plan -------------------------------------------------------------------------------------------
    precision = kernel_kv_dtype(kv_dtype, spec)
    plan = make_plan(spec, context=context, kv_dtype=kv_dtype, tp=tp,
                     budget_for=lambda t: gpu_budget(spec, t, gpu, gpu_util, gpu_memory=int(total)),
                     block_size=block_size, bandwidth=gpu.decode_bandwidth)
    if not plan.tp_valid:
        raise KvplanError(f"--tp {tp} cannot shard {spec.name}: {plan.tp_errors[0].rstrip('.')}.")
    if not plan.fits:
        raise KvplanError(_no_fit_message(spec, plan, info["name"]))
    layout = cache_layout(spec, plan)
    budget = plan.budget
    held = {"weights": budget.weights_bytes_per_gpu, "activations": budget.activation_bytes,
            "cuda_graphs": budget.cuda_graph_bytes, "nccl": budget.nccl_bytes}
    held_bytes = sum(held.values())
    need = held_bytes + layout.allocated_bytes
    if need > free:
        raise KvplanError(f"this rank needs {size(need)} (weights/TP and reserves {size(held_bytes)}, KV "
                          f"{size(layout.allocated_bytes)}) but the GPU has {size(free)} free: another process "
                          f"holds {size(total - free - info['cuda_context_bytes_nvml'])}; free it or lower --gpu-util.")

    # -- 3. copy bandwidth ------------------------------------------------------------------------------------
    with progress.step("measuring device-to-device copy bandwidth"):
        copy = copy_bandwidth(torch, max(2**26, min(COPY_BYTES, free // 4)))
        torch.cuda.empty_cache()
    info["bandwidth_copy_bytes_per_s"] = copy["bytes_per_s"]
    bw_plan, bw_copy = gpu.decode_bandwidth, copy["bytes_per_s"]

    # -- 4. hold the engine, allocate the cache -----------------------------------------------------------------
    with progress.step(f"holding weights/TP + reserves ({size(held_bytes)}), allocating the paged KV cache "
                       f"({size(layout.allocated_bytes)})"):
        torch.cuda.synchronize()
        torch_0, nvml_0 = torch.cuda.memory_allocated(), nvml.used()
        weights_elements = -(-held["weights"] // 2)
        rank.keep("weights", torch.empty(weights_elements, dtype=torch.bfloat16, device=DEVICE))
        reserve = held_bytes - held["weights"]
        if reserve:
            rank.keep("reserve", torch.empty(reserve, dtype=torch.uint8, device=DEVICE))
        torch.cuda.synchronize()
        torch_1, nvml_1 = torch.cuda.memory_allocated(), nvml.used()
        caches = rank.keep("caches", {})
        for group in layout.groups:
            dtype = torch_dtype(torch, group.dtype)
            caches[group.name] = [[torch.empty(shape, dtype=dtype, device=DEVICE) for shape in group.tensor_shapes]
                                  for _ in group.layers]
        torch.cuda.synchronize()
        torch_2, nvml_2 = torch.cuda.memory_allocated(), nvml.used()
    allocation = {
        "predicted_bytes": layout.predicted_bytes,
        "layout_bytes": layout.allocated_bytes,
        "torch_bytes": torch_2 - torch_1,
        "nvml_bytes": nvml_2 - nvml_1,
        "torch_error": relative_error(torch_2 - torch_1, layout.predicted_bytes),
        "nvml_error": relative_error(nvml_2 - nvml_1, layout.predicted_bytes),
        "held_predicted_bytes": held_bytes,
        "held_terms": held,
        "held_torch_bytes": torch_1 - torch_0,
        "held_nvml_bytes": nvml_1 - nvml_0,
        "gpu_used_after_bytes": nvml_2,
        "gpu_used_after_fraction": nvml_2 / info["nvml_total_bytes"],
        "kv_budget_bytes": plan.kv_budget_bytes_per_gpu,
        "unallocated_budget_bytes": plan.kv_budget_bytes_per_gpu - layout.allocated_bytes,
    }

    # -- 5. the capacity boundary, over the tensors just allocated ----------------------------------------------
    pools = {g.name: caches[g.name][0][0].shape[0] for g in layout.groups}
    boundary, allocator = probe_boundary(layout, plan.kv_budget_bytes_per_gpu, pools)
    progress.note(f"boundary: {escape(boundary.reason)}")

    # -- 6. decode ---------------------------------------------------------------------------------------------
    with progress.step("filling weights and caches with random data"):
        _fill_random(torch, rank.objects["weights"])
        for tensors in caches.values():
            for layer in tensors:
                for t in layer:
                    _fill_random(torch, t)
        torch.cuda.synchronize()
    decode = decode_sweep(torch, rank, spec, plan, layout, boundary, allocator, precision, bw_plan, bw_copy, progress,
                     notes)

    # -- 7. verdicts -------------------------------------------------------------------------------------------
    points = [{"batch": p["batch"], "measured_ms": p["step_ms"], "predicted_ms": p["step_predicted_ms"],
               "predicted_copy_bw_ms": p["step_predicted_copy_bw_ms"]}
              for p in decode["points"] if p["batch"] in (1, layout.max_concurrency)]
    verdict = judge(layout.predicted_bytes, allocation["torch_bytes"], allocation["nvml_bytes"], boundary,
                      points, tuple(notes))
    return {
        "model": spec.name,
        "date": datetime.date.today().isoformat(),
        "gpu": info,
        "copy_bandwidth": copy,
        "rank": {"tp": tp, "simulated": f"one rank of {tp}" if tp > 1 else "the whole model (tp 1)",
                 "weights_bytes_total": spec.weights.bytes, "weights_bytes_per_gpu": budget.weights_bytes_per_gpu,
                 "larger_than_gpu": spec.weights.bytes > total},
        "plan": plan.to_dict(),
        "layout": [{"name": g.name, "kind": g.kind, "layers": len(g.layers), "window": g.window,
                    "num_blocks": g.num_blocks, "blocks_per_sequence": g.blocks_per_sequence,
                    "tensor_shapes": [list(s) for s in g.tensor_shapes], "dtype": g.dtype, "bytes": g.bytes}
                   for g in layout.groups],
        "layout_uniform": layout.uniform,
        "allocation": allocation,
        "boundary": {k: v for k, v in boundary.__dict__.items()},
        "decode": decode,
        "verdict": verdict_dict(verdict),
        "elapsed_s": time.perf_counter() - t_start,
    }
