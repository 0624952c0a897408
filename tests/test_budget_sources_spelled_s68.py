"""Session 68: a budget term's source names the engine flag that set it ("--enforce-eager sets cudagraph_mode NONE"):
the command line writes vLLM's flag, the Python API its keyword (kvplan.api: vLLM's keyword names), as its errors
and remedies do (found by session 68's fuzz round)."""

import json
import re

from conftest import run_kvplan

import kvplan.api as api

MODEL = "meta-llama/Llama-3.1-8B-Instruct"


def _sources(data: dict) -> dict:
    return {term["name"]: term["source"] for term in data["budget"]["terms"]}


def test_the_api_names_keywords_where_the_command_line_names_flags():
    (plan,) = api.estimate(MODEL, max_model_len=8192, enforce_eager=True)
    through_api = _sources(plan.to_dict())
    r = run_kvplan("estimate", MODEL, "-c", "8192", "--enforce-eager", "--format", "json")
    (cli,) = json.loads(r.stdout)["plans"]
    through_cli = _sources(cli)
    assert through_cli["cuda_graphs"] == "0: --enforce-eager sets cudagraph_mode NONE, so the worker skips the graph " \
                                         "profile"
    assert through_api["cuda_graphs"] == "0: enforce_eager sets cudagraph_mode NONE, so the worker skips the graph " \
                                         "profile"
    # every other term reads alike, and no flag is left in the API's
    assert {k: v for k, v in through_api.items() if k != "cuda_graphs"} == \
        {k: v for k, v in through_cli.items() if k != "cuda_graphs"}
    assert not re.search(r"(^|[ (])--[a-z]", json.dumps(plan.to_dict()["budget"]))


def test_lora_and_offload_sources_through_the_api():
    (plan,) = api.estimate(MODEL, max_model_len=8192, enable_lora=True, cpu_offload_gb=2)
    text = json.dumps(plan.to_dict()["budget"])
    assert "enable_lora max_loras 1" in text and "cpu_offload_gb" in text
    assert not re.search(r"(^|[ (])--[a-z]", text)  # a bundled spec's file name keeps its "--"
