"""Which of vLLM's engines serves a plan, in the JSON: `engine.core` ("v0" | "v1"), and on V0 `virtual_engines`,
`watermark_blocks` and, where a release from 0.8 falls back to V0, `v0_reason` (kvplan/engines/figures.py).
vLLM's evidence:
- up to 0.7.3 V0 is the default engine (V1 only under VLLM_USE_V1=1 from 0.7); from 0.8 EngineArgs.
  _is_v1_supported_oracle picks V1 unless it falls back, for pp > 1 with the default executor on 0.8.0-0.9.0
  (engine/arg_utils.py 0.8.5:1476-1482); from 0.11 there is no V0 (vllm/engine/llm_engine.py is V1's).
- V0 builds one Scheduler a pipeline stage (engine/llm_engine.py 0.6.3:423-428), each with its block manager over
  num_gpu_blocks // pp (core/scheduler.py 0.6.3:324-326) and the default watermark 0.01: watermark_blocks =
  int(0.01 x its blocks) (core/block_manager_v2.py 0.6.3:65, :91; core/block_manager.py 0.8.5 alike).
Llama-3.1-8B on an H100 at 8,192 tokens; the block counts come from the plan (tested elsewhere), the watermark and
the shares here by hand."""

import csv
import io
import json

import pytest
import yaml

from conftest import run_kvplan
from kvplan.commands.check.results import CHECK_COLUMNS

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
V0_KEYS = ("v0_reason", "virtual_engines", "watermark_blocks")


def _engine(*flags):
    out = run_kvplan("estimate", MODEL, "--gpu", "H100", "--max-model-len", "8192", *flags, "--format", "json")
    assert out.returncode == 0, out.stderr
    (plan,) = json.loads(out.stdout)["plans"]
    return plan["engine"]


def test_vllm_0_6_3_runs_v0_with_its_watermark():
    engine = _engine("--engine", "vllm==0.6.3")
    assert engine["core"] == "v0" and engine["virtual_engines"] == 1
    assert engine["num_gpu_blocks"] == 27268  # the block count the plan logs ("# GPU blocks: 27268")
    assert engine["watermark_blocks"] == 272  # int(0.01 x 27,268) = int(272.68)
    assert "v0_reason" not in engine  # no V1 to fall back from before 0.8


def test_vllm_0_8_5_falls_back_to_v0_for_two_pipeline_stages():
    engine = _engine("--engine", "vllm==0.8.5", "-pp", "2")
    assert engine["core"] == "v0" and engine["virtual_engines"] == 2
    assert engine["v0_reason"] == "--pipeline-parallel-size 2 (the default executor)"
    assert engine["num_gpu_blocks"] == 62224
    assert engine["watermark_blocks"] == 311  # each share 62,224 // 2 = 31,112 blocks; int(0.01 x 31,112) = 311
    # the new keys after every older one, so that a CSV's older columns keep their places
    assert list(engine)[-4:] == ["core", *V0_KEYS]


@pytest.mark.parametrize("flags", [("--engine", "vllm==0.8.5"), ("--engine", "vllm==0.34.0")])
def test_v1_plans_say_v1_and_carry_no_v0_keys(flags):
    engine = _engine(*flags)
    assert engine["core"] == "v1" and list(engine)[-1] == "core"
    assert not set(V0_KEYS) & set(engine)


def test_yaml_says_it_too():
    out = run_kvplan("estimate", MODEL, "--gpu", "H100", "--max-model-len", "8192", "--engine", "vllm==0.6.3",
                     "--format", "yaml")
    assert yaml.safe_load(out.stdout)["plans"][0]["engine"]["core"] == "v0"


def test_check_csv_writes_the_new_columns_last(tmp_path):
    tail = ("engine_core", "engine_v0_reason", "engine_virtual_engines", "engine_watermark_blocks")
    assert CHECK_COLUMNS[-len(tail):] == tail
    assert CHECK_COLUMNS[-len(tail) - 2:-len(tail)] == ("engine_refusal_remedy_range_from",
                                                        "engine_refusal_remedy_range_before")
    path = tmp_path / "d.yaml"
    path.write_text(yaml.safe_dump({"deployments": [
        {"name": "v0", "model": MODEL, "tp": 1, "gpu": "H100", "context": 8192, "pp": 2, "engine": "vllm==0.8.5"},
        {"name": "v1", "model": MODEL, "tp": 1, "gpu": "H100", "context": 8192, "engine": "vllm==0.8.5"}]}))
    out = run_kvplan("check", "--file", path, "--format", "csv")
    rows = {row["name"]: row for row in csv.DictReader(io.StringIO(out.stdout))}
    assert rows["v0"]["engine_core"] == "v0" and rows["v0"]["engine_virtual_engines"] == "2"
    assert rows["v1"]["engine_core"] == "v1" and rows["v1"]["engine_watermark_blocks"] == ""
