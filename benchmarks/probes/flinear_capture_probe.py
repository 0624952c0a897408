"""Is F.linear's speed in a CUDA graph the same at every capture? verify (session 45) timed Gemma-3-27B's gate_up
[43008, 5376] through F.linear at 4.27-4.30 TB/s when choosing forms and 3.91-3.94 when capturing it again. Here:
the same 62 weights at batch 1, captured and timed several times in a row (each capture after a warm-up on the
side stream, as kvplan.gpu.timing does), then with the output buffers held between captures, and with a
torch.cuda.empty_cache() between captures; TB/s each time, and the cuBLAS kernels a capture launches (torch
profiler over one replay).

    python3 benchmarks/probes/flinear_capture_probe.py
"""

import json

import torch
import torch.nn.functional as F

from kvplan.gpu.timing import capture, time_replays


def kernels(graph) -> list:
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        graph.replay()
        torch.cuda.synchronize()
    return sorted({e.name[:90] for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA})


def main() -> None:
    n, k, layers = 43008, 5376, 62
    ws = [torch.randn(n, k, device="cuda", dtype=torch.bfloat16) * k ** -0.5 for _ in range(layers)]
    nbytes = layers * n * k * 2
    for batch in (1, 2, 8):
        x = torch.randn(batch, k, device="cuda", dtype=torch.bfloat16)
        for mode in ("plain", "empty_cache"):
            rows = []
            for _ in range(5):
                if mode == "empty_cache":
                    torch.cuda.empty_cache()
                graph, _ = capture(lambda: [F.linear(x, w) for w in ws])
                ms = time_replays(graph.replay, reps=8)["ms"]
                rows.append((round(nbytes / (ms * 1e-3) / 1e12, 2), kernels(graph)))
                del graph
            print(json.dumps({"batch": batch, "mode": mode, "TB/s": [r[0] for r in rows],
                              "kernels": sorted({kk for r in rows for kk in r[1]})}), flush=True)


if __name__ == "__main__":
    main()
