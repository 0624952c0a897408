"""Print each verify run's decode verdict sentence and its TTFT figures from a results.jsonl (device scripts); a
run that left no result says so, and a figure its result does not carry reads as kvplan/verify/recorded.py says.

    python3 benchmarks/verify_verdict_lines.py $OUT/results.jsonl
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kvplan.verify.recorded import known, recorded  # noqa: E402


def ms(value) -> str:
    """A time in ms; "-" where the run recorded none (no estimate), "not recorded" where it has no such field."""
    return f"{value:.1f} ms" if known(value) else "-" if value is None else str(value)


def main(path: str) -> None:
    for line in open(path):
        run = json.loads(line)
        r = run["result"]
        if r is None:  # the run failed before it had a result (its stderr_tail says why)
            print(run["name"], f"no result (exit {run['rc']})")
            continue
        print(r["model"], (r["verdict"].get("decode_reason") or r["verdict"]))
        prefill = r.get("prefill") or {}
        print(f"  TTFT {ms(recorded(prefill, 'ttft_ms'))}, estimate {ms(recorded(prefill, 'estimate_ms'))}")


if __name__ == "__main__":
    main(sys.argv[1])
