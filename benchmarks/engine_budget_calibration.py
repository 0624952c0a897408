"""kvplan's vLLM budget against every public start-up log (../shared/groundtruth/vllm-startup-logs.yaml).

For each case: the engine's "Available KV cache memory" as kvplan predicts it from the model, GPU and flags the
log states, against the logged figure (or the figure the logged block count implies, within one block), and
which budget constant (kvplan/engines/vllm_budget.py CONSTANTS) was fitted on it: a case a constant was fitted
on is reported, never scored. Cases kvplan cannot budget say why.

    python benchmarks/engine_budget_calibration.py            # the table for benchmarks/RESULTS.md
    python benchmarks/engine_budget_calibration.py --json     # the same rows as JSON

tests/test_vllm_logs.py checks the same cases (CASES below is the one list both use).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kvplan.engines import get_engine  # noqa: E402
from kvplan.engines.vllm_speculative import served  # noqa: E402
from kvplan.model.sources import resolve  # noqa: E402
from kvplan.plan.catalog import find_gpu  # noqa: E402

GiB = 2**30
MiB = 2**20


@dataclass(frozen=True)
class LogCase:
    id: str
    model: Optional[str]  # kvplan's id (bundled spec), None when the log names no model kvplan knows
    gpu: Optional[str]  # kvplan catalog name
    version: Optional[str]  # the vLLM release whose rules apply (from the log's format and date)
    tp: int = 1
    gpu_util: float = 0.9
    context: Optional[int] = None
    total_gib: Optional[float] = None  # the log's total_gpu_memory when it states one
    max_num_batched_tokens: Optional[int] = None
    available_gib: Optional[float] = None  # logged "Available KV cache memory" (or its V0 equivalent)
    available_from: str = "logged"
    fitted: tuple = ()  # CONSTANTS fitted on this case
    reason: Optional[str] = None  # why kvplan cannot budget it


CASES = [
    LogCase("A01", "meta-llama/Llama-3.1-8B", "RTX-3090", "0.6.4", context=20000, total_gib=23.58,
            available_gib=3.81, available_from="logged kv_cache_size"),
    LogCase("A02", "meta-llama/Llama-3.1-8B", "RTX-3090", "0.6.4", context=29000, total_gib=23.58,
            available_gib=2.89, available_from="logged kv_cache_size"),
    LogCase("A03", "Qwen/Qwen3-14B", None, None, reason="GPU and gpu_memory_utilization not in the log"),
    LogCase("A04", None, "H100-80GB-SXM", None, tp=4,
            reason="Qwen3-235B-A22B-FP8 is not bundled (its bf16 base is); the log's 8.11 GiB is rank 0's while the "
                   "blocks follow the smallest rank, and LMCache's connector holds GPU buffers in the profile"),
    LogCase("A05", None, None, None, reason="same run as A06 at fp8 (budget identical)"),
    LogCase("A06", "meta-llama/Meta-Llama-3-8B", "MI300X", "0.6.0", context=8192, available_gib=78897 * 2 / 1024,
            available_from="78,897 blocks x 2 MiB (within one block)"),
    LogCase("A07", "meta-llama/Llama-2-7b-hf", "A100-80GB", "0.2.5", context=4096, available_gib=7351 * 8 / 1024,
            available_from="7,351 blocks x 8 MiB (within one block)"),
    LogCase("A08", "meta-llama/Llama-2-70b-hf", "A100-80GB", "0.2.5", tp=4, context=4096,
            available_gib=20865 * 1.25 / 1024, available_from="20,865 blocks x 1.25 MiB",
            reason="vLLM 0.2.x at TP 4 counted 13.6 GiB of non-torch memory per worker (CuPy/NCCL buffers; the "
                   "same PR's TP 1 run lost 0.8 GiB): that release's multi-GPU profile is not modelled"),
    LogCase("A09", "meta-llama/Llama-3.1-8B", "A100-80GB", "0.6.3", tp=4, context=40000,
            available_gib=52.89 * 40000 * 32768 / GiB, available_from="52.89x x 40,000 tokens x 32 KiB (+-0.01%)"),
    LogCase("A10", None, None, None, reason="model not named in the log"),
    LogCase("A11", "meta-llama/Meta-Llama-3-8B", "H100-80GB-SXM", "0.6.5", context=8192, total_gib=79.22,
            available_gib=53.29, fitted=("v0_non_torch",)),
    LogCase("A11-tp2", "meta-llama/Meta-Llama-3-8B", "H100-80GB-SXM", "0.6.5", tp=2, context=8192,
            total_gib=79.22, available_gib=71.29 - 7.48 - 3.58 - 1.26,
            available_from="71.29 - 7.48 - 3.58 - 1.26 (the log's terms; its total is cut off)", fitted=("v0_nccl",)),
    LogCase("A12", None, None, None, reason="deepseek-coder-6.7b and the T4 are not in kvplan's catalogs"),
    LogCase("A13", None, "RTX-4090", None, tp=2, reason="DeepSeek-R1-Distill-Qwen-14B is not bundled"),
    LogCase("A14", "google/gemma-3-4b-it", "A100-80GB", None,
            reason="kvcached runs two engines on one GPU with its own memory limit"),
    LogCase("A15", "deepseek-ai/DeepSeek-V2-Lite", None, None,
            reason="GPU not named; the run used cpu_offload_gb and enforce_eager"),
    # DeepSeek-Coder-V2-Lite-Instruct has DeepSeek-V2-Lite's shape field for field (the bundled spec's notes); the
    # issue (2024-07-08) names no release: 0.5.1, the first with DeepseekV2ForCausalLM (0.5.1 to 0.6.6 cache alike,
    # kvplan/engines/vllm_premla.py). 63,040 tokens x 27 layers x 2 x 8 heads x 256 x 2 B = 12.99 GiB.
    # Term by term (session 76; vLLM 0.5.1 worker.py:178-189 subtracts init_free - free after the profile, the
    # baseline taken after the CUDA context and before NCCL, worker.py:120-127): L40 44.39 GiB x 0.9 = 39.95, weights
    # 14.66 (7,870.6 M parameters a rank), 12.99 logged, so 12.30 GiB for the profile and non-torch memory. Allocated at
    # the profile's peak (layer 0's dense MLP: hidden, residual, gate/up, activated, down = 45,120 B a token x 163,840):
    # 6.89 GiB; the caching allocator keeps the attention's and that layer's segments: 12.08 GiB reserved in an
    # allocation replay on torch 2.11 (benchmarks/a16_replay; vLLM 0.5.1 ran torch 2.3), leaving ~0.2 GiB of
    # non-torch memory (NCCL, cuBLAS). kvplan: forward 8.13 + non_torch 2.17 + nccl 2.18 = 12.49.
    LogCase("A16", "deepseek-ai/DeepSeek-V2-Lite", "L40", "0.5.1", tp=2, context=163840,
            available_gib=63040 * 27 * 2 * 8 * 256 * 2 / GiB,
            available_from="63,040 tokens x 216 KiB (per-head K/V at head size 256, 8 heads a rank; within one block)",
            reason="within 5% by offsetting terms: of the 12.3 GiB the log leaves beside weights, kvplan's V0 "
                   "forward (8.1 GiB: the dense layer 0 over 163,840 tokens, the experts' caches over 65,536) is "
                   "1.2 GiB above the 6.9 GiB allocated, and its non-torch and NCCL (4.4 GiB, fitted on 0.6.5) far "
                   "above 0.5.1's, while 0.5.1 counts the allocator's reserved segments (12.1 GiB in a replay: "
                   "benchmarks/a16_replay), which kvplan does not model; the release is inferred from the date"),
    LogCase("A17", None, "H100-80GB-SXM", "0.5.4", tp=8, gpu_util=0.95, context=16000,
            available_gib=2368 * 60 * 2 * 16 * 256 * 2 / GiB,
            available_from="2,368 tokens x 960 KiB (per-head K/V at head size 256, 16 heads a rank)",
            reason="DeepSeek-Coder-V2-Instruct (236B) is not bundled: the public config copies disagree on "
                   "rope_scaling and none cites its parameter count"),
    LogCase("A18", None, None, None, reason="GPU and gpu_memory_utilization not in the log (DeepSeek-V3.2 is "
            "bundled: its 1,214,464 tokens are 18,976 of the 64-token blocks kvplan plans for it)"),
    LogCase("A19", "openai/gpt-oss-120b", "H100-80GB-SXM", "0.10.1", available_gib=-2.14,
            fitted=("v1_sampler_bytes_per_logit",)),
    LogCase("A20", "openai/gpt-oss-120b", "H100-80GB-SXM", "0.11.0", gpu_util=0.95, max_num_batched_tokens=1024,
            available_gib=1.71, fitted=("v1_sampler_bytes_per_logit",)),
    LogCase("A21", None, None, None, reason="Qwen3.6-35B-A3B NVFP4 is a local checkpoint kvplan does not know"),
    LogCase("A22", None, None, None, reason="Qwen3.6-35B-A3B NVFP4 is a local checkpoint kvplan does not know"),
    LogCase("A23", None, None, None, reason="model named only by its author (Qwen3.8-27B-FP8)"),
    LogCase("A24", None, None, None, reason="a vLLM fork (Dec 2023), not vLLM"),
    LogCase("A25", None, None, None, reason="model not named in the log"),
    LogCase("A26", None, None, None, reason="model not named in the log"),
    LogCase("A27", "openai/gpt-oss-20b", "A100-80GB", "0.19.0", gpu_util=0.65, context=131072,
            available_gib=36.56),
]


def predict(case: LogCase):
    spec = resolve(case.model, None)
    gpu = find_gpu(case.gpu)
    memory = int(case.total_gib * GiB) if case.total_gib else None
    engine = get_engine(f"vllm=={case.version}")
    spec = served(spec, engine)  # as the release builds it (its layers' caches, its length)
    return engine.budget(spec, case.tp, gpu, case.gpu_util, gpu_memory=memory, context=case.context,
                         max_num_batched_tokens=case.max_num_batched_tokens)


def rows() -> list:
    out = []
    for case in CASES:
        row = {"id": case.id, "model": case.model, "gpu": case.gpu, "version": case.version, "tp": case.tp,
               "logged_gib": case.available_gib, "from": case.available_from, "fitted": list(case.fitted),
               "reason": case.reason, "predicted_gib": None, "error": None}
        if case.model and case.gpu and case.version and case.available_gib is not None:
            budget = predict(case)
            predicted = budget.kv_budget_bytes_per_gpu / GiB
            row.update(predicted_gib=round(predicted, 3),
                       error=round((predicted - case.available_gib) / abs(case.available_gib), 4),
                       terms={t.name: round(t.bytes / GiB, 3) for t in budget.terms})
        out.append(row)
    return out


def _gib(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.2f}"


def table(data: list) -> str:
    lines = ["| case | model | GPU | vLLM | TP | logged GiB | kvplan GiB | error | fitted on it / held out |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in data:
        if r["predicted_gib"] is None:
            lines.append(f"| {r['id']} | {r['model'] or '-'} | {r['gpu'] or '-'} | {r['version'] or '-'} | "
                         f"{r['tp']} | {_gib(r['logged_gib'])} | - | - | "
                         f"not budgeted: {r['reason']} |")
            continue
        role = ("fitted: " + ", ".join(r["fitted"])) if r["fitted"] else "held out"
        if r["reason"]:
            role += f" ({'outside 5%: ' if abs(r['error']) >= 0.05 else ''}{r['reason']})"
        lines.append(f"| {r['id']} | {r['model']} | {r['gpu']} | {r['version']} | {r['tp']} | "
                     f"{r['logged_gib']:.2f} | {r['predicted_gib']:.2f} | {100 * r['error']:+.1f}% | {role} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    data = rows()
    print(json.dumps(data, indent=1) if args.json else table(data))


if __name__ == "__main__":
    main()
