"""-pcp P on vLLM 0.27-0.31 (engines/vllm_pcp.py decodes_replicated), and the profile run under -pcp, by hand from the
wheels 0.27.0, 0.29.0, 0.31.0 and 0.32.0:

- decode: "decodes are replicated" (v1/worker/gpu/pcp_manager.py 0.27.0:225, 0.29.0:221, 0.31.0:263): every PCP rank
  runs the whole batch, reading every request's cache, so a step is pcp 1's at that batch but for the MoE layers,
  which all-gather the P ranks' rows (fused_moe/runner/moe_runner.py 0.29.0:815-819) - P copies of each token -
  through experts split over T x P (fused_moe/config.py 0.27.0:1119), and reduce-scatter back (:844-851). A
  decode-only step gathers no latent KV ("Keep replicated decode writes local", v1/attention/ops/pcp.py 0.29.0:16-22);
  the last hidden states are all-gathered to sample (pcp_manager.py 0.29.0:653-657). DeepSeek-V3 (58 MoE layers,
  hidden 7,168, 256 experts, bf16): per row 58 x (2 x 7,168 + 256) x 2 = 1,692,672 B of MoE + 7,168 x 2 = 14,336 B
  = 1,707,008 B, of which a ring over 2 ranks sends 1 x the row's; calls 3 x 58 + 1 = 175, each allreduce_us x
  log2(2).
- prefill: the same DualChunkSwap split and gathers as 0.32 (pcp_manager.py 0.29.0:196-230 vs 0.32.0:235-282; a
  prefill-only chunk gathers all its rows' latent in two calls either way, pcp.py 0.29.0:24-28, 0.32.0:38-42).
- profile run: each rank runs the whole dummy batch of max_num_batched_tokens (model_runner.py 0.29.0:869, 1617;
  0.32.0:1004, 1838-1851: the dummy batch is staged, never partitioned), and the MoE layers all-gather the P ranks'
  rows: the fused-MoE workspace (0.14+: "workspace", vllm_profile.expert_buffers_per_token) covers P x 8,192 rows.
  A DeepSeek-V3 row at experts TP 16 (I = 2,048 / 16 = 128, N = 2 I = 256, K = 7,168, k = 8):
  k (max(I, K) + max(N, K)) x 2 B = 8 x 14,336 x 2 = 229,376 B, plus the fp8 copies of x and the activated
  intermediate, K + k I = 7,168 + 1,024 = 8,192 B: 237,568 B a row; the gathered hidden states 7,168 x 2 = 14,336 B.
H200's constants (plan/catalog.py): allreduce_us 11.64, gemm_efficiency 0.2166; bandwidth 4.272e12 B/s; fp8 peak
1,978.9e12 FLOP/s; link 450e9 B/s. DeepSeek-V3's routed experts (the bundled spec): 653,908,770,816 parameters,
654,068,416,512 B stored.
"""

from __future__ import annotations

from dataclasses import replace

from conftest import estimate_plan, run_kvplan

DSV3 = "deepseek-ai/DeepSeek-V3"
H200 = ("--gpu", "H200", "-tp", "8", "--max-model-len", "131072")
V029 = ("--engine", "vllm==0.29.0", "--enforce-eager")  # 0.27-0.29 refuse full CUDA graphs under PCP
BW, LINK, ALLREDUCE_MS, FP8_RATE = 4.272e12, 450e9, 11.64e-3, 1978.9e12 * 0.2166
EXPERT_PARAMS, EXPERT_BYTES = 653_908_770_816, 654_068_416_512
ROW_BYTES, CALLS = 1_707_008, 175  # a replicated decode row's exchange over 2 PCP ranks, and its collectives


def itl(plan: dict, batch: int) -> float:
    return next(p["itl_ms"] for p in plan["decode"]["points"] if p["batch"] == batch)


def touched(tokens: int) -> float:
    return 1 - (1 - 8 / 256) ** tokens  # the share of a layer's 256 experts that tokens picking 8 touch


def test_replicated_exchange_by_hand():
    from kvplan.model.sources import resolve
    from kvplan.plan.work import pcp_exchange

    exchange = pcp_exchange(resolve(DSV3), 5, 2, latent=False)
    assert (exchange.ranks, exchange.calls, exchange.bytes_sent) == (2, CALLS, 5 * ROW_BYTES)
    assert ROW_BYTES == 58 * (2 * 7_168 + 256) * 2 + 7_168 * 2


def _replicated_ms(batch: int) -> float:
    """pcp 2 on 0.29 minus pcp 1, both at `batch` rows a rank: the experts those rows touch read at 1/16 instead of
    1/8; their FLOPs, 2 x batch rows over 1/16 against batch rows over 1/8, both at most one 16-row MMA tile an
    expert here (2 x 9 x 8 / (256 x 0.248) = 2.3 rows), so half of pcp 1's; plus the 175 collectives and the rows'
    bytes."""
    share = touched(batch)
    experts_ms = (EXPERT_BYTES * share / 16 / BW + 2 * EXPERT_PARAMS * 16 * share / 16 / FP8_RATE) * 1e3
    return CALLS * ALLREDUCE_MS + batch * ROW_BYTES / LINK * 1e3 - experts_ms


def test_deepseek_v3_tp8_pcp2_decode_on_0_29():
    """DeepSeek-V3 tp 8 at 131,072 on vLLM 0.29.0 (H200, --enforce-eager): -pcp 2 holds 9 requests, and every rank
    decodes all of them. Batch 1: pcp 1's 11.5277 ms - 0.2990 ms of expert bytes - 0.0953 ms of expert FLOPs +
    175 x 11.64 us = 2.0370 ms + 1,707,008 B / 450 GB/s = 0.0038 ms: 13.174 ms (0.32, one owner a request, 14.976 ms:
    it gathers the latent KV too). Batch 9: pcp 1's step at 9 requests (which pcp 1 cannot hold) with the same
    corrections: 43.641 ms, 206 tok/s (0.32: 31.496 ms, a rank running ceil(9 / 2) = 5)."""
    one = estimate_plan(DSV3, *H200, *V029, "--batch", "9")
    two = estimate_plan(DSV3, *H200, *V029, "-pcp", "2")
    assert (one["max_concurrency"], two["max_concurrency"]) == (5, 9)
    for batch in (1, 9):
        assert abs(itl(two, batch) - (itl(one, batch) + _replicated_ms(batch))) < 1e-6
    assert (round(itl(two, 1), 3), round(itl(two, 9), 3)) == (13.174, 43.641)
    assert round(9 * 1e3 / itl(two, 9)) == 206
    newer = estimate_plan(DSV3, *H200, "-pcp", "2")  # 0.32.0, the owners' rule (test_pcp_speed_s74.py)
    assert (round(itl(newer, 1), 3), round(itl(newer, 9), 3)) == (14.976, 31.496)


def test_prefill_as_0_32():
    """A prompt splits and gathers alike on 0.29, 0.31 and 0.32: the same time to first token (6,608 ms for the
    131,071 tokens each release leaves room for, 16 chunks of 8,192)."""
    newer = estimate_plan(DSV3, *H200, "-pcp", "2")["prefill"]
    for older in (estimate_plan(DSV3, *H200, *V029, "-pcp", "2"),
                  estimate_plan(DSV3, *H200, "-pcp", "2", "--engine", "vllm==0.31.0")):
        assert older["prefill"]["ttft_ms"] == newer["ttft_ms"] and older["prefill"]["chunks"] == newer["chunks"] == 16
    assert round(newer["ttft_ms"]) == 6_608


def test_no_speed_where_pcp_never_runs():
    """0.13-0.25 stop every -pcp start (no attention impl supports it, vllm_pcp.py): no decode or prefill time."""
    plan = estimate_plan(DSV3, *H200, "-pcp", "2", "--engine", "vllm==0.20.0")
    assert plan["max_concurrency"] == 0 and plan["decode"] is None and plan["prefill"] is None


def test_profile_run_gathers_the_pcp_ranks():
    """The profile forward under -pcp 2 runs 8,192 more rows through the fused-MoE workspace (237,568 B each) and
    holds the 16,384 gathered hidden states (14,336 B each) beside them: 2,181,038,080 B more than the same experts
    without the gather; and the peak is -dp 2's, whose MoE layers gather 2 ranks' 8,192 rows as well."""
    from kvplan.engines.vllm_profile import forward_peak
    from kvplan.engines.vllm_versions import behaviour
    from kvplan.model.sources import resolve
    from kvplan.plan.sharding import moe_layout

    spec, rules = resolve(DSV3), behaviour("0.32.0")
    gathered = moe_layout(spec, 8, pcp=2)
    alone = replace(gathered, pcp=1)  # the experts at TP 16, one rank's rows
    assert forward_peak(spec, 8, 8192, rules, gathered) - forward_peak(spec, 8, 8192, rules, alone) == \
        8192 * 237_568 + 16_384 * 14_336 == 2_181_038_080
    pcp, dp = estimate_plan(DSV3, *H200, "-pcp", "2"), estimate_plan(DSV3, *H200, "-dp", "2")
    assert pcp["budget"]["activation_bytes"] == dp["budget"]["activation_bytes"] == 4_378_591_232
    profile = next(t for t in pcp["budget"]["terms"] if t["name"] == "profile_peak")
    assert "over the 2 PCP ranks' tokens" in profile["source"]


def test_table_says_how_0_29_decodes():
    text = " ".join(run_kvplan("estimate", DSV3, *H200, *V029, "-pcp", "2").stdout.split())
    assert "vLLM 0.27-0.31 run every decode request on every PCP rank" in text
    assert "ceil(batch / P)" not in text
