"""Which allocations make verify's measured graph memory (session 44: +640 MiB once the three-CTA GEMV form's plans
exist): torch's memory snapshot at graph_memory's two readings, the segments the captures added, their largest
blocks and where those were allocated.

    python3 benchmarks/probes/graph_pool_snapshot.py meta-llama/Llama-3.1-8B-Instruct

Session 44 (before timing.side_stream): 20 new 32 MiB segments in the default pool, one per stream, allocated at
ops.py's F.linear during the captures' warm-ups: cuBLAS workspaces.
"""

import sys

import torch

import kvplan.gpu.measure as measure


def main(model: str) -> None:
    torch.cuda.memory._record_memory_history(max_entries=300000)
    seen, calls = {}, []
    original = measure.used_bytes

    def used_bytes():
        calls.append(1)
        snap = torch.cuda.memory._snapshot()
        segments = {s["address"]: s for s in snap["segments"]}
        if len(calls) % 2 == 1:
            seen.clear()
            seen.update(segments)
        else:
            new = [s for a, s in segments.items() if a not in seen]
            print(f"graph_memory: {len(new)} new segments, {sum(s['total_size'] for s in new) >> 20} MiB", flush=True)
            for s in sorted(new, key=lambda s: -s["total_size"])[:6]:
                print(f"  segment {s['total_size'] >> 20} MiB pool {s.get('segment_pool_id')} stream {s['stream']}")
                for b in sorted(s["blocks"], key=lambda b: -b["size"])[:2]:
                    frames = [f"{f['filename'].rsplit('/', 1)[-1]}:{f['line']}:{f['name']}" for f in b.get("frames", [])
                              if "kvplan" in f["filename"] or "benchmarks" in f["filename"]][:6]
                    print(f"    block {b['size'] >> 20} MiB {b['state']} {frames}")
        return original()

    measure.used_bytes = used_bytes
    from kvplan.commands.verify import verify

    verify(model)


if __name__ == "__main__":
    main(sys.argv[1])
