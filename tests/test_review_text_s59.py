"""Session 59's review, the text side: docs that agree with what the tool prints, every format saying a refusal's
remedy, errors in the caller's names, the length flag as typed, --pooler-config values, --runner / --convert
choices and the releases a remedy plans. Independent sources, read by hand:
- the Kimi-Linear run: config/model.py ConvertType lists "reward" in 0.15.1 (:78), not in 0.16.0 (:77);
  KimiLinearForCausalLM is registered from 0.11.1 (registry.py 0.11.1:122, absent from 0.11.0).
- --pooler-config values: each release's own PoolerConfig parser, run over the cases by
  benchmarks/vllm_reference/pooler_config_values.py (tests/data/vllm_pooler_config_values.json: 0.11.0 to 0.34.0).
- --runner / --convert: vLLM's argparse (engine/arg_utils.py literal_to_kwargs 0.34.0:220-234: `choices`, type str),
  run on 0.11.0, 0.14.1, 0.20.0 and 0.34.0: "argument --runner: invalid choice: 'POOLING' (choose from 'auto',
  'draft', 'generate', 'pooling')", "argument --convert: invalid choice: 'Embed' (...)".
- 0.9.1: published on PyPI (pip index versions vllm), and its get_num_blocks logs --num-gpu-blocks-override and
  keeps the profiled count (vllm#19503 fixed it in 0.9.2; kvplan's OVERRIDE_RULES)."""

import html
import json
import re
from pathlib import Path

import pytest
from conftest import deployments_file, one_error_line, run_kvplan

from kvplan import api
from kvplan.errors import FieldError, KvplanError

ROOT = Path(__file__).resolve().parents[1]
KIMI = ("moonshotai/Kimi-Linear-48B-A3B-Instruct", "--gpu", "H100", "-tp", "2", "-c", "32K", "--runner", "pooling",
        "--convert", "reward", "--engine", "vllm==0.11.0")
QWEN = "Qwen/Qwen3-8B"
FALCON_40B = ("tiiuae/falcon-40b", "--gpu", "L4", "-tp", "4")


def _flat(text: str) -> str:
    return " ".join(text.split())


def _run(*args, fmt: str = "table"):
    out = run_kvplan("estimate", *args, "--format", fmt)
    assert out.returncode in (0, 1), out.stderr
    return out.stdout


# 4. the Kimi-Linear run, as the tool prints it and as the docs say it ------------------------------------------

def test_the_docs_name_the_kimi_linear_run_the_tool_prints():
    """The tool names 0.11.1 before 0.16.0 (reward a --convert choice to 0.15.1); every doc and docstring that gives
    the Kimi-Linear example names the same run, none the old "before 0.15.0"."""
    refusal = json.loads(_run(*KIMI, fmt="json"))["plans"][0]["engine"]["refusal"]
    assert refusal["remedy_range"] == {"from": "0.11.1", "before": "0.16.0"}
    assert refusal["remedy"] == "it starts with --engine vllm==0.11.1 (any release from 0.11.1 before 0.16.0)"
    files = ("README.md", "docs/ci.md", "kvplan/engines/vllm_remedy.py", "kvplan/engines/figures.py",
             "kvplan/plan/plan.py")
    for name in files:
        text = _flat((ROOT / name).read_text())
        runs = re.findall(r"any release from 0\.11\.1 before (\d+\.\d+\.\d+)", text)
        ranges = re.findall(r'"from": "0\.11\.1", "before": "(\d+\.\d+\.\d+)"', text)
        assert runs or ranges, name
        assert set(runs + ranges) == {"0.16.0"}, name
    assert "reward being refused from 0.16" in _flat((ROOT / "docs/ci.md").read_text())


# a. every format says a refusal's remedy ---------------------------------------------------------------------

REFUSED = (
    FALCON_40B,  # the architecture, a closed run of releases
    KIMI,  # the architecture at the release asked, a closed run
    ("deepseek-ai/DeepSeek-V3.2", "--gpu", "A100-80GB", "-tp", "8", "--pp", "2", "-c", "8K"),  # the GPU, once
    ("meta-llama/Llama-3.1-8B-Instruct", "--gpu", "H100", "-c", "1M"),  # a length past the model's own
)


@pytest.mark.parametrize("args", REFUSED)
def test_every_format_says_the_refusal_and_its_remedy(args):
    plans = json.loads(_run(*args, fmt="json"))["plans"]
    refusal = plans[0]["engine"]["refusal"]
    said = refusal["remedy"]
    assert said
    for fmt in ("table", "yaml", "csv", "html"):
        text = _flat(_run(*args, fmt=fmt))
        text = html.unescape(text) if fmt == "html" else text
        assert said in text, fmt
        assert refusal["reason"].split(" (")[0].split(".")[0] in text, fmt


def test_the_html_page_says_the_falcon_remedy_the_review_missed():
    """The review's command: the page said the refusal and not what starts instead."""
    page = _flat(html.unescape(_run(*FALCON_40B, fmt="html")))
    assert ("does not start: vllm 0.32.0 refuses the model: Model architecture RWForCausalLM was supported in vLLM "
            "until v0.28.0, and is not supported anymore; it starts with --engine vllm==0.28.0 (any release from "
            "0.25.0 before 0.29.0).") in page


def test_the_html_page_has_the_table_footnotes_and_pp_column():
    """The page is the table's facts: the PP column where plans have stages, and each footnote of the text output
    (the budget line, the length default) once."""
    args = ("meta-llama/Llama-3.1-70B-Instruct", "--gpu", "H100", "-tp", "2", "-pp", "2", "-c", "8K")
    page = html.unescape(_run(*args, fmt="html"))
    assert "<th title='pipeline stages (vLLM's --pipeline-parallel-size); figures are the tightest stage's'>PP</th>" \
        in page
    text = _flat(_run(*args))
    budget = re.search(r"KV budget \(tp 2 pp stage \d, vllm 0\.32\.0\) = [^.]*\.\d+ GiB", text).group(0)
    assert _flat(page).count(budget) >= 1


# b. the API's errors name its keywords ------------------------------------------------------------------------

API_ERRORS = (
    (dict(pooler_config='{"pooling_type": 5}'), "vLLM 0.32.0 refuses pooler_config pooling_type 5: it takes"),
    (dict(engine="none", pooler_config='{"pooling_type": "MEAN"}'),
     "pooler_config is modelled with vLLM only (engine vllm): engine none, ideal paging, has no"),
    (dict(engine="none", enable_lora=True), "enable_lora is modelled with vLLM only (engine vllm)"),
    (dict(engine="none", data_parallel_size=2), "data_parallel_size is modelled with vLLM only (engine vllm)"),
    (dict(runner="pooling", convert="reward", engine="vllm==0.16.0"), "vLLM 0.16.0 refuses convert reward"),
    (dict(convert="embed", engine="vllm==0.20.0"),
     "kvplan does not plan convert embed on vLLM 0.20.0's generate runner: the adapter drops the LM head that runner "
     "samples from (model_executor/models/adapters.py); add runner pooling"),
    (dict(enable_eplb=True), "enable_eplb needs enable_expert_parallel: vLLM refuses EPLB without it"),
    (dict(enable_expert_parallel=True, speculative_config={"method": "mtp", "num_speculative_tokens": 1}),
     "method mtp with data_parallel_size / enable_expert_parallel is not modelled yet"),
    (dict(runner="draft"), "which kvplan plans through speculative_config)"),
    (dict(gpu="rtx 6000"), "give gpu_memory with a GPU of similar bandwidth"),
)


@pytest.mark.parametrize("keywords, words", API_ERRORS)
def test_api_errors_name_the_keywords_not_flags(keywords, words):
    with pytest.raises(KvplanError) as raised:
        api.estimate(QWEN if "enable_eplb" not in keywords and "enable_expert_parallel" not in keywords
                     else "Qwen/Qwen3-30B-A3B", max_model_len=8192, **{"gpu": "H100", **keywords})
    said = str(raised.value)
    assert words in said
    # kvplan's words outside vLLM's quoted ones name no flag; "vLLM's --runner" names vLLM's own
    assert not re.search(r"(?<![\w`])--[a-z]", re.sub(r"vLLM's --[-a-z]+", "", said.split('"')[0])), said


def test_the_command_line_says_the_same_with_flags(tmp_path):
    line = one_error_line(run_kvplan("estimate", QWEN, "-c", "8K", "--pooler-config", '{"pooling_type": 5}'))
    assert "vLLM 0.32.0 refuses --pooler-config pooling_type 5: it takes CLS, LAST, MEAN, ALL, STEP" in line
    line = one_error_line(run_kvplan("estimate", QWEN, "--engine", "none", "--pooler-config", "{}"))
    assert "--pooler-config is modelled with vLLM only (--engine vllm): --engine none, ideal paging," in line
    line = one_error_line(run_kvplan("estimate", QWEN, "--convert", "embed", "--engine", "vllm==0.20.0"))
    assert "kvplan does not plan --convert embed on vLLM 0.20.0's generate runner" in line and "add --runner pooling" \
        in line
    line = one_error_line(run_kvplan("estimate", "Qwen/Qwen3-30B-A3B", "-dp", "2", "--engine", "none"))
    assert line.startswith("kvplan: error: -dp is modelled with vLLM only (--engine vllm)")


def test_a_deployments_file_names_the_key_at_fault_on_its_line(tmp_path):
    """A refused pooler config was said on the model's line as 'field model'; now on pooler_config's own line, with
    the file's key, as the convert refusal is on convert's."""
    path = deployments_file(tmp_path, f"""  - name: a
    model: {QWEN}
    gpu: H100
    tp: 1
    context: 8192
    pooler_config: {{"pooling_type": 5}}
""")
    line = one_error_line(run_kvplan("check", "--file", path))
    assert f"{path}:7: deployment 'a' field 'pooler_config': vLLM 0.32.0 refuses pooler_config pooling_type 5" in line
    path = deployments_file(tmp_path, f"""  - name: b
    model: {QWEN}
    gpu: H100
    tp: 1
    context: 8192
    runner: pooling
    convert: reward
    engine: vllm==0.16.0
""")
    line = one_error_line(run_kvplan("check", "--file", path))
    assert f"{path}:8: deployment 'b' field 'convert': vLLM 0.16.0 refuses convert reward" in line


# c. the length flag as typed ----------------------------------------------------------------------------------

@pytest.mark.parametrize("args, flag", [
    (("-c0",), "-c"),  # click reads a one-letter flag's value attached
    (("--max-model-len", "8K", "-c", "0"), "-c"),  # the last one given is the one read
    (("-c", "8K", "--max-model-len", "0"), "--max-model-len"),
    (("--context", "0"), "--context"),
    (("--max-model-len=0",), "--max-model-len"),
])
def test_a_length_error_names_the_flag_whose_value_was_read(args, flag):
    line = one_error_line(run_kvplan("estimate", QWEN, *args))
    assert line.startswith(f"kvplan: error: {flag} must be a positive number of tokens"), line


def test_a_length_named_inside_another_error_is_the_one_typed():
    line = one_error_line(run_kvplan("estimate", QWEN, "--max-model-len", "0", "-c", "8K,auto"))
    assert line.startswith("kvplan: error: -c takes auto (vLLM's auto-fit")
    line = one_error_line(run_kvplan("estimate", QWEN, "-c", "4096", "--input-len", "5000"))
    assert "--input-len (5,000) must not exceed -c (4,096)" in line
    line = one_error_line(run_kvplan("estimate", QWEN, "--max-model-len", "4096", "--input-len", "5000"))
    assert "--input-len (5,000) must not exceed --max-model-len (4,096)" in line


# s1. --pooler-config values as each release's PoolerConfig parses them -------------------------------------------

VALUES = json.loads((ROOT / "tests" / "data" / "vllm_pooler_config_values.json").read_text())


def test_the_reference_covers_the_releases_where_the_types_change():
    assert [row["release"] for row in VALUES["releases"]] == ["0.11.0", "0.11.1", "0.12.0", "0.14.1", "0.15.1",
                                                              "0.16.0", "0.17.0", "0.19.0", "0.20.0", "0.32.0",
                                                              "0.34.0"]


@pytest.mark.parametrize("row", VALUES["releases"], ids=lambda row: row["release"])
def test_each_value_is_refused_where_that_release_refuses_it(row):
    """kvplan's verdict on each value (refused or taken, on the pooling runner) is the release's own parser's."""
    from dataclasses import replace

    from kvplan.engines.vllm_pooler_config import pooler_config_choice, pooler_config_refusal
    from kvplan.model.sources import resolve

    spec = replace(resolve(QWEN), runner="pooling")
    for case, said in row["cases"].items():
        field, value = case.split("=", 1)
        refused = pooler_config_refusal(replace(spec, pooler_config=pooler_config_choice(f'{{"{field}": {value}}}')),
                                        row["release"])
        assert (refused is None) == (said == "ok"), (row["release"], case, said, refused)


@pytest.mark.parametrize("text, words", [
    ('{"dimensions": 1e999}', '--pooler-config dimensions Infinity: "Input should be a finite number"'),
    ('{"dimensions": NaN}', '--pooler-config dimensions NaN: "Input should be a finite number"'),
    ('{"dimensions": 3.5}', '"Input should be a valid integer, got a number with a fractional part"'),
    ('{"max_embed_len": "abc"}', '"Input should be a valid integer, unable to parse string as an integer"'),
    ('{"use_activation": 2}', '"Input should be a valid boolean, unable to interpret input"'),
    ('{"enable_chunked_processing": null}', '"Input should be a valid boolean"'),
    ('{"logit_sigma": 0}', '"Value error, logit_sigma cannot be 0 (division by zero)"'),
])
def test_a_value_vllm_refuses_is_one_line_exit_2(text, words):
    line = one_error_line(run_kvplan("estimate", QWEN, "-c", "8K", "--runner", "pooling", "--pooler-config", text))
    assert "vLLM 0.32.0 refuses" in line and words in line


@pytest.mark.parametrize("text", ['{"dimensions": -5}', '{"dimensions": true}', '{"dimensions": "7"}',
                                  '{"dimensions": 3.0}', '{"use_activation": "yes"}', '{"logit_mean": NaN}'])
def test_a_value_vllm_takes_is_planned(text):
    out = run_kvplan("estimate", QWEN, "-c", "8K", "--runner", "pooling", "--pooler-config", text)
    assert out.returncode == 0, out.stderr


# s2. --runner / --convert exactly as vLLM's argparse takes them ----------------------------------------------

@pytest.mark.parametrize("flag, value", [("--runner", "POOLING"), ("--runner", "Generate"), ("--convert", "Embed"),
                                         ("--convert", " embed"), ("--convert", "CLASSIFY")])
def test_a_choice_in_another_case_is_refused_with_the_choices(flag, value):
    line = one_error_line(run_kvplan("estimate", QWEN, flag, value))
    choices = "auto, generate, pooling" if flag == "--runner" else "auto, none, embed, classify"
    assert f"{flag} must be one of {choices}" in line and f"got {value!r}" in line
    assert "vLLM takes them exactly as written" in line


def test_the_api_and_a_deployments_file_refuse_it_alike(tmp_path):
    with pytest.raises(FieldError, match=r"^runner must be one of auto, generate, pooling .* got 'Pooling'"):
        api.estimate(QWEN, runner="Pooling")
    path = deployments_file(tmp_path, f"""  - name: a
    model: {QWEN}
    tp: 1
    convert: Embed
""")
    assert "field 'convert' must be one of auto, none, embed, classify" in one_error_line(
        run_kvplan("check", "--file", path))


# s3. 0.9.1 among the releases a remedy plans ------------------------------------------------------------------

def test_0_9_1_is_published_and_planned_by_remedies():
    from kvplan.engines.vllm_engine import releases
    from kvplan.engines.vllm_releases import PUBLISHED

    assert "0.9.1" in PUBLISHED and "0.9.1" in releases()


FALCON_OVERRIDE = ("tiiuae/falcon-7b", "--gpu", "H100", "-c", "2048", "--num-gpu-blocks-override", "1000000")


def test_a_run_over_0_9_x_is_claimed_only_where_0_9_1_does_alike():
    """10^6 blocks of Falcon-7B (32 layers x 2 x 64 x 2 B x 16 tokens = 131,072 B a block: 122 GiB) pass the budget
    on H100: 0.9.0 and 0.9.2 set them and fail to allocate, 0.9.1 ignores them and starts. "0.28.0 or older, but
    then ..." claimed the old outcome over 0.9.1 too; now 0.9.1 is named as the release that starts."""
    starts = json.loads(_run(*FALCON_OVERRIDE, "--engine", "vllm==0.9.1", fmt="json"))["plans"][0]
    assert starts["engine"]["refusal"] is None and starts["max_concurrency"] > 0
    for release in ("0.9.0", "0.9.2"):
        plan = json.loads(_run(*FALCON_OVERRIDE, "--engine", f"vllm=={release}", fmt="json"))["plans"][0]
        assert plan["engine"]["refusal"]["allocation_fails"] is True
        assert "122.07 GiB of KV cache a GPU" in plan["engine"]["refusal"]["reason"]
    remedy = json.loads(_run(*FALCON_OVERRIDE, "--engine", "vllm==0.29.0", fmt="json"))["plans"][0]["engine"][
        "refusal"]["remedy"]
    assert remedy.startswith("it starts with --engine vllm==0.9.1;") and "or older" not in remedy
