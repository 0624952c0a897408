"""What scattered pages cost a pure read: the read kernel over a 4 GiB buffer as one linear stream, then cut into
pages of 4-64 KB (one paged-cache block of one K or V tensor: 16 tokens x 1-8 KV heads x 128 dims x 2 bytes)
read in address order and in a random order; then the decode kernel's copy pattern without its arithmetic
(`--walks`, sm_90: one or two CTAs per SM each bringing its own run of the page list through a K and a V buffer into a
ring of shared-memory stages by bulk copies of 1, 2 or 4 tokens' rows or of the whole page, as a decode launch's (sequence,
split) CTAs do; then with the decode kernel's shared-ring protocol: 8 warps splitting the copies, full and empty
mbarriers, a spin in place of a step's arithmetic). The decode kernels and FlashInfer read shuffled blocks; SDPA, in kernel.md's table,
reads a contiguous cache.

    python3 benchmarks/page_scatter_probe.py [--reps 15] [--walks]
"""

import argparse
import sys

sys.path.insert(0, ".")
from kvplan.kernels.probes import paged_read_bandwidth, paged_walk_bandwidth, read_bandwidth  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--walks", action="store_true", help="also the decode kernel's walk pattern")
    a = ap.parse_args()
    linear = read_bandwidth(reps=a.reps)
    print(f"linear read: {linear.bytes_per_s / 1e12:.3f} TB/s ({linear.method})")
    print(f"{'page bytes':>10} {'in order TB/s':>13} {'shuffled TB/s':>13} {'shuffled % of linear':>21}")
    for page in (4096, 8192, 16384, 32768, 65536):
        ordered = paged_read_bandwidth(page, shuffled=False, reps=a.reps).bytes_per_s
        shuffled = paged_read_bandwidth(page, shuffled=True, reps=a.reps).bytes_per_s
        print(f"{page:>10,} {ordered / 1e12:13.3f} {shuffled / 1e12:13.3f} {100 * shuffled / linear.bytes_per_s:20.1f}%")
    if not a.walks:
        return
    import torch

    sms = torch.cuda.get_device_properties(0).multi_processor_count
    print(f"\n{'page bytes':>10} {'CTAs/SM':>7} {'warps':>5} {'stages':>6} {'spin':>5} {'copy bytes':>10} "
          f"{'in order TB/s':>13} {'shuffled TB/s':>13} {'shuffled, % of linear':>21}")
    rows = [(page, per_sm, 1, 3, 0, chunk) for page, per_sm in ((32768, 1), (16384, 1), (16384, 2))
            for chunk in (page // 16, page // 8, page // 4, page)]  # 1, 2 or 4 tokens' rows of a block, or all
    # the decode kernel's shared ring (8 warps split a step's row copies; fp8 and bf16 rows of 8 KV heads), with and
    # without a spin of about a step's compute (~2 us on an H200)
    rows += [(page, per_sm, 8, stages, spin, page // 16) for page, per_sm in ((16384, 2), (32768, 1))
             for stages in (2, 3) for spin in (0, 3000)]
    for page, per_sm, warps, stages, spin, chunk in rows:
        kw = dict(walkers=per_sm * sms, chunk=chunk, stages=stages, reps=a.reps, warps=warps, spin=spin)
        ordered = paged_walk_bandwidth(page, shuffled=False, **kw).bytes_per_s
        shuffled = paged_walk_bandwidth(page, shuffled=True, **kw).bytes_per_s
        print(f"{page:>10,} {per_sm:>7} {warps:>5} {stages:>6} {spin:>5} {chunk:>10,} {ordered / 1e12:13.3f} "
              f"{shuffled / 1e12:13.3f} {100 * shuffled / linear.bytes_per_s:20.1f}%", flush=True)


if __name__ == "__main__":
    main()
