"""Verify results recorded by earlier kvplan versions (benchmarks/device_runs/early/verify_*.jsonl,
benchmarks/device_runs/*/v_*.json) go through the same renderers as a fresh run's. What a field such a result lacks
reads as is decided here, once:

- a figure the result has no field for reads NOT_RECORDED, which prints "not recorded" under any format spec, is
  falsy (so no error or ratio is worked out from it) and takes part in no arithmetic: a missing figure is never
  made up from another;
- a field renamed since it was recorded (RENAMED) is read under its current name, with its recorded value, so the
  json/yaml output of an old result follows the names the output guard checks (render/formats.py check_numbers).

A field recorded as null stays None: the run recorded that there was none (no estimate, no capture size)."""

from __future__ import annotations

TEXT = "not recorded"


class NotRecorded:
    """The value of a field the recorded result has no entry for."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NOT_RECORDED"

    def __str__(self) -> str:
        return TEXT

    def __format__(self, spec: str) -> str:  # f"{figure:,}" of a figure not recorded
        return TEXT

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:  # a copy or an unpickled one is the module's one sentinel, so `known` still sees it
        return "NOT_RECORDED"


NOT_RECORDED = NotRecorded()


def recorded(record: dict, key: str):
    """record[key], or NOT_RECORDED where the result was recorded before verify wrote that field."""
    return record.get(key, NOT_RECORDED)


def known(value) -> bool:
    """Whether `value` is a figure to work with: recorded, and not recorded as none."""
    return value is not None and value is not NOT_RECORDED


# section -> {name recorded: current name}
RENAMED = {
    # "distinct_blocks" until commit 07425f17: a yes/no named like a block count, which the output's number check
    # refuses (kvplan/verify/allocator.py no_block_shared, the same test of the same allocator)
    "boundary": {"distinct_blocks": "no_block_shared"},
}


def current(result: dict) -> dict:
    """`result` with the fields renamed since it was recorded under their current names, in their places; the same
    dict where none is (every fresh run's)."""
    renamed = {section: names for section, names in RENAMED.items()
               if isinstance(result.get(section), dict) and names.keys() & result[section].keys()}
    if not renamed:
        return result
    return {key: ({renamed[key].get(k, k): v for k, v in value.items()} if key in renamed else value)
            for key, value in result.items()}
