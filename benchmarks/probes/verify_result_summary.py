"""The lines of one `kvplan verify --format json` result a device log keeps: verdict, rank, allocation, budget, terms,
layout, decode, prefill, labels and notes. A file that holds no JSON (the run failed) says so in one line.

    python3 benchmarks/probes/verify_result_summary.py RESULT.json"""

import json
import sys


def main(path: str) -> None:
    try:
        r = json.load(open(path))
    except Exception as exc:  # no JSON: the run failed (its stderr is in the log above)
        sys.exit(f"no result: {exc}")
    print("verdict", json.dumps(r["verdict"])[:900])
    print("rank", json.dumps(r["rank"]))
    print("allocation", {k: r["allocation"].get(k) for k in ("layout_bytes", "torch_error", "nvml_error")})
    print("budget", {k: r["budget"][k] for k in ("predicted_kv_budget_bytes", "measured_kv_budget_bytes",
                                                 "responsible_term")})
    print("terms", [(t["term"], t.get("predicted_bytes"), t.get("measured_bytes")) for t in r["terms"]])
    print("layout", [(g["name"], g["layers"], g["num_blocks"], g["blocks_per_sequence"]) for g in r["layout"]])
    print("decode", [(p["batch"], round(p["measured_ms"], 3), p.get("estimate_ms")) for p in r["decode"]["points"]])
    print("prefill", {k: r["prefill"].get(k) for k in ("input_len", "ttft_ms", "estimate_ms")})
    for part, label in r["forward"]["labels"].items():
        print(f"  {part}: {str(label)[:200]}")
    print("notes", r["forward"]["notes"])


if __name__ == "__main__":
    main(sys.argv[1])
