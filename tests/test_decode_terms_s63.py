"""The decode judgement term by term (issue 13; kvplan/verify/decode_terms.py), checked against recorded runs:

- Llama-3.1-8B at 8K under vLLM 0.32.0 on an H200 (session 54,
  benchmarks/device_runs/s54_h200_2026-12-05/s53_verify_llama8b_0.32.0.json): the bytes a step reads are the plan's
  own recorded weights read (15,009,849,344) + batch x the KV read per sequence (8,192 tokens x 131,072 B =
  1 GiB), the bandwidths are the run's (catalog 4.272 TB/s, measured read 4.5287 TB/s), and the per-layer cost verify
  itself worked out on the GPU, 30.91 us (decode.per_layer_fixed_us), is the hand split's;
- the same model on an H100 (session 62, benchmarks/device_runs/s62_h100_2026-12-06_call3/v_llama8b.txt): its
  printed figures, rounded as printed, give the 26.2 us its own "Per-layer fixed cost" line says."""

import copy
import csv
import io
import json
from pathlib import Path

import pytest

from kvplan.commands.verify import VerifyResult
from kvplan.render import emit
from kvplan.verify.decode_terms import of_result, step_terms
from kvplan.verify.judge import DECODE_TOLERANCE, judge_decode

RUNS = Path(__file__).resolve().parent.parent / "benchmarks"
H200_RUN = RUNS / "device_runs/s54_h200_2026-12-05/s53_verify_llama8b_0.32.0.json"
WEIGHTS_READ, KV_PER_SEQUENCE = 15_009_849_344, 8192 * 131_072  # the plan's decode record
CATALOG, READ = 4.272e12, 4_528_670_725_898.296  # the run's gpu record


@pytest.fixture(scope="module")
def recorded() -> dict:
    return json.loads(H200_RUN.read_text())


def by_term(rows: list) -> dict:
    return {row["term"]: row for row in rows}


def test_the_recorded_inputs_are_what_the_hand_arithmetic_takes(recorded):
    d, g = recorded["plan"]["decode"], recorded["gpu"]
    assert (d["weights_bytes_read_batch1"], d["kv_bytes_read_per_sequence"]) == (WEIGHTS_READ, KV_PER_SEQUENCE)
    assert (g["bandwidth_planner_bytes_per_s"], g["bandwidth_read_bytes_per_s"]) == (CATALOG, READ)


def test_h200_terms_by_hand(recorded):
    split = of_result(recorded)
    assert list(split) == [1, 111]
    b1, b111 = by_term(split[1]), by_term(split[111])
    # roofline: the step's bytes over each bandwidth
    for batch, rows in ((1, b1), (111, b111)):
        read = WEIGHTS_READ + batch * KV_PER_SEQUENCE
        assert rows["roofline"]["bytes"] == read  # an integer, as every byte count in the JSON
        assert rows["roofline"]["estimate_ms"] == pytest.approx(read / CATALOG * 1e3, rel=1e-12)
        assert rows["roofline"]["measured_ms"] == pytest.approx(read / READ * 1e3, rel=1e-12)
    assert b1["roofline"]["measured_ms"] == pytest.approx(3.5515, abs=1e-4)  # 16,083,591,168 B / 4.5287 TB/s
    # per-layer: batch 1's step over its measured roofline, over 32 layers, what verify recorded on the GPU
    per_layer_us = (4.540656089782715 - 16_083_591_168 / READ * 1e3) / 32 * 1e3
    assert per_layer_us == pytest.approx(recorded["decode"]["per_layer_fixed_us"], rel=1e-9)  # 30.911
    for rows in (b1, b111):
        fixed = rows["per_layer_fixed"]
        assert (fixed["layers"], fixed["estimate_us"]) == (32, 37.61)
        assert fixed["measured_us"] == pytest.approx(30.911, abs=1e-3)
        assert fixed["estimate_ms"] == pytest.approx(32 * 37.61e-3)
        assert fixed["measured_ms"] == pytest.approx(32 * 30.911e-3, abs=1e-5)
        assert rows["allreduce"]["estimate_ms"] == rows["allreduce"]["measured_ms"] == 0.0  # one GPU
    # compute: the rest; 0 at batch 1 by the split, at batch 111 32.848 - 29.632 - 0.989 = 2.227 ms
    assert b1["compute"]["measured_ms"] == pytest.approx(0.0, abs=1e-12)
    rest = 32.84828758239746 - (WEIGHTS_READ + 111 * KV_PER_SEQUENCE) / READ * 1e3 - 32 * per_layer_us * 1e-3
    assert b111["compute"]["measured_ms"] == pytest.approx(rest, rel=1e-9) and rest == pytest.approx(2.227, abs=1e-3)
    assert (b1["compute"]["estimate_ms"], b111["compute"]["estimate_ms"]) == pytest.approx((1.141, 10.069), abs=1e-3)
    # the estimate's terms add up to the recorded estimate, the measured ones to the recorded step
    for batch, rows in ((1, b1), (111, b111)):
        point = next(p for p in recorded["decode"]["points"] if p["batch"] == batch)
        terms = ("roofline", "per_layer_fixed", "allreduce", "compute")
        assert sum(rows[t]["estimate_ms"] for t in terms) == pytest.approx(point["estimate_ms"], rel=1e-12)
        assert sum(rows[t]["measured_ms"] for t in terms) == pytest.approx(point["measured_ms"], rel=1e-12)
        assert rows["step"]["difference_ms"] == pytest.approx(point["measured_ms"] - point["estimate_ms"])
    assert b1["step"]["error"] == pytest.approx(-0.257, abs=5e-4)  # the run's own "-25.7%"


def test_h100_figures_as_printed():
    """s62 H100 call 3, v_llama8b.txt: planner 2.98 TB/s, measured read 3.153 TB/s; batch 1 5.938 ms against a
    5.394 ms roofline, batch 55 24.963 against 24.842; per-layer 1.124 ms fitted (35.1 us), compute 1.280 and
    6.268 ms. Its own line: "Per-layer fixed cost: 26.2 us"."""
    def point(batch, measured, estimate, roofline, compute):
        terms = dict(roofline_ms=roofline, fixed_ms=1.124, allreduce_ms=0.0, compute_ms=compute, layers=32,
                     layer_us=35.125)
        return {"batch": batch, "measured_ms": measured, "estimate_ms": estimate, "roofline_ms": roofline,
                "estimate_terms": terms}

    points = [point(1, 5.938, 7.799, 5.394, 1.280), point(55, 24.963, 32.233, 24.842, 6.268)]
    split = step_terms(points, 2.98e12, 3.153e12)
    b1, b55 = by_term(split[1]), by_term(split[55])
    assert b1["roofline"]["measured_ms"] == pytest.approx(5.394 * 2.98 / 3.153, rel=1e-12)  # 5.098 ms
    assert b1["per_layer_fixed"]["measured_us"] == pytest.approx(26.2, abs=0.05)
    assert b55["compute"]["measured_ms"] == pytest.approx(24.963 - 24.842 * 2.98 / 3.153 - 32 * 0.0262, abs=0.002)
    within, why = judge_decode([dict(p, terms=split[p["batch"]]) for p in points])
    assert within is False and "compute (batch 1: 1.280 ms estimated vs 0.000 ms measured; batch 55: 6.268 ms" in why


def test_the_verdict_names_compute_and_says_why(recorded):
    split = of_result(recorded)
    points = [dict(p, terms=split[p["batch"]]) for p in recorded["decode"]["points"]]
    within, why = judge_decode(points)
    assert within is recorded["verdict"]["decode_within"] is False  # the verdict itself unchanged
    assert why.startswith(f"not within {DECODE_TOLERANCE:.0%} of the calibrated estimate: batch 1: 4.541 ms vs "
                          f"estimate 6.109 ms (-25.7%); batch 111: 32.848 ms vs estimate 42.685 ms (-23.0%); ")
    assert ("term responsible: compute (batch 1: 1.141 ms estimated vs 0.000 ms measured; batch 111: 10.069 ms "
            "estimated vs 2.227 ms measured): the compute term is fitted on serving engines' whole step times") in why
    assert "a bare forward pass does not spend" in why
    assert "estimate terms:" in recorded["verdict"]["decode_reason"] and "estimate terms:" not in why  # in the table


def test_the_table_view(recorded):
    text = emit(VerifyResult(recorded), "table")
    assert max(len(line) for line in text.splitlines()) <= 100
    flat = " ".join(text.split())
    assert "Decode step (whole forward, CUDA graph), ms: the calibrated estimate term by term vs this" in flat
    # batch 1: roofline 3.76 vs 3.55 (-0.213), per-layer 32 x 1e-3 x 37.61 = 1.20 vs 0.989, compute 1.14 vs 0
    for needle in ("1 roofline 3.76 3.55 -0.213 16.08 GB / 4.27 | 4.53 TB/s",
                   "per-layer fixed cost 1.20 0.989 -0.214 32 x 37.6 | 30.9 us",
                   "all-reduce 0.000 0.000 0.000 none: one GPU",
                   "compute 1.14 0.000 -1.14 FLOPs at 21.7% of peak | rest",
                   "step 6.11 4.54 -1.57 -25.7%; 220 tokens/s",
                   "111 roofline 31.4 29.6 -1.78 134.20 GB / 4.27 | 4.53 TB/s",
                   "compute 10.1 2.23 -7.84", "step 42.7 32.8 -9.84 -23.0%; 3,379 tokens/s",
                   "so batch 1's compute reads 0"):
        assert needle in flat, needle
    assert "Per-layer fixed cost: 30.9 us" not in flat  # the table's row says it


def test_csv_and_json_carry_the_terms(recorded):
    r = copy.deepcopy(recorded)
    split = of_result(r)
    for p in r["decode"]["points"]:
        p["terms"] = split[p["batch"]]  # as verify_run records them from session 63 on
    rows = list(csv.DictReader(io.StringIO(emit(VerifyResult(r), "csv"))))

    def row(item):
        (found,) = [x for x in rows if x["section"] == "decode" and x["item"] == item]
        return found

    compute = row("at max concurrency term compute")
    assert (float(compute["predicted"]), float(compute["measured"])) == pytest.approx((10.069, 2.227), abs=1e-3)
    assert float(row("batch 1 term roofline")["measured"]) == pytest.approx(16_083_591_168 / READ * 1e3)
    assert row("batch 1 term allreduce")["error"] == ""  # none predicted
    bandwidth = row("read bandwidth")
    assert (float(bandwidth["predicted"]), float(bandwidth["measured"])) == (CATALOG, READ)
    assert float(bandwidth["error"]) == pytest.approx(READ / CATALOG - 1)  # +6.0%
    fixed = row("per-layer fixed cost")
    assert fixed["unit"] == "us" and float(fixed["measured"]) == pytest.approx(r["decode"]["per_layer_fixed_us"])
    assert row("batch 1 (graph)")["measured"] and row("batch 1 roofline")["predicted"]  # the rows of before stay
    data = json.loads(emit(VerifyResult(r), "json"))
    assert [t["term"] for t in data["decode"]["points"][0]["terms"]] == [
        "roofline", "per_layer_fixed", "allreduce", "compute", "step"]
    assert "per_layer_fixed_us" in data["decode"]  # the field of before, unrenamed
    assert "per_layer_fixed" in emit(VerifyResult(r), "yaml")


def test_a_real_group_counts_its_all_reduces_timed_alone():
    """Hand figures: batch 1 steps 10.0 ms over a 6.0 ms roofline with 1.6 ms of all-reduces timed alone, over 80
    layers: (10.0 - 6.0 - 1.6) / 80 = 30 us a layer; batch 8: 12.0 - 6.4 - 2.4 - 1.8 = 1.4 ms of compute."""
    def point(batch, measured, roofline, allreduce, compute):
        terms = dict(roofline_ms=roofline, fixed_ms=3.0, allreduce_ms=allreduce, compute_ms=compute, layers=80,
                     layer_us=37.5)
        return {"batch": batch, "measured_ms": measured, "estimate_ms": roofline + 3.0 + allreduce + compute,
                "roofline_ms": roofline, "estimate_terms": terms}

    split = step_terms([point(1, 10.0, 6.0, 2.0, 0.5), point(8, 12.0, 6.4, 2.1, 3.0)], 3e12, 3e12, {1: 1.6, 8: 1.8})
    b1, b8 = by_term(split[1]), by_term(split[8])
    assert b1["per_layer_fixed"]["measured_us"] == pytest.approx(30.0)
    assert (b8["allreduce"]["measured_ms"], b8["allreduce"]["measured_how"]) == (1.8, "timed alone")
    assert b8["compute"]["measured_ms"] == pytest.approx(1.4)
    # a batch whose all-reduces were not timed takes them at the estimate
    untimed = step_terms([point(1, 10.0, 6.0, 2.0, 0.5)], 3e12, 3e12)
    assert untimed[1][2]["measured_ms"] == 2.0 and untimed[1][2]["measured_how"].startswith("not timed")


def test_a_tp_group_renders_its_all_reduce_row(recorded):
    r = copy.deepcopy(recorded)
    r["tp"] = {"calls_per_layer": 2, "ranks": 2, "eager": False,
               "points": [{"batch": 1, "ms": 0.3, "per_layer_us": 9.4},
                          {"batch": 111, "ms": 0.5, "per_layer_us": 15.6}]}
    for p in r["decode"]["points"]:
        p["estimate_terms"] = dict(p["estimate_terms"], allreduce_ms=0.4)
        p["estimate_ms"] += 0.4
    flat = " ".join(emit(VerifyResult(r), "table").split())
    assert "all-reduce 0.400 0.300 -0.100 planner | timed alone" in flat
    # batch 1's per-layer cost now leaves out its 0.3 ms of all-reduces: (4.5407 - 3.5515 - 0.3) / 32 = 21.5 us
    assert "32 x 37.6 | 21.5 us" in flat


def test_a_simulated_rank_has_no_all_reduce(recorded):
    r = copy.deepcopy(recorded)
    r["rank"]["tp"] = 2
    assert "all-reduce 0.000 0.000 0.000 none: one simulated rank" in " ".join(emit(VerifyResult(r), "table").split())


def test_the_term_named_is_the_furthest_from_its_estimate():
    """A catalog bandwidth far above the GPU's: measured read 0.7 x the catalog's, so the 30 ms roofline reads
    30 / 0.7 = 42.86 ms and nothing else moves as much."""
    terms = dict(roofline_ms=30.0, fixed_ms=1.0, allreduce_ms=0.0, compute_ms=1.0, layers=32, layer_us=31.25)
    points = [{"batch": 1, "measured_ms": 2.0 / 0.7 + 1.0, "estimate_ms": 4.0, "roofline_ms": 2.0,
               "estimate_terms": dict(terms, roofline_ms=2.0, compute_ms=1.0)},
              {"batch": 64, "measured_ms": 30.0 / 0.7 + 1.0 + 1.0, "estimate_ms": 32.0, "roofline_ms": 30.0,
               "estimate_terms": terms}]
    split = step_terms(points, 1.0e12, 0.7e12)
    within, why = judge_decode([dict(p, terms=split[p["batch"]]) for p in points])
    assert within is False
    assert "term responsible: roofline (batch 64: 30.000 ms estimated vs 42.857 ms measured)" in why
    assert "the measured read bandwidth is -30% against the catalog's" in why
    # batch 1 alone, 2 / 0.7 + 1 = 3.857 ms against 4.0 (-3.6%), is within the tolerance: nothing is named
    within, why = judge_decode([dict(points[0], terms=split[1])])
    assert within and "-3.6%" in why and "responsible" not in why


def test_without_a_batch_1_step_the_per_layer_cost_is_taken_at_its_estimate():
    terms = dict(roofline_ms=31.4, fixed_ms=0.6, allreduce_ms=0.0, compute_ms=9.0, layers=16, layer_us=37.5)
    split = step_terms([{"batch": 500, "measured_ms": 33.209, "estimate_ms": 41.0, "roofline_ms": 31.4,
                         "estimate_terms": terms}])
    fixed = by_term(split[500])["per_layer_fixed"]
    assert (fixed["measured_ms"], fixed["measured_us"]) == (0.6, 37.5)
    assert "taken at the estimate" in fixed["measured_how"]
    assert by_term(split[500])["compute"]["measured_ms"] == pytest.approx(33.209 - 31.4 - 0.6)


def test_a_plan_without_an_estimate_keeps_the_step_table(recorded):
    r = copy.deepcopy(recorded)
    for p in r["decode"]["points"]:
        p.update(estimate_ms=None, estimate_terms=None)
    assert of_result(r) == {}
    flat = " ".join(emit(VerifyResult(r), "table").split())
    assert "batch measured estimate vs estimate roofline vs roofline tokens/s" in flat
    assert "Per-layer fixed cost: 30.9 us" in flat
