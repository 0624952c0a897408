"""Cold-start time of `kvplan estimate` (a fresh interpreter each run), and proof that the planning path
imports neither torch, huggingface_hub nor pynvml's GPU work; with --slow, the cold time of the runs a fuzz round
found slow (session 62: a removed architecture's release remedy planned at every boundary release x every PP stage,
TP sweeps of large MoE models, prefill at the 32,768-chunk cap on sparse MLA). Usage:

    python benchmarks/estimate_startup.py [MODEL] [--runs 15] [--slow]
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


SLOW_CASES = (
    "tiiuae/falcon-40b -pp 16",
    "tiiuae/falcon-7b -pp 16 -c 1M --kv-cache-dtype auto,fp8,fp8_e5m2",
    "deepseek-ai/DeepSeek-V3 -tp 1,2,4,8,16 --engine vllm==0.10.2",
    "Qwen/Qwen3-235B-A22B -tp 1,2,4,8,16",
    "deepseek-ai/DeepSeek-V3.2 --max-num-batched-tokens 16",
)


def cold_times(arguments: list, runs: int, env: dict) -> list:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "kvplan", "estimate", *arguments, "--format", "json"], env=env,
                       check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model", nargs="?", default="meta-llama/Llama-3.1-8B-Instruct")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--slow", action="store_true", help="also time the slow cases (SLOW_CASES), --runs each")
    args = parser.parse_args()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    times = cold_times([args.model], args.runs, env)
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
    for case in SLOW_CASES if args.slow else ():
        slow = cold_times(case.split(), args.runs, env)
        print(f"kvplan estimate {case}: median {statistics.median(slow) * 1e3:.0f} ms, min {min(slow) * 1e3:.0f} ms "
              f"over {args.runs} cold runs")


if __name__ == "__main__":
    main()
