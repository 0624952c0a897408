"""Session 55 vLLM-rule gaps (rules): rejection_sample_method by release; Gemma 4 E-series max_soft_tokens; the
is_causal readers of qwen3_next and openpangu; release remedies past encoder-only releases; the registry's line
before the encoder-only one. Expectations are read by hand from the vLLM sources cited in each test
(/tmp/s52/sd/vllm-X.Y.Z/vllm)."""

import json

import pytest

from tests.conftest import one_error_line, run_kvplan

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"


def _ngram(**extra) -> str:
    return json.dumps({"method": "ngram", "num_speculative_tokens": 2, **extra})


# 1. rejection_sample_method

@pytest.mark.parametrize("release, method", [("0.32.0", "standard"), ("0.32.0", "synthetic"), ("0.32.0", "block"),
                                             ("0.33.0", "fly"), ("0.34.0", "fly"), ("0.34.0", "block")])
def test_rejection_methods_each_release_types(release, method):
    """RejectionSampleMethod = Literal["standard", "synthetic", "block"] (0.32.0 config/speculative.py:84); 0.33.0
    :83 and 0.34.0 :98 add "fly"."""
    out = run_kvplan("estimate", LLAMA, "-c", "4096", "--engine", f"vllm=={release}",
                     "--speculative-config", _ngram(rejection_sample_method=method))
    assert out.returncode == 0, out.stderr


def test_fly_is_refused_before_0_33():
    """0.32.0 config/speculative.py:84 has no "fly": pydantic refuses the value."""
    line = one_error_line(run_kvplan("estimate", LLAMA, "-c", "4096", "--engine", "vllm==0.32.0",
                                     "--speculative-config", _ngram(rejection_sample_method="fly")))
    assert line == ("kvplan: error: --speculative-config rejection_sample_method must be one of 'standard', "
                    "'synthetic', 'block' in vllm==0.32.0, got 'fly'.")


def test_the_pre_0_21_names_are_refused():
    """"strict" was 0.18.0-0.20.2's name (0.20.0 config/speculative.py:66); 0.34.0 :98 lists four others."""
    line = one_error_line(run_kvplan("estimate", LLAMA, "-c", "4096", "--engine", "vllm==0.34.0",
                                     "--speculative-config", _ngram(rejection_sample_method="strict")))
    assert line == ("kvplan: error: --speculative-config rejection_sample_method must be one of 'standard', "
                    "'synthetic', 'block', 'fly' in vllm==0.34.0, got 'strict'.")


def test_fly_needs_two_draft_tokens():
    """0.34.0 config/speculative.py:1706-1709 (0.33.0 :2020-2023): "FLy requires num_speculative_tokens to be at
    least 2."""
    config = json.dumps({"method": "ngram", "num_speculative_tokens": 1, "rejection_sample_method": "fly"})
    line = one_error_line(run_kvplan("estimate", LLAMA, "-c", "4096", "--engine", "vllm==0.34.0",
                                     "--speculative-config", config))
    assert "rejection_sample_method 'fly' needs num_speculative_tokens 2 or more in vllm==0.34.0, got 1" in line


def test_fly_window_size_is_a_field_from_0_33():
    """fly_window_size: 0.33.0 config/speculative.py:652; 0.32.0 has no such field and forbids extras
    (config/utils.py:71)."""
    config = _ngram(rejection_sample_method="standard", fly_window_size=1)
    line = one_error_line(run_kvplan("estimate", LLAMA, "-c", "4096", "--engine", "vllm==0.32.0",
                                     "--speculative-config", config))
    assert "names fly_window_size, which vllm==0.32.0's SpeculativeConfig does not have (from 0.33)" in line
    assert run_kvplan("estimate", LLAMA, "-c", "4096", "--engine", "vllm==0.33.0", "--speculative-config",
                      _ngram(rejection_sample_method="fly", fly_window_size=1)).returncode == 0
