"""What -pcp P costs decode and prefill (plan/work.py pcp_exchange, plan/speed.py, plan/prefill.py pcp_chunk_times), by
hand from vLLM 0.32.0's code (0.34.0 the same where cited):

- decode: "PCP-only execution replicates the KV cache, so each decode request can have a single PCP owner"
  (config/parallel.py 0.32.0:627-639 pcp_shard_decode_requests); the owner is the request's decode ordinal mod P
  (v1/worker/gpu/pcp_manager.py 0.32.0:264-272): of a batch of B, a rank runs ceil(B / P) rows (the others pad to
  it, :340), reading its own requests' cache;
- each MoE layer all-gathers the hidden states and router logits of the P ranks and reduce-scatters the output
  (fused_moe/runner/moe_runner.py 0.32.0:824-828, 853-860), the experts split over T x P (fused_moe/config.py
  0.32.0:1097-1104); each MLA layer all-gathers the new latent KV, kv_c_normed and k_pe, so every rank writes the whole
  cache (v1/attention/ops/pcp.py 0.32.0:35-42); the last hidden states are all-gathered to sample (pcp_manager.py
  0.32.0:773-777). DeepSeek-V3 (61 MLA layers, 58 MoE, hidden 7,168, 256 experts, bf16 activations): per row
  61 x 576 x 2 = 70,272 B of latent, 58 x (2 x 7,168 + 256) x 2 = 1,692,672 B of MoE, 7,168 x 2 = 14,336 B to sample:
  1,777,280 B, of which a ring over 2 ranks sends 1/2 of the 2-rank tensor = 1 x the row's; calls 2 x 61 + 3 x 58 +
  1 = 297, each allreduce_us x log2(2);
- prefill: a chunk splits in 2P pieces of ceil(chunk / 2P), rank r taking r and 2P - 1 - r (pcp_manager.py
  0.32.0:235-282, its docstring's PCP=4 picture), each piece attending the prompt before it.
H200's constants (plan/catalog.py, fitted without any PCP case): layer_us 37.61, allreduce_us 11.64, gemm_efficiency
0.2166, prefill_efficiency 0.543; bandwidth 4.272e12 B/s; bf16 peak 989.4e12, fp8 1,978.9e12 FLOP/s; link 450e9 B/s.
DeepSeek-V3's routed experts (the bundled spec): 653,908,770,816 parameters, 654,068,416,512 B stored (fp8 + scales).
"""

from __future__ import annotations

from conftest import estimate_plan, run_kvplan

DSV3 = "deepseek-ai/DeepSeek-V3"
H200 = ("--gpu", "H200", "-tp", "8", "--max-model-len", "131072")
BW, LINK, ALLREDUCE_MS = 4.272e12, 450e9, 11.64e-3
FP8_RATE, BF16_PREFILL_RATE = 1978.9e12 * 0.2166, 989.4e12 * 0.5445  # FLOP/s at gemm / prefill efficiency
EXPERT_PARAMS, EXPERT_BYTES = 653_908_770_816, 654_068_416_512
ROW_BYTES, CALLS = 1_777_280, 297  # what one row sends over the 2 PCP ranks a step, and the collectives
LATENT = 61 * 576 * 2  # 70,272 B of cache a token: what a prefill piece reads of the prompt before it
PAIR = 61 * 2 * 16 * 320  # attention FLOPs a query-key pair at tp 8 (16 heads, DeepSeek's 128 + 64 + 128 prefill head)


def itl(plan: dict, batch: int) -> float:
    return next(p["itl_ms"] for p in plan["decode"]["points"] if p["batch"] == batch)


def touched(tokens: int) -> float:
    return 1 - (1 - 8 / 256) ** tokens  # the share of a layer's 256 experts that tokens picking 8 touch


def test_constants_are_the_fitted_ones():
    from kvplan.plan.catalog import COMPUTE, FITTED, find_gpu

    fit, compute = FITTED["H200"], COMPUTE["H200"]
    assert (fit.layer_us, fit.allreduce_us, fit.gemm_efficiency, fit.prefill_efficiency) == \
        (37.61, 11.64, 0.2166, 0.5445)
    assert (compute.link, compute.bf16, compute.fp8, find_gpu("H200").decode_bandwidth) == \
        (LINK, 989.4e12, 1978.9e12, BW)


def test_pcp_exchange_by_hand():
    from kvplan.model.sources import resolve
    from kvplan.plan.work import pcp_exchange

    exchange = pcp_exchange(resolve(DSV3), 5, 2)
    assert (exchange.ranks, exchange.calls, exchange.bytes_sent) == (2, CALLS, 5 * ROW_BYTES)
    assert ROW_BYTES == 70_272 + 1_692_672 + 14_336
    assert pcp_exchange(resolve(DSV3), 5, 4).bytes_sent == 3 * 5 * ROW_BYTES  # (P - 1) / P of P x 5 rows


def test_dual_chunk_swap_pieces():
    """pcp_manager.py 0.32.0:243-250: PCP=4 cuts a prefill in eight, rank 0 takes 0 and 7, rank 3 takes 3 and 4."""
    from kvplan.plan.prefill import pcp_pieces

    assert pcp_pieces(0, 8192, 4) == [[(0, 1024), (7168, 1024)], [(1024, 1024), (6144, 1024)],
                                      [(2048, 1024), (5120, 1024)], [(3072, 1024), (4096, 1024)]]
    # 8,191 tokens over 2 ranks: pieces of ceil(8,191 / 4) = 2,048, the last one short (chunk_len = min(...))
    assert pcp_pieces(100, 8191, 2) == [[(100, 2048), (6244, 2047)], [(2148, 2048), (4196, 2048)]]
    assert pcp_pieces(0, 3, 2) == [[(0, 1)], [(1, 1), (2, 1)]]  # a piece past the prompt is none


def _expert_delta_ms(pcp1_rows: int, rank_rows: int) -> float:
    """pcp 2 at rank_rows minus pcp 1 at pcp1_rows: the experts' bytes (a rank's 1/16 of those 2 x rank_rows touch,
    against 1/8 of those pcp1_rows touch) and FLOPs (at most 16 rows an expert here: one MMA tile of 16 rows)."""
    share = touched(2 * rank_rows) / 16 - touched(pcp1_rows) / 8
    return (EXPERT_BYTES * share / BW + 2 * EXPERT_PARAMS * 16 * share / FP8_RATE) * 1e3


def test_deepseek_v3_tp8_pcp2_decode_on_h200():
    """DeepSeek-V3 tp 8 at 131,072 on vLLM 0.32.0 (H200): -pcp 2 holds 9 requests (pcp 1: 5). Batch 1: a rank decodes
    one row (the other pads), the same attention, cache, dense weights and TP all-reduces as pcp 1's batch 1, the
    experts that 2 rows touch at 1/16 against 1 row's at 1/8, plus 297 calls x 11.64 us = 3.45708 ms and
    1,777,280 B / 450 GB/s = 0.0039495 ms: 11.5277 -> 14.9765 ms. Batch 9 (max concurrency): a rank owns
    ceil(9 / 2) = 5 requests, as pcp 1's batch 5 (28.2911 ms) but for the experts that 10 rows touch at 1/16 and 5
    rows of exchange: 31.4960 ms, 286 tok/s (pcp 1 at its max of 5: 28.2911 ms, 177 tok/s)."""
    one, two = estimate_plan(DSV3, *H200, "--batch", "5"), estimate_plan(DSV3, *H200, "-pcp", "2")
    assert (one["max_concurrency"], two["max_concurrency"]) == (5, 9)
    exchange = CALLS * ALLREDUCE_MS
    assert abs(itl(two, 1) - (itl(one, 1) + _expert_delta_ms(1, 1) + exchange + ROW_BYTES / LINK * 1e3)) < 1e-6
    assert abs(itl(two, 9) - (itl(one, 5) + _expert_delta_ms(5, 5) + exchange + 5 * ROW_BYTES / LINK * 1e3)) < 1e-6
    assert abs(itl(two, 1) - 14.976452) < 1e-5 and abs(itl(two, 9) - 31.496024) < 1e-5
    point = next(p for p in two["decode"]["points"] if p["batch"] == 9)
    assert point["tokens_per_s"] == 9 * 1e3 / point["itl_ms"]  # the engine's 9 requests a step


def _attention_ms(start: int, count: int) -> float:
    keys = count * start + count * (count + 1) / 2  # causal: each query sees the prompt before it and itself
    return PAIR * keys / BF16_PREFILL_RATE * 1e3


def test_deepseek_v3_tp8_pcp2_prefill_on_h200():
    """A 65,536-token prompt. pcp 1 at --max-num-batched-tokens 4,096: 16 chunks of 4,096 rows, each the fixed cost F
    (weights, layers, TP all-reduces, matmuls) + the cache before it read + its attention, so F is what the total
    leaves once those are taken out. -pcp 2 at the default 8,192: 8 chunks, each rank 2 pieces of 2,048 = 4,096 rows
    through the same dense weights and matmuls (the MoE's 8,192 gathered rows at 1/16: 256 rows an expert, the same
    FLOPs as 128 at 1/8), half the experts' bytes read (every expert touched), plus 297 calls and 4,096 rows of
    exchange; rank 0 reads the cache before its pieces at s and s + 6,144, and attends those pieces (rank 1's: s + 2,048
    and s + 4,096, the same sums). pcp 1 3,931 ms -> pcp 2 2,050 ms."""
    one = estimate_plan(DSV3, *H200, "--input-len", "65536", "--max-num-batched-tokens", "4096")["prefill"]
    two = estimate_plan(DSV3, *H200, "--input-len", "65536", "-pcp", "2")["prefill"]
    assert (one["chunks"], two["chunks"], two["chunk_tokens"]) == (16, 8, 8192)
    cache_ms = lambda tokens: tokens * LATENT / BW * 1e3  # noqa: E731
    fixed = (one["ttft_ms"] - sum(cache_ms(s) + _attention_ms(s, 4096) for s in range(0, 65536, 4096))) / 16
    fixed -= EXPERT_BYTES / 16 / BW * 1e3  # 1/8 of the experts read at pcp 1, 1/16 at pcp 2
    fixed += CALLS * ALLREDUCE_MS + 4096 * ROW_BYTES / LINK * 1e3  # 3.45708 + 16.17735 ms
    by_hand = sum(fixed + cache_ms(2 * s + 6144) + _attention_ms(s, 2048) + _attention_ms(s + 6144, 2048)
                  for s in range(0, 65536, 8192))
    assert abs(two["ttft_ms"] - by_hand) < 1e-6 * by_hand
    assert round(one["ttft_ms"]) == 3931 and round(two["ttft_ms"]) == 2050


def test_full_prompt_vs_pcp_1():
    """The 131,071-token prompt vLLM 0.32.0 leaves room for: 12,422 ms at pcp 1, 6,608 ms over 2 PCP ranks."""
    one, two = estimate_plan(DSV3, *H200)["prefill"], estimate_plan(DSV3, *H200, "-pcp", "2")["prefill"]
    assert (round(one["ttft_ms"]), round(two["ttft_ms"])) == (12_422, 6_608)
    assert one["chunks"] == two["chunks"] == 16


def test_0_34_priced_as_0_32():
    """0.34.0 shards decode as 0.32.0 (config/parallel.py 0.34.0:713-717, pcp_manager.py 0.34.0:292); 0.27-0.31, which
    run every decode on every PCP rank, are priced in test_pcp_speed_s75.py."""
    newer = estimate_plan(DSV3, *H200, "-pcp", "2", "--engine", "vllm==0.34.0")
    assert newer["decode"] is not None and newer["prefill"] is not None


def test_table_note_says_what_is_priced():
    text = " ".join(run_kvplan("estimate", DSV3, *H200, "-pcp", "2").stdout.split())
    assert "each PCP rank decoding ceil(batch / P) of its requests" in text
    assert "not estimated" not in text


def test_no_pcp_no_exchange():
    """pcp 1 (and the calibration, which never passes one) prices nothing new."""
    from kvplan.model.precision import resolve_kv_dtype
    from kvplan.model.sources import resolve
    from kvplan.plan.work import decode_work, prefill_work

    spec = resolve(DSV3)
    bf16 = resolve_kv_dtype("bf16", spec.dtype, spec.auto_kv_dtype)
    work = decode_work(spec, 8, bf16, 4096, 4)
    assert work.pcp is None and work == decode_work(spec, 8, bf16, 4096, 4, pcp=1)
    assert prefill_work(spec, 8, bf16, 0, 2048).pcp is None
