"""Review of session 80's CSV columns (19df5334): check's CSV writes the pp and block size a deployment's plan used,
where its JSON keeps what the deployment set. Those resolved values travelled in CheckResult.shapes keyed by id() of
each result dict, so a copy of the result (copy.deepcopy, pickle: new dicts, the old ids) wrote empty cells, and an
id kept past its dict's life could name another one. They now go by position.

Figures by hand: Llama-3.1-8B-Instruct at vLLM 0.32 (the pinned release) plans with CacheConfig.DEFAULT_BLOCK_SIZE 16
(config/cache.py 0.32.0:185) and one stage where -pp is unset; a deployment's block_size 32 and pp 2 are its own."""

from __future__ import annotations

import copy
import csv
import io
import pickle

import pytest

import kvplan
from conftest import environment, run_kvplan

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
DEPLOYMENTS = [{"name": "chat", "model": LLAMA, "tp": 1, "gpu": "H100", "context": 8192},
               {"name": "wide", "model": LLAMA, "tp": 1, "pp": 2, "gpu": "H100", "context": 8192, "block_size": 32},
               {"name": "odd", "model": LLAMA, "tp": 3, "gpu": "H100", "context": 8192}]  # 32 heads: TP 3 unshardable
PLANNED = [("chat", "1", "16"), ("wide", "2", "32"), ("odd", "1", "16")]


@pytest.fixture(autouse=True)
def offline():
    with environment({"HF_HUB_OFFLINE": "1"}):
        yield


def _shapes(checks) -> list:
    return [(r["name"], r["pp"], r["block_size"]) for r in csv.DictReader(io.StringIO(kvplan.emit(checks, "csv")))]


@pytest.mark.parametrize("copied", [copy.deepcopy, lambda checks: pickle.loads(pickle.dumps(checks))],
                         ids=["deepcopy", "pickle"])
def test_a_copied_check_writes_the_planned_shape(copied):
    # before: ('chat', '', ''), ('odd', '', '') -- the copy's dicts are new objects, the shapes keyed by the old ids
    gate = kvplan.check_deployments(DEPLOYMENTS)
    assert _shapes(gate) == PLANNED
    assert _shapes(copied(gate)) == PLANNED
    assert _shapes(copied(gate)[::-1]) == PLANNED[::-1]  # a slice of the copy maps its rows onto their shapes
    assert [r.get("block_size") for r in copied(gate).to_dict()["results"]] == [None, 32, None]  # JSON: as set


def test_a_copy_made_after_the_original_is_gone_writes_the_planned_shape():
    # pickled, then the original dropped: the loaded dicts may sit where the old ones did, so an id() map could
    # hand one row another's shape; by position each row keeps its own
    data = pickle.dumps(kvplan.check_deployments(DEPLOYMENTS[::-1]))
    assert _shapes(pickle.loads(data)) == PLANNED[::-1]


def test_rows_the_check_did_not_plan_write_their_own_values():
    # a dict put into the list by hand has no plan: its cells are what it says (pp unset: empty), not another row's
    gate = kvplan.check_deployments(DEPLOYMENTS)
    gate[0] = dict(gate[0])
    assert _shapes(gate) == [("chat", "", ""), *PLANNED[1:]]


# An unshardable TP degree: vLLM refuses it in VllmConfig.__post_init__ (config/vllm.py 0.34.0:1498 ->
# config/model.py :1582 "must be divisible by tensor parallel size"), after CacheConfig set block_size to its
# DEFAULT_BLOCK_SIZE (config/cache.py 0.34.0:185 = 64, filled in at :481-491; 0.33.0:185 = 16) and before any
# backend raises it: the block a plan states there is the release's default.
@pytest.mark.parametrize("engine,block", [("vllm==0.34.0", "64"), ("vllm==0.33.0", "16"), ("vllm==0.6.6", "16"),
                                          ("none", "16")])
def test_an_unshardable_plan_states_the_releases_default_block(engine, block):
    # before: "16" at 0.34 too, beside the 64 of the TP 1 plan of the same sweep
    r = run_kvplan("estimate", LLAMA, "--gpu", "H100", "-c", "8K", "-tp", "1,3", "--engine", engine, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [(x["tp"], x["tp_valid"], x["block_size"]) for x in rows] == [("1", "True", block), ("3", "False", block)]
    r = run_kvplan("check", LLAMA, "--gpu", "H100", "-c", "8K", "-tp", "3", "--engine", engine, "--format", "csv")
    (row,) = csv.DictReader(io.StringIO(r.stdout))
    assert row["block_size"] == block
    # a --block-size the deployment sets is kept
    r = run_kvplan("check", LLAMA, "--gpu", "H100", "-c", "8K", "-tp", "3", "--engine", engine, "--block-size", "32",
                   "--format", "csv")
    assert next(csv.DictReader(io.StringIO(r.stdout)))["block_size"] == "32"
