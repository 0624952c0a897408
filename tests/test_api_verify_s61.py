"""kvplan.api.verify: `kvplan verify` with vLLM's keyword names, as api.estimate and api.check take them. Bad input
is a FieldError naming the keyword before torch loads; no GPU is one KvplanError sentence; on a GPU the result is
the dict `kvplan verify --format json` prints."""

import pytest

from kvplan import api
from kvplan.errors import FieldError, KvplanError

SMALL = "meta-llama/Llama-3.2-1B-Instruct"


@pytest.mark.parametrize("keywords, field, words", [
    ({"tensor_parallel_size": 0}, "tensor_parallel_size", "positive integer"),
    ({"max_model_len": "8K,16K"}, "max_model_len", "one length"),
    ({"max_model_len": -5}, "max_model_len", "-5"),
    ({"gpu_memory_utilization": 1.5}, "gpu_memory_utilization", "fraction"),
    ({"block_size": 48}, "block_size", "bundled kernel reads"),
    ({"max_num_batched_tokens": "lots"}, "max_num_batched_tokens", "lots"),
    ({"enforce_eager": "yes"}, "enforce_eager", "Python bool"),
    ({"max_cudagraph_capture_size": -1}, "max_cudagraph_capture_size", "-1"),
    ({"engine": "sglang"}, "engine", "verify takes vllm"),
    ({"mamba_cache_dtype": "int8"}, "mamba_cache_dtype", "int8"),
    ({"progress": 1}, "progress", "Python bool"),
])
def test_bad_keywords_are_named(keywords, field, words):
    with pytest.raises(FieldError) as caught:
        api.verify(SMALL, **keywords)
    assert caught.value.field == field and words in str(caught.value)
    assert "--" not in str(caught.value)  # the keyword, never the command line's flag


def test_no_gpu_is_one_sentence():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    with pytest.raises(KvplanError) as caught:
        api.verify(SMALL, max_model_len="2K")
    text = str(caught.value)
    assert "CUDA GPU" in text and "\n" not in text


def test_small_model_on_the_gpu():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    result = api.verify(SMALL, max_model_len="2K", gpu_memory_utilization=0.3, max_num_seqs=8,
                        max_num_batched_tokens="2K", max_cudagraph_capture_size=8)
    assert result["verdict"]["capacity_confirmed"] and result["boundary"]["confirmed"]
    assert {p["batch"] for p in result["decode"]["points"]} >= {1}
    assert all(p["measured_ms"] > 0 for p in result["decode"]["points"])


def test_the_api_function_survives_the_package_import():
    """kvplan.verify is the package of verify's pure parts (importing a submodule binds it there), so the API
    function lives at kvplan.api.verify only: a second call still reaches it."""
    import kvplan
    import kvplan.verify.layout  # noqa: F401

    for _ in range(2):
        with pytest.raises(FieldError, match="max_model_len"):
            api.verify(SMALL, max_model_len=-5)
    assert not callable(kvplan.verify)


def test_no_prefix_caching_is_recorded_in_the_options():
    """--no-enable-prefix-caching changes a hybrid's block size (vLLM 0.32 'align' mode off), so the result's
    options say it was asked, as a switch that is on is said."""
    from kvplan.commands.verify import verify_flags
    from kvplan.gpu.rank import Options

    pytest.importorskip("torch")
    off = Options(1, 8192, "auto", None, None, None, None, "vllm==0.32.0",
                  flags=verify_flags(False, None, None, False, None, False, None, None))
    assert off.given_flags() == {"enable_prefix_caching": False}
    eager = Options(1, 8192, "auto", None, None, None, None, "vllm==0.32.0",
                    flags=verify_flags(True, None, None, None, None, False, None, None))
    assert eager.given_flags() == {"enforce_eager": True}
