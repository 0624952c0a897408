"""Session 79's review as a serving engineer who just installed kvplan: the defects found, each as the input that
showed it.

1. `--help` at 80 columns cut flag names with '…' (typer's rich tables ellipsise a word wider than its column):
   `kvplan estimate -h` showed `--prefill-context-parallel-…`, `--decode-context-parallel-s…` and
   `--cp-kv-cache-interleave-si…`, so the long name of -pcp / -dcp could not be read at all; even at 120 columns
   `--dcp-kv-cache-in…` was cut. A word wider than its column is now folded onto the next line, never cut.
"""

from __future__ import annotations

import pytest

from conftest import run_kvplan


@pytest.mark.parametrize("columns", [80, 100, 132])
@pytest.mark.parametrize("command", [(), ("estimate",), ("check",), ("verify",), ("models",), ("gpus",)])
def test_help_never_cuts_a_word(command, columns):
    r = run_kvplan(*command, "--help", env={"COLUMNS": str(columns)})
    assert r.returncode == 0, r.stderr
    assert "…" not in r.stdout
    assert max(len(line) for line in r.stdout.splitlines()) <= columns


def test_help_at_80_columns_spells_every_long_flag():
    """Each long flag estimate declares can be read off the 80-column help: a folded name continues at the start
    of the same cell on the next line, so the first cells of the lines run together give the name whole."""
    text = run_kvplan("estimate", "--help", env={"COLUMNS": "80"}).stdout
    first_cells = [line.strip("│ ").split("  ")[0] for line in text.splitlines() if line.startswith("│")]
    joined = "".join(first_cells)
    for flag in ("--prefill-context-parallel-size", "--decode-context-parallel-size",
                 "--cp-kv-cache-interleave-size", "--dcp-kv-cache-interleave-size", "--pipeline-parallel-size"):
        assert flag in joined, flag
