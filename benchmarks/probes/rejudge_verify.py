"""Judge recorded verify runs again with the current judge (kvplan/verify/judge.py), without a GPU: the decode
verdict of each run in a verify_device_run.py JSONL file from its measured points and the estimate terms recorded
beside them, split term by term at the run's measured read bandwidth (kvplan/verify/decode_terms.py).
Usage: python benchmarks/probes/rejudge_verify.py benchmarks/device_runs/early/verify_h200_....jsonl [...]"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root

from kvplan.verify.decode_terms import of_result  # noqa: E402
from kvplan.verify.judge import judge_decode  # noqa: E402

KEYS = ("batch", "measured_ms", "estimate_ms", "roofline_ms", "estimate_terms")


def main() -> None:
    for path in sys.argv[1:]:
        for line in Path(path).read_text().splitlines():
            run = json.loads(line)
            result = run.get("result") or {}
            if "decode" not in result:
                print(f"{run['name']}: no decode points recorded ({path})")
                continue
            split = of_result(result)  # the step term by term, from the run's bandwidths and timings
            ok, why = judge_decode([dict({k: p.get(k) for k in KEYS}, terms=split.get(p["batch"]))
                                    for p in result["decode"]["points"]])
            print(f"{run['name']} ({Path(path).name}): decode within: {ok}\n  {why}")


if __name__ == "__main__":
    main()
