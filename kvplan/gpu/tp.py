"""`kvplan verify --tp N` on a machine with N GPUs: one process per GPU (torch.multiprocessing, spawn), one
torch.distributed group (NCCL; gloo for the CPU test of the same plumbing), each rank building and measuring
its own shard (kvplan/gpu/verify_run.py) and sending its result back; the parent reports rank 0's run with
every rank's memory, budget and boundary beside it. NVLink multicast stays off in every process."""

from __future__ import annotations

import datetime
import os
import queue as queue_module
import socket
import time

import torch

from ..errors import KvplanError

NCCL_ENV = {"NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1", "NVSHMEM_DISABLE_NVLS": "1"}
GROUP_TIMEOUT_S = 600


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def init_group(rank: int, world: int, backend: str) -> None:
    import torch.distributed as dist

    extra = {"device_id": torch.device("cuda", rank)} if backend == "nccl" else {}  # eager NCCL init
    dist.init_process_group(backend, rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=GROUP_TIMEOUT_S), **extra)


def _entry(worker, rank: int, world: int, backend: str, port: int, args: tuple, results) -> None:
    os.environ.update(NCCL_ENV)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    try:
        value = worker(rank, world, backend, *args)
        import torch.distributed as dist

        if dist.is_initialized():
            dist.barrier()  # no rank tears the group down while another still talks to it
        results.put((rank, "ok", value))
    except KvplanError as exc:
        results.put((rank, "error", str(exc)))
    except BaseException as exc:  # KeyboardInterrupt included: the parent decides what to say
        first = (str(exc).splitlines() or [""])[0][:300]
        results.put((rank, "error", f"{type(exc).__name__}: {first}".rstrip(": ")))
    finally:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def launch(worker, args: tuple, world: int, backend: str, timeout_s: float = 900) -> list:
    """worker(rank, world, backend, *args) in `world` fresh processes; their return values in rank order. The
    first rank that fails (or dies) ends the group: the others are terminated, and its message is raised."""
    import torch.multiprocessing as mp

    os.environ.update(NCCL_ENV)
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    port = free_port()
    procs = [ctx.Process(target=_entry, args=(worker, rank, world, backend, port, args, results))
             for rank in range(world)]
    for p in procs:
        p.start()
    got, failure, deadline = {}, None, time.monotonic() + timeout_s
    try:
        while len(got) < world and failure is None:
            try:
                rank, status, payload = results.get(timeout=0.5)
            except queue_module.Empty:
                dead = next(((r, p.exitcode) for r, p in enumerate(procs) if p.exitcode not in (None, 0)), None)
                if dead:
                    failure = f"rank {dead[0]} exited with code {dead[1]} before reporting"
                elif time.monotonic() > deadline:
                    failure = f"the {world} ranks did not finish within {timeout_s:.0f} s"
                continue
            if status == "ok":
                got[rank] = payload
            else:
                failure = payload if world == 1 else f"rank {rank}: {payload}"
    finally:
        for p in procs:
            if failure is not None and p.is_alive():
                p.terminate()
            p.join(timeout=30)
    if failure is not None:
        raise KvplanError(failure.rstrip(".") + ".")
    return [got[r] for r in range(world)]


# ---- the GPU run ---------------------------------------------------------------------------------------------

def _verify_worker(rank: int, world: int, backend: str, spec, raw: dict, opts) -> dict:
    import pynvml
    from rich.console import Console

    from ..verify.progress import Progress
    from .comm import DistComm
    from .nvml import Nvml
    from .verify_run import verify_rank

    torch.cuda.set_device(rank)
    nvml = Nvml(pynvml, torch)
    try:
        before = nvml.used()
        torch.zeros(1, device="cuda")
        torch.cuda.synchronize()
        context = nvml.used() - before
        init_group(rank, world, backend)
        after_init = nvml.used() - before - context - torch.cuda.memory_reserved()
        probe = torch.ones(1 << 20, device="cuda")
        torch.distributed.all_reduce(probe)
        torch.distributed.barrier()
        torch.cuda.synchronize()
        after_first = nvml.used() - before - context - torch.cuda.memory_reserved()
        del probe
    finally:
        nvml.close()
    group = {"rank": rank, "nvml_used_before_bytes": before, "cuda_context_bytes": context,
             "nccl_init_bytes": after_init, "nccl_bytes": after_first}
    progress = Progress() if rank == 0 else Progress(Console(quiet=True))
    result = verify_rank(spec, raw, opts, progress, comm=DistComm(), group=group)
    result["group"] = group
    return result


def _rank_summary(r: dict) -> dict:
    return {"rank": r["group"]["rank"], "cuda_context_bytes": r["group"]["cuda_context_bytes"],
            "nccl_init_bytes": r["group"]["nccl_init_bytes"], "nccl_bytes": r["group"]["nccl_bytes"],
            "terms": {row["term"]: row["measured_bytes"] for row in r["terms"]},
            "measured_kv_budget_bytes": r["budget"]["measured_kv_budget_bytes"],
            "rank_kv_budget_bytes": r["budget"].get("rank_kv_budget_bytes"), "allocation": r["allocation"],
            "boundary_confirmed": r["boundary"]["confirmed"], "served": r["boundary"]["served"],
            "capacity_confirmed": r["verdict"]["capacity_confirmed"], "decode_ms": [p["measured_ms"] for p in
                                                                                    r["decode"]["points"]]}


def verify_group(spec, raw: dict, opts, progress) -> dict:
    progress.note(f"launching {opts.tp} processes, one per GPU (torch.distributed, NCCL; NVLS multicast off)")
    results = launch(_verify_worker, (spec, raw, opts), opts.tp, "nccl")
    merged = results[0]
    merged["ranks"] = [_rank_summary(r) for r in results]
    bad = [s["rank"] for s in merged["ranks"] if not s["capacity_confirmed"]]
    if bad:
        v = merged["verdict"]
        v["capacity_confirmed"], v["ok"] = False, False
        v["capacity_reason"] += f"; ranks {bad} did not confirm their allocation or boundary"
    return merged


# ---- the CPU check of the same plumbing (tests) ---------------------------------------------------------------

def forward_check(rank: int, world: int, backend: str, cases: list) -> list:
    """For each (raw config, seed, prompt, steps): rank `rank` of `world` runs the tiny model's shard (cut from
    one seeded set of full weights) through a prefill of `prompt` and `steps` greedy decode steps, returning the
    logits after each (lists)."""
    init_group(rank, world, backend)
    return [_forward_case(rank, world, *case) for case in cases]


def _forward_case(rank: int, world: int, raw: dict, seed: int, prompt: list, steps: int) -> list:
    from ..model import parse_config
    from ..verify.arch import architecture
    from .caches import small_caches
    from .comm import DistComm
    from .generate import decode, prefill
    from .model import Runtime, Transformer
    from .weights import full_weights, shard_weights

    spec = parse_config(raw, "tiny")
    arch = architecture(raw, spec, world)
    weights = shard_weights(full_weights(architecture(raw, spec, 1), seed), arch, rank)
    model = Transformer(arch, weights, Runtime("cpu", DistComm()))
    model.caches = small_caches(arch, 16, 4, 1, torch.float32)
    for cache in model.caches.values():
        if cache.kind == "state":
            cache.tensors[0].zero_()
    row = list(range(15, -1, -1))
    paged = {c.group for c in model.caches.values() if c.kind != "state"}
    slots = torch.tensor([0])
    logits = prefill(model, torch.tensor([prompt]), {g: [row] for g in paged}, slots)
    outs = [logits[0].tolist()]
    tables = {g: torch.tensor([row], dtype=torch.int32) for g in paged}
    for i in range(steps):
        token = logits.argmax(-1)
        logits = decode(model, token, torch.tensor([len(prompt) + i]), tables, slots)
        outs.append(logits[0].tolist())
    return outs
