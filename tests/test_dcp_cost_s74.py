"""What -dcp D costs decode (plan/work.py dcp_exchange, plan/speed.py basis), by hand from vLLM 0.32.0's code:

- each attention layer's decode runs three collectives over the D ranks (default dcp_comm_backend "ag_rs",
  config/parallel.py 0.32.0:397-406, 0.34.0:439-448): the query all-gather over heads
  (model_executor/layers/attention/mla_attention.py 0.32.0:1099-1112; v1/attention/backends/flash_attn.py
  0.32.0:1511), the float32 LSE all-gather and the output reduce-scatter (v1/attention/ops/dcp.py cp_lse_ag_out_rs);
  a ring all-gather / reduce-scatter sends (D - 1) / D of the gathered tensor; each call costs allreduce_us x log2(D);
- a rank attends over its share of the sequence with its DCP group's D x heads / TP query heads: the attention FLOPs
  of heads / TP over the whole sequence, D times those of its share at heads / TP (what kvplan priced before).
H200's constants (plan/catalog.py, fitted without any DCP case): allreduce_us 11.64, gemm_efficiency 0.2166,
bf16 peak 989.4e12 FLOP/s, link 450e9 B/s.
"""

from __future__ import annotations

from conftest import estimate_plan

DSV3 = "deepseek-ai/DeepSeek-V3"
QWEN3 = "Qwen/Qwen3-30B-A3B"
H200 = ("--gpu", "H200", "-tp", "8")
ALLREDUCE_MS, LINK, PEAK = 11.64e-3, 450e9, 989.4e12 * 0.2166


def itl(plan: dict, batch: int) -> float:
    return next(p["itl_ms"] for p in plan["decode"]["points"] if p["batch"] == batch)


def test_h200_constants_are_the_fitted_ones():
    """The calibration is untouched: the figures the hand arithmetic below uses are the catalog's."""
    from kvplan.plan.catalog import COMPUTE, FITTED

    fit = FITTED["H200"]
    assert (fit.allreduce_us, fit.gemm_efficiency, fit.layer_us) == (11.64, 0.2166, 37.61)
    assert (COMPUTE["H200"].link, COMPUTE["H200"].bf16) == (450e9, 989.4e12)


def test_deepseek_v3_tp8_dcp8_on_h200():
    """DeepSeek-V3 (MLA: 128 heads, latent 512 + rope 64, 61 layers, bf16) at tp 8, -dcp 8, max len 163,840.
    A rank's 16 heads gather to 128. Bytes a token a layer, gathered: query 128 x 576 x 2 = 147,456; LSEs
    8 ranks x 128 x 4 = 4,096; output 128 x 512 x 2 = 131,072; sum 282,624, of which a rank sends 7/8 = 247,296;
    x 61 layers = 15,085,056 B a sequence = 0.0335224 ms at 450 GB/s. Calls: 3 x 61 = 183, x log2(8) = 549 x 11.64 us
    = 6.39036 ms. Attention: 2 x 16 heads x (576 + 512) = 34,816 FLOPs a key a layer, x 61 x 20,480 keys (the share)
    x (8 - 1) heads more = 3.04465e11 FLOPs a sequence = 1.42072 ms at 989.4e12 x 0.2166.
    Before (kvplan 0.73, the exchange not priced): 8.6126 ms at batch 1, 42.0534 ms at the 33 requests held."""
    plan = estimate_plan(DSV3, *H200, "-dcp", "8")
    assert plan["max_concurrency"] == 33
    latency = 549 * ALLREDUCE_MS
    per_sequence = 15_085_056 / LINK * 1e3 + 61 * 34_816 * 20_480 * 7 / PEAK * 1e3
    assert abs(per_sequence - (0.0335224 + 1.42072)) < 1e-5
    assert abs(itl(plan, 1) - (8.612592 + latency + per_sequence)) < 1e-5  # 16.4572 ms
    assert abs(itl(plan, 33) - (42.053399 + latency + 33 * per_sequence)) < 1e-5  # 96.4335 ms
    # dcp 1 at batch 1 (every rank reads the whole latent, no exchange) is now the faster: 12.4 ms
    assert itl(estimate_plan(DSV3, *H200), 1) < itl(plan, 1)


def test_deepseek_v3_fp8_cache_gathers_an_fp8_query():
    """Under --kv-cache-dtype fp8 FlashMLA takes an fp8 query (mla_attention.py 0.32.0:690-697): query
    128 x 576 x 1 = 73,728 + LSEs 4,096 + output (model dtype) 131,072 = 208,896, x 7/8 x 61 = 11,149,824 B."""
    plan = estimate_plan(DSV3, *H200, "-dcp", "8", "--kv-cache-dtype", "fp8")
    from kvplan.model.precision import resolve_kv_dtype
    from kvplan.model.sources import resolve
    from kvplan.plan.work import dcp_exchange

    spec = resolve(DSV3)
    exchange = dcp_exchange(spec, 8, resolve_kv_dtype("fp8", spec.dtype, spec.auto_kv_dtype), 1, 8)
    assert (exchange.ranks, exchange.calls, exchange.bytes_sent) == (8, 183, 11_149_824)
    assert plan["max_concurrency"] == 67
    # before: 8.444150 ms at batch 1; the latent fp8, so the share's attention FLOPs are the bf16 case's
    per_sequence = 11_149_824 / LINK * 1e3 + 61 * 34_816 * 20_480 * 7 / PEAK * 1e3
    assert abs(itl(plan, 1) - (8.444150 + 549 * ALLREDUCE_MS + per_sequence)) < 1e-5


def test_gqa_qwen3_30b_tp8_dcp2():
    """Qwen3-30B-A3B (GQA: 32 query / 4 KV heads, head_dim 128, 48 layers, bf16) at tp 8, -dcp 2 (vLLM takes it:
    8 > 4 KV heads, 2 <= 8 // 4, 8 query heads a KV head divide by 2). A rank's 4 heads gather to 8: query
    8 x 128 x 2 = 2,048, LSEs 2 x 8 x 4 = 64, output 2,048; sum 4,160, half sent = 2,080, x 48 = 99,840 B a sequence.
    Calls 3 x 48 = 144 x log2(2) = 144 x 11.64 us = 1.67616 ms. Attention: 2 x 4 x (128 + 128) = 2,048 FLOPs a key
    a layer x 48 x 20,480 keys (the share of 40,960) x 1 more = 2.01327e9 FLOPs. Before: 5.528006 ms at batch 1,
    40.437564 ms at 253 requests."""
    plan = estimate_plan(QWEN3, *H200, "-dcp", "2")
    assert plan["max_concurrency"] == 253
    per_sequence = 99_840 / LINK * 1e3 + 48 * 2_048 * 20_480 / PEAK * 1e3
    assert abs(itl(plan, 1) - (5.528006 + 144 * ALLREDUCE_MS + per_sequence)) < 1e-5  # 7.2138 ms
    assert abs(itl(plan, 253) - (40.437564 + 144 * ALLREDUCE_MS + 253 * per_sequence)) < 1e-5  # 44.5466 ms


def test_llama_8b_tp8_dcp2_stays_refused():
    """Llama-3.1-8B has 8 KV heads: vLLM wants tp > 8 for GQA under DCP (config/model.py 0.32.0:1565-1592), so no
    plan holds a request and no decode is priced."""
    plan = estimate_plan("meta-llama/Llama-3.1-8B", *H200, "-dcp", "2")
    assert plan["max_concurrency"] == 0
    assert "greater than the model's total number of KV heads (8)" in plan["engine"]["refusal"]["reason"]


def test_no_dcp_no_exchange():
    """dcp 1 (and the calibration, which never passes one) prices nothing new: the same Basis as before."""
    from kvplan.model.precision import resolve_kv_dtype
    from kvplan.model.sources import resolve
    from kvplan.plan.catalog import COMPUTE
    from kvplan.plan.speed import basis
    from kvplan.plan.work import decode_work

    spec = resolve(DSV3)
    bf16 = resolve_kv_dtype("bf16", spec.dtype, spec.auto_kv_dtype)
    work = decode_work(spec, 8, bf16, 4096, 4)
    assert work.dcp is None and work == decode_work(spec, 8, bf16, 4096, 4, dcp=1)
    b = basis(work, 4.0e12, COMPUTE["H200"])
    assert b.allreduce_calls == 2 * 61 * 3  # the TP all-reduces only
