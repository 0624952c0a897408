"""The GPU catalog: the memory the CUDA runtime reports (torch.cuda.get_device_properties().total_memory,
vLLM's "total_gpu_memory"; less than the marketing figure because the driver keeps some) and the HBM/GDDR
bandwidth from the vendor's datasheet. `--gpu` takes any alias, case-insensitively."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from ..errors import FieldError, quote

GiB = 2**30
# Decode streams memory at what a device-to-device copy reaches, not at the datasheet figure: measured here
# 2.97-2.99 of 3.35 TB/s on an H100 SXM and 4.3 of 4.8 TB/s on an H200 (both 0.89-0.90). The roofline uses
# datasheet x this fraction so that `kvplan verify` compares against an achievable number.
ACHIEVABLE_FRACTION = 0.89


@dataclass(frozen=True)
class GPU:
    name: str
    memory_bytes: int  # as the runtime reports it
    bandwidth: float  # bytes/s, datasheet
    aliases: tuple = ()
    memory_source: str = ""
    detected: bool = False

    @property
    def decode_bandwidth(self) -> float:
        """Bytes/s the decode roofline divides by (see ACHIEVABLE_FRACTION)."""
        return self.bandwidth * ACHIEVABLE_FRACTION


def _gib(value: float) -> int:
    return int(value * GiB)


# memory_source says where each runtime-reported figure comes from: our own measurement on the device
# (2026-11-22), a published vLLM log line, or the nvidia-smi total less the driver's reserve (marked "approx":
# the H100 keeps 0.47 GiB of 79.65, the H200 0.60 GiB of 140.4).
CATALOG = (
    GPU("A100-40GB", _gib(39.39), 1.555e12, ("a100", "a100-40g", "a100-sxm4-40gb", "a100 40gb"),
        "vLLM logs: total_gpu_memory 39.39GiB"),
    GPU("A100-80GB", _gib(79.15), 2.039e12, ("a100-80g", "a100-sxm4-80gb", "a100 80gb", "a100-80gb-sxm"),
        "vLLM logs: total_gpu_memory 79.15GiB"),
    GPU("H100-80GB-SXM", 85_017_493_504, 3.35e12,
        ("h100", "h100-80gb", "h100-sxm", "h100-sxm5", "h100 80gb hbm3", "h100-80gb-hbm3"),
        "measured: torch total_memory on an H100 80GB HBM3, driver 580 (vLLM PR #10511 logged 79.22 GiB)"),
    GPU("H100-80GB-PCIe", _gib(79.19), 2.0e12, ("h100-pcie", "h100 pcie", "h100-80gb-pcie"),
        "approx: 81559 MiB nvidia-smi less driver reserve"),
    GPU("H200", 150_109_880_320, 4.8e12, ("h200-141gb", "h200-sxm", "h200 141gb"),
        "measured: torch total_memory on an H200 (nvidia-smi 143771 MiB), driver 580"),
    GPU("B200", _gib(178.35), 8.0e12, ("b200-180gb", "b200-sxm"), "approx: 183359 MiB nvidia-smi less reserve"),
    GPU("L40S", _gib(44.39), 864e9, ("l40s-48gb",), "approx: 46068 MiB nvidia-smi less driver reserve"),
    GPU("L4", _gib(22.05), 300e9, ("l4-24gb",), "approx: 23034 MiB nvidia-smi less driver reserve"),
    GPU("A10G", _gib(22.05), 600e9, ("a10g-24gb",), "approx: 23028 MiB nvidia-smi less driver reserve"),
    GPU("RTX-3090", _gib(23.69), 936e9, ("3090", "rtx3090", "geforce rtx 3090"),
        "approx: 24576 MiB less driver reserve"),
    GPU("RTX-4090", _gib(23.58), 1008e9, ("4090", "rtx4090", "geforce rtx 4090"),
        "vLLM log (24 GB card): total_gpu_memory 23.58GiB"),
    GPU("MI300X", _gib(191.98), 5.3e12, ("mi300", "amd instinct mi300x"), "approx: 192 GiB HBM3 less reserve"),
)

DEFAULT_GPU = "H100-80GB-SXM"


def _key(text: str) -> str:
    return re.sub(r"[\s_]+", "-", text.strip().lower())


def find_gpu(name: str) -> GPU:
    key = _key(name)
    for gpu in CATALOG:
        if key == _key(gpu.name) or key in {_key(a) for a in gpu.aliases}:
            return gpu
    names = ", ".join(g.name for g in CATALOG)
    raise FieldError("gpu", f"{quote(name)} is not in the GPU catalog; use one of {names} (see `kvplan gpus`), or "
                            f"give the GPU memory and the KV budget directly.")


def match_device_name(device_name: str) -> Optional[GPU]:
    """Map an NVML/torch device name ("NVIDIA H100 80GB HBM3") to a catalog entry."""
    text = device_name.lower()
    rules = (("h100", "pcie", "H100-80GB-PCIe"), ("h100", "", "H100-80GB-SXM"), ("h200", "", "H200"),
             ("b200", "", "B200"), ("a100", "40gb", "A100-40GB"), ("a100", "", "A100-80GB"),
             ("l40s", "", "L40S"), ("a10g", "", "A10G"), ("rtx 3090", "", "RTX-3090"),
             ("rtx 4090", "", "RTX-4090"), ("mi300x", "", "MI300X"))
    for first, second, name in rules:
        if first in text and second in text:
            return find_gpu(name)
    if re.search(r"\bl4\b", text):
        return find_gpu("L4")
    return None
