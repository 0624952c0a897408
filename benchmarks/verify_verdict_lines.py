"""Print each verify run's decode verdict sentence and its TTFT figures from a results.jsonl (device scripts).

    python3 benchmarks/verify_verdict_lines.py $OUT/results.jsonl
"""

import json
import sys


def main(path: str) -> None:
    for line in open(path):
        r = json.loads(line)["result"]
        print(r["model"], (r["verdict"].get("decode_reason") or r["verdict"]))
        prefill = r.get("prefill") or {}
        print(f"  TTFT {prefill.get('ttft_ms', float('nan')):.1f} ms, estimate {prefill.get('estimate_ms', float('nan')):.1f} ms")


if __name__ == "__main__":
    main(sys.argv[1])
