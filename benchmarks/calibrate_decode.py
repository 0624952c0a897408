"""Fit the speed model's constants offline and score them with each source left out in turn. Usage:

    python benchmarks/calibrate_decode.py            # fit, leave-one-source-out errors, per case
    python benchmarks/calibrate_decode.py --write    # ... and write the constants into kvplan/plan/catalog.py

Decode: tests/data/decode-measurements.yaml (a copy of ../shared/groundtruth/decode-measurements.yaml; its
conventions turn each metric into ms per decode step at the mean context input + output/2). Each case is priced
by kvplan's own model (plan/work.py, plan/speed.py `basis`), so what is fitted is what `kvplan estimate` runs:

    step = roofline + layer_us x layers + allreduce_us x 2 layers log2(TP) + bytes/link
           + FLOPs at peak / gemm_efficiency

Three constants per GPU, fitted in log space with a robust loss (soft L1, scale 0.1: a case 10% off counts
fully, one 50% off counts about half as much) and a pull of each GPU's constants towards the GPUs' common
values (weight LAMBDA), so that a GPU whose remaining sources say nothing about a constant (no TP > 1, no large
batch) borrows it from the others instead of fitting noise. Leave-one-source-out: every case is scored by
constants fitted without any case of its source. Variants host and overlap-host add a fourth constant per GPU,
host_us x the case's batch (engine time per sequence per step, whatever the model size), fitted the same way;
--forwards compares the fit with kvplan verify's measured H200 forwards.

Prefill: tests/data/prefill-measurements.yaml, batch-1 first-token latencies; decode's layer_us and
allreduce_us are kept, one prefill_efficiency per GPU is fitted the same way.

numpy and scipy are used here only; kvplan reads the written constants as plain data."""

from __future__ import annotations

import argparse
import re
import statistics
import sys
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kvplan.model.precision import resolve_kv_dtype  # noqa: E402
from kvplan.model.quantization import with_quantization  # noqa: E402
from kvplan.model.sources import resolve  # noqa: E402
from kvplan.plan.catalog import COMPUTE, find_gpu  # noqa: E402
from kvplan.plan.speed import Basis, basis, compute_ms, engine_ms  # noqa: E402
from kvplan.plan.work import decode_work, prefill_work  # noqa: E402

DATA = ROOT / "tests" / "data"
DECODE_FILE = DATA / "decode-measurements.yaml"
PREFILL_FILE = DATA / "prefill-measurements.yaml"
CATALOG_FILE = ROOT / "kvplan" / "plan" / "catalog.py"
LAMBDA = 0.3  # pull of each GPU's log-constants towards the common values
LOSS = "soft_l1"
LOSS_SCALE = 0.1  # soft-L1 scale of the log error
START = (40.0, 10.0, 0.3)  # layer_us, allreduce_us, efficiency: where the optimiser starts
PREFILL_START = 0.5
HOST_START = 20.0  # variants host, overlap-host: host_us, the engine's host time per sequence per step
CONSTANTS = ("layer_us", "allreduce_us", "gemm_efficiency")  # what is fitted per GPU, in START's order


@dataclass(frozen=True)
class Case:
    id: str
    source: str
    gpu: str
    fit: bool
    measured_ms: float
    # decode: one step; prefill: the chunks' bases summed (the estimate is linear in them but for the compute term's
    # tile floor, which binds on chunks of a few tokens only: every prefill case here is one chunk)
    basis: Basis
    label: str
    notes: str = ""
    batch: int = 1  # sequences the engine's host prepares, summed over the steps: decode batch; prefill chunks


def summed(parts) -> Basis:
    return Basis(*(sum(getattr(p, f) for p in parts) for f in Basis.__dataclass_fields__))


def measured_step_ms(case: dict) -> float:
    """The conventions of decode-measurements.yaml: ms per decode step from the case's metric."""
    kind, value = case["metric"]["kind"], float(case["metric"]["value"])
    if kind == "tpot_ms":
        return value
    if kind == "batch_latency_s":
        return value * 1000 / case["output_len"]
    if kind == "out_tok_s_total":
        return case["batch"] * 1000 / value
    if kind == "out_tok_s_per_gpu":
        return case["batch"] * 1000 / (value * case["tp"])
    raise ValueError(f"{case['id']}: unknown metric kind {kind!r}")


def _setup(case: dict):
    spec = resolve(case["kvplan_model"])
    if case.get("weights") == "fp8-linear":
        spec = with_quantization(spec, "fp8")
    gpu = find_gpu(case["kvplan_gpu"])
    precision = resolve_kv_dtype(case.get("kv_dtype", "auto"), spec.dtype)
    return spec, gpu, precision


def load_decode(path: Path = DECODE_FILE) -> list:
    import yaml

    out = []
    for case in yaml.safe_load(path.read_text())["cases"]:
        spec, gpu, precision = _setup(case)
        context = round(case["input_len"] + case["output_len"] / 2)
        part = decode_basis(spec, gpu, case["tp"], precision, context, case["batch"])
        label = f"{case['kvplan_model'].split('/')[-1]} {case['engine']} tp{case['tp']} b{case['batch']} ctx{context}"
        out.append(Case(case["id"], case["source"], gpu.name, case.get("fit", True), measured_step_ms(case),
                        part, label, case.get("notes", ""), case["batch"]))
    return out


def decode_basis(spec, gpu, tp: int, precision, context: int, batch: int) -> Basis:
    """One decode step as kvplan prices it (plan/speed.py decode_point: decode_work, basis at the GPU's
    achievable bandwidth), with the moe-block variant's extra per-layer units."""
    part = basis(decode_work(spec, tp, precision, context, batch), gpu.decode_bandwidth, COMPUTE[gpu.name])
    if MOE_BLOCK:
        part = replace(part, layer_units=part.layer_units + moe_layers(spec))
    return part


def moe_layers(spec) -> int:
    """MoE layers, from the routed-expert parameters (gated experts and a router per layer)."""
    if not spec.experts:
        return 0
    width = spec.expert_intermediate_size or spec.intermediate_size
    return round(spec.param_count("experts") / (spec.experts * (3 * spec.hidden_size * width + spec.hidden_size)))


def load_prefill(path: Path = PREFILL_FILE, chunk: int = 8192) -> list:
    import yaml

    out = []
    for case in yaml.safe_load(path.read_text())["cases"]:
        spec, gpu, precision = _setup(case)
        parts = tuple(basis(prefill_work(spec, case["tp"], precision, start, min(chunk, case["input_len"] - start)),
                            gpu.decode_bandwidth, COMPUTE[gpu.name])
                      for start in range(0, case["input_len"], chunk))
        label = f"{case['kvplan_model'].split('/')[-1]} tp{case['tp']} input {case['input_len']}"
        out.append(Case(case["id"], case["source"], gpu.name, case.get("fit", True), float(case["ttft_ms"]),
                        summed(parts), label, case.get("notes", ""), len(parts)))
    return out


def step_ms(b: Basis, batch, constants, tile_efficiency=None):
    """kvplan's engine_ms on the first three constants (layer_us, allreduce_us, efficiency) and, for prefill, decode's
    gemm_efficiency for the compute term's tile floor; the host variants' fourth, host_us, adds host_us x batch.
    Scalars or arrays over cases alike."""
    ms = engine_ms(b, *constants[:3], tile_efficiency)
    return ms + constants[3] * batch * 1e-3 if len(constants) > 3 else ms


def predict(case: Case, *constants: float, tile_efficiency=None) -> float:
    return step_ms(case.basis, case.batch, constants, tile_efficiency)


def stacked(cases: list):
    """One Basis whose fields are arrays over `cases`, the batches and the measured times: the optimiser
    evaluates kvplan's own engine_ms on all cases at once."""
    import numpy as np

    fields = Basis.__dataclass_fields__
    return Basis(*(np.array([getattr(c.basis, f) for c in cases], dtype=float) for f in fields)), \
        np.array([c.batch for c in cases], dtype=float), np.array([c.measured_ms for c in cases])


# -- decode fit -------------------------------------------------------------------------------------------------

def fit_decode(cases: list, gpus: list) -> dict:
    """{gpu: (layer_us, allreduce_us, gemm_efficiency[, host_us])}, the constants of START, for every GPU in
    `gpus` (a GPU without cases gets the common values)."""
    import numpy as np
    from scipy.optimize import least_squares

    b, batch, measured = stacked(cases)
    index = np.array([gpus.index(c.gpu) for c in cases], dtype=int)
    n = len(START)

    def residuals(x):
        logs = x.reshape(len(gpus) + 1, n)  # one row per GPU, then the common values
        constants = [np.exp(logs[index, k]) for k in range(n)]
        pull = np.sqrt(LAMBDA) * (logs[:-1] - logs[-1]).ravel()
        return np.concatenate([np.log(step_ms(b, batch, constants) / measured), pull])

    start = np.log(np.array(START * (len(gpus) + 1)))
    result = least_squares(residuals, start, loss=LOSS, f_scale=LOSS_SCALE)
    logs = result.x.reshape(len(gpus) + 1, n)
    return {g: tuple(float(v) for v in np.exp(logs[i])) for i, g in enumerate(gpus)}


def with_efficiency(constants, efficiency) -> list:
    """Decode's constants with gemm_efficiency replaced (prefill keeps layer_us, allreduce_us and host_us)."""
    return [*constants[:2], efficiency, *constants[3:]]


def fit_prefill(cases: list, decode: dict, gpus: list) -> dict:
    """{gpu: prefill_efficiency}, decode's layer_us and allreduce_us (and host_us) held."""
    import numpy as np
    from scipy.optimize import least_squares

    b, batch, measured = stacked(cases)
    index = np.array([gpus.index(c.gpu) for c in cases], dtype=int)
    held = [np.array([decode[c.gpu][k] for c in cases]) for k in range(len(START))]

    def residuals(x):
        fit = np.log(step_ms(b, batch, with_efficiency(held, np.exp(x[index])), held[2]) / measured)
        return np.concatenate([fit, np.sqrt(LAMBDA) * (x[:-1] - x[-1])])

    result = least_squares(residuals, np.log(np.full(len(gpus) + 1, PREFILL_START)), loss=LOSS,
                           f_scale=LOSS_SCALE)
    return {g: float(np.exp(result.x[i])) for i, g in enumerate(gpus)}


def fitted_gpus(cases: list) -> list:
    return sorted({c.gpu for c in cases if c.fit})


def decode_errors(cases: list) -> dict:
    """{case id: relative error} with each source left out of the fit that scores it."""
    gpus = fitted_gpus(cases)
    errors = {}
    for source in sorted({c.source for c in cases}):
        constants = fit_decode([c for c in cases if c.fit and c.source != source], gpus)
        for c in cases:
            if c.source == source:
                errors[c.id] = predict(c, *_constants_for(constants, c.gpu)) / c.measured_ms - 1
    return errors


def _constants_for(constants: dict, gpu: str):
    from kvplan.plan.catalog import NEAREST_MEASURED

    if gpu in constants:
        return constants[gpu]
    return constants[NEAREST_MEASURED[COMPUTE[gpu].architecture]]


def prefill_errors(prefill: list, decode: dict) -> dict:
    gpus = sorted(decode)
    errors = {}
    for source in sorted({c.source for c in prefill}):
        eff = fit_prefill([c for c in prefill if c.fit and c.source != source], decode, gpus)
        for c in prefill:
            if c.source == source:
                held = _constants_for(decode, c.gpu)
                constants = with_efficiency(held, _constants_for(eff, c.gpu))
                errors[c.id] = predict(c, *constants, tile_efficiency=held[2]) / c.measured_ms - 1
    return errors


def summary(cases: list, errors: dict) -> dict:
    """Per GPU: (cases, median |error|, max |error|) over the fitted cases; and the share within 25%."""
    out = {}
    for gpu in sorted({c.gpu for c in cases}):
        errs = [abs(errors[c.id]) for c in cases if c.gpu == gpu and c.fit]
        if errs:
            out[gpu] = (len(errs), statistics.median(errs), max(errs))
    fitted = [abs(errors[c.id]) for c in cases if c.fit]
    out["within_25"] = sum(e <= 0.25 for e in fitted) / len(fitted)
    return out


@dataclass(frozen=True)
class Calibration:
    decode: dict  # gpu -> (layer_us, allreduce_us, gemm_efficiency[, host_us]), fitted on every case
    prefill: dict  # gpu -> prefill_efficiency
    decode_cases: list
    prefill_cases: list
    decode_errors: dict
    prefill_errors: dict


def calibrate() -> Calibration:
    decode_cases, prefill_cases = load_decode(), load_prefill()
    gpus = fitted_gpus(decode_cases)
    decode = fit_decode([c for c in decode_cases if c.fit], gpus)
    prefill = fit_prefill([c for c in prefill_cases if c.fit], decode, gpus)
    return Calibration(decode, prefill, decode_cases, prefill_cases, decode_errors(decode_cases),
                       prefill_errors(prefill_cases, decode))


# -- output -----------------------------------------------------------------------------------------------------

def fitted_block(cal: Calibration) -> str:
    """The constants as Python data, for the marked block of kvplan/plan/catalog.py."""
    dec, pre = summary(cal.decode_cases, cal.decode_errors), summary(cal.prefill_cases, cal.prefill_errors)
    lines = ["FITTED = {"]
    for gpu, (layer_us, allreduce_us, eff) in sorted((g, c[:3]) for g, c in cal.decode.items()):
        n, med, worst = dec[gpu]
        pn, pmed, _ = pre.get(gpu, (0, 0.0, 0.0))
        lines.append(f'    "{gpu}": SpeedFit({layer_us:.2f}, {allreduce_us:.2f}, {eff:.4f}, {cal.prefill[gpu]:.4f}, '
                     f'{n}, {med:.4f}, {worst:.4f}, {pn}, {pmed:.4f}),')
    lines.append("}")
    sources = sorted({c.source for c in cal.decode_cases}) + sorted({c.source for c in cal.prefill_cases})
    lines.append('FIT_SOURCE = ("benchmarks/calibrate_decode.py on tests/data/decode-measurements.yaml and "')
    lines.append(f'              "prefill-measurements.yaml, sources {", ".join(sources)}")')
    return "\n".join(lines)


def write_catalog(cal: Calibration) -> None:
    text = CATALOG_FILE.read_text()
    pattern = re.compile(r"(# BEGIN FITTED CONSTANTS[^\n]*\n)(.*?)(# END FITTED CONSTANTS)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"{CATALOG_FILE}: no BEGIN/END FITTED CONSTANTS block")
    CATALOG_FILE.write_text(pattern.sub(lambda m: m.group(1) + fitted_block(cal) + "\n" + m.group(3), text))


def report(cal: Calibration) -> str:
    lines = [f"Decode constants (all sources): {', '.join(CONSTANTS)}; prefill_efficiency"]
    for gpu, constants in sorted(cal.decode.items()):
        shown = " ".join(f"{v:7.4f}" if k == "gemm_efficiency" else f"{v:7.2f}" for k, v in zip(CONSTANTS, constants))
        lines.append(f"  {gpu:15s} {shown}   {cal.prefill[gpu]:.4f}")
    inside = {c.id: predict(c, *_constants_for(cal.decode, c.gpu)) / c.measured_ms - 1 for c in cal.decode_cases}
    s = summary(cal.decode_cases, inside)
    lines.append(f"decode, in sample (every source fitted): {s.pop('within_25'):.1%} of fitted cases within 25%")
    for gpu, (n, med, worst) in s.items():
        lines.append(f"  {gpu:15s} {n:3d} cases  median |error| {med:6.1%}  max {worst:6.1%}")
    for name, cases, errors in (("decode", cal.decode_cases, cal.decode_errors),
                                ("prefill", cal.prefill_cases, cal.prefill_errors)):
        s = summary(cases, errors)
        lines.append(f"{name}, leave-one-source-out: {s.pop('within_25'):.1%} of fitted cases within 25%")
        for gpu, (n, med, worst) in s.items():
            lines.append(f"  {gpu:15s} {n:3d} cases  median |error| {med:6.1%}  max {worst:6.1%}")
        for c in cases:
            mark = "" if c.fit else "  (not fitted)"
            lines.append(f"  {c.id:7s} {c.source} {c.gpu:15s} {c.label:45s} measured {c.measured_ms:8.2f} ms  "
                         f"error {errors[c.id]:+7.1%}{mark}")
    return "\n".join(lines)


# Alternative model structures, for the record in benchmarks/RESULTS.md (each changes one term of kvplan's model
# in this process only; the shipped model is "shipped").
VARIANTS = ("shipped", "no-tile", "tile-64", "flat-allreduce", "moe-block", "no-robust-loss", "overlap", "host",
            "overlap-host", "hidden-attention")
MOE_BLOCK = False  # variant moe-block: each MoE layer pays the per-layer fixed cost twice


def overlapped_engine_ms(b: Basis, layer_us, allreduce_us, efficiency, tile_efficiency=None):
    """Variant overlap: memory and compute overlap, max(roofline, kvplan's compute term), not their sum."""
    import numpy as np

    return (np.maximum(b.roofline_ms, compute_ms(b, efficiency, tile_efficiency)) + b.layer_units * layer_us * 1e-3
            + b.allreduce_calls * allreduce_us * 1e-3 + b.allreduce_bytes_ms)


def apply_variant(name: str) -> None:
    import kvplan.plan.speed as speed
    import kvplan.plan.work as work

    global LOSS, MOE_BLOCK, START, CONSTANTS
    if name == "no-tile":
        work.TILE_ROWS = 1
    elif name == "tile-64":
        work.TILE_ROWS = 64
    elif name == "flat-allreduce":
        speed.math = type("flat", (), {"log2": staticmethod(lambda tp: 1.0)})
    elif name == "moe-block":
        MOE_BLOCK = True
    elif name == "no-robust-loss":
        LOSS = "linear"
    elif name in ("overlap", "overlap-host"):
        globals()["engine_ms"] = overlapped_engine_ms
    elif name == "hidden-attention":  # decode attention's FLOPs under its KV read (memory-bound kernels), unpriced
        flops = work.attention_flops
        work.attention_flops = lambda spec, tp, start, count, decode, kinds=None: (
            0.0 if decode else flops(spec, tp, start, count, decode, kinds))
    elif name not in ("shipped", "host"):
        raise SystemExit(f"unknown variant {name!r}; one of {', '.join(VARIANTS)}")
    if name.endswith("host"):  # a 4th constant per GPU: host_us x the batch's sequences, whatever the model size
        START, CONSTANTS = START + (HOST_START,), CONSTANTS + ("host_us",)


def markdown(cal: Calibration) -> str:
    """The tables of benchmarks/RESULTS.md's speed-model section."""
    inside = {c.id: predict(c, *_constants_for(cal.decode, c.gpu)) / c.measured_ms - 1 for c in cal.decode_cases}
    loso, ins = summary(cal.decode_cases, cal.decode_errors), summary(cal.decode_cases, inside)
    pre = summary(cal.prefill_cases, cal.prefill_errors)
    rows = [f"| GPU | {' | '.join(CONSTANTS)} | prefill_efficiency | decode cases | "
            "in sample median / max | LOSO median / max | prefill cases, LOSO median |",
            "|---|" + "---|" * (len(CONSTANTS) + 5)]
    for gpu, constants in sorted(cal.decode.items()):
        n, med, worst = loso[gpu]
        _, imed, iworst = ins[gpu]
        pn, pmed, _ = pre.get(gpu, (0, None, None))
        shown = " | ".join(f"{v:.3f}" if k == "gemm_efficiency" else f"{v:.2f}" for k, v in zip(CONSTANTS, constants))
        rows.append(f"| {gpu} | {shown} | {cal.prefill[gpu]:.3f} | {n} | {imed:.1%} / {iworst:.1%} "
                    f"| **{med:.1%} / {worst:.1%}** | {pn}, {'-' if pmed is None else f'{pmed:.1%}'} |")
    rows.append("")
    rows.append(f"LOSO: **{loso['within_25']:.1%} of the {sum(c.fit for c in cal.decode_cases)} fitted decode cases "
                f"within 25%** (in sample {ins['within_25']:.1%}); prefill {pre['within_25']:.1%}.")
    return "\n".join(rows)


# Bare forward passes of kvplan's own `verify` on one H200 (tp 1, context 8192, KV dtype auto = bf16): ms per
# decode step at batch 1 and at the verified max concurrency (benchmarks/RESULTS.md, verify tables of s26-s29).
VERIFY_FORWARDS = (("meta-llama/Llama-3.1-8B-Instruct", ((1, 4.82), (111, 33.42))),
                   ("Qwen/Qwen3-14B", ((1, 8.34), (79, 34.35))),
                   ("google/gemma-3-27b-it", ((1, 15.95), (72, 37.86))),
                   ("meta-llama/Llama-3.2-1B-Instruct", ((1, 1.12), (500, 33.00))))
FORWARD_GPU, FORWARD_CONTEXT = "H200", 8192


def forwards(cal: Calibration) -> str:
    """What the fitted model (the GPU's all-source constants) says of the verify forwards above: the estimate,
    and for the host variants the estimate less the host term (the GPU forward's part), against the measured."""
    from kvplan.plan.catalog import speed_profile
    from kvplan.plan.speed import decode_point

    gpu = find_gpu(FORWARD_GPU)
    constants = _constants_for(cal.decode, gpu.name)
    host = len(constants) > 3
    profile = speed_profile(gpu)
    rows = [f"Verify forwards on {gpu.name}, tp 1, context {FORWARD_CONTEXT}, bf16 KV; constants "
            + ", ".join(f"{k} {v:.4g}" for k, v in zip(CONSTANTS, constants)),
            "| model | batch | measured ms | kvplan estimate (catalog) | roofline | estimate | error |"
            + (" host term | GPU part (estimate - host) | GPU part error |" if host else ""),
            "|---|---|---|---|---|---|---|" + ("---|---|---|" if host else "")]
    for model, points in VERIFY_FORWARDS:
        spec = resolve(model)
        precision = resolve_kv_dtype("auto", spec.dtype)
        for batch, measured in points:
            b = decode_basis(spec, gpu, 1, precision, FORWARD_CONTEXT, batch)
            shipped = decode_point(spec, 1, precision, FORWARD_CONTEXT, batch, profile, gpu.decode_bandwidth, True)
            est = step_ms(b, batch, constants)
            row = (f"| {model.split('/')[-1]} | {batch} | {measured:.2f} | {shipped.itl_ms:.2f} | {b.roofline_ms:.2f} "
                   f"| {est:.2f} | {est / measured - 1:+.1%} |")
            if host:
                term = constants[3] * batch * 1e-3
                row += f" {term:.2f} | {est - term:.2f} | {(est - term) / measured - 1:+.1%} |"
            rows.append(row)
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="write the constants into kvplan/plan/catalog.py")
    parser.add_argument("--variant", default="shipped", help=f"score another model structure: {', '.join(VARIANTS)}")
    parser.add_argument("--markdown", action="store_true", help="print the tables for benchmarks/RESULTS.md")
    parser.add_argument("--forwards", action="store_true",
                        help="print what the fit says of kvplan verify's measured H200 forwards")
    args = parser.parse_args()
    apply_variant(args.variant)
    if args.write and args.variant != "shipped":
        raise SystemExit("--write writes the shipped model's constants only")
    cal = calibrate()
    print(report(cal))
    if args.markdown:
        print(markdown(cal))
    if args.forwards:
        print(forwards(cal))
    if args.write:
        write_catalog(cal)
        print(f"wrote {CATALOG_FILE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
