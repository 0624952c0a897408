"""Session 80: a script reads kvplan's CSV by column, so a command's header depends on its flags only, never on
whether a plan starts, is refused, cannot be sharded or has no engine modelled; and estimate's and check's CSV of the
same plan say the same in every column they share (`pp` and `block_size` the values the plan used). The per-plan
JSON keys are present whatever the plan (a record with no figures is null: the JSON contract's keys).

Figures by hand: Llama-3.1-8B-Instruct has 32 layers, 32 attention heads, 8 KV heads of 128 dims, bf16 (2 B): a
token's KV is 32 x 2 (K, V) x 8 x 128 x 2 B = 131,072 B; TP 3 divides neither 32 heads nor 8 KV heads (unshardable);
its 131,072-token max length refuses -c 1M."""

from __future__ import annotations

import csv
import io
import json

import pytest

import kvplan
from conftest import environment, run_kvplan

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
KV_BYTES_PER_TOKEN = 32 * 2 * 8 * 128 * 2  # 131072
GPU = ("--gpu", "H100")

# one plan each: vLLM starts, vLLM refuses (1M past the model's own 131,072), TP 3 unshardable, the ideal pool
# (--engine none: no engine figures), both, and -c 1 (no prompt timed: vLLM 0.32 keeps room for an output token)
PLANS = {
    "starts": ("-c", "8K"),
    "refused": ("-c", "1M"),
    "unshardable": ("-tp", "3", "-c", "8K"),
    "ideal": ("-c", "8K", "--engine", "none"),
    "ideal unshardable": ("-tp", "3", "-c", "8K", "--engine", "none"),
    "untimed prompt": ("-c", "1"),
}


@pytest.fixture(autouse=True)
def offline():
    with environment({"HF_HUB_OFFLINE": "1", "COLUMNS": "100"}):
        yield


def _csv(command: str, *args) -> tuple:
    r = run_kvplan(command, *args, "--format", "csv")
    assert r.returncode in (0, 1) and "Traceback" not in r.stderr, r.stderr
    header, *rows = list(csv.reader(io.StringIO(r.stdout)))
    return header, [dict(zip(header, row)) for row in rows]


def _check_args(args: tuple) -> tuple:
    return args if "-tp" in args else ("-tp", "1", *args)


# estimate


@pytest.mark.parametrize("flags,plans", [
    ((), tuple(PLANS)),
    (("-dp", "2"), ("starts", "refused", "unshardable", "untimed prompt")),  # --engine none refuses -dp
    (("--engine", "vllm==0.34.0"), ("starts", "refused", "unshardable", "untimed prompt")),
])
def test_estimate_csv_header_depends_on_the_flags_only(flags, plans):
    # before, the unshardable plan wrote one empty `decode` and one `prefill` column in place of the 28 decode_* /
    # prefill_* ones (74 columns against 100), and -c 1 one `prefill` column in place of 7 (94)
    headers = {name: _csv("estimate", LLAMA, *GPU, *PLANS[name], *flags)[0] for name in plans}
    first = headers[plans[0]]
    assert all(header == first for header in headers.values()), {n: len(h) for n, h in headers.items()}
    assert "decode" not in first and "prefill" not in first and "engine" not in first
    assert {"decode_points", "decode_constants_peak_flops_bf16", "prefill_ttft_ms", "prefill_input_len_note",
            "engine_num_gpu_blocks"} <= set(first)
    # a sweep with an unshardable plan beside a valid one: the same columns as either alone
    assert _csv("estimate", LLAMA, *GPU, "-tp", "1,3", "-c", "8K", *flags)[0] == first


def test_a_plan_without_decode_or_prefill_leaves_their_columns_empty():
    header, (row,) = _csv("estimate", LLAMA, *GPU, *PLANS["unshardable"])
    timed = [c for c in header if c.startswith(("decode_", "prefill_"))]
    assert len(timed) == 28 and all(row[c] == "" for c in timed)
    assert row["tp_valid"] == "False" and row["kv_bytes_per_token"] == ""
    header, (row,) = _csv("estimate", LLAMA, *GPU, *PLANS["untimed prompt"])
    assert all(row[c] == "" for c in header if c.startswith("prefill_"))
    assert row["decode_context"] == "1" and row["prefill_ttft_ms"] == ""


# check


def test_check_csv_header_is_the_same_whatever_the_plan():
    headers = {name: _csv("check", LLAMA, *GPU, *_check_args(args))[0] for name, args in PLANS.items()}
    first = headers["starts"]
    assert all(header == first for header in headers.values()), {n: len(h) for n, h in headers.items()}


def test_check_suggest_csv_header_is_the_same_whatever_the_model():
    # Llama: 32 heads, 8 KV heads (TP 16 replicates them); Falcon-7B: 71 heads, 1 KV head (every TP replicates)
    llama, falcon = (_csv("check", "--suggest", model)[0] for model in (LLAMA, "tiiuae/falcon-7b"))
    assert llama == falcon == ["tp", "attention_heads_per_gpu", "kv_heads_per_gpu", "kv_heads_replicated",
                               "warnings"]


@pytest.mark.parametrize("args,pp,block_size", [
    (("-c", "8K"), "1", "16"),  # vLLM 0.32's CacheConfig.DEFAULT_BLOCK_SIZE 16 (vllm_specs.default_block_size)
    (("-tp", "3", "-c", "8K"), "1", "16"),  # unshardable: no cache laid out, the same 16 estimate states
    (("-c", "8K", "--engine", "none"), "1", "16"),  # the ideal pool's 16
    (("-c", "8K", "-pp", "2"), "2", "16"),
    (("-c", "8K", "--block-size", "32"), "1", "32"),
    (("-c", "8K", "--engine", "vllm==0.34.0"), "1", "64"),  # 0.34's DEFAULT_BLOCK_SIZE 64 (config/cache.py :185)
])
def test_check_csv_writes_the_pp_and_block_size_the_plan_used(args, pp, block_size):
    # before, check's CSV left both empty where the deployment did not set them, while estimate's wrote 1 and 16
    _, (row,) = _csv("check", LLAMA, *GPU, *_check_args(args))
    assert (row["pp"], row["block_size"]) == (pp, block_size)
    _, (planned,) = _csv("estimate", LLAMA, *GPU, *args)
    assert (planned["pp"], planned["block_size"]) == (pp, block_size)


def test_check_json_keeps_what_the_deployment_set():
    # docs/ci.md: `pp` null where unset, `block_size` only where the deployment sets it; the CSV alone resolves them
    r = run_kvplan("check", LLAMA, *GPU, "-tp", "1", "-c", "8K", "--format", "json")
    (result,) = json.loads(r.stdout)["results"]
    assert result["pp"] is None and "block_size" not in result


def test_the_api_renders_the_resolved_shape_of_the_deployments_it_holds():
    checks = kvplan.check(LLAMA, tensor_parallel_size=[1, 3], gpu="H100", max_model_len=8192)
    rows = list(csv.DictReader(io.StringIO(kvplan.emit(checks[1:], "csv"))))  # the TP 3 row alone
    assert [(r["tp"], r["pp"], r["block_size"]) for r in rows] == [("3", "1", "16")]
    gate = kvplan.check_deployments([{"name": "chat", "model": LLAMA, "tp": 1, "gpu": "H100", "context": 8192},
                                     {"name": "wide", "model": LLAMA, "tp": 1, "pp": 2, "gpu": "H100",
                                      "context": 8192, "block_size": 32}])
    rows = list(csv.DictReader(io.StringIO(kvplan.emit(gate, "csv"))))
    assert [(r["name"], r["pp"], r["block_size"]) for r in rows] == [("chat", "1", "16"), ("wide", "2", "32")]


# estimate and check of the same plan


@pytest.mark.parametrize("name", [*PLANS, "pipeline", "block 32", "fp8"])
def test_estimate_and_check_csv_agree_on_every_shared_column(name):
    args = {"pipeline": ("-c", "8K", "-pp", "2"), "block 32": ("-c", "8K", "--block-size", "32"),
            "fp8": ("-c", "8K", "--kv-cache-dtype", "fp8")}.get(name) or PLANS[name]
    header, (planned,) = _csv("estimate", LLAMA, *GPU, *args)
    checked_header, (checked,) = _csv("check", LLAMA, *GPU, *_check_args(args))
    shared = [c for c in checked_header if c in header]
    assert len(shared) == 47  # every column check writes but its deployment's own (name, file, passed, ...)
    # an unshardable deployment has no KV budget in check's contract (docs/ci.md: "null when sharding fails"), where
    # estimate states the budget a GPU would have at that degree: the one column they read differently
    differ = {c for c in shared if planned[c] != checked[c]}
    assert differ == ({"kv_budget_bytes_per_gpu"} if "unshardable" in name else set()), \
        {c: (planned[c], checked[c]) for c in differ}
    if "unshardable" not in name:
        per_token = KV_BYTES_PER_TOKEN // (2 if name == "fp8" else 1)  # fp8: 1 B an element
        context = {"untimed prompt": 1, "refused": 1024 * 1024}.get(name, 8192)
        assert int(checked["kv_bytes_per_token"]) == per_token
        block = int(checked["block_size"])  # a sequence holds whole blocks: -c 1 takes one of 16 tokens
        held = -(-context // block) * block
        stages = int(checked["pp"])  # a GPU of pp 2 holds 16 of the 32 layers
        assert int(checked["kv_bytes_per_sequence_per_gpu"]) == held * per_token // stages  # 8,192 x 131,072 = 1 GiB
    assert checked["pp_partition"] == ("16; 16" if name == "pipeline" else "32")  # 32 layers over the stages


# JSON and YAML: the per-plan keys whatever the plan


def _keys(command: str, args: tuple) -> dict:
    r = run_kvplan(command, LLAMA, *GPU, *args, "--format", "json")
    doc = json.loads(r.stdout)
    (item,) = doc["plans"] if command == "estimate" else doc["results"]
    return item


@pytest.mark.parametrize("command", ["estimate", "check"])
def test_json_keys_are_there_whatever_the_plan(command):
    items = {name: _keys(command, args if command == "estimate" else _check_args(args))
             for name, args in PLANS.items()}
    first = list(items["starts"])
    assert all(list(item) == first for item in items.values())
    # a record without figures is null, not absent: plan["decode"] is None where TP 3 cannot be sharded
    assert items["unshardable"]["engine"] is None and items["ideal"]["engine"] is None
    if command == "estimate":
        assert items["unshardable"]["decode"] is None and items["unshardable"]["prefill"] is None
        assert items["untimed prompt"]["prefill"] is None
        assert list(items["starts"]["decode"]) == list(items["refused"]["decode"]) == list(items["ideal"]["decode"])
