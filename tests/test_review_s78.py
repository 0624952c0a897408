"""Session 78's review of session 77's merges: the defects found, each as the input that showed it.

1. A boolean flag's negative typed with a value (`--no-enforce-eager=1`, `--disable-prefix-caching=1` under 0.33)
   was told the option does not exist ("has no option --no-enforce-eager; did you mean --enforce-eager?"): the
   negatives are read as their flag's last value (cli/app.py _read_later_spellings), not declared to click, so one
   with `=` reached click as an unknown name. vLLM's BooleanOptionalAction takes no value either (argparse:
   "ignored explicit argument"), so the flag is right and the value is what to drop, as click says of a declared
   switch (`--enforce-eager=false`: "does not take a value").
2. `--=5` (an empty long name) was read as an abbreviation of every flag: the error listed all of them.
3. The Python API's max_model_len, refused as a malformed length in estimate and verify, gave TP's example list
   ("e.g. 1,2,4,8"); the command line gives a length's (8192,32K) and check a length's too.
4. --num-gpu-blocks-override at pp > 1 gave the override's bytes at stage 0's page while the plan's figures (per
   token, per request) are the capacity stage's: Llama-3.1-8B -pp 3 showed 40.0 KiB a token (stage 2's 10 layers)
   beside "5,000 blocks (3.36 GiB)", stage 0's 11 layers.
"""

from __future__ import annotations

import pytest

import json

from conftest import one_error_line, run_kvplan

LLAMA = "meta-llama/Llama-3.1-8B"


@pytest.mark.parametrize("args, typed", [
    (("--no-enforce-eager=1",), "--no-enforce-eager"),
    (("--disable-prefix-caching=1", "--engine", "vllm==0.33.0"), "--disable-prefix-caching"),
    (("--no_enforce_eager=true",), "--no_enforce_eager"),
])
def test_negative_switch_with_a_value_is_told_it_takes_none(args, typed):
    r = run_kvplan("estimate", LLAMA, *args)
    line = one_error_line(r)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "has no option" not in line and typed in line and "value" in line


def test_empty_long_name_lists_no_flags():
    r = run_kvplan("estimate", LLAMA, "--=5")
    line = one_error_line(r)
    assert r.returncode == 2 and "write the whole flag" not in line and "--block-size" not in line


@pytest.mark.parametrize("function", ["estimate", "verify"])
def test_api_max_model_len_example_is_a_length(function):
    from kvplan import api
    from kvplan.errors import FieldError

    with pytest.raises(FieldError) as caught:
        getattr(api, function)(LLAMA, max_model_len="abc")
    message = str(caught.value)
    assert "max_model_len" in message and "1,2,4,8" not in message and "8192" in message


def test_override_bytes_are_the_capacity_stages():
    """Llama-3.1-8B (32 layers, 8 KV heads x 128, bf16) at -pp 3 splits 11 / 11 / 10 (get_pp_indices). With
    --num-gpu-blocks-override 5000 every stage holds 5,000 blocks; the tie goes to the smaller budget, stage 2, whose
    10 layers take 10 x 16 tokens x 8 x 128 x 2 (K and V) x 2 B = 655,360 B a block: 5,000 blocks, 3,276,800,000 B
    (stage 0's 720,896 B a block would give 3,604,480,000)."""
    r = run_kvplan("estimate", LLAMA, "-pp", "3", "-c", "8192", "--num-gpu-blocks-override", "5000", "-f", "json")
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)["plans"][0]
    capacity = next(s for s in plan["stages"] if s["sets_capacity"])
    assert (capacity["stage"], capacity["layers"]) == (2, 10)
    assert plan["engine"]["override_kv_cache_bytes"] == 3_276_800_000
