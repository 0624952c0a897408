"""Session 67: byte units up to the petabyte (a 1PiB --gpu-memory was called "not a size")."""

import pytest

from kvplan.errors import FieldError
from kvplan.units import parse_size


def test_petabyte_units_read_as_bytes():
    assert parse_size("1PiB", "gpu_memory") == 1125899906842624  # 1024**5, by hand
    assert parse_size("2pb", "gpu_memory") == 2_000_000_000_000_000
    assert parse_size("0.5 PiB", "gpu_memory") == 562949953421312


def test_past_an_exbibyte_is_too_large_not_unreadable():
    with pytest.raises(FieldError, match="at most 1 EiB"):
        parse_size("1025PiB", "gpu_memory")
