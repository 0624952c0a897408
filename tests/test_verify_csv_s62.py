"""`kvplan verify --format csv` (design.md: every command takes table|json|yaml|csv): one row a figure verify
predicted and measured, from a real verify result: Llama-3.1-8B at 8K under vLLM 0.32.0 on an H200 (session 54,
benchmarks/device_runs/s54_h200_2026-12-05/s53_verify_llama8b_0.32.0.json). The expected figures are read off that
run's own table output as RESULTS.md recorded it (session 54: weights 16.06 GB both ways, 110 planned / 111 measured,
decode b1 4.54 ms against 6.11, -25.7%)."""

import copy
import csv
import io
import json
from pathlib import Path

import pytest

from conftest import one_error_line, run_kvplan
from kvplan.commands.verify import VerifyResult
from kvplan.render import emit

RUNS = Path(__file__).resolve().parent.parent / "benchmarks/device_runs"
RUN = RUNS / "s54_h200_2026-12-05/s53_verify_llama8b_0.32.0.json"


@pytest.fixture(scope="module")
def result() -> dict:
    return json.loads(RUN.read_text())


def table(r: dict) -> list:
    return list(csv.DictReader(io.StringIO(emit(VerifyResult(r), "csv"))))


def row(rows: list, section: str, item: str) -> dict:
    (found,) = [x for x in rows if x["section"] == section and x["item"] == item]
    return found


def test_columns_and_sections(result):
    rows = table(result)
    assert list(rows[0]) == ["rank", "section", "item", "unit", "predicted", "measured", "error", "verdict"]
    assert {x["rank"] for x in rows} == {"0"}  # one GPU
    assert [x["item"] for x in rows if x["section"] == "budget"] == [
        "weights", "activation_peak", "non_torch", "cuda_graphs", "nccl", "runner_state", "kv_budget"]
    assert [x["item"] for x in rows if x["section"] == "verdict"] == ["capacity", "budget", "decode"]


def test_figures_of_the_h200_run(result):
    rows = table(result)
    weights = row(rows, "budget", "weights")
    assert (int(weights["predicted"]), int(weights["measured"]), float(weights["error"])) == (16060522496,) * 2 + (0.0,)
    graphs = row(rows, "budget", "cuda_graphs")  # 1.25 GiB predicted, 276 MiB held
    assert int(graphs["predicted"]) == 5 * 2**28 and int(graphs["measured"]) // 2**20 == 276
    nccl = row(rows, "budget", "nccl")  # one GPU: none predicted, nothing measured, no error
    assert (nccl["predicted"], nccl["measured"], nccl["error"]) == ("0", "", "")
    conc = row(rows, "capacity", "max_concurrency")
    assert (int(conc["predicted"]), int(conc["measured"])) == (110, 111)
    assert float(conc["error"]) == pytest.approx(1 / 110)
    budget = row(rows, "budget", "kv_budget")  # what the terms leave: 110.5 GiB planned, 111.7 measured
    assert (int(budget["predicted"]), int(budget["measured"])) == (118645466727, 119941375079)
    b1 = row(rows, "decode", "batch 1 (graph)")
    assert float(b1["measured"]) == pytest.approx(4.54, abs=0.005)
    assert float(b1["predicted"]) == pytest.approx(6.11, abs=0.005)
    assert float(b1["error"]) == pytest.approx(-0.257, abs=0.0005)  # the decode verdict's own "-25.7%"
    assert row(rows, "decode", "max concurrency batch")["measured"] == "111"
    at_max = row(rows, "decode", "at max concurrency (graph)")  # b111 32.8 ms against 42.7
    assert float(at_max["measured"]) == pytest.approx(32.85, abs=0.005)
    assert float(row(rows, "decode", "batch 1 roofline")["predicted"]) == pytest.approx(3.765, abs=0.0005)
    assert row(rows, "capacity", "boundary_sequences")["measured"] == "111"


def test_verdict_rows(result):
    rows = table(result)
    assert row(rows, "verdict", "capacity")["verdict"].startswith("confirmed: allocation within 0.5%")
    assert row(rows, "verdict", "budget")["verdict"].startswith("within: planned max concurrency 110 vs 111")
    assert row(rows, "verdict", "decode")["verdict"].startswith("not within: ")
    judged = copy.deepcopy(result)
    judged["verdict"]["decode_within"] = None
    assert row(table(judged), "verdict", "decode")["verdict"].startswith("not judged: ")


def test_an_unmeasured_figure_leaves_its_error_blank(result):
    r = copy.deepcopy(result)
    r["prefill"]["estimate_ms"] = None
    ttft = row(table(r), "prefill", "ttft")
    assert ttft["predicted"] == "" and ttft["error"] == "" and float(ttft["measured"]) > 0


def test_the_count_the_budget_verdict_judged(result):
    # where max_num_seqs caps both plans the verdict judges resident sequences (judge.budget_counts): the csv follows
    r = copy.deepcopy(result)
    r["budget"]["verdict_counts"] = {"planned": 3072, "measured": 3001, "what": "resident sequences (before the cap)"}
    counted = row(table(r), "capacity", "resident_sequences")
    assert (counted["predicted"], counted["measured"]) == ("3072", "3001")
    assert float(counted["error"]) == pytest.approx(-71 / 3072)


def test_a_real_group_has_a_row_set_per_rank(result):
    r = copy.deepcopy(result)
    r["tp"] = {"ranks": 2, "eager": False, "points": [{"batch": 1, "per_layer_us": 21.0, "planner_per_layer_us": 20.0}]}
    other = {"rank": 1, "terms": {t["term"]: t["measured_bytes"] for t in r["terms"]},
             "measured_kv_budget_bytes": 5 * 2**30, "rank_kv_budget_bytes": None, "allocation": r["allocation"],
             "boundary_confirmed": False, "served": 45}
    r["ranks"] = [dict(other, rank=0), other]
    rows = table(r)
    ar = row(rows, "allreduce", "batch 1 per layer")
    assert (ar["unit"], float(ar["error"])) == ("us", pytest.approx(0.05))
    ones = [x for x in rows if x["rank"] == "1"]
    assert [x["item"] for x in ones if x["section"] == "budget"][-1] == "kv_budget"
    assert [x for x in ones if x["item"] == "kv_budget"][0]["measured"] == str(5 * 2**30)
    assert [x for x in ones if x["item"] == "boundary_sequences"][0]["verdict"] == "not confirmed"
    assert not [x for x in rows if x["rank"] == "0" and x["section"] == "budget" and x["predicted"] == ""
                and x["item"] != "nccl"]  # rank 0's rows keep their predictions; its summary is not repeated


def test_eager_steps_say_so(result):
    r = copy.deepcopy(result)
    for p in r["decode"]["points"]:
        p["eager"] = True
    assert row(table(r), "decode", "batch 1 (eager)")["unit"] == "ms"


def test_the_cli_takes_csv_and_refuses_html():
    # csv passes the format check and reaches the options' check (refused before torch, GPU or not)
    line = one_error_line(run_kvplan("verify", "meta-llama/Llama-3.2-1B-Instruct", "-c", "8192", "--format", "CSV",
                                     "--max-num-seqs", "9000", "--max-num-batched-tokens", "8192"))
    assert "max_num_seqs" in line or "max-num-seqs" in line, line
    line = one_error_line(run_kvplan("verify", "meta-llama/Llama-3.2-1B-Instruct", "--format", "html"))
    assert "format" in line and "csv" in line and "html" not in line.split("is not one of", 1)[1]
