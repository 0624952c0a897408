"""The GPU catalog: the memory the CUDA runtime reports (torch.cuda.get_device_properties().total_memory,
vLLM's "total_gpu_memory"; less than the marketing figure because the driver keeps some) and the HBM/GDDR
bandwidth from the vendor's datasheet. `--gpu` takes any alias, case-insensitively. The GPUs of one node (NODE_GPUS)
are the catalog's judgement of the usual host; `--gpus-per-node` puts the user's in their place (with_node_gpus)."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Callable, Optional

from ..errors import FieldError, quote
from ..memo import per_object
from ..units import require_positive

GiB = 2**30
# Decode streams memory at what a device-to-device copy reaches, not at the datasheet figure: measured here
# 2.97-2.99 of 3.35 TB/s on an H100 SXM and 4.3 of 4.8 TB/s on an H200 (both 0.89-0.90). The roofline uses
# datasheet x this fraction so that `kvplan verify` compares against an achievable number.
ACHIEVABLE_FRACTION = 0.89


DEVICE_NAME_PREFIXES = ("NVIDIA ", "Tesla ", "AMD ")  # aliases that are a driver's own device names


@dataclass(frozen=True)
class GPU:
    name: str
    memory_bytes: int  # as the runtime reports it
    bandwidth: float  # bytes/s, datasheet
    aliases: tuple = ()
    memory_source: str = ""
    detected: bool = False
    # CUDA compute capability (major, minor); () for AMD GPUs and GPUs outside the catalog. vLLM picks attention
    # backends by it (platforms/cuda.py _get_backend_priorities: sparse MLA on SM10x, engines/vllm_kv_dtype.py)
    compute_capability: tuple = ()
    # the GPUs of one node (NODE_GPUS; 8 for a GPU outside the catalog): the largest TP degree a remedy proposes
    # (plan.fitting_remedies); the user's --gpus-per-node / gpus_per_node replaces it (with_node_gpus)
    node_gpus: int = 8
    node_source: str = "catalog"  # where node_gpus comes from: "catalog" (NODE_GPUS, or 8) or "gpus_per_node"

    @property
    def node_given(self) -> bool:
        """Whether node_gpus is the user's word for their host (--gpus-per-node), not the catalog's guess at one."""
        return self.node_source != "catalog"

    def node_setting(self, spell: Callable[[str], str] = str) -> str:
        """The user's node as they gave it, in their words ("--gpus-per-node 4", "gpus_per_node 4"); "" for the
        catalog's."""
        return f"{spell(self.node_source)} {self.node_gpus}" if self.node_given else ""

    def node_words(self, spell: Callable[[str], str] = str, counted: bool = False) -> str:
        """One node in words: the user's ("one node of --gpus-per-node 4": a host, whatever the catalog calls the
        GPU's span), else the catalog's span ("one H100-80GB-SXM node", "one GB200 NVL72 domain"; `counted` adds
        its GPUs, which the user's words already say: "one H100-80GB-SXM node (8 GPUs)")."""
        if self.node_given:
            return f"one node of {self.node_setting(spell)}"
        count = f" ({self.node_gpus} GPUs)" if counted else ""
        return f"one {NODE_NAMES.get(self.name, f'{self.name} node')}{count}"

    @cached_property  # asked for every budget term that tells ROCm from CUDA
    def device_names(self) -> tuple:
        """The names nvidia-smi / ROCm print for this GPU (kept in the catalog's aliases)."""
        return tuple(a for a in self.aliases if a.startswith(DEVICE_NAME_PREFIXES))

    @property
    def decode_bandwidth(self) -> float:
        """Bytes/s the decode roofline divides by (see ACHIEVABLE_FRACTION)."""
        return self.bandwidth * ACHIEVABLE_FRACTION


def device_name(gpu) -> str:
    """The GPU as vLLM names it in its messages (platforms/cuda.py get_device_name: NVML's name, "Tesla T4",
    "NVIDIA H100 80GB HBM3"): the catalog's first driver name for it, else kvplan's name; "" for none."""
    if gpu is None:
        return ""
    names = getattr(gpu, "device_names", ())
    return names[0] if names else getattr(gpu, "name", "")


def _gib(value: float) -> int:
    return int(value * GiB)


# memory_source says where each runtime-reported figure comes from: our own measurement on the device
# (2026-11-22), a published vLLM log line, or the nvidia-smi total less the driver's reserve (marked "approx":
# the H100 keeps 0.47 GiB of 79.65, the H200 0.60 GiB of 140.4). Aliases hold every name nvidia-smi / torch
# print for the card ("NVIDIA H100 80GB HBM3"; RunPod's GPU type ids are those names, search index id
# 49336059078) and the short names people type. Bandwidths are the vendors' datasheet figures.
_ENTRIES = (
    GPU("A100-40GB", _gib(39.39), 1.555e12, ("a100-40g", "a100-40gb", "a100-sxm4-40gb", "a100 40gb",
                                             "NVIDIA A100-SXM4-40GB", "NVIDIA A100-PCIE-40GB", "a100-pcie-40gb"),
        "vLLM logs: total_gpu_memory 39.39GiB"),
    GPU("A100-80GB", _gib(79.15), 2.039e12, ("a100-80g", "a100-sxm4-80gb", "a100 80gb", "a100-80gb-sxm",
                                             "NVIDIA A100-SXM4-80GB"),
        "vLLM logs: total_gpu_memory 79.15GiB"),
    GPU("A100-80GB-PCIe", _gib(79.15), 1.935e12, ("a100-80gb-pcie", "a100 80gb pcie", "NVIDIA A100 80GB PCIe"),
        "as A100-80GB (same 80 GB HBM2e); bandwidth: NVIDIA A100 datasheet, PCIe 1,935 GB/s"),
    GPU("A800-80GB", _gib(79.15), 2.039e12, ("a800-80g", "a800-sxm4-80gb", "a800 80gb", "a800-80gb-sxm", "a800-sxm",
                                             "NVIDIA A800-SXM4-80GB"),
        "as A100-80GB (the same 80 GB HBM2e: nvidia-smi 81920 MiB on both, search index ids 36921727690, "
        "34116126722; vLLM logs on the A100: total_gpu_memory 79.15GiB); 2,039 GB/s: NVIDIA A800 SXM4 80GB "
        "specification (the A100 SXM's)"),
    GPU("A800-80GB-PCIe", _gib(79.15), 1.935e12, ("a800-80gb-pcie", "a800 80gb pcie", "a800-pcie",
                                                  "NVIDIA A800 80GB PCIe", "NVIDIA A800 80GB PCIe LC"),
        "as A100-80GB-PCIe (81920 MiB nvidia-smi, search index ids 40541863978, 27427098995); 1,935 GB/s: NVIDIA "
        "A800 PCIe 80GB specification (the A100 PCIe's)"),
    GPU("A800-40GB", _gib(39.39), 1.555e12, ("a800-40gb", "a800 40gb", "a800-40gb-active", "a800 40gb active",
                                             "a800-40gb-pcie", "a800 40gb pcie", "NVIDIA A800 40GB Active"),
        "as A100-40GB (40960 MiB nvidia-smi on both, search index id 40760344465; vLLM logs on the A100: "
        "total_gpu_memory 39.39GiB); 1,555 GB/s: NVIDIA A800 40GB Active specification (the A100 40GB's)"),
    GPU("H100-80GB-SXM", 85_017_493_504, 3.35e12,
        ("h100", "h100-80gb", "h100-sxm", "h100-sxm5", "h100 80gb hbm3", "h100-80gb-hbm3", "NVIDIA H100 80GB HBM3"),
        "measured: torch total_memory on an H100 80GB HBM3, driver 580 (vLLM PR #10511 logged 79.22 GiB)"),
    GPU("H100-80GB-PCIe", _gib(79.19), 2.0e12, ("h100-pcie", "h100 pcie", "h100-80gb-pcie", "NVIDIA H100 PCIe"),
        "approx: 81559 MiB nvidia-smi less driver reserve"),
    GPU("H100-NVL", _gib(93.1), 3.9e12, ("h100 nvl", "h100-94gb", "NVIDIA H100 NVL"),
        "approx: 95830 MiB nvidia-smi (NVIDIA/gpu-admin-tools issue #4) less driver reserve; 3.9 TB/s: NVIDIA "
        "H100 datasheet (H100 NVL)"),
    GPU("GH200", _gib(95.0), 4.0e12, ("gh200-96gb", "gh200 480gb", "NVIDIA GH200 480GB"),
        "approx: 96 GB HBM3 (the '480GB' in nvidia-smi's name counts the Grace LPDDR5X) less driver reserve; "
        "4.0 TB/s: NVIDIA GH200 datasheet"),
    GPU("H20", _gib(95.0), 4.0e12, ("h20-96gb", "NVIDIA H20"),
        "approx: 96 GB HBM3 less driver reserve; 4.0 TB/s: NVIDIA H20 specification"),
    GPU("H800", 85_017_493_504, 3.35e12, ("h800-80gb", "h800-sxm", "h800-sxm5", "h800 80gb", "NVIDIA H800"),
        "as H100-80GB-SXM (the same 80 GB HBM3: nvidia-smi 81559 MiB on both, public nvidia-smi outputs of an "
        "H800, search index ids 41507333121, 57382739794): torch total_memory measured on an H100; 3.35 TB/s: "
        "the H100 SXM's HBM3, which the H800 keeps (NVIDIA H800 specification)"),
    GPU("H800-PCIe", _gib(79.19), 2.0e12, ("h800-pcie", "h800 pcie", "h800-80gb-pcie", "NVIDIA H800 PCIe"),
        "approx: 81559 MiB nvidia-smi (search index id 69706101187) less driver reserve, as H100-80GB-PCIe; "
        "2.0 TB/s: the H100 PCIe's 80 GB HBM2e, which the H800 PCIe keeps"),
    GPU("H200", 150_109_880_320, 4.8e12, ("h200-141gb", "h200-sxm", "h200 141gb", "NVIDIA H200", "h200 nvl",
                                          "NVIDIA H200 NVL"),
        "measured: torch total_memory on an H200 (nvidia-smi 143771 MiB), driver 580"),
    GPU("B200", _gib(178.35), 8.0e12, ("b200-180gb", "b200-sxm", "NVIDIA B200"),
        "approx: 183359 MiB nvidia-smi less reserve"),
    GPU("B300", _gib(267.88), 8.0e12, ("b300-288gb", "b300-sxm", "b300 sxm6", "NVIDIA B300 SXM6 AC"),
        "approx: 275040 MiB nvidia-smi (public nvidia-smi outputs, search index ids 51978882626, 63125688786) less "
        "the B200's 0.71 GiB reserve; 8 TB/s: HGX B300 specifications as published ('up to 8 TB/s per GPU')"),
    GPU("GB200", _gib(184.32), 8.0e12, ("gb200-186gb", "gb200 nvl72", "NVIDIA GB200"),
        "approx: 189471 MiB nvidia-smi (public nvidia-smi outputs, search index ids 57445483512, 51864327511) less "
        "the B200's 0.71 GiB reserve; 8 TB/s: GB200 NVL72's 576 TB/s HBM bandwidth over its 72 GPUs"),
    GPU("L40S", _gib(44.39), 864e9, ("l40s-48gb", "NVIDIA L40S"), "approx: 46068 MiB nvidia-smi less driver reserve"),
    GPU("L40", _gib(44.39), 864e9, ("l40-48gb", "NVIDIA L40"),
        "approx: 46068 MiB nvidia-smi (as the L40S, same 48 GB GDDR6) less driver reserve; 864 GB/s: NVIDIA L40 "
        "datasheet"),
    GPU("A40", _gib(44.39), 696e9, ("a40-48gb", "NVIDIA A40"),
        "approx: 46068 MiB nvidia-smi (as the L40, same 48 GB GDDR6) less driver reserve; 696 GB/s: NVIDIA A40 "
        "datasheet"),
    GPU("RTX-6000-Ada", _gib(47.4), 960e9, ("rtx 6000 ada", "rtx6000-ada", "rtx 6000 ada generation",
                                            "NVIDIA RTX 6000 Ada Generation"),
        "approx: 49140 MiB nvidia-smi (search index id 27465955083) less driver reserve; 960 GB/s: NVIDIA RTX "
        "6000 Ada datasheet"),
    GPU("RTX-PRO-6000-Server", _gib(94.97), 1.597e12,
        ("rtx-pro-6000-server", "rtx pro 6000 server", "rtx pro 6000 server edition", "rtx-pro-6000-se",
         "rtx pro 6000 blackwell server edition", "NVIDIA RTX PRO 6000 Blackwell Server Edition"),
        "as RTX-PRO-6000-Workstation (the same 96 GB GDDR7: nvidia-smi 97887 MiB on both, search index ids "
        "67160152436, 70226878406; torch's 94.97 GiB total capacity is the Max-Q Workstation's); 1,597 GB/s: "
        "NVIDIA RTX PRO 6000 Blackwell Server Edition datasheet"),
    GPU("RTX-PRO-6000-Workstation", _gib(94.97), 1.792e12,
        ("rtx-pro-6000-workstation", "rtx pro 6000 workstation", "rtx pro 6000 workstation edition",
         "rtx-pro-6000-ws", "rtx pro 6000 max-q", "rtx-pro-6000-max-q",
         "rtx pro 6000 blackwell workstation edition", "NVIDIA RTX PRO 6000 Blackwell Workstation Edition",
         "NVIDIA RTX PRO 6000 Blackwell Max-Q Workstation Edition"),
        "torch total capacity 94.97 GiB (a vLLM 0.15.1 OOM message on the Max-Q Workstation Edition, search index "
        "id 29156490496; nvidia-smi 97887 MiB, ids 54960637267, 60574094568); 1,792 GB/s: NVIDIA RTX PRO 6000 "
        "Blackwell Workstation Edition datasheet (the Max-Q's memory too)"),
    GPU("L4", _gib(22.05), 300e9, ("l4-24gb", "NVIDIA L4"), "approx: 23034 MiB nvidia-smi less driver reserve"),
    GPU("A10G", _gib(22.05), 600e9, ("a10g-24gb", "NVIDIA A10G"), "approx: 23028 MiB nvidia-smi less driver reserve"),
    GPU("A10", _gib(22.05), 600e9, ("a10-24gb", "NVIDIA A10"),
        "approx: 23028 MiB nvidia-smi (as the A10G, same 24 GB GDDR6) less driver reserve; 600 GB/s: NVIDIA A10 "
        "datasheet"),
    GPU("T4", _gib(14.58), 320e9, ("t4-16gb", "Tesla T4", "nvidia t4"),
        "approx: 15360 MiB nvidia-smi (public nvidia-smi outputs; some drivers show 15109 MiB) less driver "
        "reserve; 320 GB/s: NVIDIA T4 datasheet"),
    GPU("RTX-3090", _gib(23.69), 936e9, ("3090", "rtx3090", "geforce rtx 3090", "NVIDIA GeForce RTX 3090"),
        "approx: 24576 MiB less driver reserve"),
    GPU("RTX-4090", _gib(23.58), 1008e9, ("4090", "rtx4090", "geforce rtx 4090", "NVIDIA GeForce RTX 4090"),
        "vLLM log (24 GB card): total_gpu_memory 23.58GiB"),
    GPU("RTX-5090", _gib(31.36), 1792e9, ("5090", "rtx5090", "rtx 5090", "geforce rtx 5090", "NVIDIA GeForce RTX 5090"),
        "torch total capacity 31.36 GiB (an OOM message under vLLM 0.25.1, nvidia-smi 32607 MiB: search index id "
        "60102485733); 1,792 GB/s: NVIDIA GeForce RTX 5090 specification"),
    GPU("MI250X", _gib(63.98), 1.6e12, ("mi250x-gcd", "mi250", "AMD Instinct MI250X", "AMD Instinct MI250X/MI250",
                                          "AMD Instinct MI250"),
        "approx: one of the card's two GCDs (ROCm and vLLM see each as a GPU): 64 GB HBM2e and half the card's "
        "3.2 TB/s (AMD MI250X datasheet)"),
    GPU("MI300X", _gib(191.98), 5.3e12, ("mi300", "AMD Instinct MI300X", "AMD Instinct MI300X OAM"),
        "approx: 192 GiB HBM3 less reserve"),
    GPU("MI325X", _gib(255.98), 6.0e12, ("mi325", "AMD Instinct MI325X", "AMD Instinct MI325X OAM"),
        "approx: 256 GB HBM3E less reserve; 6 TB/s: AMD MI325X datasheet"),
    GPU("MI355X", _gib(287.98), 8.0e12, ("mi355", "AMD Instinct MI355X", "AMD Instinct MI355X OAM"),
        "torch total capacity 287.98 GiB (HIP OOM messages on MI355X nodes, search index id 60904491974); 8 TB/s: "
        "AMD MI355X datasheet"),
)

# CUDA compute capabilities, from NVIDIA's table "CUDA GPUs - Compute Capability" (developer.nvidia.com/cuda-gpus):
# Ampere datacenter 8.0, Ampere GDDR6 8.6, Ada 8.9, Hopper 9.0, Blackwell datacenter 10.0, Blackwell RTX (GB202:
# RTX PRO 6000, GeForce RTX 5090) 12.0, Turing 7.5. The China SKUs (A800, H800) are their A100 / H100 dies.
COMPUTE_CAPABILITIES = {
    "A100-40GB": (8, 0), "A100-80GB": (8, 0), "A100-80GB-PCIe": (8, 0), "A800-80GB": (8, 0), "A800-80GB-PCIe": (8, 0),
    "A800-40GB": (8, 0), "H100-80GB-SXM": (9, 0), "H100-80GB-PCIe": (9, 0), "H100-NVL": (9, 0), "GH200": (9, 0),
    "H20": (9, 0), "H800": (9, 0), "H800-PCIe": (9, 0), "H200": (9, 0), "B200": (10, 0),
    "GB200": (10, 0), "B300": (10, 3),  # B300: sm_103 (torch reports cc=(10, 3): search index id 53869921643)
    "L40S": (8, 9), "L40": (8, 9), "RTX-6000-Ada": (8, 9), "L4": (8, 9), "A10G": (8, 6), "A10": (8, 6), "A40": (8, 6),
    "T4": (7, 5),
    "RTX-3090": (8, 6), "RTX-4090": (8, 9), "RTX-5090": (12, 0), "RTX-PRO-6000-Server": (12, 0),
    "RTX-PRO-6000-Workstation": (12, 0),
}
# The GPUs of one node, by one rule: the GPUs one tensor-parallel group can span over one fast fabric (NVLink, or one
# host's PCIe). A TP group all-reduces twice a layer, so vLLM keeps it within a node and puts pipeline stages across
# nodes (vLLM 0.32.0 docs/serving/parallelism_scaling.md:8-9: tp up to a node's GPUs, then pp = the number of nodes);
# kvplan's remedies never propose a larger TP degree. 8 unless listed: HGX / DGX boards (A100, A800, H100, H800, H200,
# H20, B200, B300), AMD's 8-OAM platforms (MI300X, MI325X, MI355X; a node of 4 MI250X is 8 GCDs, each one GPU to
# ROCm), the 8-slot PCIe servers the datacenter and workstation PCIe cards ship in (L40S, L40, A40, L4, A10G, A10, T4,
# RTX 6000 Ada, RTX PRO 6000, A800 PCIe / 40GB, H100 PCIe / NVL, H800 PCIe), and the 8-card GeForce servers (RTX-3090,
# RTX-4090, RTX-5090) rented by the machine: one host's PCIe, NCCL through host memory.
NODE_GPUS = {
    # one superchip a GPU; the common multi-GPU hosts (quad GH200 nodes: HPE Cray EX254n, as in CSCS Alps) link
    # their four Hoppers all-to-all over NVLink; the NVLink-switch systems (GH200 NVL32, DGX GH200) are rare builds
    "GH200": 4,
    # an NVL72 rack is one NVLink domain of 72 GPUs (18 trays of 4 on their own hosts): vLLM starts TP past a tray as
    # a multi-node job, but its all-reduce crosses NVLink, not the network
    "GB200": 72,
}
# how a remedy names that span where it is not one host (GPU.node_words: "one GB200 NVL72 domain")
NODE_NAMES = {"GB200": "GB200 NVL72 domain"}
CATALOG = tuple(replace(gpu, compute_capability=COMPUTE_CAPABILITIES.get(gpu.name, ()),
                        node_gpus=NODE_GPUS.get(gpu.name, GPU.node_gpus)) for gpu in _ENTRIES)
# The user's own node (--gpus-per-node, the API's and a deployments file's gpus_per_node) in place of NODE_GPUS: a
# 4 x L40S or 2 x A100 PCIe server, a 16-GPU HGX-2. At most this many: the search tries every TP degree up to it, and
# the largest NVLink domain sold is 576 GPUs (NVL576).
MAX_NODE_GPUS = 1024


def node_gpus(value) -> int:
    """--gpus-per-node's value: a positive whole number of GPUs, at most MAX_NODE_GPUS."""
    return require_positive("gpus_per_node", value, maximum=MAX_NODE_GPUS)


def with_node_gpus(gpu: GPU, gpus_per_node: Optional[int]) -> GPU:
    """`gpu` with the user's node in place of the catalog's (None: the catalog's, unchanged)."""
    if gpus_per_node is None:
        return gpu
    return replace(gpu, node_gpus=node_gpus(gpus_per_node), node_source="gpus_per_node")

# Names that fit several catalog entries: --gpu lists the choices instead of guessing. Without the maker's name
# (find_gpu reads "NVIDIA A100" as "a100", VENDOR).
AMBIGUOUS = {
    "a100": ("A100-40GB", "A100-80GB", "A100-80GB-PCIe"),
    "a800": ("A800-40GB", "A800-80GB", "A800-80GB-PCIe"),
    # one memory, two bandwidths (the Server Edition's 1,597 GB/s, the Workstation's 1,792)
    "rtx pro 6000": ("RTX-PRO-6000-Server", "RTX-PRO-6000-Workstation"),
    "rtx pro 6000 blackwell": ("RTX-PRO-6000-Server", "RTX-PRO-6000-Workstation"),
    "rtx 6000": ("RTX-6000-Ada", "Quadro RTX 6000 (Turing, not in the catalog: give gpu_memory with a GPU of similar "
                 "bandwidth)"),
}

DEFAULT_GPU = "H100-80GB-SXM"
VENDOR = re.compile(r"^(nvidia|amd(-instinct)?)-")  # as _key writes it


def _key(text: str) -> str:
    return re.sub(r"[\s_]+", "-", text.strip().lower())


def _names() -> dict:
    """name or alias (as _key writes it) -> GPU, worked out once per catalog (a remedy search looks the GPU up for
    every release it plans)."""
    return per_object(_NAMES, 4, CATALOG, lambda catalog: {
        key: gpu for gpu in catalog for key in {_key(gpu.name), *(_key(a) for a in gpu.aliases)}})


_NAMES: dict = {}


def find_gpu(name: str) -> GPU:
    """The catalog entry `name` names (its name or any alias, case- and space-insensitive)."""
    key = _key(str(name))
    bare = VENDOR.sub("", key)  # the maker's name before the model's: "NVIDIA H100" is what "H100" is
    names = _names()
    for spelled in (key, bare):
        if spelled in names:
            return names[spelled]
    loose = _by_parts(bare, names)
    if loose is not None:
        return loose
    choices = _choices(bare)
    counted = None if choices else _counted(key)
    if counted:
        count, named = counted
        raise FieldError("gpu", f"{quote(name)} names {count} GPUs; it takes one GPU's name ({named}), and the GPUs a "
                                f"deployment uses are tp x pp (x dp): for {count} GPUs of one node, tp {count}.",
                         names=("tp", "pp", "dp", "gpu_memory"))
    if choices:
        listed = " or ".join(choices)
        raise FieldError("gpu", f"{quote(name)} could mean {listed}; name one of them (see `kvplan gpus`).",
                         names=("gpu_memory",))
    import difflib

    # a hint of the model the name gives (h100-sxm5-80gb: an H100, not the A100-SXM4-80GB one letter away)
    # names compared without their maker's (a bare "NVIDIA" is like no model, not like "nvidia-t4")
    unmade = {VENDOR.sub("", spelled): gpu for spelled, gpu in names.items()}
    model = next((part for part in bare.split("-") if re.search(r"[0-9]", part)), None)
    same_model = [spelled for spelled in unmade if model in spelled.split("-")] if model else []
    close = difflib.get_close_matches(bare, same_model or list(unmade), n=1, cutoff=0.6 if same_model else 0.75)
    hint = f" (did you mean {unmade[close[0]].name}?)" if close else ""
    catalog = ", ".join(g.name for g in CATALOG)
    raise FieldError("gpu", f"{quote(name)} is not in the GPU catalog{hint}; use one of {catalog} or a name "
                            f"nvidia-smi prints (see `kvplan gpus`), or give the GPU memory and the KV budget "
                            f"directly.")


FORM_FACTOR = re.compile(r"sxm\d?")  # a cloud's SKU spelling: H100-SXM5-80GB, H200-SXM-141GB
PCIE_CARD = re.compile(r"pcie|nvl", re.I)  # entries an SXM name is not (H100-NVL is a PCIe card)
NOMINAL_MEMORY = re.compile(r"(?P<gb>\d+)gb?")  # the memory a name advertises: 80GB, 141GB, 24G


def _by_parts(bare: str, names: dict) -> Optional[GPU]:
    """The one catalog entry a name spelled in another order, or with a form factor (sxm5) or an advertised memory
    (141gb) the catalog's names leave out, stands for: its other parts those of a catalog name, an SXM name no PCIe
    card's, and its memory, where it names one, within 10% of the entry's in GiB (H100-SXM5-80GB, H100-PCIe-80GB,
    RTX-4090-24GB; not H100-SXM5-94GB). None where no name, or more than one entry, fits."""
    parts = bare.split("-")
    memory = [int(m["gb"]) for part in parts if (m := NOMINAL_MEMORY.fullmatch(part))]

    def model(spelled: str) -> frozenset:
        return frozenset(p for p in VENDOR.sub("", spelled).split("-")
                         if not FORM_FACTOR.fullmatch(p) and not NOMINAL_MEMORY.fullmatch(p))

    asked, socketed = model(bare), any(FORM_FACTOR.fullmatch(part) for part in parts)
    fits = {gpu.name: gpu for spelled, gpu in names.items() if asked and model(spelled) == asked
            and all(abs(gpu.memory_bytes / 2**30 - gb) <= 0.1 * gb for gb in memory)
            and not (socketed and PCIE_CARD.search(gpu.name))}
    return next(iter(fits.values())) if len(fits) == 1 else None


COUNTED = (re.compile(r"(?P<count>\d+)-?[x×*]-?(?P<gpu>.+)"), re.compile(r"(?P<gpu>.+?)-?[x×*:]-?(?P<count>\d+)"))


def _choices(bare: str) -> tuple:
    """The catalog names a name that could mean several GPUs (AMBIGUOUS) stands for; () for any other name."""
    return AMBIGUOUS.get(bare.replace("-", " ")) or AMBIGUOUS.get(bare) or ()


def _counted(key: str) -> Optional[tuple]:
    """(count, the catalog name or names) where a name (as _key writes it) is a count of GPUs, as cluster specs
    write them (8xH100, 8 x H100, H100:8): a GPU's name is one GPU, the count is the parallel degrees'."""
    for pattern in COUNTED:
        match = pattern.fullmatch(key)
        if match and int(match["count"]) > 0:
            choices = _choices(VENDOR.sub("", match["gpu"]))
            if choices:
                return int(match["count"]), " or ".join(choices)
            try:
                return int(match["count"]), find_gpu(match["gpu"]).name
            except FieldError:
                continue
    return None


def match_device_name(device_name: str) -> Optional[GPU]:
    """Map an NVML/torch device name ("NVIDIA H100 80GB HBM3") to a catalog entry: its exact name first, then
    the family rules for names the catalog does not list."""
    exact = _names().get(_key(device_name))
    if exact is not None:
        return exact
    text = device_name.lower()
    if "laptop" in text:  # a laptop GPU is another card than the desktop one it is named after (less memory)
        return None
    rules = (("h100", "nvl", "H100-NVL"), ("h100", "pcie", "H100-80GB-PCIe"), ("h100", "", "H100-80GB-SXM"),
             ("h800", "pcie", "H800-PCIe"), ("h800", "", "H800"),
             ("gh200", "", "GH200"), ("h200", "", "H200"), ("h20", "", "H20"), ("gb200", "", "GB200"),
             ("b200", "", "B200"), ("b300", "", "B300"),
             ("a100", "40gb", "A100-40GB"), ("a100", "pcie", "A100-80GB-PCIe"), ("a100", "", "A100-80GB"),
             ("a800", "40gb", "A800-40GB"), ("a800", "pcie", "A800-80GB-PCIe"), ("a800", "", "A800-80GB"),
             ("l40s", "", "L40S"), ("l40", "", "L40"), ("a10g", "", "A10G"), ("a40", "", "A40"),
             ("rtx 6000 ada", "", "RTX-6000-Ada"),
             # "rtx pro 6000 blackwell", not "rtx pro 6000": the RTX PRO 6000D (84 GB) is another card
             ("rtx pro 6000 blackwell", "server", "RTX-PRO-6000-Server"),
             ("rtx pro 6000 blackwell", "workstation", "RTX-PRO-6000-Workstation"),
             ("rtx 3090", "", "RTX-3090"), ("rtx 4090", "", "RTX-4090"), ("rtx 5090", "", "RTX-5090"),
             ("mi300x", "", "MI300X"), ("mi325x", "", "MI325X"), ("mi355x", "", "MI355X"), ("mi250", "", "MI250X"),
             ("t4", "tesla", "T4"))
    for first, second, name in rules:
        if first in text and second in text:
            return find_gpu(name)
    if re.search(r"\bl4\b", text):
        return find_gpu("L4")
    if re.search(r"\ba10\b", text):
        return find_gpu("A10")
    return None


# -- Speed: what the decode and prefill estimates need of a GPU (kvplan/plan/speed.py, prefill.py) ---------------


# Streaming multiprocessors (AMD: compute units) per device, from the vendors' whitepapers and datasheets: what an
# engine sizes per-SM buffers by (vLLM's Triton top-k/top-p keeps one vocabulary row a program, up to one a SM).
# The China SKUs keep their dies' SMs: A800 108 (the A100's), H800 132 / H800 PCIe 114 (the H100 SXM's / PCIe's;
# torch's multi_processor_count 114 on an H800 PCIe, search index id 71272164265); GB202: RTX PRO 6000 188 of 192,
# RTX 5090 170 (NVIDIA RTX Blackwell whitepaper); A40 84 (its
# datasheet's 10,752 CUDA cores, 128 an SM); MI355X 256 CUs (8 XCDs x 32, AMD CDNA 4).
SM_COUNTS = {"A100-40GB": 108, "A100-80GB": 108, "A100-80GB-PCIe": 108, "A800-80GB": 108, "A800-80GB-PCIe": 108,
             "A800-40GB": 108, "H100-80GB-SXM": 132, "H100-80GB-PCIe": 114, "H100-NVL": 132, "GH200": 132, "H20": 78,
             "H800": 132, "H800-PCIe": 114, "H200": 132, "B200": 148, "L40S": 142, "L40": 142, "RTX-6000-Ada": 142,
             "RTX-PRO-6000-Server": 188, "RTX-PRO-6000-Workstation": 188, "L4": 58, "A10G": 80, "A10": 72, "A40": 84,
             "T4": 40, "RTX-3090": 82, "RTX-4090": 128, "RTX-5090": 170, "MI250X": 110, "MI300X": 304, "MI325X": 304,
             "MI355X": 256}
DEFAULT_SM_COUNT = 132  # a GPU outside the catalog: an H100's / H200's


def sm_count(gpu: GPU) -> int:
    return SM_COUNTS.get(gpu.name, DEFAULT_SM_COUNT)


@dataclass(frozen=True)
class Compute:
    """Dense tensor-core peaks (no 2:4 sparsity) by the precision the matmuls run in, and the link an
    all-reduce crosses (bytes/s each way), with their datasheet sources. fp8 is None where the GPU has no fp8
    tensor cores (vLLM then runs fp8 weights as W8A16: at the 16-bit peak)."""

    bf16: float
    fp8: Optional[float]
    fp32: float  # plain FP32 (vLLM's --dtype float32 matmuls; no TF32)
    link: float
    architecture: str
    source: str
    fp4: Optional[float] = None  # NVFP4 tensor cores (Blackwell); None elsewhere

    def peak(self, stored: str) -> float:
        """FLOP/s of a matmul whose weights are stored as `stored`: fp8 (W8A8) on fp8 tensor cores where there are
        any; NVFP4 W4A4 on fp4 tensor cores where there are any, else as vLLM 0.32 runs it without them (Marlin
        weight-only FP4, kernels/linear/nvfp4/marlin.py: 16-bit matmuls); 4-bit and other packed formats, W8A16
        and int8 W8A8 (the catalog holds no int8 peak: an upper bound on its time) at the 16-bit peak."""
        if (stored == "fp8" or stored.startswith("fp8-w8a8")) and self.fp8:
            return self.fp8
        if stored == "nvfp4" and self.fp4:
            return self.fp4
        return self.fp32 if stored == "fp32" else self.bf16


_HALVED = "datasheet figures with sparsity, halved"
COMPUTE = {
    "A100-40GB": Compute(312e12, None, 19.5e12, 300e9, "ampere",
                         "NVIDIA A100 datasheet: BF16 312 TFLOPS dense, FP32 19.5; NVLink 600 GB/s (both ways)"),
    "A100-80GB": Compute(312e12, None, 19.5e12, 300e9, "ampere",
                         "NVIDIA A100 datasheet: BF16 312 TFLOPS dense, FP32 19.5; NVLink 600 GB/s (both ways)"),
    "H100-80GB-SXM": Compute(989.4e12, 1978.9e12, 66.9e12, 450e9, "hopper",
                             f"NVIDIA H100 SXM datasheet ({_HALVED}): BF16 989.4, FP8 1978.9 TFLOPS, FP32 66.9; "
                             f"NVLink 900 GB/s (both ways)"),
    "H100-80GB-PCIe": Compute(756.5e12, 1513e12, 51.2e12, 64e9, "hopper",
                              f"NVIDIA H100 PCIe datasheet ({_HALVED}): BF16 756.5, FP8 1513 TFLOPS, FP32 51.2; "
                              f"PCIe Gen5 x16 128 GB/s (both ways)"),
    "H200": Compute(989.4e12, 1978.9e12, 66.9e12, 450e9, "hopper",
                    f"NVIDIA H200 SXM datasheet ({_HALVED}): BF16 989.4, FP8 1978.9 TFLOPS, FP32 66.9; "
                    f"NVLink 900 GB/s (both ways)"),
    "B200": Compute(2250e12, 4500e12, 75e12, 900e9, "blackwell",
                    f"NVIDIA HGX B200 datasheet per GPU ({_HALVED}): BF16 2.25, FP8 4.5, FP4 9 PFLOPS, FP32 75 TFLOPS; "
                    f"NVLink 1.8 TB/s (both ways)", fp4=9000e12),
    "L40S": Compute(362.05e12, 733e12, 91.6e12, 32e9, "ada",
                    f"NVIDIA L40S datasheet ({_HALVED}): BF16 362.05, FP8 733 TFLOPS, FP32 91.6; PCIe Gen4 x16"),
    "L4": Compute(121e12, 242.5e12, 30.3e12, 32e9, "ada",
                  f"NVIDIA L4 datasheet ({_HALVED}): BF16 121, FP8 242.5 TFLOPS, FP32 30.3; PCIe Gen4 x16"),
    "A10G": Compute(125e12, None, 31.2e12, 32e9, "ampere",
                    f"approx: NVIDIA A10 datasheet ({_HALVED}): BF16 125, FP32 31.2 TFLOPS (the A10G runs lower "
                    f"clocks); PCIe Gen4 x16"),
    "A40": Compute(149.7e12, None, 37.4e12, 32e9, "ampere",
                   f"NVIDIA A40 datasheet ({_HALVED}): BF16 149.7, FP32 37.4 TFLOPS; PCIe Gen4 x16"),
    "RTX-3090": Compute(71e12, None, 35.6e12, 32e9, "ampere",
                        "NVIDIA GA102 whitepaper: RTX 3090 FP16/BF16 tensor with FP32 accumulate 71 TFLOPS dense, "
                        "FP32 35.6; PCIe Gen4 x16"),
    "RTX-4090": Compute(165.2e12, 330.3e12, 82.6e12, 32e9, "ada",
                        "NVIDIA Ada whitepaper: RTX 4090 FP16/BF16 tensor (FP32 accumulate) 165.2, FP8 330.3 "
                        "TFLOPS dense, FP32 82.6; PCIe Gen4 x16"),
    "MI300X": Compute(1307.4e12, 2614.9e12, 163.4e12, 448e9, "cdna3",
                      "AMD Instinct MI300X datasheet: BF16 1307.4, FP8 2614.9 TFLOPS dense, FP32 163.4; Infinity "
                      "Fabric 896 GB/s (both ways)"),
    # the China SKUs: their dies' tensor cores, a slower NVLink (400 GB/s both ways)
    "H800": Compute(989.4e12, 1978.9e12, 66.9e12, 200e9, "hopper",
                    f"as H100 SXM (NVIDIA H100 SXM datasheet, {_HALVED}: BF16 989.4, FP8 1978.9 TFLOPS, FP32 66.9; the "
                    f"H800 keeps its tensor cores); NVLink 400 GB/s (both ways)"),
    "H800-PCIe": Compute(756.5e12, 1513e12, 51.2e12, 64e9, "hopper",
                         f"as H100 PCIe (NVIDIA H100 PCIe datasheet, {_HALVED}: BF16 756.5, FP8 1513 TFLOPS, FP32 "
                         f"51.2); PCIe Gen5 x16 128 GB/s (both ways)"),
    "A800-80GB": Compute(312e12, None, 19.5e12, 200e9, "ampere",
                         "as A100 (NVIDIA A100 datasheet: BF16 312 TFLOPS dense, FP32 19.5); NVLink 400 GB/s (both "
                         "ways)"),
    "A800-80GB-PCIe": Compute(312e12, None, 19.5e12, 32e9, "ampere",
                              "as A100 PCIe (NVIDIA A100 datasheet: BF16 312 TFLOPS dense, FP32 19.5); PCIe Gen4 x16"),
    "A800-40GB": Compute(312e12, None, 19.5e12, 32e9, "ampere",
                         "approx: as A100 (NVIDIA A100 datasheet: BF16 312 TFLOPS dense, FP32 19.5; the same GA100 "
                         "with 108 SMs); PCIe Gen4 x16"),
    # GB202 (compute capability 12.0): FP16/BF16 and FP8 tensor peaks with FP32 accumulate, as vLLM's matmuls run
    "RTX-5090": Compute(209.5e12, 419e12, 104.8e12, 64e9, "rtx-blackwell",
                        "NVIDIA RTX Blackwell whitepaper: RTX 5090 FP16/BF16 tensor (FP32 accumulate) 209.5, FP8 419, "
                        "FP4 1676 TFLOPS dense, FP32 104.8 (search index ids 70112329193, 52816121317); PCIe Gen5 x16 "
                        "128 GB/s (both ways)", fp4=1676e12),
    "RTX-PRO-6000-Workstation": Compute(503.8e12, 1007.6e12, 125e12, 64e9, "rtx-blackwell",
                                        "NVIDIA RTX PRO 6000 Blackwell Workstation datasheet: FP32 125 TFLOPS, 4000 AI "
                                        "TOPS (FP4 with sparsity: 2015 dense); BF16 503.8, FP8 1007.6 TFLOPS dense as "
                                        "published tables give (search index id 58213436869); PCIe Gen5 x16 "
                                        "128 GB/s (both ways)",
                                        fp4=2015e12),
    "RTX-PRO-6000-Server": Compute(503.8e12, 1007.6e12, 120e12, 64e9, "rtx-blackwell",
                                   "approx: the Workstation Edition's tensor peaks (the same GB202 with 188 SMs; the "
                                   "Server Edition datasheet gives FP32 120 TFLOPS and no tensor figures); PCIe Gen5 "
                                   "x16 128 GB/s (both ways)", fp4=2015e12),
    "MI355X": Compute(2516.6e12, 5033.2e12, 157.3e12, 537.6e9, "cdna4",
                      "AMD Instinct MI355X datasheet: BF16 2.5, FP8 5.0 PFLOPS dense (2516.6 / 5033.2 at 2.4 GHz, "
                      "search index id 58395098631), FP32 157.3 TFLOPS; Infinity Fabric 1,075 GB/s (both ways)"),
}


@dataclass(frozen=True)
class SpeedFit:
    """Constants of the engine estimate for one GPU, fitted offline by benchmarks/calibrate_decode.py on the
    public measurements in tests/data/ (leave-one-source-out errors alongside)."""

    layer_us: float  # fixed cost per decoder layer
    allreduce_us: float  # per all-reduce call at TP 2, x log2(TP); two calls per layer
    gemm_efficiency: float  # share of the dense peak decode matmuls reach (rows padded to the MMA tile)
    prefill_efficiency: float  # share of the dense peak prefill matmuls and attention reach
    decode_cases: int
    decode_loso_median: float
    decode_loso_max: float
    prefill_cases: int
    prefill_loso_median: float


# BEGIN FITTED CONSTANTS (written by `python benchmarks/calibrate_decode.py --write`; do not edit by hand)
FITTED = {
    "A100-80GB": SpeedFit(36.08, 11.93, 0.3731, 0.6636, 16, 0.0636, 0.1596, 10, 0.0646),
    "H100-80GB-SXM": SpeedFit(35.13, 11.49, 0.1930, 0.4467, 14, 0.0656, 0.5126, 4, 0.2920),
    "H200": SpeedFit(37.61, 11.64, 0.2166, 0.5445, 9, 0.0632, 0.1631, 0, 0.0000),
}
FIT_SOURCE = ("benchmarks/calibrate_decode.py on tests/data/decode-measurements.yaml and "
              "prefill-measurements.yaml, sources S01, S02, S04, S06, S10, S11, P01, P02")
# END FITTED CONSTANTS

# GPUs without measurements borrow the constants of the nearest measured architecture.
# GB202 (compute capability 12.0) runs warp-level mma.sync as Ampere and Ada do (no wgmma, no tcgen05): A100-80GB's.
NEAREST_MEASURED = {"ampere": "A100-80GB", "ada": "A100-80GB", "hopper": "H100-80GB-SXM", "blackwell": "H200",
                    "rtx-blackwell": "A100-80GB", "cdna3": "H200", "cdna4": "H200"}


@dataclass(frozen=True)
class SpeedProfile:
    """What the speed model uses for one GPU: its compute figures and fitted constants, and where they come
    from (`fallback` says so when they are another GPU's)."""

    gpu: str
    compute: Compute
    fit: SpeedFit
    fitted_on: str
    fallback: Optional[str]


def speed_profile(gpu: GPU) -> SpeedProfile:
    notes = []
    compute = COMPUTE.get(gpu.name)
    if compute is None:
        compute = COMPUTE[DEFAULT_GPU]
        notes.append(f"kvplan has no compute figures for {gpu.name}: {DEFAULT_GPU}'s peaks and link used")
    fitted_on = gpu.name if gpu.name in FITTED else NEAREST_MEASURED.get(compute.architecture, DEFAULT_GPU)
    if fitted_on != gpu.name:
        notes.append(f"no public decode measurements on {gpu.name}: constants of {fitted_on} (nearest measured "
                     f"architecture to {compute.architecture}) used")
    return SpeedProfile(gpu.name, compute, FITTED[fitted_on], fitted_on, "; ".join(notes) or None)
