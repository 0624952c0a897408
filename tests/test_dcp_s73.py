"""vLLM's decode context parallelism (-dcp D, engines/vllm_dcp.py), figures by hand arithmetic:

- the pages a rank holds are dcp 1's, so num_gpu_blocks is unchanged; a request of L tokens needs cdiv(cdiv(L, D),
  block) blocks a rank (v1/kv_cache_interface.py 0.32.0:602-607 FullAttentionSpec.max_memory_usage_bytes), so
  concurrency = blocks / that and (0.20.1 on) tokens = int(concurrency x L) (v1/core/kv_cache_utils.py 0.32.0:2302);
- up to 0.20.0 tokens = blocks x block x D after a "Multiplying ..." line (kv_cache_utils.py 0.12.0:1274-1283);
- GQA: tp must exceed the KV heads (config/model.py 0.32.0:1565-1592), so Llama-3.1-70B (8 KV heads) at tp 8 is
  refused at any D and passes at tp 16, D 2;
- the refusals: D 0, D not dividing tp, a release before 0.10.2, verify, 0.10.2's backends without the LSE.
"""

from __future__ import annotations

import json

from conftest import estimate_plan, one_error_line, run_kvplan

DSV3 = "deepseek-ai/DeepSeek-V3"
LLAMA70 = "meta-llama/Llama-3.1-70B-Instruct"
H200 = ("--gpu", "H200", "-tp", "8")


def test_deepseek_v3_dcp8_on_h200_0_32():
    one = estimate_plan(DSV3, *H200)["engine"]
    eight = estimate_plan(DSV3, *H200, "-dcp", "8")["engine"]
    blocks = one["num_gpu_blocks"]
    assert eight["num_gpu_blocks"] == blocks  # one rank's pages, one rank's budget
    assert one["block_size"] == eight["block_size"] == 16  # the page block (FLASH_ATTN_MLA's 16 for bf16, 0.32)
    length = 163_840  # DeepSeek-V3's max_position_embeddings
    # dcp 1: 163,840 / 16 = 10,240 blocks a request; dcp 8: cdiv(163,840 / 8 = 20,480, 16) = 1,280
    assert one["max_concurrency"] == blocks / 10_240
    assert eight["max_concurrency"] == blocks / 1_280
    # tokens = int(concurrency x L): L / 10,240 = 16 and L / 1,280 = 128 tokens a block, exactly
    assert one["gpu_kv_cache_tokens"] == 16 * blocks
    assert eight["gpu_kv_cache_tokens"] == 128 * blocks
    assert eight["log_lines"][-1] == (f"GPU KV cache size: {128 * blocks:,} tokens, Maximum concurrency for "
                                      f"163,840 tokens per request: {blocks / 1_280:.2f}x")


def test_deepseek_v3_dcp8_per_request_bytes_shrink():
    """A rank keeps 20,480 of a request's 163,840 tokens: an eighth of dcp 1's bytes a request."""
    one = estimate_plan(DSV3, *H200)
    eight = estimate_plan(DSV3, *H200, "-dcp", "8")
    assert one["kv_bytes_per_sequence_per_gpu"] == 8 * eight["kv_bytes_per_sequence_per_gpu"]
    assert eight["max_concurrency"] > 8 * one["max_concurrency"] - 8


def test_multiply_line_up_to_0_20():
    """0.14.0 on Hopper: FlashMLA's forced block 64 (platforms/cuda.py up to 0.17); tokens = blocks x 64 x 8."""
    engine = estimate_plan(DSV3, *H200, "-dcp", "8", "--engine", "vllm==0.14.0")["engine"]
    blocks = engine["num_gpu_blocks"]
    assert engine["block_size"] == 64
    assert "Multiplying the GPU KV cache size by the cp_world_size 8 (pcp_world_size 1 * dcp_world_size 8)." \
        in engine["log_lines"]
    assert engine["gpu_kv_cache_tokens"] == blocks * 64 * 8
    # cdiv(163,840 / 8, 64) = 320 blocks a request
    assert engine["max_concurrency"] == blocks / 320
    older = estimate_plan(DSV3, *H200, "-dcp", "8", "--engine", "vllm==0.11.0")["engine"]
    assert "Multiplying the GPU KV cache size by the dcp_world_size 8." in older["log_lines"]


def test_llama_70b_gqa_refused_at_tp8_and_served_at_tp16():
    refused = estimate_plan(LLAMA70, "--gpu", "H200", "-tp", "8", "-dcp", "2")["engine"]
    assert not refused["starts"]
    assert ("Decode context parallelism for GQA/MQA requires `--tensor-parallel-size` (8) to be greater than the "
            "model's total number of KV heads (8).") in refused["refusal"]["reason"]
    served = estimate_plan(LLAMA70, "--gpu", "H200", "-tp", "16", "-dcp", "2")["engine"]
    # one KV head a rank at tp 16 (8 heads replicated in pairs); cdiv(131,072 / 2, 16) = 4,096 blocks a request
    assert served["starts"] and served["max_concurrency"] == served["num_gpu_blocks"] / 4_096
    too_many = estimate_plan(LLAMA70, "--gpu", "H200", "-tp", "16", "-dcp", "4")["engine"]
    assert "exceeds the maximum supported value (2)" in too_many["refusal"]["reason"]


def test_0_10_2_default_backend_returns_no_lse():
    engine = estimate_plan(DSV3, *H200, "-dcp", "8", "--engine", "vllm==0.10.2")["engine"]
    assert not engine["starts"]
    assert "the impl FlashMLAImpl does not return the softmax lse for decode" in engine["refusal"]["reason"]


def test_interleave_must_divide_the_block():
    engine = estimate_plan(DSV3, *H200, "-dcp", "2", "--cp-kv-cache-interleave-size", "3")["engine"]
    assert "Block_size(16) should be greater than or equal to and divisible by cp_kv_cache_interleave_size (3)." \
        in engine["refusal"]["reason"]
    assert estimate_plan(DSV3, *H200, "-dcp", "2", "--dcp-kv-cache-interleave-size", "16")["engine"]["starts"]


def test_bad_input_one_line():
    assert "-dcp must be a whole number" in one_error_line(run_kvplan("estimate", DSV3, *H200, "-dcp", "0"))
    line = one_error_line(run_kvplan("estimate", DSV3, *H200, "-dcp", "3"))
    assert "tp_size=8 must be divisible by dcp_size=3" in line
    line = one_error_line(run_kvplan("estimate", DSV3, *H200, "-dcp", "8", "--engine", "vllm==0.10.1"))
    assert "needs vLLM 0.10.2 or later" in line
    line = one_error_line(run_kvplan("verify", DSV3, "-dcp", "8"))
    assert "-dcp is not measured by verify" in line
    line = one_error_line(run_kvplan("estimate", "google/gemma-3-27b-it", "--gpu", "H200", "-tp", "8", "-dcp", "2"))
    assert "sliding" in line


def test_check_file_key(tmp_path):
    path = tmp_path / "d.yaml"
    path.write_text(f"deployments:\n  - name: a\n    model: {DSV3}\n    gpu: H200\n    tp: 8\n    dcp: 8\n"
                    f"    min_concurrency: 20\n", encoding="utf-8")
    result = run_kvplan("check", "--file", path, "--format", "json")
    assert result.returncode == 0, result.stderr
    path.write_text(f"deployments:\n  - name: a\n    model: {DSV3}\n    gpu: H200\n    tp: 8\n    dcp: 3\n",
                    encoding="utf-8")
    assert "tp_size=8 must be divisible by dcp_size=3" in one_error_line(run_kvplan("check", "--file", path))


def test_api_keyword():
    from kvplan import api

    (plan,) = api.estimate(DSV3, gpu="H200", tensor_parallel_size=8, decode_context_parallel_size=8)
    data = plan.to_dict() if hasattr(plan, "to_dict") else json.loads(json.dumps(plan, default=vars))
    assert data["engine"]["gpu_kv_cache_tokens"] == 128 * data["engine"]["num_gpu_blocks"]


def test_decode_reads_each_gpus_share_of_the_sequence():
    """Under -dcp 8 a GPU holds and reads every 8th token: DeepSeek-V3's latent is (512 + 64) x 2 B = 1,152 B a token
    a layer, 61 layers = 70,272 B a token; the full 163,840 tokens read 11,513,364,480 B, a share of 20,480 tokens
    1,439,170,560 B; the plan still names the request's whole length."""
    one = estimate_plan(DSV3, *H200)["decode"]
    eight = estimate_plan(DSV3, *H200, "-dcp", "8")["decode"]
    assert one["kv_bytes_read_per_sequence"] == 163_840 * 70_272 == 11_513_364_480
    assert eight["kv_bytes_read_per_sequence"] == 20_480 * 70_272 == 1_439_170_560
    assert one["context"] == eight["context"] == 163_840
    # the roofline reads an eighth of the cache; the engine estimate adds DCP's exchange (test_dcp_cost_s74.py)
    assert eight["points"][0]["roofline_itl_ms"] < one["points"][0]["roofline_itl_ms"]


def test_nothing_fits_names_the_dcp_degrees_tried():
    """Where no remedy holds a request, the sentence lists -dcp beside the TP, fp8 and pipeline searches: DeepSeek-V3
    (MLA, every layer) at tp 8 on vLLM 0.32 tries D = 2, 4, 8; vLLM 0.10.1 (no flag), Llama-3.1-70B (vLLM's KV-head
    check refuses every D at tp 8) and Gemma 3 (sliding windows) try none."""
    from kvplan.cli.flags import flag
    from kvplan.engines import get_engine
    from kvplan.model.precision import resolve_kv_dtype
    from kvplan.model.sources import resolve
    from kvplan.plan.plan import remedy_reach

    def reach(model: str, version: str):
        spec = resolve(model)
        return remedy_reach(spec, 8, 1, resolve_kv_dtype("auto", spec.dtype), None, version,
                            get_engine(f"vllm=={version}"))

    v3 = reach(DSV3, "0.32.0")
    assert v3.dcp == 8
    assert "--decode-context-parallel-size up to 8" in v3.nothing(flag, "makes it fit")
    assert reach(DSV3, "0.10.1").dcp == 0
    assert reach(LLAMA70, "0.32.0").dcp == 0  # 8 KV heads at tp 8: vLLM's head check refuses every D
    gemma = reach("google/gemma-3-27b-it", "0.32.0")  # sliding-window layers: vLLM's DCP takes none
    assert gemma.dcp == 0 and "decode-context" not in gemma.nothing(flag, "makes it fit")
