"""torch and NVML for verify: importing them with a clear error, and NVML's view of the device."""

from __future__ import annotations

from ..errors import KvplanError


def import_stack():
    """(torch, pynvml), or a KvplanError saying what is missing."""
    try:
        import torch
    except ImportError:
        raise KvplanError("kvplan verify needs PyTorch with CUDA and nvidia-ml-py, and torch is not installed; "
                          "pip install 'kvplan[gpu]'.") from None
    if not torch.cuda.is_available():
        built = f"built for CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        raise KvplanError(f"kvplan verify needs a CUDA GPU and torch sees none (torch {torch.__version__}, "
                          f"{built}; torch.cuda.is_available() is False).")
    try:
        import pynvml
    except ImportError:
        raise KvplanError("kvplan verify reads GPU memory through NVML and nvidia-ml-py is not installed; "
                          "pip install nvidia-ml-py.") from None
    return torch, pynvml


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Nvml:
    """The NVML handle of torch's current device (matched by UUID; index 0 when that fails)."""

    def __init__(self, pynvml, torch):
        self.nv = pynvml
        try:
            pynvml.nvmlInit()
        except Exception as exc:
            raise KvplanError(f"NVML could not start ({exc}); kvplan verify needs the NVIDIA driver.") from None
        self.handle = None
        try:
            uuid = str(torch.cuda.get_device_properties(torch.cuda.current_device()).uuid)
            self.handle = pynvml.nvmlDeviceGetHandleByUUID(uuid if uuid.startswith("GPU-") else "GPU-" + uuid)
        except Exception:
            self.handle = pynvml.nvmlDeviceGetHandleByIndex(0)

    def used(self) -> int:
        return int(self.nv.nvmlDeviceGetMemoryInfo(self.handle).used)

    def describe(self) -> dict:
        nv, h = self.nv, self.handle
        info = {"name": _text(nv.nvmlDeviceGetName(h))}
        memory = nv.nvmlDeviceGetMemoryInfo(h)
        info.update(nvml_total_bytes=int(memory.total), nvml_used_bytes_at_start=int(memory.used))
        try:
            info["driver"] = _text(nv.nvmlSystemGetDriverVersion())
        except Exception:
            info["driver"] = None
        try:
            bus = int(nv.nvmlDeviceGetMemoryBusWidth(h))
            clock = int(nv.nvmlDeviceGetMaxClockInfo(h, nv.NVML_CLOCK_MEM))
            info.update(memory_bus_width_bits=bus, memory_clock_mhz=clock,
                        bandwidth_nvml_bytes_per_s=bus / 8 * clock * 1e6 * 2)  # double data rate
        except Exception:
            info.update(memory_bus_width_bits=None, memory_clock_mhz=None, bandwidth_nvml_bytes_per_s=None)
        return info

    def close(self) -> None:
        try:
            self.nv.nvmlShutdown()
        except Exception:
            pass
