"""vLLM's --compilation-config / -O and dotted JSON keys (session 78, compile): kvplan/engines/vllm_compilation.py
and vllm_dotted_flags.py, read in vLLM 0.6.4-0.34.0's engine/arg_utils.py, FlexibleArgumentParser, config/
compilation.py, config/vllm.py and v1/cudagraph_dispatcher.py.

Llama-3.1-8B-Instruct on an H100 at vLLM 0.32.0's defaults: max_num_seqs 1,024, max_num_batched_tokens 8,192; the
capture cap min(2 x 1,024, 512) = 512 tokens, the sizes 1, 2, 4 (3), 8..248 by 8 (31) and 256..512 by 16 (17): 51
(max_num_seqs 1,024 and 8,192 tokens lie above the cap, so nothing is appended). FULL_AND_PIECEWISE (the default)
captures PIECEWISE at the 51 and FULL decode graphs at those within 1 x 1,024 tokens, all 51. The graph term is one
figure whatever the count (vllm_budget.py), so cudagraph_mode NONE frees exactly that term and no more.
"""

from __future__ import annotations

import json

import pytest
from conftest import deployments_file, estimate_plan, one_error_line, run_kvplan

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
H100 = ("--gpu", "H100")


def _graphs(plan: dict) -> dict:
    (term,) = [t for t in plan["budget"]["terms"] if t["name"] == "cuda_graphs"]
    return term


def _available(plan: dict) -> int:
    return plan["engine"]["available_kv_cache_bytes"]


@pytest.fixture(scope="module")
def default_plan():
    return estimate_plan(LLAMA, *H100)


@pytest.mark.parametrize("flags", [
    ("--compilation-config", '{"cudagraph_mode": "NONE"}'),
    ("--compilation-config", '{"cudagraph_mode": "none"}'),  # CUDAGraphMode[value.upper()] (0.32.0:873-878)
    ("-cc", '{"cudagraph_mode": "NONE"}'),
    ("--compilation-config.cudagraph_mode", "NONE"),
    ("-cc.cudagraph_mode=NONE",),
    ("-O0",), ("-O", "0"), ("-O=0",), ("--optimization-level", "0"),  # OPTIMIZATION_LEVEL_00: NONE
])
def test_no_graphs_frees_exactly_the_graph_term(default_plan, flags):
    plan = estimate_plan(LLAMA, *H100, *flags)
    assert _graphs(default_plan)["bytes"] > 0 and _graphs(plan)["bytes"] == 0
    assert _available(plan) == _available(default_plan) + _graphs(default_plan)["bytes"]
    assert "cudagraph_mode NONE" in _graphs(plan)["source"]


def test_no_graphs_equals_enforce_eager(default_plan):
    eager = estimate_plan(LLAMA, *H100, "--enforce-eager")
    assert _available(estimate_plan(LLAMA, *H100, "-O0")) == _available(eager)


@pytest.mark.parametrize("flags, counts", [
    ((), "PIECEWISE=51 (largest=512), FULL=51 (largest=512)"),
    (("--compilation-config", '{"cudagraph_mode": "PIECEWISE"}'), "PIECEWISE=51 (largest=512)"),
    (("-O1",), "PIECEWISE=51 (largest=512)"),  # OPTIMIZATION_LEVEL_01
    (("-O3",), "PIECEWISE=51 (largest=512), FULL=51 (largest=512)"),
    (("--compilation-config", '{"cudagraph_mode": "FULL_DECODE_ONLY"}'), "FULL=51 (largest=512)"),
    # FULL: one FULL graph at each mixed size, no separate decode graphs (cudagraph_dispatcher.py 0.32.0:187-229)
    (("--compilation-config", '{"cudagraph_mode": "FULL"}'), "FULL=51 (largest=512)"),
    # compilation mode 0 drops the piecewise part from 0.30: FULL_AND_PIECEWISE -> FULL_DECODE_ONLY
    (("--compilation-config", '{"mode": 0}'), "FULL=51 (largest=512)"),
    (("--compilation-config", '{"mode": "NONE", "cudagraph_mode": "PIECEWISE"}'), None),  # PIECEWISE -> NONE
])
def test_modes_name_their_graphs(default_plan, flags, counts):
    plan = estimate_plan(LLAMA, *H100, *flags)
    source = _graphs(plan)["source"]
    if counts is None:
        assert _graphs(plan)["bytes"] == 0
        return
    assert f"capturing {counts} (" in source, source
    assert _available(plan) == _available(default_plan)  # one figure whatever the count


def test_piecewise_without_compilation_is_none_before_030():
    # 0.28.0 config/vllm.py:1417-1424 sets NONE (0.29.0:1476 too); 0.30.0:1010-1030 keeps FULL_DECODE_ONLY
    old = estimate_plan(LLAMA, *H100, "--engine", "vllm==0.28.0", "--compilation-config", '{"mode": 0}')
    new = estimate_plan(LLAMA, *H100, "--engine", "vllm==0.30.0", "--compilation-config", '{"mode": 0}')
    assert _graphs(old)["bytes"] == 0 and _graphs(new)["bytes"] > 0


def test_capture_sizes_in_the_json_equal_the_flags():
    # 1, 2, 4, 8: PIECEWISE=4 (largest=8), FULL=4 (all within 1,024 x 1)
    by_flag = estimate_plan(LLAMA, *H100, "--cudagraph-capture-sizes", "1,2,4,8")
    by_json = estimate_plan(LLAMA, *H100, "--compilation-config", '{"cudagraph_capture_sizes": [1, 2, 4, 8]}')
    dotted = estimate_plan(LLAMA, *H100, "--compilation-config.cudagraph_capture_sizes", "[1,2,4,8]")
    assert by_flag["budget"] == by_json["budget"] == dotted["budget"]
    assert "PIECEWISE=4 (largest=8), FULL=4 (largest=8)" in _graphs(by_json)["source"]
    capped = estimate_plan(LLAMA, *H100, "--compilation-config", '{"max_cudagraph_capture_size": 16}')
    assert capped["budget"] == estimate_plan(LLAMA, *H100, "--max-cudagraph-capture-size", "16")["budget"]


def test_capture_sizes_two_ways_refused():
    # engine/arg_utils.py 0.32.0:2788-2803: "... are mutually exclusive", even when they agree
    line = one_error_line(run_kvplan("estimate", LLAMA, *H100, "--cudagraph-capture-sizes", "1,2",
                                     "--compilation-config", '{"cudagraph_capture_sizes": [1, 2]}'))
    assert "--cudagraph-capture-sizes" in line and "mutually exclusive" in line


@pytest.mark.parametrize("flags, needle", [
    (("--compilation-config", '{"cudagraph_mode": "foo"}'),
     "cudagraph_mode 'foo' is not one of vLLM's: NONE, PIECEWISE, FULL, FULL_DECODE_ONLY, FULL_AND_PIECEWISE"),
    (("--compilation-config", '{"foo_bar": 1}'), "'foo_bar' is not a field of vLLM's CompilationConfig"),
    (("--compilation-config", "[1]"), "--compilation-config takes a JSON object"),
    (("--compilation-config", '{"mode": 7}'), "mode / level 7"),
    (("--compilation-config", '{"cudagraph_capture_sizes": [0]}'), "cudagraph_capture_sizes"),
    (("-O", "7"), "-O '7' is not a level"),
    (("-O", '{"level": 3}'), "reads -O as --optimization-level"),  # from 0.12 an object after -O stops
    (("-O.cudagraph_mode=NONE",), "write -cc.cudagraph_mode"),  # 0.13+: -O.x is the optimization level
    (("--compilation-config", '{"level": 3}', "--engine", "vllm==0.24.0"), "level is not a field"),
    (("--compilation-config", "{}", "--engine", "vllm==0.6.4"), "came with 0.6.5"),
    (("--compilation-config", '{"cudagraph_mode": "NONE"}', "--engine", "vllm==0.10.0"), "came with 0.10.1"),
    (("-cc", "{}", "--engine", "vllm==0.11.1"), "-cc needs vLLM 0.12"),
    (("-cc.cudagraph_mode=NONE", "--engine", "vllm==0.11.0"), "-cc.cudagraph_mode needs vLLM 0.12"),
    (("--compilation-config", '{"cudagraph_mode": "NONE"}', "--engine", "none"), "modelled with vLLM only"),
])
def test_bad_values_exit_2(flags, needle):
    line = one_error_line(run_kvplan("estimate", LLAMA, *H100, *flags))
    assert needle in line, line


def test_releases_before_graph_subtraction_take_it_unchanged():
    # up to 0.19 the graphs are captured after the cache is sized: the config is read, checked, and changes nothing;
    # before 0.12 -O is the compilation config (-O3 is -O.level=3, utils/__init__.py 0.11.0:1891-1901), and before
    # 0.13 an unknown field is dropped (pydantic's default, no extra="forbid")
    for version, flags in (("0.11.0", ("-O3",)), ("0.11.0", ("-O.cudagraph_mode=NONE",)),
                           ("0.11.0", ("-O", '{"cudagraph_mode": "NONE"}')), ("0.12.0", ("-O.cudagraph_mode=NONE",)),
                           ("0.12.0", ("--compilation-config", '{"foo_bar": 1}')), ("0.8.5", ("-O3",))):
        base = estimate_plan(LLAMA, *H100, "--engine", f"vllm=={version}")
        assert _available(estimate_plan(LLAMA, *H100, "--engine", f"vllm=={version}", *flags)) == _available(base)


def test_dotted_speculative_config_equals_the_json():
    whole = estimate_plan(LLAMA, *H100, "--speculative-config", '{"method": "ngram", "num_speculative_tokens": 3}')
    dotted = estimate_plan(LLAMA, *H100, "--speculative-config.method", "ngram",
                           "--speculative-config.num_speculative_tokens=3")
    assert dotted == whole
    # underscores before the first dot read as dashes (utils/argparse_utils.py 0.34.0:378-394)
    assert estimate_plan(LLAMA, *H100, "--speculative_config.method", "ngram",
                         "--speculative_config.num_speculative_tokens", "3") == whole


def test_dotted_keys_by_release():
    # 0.8.5 has no fold (utils.py 0.8.5:1351-1369): argparse stops on the name
    line = one_error_line(run_kvplan("estimate", LLAMA, *H100, "--engine", "vllm==0.8.5",
                                     "--speculative-config.method", "ngram"))
    assert "--speculative-config.method needs vLLM 0.9 or later" in line
    # 0.9.0-0.9.1 keep the value as text (utils.py 0.9.0:1452-1466): a number there is not one
    line = one_error_line(run_kvplan("estimate", LLAMA, *H100, "--engine", "vllm==0.9.0",
                                     "--speculative-config.num_speculative_tokens", "3"))
    assert "keeps a dotted key's value as text" in line


def test_dotted_limit_mm_per_prompt():
    model = "Qwen/Qwen2.5-VL-7B-Instruct"
    assert estimate_plan(model, *H100, "--limit-mm-per-prompt.image", "2", "--limit-mm-per-prompt.video", "0") == \
        estimate_plan(model, *H100, "--limit-mm-per-prompt", '{"image": 2, "video": 0}')


def test_check_cli_and_yaml_mapping(tmp_path, default_plan):
    r = run_kvplan("check", LLAMA, "-tp", "1", "--gpu", "H100", "--compilation-config", '{"cudagraph_mode": "NONE"}',
                   "--format", "json")
    assert r.returncode == 0, r.stderr
    path = deployments_file(tmp_path, f"  - name: eager\n    model: {LLAMA}\n    tp: 1\n    gpu: H100\n"
                                      f"    compilation_config:\n      cudagraph_mode: NONE\n")
    f = run_kvplan("check", "--file", path, "--format", "json")
    assert f.returncode == 0, f.stderr
    expected = _available(default_plan) + _graphs(default_plan)["bytes"]
    for out in (r.stdout, f.stdout):
        (result,) = json.loads(out)["results"]
        assert result["engine"]["available_kv_cache_bytes"] == expected
    line = one_error_line(run_kvplan("check", LLAMA, "-tp", "1", "--compilation-config.cudagraph_mode", "foo"))
    assert "cudagraph_mode 'foo'" in line
