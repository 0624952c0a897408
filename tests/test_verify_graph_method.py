"""verify's graphs beside vLLM's own graph estimator (verify/terms.py vllm_method_estimate): vLLM 0.32.0's
profile_cudagraph_memory (v1/worker/gpu_model_runner.py:6394-6423) captures the two largest graphs of a mode and
charges the first's growth plus (n - 1) times the second's, at least 1 MiB a graph."""

import json
from pathlib import Path

from kvplan.commands.verify import VerifyResult
from kvplan.render import emit
from kvplan.verify.terms import vllm_method_estimate

MiB = 1 << 20
ROOT = Path(__file__).resolve().parents[1]


def test_the_estimator_extrapolates_the_second_capture_over_the_other_graphs():
    # 67 graphs (vLLM 0.32's default sizes at max_num_seqs 256): 500 MiB + 66 x 10 MiB, by hand
    assert vllm_method_estimate([500 * MiB, 10 * MiB], 67) == 1160 * MiB
    # a second capture that freed memory (negative growth) is floored at vLLM's 1 MiB a graph: 200 + 3 x 1
    assert vllm_method_estimate([200 * MiB, -4 * MiB], 4) == 203 * MiB
    # one graph: the first capture alone
    assert vllm_method_estimate([64 * MiB], 1) == 64 * MiB


def test_the_report_gives_the_estimators_figure_beside_what_the_graphs_hold():
    """A recorded H200 run (session 46, Llama-3.1-8B at 8K) with the captures' samples added as verify now records
    them; results recorded before have none and render as before."""
    path = ROOT / "benchmarks" / "device_runs" / "early" / "verify_h200_2026-12-04_s46_call2.jsonl"
    run = next(r for r in map(json.loads, path.read_text().splitlines()) if r["name"] == "llama8b-8k")
    result = run["result"]
    before = " ".join(emit(VerifyResult(result), "table").split())
    assert "vLLM's estimator" not in before
    n = len(result["graphs"]["sizes"])
    result["graphs"].update(first_capture_bytes=300 * MiB, second_capture_bytes=2 * MiB,
                            vllm_method_bytes=vllm_method_estimate([300 * MiB, 2 * MiB], n))
    text = " ".join(emit(VerifyResult(result), "table").split())
    assert f"vLLM's estimator on these captures (largest 300 MiB + {n - 1} x 2.00 MiB) would charge" in text
