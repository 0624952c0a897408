"""verify's matmul forms (kvplan/gpu/gemm.py), the choice's bookkeeping on the CPU: graphs and timings replaced by
scripted times, so that what is kept follows from them alone."""

import pytest

torch = pytest.importorskip("torch")

from kvplan.gpu import gemm  # noqa: E402
from kvplan.gpu.ops import MM_FORMS  # noqa: E402


class _Mm:
    def __init__(self, form):
        self.forms = {(4, 4, 1): form}

    def __call__(self, x, w):
        return x


def _scripted(monkeypatch, by_form: dict, mm):
    """_graph_ms answers the time of whichever form mm.forms holds when it is called."""
    calls = []

    def fake(fn, reps):
        form = mm.forms[(4, 4, 1)]
        calls.append(form)
        return by_form[form]

    monkeypatch.setattr(gemm, "_graph_ms", fake)
    return calls


def test_a_chosen_form_as_fast_as_when_chosen_is_kept(monkeypatch):
    mm = _Mm(MM_FORMS[0])
    calls = _scripted(monkeypatch, {MM_FORMS[0]: 1.01}, mm)
    times = {MM_FORMS[0]: 1.0, MM_FORMS[3]: 1.005}
    assert gemm._timed_again(mm, (4, 4, 1), None, [None], times, 2) == 1.01
    assert calls == [MM_FORMS[0]] and mm.forms[(4, 4, 1)] == MM_FORMS[0]


def test_a_chosen_form_slower_again_gives_way_to_a_faster_runner_up(monkeypatch):
    """F.linear chosen at 1.00 ms but 1.09 ms when captured again (cuBLAS's kernel changed): the runner-up, timed
    again at 1.02, is kept."""
    mm = _Mm(MM_FORMS[0])
    calls = _scripted(monkeypatch, {MM_FORMS[0]: 1.09, MM_FORMS[3]: 1.02}, mm)
    times = {MM_FORMS[0]: 1.0, MM_FORMS[1]: 1.5, MM_FORMS[3]: 1.01}
    assert gemm._timed_again(mm, (4, 4, 1), None, [None], times, 2) == 1.02
    assert calls == [MM_FORMS[0], MM_FORMS[3]] and mm.forms[(4, 4, 1)] == MM_FORMS[3]


def test_a_runner_up_no_faster_leaves_the_choice(monkeypatch):
    mm = _Mm(MM_FORMS[0])
    _scripted(monkeypatch, {MM_FORMS[0]: 1.09, MM_FORMS[3]: 1.2}, mm)
    times = {MM_FORMS[0]: 1.0, MM_FORMS[3]: 1.01}
    assert gemm._timed_again(mm, (4, 4, 1), None, [None], times, 2) == 1.09
    assert mm.forms[(4, 4, 1)] == MM_FORMS[0]
