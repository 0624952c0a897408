"""verify's measured CUDA-graph memory with and without the three-CTA row-owned form (session 44: it rose by 640 MiB
on three dense models when the form arrived — cuBLAS workspaces of the fresh side streams warm-ups ran on, which
shifted with the number of streams made before; one side stream a device since, kvplan/gpu/timing.py). Runs
`kvplan verify MODEL --format json` in this process with the form refused (`off`) or allowed (`on`) and prints the
graphs' bytes.

    python3 benchmarks/probes/graph_form_ab.py off meta-llama/Llama-3.1-8B-Instruct
"""

import json
import sys

import kvplan.gpu.gemm as gemm


def main(mode: str, model: str) -> None:
    if mode == "off":  # the form refused: no plans
        original = gemm.kernel_plan
        gemm.kernel_plan = lambda form, *a, **k: "off" if form == gemm.MM_FORMS[7] else original(form, *a, **k)
    if mode in ("unused", "own5"):  # unused: its plans made and timed, never chosen (the default own form instead);
        import kvplan.gpu.rank as rank  # own5: refused, and the deep own form's choices moved to the default own form

        choose = rank.choose_forms
        if mode == "own5":
            original = gemm.kernel_plan
            gemm.kernel_plan = lambda form, *a, **k: "off" if form == gemm.MM_FORMS[7] else original(form, *a, **k)
        moved = gemm.MM_FORMS[7] if mode == "unused" else gemm.MM_FORMS[6]

        def unused(mm, *a, **k):
            report = choose(mm, *a, **k)
            for key, form in list(mm.forms.items()):
                if form == moved:
                    mm.forms[key] = gemm.MM_FORMS[5]
            return report

        rank.choose_forms = unused
    from kvplan.commands.verify import verify

    r = verify(model).to_dict()
    r = r.get("result", r)
    g = r["graphs"]
    print(json.dumps({"mode": mode, "model": model, "graphs_MiB": g["bytes"] / 2**20,
                      "pool_MiB": g["pool_bytes"] / 2**20,
                      "stream": {b: round(100 * v["fraction_of_read"], 1) for b, v in r["gemm"]["stream"].items()}}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
