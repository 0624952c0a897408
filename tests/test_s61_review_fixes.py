"""Fixes for the s61 reviewer's findings: Kimi Delta Attention reads --mamba-ssm-cache-dtype from vLLM 0.30 (1), the
CUDA-graph capture grid by release (2), the DeepSeek specs' YaRN rope_scaling (3), the --disable-sliding-window note
where RoPE sets the length (4), Model Runner V2's FULL graphs under speculative decoding (5), a refused
disable_sliding_window said on its own key (6). Expected numbers come from vLLM's sources read by hand (file:line,
release) or from hand arithmetic, never from the code under test."""

from __future__ import annotations

import json

import pytest

from conftest import deployments_file, estimate_plan, line_of, one_error_line, run_kvplan
from kvplan import api
from kvplan.errors import FieldError
from kvplan.model.kinds import LinearState
from kvplan.verify.layout import _state_group
from kvplan.verify.terms import capture_sizes

KIMI = "moonshotai/Kimi-Linear-48B-A3B-Instruct"
KIMI_ARGS = (KIMI, "--gpu", "H100", "-tp", "2", "--max-model-len", "4096")


# 1. Kimi Delta Attention and --mamba-ssm-cache-dtype ------------------------------------------------------------
# Kimi-Linear's config (model_specs): linear_attn_config num_heads 32, head_dim 128, short_conv_kernel_size 4, 20 KDA
# layers of 27 (7 MLA). One sequence's KDA state on one of 2 ranks (mamba_utils.py kda_state_shape): a convolution
# window of (4 - 1) x 3 x 16 x 128 = 18,432 bf16 values = 36,864 B, and a 16 x 128 x 128 = 262,144-value recurrent
# state: float32 1,048,576 B (page 1,085,440 B), bfloat16 524,288 B (page 561,152 B). vLLM 0.34.0's own
# MambaStateShapeCalculator.kda_state_shape(2, 32, 128, conv_kernel_size=4) gives ((3, 6144), (16, 128, 128)).
KDA_PAGE_FP32 = 36_864 + 1_048_576
KDA_PAGE_BF16 = 36_864 + 524_288


def _kimi(version: str, ssm: str) -> dict:
    return estimate_plan(*KIMI_ARGS, "--engine", f"vllm=={version}", "--mamba-ssm-cache-dtype", ssm)


def test_kda_state_pages_by_hand():
    assert (KDA_PAGE_FP32, KDA_PAGE_BF16) == (1_085_440, 561_152)


@pytest.mark.parametrize("version", ["0.30.0", "0.32.0", "0.34.0"])
def test_kda_keeps_a_bfloat16_recurrent_state_from_vllm_030(version):
    """kda_state_dtype keeps bfloat16 as asked (mamba_utils.py 0.30.0:133-147), and Kimi-Linear's class passes the
    flag from 0.30.0 (models/kimi_k3/nvidia/model.py 0.30.0:1674-1678, kda.py :545-549; 0.34.0 model.py:1600-1604,
    kda.py:583-587): the state is 20 x 561,152 B, and the hybrid block that holds one state page in MLA latents of
    576 x 2 B = 1,152 B a token drops from 1,024 (8 x 128 tokens: 1,085,440 / (128 x 1,152) = 7.4) to 512 (4 x 128:
    561,152 / 147,456 = 3.8)."""
    auto, bf16 = _kimi(version, "auto"), _kimi(version, "bfloat16")
    assert auto["state_bytes_per_sequence_per_gpu"] == 20 * KDA_PAGE_FP32 == 21_708_800
    assert bf16["state_bytes_per_sequence_per_gpu"] == 20 * KDA_PAGE_BF16 == 11_223_040
    assert (auto["block_size"], bf16["block_size"]) == (1024, 512)
    assert bf16["max_concurrency"] > auto["max_concurrency"]
    assert _kimi(version, "float32")["state_bytes_per_sequence_per_gpu"] == 20 * KDA_PAGE_FP32


def test_kda_ignores_the_flag_up_to_vllm_029():
    """0.29's kda_state_dtype takes --mamba-cache-dtype alone and returns float32 (mamba_utils.py 0.29.0:132-138;
    model.py 0.29.0:1660-1662 passes no SSM dtype): bfloat16 and float16 change nothing and start."""
    for ssm in ("bfloat16", "float16"):
        plan = _kimi("0.29.0", ssm)
        assert plan["state_bytes_per_sequence_per_gpu"] == 20 * KDA_PAGE_FP32 and plan["block_size"] == 1024
        assert plan["max_concurrency"] > 0
    r = run_kvplan("estimate", *KIMI_ARGS, "--engine", "vllm==0.29.0", "--mamba-ssm-cache-dtype", "bfloat16")
    note = " ".join(r.stdout.split())
    assert "is not read by these layers in vLLM 0.29.0" in note
    assert "Kimi Delta Attention reads it from vLLM 0.30" in note


def test_kda_note_from_030_says_the_dtype_kept():
    r = run_kvplan("estimate", *KIMI_ARGS, "--engine", "vllm==0.32.0", "--mamba-ssm-cache-dtype", "bfloat16")
    note = " ".join(r.stdout.split())
    assert "their temporal (SSM) state in bfloat16" in note and "not read by these layers" not in note
    r = run_kvplan("estimate", *KIMI_ARGS, "--engine", "vllm==0.32.0", "--mamba-ssm-cache-dtype", "auto")
    assert "state in float32 (Kimi Delta Attention's 'auto' is float32)" in " ".join(r.stdout.split())


KDA_REFUSAL = "KDA recurrent state supports only auto, float32, and bfloat16; got float16"  # mamba_utils.py 0.30.0:145


@pytest.mark.parametrize("version", ["0.30.0", "0.34.0"])
def test_kda_refuses_a_float16_state_from_030(version):
    """kda_state_dtype raises ValueError for float16 (mamba_utils.py 0.30.0:140-147), met in VllmConfig.__post_init__'s
    hybrid hook: vLLM does not start, whatever the memory."""
    (result,) = api.check(KIMI, gpu="H100", tensor_parallel_size=2, max_model_len=4096,
                          engine=f"vllm=={version}", mamba_ssm_cache_dtype="float16")
    assert result["max_concurrency"] == 0
    (error,) = result["errors"]
    assert KDA_REFUSAL in error and "mamba_ssm_cache_dtype auto, float32 or bfloat16" in error


def test_check_file_says_the_kda_refusal_on_its_key(tmp_path):
    path = deployments_file(tmp_path, f"  - name: kimi\n    model: {KIMI}\n    gpu: H100\n    tp: 2\n"
                                      "    context: 4096\n    mamba_ssm_cache_dtype: float16\n")
    r = run_kvplan("check", "--file", path)
    assert r.returncode == 1
    line = line_of(path, "mamba_ssm_cache_dtype", "name: kimi")
    assert f"{path}:{line}): vLLM 0.32.0 does not start: {KDA_REFUSAL}" in " ".join(r.stdout.split())


def test_cli_api_and_file_agree_on_the_bfloat16_state(tmp_path):
    cli = _kimi("0.32.0", "bfloat16")
    (plan,) = api.estimate(KIMI, gpu="H100", tensor_parallel_size=2, max_model_len=4096, engine="vllm==0.32.0",
                           mamba_ssm_cache_dtype="bfloat16")
    path = deployments_file(tmp_path, f"  - name: kimi\n    model: {KIMI}\n    gpu: H100\n    tp: 2\n"
                                      "    context: 4096\n    mamba_ssm_cache_dtype: bfloat16\n")
    r = run_kvplan("check", "--file", path, "--format", "json")
    (result,) = json.loads(r.stdout)["results"]
    assert cli["max_concurrency"] == plan.max_concurrency == result["max_concurrency"]
    assert cli["block_size"] == plan.block_size == result["engine"]["block_size"] == 512


def _kda_layer(ssm_bytes: int) -> LinearState:
    """A KDA layer of Kimi-Linear's shape (heads 32, head_dim 128, kernel 4): conv 3 x 3 x 4,096, state 32 x 128^2."""
    return LinearState(32, 3 * 3 * 4096, 32 * 128 * 128, "kda", conv_window=3, ssm_bytes=ssm_bytes)


def test_verify_keeps_kda_in_float32_and_refuses_a_bfloat16_state():
    """verify's KDA runs a float32 recurrent state only (gpu/caches.py): the engine's float32 state (the layer's own,
    or --mamba-ssm-cache-dtype float32) gives two tensors per slot, [slots, 18,432] bf16 and [slots, 262,144] fp32
    at TP 2; a bfloat16 one is refused in one sentence naming the flag."""
    for layer, dtypes in ((_kda_layer(4), ("bf16", "fp32")), (_kda_layer(0), ("bf16", "fp32"))):
        group = _state_group("kda", layer, (0,), 8, 2, dtypes)
        assert group.tensor_shapes == ((8, 18_432), (8, 262_144)) and group.dtypes == ("bf16", "fp32")
    with pytest.raises(FieldError) as caught:
        _state_group("kda", _kda_layer(0), (0,), 8, 2, ("bf16", "bf16"))
    assert caught.value.field == "mamba_ssm_cache_dtype" and "float32 only" in str(caught.value)


def test_verify_refuses_a_bfloat16_kda_state_before_torch(monkeypatch):
    """verify --mamba-ssm-cache-dtype bfloat16 on Kimi-Linear: refused in one line under 0.30+ (the engine would keep
    the state bfloat16); under 0.29 (float32 whatever) and with float32 it goes on to the GPU (stopped here)."""
    from kvplan.errors import KvplanError
    from kvplan.gpu import nvml

    def stop():
        raise KvplanError("stopped before torch")

    monkeypatch.setattr(nvml, "import_stack", stop)
    line = one_error_line(run_kvplan("verify", KIMI, "--mamba-ssm-cache-dtype", "bfloat16"))
    assert "--mamba-ssm-cache-dtype bfloat16 is not run by verify" in line and "float32 one only" in line
    for args in (("--mamba-ssm-cache-dtype", "float32"), ("--mamba-ssm-cache-dtype", "bfloat16", "--engine",
                                                          "vllm==0.29.0")):
        assert one_error_line(run_kvplan("verify", KIMI, *args)) == "kvplan: error: stopped before torch"


# 2. The default CUDA-graph capture grid by release -------------------------------------------------------------
EIGHT_STEP_512 = [1, 2, 4] + list(range(8, 513, 8))  # config/__init__.py 0.11.0:594-597 at cap 512: 3 + 64 sizes


def test_capture_grid_before_0111_steps_by_8():
    """0.11.0: [1, 2, 4] + range(8, cap + 1, 8) (config/__init__.py 0.11.0:594-597), cap min(2 x max_num_seqs, 512)
    (config/scheduler.py 0.11.0:227); 67 sizes at 512, as the gpt-oss hook's comment says ("from 67 to 81",
    models/config.py 0.11.0:256-258). 0.11.1 steps by 16 from 256 (config/vllm.py 0.11.1:876-888): 3 + 31 + 17."""
    assert capture_sizes("0.11.0", 1024, 8192) == EIGHT_STEP_512 and len(EIGHT_STEP_512) == 67
    assert capture_sizes("0.10.0", 1024, 8192) == EIGHT_STEP_512
    assert len(capture_sizes("0.11.1", 1024, 8192)) == 3 + 31 + 17 == 51


def test_capture_grid_cap_by_release():
    """The PIECEWISE sizes at max_num_seqs 64: 0.9.2's cuda_graph_sizes default is [512] whatever max_num_seqs
    (config.py 0.9.2:2133), so 67 sizes; 0.10.0 caps at min(2 x 64, 512) = 128 (config.py 0.10.0:2456):
    [1, 2, 4] + 8..128 = 19."""
    from kvplan.engines.vllm_graphs import graph_counts, shared_sizes

    assert shared_sizes((0, 9, 2), 64, 8192) == EIGHT_STEP_512
    assert shared_sizes((0, 10, 0), 64, 8192) == [1, 2, 4] + list(range(8, 129, 8))
    assert graph_counts((0, 10, 2), 64, 8192).piecewise == 19


def test_capture_grid_before_0111_bounds_1_2_4_by_the_batched_tokens_only():
    """0.11.0 adds 1, 2, 4 whatever the cap and filters by max_num_batched_tokens alone (:594-610): max_num_seqs 1
    (cap 2) keeps 4; max_num_batched_tokens 3 drops it. vLLM 0.11.0's own _set_cudagraph_sizes, run on CPU, gives
    [1, 2, 4] for (max_num_seqs 1, 8192 tokens)."""
    from kvplan.engines.vllm_graphs import shared_sizes

    assert shared_sizes((0, 11, 0), 1, 8192) == [1, 2, 4]
    assert shared_sizes((0, 11, 0), 1, 3) == [1, 2]
    assert shared_sizes((0, 11, 1), 1, 8192) == [1, 2]  # 0.11.1 bounds them by the cap (config/vllm.py :876-879)


def test_gpt_oss_0110_keeps_its_81_sizes():
    """gpt-oss's 0.11.0 hook sets its own list, [1, 2, 4] + 8..248 + 256..992 step 16 = 3 + 31 + 47 = 81
    (models/config.py 0.11.0:262-269)."""
    assert len(capture_sizes("0.11.0", 1024, 8192, architecture="GptOssForCausalLM")) == 81


# 3. DeepSeek's YaRN rope_scaling ----------------------------------------------------------------------------------
DEEPSEEKS = ["deepseek-ai/DeepSeek-V3", "deepseek-ai/DeepSeek-R1", "deepseek-ai/DeepSeek-V2-Lite"]


@pytest.mark.parametrize("model", DEEPSEEKS)
def test_deepseek_specs_carry_yarn_and_011_refuses_the_window_switch(model):
    """The configs' rope_scaling is YaRN, factor 40 over original_max_position_embeddings 4096 (tt-metal's V3 config;
    mlc-llm's deepseek_v2_lite preset): 0.4.3-0.11.x raise NotImplementedError for --disable-sliding-window beside it
    (config/model.py 0.11.0:1847-1855), 0.12 starts; the length stays 4,096 x 40 = 163,840."""
    (refused,) = api.check(model, gpu="H200", tensor_parallel_size=8, engine="vllm==0.11.0",
                           disable_sliding_window=True)
    assert refused["max_concurrency"] == 0
    assert "Disabling sliding window is not supported for models with rope_scaling" in refused["errors"][0]
    (started,) = api.check(model, gpu="H200", tensor_parallel_size=8, engine="vllm==0.12.0",
                           disable_sliding_window=True)
    assert started["max_concurrency"] > 0 and started["context"] == 4096 * 40 == 163_840
    (plain,) = api.check(model, gpu="H200", tensor_parallel_size=8, engine="vllm==0.11.0")
    assert plain["max_concurrency"] > 0 and plain["context"] == 163_840


# 4. The window note where RoPE sets the length ------------------------------------------------------------------
def _window_note(version: str) -> str:
    r = run_kvplan("estimate", "openai/gpt-oss-20b", "--gpu", "H100", "--engine", f"vllm=={version}",
                   "--disable-sliding-window", "--max-model-len", "100")
    assert r.returncode == 0, r.stderr
    return " ".join(r.stdout.split())


def test_gpt_oss_window_note_says_the_rope_rule_set_the_length():
    """gpt-oss's window is 128; 0.12-0.29 replace the capped length by YaRN's original x factor, 4,096 x 32 =
    131,072 (config/model.py 0.12.0:2220-2221); from 0.30 YaRN leaves it (0.30.0:2471-2478), so 128 stands."""
    assert ("vLLM caps the model's length to the window, 128 tokens, then its RoPE scaling rule sets it to 131,072 "
            "tokens") in _window_note("0.12.0")
    assert "capped to the window, 131,072" not in _window_note("0.29.0")
    assert "the model's length is capped to the window, 128 tokens, as vLLM caps it" in _window_note("0.32.0")


# 5. Model Runner V2's FULL graphs under speculative decoding -------------------------------------------------------
def test_v2_rounds_sizes_1_and_2_up_to_the_query_length():
    """V2 rounds every capture size up to q and keeps those within the largest size and max_num_seqs x q, with no
    lower bound (v1/worker/gpu/cudagraph_utils.py 0.32.0:316-335). q = 3 (2 speculative tokens), sizes 1, 2, 4,
    8..128: 3, 3, 6, 9, 18, 24, 33, 42, 48, 57, 66, 72, 81, 90, 96, 105, 114, 120 (129 > 128 dropped) = 17 distinct,
    largest 120; vLLM 0.32.0's own CudaGraphManager._init_candidates, run on CPU, lists these 17."""
    from kvplan.engines.vllm_graphs import _full_token_counts

    sizes = [1, 2, 4] + list(range(8, 129, 8))
    assert _full_token_counts(sizes, 1024, 3) == [3, 6, 9, 18, 24, 33, 42, 48, 57, 66, 72, 81, 90, 96, 105, 114, 120]
    plan = estimate_plan("meta-llama/Llama-3.1-8B", "--gpu", "H100", "--speculative-config",
                         '{"method":"ngram","num_speculative_tokens":2,"prompt_lookup_max":4}',
                         "--max-cudagraph-capture-size", "128")
    graphs = next(t["source"] for t in plan["budget"]["terms"] if "capturing" in t.get("source", ""))
    assert "PIECEWISE=19 (largest=128), FULL=17 (largest=120)" in graphs


# 6. A refused disable_sliding_window said on its own key -------------------------------------------------------
def test_gemma3n_window_switch_is_refused_on_its_key(tmp_path):
    path = deployments_file(tmp_path, "  - name: g3n\n    model: google/gemma-3n-E2B\n    gpu: H100\n    tp: 1\n"
                                      "    context: 4096\n    disable_sliding_window: true\n")
    r = run_kvplan("check", "--file", path)
    assert r.returncode == 2 and r.stdout == ""
    line = line_of(path, "disable_sliding_window", "name: g3n")
    (said,) = r.stderr.strip().splitlines()
    assert said.startswith(f"kvplan: error: {path}:{line}: deployment 'g3n' field 'disable_sliding_window': ")
    assert "its KV-sharing layers take another layer's cache once the window is gone" in said
    cli = run_kvplan("estimate", "google/gemma-3n-E2B", "--gpu", "H100", "--disable-sliding-window")
    assert cli.returncode == 2 and cli.stderr.startswith("kvplan: error: --disable-sliding-window is not modelled")
