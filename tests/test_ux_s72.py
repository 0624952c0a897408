"""Session 72's fresh-eyes review of the command line, as a serving engineer meets it: the text output says what its
flags asked for (each --batch, which KV dtype a time to first token is of, a header a release would take), an option
that changes nothing says so, an unknown flag gets the nearest one first (or what to do with a vLLM server flag), and
the check --suggest table reads like the others."""

from __future__ import annotations

import json
import re

import pytest

from conftest import deployments_file, one_error_line, run_kvplan

LLAMA_8B = "meta-llama/Llama-3.1-8B-Instruct"
QWEN3_8B = "Qwen/Qwen3-8B"
DEEPSEEK_V3 = "deepseek-ai/DeepSeek-V3"


def _text(*args) -> str:
    r = run_kvplan("estimate", *args)
    assert r.returncode == 0, r.stderr
    return " ".join(r.stdout.split())  # prose wrapped at any width reads as one line


def _json(*args) -> dict:
    r = run_kvplan("estimate", *args, "--format", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


# -- the time to first token of a KV-dtype sweep names its dtype ------------------------------------------------------

def test_ttft_lines_of_a_kv_dtype_sweep_name_the_dtype():
    """Before: two lines "131,071-token prompt ... at batch 1 (tp 8): 12,452 ms" and "... (tp 8): 12,444 ms", the
    same words for bf16 and fp8 rows; the table's rows are told apart by their KV dtype, so are these lines."""
    args = (DEEPSEEK_V3, "--gpu", "H200", "-tp", "8", "-c", "128K", "--kv-cache-dtype", "auto,fp8")
    text, plans = _text(*args), _json(*args)["plans"]
    assert [p["kv_dtype"] for p in plans] == ["bf16", "fp8_e4m3"]
    for p in plans:
        line = re.search(rf"131,071-token prompt \([^)]*\) at batch 1 \({p['kv_dtype']}, tp 8\): ([\d,]+) ms", text)
        assert line, p["kv_dtype"]
        assert line[1] == f"{p['prefill']['ttft_ms']:,.0f}"  # the figure is that row's (JSON prefill.ttft_ms)


def test_ttft_line_without_a_dtype_sweep_is_unchanged():
    text = _text(QWEN3_8B, "--gpu", "H100", "-c", "8K", "-tp", "1,2")
    assert "at batch 1 (tp 1):" in text and "at batch 1 (tp 2):" in text and "(bf16, tp" not in text


# -- --batch: its batches in the text output, not only in the JSON --------------------------------------------------

def test_batch_sizes_asked_are_in_the_text_output():
    """Before: `--batch 4,100` changed nothing in the table output (its cells are batch 1 | max requests only)."""
    args = (QWEN3_8B, "--gpu", "H100", "-c", "8K", "--batch", "4,100")
    text, (plan,) = _text(*args), _json(*args)["plans"]
    held = plan["max_concurrency"]
    points = {q["batch"]: q for q in plan["decode"]["points"]}
    assert set(points) == {1, 4, 100, held} and 4 < held < 100
    four, hundred = points[4], points[100]
    assert four["fits"] and not hundred["fits"]
    assert (f"--batch (max len 8,192, tp 1): ITL and tok/s at batch 4: {four['itl_ms']:.1f} ms, "
            f"{four['tokens_per_s']:,.0f} tok/s; 100: {hundred['itl_ms']:.1f} ms, {hundred['tokens_per_s']:,.0f} "
            f"tok/s (more than the {held} held).") in text
    # tok/s is the whole batch's: batch x 1000 / ITL ms (hand arithmetic on the JSON's own ITL)
    assert four["tokens_per_s"] == pytest.approx(4 * 1000 / four["itl_ms"])


def test_no_batch_line_without_batch_or_where_nothing_fits():
    assert "--batch (" not in _text(QWEN3_8B, "--gpu", "H100", "-c", "8K")
    # Llama-3.1-8B on an L4 at 128K holds no request (README's first example): no decode cells, no batch line
    refused = _text(LLAMA_8B, "--gpu", "L4", "--batch", "4")
    assert "does not fit" in refused and "--batch (" not in refused


def test_batch_line_reaches_the_html_page():
    r = run_kvplan("estimate", QWEN3_8B, "--gpu", "H100", "-c", "8K", "--batch", "4", "--format", "html")
    assert r.returncode == 0 and "--batch (max len 8,192, tp 1): ITL and tok/s at batch 4:" in r.stdout


# -- the header names a --kv-cache-dtype the release takes -----------------------------------------------------------

@pytest.mark.parametrize("model, engine, said", [
    # vLLM 0.6.3 engine/arg_utils.py:293-295: choices=['auto', 'fp8', 'fp8_e5m2', 'fp8_e4m3'], no bfloat16
    (LLAMA_8B, "vllm==0.6.3", "--kv-cache-dtype auto,"),
    # vLLM 0.11.0 config/cache.py:25-26: CacheDType lists bfloat16 (not float16: Llama-2-7b-hf is float16)
    (LLAMA_8B, "vllm==0.11.0", "--kv-cache-dtype bfloat16,"),
    ("meta-llama/Llama-2-7b-hf", "vllm==0.11.0", "--kv-cache-dtype auto,"),
    # vLLM 0.32.0 config/cache.py:39-42: float16 and bfloat16 both listed
    ("meta-llama/Llama-2-7b-hf", "vllm", "--kv-cache-dtype float16,"),
])
def test_header_kv_dtype_is_one_the_release_takes(model, engine, said):
    header = run_kvplan("estimate", model, "--gpu", "H100", "-c", "4096", "--engine", engine).stdout.splitlines()[0]
    assert said in header, header


def test_header_of_a_release_without_the_flag_names_no_kv_dtype():
    """vLLM 0.2.0 engine/arg_utils.py has no --kv-cache-dtype at all (its first is 0.3.0)."""
    header = run_kvplan("estimate", LLAMA_8B, "--gpu", "H100", "-c", "4096", "--engine", "vllm==0.2.0").stdout
    assert header.splitlines()[0] == "vllm 0.2.0 at --max-model-len 4096, --tensor-parallel-size 1:"


# -- unknown flags: the nearest first, a vLLM server flag told what to do, verify's --gpu -----------------------------

def test_did_you_mean_puts_the_closest_option_first():
    """Before: "did you mean --data-parallel-size or --enable-expert-parallel or --tensor-parallel-size?" (sorted by
    name); click ranks them by similarity, and --tensor-parallel-size is the one meant."""
    line = one_error_line(run_kvplan("estimate", QWEN3_8B, "--tensor-paralel", "2"))
    assert "did you mean --tensor-parallel-size or " in line
    # a flag's beginning (vLLM's argparse abbreviation) names the whole flag (tests/test_bool_flags_s77.py)
    line = one_error_line(run_kvplan("estimate", QWEN3_8B, "--tensor-parallel", "2"))
    assert "write the whole flag, --tensor-parallel-size (" in line


@pytest.mark.parametrize("args, tail", [
    # vLLM 0.32.0 entrypoints/launchers/cli_args.py:285 `port: int = 8000`: a value follows it
    (("--port", "8000"), "drop it and its value."),
    (("--port=8000",), "drop it and its value."),
    # engine/arg_utils.py:950 --trust-remote-code: a switch, no value
    (("--trust-remote-code",), "drop it."),
])
def test_a_vllm_server_flag_is_named_as_changing_nothing(args, tail):
    for command in (("estimate", QWEN3_8B), ("check", QWEN3_8B, "-tp", "1")):
        line = one_error_line(run_kvplan(*command, *args))
        name = args[0].split("=")[0]
        assert f"has no option {name}: vLLM's {name} changes nothing kvplan plans" in line and line.endswith(tail)


def test_verify_says_it_takes_no_gpu():
    """Before: "kvplan verify has no option --gpu; did you mean --gpu-util or --tp?"."""
    line = one_error_line(run_kvplan("verify", QWEN3_8B, "--gpu", "H100"))
    assert "has no option --gpu: verify runs on the local GPU" in line and "did you mean" not in line


def test_verify_kv_dtype_refusal_names_the_flag_values():
    """Before: "... which the bundled kernel does not read; verify takes bf16, fp16, fp8_e4m3 (or auto)": kvplan's
    internal names, which --kv-cache-dtype does not list as such (vLLM's are bfloat16, float16, fp8)."""
    line = one_error_line(run_kvplan("verify", "meta-llama/Llama-3.2-1B-Instruct", "--kv-cache-dtype", "fp8_e5m2"))
    assert "--kv-cache-dtype fp8_e5m2" in line and line.endswith("auto, bfloat16, float16 or fp8 (fp8_e4m3).")


# -- completion keeps the case typed (typer drops what does not start with it) ---------------------------------------

@pytest.mark.parametrize("typed, expected", [("h1", "h100-80gb-sxm"), ("H1", "H100-80GB-SXM"), ("l4", "l4")])
def test_gpu_completion_in_the_case_typed(typed, expected):
    from kvplan.cli.flags import _complete_gpu

    got = _complete_gpu(typed)
    assert expected in got and all(name.startswith(typed) for name in got)  # typer/core.py keeps only these


def test_model_completion_in_the_case_typed():
    from kvplan.cli.flags import _complete_model

    assert _complete_model("qwen/qwen3-8") == ["qwen/qwen3-8b"]
    assert _complete_model("Qwen/Qwen3-8") == ["Qwen/Qwen3-8B"]


# -- check --suggest: kvplan's table -----------------------------------------------------------------------------------

def test_suggest_table_is_drawn_as_the_other_tables():
    """Before: rich's heavy box with no padding (`┃TP ┃`, `no│`). Qwen3-32B: 64 query heads, 8 KV heads; at tp 16
    each GPU holds 64 / 16 = 4 query heads and one KV head, each KV head on 16 / 8 = 2 GPUs."""
    r = run_kvplan("check", "--suggest", "Qwen/Qwen3-32B")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert not set("┏┃┡│└") & set(r.stdout)
    assert lines[1].split() == ["TP", "query", "heads/GPU", "KV", "heads/GPU", "KV", "replicated"]
    assert set(lines[2]) == {"─"}
    assert re.search(r"^16 +4 +1 +yes, x2$", r.stdout, re.M)


# -- the weights advice: fp8 named for what it does ------------------------------------------------------------------

def test_fp8_weights_too_many_alone_say_so():
    """Llama-3.1-405B in bf16: 405.85B x 2 B = 756 GiB; fp8 halves it to 378 GiB, still over an H100's usable
    79.2 GiB x 0.92 = 72.8 GiB at tp 1, so fp8 alone is no way out (before: offered as one, "about 378 GiB per GPU")."""
    text = _text("meta-llama/Llama-3.1-405B", "--gpu", "H100", "-c", "128K")
    assert "fp8: about 378 GiB per GPU, too much alone at tp 1: with a split)" in text


def test_fp8_weights_that_fit_alone_keep_the_plain_offer():
    """Llama-3.1-70B in bf16: 70.55B x 2 B = 131 GiB; halved, 65.7 GiB fits the 72.8 GiB usable at tp 1."""
    text = _text("meta-llama/Llama-3.1-70B-Instruct", "--gpu", "H100", "-c", "8K")
    assert "fp8 weights (an fp8 checkpoint or --quantization fp8: about 65.7 GiB per GPU)." in text


# -- a KV budget given outright: what it makes moot, and the GPU it still times on ------------------------------------

def test_gpu_settings_beside_a_kv_budget_are_named_as_moot():
    """vLLM 0.32.0 config/cache.py:257-264: "kv_cache_memory_bytes (when not-None) ignores gpu_memory_utilization";
    v1/worker/gpu_worker.py:649-673 skips the memory profile and reserves the bytes given."""
    base = (QWEN3_8B, "--gpu", "H100", "-c", "8K", "--kv-cache-memory-bytes", "20G")
    text = _text(*base, "--gpu-memory-utilization", "0.5")
    assert ("--gpu-memory-utilization changes nothing beside --kv-cache-memory-bytes: vLLM sizes the KV cache as "
            "given and ignores gpu_memory_utilization.") in text
    both = _text(*base, "--gpu-memory-utilization", "0.5", "--gpu-memory", "40GB")
    assert "--gpu-memory-utilization and --gpu-memory change nothing beside" in both
    assert "changes nothing beside" not in _text(*base)
    # 20 GiB is the budget whatever the utilization: the same plan with and without it
    assert _json(*base, "--gpu-memory-utilization", "0.5")["plans"] == _json(*base)["plans"]


def test_check_notices_gpu_util_beside_kv_budget(tmp_path):
    entry = "  - name: a\n    model: Qwen/Qwen3-8B\n    tp: 1\n    kv_budget: 20GiB\n    gpu_util: 0.5\n"
    r = run_kvplan("check", "--file", deployments_file(tmp_path, entry), "--format", "json")
    assert r.returncode == 0, r.stderr
    (notice,) = [f for f in json.loads(r.stdout)["results"][0]["findings"] if f["key"] == "gpu_util"]
    assert notice["level"] == "notice" and notice["line"] == 6  # the gpu_util line of the file
    assert notice["message"].startswith("gpu_util changes nothing beside kv_budget")


def test_title_names_the_gpu_decode_is_timed_on_with_a_kv_budget():
    """Before: "Qwen/Qwen3-8B: 36 layers, ..." with no GPU, while ITL and TTFT are the L4's."""
    r = run_kvplan("estimate", QWEN3_8B, "--gpu", "L4", "-c", "8K", "--kv-cache-memory-bytes", "10G")
    assert "Qwen/Qwen3-8B on L4: 36 layers" in r.stdout
