"""Session 62's process-wide memo tables (engines/vllm_engine.py settings and refusals, engines/vllm_budget.py
stage_free, plan/plan.py _replanned and _stage_specs, engines/vllm_admission.py footprints) give the answers a fresh
process gives, whatever ran before in this one, stay bounded, and survive threads sharing them (kvplan/memo.py)."""

import json
import sys
import threading

import pytest

from conftest import run_installed, run_kvplan

import kvplan.engines.vllm_admission as admission
import kvplan.engines.vllm_budget as vb
import kvplan.engines.vllm_engine as ve
import kvplan.plan.plan as plan_module
from kvplan.memo import remember

LLAMA = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336,
         "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256,
         "max_position_embeddings": 131072, "tie_word_embeddings": False, "torch_dtype": "bfloat16"}


class RacingTable(dict):
    """A full memo table as another thread leaves it: the oldest key it hands out is dropped (by that thread) before
    this one drops it, the interleaving that made `del table[next(iter(table))]` raise KeyError mid-estimate."""

    def __iter__(self):
        oldest = next(super().__iter__())
        super().pop(oldest)
        return iter([oldest])


def _racing(cap: int) -> RacingTable:
    return RacingTable((("filler", i), None) for i in range(cap))


def test_remember_drops_the_oldest_and_keeps_the_cap():
    table = {}
    for i in range(10):
        remember(table, 4, i, i * i)
    assert table == {6: 36, 7: 49, 8: 64, 9: 81}
    racing = _racing(3)
    remember(racing, 3, "new", 1)  # its oldest already gone: no KeyError
    assert racing["new"] == 1 and len(racing) <= 3


@pytest.mark.parametrize("table, cap", [("_REPLANS", "MAX_REPLANS"), ("_STAGE_SPECS", "MAX_STAGE_SPECS")])
def test_plan_memos_survive_an_evicted_oldest(table, cap, monkeypatch):
    """A remedy search (_replanned) and a pp plan's stage views (_stage_specs) with their table full and its oldest
    entry taken by another thread: the estimate is the one a fresh table gives."""
    asked = ("estimate", "meta-llama/Llama-3.1-70B-Instruct", "-pp", "2", "-c", "131072", "--gpu", "A100-40GB",
             "--format", "json")
    fresh = run_kvplan(*asked)
    assert fresh.returncode == 0, fresh.stderr
    monkeypatch.setattr(plan_module, cap, 3)
    monkeypatch.setattr(plan_module, table, _racing(3))
    raced = run_kvplan(*asked)
    assert raced.returncode == 0, raced.stderr
    assert raced.stdout == fresh.stdout


def test_engine_and_budget_memos_survive_an_evicted_oldest(monkeypatch):
    asked = ("estimate", "meta-llama/Llama-3.1-70B-Instruct", "-tp", "1,2", "-pp", "2", "--engine", "vllm==0.20.0",
             "--format", "json")
    fresh = run_kvplan(*asked)
    assert fresh.returncode == 0, fresh.stderr
    monkeypatch.setattr(vb, "MAX_STAGE_FREE", 3)
    monkeypatch.setattr(vb, "_STAGE_FREE", _racing(3))
    monkeypatch.setattr(ve, "MAX_REFUSALS", 3)
    monkeypatch.setattr(ve, "_REFUSALS", _racing(3))
    monkeypatch.setattr(ve, "MAX_SETTINGS", 1)  # every engine's own table full after its first answer
    raced = run_kvplan(*asked)
    assert raced.returncode == 0, raced.stderr
    assert raced.stdout == fresh.stdout


def test_threads_sharing_the_memos_get_the_sequential_answers(monkeypatch):
    """Several threads planning at once through tiny tables (every insert evicts): each answer is the one planned
    alone, and none raises."""
    from kvplan import api

    for module, name in ((vb, "MAX_STAGE_FREE"), (plan_module, "MAX_REPLANS"), (plan_module, "MAX_STAGE_SPECS"),
                         (ve, "MAX_SETTINGS"), (ve, "MAX_REFUSALS")):
        monkeypatch.setattr(module, name, 2)
    cases = [dict(model="meta-llama/Llama-3.1-70B-Instruct", tensor_parallel_size=[1, 2], pipeline_parallel_size=2),
             dict(model="meta-llama/Llama-3.1-70B-Instruct", max_model_len=131072, gpu="A100-40GB"),
             dict(model="meta-llama/Llama-3.1-8B", max_model_len=[8192, 32768], kv_cache_dtype=["auto", "fp8"])]

    def planned(case):
        case = dict(case)
        return json.dumps([p.to_dict() for p in api.estimate(case.pop("model"), **case)], sort_keys=True)

    alone = [planned(case) for case in cases]
    got, errors = [], []

    def worker(offset: int):
        for i in range(6):
            k = (i + offset) % len(cases)
            try:
                got.append((k, planned(cases[k])))
            except Exception as exc:  # noqa: BLE001 - the defect was a KeyError from a shared table
                errors.append(repr(exc))

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads change places between almost any two bytecodes
    try:
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(switch)
    assert errors == []
    assert len(got) == 24 and all(answer == alone[k] for k, answer in got)


def test_tables_stay_within_their_caps(monkeypatch):
    for module, name in ((vb, "MAX_STAGE_FREE"), (plan_module, "MAX_REPLANS"), (plan_module, "MAX_STAGE_SPECS")):
        monkeypatch.setattr(module, name, 5)
    for context in ("8K", "16K", "32K", "64K", "131072"):
        for pp in ("1", "2", "3"):
            r = run_kvplan("estimate", "meta-llama/Llama-3.1-70B-Instruct", "-c", context, "-pp", pp, "--gpu",
                           "A100-40GB", "--format", "json")
            assert r.returncode == 0, r.stderr
    assert len(vb._STAGE_FREE) <= 5 and len(plan_module._REPLANS) <= 5 and len(plan_module._STAGE_SPECS) <= 5
    assert len(admission._REMEMBERED) <= 256


def test_a_config_edited_in_place_is_planned_afresh(tmp_path):
    """One config.json rewritten between runs of one process (same path, same size, one field changed): each run
    gives what a fresh process gives for that content, in any order."""
    path = tmp_path / "config.json"
    variants = [LLAMA, dict(LLAMA, num_key_value_heads=4), dict(LLAMA, num_hidden_layers=48)]
    asked = ("estimate", str(path), "-pp", "2", "-c", "32K", "--kv-cache-dtype", "auto,fp8", "--format", "json")
    fresh = []
    for variant in variants:
        path.write_text(json.dumps(variant))
        done = run_installed(*asked)
        assert done.returncode == 0, done.stderr
        fresh.append(done.stdout)
    assert len(set(fresh)) == 3
    for k in (0, 1, 2, 1, 0, 2, 2, 0):
        path.write_text(json.dumps(variants[k]))
        again = run_kvplan(*asked)
        assert again.returncode == 0, again.stderr
        assert again.stdout == fresh[k], k


def test_estimates_in_any_order_are_the_fresh_process_ones():
    """Estimates that share models, engines and GPUs, run here one after another in two orders: each the bytes a
    fresh process prints."""
    runs = [("estimate", "meta-llama/Llama-3.1-70B-Instruct", "-tp", "1,2", "-pp", "2", "-c", "131072"),
            ("estimate", "meta-llama/Llama-3.1-70B-Instruct", "-tp", "1", "-c", "131072", "--engine", "vllm==0.34.0"),
            ("estimate", "Qwen/Qwen3-Next-80B-A3B-Thinking", "-pp", "3", "--max-num-seqs", "64"),
            ("estimate", "Qwen/Qwen3-Next-80B-A3B-Thinking", "-pp", "3", "--max-num-batched-tokens", "2048")]
    fresh = []
    for asked in runs:
        done = run_installed(*asked, "--format", "json")
        assert done.returncode == 0, done.stderr
        fresh.append(done.stdout)
    for order in ((0, 1, 2, 3), (3, 2, 1, 0, 2, 0)):
        for k in order:
            assert run_kvplan(*runs[k], "--format", "json").stdout == fresh[k], runs[k]
