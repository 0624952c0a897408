"""One Mamba-2 layer's decode step at Nemotron-H-8B's shapes (tp 1: 128 heads of 64, 8 groups, state 128), the
bundled step kernel (kvplan/kernels/mamba_step.cu) against the torch path of kvplan/gpu/mamba.py, CUDA graphs:
ms and the state bytes moved (each slot read and written once) as a share of the measured read bandwidth.

    python3 benchmarks/probes/mamba_step_time.py [--batches 1,64,256]
"""

import json
import sys

import torch

sys.path.insert(0, ".")
sys.path.insert(0, "tests")
from hub_configs import NEMOTRON_H_8B  # noqa: E402
from kvplan.gpu.caches import state_elements  # noqa: E402
from kvplan.gpu.mamba import Mamba2  # noqa: E402
from kvplan.gpu.model import Runtime  # noqa: E402
from kvplan.gpu.step import LayerCache, Step  # noqa: E402
from kvplan.gpu.timing import capture, time_replays  # noqa: E402
from kvplan.gpu.weights import allocate_weights  # noqa: E402
from kvplan.kernels.probes import read_bandwidth  # noqa: E402
from kvplan.model import parse_config  # noqa: E402
from kvplan.verify.arch import architecture  # noqa: E402


def decode_step_times(mixer_cls, arch, layer, w: dict, batch: int, row: int) -> dict:
    """Graph-replay ms of one state layer's decode step (`mixer_cls`: Mamba2 or Mamba1, with its projections) for
    `batch` sequences on shuffled bf16 slots of `row` elements: "kernel" (the bundled kernels) and "torch" (the
    torch path), the slot's bytes and the kernel form's label."""
    pool = (torch.randn(max(batch, 8) * 2, row, device="cuda") * 0.1).to(torch.bfloat16)
    cache = LayerCache("state", "0", (pool,))
    slots = torch.randperm(pool.shape[0], device="cuda")[:batch]
    x = torch.randn(batch, arch.hidden, device="cuda", dtype=torch.bfloat16)
    step = Step(True, torch.zeros(batch, dtype=torch.int64, device="cuda"), batch, state_slots=slots)
    out = {"slot_bytes": row * pool.element_size()}
    for form in ("kernel", "torch"):
        mixer = mixer_cls(arch, layer, w, Runtime("cuda"))
        if form == "torch":
            mixer._plans[(x.dtype, pool.dtype)] = None  # the torch path
        graph, _ = capture(lambda: mixer(x, step, cache))
        out[form] = time_replays(graph.replay, reps=30)["ms"]
        del graph
        if form == "kernel":
            out["kernel_label"] = mixer.label
    return out


def main(argv) -> None:
    batches = [int(b) for b in next((a.split("=", 1)[1] for a in argv if a.startswith("--batches=")),
                                    "1,64,256").split(",")]
    arch = architecture(NEMOTRON_H_8B, parse_config(NEMOTRON_H_8B, "nemotron-h-8b"), 1)
    layer = arch.layers[0]
    weights = allocate_weights(arch, "cuda")
    w = {k.split(".", 2)[2]: v for k, v in weights.items() if k.startswith("layers.0.")}
    read = read_bandwidth().bytes_per_s
    row = state_elements(arch)
    rows = []
    for b in batches:
        times = decode_step_times(Mamba2, arch, layer, w, b, row)
        moved = 2 * b * times["slot_bytes"]
        rows.append({"batch": b, "kernel_ms": times["kernel"], "torch_ms": times["torch"],
                     "speedup": times["torch"] / times["kernel"], "state_MB": moved / 2 / 1e6,
                     "kernel_pct_of_read": moved / (times["kernel"] / 1e3) / read * 100})
        print(json.dumps(rows[-1]), flush=True)
    print(f"read bandwidth {read / 1e12:.3f} TB/s; times include in_proj and out_proj of the layer")


if __name__ == "__main__":
    main(sys.argv[1:])
