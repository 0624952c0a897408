"""check's table for people (session 81): a `file` column where the rows come from more than one --file, and a
`min len` column (min_model_len's target) where some entry sets one. A table of one file with no min_model_len is
laid out as before, column for column."""

from __future__ import annotations

import json

from conftest import run_kvplan

WIDE = {"COLUMNS": "200"}

# the header check's table has always had (render/check.py's COLUMNS before session 81)
BEFORE = ["name", "model", "TP", "PP", "KV heads/GPU", "max len", "requests", "min", "result"]

QWEN = "    model: Qwen/Qwen3-8B\n    tp: 1\n    gpu: H100\n"
LLAMA = "    model: meta-llama/Llama-3.1-8B-Instruct\n    tp: 1\n    gpu: H100\n"


def _write(path, body: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("deployments:\n" + body)
    return path


def _table(stdout: str) -> tuple:
    """(header cells, {row's first cells joined by ' ': the row's cells}) of the table under the title: cells are
    split on runs of 2+ spaces (no cell here holds two spaces)."""
    import re

    lines = stdout.splitlines()
    assert lines[0].startswith("kvplan check: "), stdout
    header = re.split(r"\s{2,}", lines[1].strip())
    rows = []
    for line in lines[3:]:
        if not line.strip() or line.startswith(("error:", "warning:", "notice:", "not shown")):
            break
        rows.append(re.split(r"\s{2,}", line.strip()))
    return header, rows


def test_one_file_without_min_model_len_keeps_its_columns(tmp_path):
    path = _write(tmp_path / "a.yaml", "  - name: chat\n" + QWEN + "    min_concurrency: 8\n")
    r = run_kvplan("check", "--file", path, env=WIDE)
    assert r.returncode == 0, r.stderr
    header, rows = _table(r.stdout)
    assert header == BEFORE
    assert rows[0][0] == "chat" and rows[0][-2:] == ["8", "pass"]


def test_two_files_name_each_rows_file_as_given(tmp_path):
    """Two entries named `chat`, one in each file: the `file` column (first) tells them apart, the path as given."""
    _write(tmp_path / "a.yaml", "  - name: chat\n" + QWEN + "  - name: batch\n" + LLAMA)
    _write(tmp_path / "team" / "b.yaml", "  - name: chat\n" + LLAMA.replace("tp: 1", "tp: 2"))
    r = run_kvplan("check", "--file", "a.yaml", "team/b.yaml", env=WIDE, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    header, rows = _table(r.stdout)
    assert header == ["file"] + BEFORE  # and no min len: no entry sets min_model_len
    assert [row[:3] for row in rows] == [["a.yaml", "chat", "Qwen/Qwen3-8B"],
                                         ["a.yaml", "batch", "meta-llama/Llama-3.1-8B-Instruct"],
                                         ["team/b.yaml", "chat", "meta-llama/Llama-3.1-8B-Instruct"]]
    assert [row[3] for row in rows] == ["1", "1", "2"]  # TP: the two `chat` rows are the two files' entries
    # the JSON's `file` says the same, row for row
    out = run_kvplan("check", "--file", "a.yaml", "team/b.yaml", "--format", "json", cwd=tmp_path)
    assert [x["file"] for x in json.loads(out.stdout)["results"]] == ["a.yaml", "a.yaml", "team/b.yaml"]


def test_several_entries_of_one_file_get_no_file_column(tmp_path):
    """Several entries of one file, given once: no file column (the rows come from one file)."""
    path = _write(tmp_path / "a.yaml", "  - name: chat\n" + QWEN + "  - name: batch\n" + LLAMA)
    header, rows = _table(run_kvplan("check", "--file", path, env=WIDE).stdout)
    assert header == BEFORE and [row[0] for row in rows] == ["chat", "batch"]


def test_min_model_len_target_shown_beside_the_length_served(tmp_path):
    """docs/ci.md's case: Llama-3.1-8B on kv_budget 1GiB at tp 4 auto-fits 32,752 tokens (2,048 blocks of 16 less
    vLLM's null block: 2,047 x 16), short of min_model_len 32K = 32,768 (vLLM's K: 1024), so it fails; the row
    shows both. An entry without min_model_len shows '-'."""
    path = _write(tmp_path / "a.yaml",
                  "  - name: fit\n    model: meta-llama/Llama-3.1-8B-Instruct\n    tp: 4\n    kv_budget: 1GiB\n"
                  "    context: auto\n    min_model_len: 32K\n"
                  "  - name: plain\n" + QWEN + "    min_concurrency: 8\n")
    r = run_kvplan("check", "--file", path, env=WIDE)
    assert r.returncode == 1, r.stderr
    header, rows = _table(r.stdout)
    assert header == BEFORE[:6] + ["min len"] + BEFORE[6:]
    fit, plain = (dict(zip(header, row)) for row in rows)
    assert fit["max len"] == f"{2047 * 16:,} (auto)" and fit["min len"] == "32,768" and fit["result"] == "FAIL"
    assert fit["min"] == "-"
    assert plain["min len"] == "-" and plain["min"] == "8" and plain["max len"] == "40,960"  # Qwen3-8B's own


def test_min_model_len_from_the_command_line(tmp_path):
    """MODEL -tp with --min-model-len: the same column; no file column (no file)."""
    r = run_kvplan("check", "meta-llama/Llama-3.1-8B-Instruct", "-tp", "1", "--gpu", "H100", "--min-model-len",
                   "8k", env=WIDE)
    assert r.returncode == 0, r.stderr
    header, rows = _table(r.stdout)
    assert header == BEFORE[:6] + ["min len"] + BEFORE[6:]
    assert dict(zip(header, rows[0]))["min len"] == "8,000"  # vLLM's k: 1000


def test_both_columns_and_a_narrow_terminal(tmp_path):
    """Two files, one setting min_model_len: both columns. At a narrow width `min len` is left out before `max len`
    (never shown without it) and named in the left-out sentence; `file` is never left out."""
    _write(tmp_path / "a.yaml", "  - name: chat\n" + QWEN)
    _write(tmp_path / "b.yaml", "  - name: chat\n" + LLAMA.replace("gpu: H100", "gpu: H100\n    context: 16K")
           + "    min_model_len: 16K\n")
    r = run_kvplan("check", "--file", "a.yaml", "b.yaml", env=WIDE, cwd=tmp_path)
    header, rows = _table(r.stdout)
    assert header == ["file"] + BEFORE[:6] + ["min len"] + BEFORE[6:]
    assert [(row[0], row[1], dict(zip(header, row))["min len"]) for row in rows] == \
        [("a.yaml", "chat", "-"), ("b.yaml", "chat", "16,384")]
    narrow = run_kvplan("check", "--file", "a.yaml", "b.yaml", env={"COLUMNS": "60"}, cwd=tmp_path)
    header, rows = _table(narrow.stdout)
    assert header[0] == "file" and "max len" in header and "min len" not in header
    assert "min len" in narrow.stdout.split("not shown at this width:")[1].split(";")[0]
