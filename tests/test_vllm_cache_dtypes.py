"""--kv-cache-dtype's choices release by release against vLLM's own CacheDType Literal of 37 releases (0.8.5-0.34.0,
frozen by benchmarks/vllm_reference/cache_dtypes.py in tests/data/vllm_cache_dtypes.json): a value a release does
not list is refused in one line naming the flag, as vLLM's argparse refuses it."""

import json
from pathlib import Path

import pytest

from conftest import run_kvplan
from kvplan.engines.vllm_versions import kv_dtype_choices

FROZEN = json.loads((Path(__file__).parent / "data" / "vllm_cache_dtypes.json").read_text())["releases"]


@pytest.mark.parametrize("release", sorted(FROZEN))
def test_each_release_takes_what_its_cache_dtype_literal_lists(release):
    assert set(kv_dtype_choices(release)) == set(FROZEN[release]["choices"]), release


def test_a_value_the_release_does_not_list_is_refused_in_one_line():
    r = run_kvplan("estimate", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "h100", "--engine", "vllm==0.10.0",
                   "--kv-cache-dtype", "auto,bfloat16")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip() == ("kvplan: error: --kv-cache-dtype bfloat16 is not a choice of vLLM 0.10.0 (first listed "
                                "in 0.11.0); it takes auto, fp8, fp8_e4m3, fp8_e5m2, fp8_inc.")
    # nvfp4_ds_mla is 0.30's; a short version reads as .0 (kvplan's own result spelling, bf16, is refused as input
    # since session 77, as `vllm serve` refuses it: test_check_gate_s77.py)
    assert "bfloat16 is not a choice of vLLM 0.10 " in run_kvplan(
        "estimate", "meta-llama/Llama-3.1-8B-Instruct", "--engine", "vllm==0.10", "--kv-cache-dtype", "bfloat16").stderr
    r = run_kvplan("estimate", "deepseek-ai/DeepSeek-V3.2", "-tp", "8", "--gpu", "h200", "--engine", "vllm==0.29.0",
                   "--kv-cache-dtype", "nvfp4_ds_mla")
    assert r.returncode == 2 and "(first listed in 0.30.0)" in r.stderr
    assert run_kvplan("estimate", "meta-llama/Llama-3.1-8B-Instruct", "--engine", "vllm==0.10", "--kv-cache-dtype",
                      "fp8_inc").returncode == 0
