"""Where `kvplan estimate` (and `kvplan check`) is slow: every bundled model spec crossed with flags that take
distinct code paths (default, a long context, TP 2/4/8, PP 2/16, fp8 KV, an invalid TP that sends the engine model
on a remedy search), each in table and JSON, run in ONE process through the command line's own main() after a
warm-up run; prints the slowest calls, and with --cold times the slowest few again as fresh processes.
--record FILE keeps every output (exit code, stdout, stderr); --diff FILE says which outputs differ from a record
(a speed change must leave them byte-identical). Usage:

    python benchmarks/estimate_sweep.py [--top 30] [--cold 10] [--runs 3] [--record F | --diff F] [--models a,b]
"""

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ["COLUMNS"] = "120"  # the table's width, the same in this process and the fresh ones

FLAGS = {
    "default": [],
    "c131072": ["-c", "131072"],
    "tp2": ["--tp", "2"],
    "tp4": ["--tp", "4"],
    "tp8": ["--tp", "8"],
    "pp2": ["-pp", "2"],
    "pp16": ["-pp", "16"],
    "fp8": ["--kv-dtype", "fp8"],
    "bad-tp": None,  # the model's own invalid TP (invalid_tp)
}
FORMATS = ("table", "json")


def model_ids() -> list:
    return sorted(p.stem.replace("--", "/", 1) for p in (ROOT / "model_specs").glob("*.yaml"))


def invalid_tp(model: str) -> int:
    """The smallest of 3, 5, 7 that does not divide the model's attention heads: vLLM refuses it, and the engine
    model searches a remedy (the nearest TP that serves)."""
    from kvplan.model.sources import resolve

    heads = resolve(model, None).num_attention_heads or 1
    return next((tp for tp in (3, 5, 7) if heads % tp), 11)


def flags_of(model: str, name: str) -> list:
    return ["--tp", str(invalid_tp(model))] if FLAGS[name] is None else FLAGS[name]


def arguments(command: str, model: str, name: str, fmt: str) -> list:
    flags = flags_of(model, name)
    if command == "check" and "--tp" not in flags:
        flags = ["--tp", "1", *flags]  # check requires a TP
    return [command, model, *flags, "--format", fmt]


def run_in_process(argv: list) -> tuple:
    """(exit code, stdout, stderr, seconds) of one command through kvplan.cli.main, as `python -m kvplan` runs it
    less the interpreter's start and the imports."""
    from kvplan.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        start = time.perf_counter()
        code = main(argv)
        seconds = time.perf_counter() - start
    return code, out.getvalue(), err.getvalue(), seconds


def run_fresh(argv: list, runs: int) -> float:
    """Median seconds of `python -m kvplan ARGV` as a fresh process (bytecode as it is on disk)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "kvplan", *argv], cwd=ROOT, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--top", type=int, default=30, help="how many of the slowest calls to list")
    parser.add_argument("--cold", type=int, default=10, help="how many of the slowest to time as fresh processes")
    parser.add_argument("--runs", type=int, default=3, help="fresh processes per cold case (the median is shown)")
    parser.add_argument("--models", help="a comma list in place of every bundled spec")
    parser.add_argument("--commands", default="estimate,check")
    parser.add_argument("--record", help="write every output to this JSON file")
    parser.add_argument("--diff", help="compare every output with this recorded JSON file")
    parser.add_argument("--timings", help="write every call's milliseconds to this JSON file")
    args = parser.parse_args()
    models = args.models.split(",") if args.models else model_ids()

    run_in_process(["estimate", "meta-llama/Llama-3.1-8B", "--format", "json"])  # warm-up: imports, catalogs
    outputs, timings = {}, []
    for model in models:
        for name in FLAGS:
            for command in args.commands.split(","):
                for fmt in FORMATS:
                    argv = arguments(command, model, name, fmt)
                    code, out, err, seconds = run_in_process(argv)
                    outputs[" ".join(argv)] = [code, out, err]
                    timings.append((seconds, command, model, name, fmt, argv))
    timings.sort(key=lambda t: t[0], reverse=True)
    total = sum(t[0] for t in timings)
    print(f"{len(timings)} calls in one process, {total:.1f} s in all, median "
          f"{statistics.median(t[0] for t in timings) * 1e3:.1f} ms")
    print(f"{'ms':>7}  {'command':8} {'model':45} {'flags':8} format")
    for seconds, command, model, name, fmt, _ in timings[:args.top]:
        print(f"{seconds * 1e3:7.1f}  {command:8} {model:45} {name:8} {fmt}")

    if args.cold:
        print(f"\nfresh processes (median of {args.runs}; bare interpreter {run_bare() * 1e3:.0f} ms):")
        for seconds, command, model, name, fmt, argv in timings[:args.cold]:
            print(f"{run_fresh(argv, args.runs) * 1e3:7.0f}  {' '.join(argv)}")

    if args.timings:
        Path(args.timings).write_text(json.dumps([[round(t[0] * 1e3, 1), " ".join(t[5])] for t in timings], indent=0))
    if args.record:
        Path(args.record).write_text(json.dumps(outputs, indent=0, sort_keys=True))
        print(f"\n{len(outputs)} outputs recorded in {args.record}")
    if args.diff:
        recorded = json.loads(Path(args.diff).read_text())
        changed = sorted(k for k in recorded.keys() | outputs.keys() if recorded.get(k) != outputs.get(k))
        print(f"\n{len(changed)} of {len(recorded)} recorded outputs differ" + (":" if changed else ""))
        for key in changed:
            print(f"  {key}")


def run_bare() -> float:
    times = []
    for _ in range(5):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


if __name__ == "__main__":
    main()
