"""How many thread-block clusters of the decode kernel fit on this GPU at once (driver occupancy query).

    python benchmarks/kernel_cluster_occupancy.py

A split-K merge inside a cluster (distributed shared memory) only pays if every cluster of a B=1 launch
(Hkv clusters of `splits` CTAs, one CTA per SM) runs at the same time; the answer depends on how many
SMs each GPC of this particular chip has.
"""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kvplan.kernels import build  # noqa: E402
from kvplan.kernels import paged_decode as pd  # noqa: E402


def main():
    from cuda.bindings import driver

    cc = build._import_cuda_core()
    dev = pd._device(0)
    print(torch.cuda.get_device_name(0), dev.arch, dev.sm_count, "SMs")
    bulk = int(dev.arch in build.BULK_ARCHS)
    ld = pd._load(build.KernelConfig("bfloat16", "bfloat16", 128, 8, 8, bulk=bulk), dev)
    attr = driver.CUfunction_attribute.CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED
    h = ld.main.handle
    if isinstance(h, driver.CUkernel):
        print("set non-portable:", driver.cuKernelSetAttribute(attr, 1, h, driver.CUdevice(0))[0])
    else:
        print("set non-portable:", driver.cuFuncSetAttribute(h, attr, 1)[0])
    stream = cc.Device(0).default_stream
    for warps, smem in ((8, 138 * 1024), (8, 207 * 1024), (4, 103 * 1024)):
        for size in (1, 2, 4, 8, 16):
            try:
                cfg = cc.LaunchConfig(grid=(1, 8, 1), cluster=(size, 1, 1), block=warps * 32, shmem_size=smem)
                n = ld.main.occupancy.max_active_clusters(cfg, stream=stream)
            except Exception as exc:  # noqa: BLE001 - report any driver refusal as the answer
                n = f"error: {exc}"
            print(f"{warps} warps, {smem // 1024} KB smem, cluster {size:2d}: max active clusters {n}")
        try:
            cfg = cc.LaunchConfig(grid=(1, 8, 1), block=warps * 32, shmem_size=smem)
            print("  max potential cluster size:", ld.main.occupancy.max_potential_cluster_size(cfg, stream=stream))
        except Exception as exc:  # noqa: BLE001
            print("  max potential cluster size: error", exc)


if __name__ == "__main__":
    main()
