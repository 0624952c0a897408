"""RESULTS.md tables from the device run's results.jsonl (benchmarks/verify_device_run.py):

    python3 benchmarks/probes/verify_results_md.py benchmarks/device_runs/early/verify_h200_2026-12-01.jsonl
"""

import json
import sys

GiB = 2**30


def gib(v):
    return "-" if v is None else f"{v / GiB:.2f}"


def pct(v):
    return "-" if v is None else f"{v:+.1%}"


def model_section(run: dict) -> list:
    r = run["result"]
    out = [f"#### `kvplan verify {' '.join(run['args'])}` — exit {run['rc']}, {run['wall_s']:.0f} s wall", ""]
    if r is None:
        tail = [ln for ln in run["stderr_tail"].splitlines() if ln.strip()][-1:]
        return out + [f"Failed: `{tail[0] if tail else '?'}`", ""]
    g, rank, v = r["gpu"], r["rank"], r["verdict"]
    labels = "; ".join(f"{k}: {lbl}" for k, lbl in r["forward"]["labels"].items())
    out.append(f"Rank: {rank['mode']}. Forward: " + labels + ".")
    out += ["", "| term | predicted GiB | measured GiB | error |", "|---|---|---|---|"]
    for t in r["terms"]:
        out.append(f"| {t['term']} | {gib(t['predicted_bytes'])} | {gib(t['measured_bytes'])} | {pct(t['error'])} |")
    b = r["budget"]
    out.append(f"| **KV budget** | {gib(b['predicted_kv_budget_bytes'])} | {gib(b['measured_kv_budget_bytes'])} | "
               f"{pct(b['measured_kv_budget_bytes'] / b['predicted_kv_budget_bytes'] - 1)} |")
    a, bd, p = r["allocation"], r["boundary"], r["profile"]
    out += ["", f"Profile run {p['tokens']:,} tokens as {p['sequences']} x {p['tokens_per_sequence']}; decode graphs "
                f"{len(r['graphs']['sizes'])} sizes in {r['graphs']['seconds']:.1f} s "
                f"(pool {gib(r['graphs']['pool_bytes'])}"
                f" GiB, driver {gib(r['graphs']['driver_bytes'])} GiB). Pools: {gib(a['layout_bytes'])} GiB, torch "
                f"{a['torch_error']:+.3%}, NVML {a['nvml_error']:+.3%}; boundary "
                f"{'confirmed' if bd['confirmed'] else 'NOT confirmed'}: {bd['served']} admitted, {bd['served'] + 1}th "
                f"refused; planned max concurrency {r['plan']['max_concurrency']} vs "
                f"{r['measured_plan']['max_concurrency']} "
                f"measured.", ""]
    out += ["| batch | decode ms | roofline ms | vs roofline | tokens/s |", "|---|---|---|---|---|"]
    for q in r["decode"]["points"]:
        out.append(f"| {q['batch']} | {q['measured_ms']:.2f} | {q['roofline_ms']:.2f} | "
                   f"{q['measured_ms'] / q['roofline_ms'] - 1:+.0%} | {q['tokens_per_s']:,.0f} |")
    stream = ", ".join(f"{bt}: {s['fraction_of_read']:.1%}" for bt, s in r["gemm"]["stream"].items())
    out += ["", f"Weight stream (dense linears) / read bandwidth {g['bandwidth_read_bytes_per_s'] / 1e12:.2f} TB/s: "
                f"{stream}. Per-layer fixed cost {r['decode']['per_layer_fixed_us']:.0f} us. TTFT "
                f"{r['prefill']['input_len']:,} tokens: {r['prefill']['ttft_ms']:.0f} ms "
                "(no prefill estimate in the plan).",
            "", f"Verdicts: capacity {'CONFIRMED' if v['capacity_confirmed'] else 'NOT CONFIRMED'}; budget "
                f"{'within' if v['budget_within'] else 'NOT within'} ({v['budget_reason']}); decode "
                f"{ {True: 'within', False: 'NOT within', None: 'not judged'}[v['decode_within']]}.", ""]
    return out


def summary_row(run: dict) -> str:
    r = run["result"]
    if r is None:
        return f"| `{' '.join(run['args'])}` | {run['rc']} | {run['wall_s']:.0f} s | failed | | | | | |"
    pts = r["decode"]["points"]
    v, rows = r["verdict"], {t["term"]: t for t in r["terms"]}
    return (f"| `{' '.join(run['args'])}` | {run['rc']} | {run['wall_s']:.0f} s | "
            f"{r['plan']['max_concurrency']} / {r['measured_plan']['max_concurrency']} | "
            f"{r['allocation']['torch_error']:+.3%} / {r['allocation']['nvml_error']:+.3%} | "
            f"{'yes' if r['boundary']['confirmed'] else 'NO'} | {gib(rows['activation_peak']['measured_bytes'])} / "
            f"{gib(rows['non_torch']['measured_bytes'])} / {gib(rows['cuda_graphs']['measured_bytes'])} | "
            f"{pts[0]['measured_ms']:.2f} ({pts[0]['measured_ms'] / pts[0]['roofline_ms'] - 1:+.0%}) / "
            f"{pts[-1]['measured_ms']:.1f} ({pts[-1]['measured_ms'] / pts[-1]['roofline_ms'] - 1:+.0%}) | "
            f"{r['decode']['per_layer_fixed_us']:.0f} |")


def main(path: str) -> None:
    runs = [json.loads(line) for line in open(path)]
    print("| command | exit | wall | max concurrency planned / measured | pools torch / NVML | boundary | "
          "measured GiB: activation / non-torch / graphs | decode ms batch 1 / max (vs roofline) | fixed us/layer |")
    print("|---|---|---|---|---|---|---|---|---|")
    for run in runs:
        print(summary_row(run))
    print()
    for run in runs:
        print("\n".join(model_section(run)))


if __name__ == "__main__":
    main(sys.argv[1])
