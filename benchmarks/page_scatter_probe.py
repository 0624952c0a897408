"""What scattered pages cost a pure read: the read kernel over a 4 GiB buffer as one linear stream, then cut into
pages of 4-64 KB (one paged-cache block of one K or V tensor: 16 tokens x 1-8 KV heads x 128 dims x 2 bytes)
read in address order and in a random order. The decode kernels and FlashInfer read shuffled blocks; SDPA, in
kernel.md's table, reads a contiguous cache.

    python3 benchmarks/page_scatter_probe.py [--reps 15]
"""

import argparse
import sys

sys.path.insert(0, ".")
from kvplan.kernels.probes import paged_read_bandwidth, read_bandwidth  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=15)
    a = ap.parse_args()
    linear = read_bandwidth(reps=a.reps)
    print(f"linear read: {linear.bytes_per_s / 1e12:.3f} TB/s ({linear.method})")
    print(f"{'page bytes':>10} {'in order TB/s':>13} {'shuffled TB/s':>13} {'shuffled % of linear':>21}")
    for page in (4096, 8192, 16384, 32768, 65536):
        ordered = paged_read_bandwidth(page, shuffled=False, reps=a.reps).bytes_per_s
        shuffled = paged_read_bandwidth(page, shuffled=True, reps=a.reps).bytes_per_s
        print(f"{page:>10,} {ordered / 1e12:13.3f} {shuffled / 1e12:13.3f} {100 * shuffled / linear.bytes_per_s:20.1f}%")


if __name__ == "__main__":
    main()
