"""Session 78's polish of the day's merges: the compilation config's names read as vLLM reads them, the cause of an
eager decode named, -O spelled per release, a negative vLLM lacks said plainly, one sentence for a capture-size pair
vLLM refuses.

Models: Llama-3.1-8B-Instruct on an H100 (vLLM 0.32.0 by default), as test_compilation_config_s78.py plans it."""

from __future__ import annotations

import copy
import json

import pytest

from conftest import ROOT, estimate_plan, one_error_line, run_kvplan
from test_verify_engine_flags import LLAMA_8B, options, verify_plan  # noqa: F401 (fixtures)

H100 = ("--gpu", "H100")
MODES = "NONE, PIECEWISE, FULL, FULL_DECODE_ONLY, FULL_AND_PIECEWISE"


# ---- 1. cudagraph_mode and mode: CUDAGraphMode[value.upper()], no strip ----------------------------------------------

@pytest.mark.parametrize("value", [" NONE ", "NONE ", "\tpiecewise", "FULL\n"])
def test_padded_cudagraph_mode_is_refused(value):
    """vLLM's validator is `CUDAGraphMode[value.upper()]` (config/compilation.py 0.32.0:873-878, 0.10.1:402, 0.34.0:
    1028): the name upper-cased and looked up as typed, so a space or a tab around it is a KeyError and vLLM stops."""
    line = one_error_line(run_kvplan("estimate", LLAMA_8B, *H100, "--compilation-config",
                                     json.dumps({"cudagraph_mode": value})))
    assert "--compilation-config cudagraph_mode" in line and MODES in line
    assert json.dumps(value)[1:-1] in line or repr(value)[1:-1] in line  # the value as typed, spaces kept


@pytest.mark.parametrize("value", [" VLLM_COMPILE", "none "])
def test_padded_compilation_mode_is_refused(value):
    """`mode`'s validator: `value.upper()` in CompilationMode.__members__, else "Invalid compilation mode"
    (compilation.py 0.32.0:853-871, 0.11.1:571): no strip either."""
    line = one_error_line(run_kvplan("estimate", LLAMA_8B, *H100, "-cc", json.dumps({"mode": value})))
    assert "-cc mode" in line and "VLLM_COMPILE" in line


def test_names_fold_as_python_upper_folds_them():
    """Case folded by str.upper, as vLLM folds it: 'ı' (U+0131, dotless i) upper-cases to 'I', so vLLM reads
    'pıecewise' as PIECEWISE; the plan is the one PIECEWISE gives (at -O2's compiled mode PIECEWISE stays PIECEWISE,
    config/vllm.py 0.32.0:1077-1097)."""
    assert "pıecewise".upper() == "PIECEWISE"  # the folding vLLM applies, checked here, not assumed
    folded = estimate_plan(LLAMA_8B, *H100, "-cc", json.dumps({"cudagraph_mode": "pıecewise"}))
    plain = estimate_plan(LLAMA_8B, *H100, "-cc", '{"cudagraph_mode": "PIECEWISE"}')
    assert folded["budget"] == plain["budget"] and folded["max_concurrency"] == plain["max_concurrency"]
    mode = estimate_plan(LLAMA_8B, *H100, "-cc", json.dumps({"mode": "vllm_compıle"}))
    assert mode["budget"] == estimate_plan(LLAMA_8B, *H100, "-cc", '{"mode": 3}')["budget"]


# ---- 2. the eager decode names what turned the graphs off ------------------------------------------------------------

O0_CAUSE = "cudagraph_mode NONE (--compilation-config, -O0)"  # the budget's graph term words (vllm_budget.py)


@pytest.mark.parametrize("keywords, cause", [({"optimization_level": "0"}, O0_CAUSE),
                                             ({"compilation_config": '{"cudagraph_mode":"NONE"}'}, O0_CAUSE),
                                             ({"enforce_eager": True}, "--enforce-eager")])
def test_decode_method_names_the_cause(options, monkeypatch, keywords, cause):
    """time_forward hands time_decode the cause; the point's method and the graphs record say it in the graph term's
    words (0.34's source: "0: <cause> captures no graphs", vllm_budget.graphs_off_cause)."""
    from kvplan.gpu import rank as R

    spec, opts = options(LLAMA_8B, context=8192, engine="vllm==0.34.0", **keywords)
    plan, resolved = verify_plan(spec, opts)
    graph_term = next(t for t in plan.budget.terms if t.name == "cuda_graphs")
    assert graph_term.source == f"0: {cause} captures no graphs"
    calls = []
    monkeypatch.setattr(R, "time_decode", lambda *a, **k: calls.append(k) or {"batch": a[3], **k})
    monkeypatch.setattr(R, "time_prefill", lambda *a, **k: {})

    class Boundary:
        served = 4

    model = type("M", (), {"rt": type("Rt", (), {"labels": {}, "paged": type("P", (), {"labels": {}})})})
    timed = R.time_forward(spec, resolved, {"model": model}, _Progress(), {"layout": None, "allocator": None,
                                                                           "boundary": Boundary()}, 16)
    assert calls and all(k["eager"] == cause for k in calls)
    assert timed["graphs_off_by"] == cause
    assert R.no_graphs(R.graph_flags(spec, resolved))["why"].startswith(f"{cause}: vLLM captures no CUDA graph")


def test_method_text():
    from kvplan.gpu.decode import step_method

    assert step_method(O0_CAUSE) == f"eager launches ({O0_CAUSE}, as vLLM runs it), CUDA events, median"
    assert step_method("--enforce-eager") == "eager launches (--enforce-eager, as vLLM runs it), CUDA events, median"
    assert step_method(None) == "CUDA graph replay, CUDA events, median"


class _Progress:
    def step(self, _text):
        import contextlib

        return contextlib.nullcontext()


def _recorded(flags: dict, engine: str, off_by=None) -> dict:
    """A 0.32 result recorded on an H200 (DeepSeek-V3), rewritten as these flags under `engine` would leave it."""
    with open(ROOT / "benchmarks" / "device_runs" / "early" / "verify_h200_2026-12-04_s41_call1.jsonl") as handle:
        r = copy.deepcopy(next(r["result"] for r in map(json.loads, handle) if r["result"]))
    r["options"]["engine_flags"], r["options"]["engine"] = flags, engine
    r["budget"]["engine"] = "vllm " + engine.split("==")[1]
    if off_by:
        r["decode"]["graphs_off_by"] = off_by
        for p in r["decode"]["points"]:
            p["eager"] = True
    return r


def _table(r: dict) -> str:
    from kvplan.commands.verify import VerifyResult
    from kvplan.render import emit

    return " ".join(emit(VerifyResult(r), "table").split())


def test_title_names_the_cause():
    flat = _table(_recorded({"optimization_level": "0"}, "vllm==0.32.0", O0_CAUSE))
    assert f"Decode step (whole forward, eager: {O0_CAUSE}), ms" in flat
    assert "--enforce-eager" not in flat.split("Decode step")[1].split("ms")[0]


def test_title_of_an_older_eager_result():
    """Results recorded before the cause was (no graphs_off_by) turned the graphs off with --enforce-eager alone."""
    r = _recorded({"enforce_eager": True}, "vllm==0.32.0", "--enforce-eager")
    del r["decode"]["graphs_off_by"]
    assert "Decode step (whole forward, eager: --enforce-eager), ms" in _table(r)


# ---- 3. -O spelled as the release spells it --------------------------------------------------------------------------

@pytest.mark.parametrize("engine, flag", [("vllm==0.11.0", "-O 3"), ("vllm==0.9.2", "-O 3"),
                                          ("vllm==0.12.0", "--optimization-level 3"),
                                          ("vllm==0.32.0", "--optimization-level 3")])
def test_options_line_spells_the_level_flag(engine, flag):
    """-O is the compilation config itself before 0.12, --optimization-level's short form from 0.12
    (engine/arg_utils.py 0.11.1:1149 `-O`, 0.12.0:1128 and :1138 `-cc` and `--optimization-level`): before 0.12
    `vllm serve --optimization-level 3` stops ("unrecognized arguments")."""
    flat = _table(_recorded({"optimization_level": "3"}, engine))
    assert f"max_num_batched_tokens 8,192, {flag}." in flat
    if flag == "-O 3":
        assert "--optimization-level" not in flat


# ---- 4. a negative vLLM has no form of -------------------------------------------------------------------------------

@pytest.mark.parametrize("typed, flag", [("--no-disable-log-stats", "--disable-log-stats"),
                                         ("--enable-log-stats", "--disable-log-stats"),
                                         ("--no-host", "--host")])
@pytest.mark.parametrize("command", [("estimate", LLAMA_8B), ("check", LLAMA_8B, "-tp", "1")])
def test_negative_vllm_lacks(command, typed, flag):
    """--disable-log-stats is action='store_true' (engine/arg_utils.py 0.32.0:1881, 0.34.0:1950-1953): no --no- form,
    and no --enable- one (0.33's EnableDisableAction takes the BooleanOptionalAction flags only); --host takes a
    value. `vllm serve` stops on either ("unrecognized arguments"); kvplan says so, with no fuzzy suggestion."""
    line = one_error_line(run_kvplan(*command, typed))
    assert "did you mean" not in line and "--enable-lora" not in line
    assert typed in line and f"nor has vLLM: its {flag} " in line and "no negative" in line


# ---- 5. one sentence for the capture-size pair vLLM refuses ----------------------------------------------------------

def test_capture_pair_one_sentence(options):
    """8 is none of 1, 2, 4, so whatever max_num_batched_tokens keeps the largest of them is at most 4 and vLLM's
    _set_cudagraph_sizes raises (config/vllm.py 0.32.0:2501-2518): estimate, check and verify say it alike."""
    pair = ("--cudagraph-capture-sizes", "1,2,4", "--max-cudagraph-capture-size", "8")
    lines = [one_error_line(run_kvplan(*args, *pair)).split(": error: ")[1]
             for args in (("estimate", LLAMA_8B, *H100), ("check", LLAMA_8B, "-tp", "1", *H100),
                          ("verify", LLAMA_8B))]
    assert lines[0] == lines[1] == lines[2]
    assert lines[0].startswith("--max-cudagraph-capture-size 8 is not one of --cudagraph-capture-sizes (1, 2, 4)")


def test_capture_pair_with_batched_tokens():
    """With --max-num-batched-tokens 2 the sizes kept are 1 and 2 (largest 2), so 4 is refused by estimate and
    verify alike, and the sentence names what max_num_batched_tokens cut."""
    pair = ("--cudagraph-capture-sizes", "1,2,4", "--max-cudagraph-capture-size", "4", "--max-num-batched-tokens",
            "2", "--max-num-seqs", "2", "-c", "2")
    lines = [one_error_line(run_kvplan(*args, *pair)).split(": error: ")[1]
             for args in (("estimate", LLAMA_8B, *H100), ("verify", LLAMA_8B))]
    assert lines[0] == lines[1]
    assert ("is not the largest of --cudagraph-capture-sizes within --max-num-batched-tokens 2, which keeps 2 as the "
            "largest:") in lines[0]
