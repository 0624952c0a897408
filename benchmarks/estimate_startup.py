"""Cold-start time of `kvplan estimate` (a fresh interpreter each run), and proof that the planning path
imports neither torch, huggingface_hub nor pynvml's GPU work. Usage:

    python benchmarks/estimate_startup.py [MODEL] [--runs 15]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

# `python -m kvplan` leaves through os._exit (kvplan/cli.py finish), so the probe calls main() itself.
CHECK = ("import sys\nfrom kvplan.cli import main\nmain(['estimate', {model!r}, '--format', 'json'])\n"
         "print(json.dumps(sorted(m for m in ('torch', 'huggingface_hub', 'cuda') if m in sys.modules)),"
         " file=sys.stderr)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model", nargs="?", default="meta-llama/Llama-3.1-8B-Instruct")
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "kvplan", "estimate", args.model, "--format", "json"], env=env,
                       check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    probe = subprocess.run([sys.executable, "-c", "import json\n" + CHECK.format(model=args.model)], env=env,
                           capture_output=True, text=True, check=True)
    heavy = probe.stderr.strip().splitlines()[-1]
    baseline = []
    for _ in range(5):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        baseline.append(time.perf_counter() - start)
    print(f"kvplan estimate {args.model} --format json, {args.runs} cold runs: median "
          f"{statistics.median(times) * 1e3:.0f} ms, min {min(times) * 1e3:.0f} ms, max {max(times) * 1e3:.0f} ms "
          f"(bare interpreter: {statistics.median(baseline) * 1e3:.0f} ms); heavy modules imported: {heavy}")


if __name__ == "__main__":
    main()
