"""kvplan's vLLM engine model against vLLM 0.32.0's own figures (tests/data/vllm_0.32.0_kv_figures.json, made by
benchmarks/vllm_reference/make_figures.py): per case, each figure kvplan must reproduce exactly, and a summary of
agreement by family for benchmarks/RESULTS.md.

    python benchmarks/engine_vllm_reference.py            # summary table
    python benchmarks/engine_vllm_reference.py --misses   # every disagreement

tests/test_engine_vllm_reference.py asserts the same comparisons (compare() below).
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import hub_configs  # noqa: E402
from kvplan.engines.vllm import resolve_settings, start  # noqa: E402
from kvplan.model import parse_config  # noqa: E402
from kvplan.model.precision import resolve_kv_dtype  # noqa: E402
from kvplan.model.sources import resolve  # noqa: E402
from kvplan.plan.catalog import find_gpu  # noqa: E402

DATA_PATH = ROOT / "tests" / "data" / "vllm_0.32.0_kv_figures.json"
GPUS = {"H100-80GB": "H100-80GB-SXM", "A100-80GB": "A100-80GB", "B200": "B200"}
# vLLM's own assertion inside the reference harness, if any (none in the frozen data)
NOT_COMPARED = ("AssertionError",)
TP_REFUSAL = "must be divisible by tensor parallel size"


def script_config(name: str) -> dict:
    """A config the reference script carries itself (Nemotron-H-8B), read from its source without running it."""
    source = (ROOT / "benchmarks" / "vllm_reference" / "make_figures.py").read_text()
    node = next(n for n in ast.parse(source).body if isinstance(n, ast.Assign)
                and getattr(n.targets[0], "id", None) == name)
    return ast.literal_eval(node.value)


def model_spec(model: str):
    if model.startswith("tests/hub_configs.py:"):
        return parse_config(getattr(hub_configs, model.split(":", 1)[1]), model)
    if model.startswith("make_figures.py:"):
        return parse_config(script_config(model.split(":", 1)[1]), model)
    return resolve(model, None)


def kvplan_startup(case: dict):
    """kvplan's start-up for the inputs vLLM got: the config, the worker's available KV bytes, the GPU whose batch
    defaults apply, explicit flags. The context is vLLM's max_model_len, or the model's own when not given."""
    inputs = case["inputs"]
    spec = model_spec(inputs["model"])
    gpu = find_gpu(GPUS[inputs["gpu"]])
    context = inputs["max_model_len"] or spec.max_position_embeddings or 2048
    settings = resolve_settings(context, gpu.name, gpu.memory_bytes, max_num_batched_tokens=inputs.get(
        "max_num_batched_tokens"), async_scheduling=inputs.get("async_scheduling"),
        prefix_caching=inputs.get("enable_prefix_caching", True) is not False)
    precision = resolve_kv_dtype(inputs["kv_cache_dtype"], spec.dtype, spec.auto_kv_dtype)
    result = start(spec, tp=inputs["tp"], precision=precision,
                   settings=settings, available=[inputs["available_kv_cache_bytes"]],
                   block_size=inputs.get("block_size"))
    return result, settings


def category(case: dict) -> str:
    error = case.get("error") or ""
    if error.startswith(NOT_COMPARED):
        return "not compared"
    if TP_REFUSAL in error:
        return "refused (tp)"
    if case.get("starts"):
        return "starts"
    if case.get("refusal"):
        return "refused (memory)"
    if "Value error, " in error or error.startswith("ValueError: "):  # a config check, or a model refusing one
        return "refused (config)"
    return "not compared"


def sizing(lines) -> list:
    """The lines vLLM logs while sizing the cache (the harness captures from there on)."""
    return [line for line in lines if line.startswith(("GPU KV cache size", "Add "))]


def compare(case: dict) -> dict:
    """{figure: (kvplan, vLLM)} for every figure of the case."""
    kind = category(case)
    if kind == "refused (tp)":  # kvplan's sharding rules refuse it before any engine runs (its own words)
        from kvplan.plan.sharding import shard

        return {"tp_valid": (shard(model_spec(case["inputs"]["model"]), case["inputs"]["tp"]).valid, False)}
    result, settings = kvplan_startup(case)
    fig = result.figures
    if kind == "refused (config)":
        error = case["error"]
        message = error.split("Value error, ", 1)[1].split(" [type=value_error", 1)[0] if "Value error, " in error \
            else error.split("ValueError: ", 1)[1]
        return {"starts": (fig.starts, False), "refusal": (fig.refusal and fig.refusal.reason, message),
                "log_lines": (list(fig.log_lines), [])}
    if kind == "refused (memory)":
        return {"starts": (fig.starts, False), "refusal": (fig.refusal and fig.refusal.reason,
                                                            case["refusal"]["message"]),
                "estimated_max_model_len": (fig.refusal and fig.refusal.estimated_max_model_len,
                                            case["refusal"]["estimated_max_model_len"])}
    kv, resident, vs = case["kv"], case["resident"], case["settings"]
    limit = resident.get("hit_simulation_limit")
    return {
        "starts": (fig.starts, True),
        "max_num_batched_tokens": (settings.max_num_batched_tokens, vs["max_num_batched_tokens"]),
        "max_num_seqs": (settings.max_num_seqs, vs["max_num_seqs"]),
        "in_flight_tokens": (settings.in_flight_tokens, vs["max_in_flight_tokens"]),
        "block_size": (fig.block_size, kv["block_size"]),
        "groups": (fig.num_kv_cache_groups, kv["num_groups"]),
        "num_gpu_blocks": (fig.num_gpu_blocks, kv["num_gpu_blocks"]),
        "blocks_per_request": (fig.blocks_per_request, sum(g["blocks_per_request"] for g in kv["groups"])),
        "gpu_kv_cache_tokens": (fig.gpu_kv_cache_tokens, kv["gpu_kv_cache_tokens"]),
        "max_concurrency": (fig.max_concurrency, kv["max_concurrency"]),
        "log_lines": (sizing(fig.log_lines), sizing(case["log_lines"])),
        # the reference stops counting at its simulation limit: kvplan must reach at least that
        "resident": (min(fig.resident_sequences, resident["requests"]) if limit else fig.resident_sequences,
                     resident["requests"]),
        # vLLM's KVCacheManager with requests of exactly max_model_len tokens (the plan's own concurrency counts
        # chunked layers full again before a chunk ends: kvplan/engines/vllm_admission.py, session 37)
        "resident_capped": (min(fig.resident_sequences, fig.max_num_seqs),
                            resident["resident_capped_by_max_num_seqs"]),
    }


def load() -> dict:
    return json.loads(DATA_PATH.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--misses", action="store_true")
    args = parser.parse_args()
    data = load()
    table = defaultdict(lambda: defaultdict(lambda: [0, 0]))  # family -> category -> [exact, total]
    fields = defaultdict(lambda: [0, 0])
    for case in data["cases"]:
        kind = category(case)
        family = case["inputs"]["family"]
        if kind == "not compared":
            table[family][kind][1] += 1
            continue
        figures = compare(case)
        exact = all(ours == theirs for ours, theirs in figures.values())
        table[family][kind][0] += exact
        table[family][kind][1] += 1
        for name, (ours, theirs) in figures.items():
            fields[name][0] += ours == theirs
            fields[name][1] += 1
            if args.misses and ours != theirs:
                print(f"case {case['id']} {case['inputs']}: {name}: kvplan {ours!r} vs vLLM {theirs!r}")
    kinds = ("starts", "refused (memory)", "refused (config)", "refused (tp)", "not compared")
    print(f"vLLM {data['header']['vllm_version']} reference, {len(data['cases'])} cases "
          f"({data['header'].get('date', '')})\n")
    print("| family | " + " | ".join(kinds[:4]) + " | not compared |")
    print("|---|---|---|---|---|---|")
    totals = defaultdict(lambda: [0, 0])
    for family in sorted(table):
        cells = []
        for kind in kinds:
            exact, total = table[family][kind]
            totals[kind][0] += exact
            totals[kind][1] += total
            cells.append(str(total) if kind == "not compared" else f"{exact}/{total}")
        print(f"| {family} | " + " | ".join(cells) + " |")
    print("| **all** | " + " | ".join(f"{totals[k][0]}/{totals[k][1]}" for k in kinds[:4]) +
          f" | {totals['not compared'][1]} |\n")
    print("| figure | exact / compared |\n|---|---|")
    for name, (exact, total) in fields.items():
        print(f"| {name} | {exact}/{total} |")


if __name__ == "__main__":
    main()
