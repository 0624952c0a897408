"""The figures README.md and docs/ci.md state in prose are what kvplan computes now. Session 67 moved vLLM's CUDA-graph
term from 1.25 to 0.705 GiB and left the flag table's examples and the release figures at the old term (13 requests
where kvplan holds 14, 234 logged where it logs 237.95, ...). Each figure is read from the page itself, so a change
that moves it fails here until the page says the new one. These tests pin the pages to the tool, not the tool to
the truth: the figures' own derivations by hand are in the tests the comments name."""
import re

import pytest

import kvplan
from conftest import ROOT

GiB = 2**30


def flat(name: str) -> str:
    return " ".join((ROOT / name).read_text().split())


README = flat("README.md")


def said(pattern: str) -> tuple:
    """The groups of the one place the README says `pattern`."""
    (found,) = re.findall(pattern, README)
    return found if isinstance(found, tuple) else (found,)


def term(plan, name: str) -> int:
    return {t.name: t.bytes for t in plan.budget.terms}[name]


def one(model: str, **keywords):
    (plan,) = kvplan.estimate(model, **keywords)
    return plan


def test_mm_processor_kwargs_example():
    """Qwen2.5-VL-7B on an H200 at its 128,000 tokens: the dummy video's profile peak and the requests held, at the
    processor's default max_pixels and at 1,003,520 (by hand: tests/test_mm_processor_kwargs.py)."""
    peak_small, peak_default, held_small, held_default = said(
        r"Qwen2\.5-VL-7B on an H200 at 128K: ([\d.]+) GiB instead of ([\d.]+), (\d+) requests instead of (\d+)")
    default = one("Qwen/Qwen2.5-VL-7B-Instruct", gpu="H200")
    small = one("Qwen/Qwen2.5-VL-7B-Instruct", gpu="H200", mm_processor_kwargs={"max_pixels": 1003520})
    assert default.context == 128_000
    assert f"{term(small, 'profile_peak') / GiB:.2f}" == peak_small
    assert f"{term(default, 'profile_peak') / GiB:.2f}" == peak_default
    assert (small.max_concurrency, default.max_concurrency) == (int(held_small), int(held_default))


def test_pooler_config_example():
    """MEAN pooling raises the batched tokens to the max model length, and the profile peak with them
    (by hand: tests/test_pooler_config.py)."""
    length, last, mean = said(r"Qwen3-8B `--runner pooling` at (\d+)K on an H100: (\d+) requests with LAST, "
                              r"(\d+) with MEAN")
    common = dict(gpu="H100", max_model_len=int(length) * 1024, runner="pooling")
    assert one("Qwen/Qwen3-8B", **common).max_concurrency == int(last)
    assert one("Qwen/Qwen3-8B", pooler_config={"pooling_type": "MEAN"}, **common).max_concurrency == int(mean)
    assert last != mean  # the example shows MEAN costing requests


def test_prefix_caching_example():
    """Qwen3-Next's logged concurrency with prefix caching on (vLLM 0.32's default) and off."""
    on, off = said(r"Qwen3-Next-80B `-q fp8 -tp 2` at 8K on an H100, vLLM 0\.32: ([\d.]+) -> ([\d.]+) logged "
                   r"concurrency off")
    common = dict(gpu="H100", tensor_parallel_size=2, max_model_len=8192, quantization="fp8")
    logged = [one("Qwen/Qwen3-Next-80B-A3B-Thinking", enable_prefix_caching=choice, **common).engine.max_concurrency
              for choice in (None, False)]
    assert [f"{value:.2f}" for value in logged] == [on, off]


def test_mamba_block_size_example():
    """Nemotron-H-8B under vLLM 0.20 with prefix caching ("all" mode): the Mamba block, and with --mamba-block-size."""
    before, after, asked = said(r"Nemotron-H-8B, vLLM 0\.20, 8K: block (\d+) -> (\d+) with (\d+)")
    common = dict(gpu="H100", max_model_len=8192, engine="vllm==0.20.0", enable_prefix_caching=True)
    assert one("nvidia/Nemotron-H-8B-Base-8K", **common).block_size == int(before)
    assert one("nvidia/Nemotron-H-8B-Base-8K", mamba_block_size=int(asked), **common).block_size == int(after)


def test_mamba_ssm_cache_dtype_example():
    """A float16 SSM state halves Nemotron-H's state page: a smaller block, more requests."""
    block, block16, held, held16 = said(r"Nemotron-H-8B at 8K on an H100, 0\.32\.0: block ([\d,]+) -> ([\d,]+) and "
                                        r"(\d+) -> (\d+) requests with `--mamba-ssm-cache-dtype float16`")
    common = dict(gpu="H100", max_model_len=8192)
    default = one("nvidia/Nemotron-H-8B-Base-8K", **common)
    half = one("nvidia/Nemotron-H-8B-Base-8K", mamba_ssm_cache_dtype="float16", **common)
    assert (default.block_size, half.block_size) == (int(block.replace(",", "")), int(block16.replace(",", "")))
    assert (default.max_concurrency, half.max_concurrency) == (int(held), int(held16))


def test_speculative_config_example():
    """DeepSeek-V3's MTP module at TP 8: the weights it adds a GPU and the MLA layers a token then caches."""
    added, layers = said(r"DeepSeek-V3: ([\d.]+) GiB a GPU at TP 8, (\d+) MLA layers a token")
    common = dict(gpu="H200", tensor_parallel_size=8, max_model_len=8192)
    target = one("deepseek-ai/DeepSeek-V3", **common)
    mtp = one("deepseek-ai/DeepSeek-V3", speculative_config={"method": "mtp", "num_speculative_tokens": 1}, **common)
    assert f"{(term(mtp, 'weights') - term(target, 'weights')) / GiB:.2f}" == added
    per_layer = target.kv_bytes_per_token_per_gpu // 61  # DeepSeek-V3's 61 layers, one latent each
    assert mtp.kv_bytes_per_token_per_gpu == int(layers) * per_layer


def test_release_figures():
    """KV GiB a GPU at 32K on an H100 under 0.32 / 0.33 / 0.34, as benchmarks/vllm_release_figures.py prints them."""
    rows = {"Llama-3.1-8B": ("meta-llama/Llama-3.1-8B-Instruct", 1), "Llama-3.1-70B at tp 4":
            ("meta-llama/Llama-3.1-70B-Instruct", 4), "Qwen3-30B-A3B": ("Qwen/Qwen3-30B-A3B", 1)}
    text = README[README.index("H100, 32K, KV GiB a GPU in 0.32 / 0.33 / 0.34"):]
    for name, (model, tp) in rows.items():
        shown = re.search(re.escape(name) + r" (\d+\.\d+) / (\d+\.\d+) / (\d+\.\d+)", text).groups()
        budgets = [one(model, gpu="H100", tensor_parallel_size=tp, max_model_len=32768, engine=release)
                   .kv_budget_bytes_per_gpu for release in ("vllm==0.32.0", "vllm==0.33.0", "vllm==0.34.0")]
        now = tuple(f"{budget / GiB:.2f}" for budget in budgets)
        assert shown == now, name


@pytest.mark.parametrize("page, pattern", [
    ("README.md", r"the term's bytes stay one figure, ([\d.]+) GiB"),
    ("README.md", r"CUDA graphs \(([\d.]+) GiB where the release subtracts them\)"),
    ("docs/ci.md", r"CUDA graphs, ([\d.]+) GiB\)"),
])
def test_the_graph_term_the_pages_quote(page, pattern):
    """The CUDA-graph term the pages name is the one vLLM 0.32's plans subtract (756,987,985 B: 0.705 GiB,
    tests/test_vllm_runner.py), not the 1.25 GiB assumed before session 67."""
    (figure,) = re.findall(pattern, flat(page))
    plan = one("meta-llama/Llama-3.1-8B-Instruct", gpu="H100", max_model_len=8192)
    assert term(plan, "cuda_graphs") == int(float(figure) * GiB) == 756_987_985
