"""What a captured CUDA graph costs in device memory outside torch's allocator, per kernel node: the driver's side of
the "CUDA graphs" budget term (vLLM's profile_cudagraph_memory measures it with everything else).

For n tiny kernels (in-place adds on a 1 KiB tensor, no allocation inside the capture), capture one graph, then a
second one of the same n into the same pool, and read the free-memory drop (cudaMemGetInfo) around each capture and
instantiation; torch's reserved memory is printed beside it (it should not move). Run on the GPU machine:

    python3 benchmarks/probes/graph_node_memory.py
"""

import json

import torch


def drop(fn) -> tuple:
    torch.cuda.synchronize()
    free0, reserved0 = torch.cuda.mem_get_info()[0], torch.cuda.memory_reserved()
    out = fn()
    torch.cuda.synchronize()
    return free0 - torch.cuda.mem_get_info()[0], torch.cuda.memory_reserved() - reserved0, out


def main() -> None:
    x = torch.zeros(256, device="cuda")
    rows = []
    for n in (1, 10, 100, 1000, 10000, 30000):
        pool = torch.cuda.graph_pool_handle()
        graphs = []

        def capture():
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g, pool=pool):
                for _ in range(n):
                    x.add_(1.0)
            g.replay()
            graphs.append(g)
            return g

        first, first_torch, _ = drop(capture)
        second, second_torch, _ = drop(capture)
        rows.append({"nodes": n, "first_bytes": first, "second_bytes": second, "torch_reserved_first": first_torch,
                     "torch_reserved_second": second_torch,
                     "bytes_per_node_second": round(second / n, 1)})
        print(json.dumps(rows[-1]), flush=True)
        del graphs
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
    print(torch.cuda.get_device_name(), torch.__version__, torch.version.cuda)


if __name__ == "__main__":
    main()
