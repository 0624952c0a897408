"""Defects found by session 68's fuzz round on the least-fuzzed surfaces (estimate --chart / --format html, the
model summary, `kvplan models` / `kvplan gpus`, the Python API), each reproduced here.

D1  a refusal of the GPU itself (sparse MLA or DeepSeek-V4 where none of their kernels runs) with a KV budget given
    (--kv-cache-memory-bytes: no GPU budget, so the budget names no GPU) said "does not start on None" in the table,
    and --format html crashed (exit 3) on escaping the missing name.
D2  click's usage errors said nothing of what is valid and were no sentence: `kvplan models json` gave "Got
    unexpected extra argument(s) (json)", `kvplan gpus --gpu H100` "No such option: --gpu".
D3  the remedy of a length past the window --disable-sliding-window caps the model to named the switch by its flag
    wherever it was read: the API's remedy said "max_model_len 1024 or less (the sliding window
    --disable-sliding-window caps it to; ...)", a deployments file's "context 1024 ... --disable-sliding-window".
D4  the API's gpu_memory_utilization='0.9' was refused as "must be a fraction in (0, 1] ..., got '0.9'" and
    max_num_seqs='64' as "must be a positive integer, got '64'": right values, and the sentence did not say that
    their type (a string) was what was wrong.
"""

from __future__ import annotations

import pytest
from conftest import environment, one_error_line, run_kvplan


# ---- D1: the GPU a refusal of the GPU names, with a KV budget given --------------------------------------------

@pytest.mark.parametrize("model, gpu, said", [
    ("zai-org/GLM-5.2", "L4", "with a sparse MLA layer"),  # compute capability 8.9: no sparse MLA backend
    ("deepseek-ai/DeepSeek-V4-Flash", "A10G", "compute capability 8.6"),
])
def test_a_refused_gpu_is_named_with_a_kv_budget_given(model, gpu, said):
    args = ("estimate", model, "--gpu", gpu, "-tp", "4", "-c", "32K", "--kv-cache-memory-bytes", "20G")
    table = run_kvplan(*args)
    assert table.returncode == 0, table.stderr
    assert f"does not start on {gpu}:" in table.stdout and said in table.stdout
    assert "on None" not in table.stdout
    page = run_kvplan(*args, "--format", "html")
    assert page.returncode == 0 and page.stderr == "", page.stderr
    assert f"<h3>vllm 0.32.0 on {gpu} (every plan)</h3>" in page.stdout
    assert f"does not start on {gpu}:" in page.stdout


def test_the_gpu_budgets_own_name_still_leads():
    out = run_kvplan("estimate", "zai-org/GLM-5.2", "--gpu", "L4", "-tp", "8", "-c", "8K", "--format", "html")
    assert out.returncode == 0 and "<h3>vllm 0.32.0 on L4 (every plan)</h3>" in out.stdout


# ---- D2: click's usage errors, one sentence that says what is valid ----------------------------------------------

@pytest.mark.parametrize("args, line", [
    (("models", "json"),
     "kvplan models takes no arguments, got 'json'; `kvplan models -h` lists the options it takes."),
    (("gpus", "H100", "json"),
     "kvplan gpus takes no arguments, got 'H100 json'; `kvplan gpus -h` lists the options it takes."),
    (("gpus", "--gpu", "H100"), "kvplan gpus has no option --gpu; `kvplan gpus -h` lists the options it takes."),
    (("models", "--forma", "json"), "kvplan models has no option --forma; did you mean --format?"),
    (("estimate", "meta-llama/Llama-3.1-8B-Instruct", "-c", "8K", "32K"),
     "kvplan estimate takes one MODEL, got '32K' besides; each option takes one value (a list joined with commas: "
     "8K,32K), and `kvplan estimate -h` lists the options."),
])
def test_usage_errors_say_what_is_valid(args, line):
    assert one_error_line(run_kvplan(*args)) == "kvplan: error: " + line


def test_a_long_unknown_option_is_still_cut():
    line = one_error_line(run_kvplan("models", "--" + "x" * 3000))
    assert len(line) < 250 and "xxx...xxx" in line


# ---- D3: the window's remedy names the switch as the caller spells it -------------------------------------------
# gemma-3-4b-it's sliding_window is 1024 (model_specs/google--gemma-3-4b-it.yaml): vLLM caps the length to it with
# the switch on (config/model.py 0.32.0 _get_and_verify_max_len), so 131072 is refused and 1024 is the remedy

def test_the_api_remedy_names_the_window_switch_by_its_keyword():
    import kvplan

    with environment({"HF_HUB_OFFLINE": "1"}):
        (plan,) = kvplan.estimate("google/gemma-3-4b-it", disable_sliding_window=True, max_model_len=131072,
                                  kv_cache_memory_bytes="10G", gpu="H100")
    remedy = plan.to_dict(kvplan.api.keyword)["engine"]["refusal"]["remedy"]
    assert remedy == ("it starts with max_model_len 1024 or less (the sliding window disable_sliding_window caps it "
                      "to; or VLLM_ALLOW_LONG_MAX_MODEL_LEN=1, at your own risk)")


def test_a_deployments_file_remedy_names_the_window_switch_by_its_key(tmp_path):
    file = tmp_path / "d.yaml"
    file.write_text("deployments:\n  - name: g\n    model: google/gemma-3-4b-it\n    tp: 1\n    context: 131072\n"
                    "    disable_sliding_window: true\n    kv_budget: 10G\n")
    out = run_kvplan("check", "--file", file, "--format", "json")
    assert out.returncode == 1, out.stderr
    assert ("it starts with context 1024 or less (the sliding window disable_sliding_window caps it to" in out.stdout
            and "--disable-sliding-window" not in out.stdout)


def test_the_command_line_remedy_keeps_the_flag():
    out = run_kvplan("estimate", "google/gemma-3-4b-it", "--disable-sliding-window", "-c", "131072", "--kv-budget",
                     "10G", "--format", "json")
    assert ("it starts with --max-model-len 1024 or less (the sliding window --disable-sliding-window caps it to; "
            in out.stdout)


# ---- D4: a number given as a string is said to be the string ----------------------------------------------------

@pytest.mark.parametrize("keyword, value, said", [
    ("gpu_memory_utilization", "0.9", "gpu_memory_utilization must be a fraction in (0, 1], unquoted (the share of "
                                      "GPU memory the engine may use), got '0.9'."),
    ("max_num_seqs", "64", "max_num_seqs must be a positive integer, unquoted, got '64'."),
    ("pipeline_parallel_size", "2", "pipeline_parallel_size must be a positive integer, unquoted, got '2'."),
])
def test_the_api_says_a_number_in_quotes_is_the_fault(keyword, value, said):
    import kvplan

    with environment({"HF_HUB_OFFLINE": "1"}), pytest.raises(kvplan.FieldError) as caught:
        kvplan.estimate("meta-llama/Llama-3.1-8B-Instruct", **{keyword: value})
    assert str(caught.value) == said


@pytest.mark.parametrize("value, said", [("'x'", "must be a positive integer, got 'x'."),
                                         ("0", "must be a positive integer, got 0.")])
def test_a_value_that_is_no_number_keeps_its_words(tmp_path, value, said):
    file = tmp_path / "d.yaml"
    file.write_text(f"deployments:\n  - name: a\n    model: meta-llama/Llama-3.1-8B-Instruct\n    tp: {value}\n")
    assert one_error_line(run_kvplan("check", "--file", file)).endswith(f"field 'tp' {said}")
