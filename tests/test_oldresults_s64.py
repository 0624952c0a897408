"""Every verify result recorded in benchmarks/ (the device runs' JSONL records and whole-result JSON files) renders in
every verify format, whichever kvplan version recorded it: a field an older result lacks reads "not recorded"
(kvplan/verify/recorded.py) or its clause is left out, and a field renamed since is read under its current name.

Rendering all 386 results fully in four formats takes ~23 s on 2 cores (rich's table layout and the pure-Python YAML
emitter take 95% of it), so the sweep splits each format where a result can break it from where it cannot: json and
csv in full for every result; for the table, its view's renderable (every field the table prints, read and formatted,
its markup parsed), and for yaml the dict and the number check json runs on the same result. The full table and yaml
texts are checked on the oldest records and the newest run's, with the figures they must show."""

import csv
import io
import json
from pathlib import Path

import pytest

from kvplan.commands.verify import VerifyResult
from kvplan.render import emit
from kvplan.render import verify as table_view
from kvplan.verify.recorded import NOT_RECORDED, current, known, recorded

ROOT = Path(__file__).resolve().parents[1]
# session 4's first H200 run, before pools were counted
OLDEST = ROOT / "benchmarks/device_runs/early/verify_h200_2026-12-01.jsonl"
H100_LLAMA8B = ROOT / "benchmarks/device_runs/s63_h100_2026-12-06_call2/v_llama8b.json"  # session 63, H100


def is_result(value) -> bool:
    return isinstance(value, dict) and {"verdict", "gpu", "terms"} <= value.keys()


def recorded_results() -> list:
    """(where, result) of every verify result under benchmarks/: a JSONL line's `result` (null where the run failed
    before it had one), or a JSON file that is one result (run_json's v_NAME.json)."""
    found = []
    for path in sorted((ROOT / "benchmarks").rglob("*.json*")):
        where = path.relative_to(ROOT)
        if path.suffix == ".jsonl":
            for n, line in enumerate(path.read_text().splitlines(), 1):
                record = json.loads(line)
                if is_result(record.get("result")):
                    found.append((f"{where}:{n}", record["result"]))
        elif path.suffix == ".json":
            value = json.loads(path.read_text())
            if is_result(value):
                found.append((str(where), value))
    return found


RESULTS = recorded_results()


def csv_rows(result: dict) -> list:
    return list(csv.DictReader(io.StringIO(emit(VerifyResult(result), "csv"))))


def csv_row(rows: list, section: str, item: str) -> dict:
    (found,) = [row for row in rows if row["section"] == section and row["item"] == item]
    return found


def oldest() -> list:
    return [json.loads(line)["result"] for line in OLDEST.read_text().splitlines()]


def test_every_recorded_result_renders_in_every_format():
    assert len(RESULTS) >= 386  # sessions 4-63; later sessions add to it
    failed = []
    for where, result in RESULTS:
        try:
            verify = VerifyResult(result)
            assert result["model"] in emit(verify, "json")  # and the number check yaml runs on the same dict
            assert emit(verify, "csv").startswith("rank,section,item,unit,predicted,measured,error,verdict\n")
            table_view.renderable(verify, table_view.MAX_WIDTH)
        except Exception as error:  # collected, so that one run names every result that fails
            failed.append(f"{where}: {type(error).__name__}: {error}")
    assert not failed, "\n".join(failed)


NEWEST = sorted(H100_LLAMA8B.parent.glob("v_*.json"))  # session 63's run_json of the nine an 80 GB rank holds


@pytest.mark.parametrize("fmt", ["table", "json", "yaml", "csv"])
def test_the_oldest_and_newest_records_render_in_full(fmt):
    assert len(NEWEST) == 9  # issue 13's list, less Qwen3-Next at tp 2
    for result in oldest() + [json.loads(path.read_text()) for path in NEWEST]:
        text = emit(VerifyResult(result), fmt)
        assert ("boundary_sequences" if fmt == "csv" else result["model"]) in text


@pytest.mark.parametrize("line, served", [(1, 108), (6, 159), (10, 485)])
def test_an_old_record_says_the_pools_count_is_not_recorded(line, served):
    """Session 4's records (Llama-3.1-8B, Mixtral tp 2, Llama-3.2-1B) carry the boundary's admitted sequences
    (boundary.served: 108, 159, 485) but not the pools' count it is held to (measured_plan.pool_sequences, added
    later): the csv row says so, with no error worked out, and the table leaves the pools' clause out."""
    result = oldest()[line - 1]
    assert "pool_sequences" not in result["measured_plan"] and result["boundary"]["served"] == served
    row = csv_row(csv_rows(result), "capacity", "boundary_sequences")
    assert (row["predicted"], row["measured"], row["error"]) == ("not recorded", str(served), "")
    table = " ".join(emit(VerifyResult(result), "table").split())
    assert "ideal paging" not in table and f"keeps {result['measured_plan']['max_concurrency']:,} sequences" in table


def test_an_old_record_reads_a_renamed_field_under_its_current_name():
    """boundary.distinct_blocks (a yes/no, renamed no_block_shared in commit 07425f17 because the output's number
    check reads a name ending in _blocks as a count): json and yaml print the recorded value under today's name."""
    result = oldest()[0]
    assert result["boundary"]["distinct_blocks"] is True
    out = json.loads(emit(VerifyResult(result), "json"))
    assert out["boundary"]["no_block_shared"] is True and "distinct_blocks" not in out["boundary"]
    assert list(out["boundary"]) == [k.replace("distinct_blocks", "no_block_shared") for k in result["boundary"]]
    assert "  no_block_shared: true\n" in emit(VerifyResult(result), "yaml")
    assert result["boundary"]["distinct_blocks"] is True  # the record read is left as it was


def test_a_current_result_shows_its_recorded_figures():
    """Llama-3.1-8B at 8K on an H100 (session 63): its JSON's measured_plan.pool_sequences 55, boundary.served 55,
    measured KV budget 60,058,476,360 bytes."""
    result = json.loads(H100_LLAMA8B.read_text())
    rows = csv_rows(result)
    assert csv_row(rows, "capacity", "boundary_sequences")["predicted"] == "55"
    assert csv_row(rows, "capacity", "boundary_sequences")["error"] == "0.0"
    assert csv_row(rows, "budget", "kv_budget")["measured"] == "60058476360"
    table = " ".join(emit(VerifyResult(result), "table").split())
    assert "the pools below lay it out with ideal paging: 55 sequences." in table
    assert VerifyResult(result).result is result  # nothing renamed: the result itself
    assert json.loads(emit(VerifyResult(result), "json")) == result


def test_not_recorded_reads_as_words_and_makes_no_figure():
    assert recorded({"a": 1}, "a") == 1 and recorded({"a": None}, "a") is None  # null: recorded as none
    assert recorded({}, "a") is NOT_RECORDED
    assert f"{NOT_RECORDED:,}" == f"{NOT_RECORDED:.1f}" == str(NOT_RECORDED) == "not recorded"
    assert not NOT_RECORDED and not known(NOT_RECORDED) and not known(None) and known(0)
    with pytest.raises(TypeError):
        NOT_RECORDED - 1
    fresh = {"boundary": {"no_block_shared": True}}
    assert current(fresh) is fresh


def _script(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_summary_scripts_read_the_oldest_records(capsys):
    """benchmarks/verify_summary_md.py and verify_verdict_lines.py on session 4's records, which carry no calibrated
    estimate (estimate_ms null: "-", decode "not judged" as recorded), and on session 37's llama4-scout tp 2, which
    exited 3 before it had a result."""
    _script("verify_summary_md").main(str(OLDEST))
    summary = capsys.readouterr().out
    assert "| `Llama-3.1-8B-Instruct` | 13 s | +0.050% / +0.050%, confirmed (108) | 107 / 108 within | 6.10 / - | " \
           "b108: 33.68 / - | not judged | 242 / - | 66 |" in summary
    lines = _script("verify_verdict_lines")
    lines.main(str(OLDEST))
    assert "  TTFT 241.7 ms, estimate -\n" in capsys.readouterr().out
    lines.main(str(ROOT / "benchmarks/device_runs/early/verify_h200_2026-12-03_s37_call1.jsonl"))
    assert "llama4-scout-tp2 no result (exit 3)\n" in capsys.readouterr().out


def test_the_options_line_names_the_block_size_the_plan_ran_with():
    """Session 63's H100 run of Llama-3.1-8B was given no --block-size (options null): vLLM's default of 16 is what
    the plan ran (its plan records 16, its pools [28638, 16, 8, 128]); the line printed "block None" before."""
    r = json.loads(H100_LLAMA8B.read_text())
    assert r["options"]["block_size"] is None and r["layout"][0]["tensor_shapes"][0][1] == 16
    options = next(line for line in emit(VerifyResult(r), "table").splitlines() if line.startswith("Options"))
    assert "block 16," in options and "None" not in options
