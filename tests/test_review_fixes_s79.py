"""Review fixes of session 79.

`--enable-prefix-caching` on a model without Mamba states changes nothing kvplan plans (every layer keeps one KV
page a block whatever the flag; vLLM 0.32.0 turns it on by default for generating models, config/cache.py:141
enable_prefix_caching: bool = True, and V1's block pool reuses cached blocks without reserving any), so check says
so as a notice, which neither fails nor warns: a `vllm serve` line copied from a deployment, the flag spelled out, must
not mark every such deployment "pass, warned" (nor annotate it on GitHub). Where the flag does change the plan (Mamba
states in "all" / "align" mode) or vLLM overrides it, the warning stays (tests/test_check_flag_notes.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import deployments_file, run_kvplan, served_refusal

LLAMA, JAMBA = "meta-llama/Llama-3.1-8B-Instruct", "ai21labs/AI21-Jamba-1.5-Mini"


def _findings(path) -> dict:
    r = run_kvplan("check", "--file", path, "--format", "json")
    assert r.returncode == 0, r.stderr
    return {row["name"]: row for row in json.loads(r.stdout)["results"]}


def test_the_flag_on_an_attention_model_is_a_notice_not_a_warning(tmp_path):
    path = deployments_file(tmp_path, """  - name: served
    gpu: H100
    serve: vllm serve meta-llama/Llama-3.1-8B-Instruct --max-model-len 8192 --enable-prefix-caching
  - name: off
    gpu: H100
    serve: vllm serve meta-llama/Llama-3.1-8B-Instruct --max-model-len 8192 --no-enable-prefix-caching
  - name: plain
    gpu: H100
    serve: vllm serve meta-llama/Llama-3.1-8B-Instruct --max-model-len 8192
""")
    rows = _findings(path)
    for name, said in (("served", "prefix caching on as asked."), ("off", "prefix caching off as asked.")):
        row = rows[name]
        assert [f["message"] for f in row["findings"] if f["key"] == "enable_prefix_caching"] == [said]
        assert [f["level"] for f in row["findings"] if f["key"] == "enable_prefix_caching"] == ["notice"]
        assert row["warnings"] == rows["plain"]["warnings"] == []
        assert row["max_concurrency"] == rows["plain"]["max_concurrency"]  # the flag changes nothing planned


def test_the_flag_vllm_overrides_on_a_mamba_model_stays_a_warning(tmp_path):
    path = deployments_file(tmp_path, f"""  - name: asked
    model: {JAMBA}
    tp: 2
    gpu: H100
    context: 8192
    engine: vllm==0.11.0
    enable_prefix_caching: true
""")
    row = _findings(path)["asked"]
    assert [f["level"] for f in row["findings"] if f["key"] == "enable_prefix_caching"] == ["warning"]


def test_dense_data_parallel_engines_name_their_pipeline_stages():
    """-tp 4 -pp 2 -dp 2: vLLM starts 2 engine cores of 4 x 2 = 8 GPUs each (16 in all, the line's own sum); each core
    is a TP 4 x PP 2 engine, not a TP 4 one."""
    r = run_kvplan("estimate", "meta-llama/Llama-3.1-70B-Instruct", "--gpu", "H100", "-c", "8192", "-tp", "4", "-pp",
                   "2", "-dp", "2")
    assert r.returncode == 0, r.stderr
    text = " ".join(r.stdout.split())
    assert "2 engine core(s) x 8 GPU(s) = 16 GPUs" in text
    assert "Dense model: 2 independent engine(s) of TP 4 x PP 2." in text


def test_check_and_models_name_the_columns_a_narrow_terminal_leaves_out(tmp_path):
    """estimate and gpus said which columns an 80-column terminal left out; check and models dropped theirs without a
    word. At 80 columns check's table cannot hold a 32-character model id beside the other eight columns."""
    path = deployments_file(tmp_path, """  - name: served
    gpu: H100
    serve: vllm serve meta-llama/Llama-3.1-8B-Instruct --max-model-len 8192
""")
    narrow = run_kvplan("check", "--file", path, env={"COLUMNS": "80"})
    assert narrow.returncode == 0, narrow.stderr
    said = " ".join(narrow.stdout.split())
    assert "not shown at this width: model, PP, KV heads/GPU; a wider terminal or --format json has them." in said
    assert "meta-llama" not in said  # the id's column is the one left out
    wide = run_kvplan("check", "--file", path, env={"COLUMNS": "200"})
    assert "meta-llama/Llama-3.1-8B-Instruct" in wide.stdout and "not shown" not in wide.stdout
    models = run_kvplan("models", env={"COLUMNS": "80"})
    header = models.stdout.splitlines()[1].split()
    assert "weights" not in header  # the first to go (priority 7)
    assert "not shown at this width:" in " ".join(models.stdout.split())
    assert "weights" in " ".join(models.stdout.split()).split("not shown at this width:")[1].split("(")[0]
    assert "not shown" not in run_kvplan("models", env={"COLUMNS": "250"}).stdout


@pytest.mark.parametrize("typed, said", [
    # vLLM's argparse reads --gpu as the beginning of --gpu-memory-utilization (tests/test_review2_s79.py)
    ("--gpu H100", "holds --gpu, a flag of kvplan's that `vllm serve` reads as the beginning of "
                   "--gpu-memory-utilization (argparse's abbreviation); write --gpu-memory-utilization, or give "
                   "kvplan's --gpu as the entry's `gpu:` key."),
    ("--min-concurrency 4", "holds --min-concurrency, a flag of kvplan's that `vllm serve` does not take (vLLM stops "
                            "on it); give it as the entry's `min_concurrency:` key."),
    ("--engine vllm==0.32.0", "holds --engine, a flag of kvplan's that `vllm serve` does not take (vLLM stops on it); "
                              "give it as the entry's `engine:` key."),
    ("--kv-dtype fp8", "holds --kv-dtype, kvplan's name for vLLM's --kv-cache-dtype, which `vllm serve` does not take "
                       "(vLLM stops on it); write --kv-cache-dtype."),
    ("-c 8K", "holds -c, kvplan's name for vLLM's --max-model-len, which `vllm serve` does not take (vLLM stops on "
              "it); write --max-model-len."),
    ("--tp 2", "holds --tp, kvplan's name for vLLM's --tensor-parallel-size, which `vllm serve` does not take (vLLM "
               "stops on it); write --tensor-parallel-size."),
])
def test_a_served_command_holding_kvplans_own_flags_is_refused(tmp_path, typed, said):
    """A `serve:` line is the command the deployment runs: vLLM's parser (argparse) stops on a flag it lacks
    ("unrecognized arguments"), so a gate that read kvplan's own --gpu or --kv-dtype there passed a deployment that
    never starts. The flags vLLM lacks are those check takes that no release's `vllm serve` lists
    (tests/data/vllm_serve_flags.json, 0.5.5-0.34.0)."""
    length = "" if typed.startswith(("-c ", "--kv-dtype")) else "--max-model-len 8192 "  # one length flag, one dtype
    refused = served_refusal(tmp_path, "A100-80GB", f"vllm serve meta-llama/Llama-3.1-8B-Instruct {length}{typed}")
    assert refused.endswith(said), refused


def test_kvplans_own_flag_names_are_the_ones_no_vllm_release_lists():
    """The set serve: refuses is exactly check's spellings that none of the nine frozen releases' `vllm serve` has."""
    from kvplan.cli.app import click_command
    from kvplan.cli.serve_command import NOT_VLLM

    frozen = json.loads((Path(__file__).parent / "data" / "vllm_serve_flags.json").read_text())
    vllm = {name for release in frozen["releases"] for flag in release["flags"].values()
            for name in flag["names"] + ([flag["negative"]] if flag["negative"] else [])}
    check = click_command().commands["check"]
    spelled = {o for p in check.params for o in p.opts + p.secondary_opts if o.startswith("-")}
    run_only = {"--file", "--format", "-f", "--suggest", "--hub-timeout"}  # refused as the run's (RUN_ONLY)
    assert {o for o in spelled if o not in vllm} - run_only == {o for o in NOT_VLLM if o in spelled} - run_only


@pytest.mark.parametrize("typed", ["-cc.cudagraph_mode=NONE", "-cc '{\"cudagraph_mode\":\"NONE\"}'"])
def test_a_served_compilation_config_is_not_read_as_kvplans_dash_c(tmp_path, typed):
    """-cc is vLLM's --compilation-config (0.12+), not kvplan's -c with the value 'c...' attached: a command holding it
    is vLLM's own and passes (the graph term 0, as cudagraph_mode NONE captures none)."""
    path = deployments_file(tmp_path, f"""  - name: served
    gpu: H100
    serve: vllm serve meta-llama/Llama-3.1-8B-Instruct --max-model-len 8192 {typed}
""")
    r = run_kvplan("check", "--file", path, "--format", "json")
    assert r.returncode == 0, r.stderr
    (row,) = json.loads(r.stdout)["results"]
    assert row["context"] == 8192 and row["passed"]


def test_an_error_names_dash_cc_as_typed_not_dash_c():
    """flags.typed_spelling: the last spelling of the context flag typed is --max-model-len, though -cc... follows."""
    from kvplan.cli import flags

    saved = list(flags.typed_args)
    flags.typed_args[:] = ["--max-model-len", "8192", "-cc.cudagraph_mode=NONE", "-c8K"]
    try:
        assert flags.typed_spelling(flags.ALIASES["context"]) == "-c"  # -c8K: the value attached
        flags.typed_args[:] = ["--max-model-len", "8192", "-cc.cudagraph_mode=NONE"]
        assert flags.typed_spelling(flags.ALIASES["context"]) == "--max-model-len"
        flags.typed_args[:] = ["--max-model-len", "8192", "-cc", '{"level": 0}', "-tp", "2"]
        assert flags.typed_spelling(flags.ALIASES["context"]) == "--max-model-len"
        assert flags.typed_spelling(flags.ALIASES["compilation_config"]) == "-cc"
        assert flags.typed_spelling(flags.ALIASES["tp"]) == "-tp"
    finally:
        flags.typed_args[:] = saved


@pytest.mark.parametrize("extra, said", [
    ((), "Routed experts split over TP 4 (T x D), the rest over TP 2, in each of the 2 pipeline stages."),
    (("--enable-expert-parallel",), "EP 4: 2 of 8 routed experts whole on the busiest GPU, attention/shared "
                                    "experts/embeddings over TP 2, copied on the 2 DP rank(s), in each of the 2 "
                                    "pipeline stages."),
])
def test_moe_data_parallel_layouts_name_their_pipeline_stages(extra, said):
    """Mixtral -tp 2 -pp 2 -dp 2: each of the 2 engine cores is 2 x 2 = 4 GPUs; the MoE layers flatten TP over DP
    (2 x 2 = 4 ranks), so without EP a rank holds 1/4 of each expert, with EP 8 / 4 = 2 whole experts, in the layers
    of its own stage."""
    r = run_kvplan("estimate", "mistralai/Mixtral-8x7B-v0.1", "--gpu", "H100", "-c", "8192", "-tp", "2", "-pp", "2",
                   "-dp", "2", *extra)
    assert r.returncode == 0, r.stderr
    text = " ".join(r.stdout.split())
    assert "2 engine core(s) x 4 GPU(s) = 8 GPUs" in text and said in text
