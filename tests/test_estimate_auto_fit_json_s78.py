"""--max-model-len auto: estimate's JSON carries check's `auto_fit: {from, to}` (one source: commands/estimate.py
auto_fit_record), on the plans of an auto run only."""

from __future__ import annotations

import json

import pytest

from conftest import run_kvplan

LLAMA_8B, LLAMA_70B = "meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-70B-Instruct"
OWN = 131_072  # Llama 3.1's max_position_embeddings: the length vLLM's auto-fit starts from


def _estimated(*args) -> list:
    r = run_kvplan("estimate", *args, "-f", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["plans"]


def _checked(*args) -> dict:
    r = run_kvplan("check", *args, "-f", "json")
    assert r.returncode in (0, 1), r.stderr
    (row,) = json.loads(r.stdout)["results"]
    return row


@pytest.mark.parametrize("args", [
    (LLAMA_70B, "--gpu", "H100", "-tp", "2"),  # shortened
    (LLAMA_8B, "--gpu", "H100", "-tp", "1"),  # the full length fits: kept
    (LLAMA_70B, "--gpu", "H100", "-tp", "1"),  # ~141 GB of bf16 weights on an 80 GB GPU: no length at all
])
def test_estimate_and_check_agree(args):
    (plan,) = _estimated(*args, "-c", "auto")
    row = _checked(*args, "-c", "auto")
    assert plan["auto_fit"] == row["auto_fit"]
    assert plan["auto_fit"]["from"] == OWN and plan["context"] == row["context"]
    assert list(plan)[list(plan).index("context") + 1] == "auto_fit"  # beside the length, as check's row has it


def test_the_three_cases():
    """to: the length planned where auto-fit shortened it (below 131,072), the model's own where it fits (8B on an
    H100: 131,072 x 128 KiB = 16 GiB a sequence, within a ~56 GiB budget), None where no length holds a token."""
    (short,) = _estimated(LLAMA_70B, "--gpu", "H100", "-tp", "2", "-c", "auto")
    (kept,) = _estimated(LLAMA_8B, "--gpu", "H100", "-c", "auto")
    (none,) = _estimated(LLAMA_70B, "--gpu", "H100", "-c", "auto")
    assert short["auto_fit"] == {"from": OWN, "to": short["context"]} and short["context"] < OWN
    assert kept["auto_fit"] == {"from": OWN, "to": OWN}
    assert none["auto_fit"] == {"from": OWN, "to": None}


def test_only_under_auto():
    (plan,) = _estimated(LLAMA_8B, "--gpu", "H100", "-c", "8192")
    assert "auto_fit" not in plan


def test_a_sweep_keeps_each_plans_own():
    """Each plan of a sweep gets its own record (estimate's fitted indices, renumbered by distinct_plans)."""
    plans = _estimated(LLAMA_70B, "--gpu", "H100", "-tp", "1,2", "-c", "auto")
    assert [p["auto_fit"]["to"] for p in plans] == [None, plans[1]["context"]]
    assert all(p["auto_fit"]["from"] == OWN for p in plans)


def test_csv_flattens_it():
    r = run_kvplan("estimate", LLAMA_70B, "--gpu", "H100", "-tp", "2", "-c", "auto", "-f", "csv")
    header = r.stdout.splitlines()[0].split(",")
    assert header[1:4] == ["context", "auto_fit_from", "auto_fit_to"]
