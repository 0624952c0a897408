"""Session 51: the decode kernel at few (sequence, KV head) pairs with 12-16 query heads a KV head — a TP rank of
GLM-4.5-Air (24q / 2kv at tp 4) or GLM-4.6 (12q / 1kv at tp 8) at batch 1 took 32 us a layer at 8K tokens
(benchmarks/forward_profile.py, call 1: 8 MB of KV, ~6% of read bandwidth). Heads in M run one warp a CTA, and
MIN_SPLIT_TOKENS = 256 caps the splits at span / 256, so few pairs launch few one-warp CTAs. Each shape under the
default plan and the options that change it; CUDA graphs, pages shuffled, % of the read probe.

    python3 benchmarks/probes/s51_few_kv_heads_probe.py [--json PATH] [--options NAME,NAME]
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from decode_kernel import Case, time_calls  # noqa: E402
from kvplan.gpu.timing import read_bandwidth  # noqa: E402
from kvplan.kernels import KernelOptions, paged_decode_plan  # noqa: E402

SHAPES = [  # label, batch, context, q heads, kv heads
    ("GLM-4.5-Air tp4 B1 8K", 1, 8192, 24, 2), ("GLM-4.5-Air tp4 B1 32K", 1, 32768, 24, 2),
    ("GLM-4.5-Air tp4 B4 8K", 4, 8192, 24, 2), ("GLM-4.5-Air tp4 B16 8K", 16, 8192, 24, 2),
    ("GLM-4.5-Air tp4 B64 8K", 64, 8192, 24, 2),
    ("GLM-4.6 tp8 B1 8K", 1, 8192, 12, 1), ("GLM-4.6 tp8 B8 8K", 8, 8192, 12, 1),
    ("70B tp8 (G=8) B1 8K", 1, 8192, 8, 1), ("MQA 64q/1kv B8 32K", 8, 32768, 64, 1),
    ("64q/4kv B16 16K", 16, 16384, 64, 4), ("G=16 2kv B1 8K", 1, 8192, 32, 2),
    ("Llama-3-8B B1 4K", 1, 4096, 32, 8), ("Llama-3-8B B1 32K", 1, 32768, 32, 8), ("Llama-3-8B B2 8K", 2, 8192, 32, 8),
]
OPTIONS = {
    "default": KernelOptions(),
    "min_split 128": KernelOptions(min_split_tokens=128),
    "min_split 64": KernelOptions(min_split_tokens=64),
    "hm off": KernelOptions(heads_in_m=False),
    "hm off, min_split 64": KernelOptions(heads_in_m=False, min_split_tokens=64),
    "8 heads a warp": KernelOptions(heads_per_warp=8),
}


def main():
    path = sys.argv[sys.argv.index("--json") + 1] if "--json" in sys.argv else \
        os.path.join(os.environ.get("OUT", "."), "s51_few_kv_heads.json")
    read = read_bandwidth()["bytes_per_s"]
    l2 = torch.cuda.get_device_properties(0).L2_cache_size
    print(f"{torch.cuda.get_device_name(0)}; read {read / 1e12:.3f} TB/s", flush=True)
    rows = []
    wanted = sys.argv[sys.argv.index("--options") + 1].split(",") if "--options" in sys.argv else list(OPTIONS)
    for label, b, ctx, hq, hkv in SHAPES:
        case = Case(b, ctx, hq, hkv, 128, l2_bytes=l2, with_baselines=False)
        line = [f"{label} ({case.kv_bytes / 1e6:.0f} MB)"]
        for name, opts in ((n, OPTIONS[n]) for n in wanted):
            try:
                plan = paged_decode_plan(hq, hkv, 128, 16, torch.bfloat16, torch.bfloat16, b, ctx // 16,
                                         options=opts)
                la = plan.launch_for(b)
                fns = [lambda r=r: plan.run(case.q[r], case.k, case.v, case.bt[r], case.sl, out=case.out[r])
                       for r in range(case.rot)]
                from kvplan.kernels import reference_paged_decode_attention as ref
                want = ref(case.q[0], case.k, case.v, case.bt[0], case.sl).float()
                err = float((fns[0]().float() - want).norm() / want.norm())
                t, _ = time_calls(fns)
                us = t * 1e6
                rows.append(dict(shape=label, option=name, us=us, pct_read=100 * case.kv_bytes / t / read, err=err,
                                 splits=la.splits, warps=la.warps, slices=la.slices, path=plan.path))
                line.append(f"{name}: {us:.1f} us {100 * case.kv_bytes / t / read:.0f}% "
                            f"(s{la.splits} w{la.warps} err {err:.1e})")
            except Exception as e:  # noqa: BLE001 - an option a shape does not take
                line.append(f"{name}: {type(e).__name__}: {str(e)[:60]}")
        print(" | ".join(line), flush=True)
        case.free()
    with open(path, "w") as f:
        json.dump({"gpu": torch.cuda.get_device_name(0), "read_bw": read, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
