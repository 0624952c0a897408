"""How long the remedy search takes and which length it names (plan.fitting_remedies, the length remedy of
plan/longest.py): a few deployments that do not fit, each run --runs times in one process with the search's caches
emptied before each run (plan._REPLANS, the admission footprints), timed with time.perf_counter around every
fitting_remedies call (TP, fp8, length and pipeline remedies together), with the plans made counted. Runs against
whichever kvplan is first on PYTHONPATH, so the same script times main and a branch:

    PYTHONPATH=/path/to/checkout python benchmarks/remedy_length_search.py [--runs 5]
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import kvplan.commands.check.remedies as check_remedies  # noqa: E402
import kvplan.engines.vllm_admission as admission  # noqa: E402
import kvplan.plan.plan as plan_module  # noqa: E402
from kvplan.api import check, estimate  # noqa: E402

V4 = "deepseek-ai/DeepSeek-V4-Flash"
CASES = (  # (label, command, model, keywords)
    ("V4-Flash H100 tp4 vllm 0.20.0, 200 seqs of 1M", check, V4,
     dict(engine="vllm==0.20.0", gpu="H100", tensor_parallel_size=4, min_concurrency=200, max_model_len=None)),
    ("V4-Flash H100 tp4, 200 seqs of 100,000", check, V4,
     dict(gpu="H100", tensor_parallel_size=4, min_concurrency=200, max_model_len=100000)),
    ("V4-Flash H200 tp8, 400 seqs of 777,777", check, V4,
     dict(gpu="H200", tensor_parallel_size=8, min_concurrency=400, max_model_len=777777)),
    ("V4-Flash H100 tp4 at 0.6 of the GPU, one request of 777,777", estimate, V4,
     dict(gpu="H100", tensor_parallel_size=4, gpu_memory_utilization=0.6, max_model_len=777777)),
    ("V4-Pro H100 tp8, 16 seqs of 1M (the weights do not fit)", check, "deepseek-ai/DeepSeek-V4-Pro",
     dict(gpu="H100", tensor_parallel_size=8, min_concurrency=16, max_model_len=None)),
    ("Llama-3.1-8B L40S tp1, 64 seqs of 100,000", check, "meta-llama/Llama-3.1-8B",
     dict(gpu="L40S", tensor_parallel_size=1, min_concurrency=64, max_model_len=100000)),
    ("Llama-3.1-70B L40S tp4, one request of 131,072", estimate, "meta-llama/Llama-3.1-70B-Instruct",
     dict(gpu="L40S", tensor_parallel_size=4, max_model_len=131072)),
)


def timed_searches(command, model: str, keywords: dict) -> tuple:
    """(seconds in fitting_remedies, the length remedies it named, the plans the command made afresh: the search's
    and the asked one's) for one command, caches emptied first."""
    plan_module._REPLANS.clear()
    admission._REMEMBERED.clear()
    spent, lengths, plans = [0.0], [], [0]
    search, afresh = plan_module.fitting_remedies, plan_module._plan_afresh

    def counted(*args, **kwargs):
        plans[0] += 1
        return afresh(*args, **kwargs)

    def measured(*args, **kwargs):
        start = time.perf_counter()
        found = search(*args, **kwargs)
        spent[0] += time.perf_counter() - start
        lengths.extend(dict(r)["context"] for r in found if "context" in dict(r))
        return found

    plan_module.fitting_remedies = check_remedies.fitting_remedies = measured
    plan_module._plan_afresh = counted
    try:
        command(model, **keywords)
    finally:
        plan_module.fitting_remedies = check_remedies.fitting_remedies = search
        plan_module._plan_afresh = afresh
    return spent[0], lengths, plans[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    timed_searches(*CASES[0][1:])  # warm-up: imports, spec reads
    print(f"kvplan from {os.path.dirname(plan_module.__file__)}; median of {runs} runs")
    for label, command, model, keywords in CASES:
        results = [timed_searches(command, model, keywords) for _ in range(runs)]
        seconds = statistics.median(r[0] for r in results)
        print(f"{label:60} length {results[0][1] or '-'}, {results[0][2]:3} plans, search {seconds * 1e3:6.1f} ms")


if __name__ == "__main__":
    main()
