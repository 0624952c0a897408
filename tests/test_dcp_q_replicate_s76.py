"""--dcp-q-replicate / --no-dcp-q-replicate (engines/vllm_dcp.py, plan/work.py replicated_query):

- the flag from 0.29.0 (config/parallel.py 0.29.0:372, 0.32.0:408-417, 0.34.0:450: `dcp_q_replicate: bool | None =
  None`; arg_utils.py 0.32.0:1189, a BooleanOptionalAction); 0.28.0's argparse has no such flag (only the
  environment variable VLLM_DCP_Q_REPLICATE, envs.py 0.28.0:198).
- read only by DeepseekV2MLAAttention (models/deepseek_v2.py 0.32.0:1068-1080), with -dcp above 1 and -pcp 1: q_b_proj
  becomes a DCPGroupColumnParallelLinear split over tp / D (layers/linear.py 0.32.0:632-670), decode skips the query
  all-gather (mla_attention.py 0.32.0:1110-1112) and multiplies by W_UK_T_dcp_qrep, the group's W_UK_T all-gathered
  at load (:1328-1334). The LSE all-gather and output reduce-scatter stay. GQA models never read it.

DeepSeek-V3 (model_specs/): 128 heads, q_lora_rank 1536, qk_nope 128 + qk_rope 64 = 192, kv_lora_rank 512, 61 MLA
layers, fp8 attention weights in 128 x 128 blocks with float32 scales (1 + 4 / 16,384 B a parameter), bf16
activations. At tp 8 -dcp 8: a rank's 16 heads, its group's 128.
- q_b_proj at tp 8: 128 x 192 x 1536 / 8 = 4,718,592 elements a rank; over tp / D = 1: 37,748,736, 7 x 4,718,592 more.
- W_UK_T a rank: 16 x 128 x 512 = 1,048,576 elements; W_UK_T_dcp_qrep 8 x that in bf16 = 16,777,216 B (all new),
  of which decode reads 7 x 1,048,576 x 2 = 14,680,064 B more than W_UK_T.
- the query gather removed: a token's 128 gathered heads x 576 x 2 B = 147,456 B, of which a ring sends 7/8 =
  129,024 B; one call a layer.
H200's constants (plan/catalog.py, echoed in decode.constants): allreduce_us 11.64, link 450e9 B/s, bandwidth
4.272e12 B/s, fp8 peak 1978.9e12, bf16 peak 989.4e12 FLOP/s, gemm_efficiency 0.2166.
"""

from __future__ import annotations

import math

import pytest

from conftest import deployments_file, estimate_plan, one_error_line, run_kvplan

DSV3 = "deepseek-ai/DeepSeek-V3"
QWEN3 = "Qwen/Qwen3-30B-A3B"
H200 = ("--gpu", "H200", "-tp", "8", "--engine", "vllm==0.32.0")
LAYERS = 61
FP8_BLOCK = 1 + 4 / (128 * 128)  # bytes a parameter of a 128 x 128-block fp8 weight with a float32 scale
Q_SHARE = 128 * 192 * 1536 // 8  # q_b_proj elements a rank at tp 8
UK_SHARE = 16 * 128 * 512  # W_UK_T elements a rank at tp 8


def _point(plan: dict, batch: int) -> dict:
    return next(p for p in plan["decode"]["points"] if p["batch"] == batch)


def test_exchange_loses_the_query_gather_by_hand():
    """bf16 cache, one decode token: ag_rs sends 7/8 x (147,456 + 8 x 128 x 4 + 128 x 512 x 2) = 247,296 B a layer
    in 3 calls; replicated, 7/8 x (4,096 + 131,072) = 118,272 B in 2 calls. a2a with it: 7/8 x (512 + 131,072) =
    115,136 B in 1 call."""
    from kvplan.model.precision import resolve_kv_dtype
    from kvplan.model.sources import resolve
    from kvplan.plan.work import DcpComm, dcp_exchange

    spec = resolve(DSV3)
    bf16 = resolve_kv_dtype("bf16", spec.dtype, spec.auto_kv_dtype)
    plain = dcp_exchange(spec, 8, bf16, 1, 8)
    replicated = dcp_exchange(spec, 8, bf16, 1, 8, comm=DcpComm(q_replicated=True))
    both = dcp_exchange(spec, 8, bf16, 1, 8, comm=DcpComm(a2a_calls=1, q_replicated=True))
    assert (plain.calls, plain.bytes_sent) == (3 * LAYERS, LAYERS * 247_296)
    assert (replicated.calls, replicated.bytes_sent) == (2 * LAYERS, LAYERS * 118_272)
    assert (both.calls, both.bytes_sent) == (LAYERS, LAYERS * 115_136)


def test_decode_step_deepseek_v3_h200_by_hand():
    """Batch 1 at the default max length on vLLM 0.32.0, the step with the flag against without it:
    - the gather's 61 calls: -61 x log2(8) x 11.64 us = -2.13012 ms; its bytes: -61 x 129,024 / 450e9 s;
    - weights read: +61 x 7 x (4,718,592 x FP8_BLOCK + 1,048,576 x 2) = +2,910,814,592 B / 4.272e12 B/s = +0.6814 ms;
    - FLOPs: q_b_proj's 2 x 61 x 7 x 4,718,592 x 16 rows (one MMA tile) at fp8, W_UK's 2 x 61 x 7 x 1,048,576 at
      bf16, over the peak / 0.2166: +0.1546 ms.
    Net -1.3116 ms. The same terms at batch 33 / 31 differ (the concurrency drops: next test)."""
    plain = estimate_plan(DSV3, *H200, "-dcp", "8")
    replicated = estimate_plan(DSV3, *H200, "-dcp", "8", "--dcp-q-replicate")
    constants = plain["decode"]["constants"]
    assert (constants["allreduce_us"], constants["link_bytes_per_s"], constants["bandwidth_bytes_per_s"],
            constants["gemm_efficiency"]) == (11.64, 450e9, 4.272e12, 0.2166)
    more_bytes = LAYERS * 7 * (Q_SHARE * FP8_BLOCK + UK_SHARE * 2)
    assert more_bytes == 2_910_814_592
    assert replicated["decode"]["weights_bytes_read_batch1"] - plain["decode"]["weights_bytes_read_batch1"] == \
        pytest.approx(more_bytes, rel=1e-5)  # kvplan prices the attention group's blended fp8 bytes
    calls_ms = -LAYERS * math.log2(8) * 11.64e-3
    sent_ms = -LAYERS * 129_024 / 450e9 * 1e3
    read_ms = more_bytes / 4.272e12 * 1e3
    flops_ms = (2 * LAYERS * 7 * Q_SHARE * 16 / 1978.9e12 + 2 * LAYERS * 7 * UK_SHARE / 989.4e12) * 1e3 / 0.2166
    expected = calls_ms + sent_ms + read_ms + flops_ms
    assert expected == pytest.approx(-1.3116, abs=1e-4)
    one, other = _point(plain, 1), _point(replicated, 1)
    assert other["itl_ms"] - one["itl_ms"] == pytest.approx(expected, rel=1e-5)
    assert other["roofline_itl_ms"] - one["roofline_itl_ms"] == pytest.approx(read_ms, rel=1e-5)
    assert replicated["dcp_q_replicate"] is True and "dcp_q_replicate" not in plain


def test_weights_term_and_capacity():
    """The weights term grows by 61 x (7 x 4,718,592 x FP8_BLOCK + 16,777,216) = 3,038,740,864 B (2.83 GiB): the KV
    budget shrinks by as much, and the blocks and the concurrency with it."""
    plain = estimate_plan(DSV3, *H200, "-dcp", "8")
    replicated = estimate_plan(DSV3, *H200, "-dcp", "8", "--dcp-q-replicate")
    more = LAYERS * (7 * Q_SHARE * FP8_BLOCK + 8 * UK_SHARE * 2)
    assert more == 3_038_740_864
    lost = plain["engine"]["available_kv_cache_bytes"] - replicated["engine"]["available_kv_cache_bytes"]
    assert lost == pytest.approx(more, rel=1e-5)
    assert replicated["engine"]["num_gpu_blocks"] < plain["engine"]["num_gpu_blocks"]
    assert replicated["max_concurrency"] <= plain["max_concurrency"]


def test_prefill_pays_the_wider_projection():
    """Prefill's MHA path computes the group's heads too (layers/mla.py 0.32.0:222-242, then _local_view): every
    chunk reads and multiplies the wider q_b_proj, and no query gather is removed from it (MLA's prefill gathers the
    latent context, not the query): TTFT grows."""
    plain = estimate_plan(DSV3, *H200, "-dcp", "8", "--max-model-len", "32768")
    replicated = estimate_plan(DSV3, *H200, "-dcp", "8", "--max-model-len", "32768", "--dcp-q-replicate")
    assert replicated["prefill"]["ttft_ms"] > plain["prefill"]["ttft_ms"]


def test_off_and_dcp_1_change_nothing():
    """--no-dcp-q-replicate is vLLM's default; at -dcp 1 DeepseekV2MLAAttention does not turn it on."""
    plain = estimate_plan(DSV3, *H200, "-dcp", "8")
    off = estimate_plan(DSV3, *H200, "-dcp", "8", "--no-dcp-q-replicate")
    assert off["dcp_q_replicate"] is False
    # both spellings: the last typed wins, as argparse's BooleanOptionalAction has it
    assert estimate_plan(DSV3, *H200, "-dcp", "8", "--dcp-q-replicate", "--no-dcp-q-replicate")["dcp_q_replicate"] \
        is False
    assert estimate_plan(DSV3, *H200, "-dcp", "8", "--no-dcp-q-replicate", "--dcp-q-replicate")["dcp_q_replicate"] \
        is True
    assert off["decode"]["points"] == plain["decode"]["points"]
    assert off["engine"]["available_kv_cache_bytes"] == plain["engine"]["available_kv_cache_bytes"]
    alone = estimate_plan(DSV3, *H200, "--dcp-q-replicate")
    base = estimate_plan(DSV3, *H200)
    assert "dcp_q_replicate" not in alone
    assert alone["decode"]["points"] == base["decode"]["points"]


def test_gqa_model_ignores_it():
    """Qwen3-30B-A3B (GQA, 4 KV heads) at tp 8 -dcp 2: vLLM accepts the flag, and no GQA layer reads it: the same
    capacity and steps."""
    plain = estimate_plan(QWEN3, *H200, "-dcp", "2")
    replicated = estimate_plan(QWEN3, *H200, "-dcp", "2", "--dcp-q-replicate")
    assert replicated["engine"]["refusal"] is None and replicated["dcp_q_replicate"] is True
    assert replicated["decode"]["points"] == plain["decode"]["points"]
    assert replicated["engine"]["available_kv_cache_bytes"] == plain["engine"]["available_kv_cache_bytes"]


def test_release_before_0_29_refused():
    flag = "--dcp-q-replicate"
    result = run_kvplan("estimate", DSV3, "--gpu", "H200", "-tp", "8", "-dcp", "8", "--engine", "vllm==0.28.0", flag)
    assert one_error_line(result) == (
        f"kvplan: error: {flag} needs vLLM 0.29.0 or later (vllm==0.28.0 has no such flag: its "
        f"argparse stops at \"unrecognized arguments: {flag}\"); leave it off or pick a later release.")
    # the off spelling, as every boolean flag's negatives (engines/vllm_bool_flags.py, tests/test_bool_flags_s77.py)
    result = run_kvplan("estimate", DSV3, "--gpu", "H200", "-tp", "8", "-dcp", "8", "--engine", "vllm==0.28.0",
                        "--no-dcp-q-replicate")
    assert one_error_line(result) == (
        "kvplan: error: --no-dcp-q-replicate needs vLLM 0.29 or later (vllm==0.28.0 has no --dcp-q-replicate and "
        "stops on that spelling); leave it out.")
    assert estimate_plan(DSV3, "--gpu", "H200", "-tp", "8", "-dcp", "8", "--engine", "vllm==0.29.0",
                         "--dcp-q-replicate")["engine"]["refusal"] is None


def test_head_padding_backend_refused():
    """CUTLASS_MLA pads the query to 128 heads (cutlass_mla.py 0.32.0:134); MLAAttention asserts a replicated query
    keeps a rank's heads at that (mla_attention.py 0.32.0:1233-1238). kvplan's 0.29+ picks FLASHINFER_MLA on SM10x
    for the bundled MLA models, so the rule is asked directly."""
    from kvplan.engines.vllm_dcp import dcp_refusal, padding_refusal
    from kvplan.model.sources import resolve

    spec = resolve(DSV3)
    refusal = padding_refusal(spec, 8, "CUTLASS_MLA")
    assert refusal is not None and refusal.reason.endswith(
        "AssertionError: DCP query replication is unsupported on head-padding MLA backends (q_pad_num_heads).")
    assert padding_refusal(spec, 1, "CUTLASS_MLA") is None  # 128 heads a rank: no padding
    assert padding_refusal(spec, 8, "FLASHMLA") is None
    assert dcp_refusal(spec, 8, 8, "CUTLASS_MLA", "0.32.0", True) is not None
    assert dcp_refusal(spec, 8, 8, "CUTLASS_MLA", "0.32.0", None) is None


def test_deployment_file_takes_a_boolean(tmp_path):
    good = deployments_file(tmp_path, f"  - name: a\n    model: {DSV3}\n    gpu: H200\n    tp: 8\n"
                                      f"    dcp: 8\n    dcp_q_replicate: true\n")
    assert run_kvplan("check", "--file", str(good)).returncode == 0
    bad = deployments_file(tmp_path, f"  - name: a\n    model: {DSV3}\n    gpu: H200\n    tp: 8\n"
                                     f"    dcp: 8\n    dcp_q_replicate: 'yes'\n")
    result = run_kvplan("check", "--file", str(bad))
    assert result.returncode == 2 and "dcp_q_replicate" in result.stderr and "true or false" in result.stderr
