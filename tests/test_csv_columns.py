"""CSV for scripts: the same columns whatever the rows (a refused, unsharded or working deployment; a sweep with an
unshardable TP degree), and a record one row lacks is empty cells in its own columns, not a column beside them."""

import csv
import io

import yaml

from conftest import run_kvplan
from kvplan.render.formats import to_csv

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
DEPLOYMENTS = {
    "unsharded": {"model": LLAMA, "tp": 3, "gpu": "H100"},  # 8 KV heads over 3 GPUs: no engine figures
    "short": {"model": LLAMA, "tp": 1, "gpu": "H100", "min_concurrency": 4},  # starts, holds 3 at 131,072 tokens
    "refused": {"model": "google/gemma-3-27b-it", "tp": 1, "gpu": "H100"},  # vLLM refuses its 131,072 tokens
}


def _check_csv(tmp_path, names):
    path = tmp_path / ("-".join(names) + ".yaml")
    path.write_text(yaml.safe_dump({"deployments": [{"name": n, **DEPLOYMENTS[n]} for n in names]}))
    out = run_kvplan("check", "--file", path, "--format", "csv")
    assert out.returncode == 1, out.stderr  # the short one fails its min_concurrency or the unsharded one its tp
    return list(csv.reader(io.StringIO(out.stdout)))


def test_check_writes_the_same_columns_for_any_deployment(tmp_path):
    headers = {name: _check_csv(tmp_path, [name])[0] for name in ("unsharded", "short")}
    alone_refused = _check_csv(tmp_path, ["refused", "unsharded"])[0]
    together = _check_csv(tmp_path, list(DEPLOYMENTS))
    assert headers["unsharded"] == headers["short"] == alone_refused == together[0]
    assert "engine" not in together[0] and "engine_refusal" not in together[0]
    rows = {row[0]: dict(zip(together[0], row)) for row in together[1:]}
    assert rows["unsharded"]["engine_version"] == "" and rows["unsharded"]["max_concurrency"] == ""
    assert rows["short"]["engine_version"] == "0.32.0" and rows["short"]["engine_refusal_reason"] == ""
    # vLLM 0.32.0 v1/core/kv_cache_utils.py check_enough_kv_cache_memory's message
    assert rows["refused"]["engine_refusal_reason"].startswith("To serve at least one request with the model's max "
                                                               "seq len (131072)")


def test_an_estimate_sweep_with_an_unshardable_degree_keeps_the_columns_of_one_that_shards():
    one = run_kvplan("estimate", LLAMA, "--tp", "1", "--format", "csv").stdout.splitlines()[0]
    sweep = list(csv.DictReader(io.StringIO(run_kvplan("estimate", LLAMA, "--tp", "1,3", "--format", "csv").stdout)))
    backwards = run_kvplan("estimate", LLAMA, "--tp", "3,1", "--format", "csv").stdout.splitlines()[0]
    assert list(sweep[0]) == one.split(",") == backwards.split(",")
    assert [row["tp"] for row in sweep] == ["1", "3"]
    assert sweep[1]["engine_version"] == sweep[1]["decode_context"] == "" and sweep[0]["engine_version"] == "0.32.0"


def test_a_record_absent_from_a_row_is_empty_cells_in_its_columns():
    rows = [{"a": 1, "r": None, "s": None}, {"a": 2, "r": {"x": 3, "inner": None}, "s": None},
            {"a": 4, "r": {"x": 5, "inner": {"y": 6}}, "s": None}]
    assert to_csv(rows).splitlines() == ["a,r_x,r_inner_y,s", "1,,,", "2,3,,", "4,5,6,"]
    assert to_csv(rows[::-1]).splitlines()[0] == "a,r_x,r_inner_y,s"  # whichever row has the record first
