"""-dcp's surfaces: the header of vLLM's startup lines names --decode-context-parallel-size (and the interleave
where not 1) as given; the JSON's plans carry `dcp` and `dcp_interleave` after `pp` only where D > 1 (the default
JSON keeps its keys, as `data_parallel` appears only with DP / EP); check's rows carry them where the entry sets
them (check.SET_ONLY_KEYS)."""

from __future__ import annotations

import json

from conftest import deployments_file, estimate_plan, run_kvplan

DSV3 = "deepseek-ai/DeepSeek-V3"
H200 = ("--gpu", "H200", "-tp", "8")


def _header(*args) -> str:
    result = run_kvplan("estimate", DSV3, *H200, *args, env={"COLUMNS": "400"})
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()[0]


def test_header_names_dcp_as_given():
    assert _header() == ("vllm 0.32.0 at --max-model-len 163840, --kv-cache-dtype bfloat16, "
                         "--tensor-parallel-size 8:")
    assert _header("-dcp", "8") == ("vllm 0.32.0 at --max-model-len 163840, --kv-cache-dtype bfloat16, "
                                    "--tensor-parallel-size 8, --decode-context-parallel-size 8:")
    assert _header("-dcp", "8", "--dcp-kv-cache-interleave-size", "4") == (
        "vllm 0.32.0 at --max-model-len 163840, --kv-cache-dtype bfloat16, --tensor-parallel-size 8, "
        "--decode-context-parallel-size 8, --cp-kv-cache-interleave-size 4:")
    assert _header("-dcp", "1") == _header()  # 1 is the default: said as without it


def test_json_keys_after_pp_only_with_dcp():
    plain = estimate_plan(DSV3, *H200)
    assert "dcp" not in plain and "dcp_interleave" not in plain
    assert estimate_plan(DSV3, *H200, "-dcp", "1").keys() == plain.keys()
    # an interleave without DCP: vLLM ignores it, and so does the JSON
    assert estimate_plan(DSV3, *H200, "--cp-kv-cache-interleave-size", "4").keys() == plain.keys()
    dcp = estimate_plan(DSV3, *H200, "-dcp", "8")
    keys = list(dcp)
    assert keys[keys.index("pp") + 1:keys.index("pp") + 4] == ["dcp", "dcp_interleave", "dcp_comm_backend"]
    assert (dcp["tp"], dcp["pp"], dcp["dcp"], dcp["dcp_interleave"], dcp["dcp_comm_backend"]) == (8, 1, 8, 1, "ag_rs")
    assert [k for k in keys if k not in ("dcp", "dcp_interleave", "dcp_comm_backend")] == list(plain)
    assert estimate_plan(DSV3, *H200, "-dcp", "4", "--cp-kv-cache-interleave-size", "8")["dcp_interleave"] == 8


def test_yaml_carries_dcp():
    result = run_kvplan("estimate", DSV3, *H200, "-dcp", "2", "--format", "yaml")
    assert result.returncode == 0, result.stderr
    assert "\n  pp: 1\n  dcp: 2\n  dcp_interleave: 1\n  dcp_comm_backend: ag_rs\n" in result.stdout


def test_check_row_carries_dcp_where_set(tmp_path):
    body = (f"  - name: a\n    model: {DSV3}\n    gpu: H200\n    tp: 8\n    dcp: 8\n"
            f"    dcp_interleave: 4\n  - name: b\n    model: {DSV3}\n    gpu: H200\n    tp: 8\n")
    result = run_kvplan("check", "--file", deployments_file(tmp_path, body), "--format", "json")
    assert result.returncode == 0, result.stderr
    a, b = json.loads(result.stdout)["results"]
    assert (a["dcp"], a["dcp_interleave"]) == (8, 4)
    assert "dcp" not in b and "dcp_interleave" not in b


def test_api_plan_carries_dcp():
    from kvplan import api

    (plan,) = api.estimate(DSV3, gpu="H200", tensor_parallel_size=8, decode_context_parallel_size=2)
    assert (plan.dcp, plan.to_dict()["dcp"]) == (2, 2)


def test_pcp_one_plans_as_without_it():
    """-pcp 1 (vLLM 0.12+, engine/arg_utils.py 0.32.0:1204-1206) plans as without it; more: tests/test_pcp_s74.py."""
    assert estimate_plan(DSV3, *H200, "-pcp", "1") == estimate_plan(DSV3, *H200)


def test_dcp_remedy_by_hand():
    """DeepSeek-V3 tp 8 on a 4 GiB KV budget (H200 holds tp 8 as one node: no wider TP to try). A page is 16 tokens
    x (512 + 64) x 2 B x 61 layers = 1,124,352 B, so 4,294,967,296 B hold 3,819 blocks. One 163,840-token request
    needs 10,240 blocks at dcp 1; under -dcp D a rank keeps cdiv(163,840 / D, 16): D 2 -> 5,120 (short), D 4 ->
    2,560 (holds); fp8 halves the page (7,639 blocks) against 10,240 blocks a request (short). So the remedy names
    -dcp 4, and -dcp 4 planned holds 3,819 / 2,560 = 1.49 requests."""
    budget = ("--kv-cache-memory-bytes", "4GiB")
    plan = estimate_plan(DSV3, *H200, *budget)
    assert plan["max_concurrency"] == 0
    assert "would fit with --decode-context-parallel-size 4 or --max-model-len" in plan["suggestion"]
    assert "--kv-cache-dtype fp8" not in plan["suggestion"]
    served = estimate_plan(DSV3, *H200, *budget, "-dcp", "4")
    assert served["engine"]["num_gpu_blocks"] == 4_294_967_296 // 1_124_352 == 3_819
    assert served["engine"]["max_concurrency"] == 3_819 / 2_560 and served["max_concurrency"] == 1
    # from -dcp 2 the search tries the larger divisors of tp only
    assert "--decode-context-parallel-size 4" in estimate_plan(DSV3, *H200, *budget, "-dcp", "2")["suggestion"]


def test_dcp_remedy_in_check_words():
    result = run_kvplan("check", DSV3, "--gpu", "H200", "-tp", "8", "--kv-budget", "4GiB", env={"COLUMNS": "400"})
    assert result.returncode == 1
    assert "would fit with --decode-context-parallel-size 4 or --max-model-len" in result.stdout


def test_no_dcp_remedy_where_vllm_refuses_it():
    """Llama-3.1-70B at tp 8: 8 KV heads, so vLLM refuses every D > 1 (config/model.py 0.32.0:1565-1592); gemma-3's
    sliding layers are not sharded by DCP; vLLM 0.10.1 has no flag."""
    budget = ("--kv-cache-memory-bytes", "1GiB")
    for model in ("meta-llama/Llama-3.1-70B-Instruct", "google/gemma-3-27b-it"):
        plan = estimate_plan(model, *H200, *budget)
        assert plan["max_concurrency"] == 0 and "decode-context-parallel" not in plan["suggestion"], model
    # 0.10.1 has no --kv-cache-memory-bytes either (0.10.2 on), so the memory is cut with --gpu-memory-utilization:
    # 0.62 x 139.8 GiB = 93.07 GB a GPU, less the weights' 85.40 GB at tp 8, leaves at most 7.67 GB before the profile
    # run's terms, short of one 163,840-token request's 61 layers x 576 x 2 B x 163,840 = 11,513,364,480 B; the
    # pinned release at the same setting names -dcp, 0.10.1 does not
    short = ("--gpu-memory-utilization", "0.62")
    plan = estimate_plan(DSV3, *H200, *short, "--engine", "vllm==0.10.1")
    terms = {t["name"]: t["bytes"] for t in plan["budget"]["terms"]}
    assert terms["memory"] - terms["weights"] < plan["kv_bytes_per_sequence_per_gpu"] == 11_513_364_480
    assert plan["kv_budget_bytes_per_gpu"] > 0 and plan["max_concurrency"] == 0
    assert "decode-context-parallel" not in plan["suggestion"]
    assert "--decode-context-parallel-size" in estimate_plan(DSV3, *H200, *short)["suggestion"]
