"""`kvplan check` as a platform engineer first wires it into CI (session 81): the docs' commands and files run as
shown, the pre-commit hook checks only kvplan's files, and every failure says what would fix it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import deployments_file, one_error_line, run_kvplan

ROOT = Path(__file__).resolve().parents[1]


def _result(*args) -> tuple:
    run = run_kvplan("check", *args, "--format", "json")
    assert run.returncode in (0, 1), run.stderr
    return run.returncode, json.loads(run.stdout)["results"]


def test_file_help_names_every_key_an_entry_takes():
    """--file's help lists the keys an entry takes; `pcp` (vLLM's --prefill-context-parallel-size, a valid key since
    session 73) was missing from it, so `kvplan check -h` sent a user to an incomplete list."""
    from kvplan.cli.app import click_command
    from kvplan.commands.deployments import VALID_KEYS

    (files,) = [p for p in click_command().commands["check"].params if p.name == "files"]
    missing = [key for key in VALID_KEYS if not re.search(rf"\b{key}\b", files.help)]
    assert missing == []
