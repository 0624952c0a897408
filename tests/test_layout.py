"""Output for people: tables readable from 80 columns up (columns dropped by priority, never a number or an id
cut), wider on wide terminals, plain text when piped; the legend; the charts; the html page; --version, -h and
a bare `kvplan`."""

import json
import re
import subprocess
import sys

import pytest

from conftest import ROOT, run_kvplan

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
SWEEP = ("--max-model-len", "8192,32K,1M", "--kv-cache-dtype", "auto,fp8,int8_per_token_head", "-tp", "1,2,4",
         "--gpu", "h100")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def table_rows(text: str) -> list:
    """The data rows of the first table: lines that start (after spaces) with a number of tokens."""
    return [line for line in text.splitlines() if re.match(r"^\s*[\d,]+\s+\S+\s+\d+\s", line)]


@pytest.mark.parametrize("columns", [80, 100, 132])
def test_every_plan_is_distinguishable_at_any_width(columns):
    r = run_kvplan("estimate", MODEL, *SWEEP, env={"COLUMNS": str(columns)})
    assert r.returncode == 0, r.stderr
    data = json.loads(run_kvplan("estimate", MODEL, *SWEEP, "--format", "json").stdout)["plans"]
    rows = table_rows(r.stdout)
    assert len(rows) == len(data) == 27
    seen = set()
    for row, plan in zip(rows, data):
        cells = row.split()
        key = (int(cells[0].replace(",", "")), cells[1], int(cells[2]))
        assert key == (plan["context"], plan["kv_dtype"], plan["tp"])  # whole numbers and names, nothing cut
        seen.add(key)
        requests = cells[3]
        assert requests == "0" or int(requests.replace(",", "")) == plan["max_concurrency"]
    assert len(seen) == 27
    assert "…" not in r.stdout and max(len(line) for line in r.stdout.splitlines()) <= columns


def test_narrow_terminals_drop_columns_and_say_which():
    narrow = run_kvplan("estimate", MODEL, *SWEEP, env={"COLUMNS": "80"}).stdout
    wide = run_kvplan("estimate", MODEL, *SWEEP, env={"COLUMNS": "160"}).stdout
    assert "not shown at this width: KV tokens, per token, ITL ms b1|max, tok/s b1|max" in " ".join(narrow.split())
    assert "not shown at this width" not in wide
    header = next(line for line in wide.splitlines() if "max len" in line and "KV dtype" in line)
    for name in ("requests", "KV memory", "KV tokens", "per request", "per token", "ITL ms", "tok/s"):
        assert name in header


def test_legend_explains_every_shown_column_in_vllms_words():
    text = " ".join(run_kvplan("estimate", MODEL, "--gpu", "h100", env={"COLUMNS": "160"}).stdout.split())
    for phrase in ("Available KV cache memory", "GPU KV cache size", "Maximum concurrency", "--max-model-len",
                   "! = a warning below"):
        assert phrase in text
    assert "seq/GPU" not in text and "pool tokens" not in text


def test_piped_output_is_plain_and_never_cuts_an_id():
    """A real pipe: no COLUMNS, stdout not a terminal."""
    env = {"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-m", "kvplan", "models"], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=60).stdout
    ids = json.loads(subprocess.run([sys.executable, "-m", "kvplan", "models", "--format", "json"], capture_output=True,
                                    text=True, env=env, cwd=ROOT, timeout=60).stdout)["models"]
    assert not ANSI.search(out) and "…" not in out
    lines = out.splitlines()
    for model in ids:
        assert any(line.split() and line.split()[0] == model["id"] for line in lines), model["id"]


def test_models_at_80_columns_keep_every_id_whole():
    out = run_kvplan("models", env={"COLUMNS": "80"}).stdout
    ids = [m["id"] for m in json.loads(run_kvplan("models", "--format", "json").stdout)["models"]]
    first_cells = [line.split()[0] for line in out.splitlines() if line.split()]
    assert all(i in first_cells for i in ids)
    assert max(len(line) for line in out.splitlines()) <= 80


def test_chart_draws_concurrency_and_the_budget_bar():
    r = run_kvplan("estimate", MODEL, "--gpu", "h100", "-tp", "1,2", "--kv-cache-dtype", "auto,fp8", "--chart",
                   env={"COLUMNS": "80"})
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert any("bf16, tp 1" in line and "fp8_e4m3, tp 2" in line for line in lines)
    data = json.loads(run_kvplan("estimate", MODEL, "--gpu", "h100", "-tp", "1,2", "--kv-cache-dtype", "auto,fp8",
                                 "--chart", "--format", "json").stdout)
    curve = data["curves"][0]
    assert [p["context"] for p in curve["points"]] == [1024 * 2**i for i in range(8)]  # 1K .. 128K
    # each charted point is the planner's own answer at that length
    assert curve["points"][3]["max_concurrency"] == \
        json.loads(run_kvplan("estimate", MODEL, "--gpu", "h100", "--max-model-len", "8K", "--format",
                              "json").stdout)["plans"][0]["max_concurrency"]
    bars = [line for line in lines if line.startswith("[") and line.endswith("]")]
    assert len(bars) == 2 and all(len(b) == 80 for b in bars)
    assert "weights 15.0 GiB" in r.stdout and "KV cache" in r.stdout


def test_weights_larger_than_the_gpu_say_so_and_what_would_fit():
    r = run_kvplan("estimate", "meta-llama/Llama-3.1-70B-Instruct", "--gpu", "L4")
    text = " ".join(r.stdout.split())
    assert "the weights alone do not fit at tp 1: 131 GiB per GPU against 20.3 GiB usable" in text
    # a TP group stays within one node of 8 L4s (test_remedies_node.py); past one node, whole nodes at the node's TP:
    # tp 8 x pp 2 (16 x 20.3 GiB usable against 131 GiB of weights), not tp 2 x pp 5 on the same two nodes
    assert "--tensor-parallel-size 8 and --pipeline-parallel-size 2" in text and "--pipeline-parallel-size 8 or more" \
        in text and "--tensor-parallel-size 16" not in text
    assert "fp8 weights" in text and "one request needs" not in text  # not blamed on the sequence
    assert "no room" in text and "nothing left (short by" in text


def test_html_is_one_standalone_page():
    r = run_kvplan("estimate", MODEL, "--gpu", "h100", "-tp", "1,2", "--format", "html")
    page = r.stdout
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert page.count("<svg") == 3 and "<table>" in page and "<polyline" in page
    assert "<script" not in page and "src=" not in page and "href=" not in page
    import xml.dom.minidom

    for svg in re.findall(r"<svg.*?</svg>", page, re.S):
        xml.dom.minidom.parseString(svg)


def test_version_help_and_bare_kvplan():
    from kvplan import __version__

    v = run_kvplan("--version")
    assert v.returncode == 0 and v.stdout.strip() == f"kvplan {__version__}"
    h = run_kvplan("estimate", "-h")
    assert h.returncode == 0 and "--max-model-len" in h.stdout and "--context" in h.stdout
    bare = run_kvplan()
    assert bare.returncode == 0 and bare.stderr == ""
    assert "estimate" in bare.stdout and "Try: kvplan estimate" in bare.stdout and "--install-completion" in bare.stdout


def test_shell_completion_offers_gpus_and_dtypes():
    env = {"PYTHONPATH": str(ROOT), "_KVPLAN_COMPLETE": "complete_bash", "COMP_WORDS": "kvplan estimate x --gpu H",
           "COMP_CWORD": "4", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", "from kvplan.__main__ import entry; entry()"], capture_output=True,
                         text=True, env=env, cwd=ROOT, timeout=60).stdout.split()
    assert {"H100-80GB-SXM", "H100-NVL", "H20", "H200"} <= set(out) and "A100-40GB" not in out


def test_the_readme_output_block_is_what_kvplan_prints():
    """The README's first output block is a real run (same command, 100 columns): its vLLM lines and its table
    row are what kvplan prints now."""
    text = (ROOT / "README.md").read_text()
    command = "$ kvplan estimate meta-llama/Llama-3.1-8B-Instruct --gpu L4\n"
    block = text[text.index(command) + len(command):]
    block = block[:block.index("```")]
    now = run_kvplan("estimate", MODEL, "--gpu", "L4", env={"COLUMNS": "100"}).stdout
    for line in block.splitlines():
        if line.startswith(("vllm ", "  Available", "131,072")):
            assert line in now.splitlines(), line


def test_pipeline_stages_get_their_own_column_at_80_columns():
    r = run_kvplan("estimate", "deepseek-ai/DeepSeek-V3", "-tp", "8", "-pp", "2", "--gpu", "h100",
                   "--max-model-len", "32K,128K", env={"COLUMNS": "80"})
    header = next(line for line in r.stdout.splitlines() if line.lstrip().startswith("max len"))
    assert header.split()[:7] == ["max", "len", "KV", "dtype", "TP", "PP", "requests"]
    rows = [line.split() for line in r.stdout.splitlines() if re.match(r"^\s*[\d,]+\s+bf16\s+8\s+2\s", line)]
    assert [row[0] for row in rows] == ["32,768", "131,072"]
    plain = run_kvplan("estimate", MODEL, "--gpu", "h100", env={"COLUMNS": "80"}).stdout
    assert " PP " not in next(line for line in plain.splitlines() if line.lstrip().startswith("max len"))
