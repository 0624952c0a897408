"""--enable-chunked-prefill / --no-enable-chunked-prefill (engines/vllm_chunked_flag.py), read in the wheels:

- the spellings: store_true 0.4.1-0.5.2 (engine/arg_utils.py 0.5.2:482-485), StoreBoolean 0.5.3-0.8.4 (`false` /
  `=False` after the flag, no --no- form: 0.6.0:566-572, 0.8.4:784-789), BooleanOptionalAction from 0.8.5
  (:852-853), --disable-chunked-prefill from 0.33 (EnableDisableAction).
- off on V1 from 0.11.1: `vllm serve` picks max(max_model_len, the GPU's default) batched tokens, then caps them at
  max_num_seqs x max_model_len (engine/arg_utils.py 0.32.0:3140-3145, :3166-3169; 0.34.0:3231-3236); the H100 default
  is 8,192 tokens / 1,024 sequences (get_batch_defaults: >= 70 GiB, not an A100). Llama-3.1-8B at 32,768:
  max(32,768, 8,192) = 32,768, min(1,024 x 32,768, 32,768) = 32,768.
- V1 0.8.0-0.11.0 sets it on for a generating model whatever is given (0.8.5:1568-1569, 0.10.1:1592, 0.11.0:1548).
- V0 keeps it as given; SchedulerConfig picks 512 tokens with it in 0.6.0 (config.py 0.6.0:974-977), the whole
  length (max(max_model_len, 2,048)) without it (:979-981).
- SchedulerConfig refuses max_num_batched_tokens < max_model_len without it (config/scheduler.py 0.32.0:316-324).
- MambaModelConfig asserts it in "align" mode (models/config.py 0.15.0:354-356, 0.24.0:439-441, 0.32.0:694-696).
"""

from __future__ import annotations

import json

from conftest import deployments_file, estimate_plan, one_error_line, run_kvplan

import kvplan.api as api
from kvplan.engines import EngineFlags, get_engine
from kvplan.model.sources import resolve
from kvplan.plan.catalog import find_gpu

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
QWEN3_NEXT = "Qwen/Qwen3-Next-80B-A3B-Thinking"
NEMOTRON_H = "nvidia/Nemotron-H-8B-Base-8K"
H100 = ("--gpu", "H100")


def _term(plan: dict, name: str) -> dict:
    return next(t for t in plan["budget"]["terms"] if t["name"] == name)


def _settings(version: str, context: int, chunked, model: str = LLAMA):
    engine = get_engine(f"vllm=={version}", EngineFlags(enable_chunked_prefill=chunked))
    return engine.settings(context, find_gpu("H100"), spec=resolve(model, None))


def test_off_raises_the_batch_to_a_whole_prompt_on_0_32():
    on, off = _settings("0.32.0", 32768, None), _settings("0.32.0", 32768, False)
    assert (on.max_num_batched_tokens, on.max_num_seqs, on.chunked_prefill) == (8192, 1024, True)
    assert (off.max_num_batched_tokens, off.max_num_seqs, off.chunked_prefill) == (32768, 1024, False)
    # 0.34.0 the same on an H100 (the 16,384 tier is for GPUs of 160 GiB and more)
    assert _settings("0.34.0", 32768, False).max_num_batched_tokens == 32768
    # at 8,192 the whole prompt is the default already: max(8,192, 8,192)
    assert _settings("0.32.0", 8192, False).max_num_batched_tokens == 8192


def test_profile_peak_follows_the_batch():
    """The profile forward covers the batched tokens (the peak's source names them); Llama's forward is linear in
    tokens and dominates the sampler at both sizes, so 4 x the tokens (32,768 = 4 x 8,192) is 4 x the peak, and the
    KV budget loses exactly the difference, every other term unchanged."""
    on = estimate_plan(LLAMA, *H100, "-c", "32768")
    off = estimate_plan(LLAMA, *H100, "-c", "32768", "--no-enable-chunked-prefill")
    assert "forward over 8192 tokens" in _term(on, "profile_peak")["source"]
    assert "forward over 32768 tokens" in _term(off, "profile_peak")["source"]
    peak_on, peak_off = _term(on, "profile_peak")["bytes"], _term(off, "profile_peak")["bytes"]
    assert peak_off == 4 * peak_on
    assert on["kv_budget_bytes_per_gpu"] - off["kv_budget_bytes_per_gpu"] == peak_off - peak_on
    others = [t for t in on["budget"]["terms"] if t["name"] != "profile_peak"]
    assert others == [t for t in off["budget"]["terms"] if t["name"] != "profile_peak"]


def test_given_on_and_left_out_plan_alike_on_v1():
    """On is V1's default for a generating model: --enable-chunked-prefill changes no figure."""
    plain = estimate_plan(LLAMA, *H100, "-c", "32768")
    assert estimate_plan(LLAMA, *H100, "-c", "32768", "--enable-chunked-prefill") == plain
    # the last spelling typed wins, as argparse sets the field at each
    assert estimate_plan(LLAMA, *H100, "-c", "32768", "--no-enable-chunked-prefill",
                         "--enable-chunked-prefill") == plain


def test_v1_keeps_a_generating_model_on_before_0_11_1():
    for version in ("0.8.5", "0.10.1", "0.11.0"):
        assert _settings(version, 32768, False).max_num_batched_tokens == 8192, version
        assert _settings(version, 32768, False).chunked_prefill is True
    assert _settings("0.11.1", 32768, False).max_num_batched_tokens == 32768  # max(32,768, 8,192)
    r = run_kvplan("estimate", LLAMA, *H100, "-c", "32768", "--engine", "vllm==0.10.1",
                   "--no-enable-chunked-prefill")
    assert r.returncode == 0 and "chunked prefill off changes nothing here" in " ".join(r.stdout.split())


def test_v0_keeps_it_as_given():
    # 0.6.0 past 32K: on by default (a 512-token chunk); `--enable-chunked-prefill false` profiles the whole length
    assert _settings("0.6.0", 65536, None).max_num_batched_tokens == 512
    off = estimate_plan(LLAMA, *H100, "-c", "65536", "--engine", "vllm==0.6.0", "--enable-chunked-prefill", "false")
    assert "forward over 65536 tokens" in _term(off, "profile_peak")["source"]
    assert estimate_plan(LLAMA, *H100, "-c", "65536", "--engine", "vllm==0.6.0",
                         "--enable-chunked-prefill=False") == off
    # at 8,192 off by default (max(8,192, 2,048)); given on, SchedulerConfig's 512
    assert _settings("0.6.0", 8192, None).max_num_batched_tokens == 8192
    assert _settings("0.6.0", 8192, True).max_num_batched_tokens == 512
    assert _settings("0.6.5", 8192, True).max_num_batched_tokens == 2048  # 0.6.5's chunk (vllm_versions.py)


def test_spellings_refused_by_release():
    line = one_error_line(run_kvplan("estimate", LLAMA, "--engine", "vllm==0.6.0", "--no-enable-chunked-prefill"))
    assert "needs vLLM 0.8.5 or later" in line and "write --enable-chunked-prefill false" in line
    line = one_error_line(run_kvplan("estimate", LLAMA, "--enable-chunked-prefill", "false"))
    assert "read by vLLM 0.5.3 to 0.8.4 only" in line and "write --no-enable-chunked-prefill" in line
    line = one_error_line(run_kvplan("estimate", LLAMA, "--disable-chunked-prefill"))
    assert "needs vLLM 0.33 or later" in line
    line = one_error_line(run_kvplan("estimate", LLAMA, "--enable-chunked-prefill=maybe"))
    assert "takes true or false" in line
    line = one_error_line(run_kvplan("estimate", LLAMA, "--engine", "vllm==0.4.0", "--enable-chunked-prefill"))
    assert "modelled from vLLM 0.4.1" in line
    line = one_error_line(run_kvplan("estimate", LLAMA, "--engine", "vllm==0.3.3", "--enable-chunked-prefill"))
    assert "has no such flag" in line
    # 0.34's --disable-chunked-prefill is --no-enable-chunked-prefill
    a = estimate_plan(LLAMA, *H100, "-c", "32768", "--engine", "vllm==0.34.0", "--disable-chunked-prefill")
    assert a == estimate_plan(LLAMA, *H100, "-c", "32768", "--engine", "vllm==0.34.0", "--no-enable-chunked-prefill")


def test_fewer_given_tokens_than_the_length_refused():
    line = one_error_line(run_kvplan("estimate", LLAMA, *H100, "-c", "32768", "--no-enable-chunked-prefill",
                                     "--max-num-batched-tokens", "8192"))
    assert "8192 is smaller than --max-model-len 32768" in line and "chunked prefill off" in line


def test_mamba_align_needs_chunked_prefill():
    # 0.32.0: a hybrid starts with prefix caching on ("align"), which asserts chunked prefill
    line = one_error_line(run_kvplan("estimate", NEMOTRON_H, *H100, "-c", "8192", "--no-enable-chunked-prefill"))
    assert "Chunked prefill is required for mamba cache mode 'align'." in line
    ok = run_kvplan("estimate", NEMOTRON_H, *H100, "-c", "8192", "--no-enable-chunked-prefill",
                    "--no-enable-prefix-caching")
    assert ok.returncode == 0, ok.stderr
    # 0.24.0 with prefix caching on: Qwen3-Next runs "align" (refused), Nemotron-H "all" (no assert there)
    line = one_error_line(run_kvplan("estimate", QWEN3_NEXT, "-tp", "4", *H100, "-c", "8192", "--engine",
                                     "vllm==0.24.0", "--enable-prefix-caching", "--no-enable-chunked-prefill"))
    assert "MambaModelConfig asserts" in line
    ok = run_kvplan("estimate", NEMOTRON_H, *H100, "-c", "8192", "--engine", "vllm==0.24.0",
                    "--enable-prefix-caching", "--no-enable-chunked-prefill")
    assert ok.returncode == 0, ok.stderr


def test_deployments_file_and_api(tmp_path):
    """The YAML key and the API's keyword plan as the command line's --no-enable-chunked-prefill."""
    off = estimate_plan(LLAMA, *H100, "-c", "32768", "--no-enable-chunked-prefill")
    entry = "  - {name: a, model: meta-llama/Llama-3.1-8B-Instruct, tp: 1, gpu: H100, context: 32768,\n"
    checked = run_kvplan("check", "--file", deployments_file(tmp_path, entry + "     enable_chunked_prefill: false}\n"),
                         "--format", "json")
    assert checked.returncode == 0, checked.stderr
    assert [row["max_concurrency"] for row in json.loads(checked.stdout)["results"]] == [off["max_concurrency"]]
    bad = deployments_file(tmp_path, "  - {name: a, model: meta-llama/Llama-3.1-8B-Instruct, tp: 1,\n"
                                     "     enable_chunked_prefill: 'no'}\n")
    assert "enable_chunked_prefill" in one_error_line(run_kvplan("check", "--file", bad))
    (plan,) = api.estimate(LLAMA, gpu="H100", max_model_len=32768, enable_chunked_prefill=False)
    assert plan.kv_budget_bytes_per_gpu == off["kv_budget_bytes_per_gpu"]
    (row,) = api.check(LLAMA, tensor_parallel_size=1, gpu="H100", max_model_len=32768, enable_chunked_prefill=False)
    assert row["max_concurrency"] == off["max_concurrency"]


def test_api_refusals():
    import pytest

    from kvplan.errors import FieldError

    with pytest.raises(FieldError, match="enable_chunked_prefill"):
        api.estimate(LLAMA, enable_chunked_prefill="no")
    with pytest.raises(FieldError, match="off needs vLLM 0.5.3"):  # store_true: off is the flag left out
        api.estimate(LLAMA, engine="vllm==0.5.2", enable_chunked_prefill=False)
    with pytest.raises(FieldError, match="engine vllm"):
        api.estimate(LLAMA, engine="none", enable_chunked_prefill=False)


def test_verify_takes_it_before_torch():
    import pytest

    from kvplan.commands.verify import refuse_prefix_flags, verify_flags
    from kvplan.errors import FieldError

    flags = verify_flags(chunked_prefill=False)
    assert flags.enable_chunked_prefill is False
    with pytest.raises(FieldError, match="mamba cache mode 'align'"):
        refuse_prefix_flags(resolve(NEMOTRON_H, None), flags, 8192, "0.32.0")
    refuse_prefix_flags(resolve(LLAMA, None), flags, 8192, "0.32.0")  # no Mamba state: nothing to refuse
