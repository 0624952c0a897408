"""vLLM 0.34.0's extensible KV cache sizing run on device states given in bytes: its own measure_kv_cache_bytes
(v1/worker/extensible_kv_cache.py:592-618) and ExtensibleKVCache.blocks_within (:313-318), frozen as
tests/data/vllm_extensible_sizing.json for tests/test_vllm_extensible.py. Pure Python: runs on the CPU from the
0.34.0 source release (no build; vllm._C is not needed):

    cd vllm-0.34.0 && PYTHONPATH=. python .../extensible_sizing.py > tests/data/vllm_extensible_sizing.json

A state: the device's memory, what it held at the init snapshot (baseline), what stays resident but the cache
(weights + non-torch + CUDA graphs), the warmup's transient peak (torch's reservation growth taken equal), the
utilisation asked (1.0: vLLM's default with this cache), the platform's margin floor and the layers' page strides.
Session 52 ran it with vLLM 0.34.0's source release and CPU torch 2.13.0."""

import json
import math
import types

from vllm.v1.worker.extensible_kv_cache import ExtensibleKVCache, measure_kv_cache_bytes

GiB, MiB = 2**30, 2**20
GRANULE = 2 * MiB

CASES = [  # name, memory, baseline, resident, transient, utilisation, margin floor, strides (bytes a block a layer)
    ("h100 8b tp1 default", 85_028_224_204, 647_600_537, 17_940_000_000, 939_524_096, 1.0, GiB, [131_072] * 32),
    ("h100 70b tp4 default", 85_028_224_204, 2_526_648_729, 37_450_000_000, 678_428_672, 1.0, GiB, [131_072] * 80),
    ("transient over the floor", 150_000_000_000, 647_600_537, 60_000_000_000, 4_000_000_000, 1.0, GiB,
     [65_536] * 61),
    ("explicit 0.9: the budget binds", 85_028_224_204, 647_600_537, 17_940_000_000, 939_524_096, 0.9, GiB,
     [131_072] * 32),
    ("explicit 0.95: the device binds", 85_028_224_204, 647_600_537, 17_940_000_000, 939_524_096, 0.95, GiB,
     [131_072] * 32),
    ("rocm floor", 206_158_430_208, 647_600_537, 20_000_000_000, 1_500_000_000, 1.0, 3 * GiB, [262_144] * 32),
    ("granules bind: small pages", 25_000_000_000, 647_600_537, 2_000_000_000, 300_000_000, 1.0, GiB,
     [4_096] * 100),
    ("nothing left", 25_000_000_000, 647_600_537, 24_000_000_000, 300_000_000, 1.0, GiB, [131_072] * 32),
    ("mixed pages: full and sliding groups", 150_000_000_000, 647_600_537, 60_000_000_000, 2_000_000_000, 1.0, GiB,
     [262_144] * 10 + [69_632] * 52),
    ("one block-outermost segment", 150_000_000_000, 2_526_648_729, 80_000_000_000, 3_000_000_000, 1.0, GiB,
     [3_000_000]),
]


def blocks_within(kv_bytes: int, strides: list) -> int:
    cache = types.SimpleNamespace(bytes_per_block=sum(strides), capacity_blocks=2**40, segment_strides=strides,
                                  buffer=types.SimpleNamespace(granularity=GRANULE))
    cache.physical_bytes_for = types.MethodType(ExtensibleKVCache.physical_bytes_for, cache)
    return ExtensibleKVCache.blocks_within(cache, kv_bytes)


def main():
    out = {"vllm": "0.34.0", "granule": GRANULE, "cases": []}
    for name, memory, baseline, resident, transient, util, floor, strides in CASES:
        committed = len(strides) * GRANULE  # the one block committed at creation, a granule a layer
        available = measure_kv_cache_bytes(
            init_free_memory=memory - baseline, free_memory=memory - baseline - resident - committed,
            committed_bytes=committed, requested_memory=math.ceil(memory * util), transient_peak_bytes=transient,
            torch_reserve_growth_bytes=transient, margin_floor_bytes=floor)
        out["cases"].append(dict(name=name, memory=memory, baseline=baseline, resident=resident, transient=transient,
                                 utilization=util, margin_floor=floor,
                                 strides=[[stride, strides.count(stride)] for stride in dict.fromkeys(strides)],
                                 available=available,
                                 blocks=blocks_within(available, strides)))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
