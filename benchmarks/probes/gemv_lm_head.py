"""The streaming GEMV on LM-head shapes (vocabulary x hidden: tall, n = 31-49 k) at batch 1 and 8, one CTA per SM
with a ring of 8 against two with rings of 6 (gemv_stream_config.launch_shape's two launches), F.linear beside;
% of read bandwidth, two weight copies in turn in one CUDA graph (each over 0.5 GB: read from HBM, not L2).

    python3 benchmarks/probes/gemv_lm_head.py
"""
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, ".")
from kvplan.gpu.timing import capture, time_replays  # noqa: E402
from kvplan.kernels.gemv_stream import gemv_stream_plan  # noqa: E402
from kvplan.kernels.probes import read_bandwidth  # noqa: E402

SHAPES = {"Llama-3 (128256x4096)": (128256, 4096), "Llama-3.2-1B (128256x2048)": (128256, 2048),
          "Qwen3-14B (151936x5120)": (151936, 5120), "Gemma-3-27B (262144x5376)": (262144, 5376)}
FORMS = {"c1 d8": {"ctas_per_sm": 1, "depth": 8}, "c2 d6": {"ctas_per_sm": 2, "depth": 6}}


def timed(fn):
    graph, _ = capture(fn)
    ms = time_replays(graph.replay, reps=20)["ms"]
    del graph
    return ms


bw = read_bandwidth().bytes_per_s
print(f"read bandwidth {bw / 1e12:.3f} TB/s")
for name, (n, k) in SHAPES.items():
    ws = [torch.randn(n, k, dtype=torch.bfloat16, device="cuda") * k ** -0.5 for _ in range(2)]
    nbytes = 2 * n * k * 2
    plans = {f: gemv_stream_plan(n, k, torch.bfloat16, device=0, **o) for f, o in FORMS.items()}
    for b in (1, 8):
        x = torch.randn(b, k, dtype=torch.bfloat16, device="cuda")
        cells = {"F.linear": timed(lambda: [F.linear(x, w) for w in ws])}
        for f, p in plans.items():
            cells[f] = timed(lambda: [p.run(x, w) for w in ws])
        shares = ", ".join(f"{f} {100 * nbytes / (ms / 1e3) / bw:5.1f}%" for f, ms in cells.items())
        print(f"{name:28s} b{b}: " + shares, flush=True)
    del ws, plans
    torch.cuda.empty_cache()
