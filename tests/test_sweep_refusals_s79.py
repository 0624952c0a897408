"""A refusal raised while planning one plan of a sweep names that plan in the sweep's own flag spellings.

vLLM 0.10.1 runs an fp8 cache on V0 where it cannot serve it on V1 (vllm_v1_oracle.v0_fallback) and V1 asserts on a
piecewise cudagraph_mode below compilation level 3 (config/__init__.py 0.10.1:3637-3643, under VLLM_USE_V1): of
--kv-cache-dtype fp8,auto only the auto plan is refused. vLLM 0.8.5 runs Mistral-7B-v0.1 with an fp8 cache on V0,
whose CacheConfig refuses prefix caching with its sliding window (config.py CacheConfig._verify_prefix_caching): of
--kv-cache-dtype auto,fp8 only the fp8 plan is refused. One sentence, exit 2, nothing on stdout, as every bad input.
"""

import pytest

from conftest import one_error_line, run_kvplan

LLAMA = ("estimate", "meta-llama/Llama-3.1-8B", "--gpu", "A100-80GB", "--engine", "vllm==0.10.1",
         "--compilation-config", '{"cudagraph_mode": "PIECEWISE", "level": 0}')
MISTRAL = ("estimate", "mistralai/Mistral-7B-v0.1", "--gpu", "A100-80GB", "--engine", "vllm==0.8.5",
           "--enable-prefix-caching")


def refused(*args) -> str:
    r = run_kvplan(*args)
    assert r.returncode == 2 and r.stdout == "", (r.returncode, r.stdout)
    return one_error_line(r)


def test_level_assert_names_the_auto_plan_of_a_dtype_sweep():
    line = refused(*LLAMA, "-c", "8192", "--kv-cache-dtype", "fp8,auto")
    assert line.startswith("kvplan: error: --compilation-config cudagraph_mode PIECEWISE needs compilation level 3")
    assert line.endswith("(the plan at --kv-cache-dtype auto).")


def test_the_plan_is_named_with_the_flags_as_typed_and_only_those_swept():
    # -c is swept and typed -c; --kv-cache-dtype typed --kv-dtype (its kvplan spelling); -tp is one value: not named.
    # The release's settings are read at the sweep's longest length first (the prefill bound), which meets the assert
    line = refused(*LLAMA, "-c", "4096,8192", "--kv-dtype", "fp8,auto", "-tp", "1")
    assert line.endswith("(the plan at -c 8192 --kv-dtype auto).")


def test_v0_prefix_window_refusal_names_the_fp8_plan():
    line = refused(*MISTRAL, "--kv-cache-dtype", "auto,fp8")
    assert "--enable-prefix-caching is refused by vLLM 0.8.5's V0 engine" in line
    assert line.endswith("(the plan at --kv-cache-dtype fp8).")


@pytest.mark.parametrize("args", [LLAMA + ("-c", "8192", "--kv-cache-dtype", "auto"),
                                  MISTRAL + ("--kv-cache-dtype", "fp8")])
def test_one_plan_keeps_its_wording(args):
    line = refused(*args)
    assert "the plan at" not in line and line.endswith(".") and not line.endswith(").")


def test_api_names_the_plan_with_its_keywords():
    from kvplan import api
    from kvplan.errors import FieldError

    with pytest.raises(FieldError) as caught:
        api.estimate("mistralai/Mistral-7B-v0.1", gpu="A100-80GB", engine="vllm==0.8.5", enable_prefix_caching=True,
                     kv_cache_dtype=["auto", "fp8"])
    assert str(caught.value).endswith("(the plan at kv_cache_dtype fp8).")
