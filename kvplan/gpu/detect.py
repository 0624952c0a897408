"""The local GPU. On Linux the NVIDIA driver names each GPU in /proc/driver/nvidia/gpus/*/information, which
costs a file read; NVML (the `gpu` extra's nvidia-ml-py) is loaded only for a GPU the catalog does not know
(its memory and bandwidth come from NVML then) or where there is no /proc. Without a driver, detection answers
None and planning uses the stated default GPU."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Optional

from ..plan.catalog import DEFAULT_GPU, GPU, find_gpu, match_device_name

PROC_GPUS = Path("/proc/driver/nvidia/gpus")


def _proc_gpu_name() -> Optional[str]:
    """The first GPU's model name as the Linux driver reports it, or None."""
    try:
        for folder in sorted(PROC_GPUS.iterdir()):
            for line in (folder / "information").read_text(errors="replace").splitlines():
                if line.startswith("Model:"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def detect_gpu() -> Optional[GPU]:
    """The first local GPU, or None when there is no NVIDIA driver. Known names use the catalog's
    runtime-reported memory; unknown ones NVML's total and bus-width x clock bandwidth."""
    if PROC_GPUS.is_dir() or sys.platform != "win32":
        name = _proc_gpu_name()
        if name is None:
            return None
        known = match_device_name(name)
        if known is not None:
            return replace(known, memory_source=f"{known.memory_source}; detected {name}", detected=True)
    return _nvml_gpu()


def _nvml_gpu() -> Optional[GPU]:
    try:
        import pynvml  # optional: the `gpu` extra
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:  # no driver / no GPU: pynvml raises its own NVMLError subclasses
        return None
    try:
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        name = pynvml.nvmlDeviceGetName(handle)
        name = name.decode() if isinstance(name, bytes) else name
        known = match_device_name(name)
        if known is not None:
            return replace(known, memory_source=f"{known.memory_source}; detected {name}", detected=True)
        memory = pynvml.nvmlDeviceGetMemoryInfo(handle).total
        bus_bits = pynvml.nvmlDeviceGetMemoryBusWidth(handle)
        clock_mhz = pynvml.nvmlDeviceGetMaxClockInfo(handle, pynvml.NVML_CLOCK_MEM)
        capability = tuple(pynvml.nvmlDeviceGetCudaComputeCapability(handle))
        return GPU(name, memory, bus_bits / 8 * clock_mhz * 1e6 * 2, (), "NVML (detected)", detected=True,
                   compute_capability=capability)
    except Exception:
        return None
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass



def choose_gpu(name: Optional[str]) -> GPU:
    """The named GPU when given (an empty name is refused as any unknown one), else the detected GPU, else the stated
    default (H100 80GB SXM)."""
    if name is not None:
        return find_gpu(name)
    return detect_gpu() or find_gpu(DEFAULT_GPU)
