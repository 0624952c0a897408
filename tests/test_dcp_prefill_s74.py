"""What -dcp D costs a prefill (plan/work.py dcp_exchange with `cached`, plan/prefill.py chunk_times), by hand from
vLLM 0.32.0's code:

- MLA (model_executor/layers/attention/mla_attention.py 0.32.0 forward_mha :3182-3264,
  _context_parallel_compute_prefill_context :3037-3180): a rank gathers its 1/D of the cached latent rows, then one
  all-gather over the D ranks per layer and per workspace chunk of <= 64K context rows (:3119, dcp.py kv_gather), in
  the model dtype; each rank attends the whole context with its own heads / TP heads: no LSE exchange; the new tokens
  attend each other as at -dcp 1. A first chunk (nothing cached) has no context path, so no collective.
- GQA (v1/attention/backends/flash_attn.py 0.32.0 _forward_with_dcp :1463-1637): with cached context the query
  all-gather over heads, the float32 LSE all-gather and the output reduce-scatter, over the chunk's tokens; skipped
  where nothing is cached (v1/worker/cp_utils.py 0.32.0:117-127).
A ring all-gather / reduce-scatter sends (D - 1) / D of the gathered tensor; a call costs allreduce_us x log2(D).
H200 (plan/catalog.py, untouched): allreduce_us 11.64, link 450e9 B/s, bandwidth 4.8e12 x 0.89 = 4.272e12 B/s.
A 32,768 max len keeps 32,767 prompt tokens, in 4 chunks of 8,192 (starts 0, 8,192, 16,384, 24,576).
"""

from __future__ import annotations

from conftest import estimate_plan

DSV3, QWEN3 = "deepseek-ai/DeepSeek-V3", "Qwen/Qwen3-30B-A3B"
ALLREDUCE_MS, LINK, BANDWIDTH = 11.64e-3, 450e9, 4.8e12 * 0.89
CACHED = (8192, 16384, 24576)  # the chunks that follow a cache


def ttft(*args) -> float:
    return estimate_plan(*args, "--gpu", "H200", "--max-model-len", "32768")["prefill"]["ttft_ms"]


def test_deepseek_v3_tp8_dcp8_ttft_on_h200():
    """DeepSeek-V3 (61 MLA layers, latent 512 + rope 64 = 576, bf16) at tp 8. Before (kvplan 0.73, -dcp priced as
    -dcp 1): 1,234.6774 ms at both (H200's prefill efficiency as refitted in session 75). Each chunk after the first:
    61 all-gathers (32K < 64K rows: one workspace chunk) x log2(8) = 183 x 11.64 us = 2.13012 ms; a rank sends
    7 x ceil(s / 8) rows x 576 x 2 B x 61 layers = 491,904 B x (1,024 + 2,048 + 3,072) = 3,022,258,176 B
    = 6.716129 ms at 450 GB/s; it reads 1/8 of the latent cache: 70,272 B a token (61 x 576 x 2) x 7/8 x 49,152
    cached = 3,022,258,176 B less = 0.707457 ms at 4.272 TB/s.
    After: 1,234.6774 + 3 x 2.13012 + 6.716129 - 0.707457 = 1,247.0764 ms."""
    before = 1234.6773628414044
    assert abs(ttft(DSV3, "-tp", "8") - before) < 1e-6  # -dcp 1 unchanged
    sent = 61 * 7 * 576 * 2 * sum(s // 8 for s in CACHED)
    assert sent == 3_022_258_176
    saved = 70_272 * sum(s - s // 8 for s in CACHED)
    after = before + 3 * 183 * ALLREDUCE_MS + sent / LINK * 1e3 - saved / BANDWIDTH * 1e3
    assert abs(after - 1247.0764) < 1e-3
    assert abs(ttft(DSV3, "-tp", "8", "-dcp", "8") - after) < 1e-6


def test_qwen3_moe_gqa_tp8_dcp2_ttft_on_h200():
    """Qwen3-30B-A3B (48 layers, 32 query heads, 4 KV heads, head_dim 128, bf16) at tp 8, -dcp 2 (D <= tp / KV
    heads). Before: 218.94596 ms at both. Per chunk after the first, a layer gathers per token 2 ranks x 4 heads x
    (query 128 x 2 + LSEs 2 x 4 + output 128 x 2) = 4,160 B, a rank sending half: 2,080 x 48 = 99,840 B a token,
    x 24,575 tokens (8,192 + 8,192 + 8,191) = 2,453,568,000 B = 5.452373 ms; calls 3 x 48 x log2(2) = 144 x 11.64 us
    = 1.67616 ms a chunk; the cache read halves: 24,576 B a token (one KV head a GPU: 48 x 2 x 128 x 2) x 24,576
    tokens less = 0.141381 ms. After: 218.94596 + 5.452373 + 3 x 1.67616 - 0.141381 = 229.28543 ms."""
    before = 218.94595597032327
    assert abs(ttft(QWEN3, "-tp", "8") - before) < 1e-6
    sent = 48 * (2 * 4 * (128 * 2 + 2 * 4 + 128 * 2)) // 2 * (8192 + 8192 + 8191)
    assert sent == 2_453_568_000
    saved = 24_576 * sum(s // 2 for s in CACHED)
    after = before + sent / LINK * 1e3 + 3 * 144 * ALLREDUCE_MS - saved / BANDWIDTH * 1e3
    assert abs(after - 229.28543) < 1e-4
    assert abs(ttft(QWEN3, "-tp", "8", "-dcp", "2") - after) < 1e-6


def test_a_single_chunk_prompt_exchanges_nothing():
    """A prompt of one chunk caches nothing before it: neither MLA's context gather nor GQA's query / LSE exchange
    runs, so its TTFT is -dcp 1's."""
    for model, tp, dcp in ((DSV3, "8", "8"), (QWEN3, "8", "2")):
        short = ("--input-len", "4096")
        assert ttft(model, "-tp", tp, "-dcp", dcp, *short) == ttft(model, "-tp", tp, *short)


def test_work_prices_the_chunk_as_basis_does():
    """chunk_basis with a chunk's exchange gives basis(prefill_work)'s figures to the last bit."""
    from kvplan.model.precision import resolve_kv_dtype
    from kvplan.model.sources import resolve
    from kvplan.plan.catalog import COMPUTE
    from kvplan.plan.speed import basis, chunk_basis
    from kvplan.plan.work import dcp_exchange, kv_read_bytes, prefill_work

    spec = resolve(DSV3)
    bf16 = resolve_kv_dtype("bf16", spec.dtype, spec.auto_kv_dtype)
    assert prefill_work(spec, 8, bf16, 16384, 8192).dcp is None  # -dcp 1: no exchange
    work = prefill_work(spec, 8, bf16, 16384, 8192, dcp=8)
    assert work.dcp.calls == 61 and work.dcp.bytes_sent == 61 * 7 * 2048 * 576 * 2
    at = chunk_basis(prefill_work(spec, 8, bf16, 0, 8192), BANDWIDTH, COMPUTE["H200"])
    assert at(kv_read_bytes(spec, 8, bf16, 2048), work.attention_flops,
              dcp_exchange(spec, 8, bf16, 8192, 8, 16384)) == basis(work, BANDWIDTH, COMPUTE["H200"])
