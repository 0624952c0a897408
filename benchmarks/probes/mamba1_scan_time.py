"""One Mamba-1 layer of AI21-Jamba-1.5-Mini at tp 1 (8,192 channels, 16 states, dt rank 256): the decode step
through the bundled kernels (kvplan/kernels/mamba1_scan.cu) against the torch path of kvplan/gpu/mamba1.py, CUDA
graphs, with in_proj, x_proj, dt_proj and out_proj; and a prompt's scan alone (the kernel, CUDA events) at 1,024 and
8,192 tokens, the torch recurrence at 1,024.

    python3 benchmarks/probes/mamba1_scan_time.py [--batches=1,64,256]
"""

import json
import sys

import torch

sys.path.insert(0, ".")
from kvplan.gpu.caches import state_elements  # noqa: E402
from kvplan.gpu.mamba1 import Mamba1  # noqa: E402
from kvplan.gpu.model import Runtime  # noqa: E402
from kvplan.gpu.weights import allocate_weights  # noqa: E402
from kvplan.kernels import mamba1_scan as m1  # noqa: E402
from kvplan.kernels.mamba1_scan import Mamba1Plan  # noqa: E402
from mamba_step_time import decode_step_times  # noqa: E402  (benchmarks/probes/, the script's own folder)
from kvplan.model import parse_config  # noqa: E402
from kvplan.verify.arch import architecture  # noqa: E402

CONFIG = "benchmarks/configs/ai21labs--AI21-Jamba-1.5-Mini.json"


def _events(fn, reps=5):
    fn()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / reps


def main(argv) -> None:
    batches = [int(b) for b in next((a.split("=", 1)[1] for a in argv if a.startswith("--batches=")),
                                    "1,64,256").split(",")]
    raw = json.load(open(CONFIG))
    arch = architecture(raw, parse_config(raw, "jamba-1.5-mini"), 1)
    layer = arch.layers[0]
    assert layer.mixer == "mamba1"
    small = {k: v for k, v in raw.items()}
    small["num_hidden_layers"] = 1  # one layer's weights only
    one = architecture(small, parse_config(small, "jamba-1-layer"), 1)
    weights = allocate_weights(one, "cuda")
    w = {k.split(".", 2)[2]: v for k, v in weights.items() if k.startswith("layers.0.")}
    row = state_elements(arch)
    for b in batches:
        times = decode_step_times(Mamba1, arch, layer, w, b, row)
        print(json.dumps({"decode_batch": b, "kernel_ms": round(times["kernel"], 4),
                          "torch_ms": round(times["torch"], 4), "speedup": round(times["torch"] / times["kernel"], 2),
                          "label": times["kernel_label"]}), flush=True)
    ch, n = arch.mamba1_inner, arch.ssm_state
    plan = Mamba1Plan(ch, n, arch.conv_kernel, "bfloat16", "bfloat16")
    pool = torch.zeros(1, plan.row_elements, device="cuda", dtype=torch.bfloat16)
    slot = torch.zeros(1, dtype=torch.int32, device="cuda")
    for tokens in (1024, 8192):
        x, dt, z = (torch.randn(tokens, ch, device="cuda", dtype=torch.bfloat16) for _ in range(3))
        bc = torch.randn(tokens, 2 * n, device="cuda", dtype=torch.bfloat16)
        a_log, d = w["A_log"], w["D"]
        out = {"prompt_tokens": tokens}
        default = m1.CTAS_PER_SM
        for deep in (0, 2, 4, 8, 12):  # CTAs a prompt wants per SM before it splits into segments (0: never splits)
            m1.CTAS_PER_SM = deep
            ms = _events(lambda: plan.scan(x, dt, z, bc, w["dt_bias"], a_log, d, pool, slot, tokens=tokens))
            out[f"scan_ms_ctas_per_sm_{deep}"] = round(ms, 3)
        m1.CTAS_PER_SM = default
        ms = out[f"scan_ms_ctas_per_sm_{default}"]
        out["GB_per_s_over_x_dt_z_y"] = round(4 * tokens * ch * 2 / ms / 1e6, 1)
        if tokens == 1024:
            mixer = Mamba1(arch, layer, w, Runtime("cuda"))
            out["scan_torch_ms"] = round(_events(lambda: mixer._scan_torch(x, dt, z, bc, 1), reps=1), 1)
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
