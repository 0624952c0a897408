"""-dcp's exchange where it departs from vLLM 0.32's default (engines/vllm_dcp.py dcp_comm, plan/work.py DcpComm):

- --dcp-comm-backend ag_rs | a2a, first in 0.18.0 (config/parallel.py 0.18.0:39 `DCPCommBackend = Literal["ag_rs",
  "a2a"]`, :309 default "ag_rs"; not in 0.17.0's). a2a keeps the query all-gather (mla_attention.py 0.32.0:1110-1112,
  flash_attn.py 0.32.0:1511) and replaces the LSE all-gather + output reduce-scatter by all-to-alls: two calls in
  0.18.0-0.20.x (v1/attention/ops/dcp_alltoall.py 0.18.0 dcp_a2a_lse_reduce: one all_to_all_single for the outputs,
  one for the LSEs), one from 0.21.0 (the fp32 LSE packed as two bf16 beside each head's output: dcp.py 0.32.0:604-610
  _dcp_a2a_lse_pack_dim, :939-1010). At -dcp 1 a2a is a ValueError up to 0.28.0 (config/parallel.py 0.28.0:541-544),
  gone from 0.29.0.
- a GQA prefill chunk with nothing cached: FlashAttention skips the exchange from 0.26 (cp_utils.py 0.32.0:117-127
  should_skip_dcp_context_attention), FlashInfer runs BatchDCPPrefillWrapper for every prefill under DCP (flashinfer.py
  0.32.0:394-409, :2193-2219), and FlashInfer is the GQA default on SM10x (platforms/cuda.py 0.32.0:158-166).
- the interleave I pads each rank's rows of MLA's prefill gather to I (mla_attention.py 0.32.0:2050-2060 padded_rows:
  cdiv(rows, D x I) x I) and changes no capacity (blocks per block x D tokens: single_type_kv_cache_manager.py
  0.32.0:106-108; kv_cache_interface.py 0.32.0:602-607 takes no interleave).
H200's constants (plan/catalog.py): allreduce_us 11.64, link 450e9 B/s.
"""

from __future__ import annotations

import pytest

from conftest import estimate_plan, one_error_line, run_kvplan

DSV3 = "deepseek-ai/DeepSeek-V3"
QWEN3 = "Qwen/Qwen3-30B-A3B"
H200 = ("--gpu", "H200", "-tp", "8")
ALLREDUCE_MS, LINK = 11.64e-3, 450e9


def itl(plan: dict, batch: int) -> float:
    return next(p["itl_ms"] for p in plan["decode"]["points"] if p["batch"] == batch)


def _spec_bf16(model: str):
    from kvplan.model.precision import resolve_kv_dtype
    from kvplan.model.sources import resolve

    spec = resolve(model)
    return spec, resolve_kv_dtype("bf16", spec.dtype, spec.auto_kv_dtype)


def test_a2a_exchange_deepseek_v3_by_hand():
    """DeepSeek-V3 at tp 8, -dcp 8, bf16, one decode token: a rank's 16 heads gather to 128. Gathered a token a layer:
    query 128 x 576 x 2 = 147,456; output 128 x 512 x 2 = 131,072. ag_rs adds the LSE all-gather, 8 x 128 x 4 =
    4,096; a2a sends a rank's 128 LSEs once, 128 x 4 = 512. A rank sends 7/8: ag_rs 7/8 x 282,624 = 247,296,
    a2a 7/8 x 279,040 = 244,160; x 61 layers. Calls: 3 x 61 = 183 (ag_rs, and a2a in 0.18-0.20), 2 x 61 = 122
    (a2a from 0.21)."""
    from kvplan.plan.work import DcpComm, dcp_exchange

    spec, bf16 = _spec_bf16(DSV3)
    ag_rs = dcp_exchange(spec, 8, bf16, 1, 8)
    packed = dcp_exchange(spec, 8, bf16, 1, 8, comm=DcpComm(a2a_calls=1))
    apart = dcp_exchange(spec, 8, bf16, 1, 8, comm=DcpComm(a2a_calls=2))
    assert (ag_rs.calls, ag_rs.bytes_sent) == (183, 61 * 247_296)
    assert (packed.calls, packed.bytes_sent) == (122, 61 * 244_160)
    assert (apart.calls, apart.bytes_sent) == (183, 61 * 244_160)


def test_a2a_estimate_deepseek_v3_h200():
    """The same at the default max length, batch 1: 61 fewer calls x log2(8) x 11.64 us = 2.13012 ms, and
    61 x 3,136 B fewer = 191,296 B / 450 GB/s = 0.000425 ms less than ag_rs's step; the MLA prefill (a latent
    all-gather, no LSE merge) unchanged; capacity unchanged."""
    ag_rs = estimate_plan(DSV3, *H200, "-dcp", "8")
    a2a = estimate_plan(DSV3, *H200, "-dcp", "8", "--dcp-comm-backend", "a2a")
    assert a2a["dcp_comm_backend"] == "a2a" and ag_rs["dcp_comm_backend"] == "ag_rs"
    assert a2a["max_concurrency"] == ag_rs["max_concurrency"] == 33
    saved = 61 * 3 * ALLREDUCE_MS + 61 * 3_136 / LINK * 1e3
    assert abs(itl(ag_rs, 1) - itl(a2a, 1) - saved) < 1e-6
    assert a2a["prefill"]["ttft_ms"] == ag_rs["prefill"]["ttft_ms"]
    # 0.20.0: two all-to-alls, as many calls as ag_rs: only the LSE bytes differ
    old = estimate_plan(DSV3, *H200, "-dcp", "8", "--engine", "vllm==0.20.0")
    old_a2a = estimate_plan(DSV3, *H200, "-dcp", "8", "--engine", "vllm==0.20.0", "--dcp-comm-backend", "a2a")
    assert abs(itl(old, 1) - itl(old_a2a, 1) - 61 * 3_136 / LINK * 1e3) < 1e-6


def test_a2a_gqa_qwen3_by_hand():
    """Qwen3-30B-A3B (32 query heads, head_dim 128, 48 layers) at tp 8, -dcp 2: a rank's 4 heads gather to 8. a2a:
    query 8 x 128 x 2 = 2,048, LSEs 8 x 4 = 32, output 2,048; half sent = 2,064 x 48 = 99,072 B; 2 x 48 = 96
    calls (ag_rs: 2,080 x 48 = 99,840 B, 144 calls)."""
    from kvplan.plan.work import DcpComm, dcp_exchange

    spec, bf16 = _spec_bf16(QWEN3)
    exchange = dcp_exchange(spec, 8, bf16, 1, 2, comm=DcpComm(a2a_calls=1))
    assert (exchange.calls, exchange.bytes_sent) == (96, 99_072)
    assert estimate_plan(QWEN3, *H200, "-dcp", "2", "--dcp-comm-backend", "a2a")["dcp_comm_backend"] == "a2a"


def test_first_chunk_exchange_by_backend():
    """A GQA chunk of 2,048 tokens with nothing cached, Qwen3-30B-A3B tp 8 -dcp 2: FlashAttention (0.26+) sends
    nothing; FlashInfer sends decode's 2,080 B a token a layer: 2,080 x 48 x 2,048 = 204,472,320 B in 144 calls."""
    from kvplan.plan.work import DcpComm, dcp_exchange

    spec, bf16 = _spec_bf16(QWEN3)
    skipped = dcp_exchange(spec, 8, bf16, 2048, 2, 0)
    assert (skipped.calls, skipped.bytes_sent) == (0, 0)
    paid = dcp_exchange(spec, 8, bf16, 2048, 2, 0, DcpComm(empty_context=True))
    assert (paid.calls, paid.bytes_sent) == (144, 204_472_320)


def test_dcp_comm_rules_by_release_and_backend():
    from kvplan.engines import EngineFlags
    from kvplan.engines.vllm_dcp import dcp_comm
    from kvplan.plan.work import DcpComm

    a2a = EngineFlags(dcp=2, dcp_comm_backend="a2a")
    assert dcp_comm(EngineFlags(), "0.32.0", "FLASH_ATTN") is None
    assert dcp_comm(EngineFlags(dcp=2), "0.32.0", "FLASH_ATTN") == DcpComm()
    assert dcp_comm(EngineFlags(dcp=2), "0.32.0", "FLASHINFER") == DcpComm(empty_context=True)
    assert dcp_comm(EngineFlags(dcp=2), "0.25.0", "FLASH_ATTN") == DcpComm(empty_context=True)  # no skip before 0.26
    assert dcp_comm(EngineFlags(dcp=2), "0.26.0", "FLASH_ATTN") == DcpComm()
    assert dcp_comm(a2a, "0.20.0", "FLASHMLA").a2a_calls == 2
    assert dcp_comm(a2a, "0.21.0", "FLASHMLA").a2a_calls == 1
    assert dcp_comm(EngineFlags(dcp=8, dcp_interleave=64), "0.32.0", "FLASHMLA").interleave == 64


def test_gqa_backend_on_sm10x_is_flashinfer():
    """platforms/cuda.py 0.32.0:158-166 (FLASHINFER first for GQA on major 10), :167-179 (FLASH_ATTN first
    elsewhere); 0.10.2-0.11.0 ask is_device_capability(100), 10.0 only (cuda.py 0.10.2:335-346)."""
    from kvplan.engines.vllm import attention_backend

    spec, bf16 = _spec_bf16(QWEN3)
    assert attention_backend(spec, bf16, "0.32.0", (10, 0)) == "FLASHINFER"
    assert attention_backend(spec, bf16, "0.32.0", (10, 3)) == "FLASHINFER"
    assert attention_backend(spec, bf16, "0.32.0", (9, 0)) == "FLASH_ATTN"
    assert attention_backend(spec, bf16, "0.11.0", (10, 3)) == "FLASH_ATTN"
    assert attention_backend(spec, bf16, "0.11.0", (10, 0)) == "FLASHINFER"


def test_b200_gqa_first_chunk_pays_the_exchange():
    """On B200 (FlashInfer) a one-chunk prompt pays the exchange; on H200 (FlashAttention) it is -dcp 1's."""
    def ttft(gpu: str, *dcp) -> float:
        return estimate_plan(QWEN3, "--gpu", gpu, "-tp", "8", "--input-len", "4096", *dcp)["prefill"]["ttft_ms"]

    assert ttft("H200", "-dcp", "2") == ttft("H200")
    assert ttft("B200", "-dcp", "2") > ttft("B200")


def test_interleave_pads_mla_prefill_gather():
    """DeepSeek-V3 tp 8 -dcp 8, a 2-token chunk after 1,000 cached: interleave 1, a rank's rows cdiv(1,000, 8) = 125;
    interleave 64, cdiv(1,000, 512) x 64 = 128. Sent: 61 layers x 7 ranks x rows x 576 x 2 B; one call a layer."""
    from kvplan.plan.work import DcpComm, dcp_exchange

    spec, bf16 = _spec_bf16(DSV3)
    plain = dcp_exchange(spec, 8, bf16, 2, 8, 1000)
    padded = dcp_exchange(spec, 8, bf16, 2, 8, 1000, DcpComm(interleave=64))
    assert (plain.calls, plain.bytes_sent) == (61, 61 * 7 * 125 * 576 * 2)
    assert (padded.calls, padded.bytes_sent) == (61, 61 * 7 * 128 * 576 * 2)


@pytest.mark.parametrize("context", ["32768", "131072"])
def test_interleave_changes_no_capacity(context):
    """Blocks go per block x D tokens whatever the interleave (16, the block kvplan's 0.32.0 gives DeepSeek-V3 here):
    the same blocks, the same concurrency."""
    plain = estimate_plan(DSV3, *H200, "-dcp", "8", "--max-model-len", context)
    interleaved = estimate_plan(DSV3, *H200, "-dcp", "8", "--max-model-len", context,
                                "--cp-kv-cache-interleave-size", "16")
    assert interleaved["engine"]["refusal"] is None and interleaved["dcp_interleave"] == 16
    assert interleaved["engine"]["num_gpu_blocks"] == plain["engine"]["num_gpu_blocks"]
    assert interleaved["max_concurrency"] == plain["max_concurrency"]


def test_bad_backend_values():
    result = run_kvplan("estimate", DSV3, *H200, "-dcp", "8", "--dcp-comm-backend", "ring")
    assert result.returncode == 2
    assert one_error_line(result) == ("kvplan: error: --dcp-comm-backend must be one of ag_rs, a2a (vLLM's "
                                      "--dcp-comm-backend), got 'ring'.")
    old = run_kvplan("estimate", DSV3, *H200, "-dcp", "8", "--dcp-comm-backend", "a2a", "--engine", "vllm==0.17.0")
    assert old.returncode == 2 and "needs vLLM 0.18.0 or later" in one_error_line(old)
    alone = run_kvplan("estimate", DSV3, *H200, "--dcp-comm-backend", "a2a", "--engine", "vllm==0.28.0")
    assert alone.returncode == 2
    assert "requires decode_context_parallel_size > 1." in one_error_line(alone)
    # 0.29 on: accepted, unused at -dcp 1 (the backend left to the model: config/parallel.py 0.32.0:397-406)
    assert "dcp_comm_backend" not in estimate_plan(DSV3, *H200, "--dcp-comm-backend", "a2a")
