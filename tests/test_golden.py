"""Every pinned output (tests/golden/, made by tests/golden/regen.py) is what kvplan prints now. A commit that
changes one regenerates it and says which rule it fixed and why."""

import json
from pathlib import Path

import pytest

from conftest import run_kvplan
from golden_cases import cases

GOLDEN = Path(__file__).resolve().parent / "golden"


@pytest.mark.parametrize("name,args", cases(), ids=[name for name, _ in cases()])
def test_output_matches_golden(name, args):
    result = run_kvplan(*args)
    assert result.returncode in (0, 1), result.stderr
    assert json.loads(result.stdout) == json.loads((GOLDEN / f"{name}.json").read_text())
