"""What vLLM 0.33.0 and 0.34.0 refuse that 0.32.0 did not, and sparse MLA on GPUs no sparse backend runs on. Each
figure comes from vLLM's source read by hand (paths under vllm/ of the release named) or from hand arithmetic:

- --kv-cache-dtype octave_k3v4 / octave_k3v3 / octave_k3v3_compact: listed from 0.33.0 (config/cache.py:58-60, absent
  from 0.32.0's CacheDType); one backend takes them, ROCm's ROCM_OCTAVE (v1/attention/backends/rocm_octave_attn.py
  :95-99; every CUDA backend's supported_kv_cache_dtypes lacks them), so on CUDA platforms/cuda.py raises "No valid
  attention backend found" (0.33.0 :471-475). The slot (v1/attention/ops/rocm_octave.py:101-180, layout in its
  docstring "[k_rope codes][k_nope codes][v codes][fp16 scales][pad to 8]", compact pads to 4), at head_size 256 with
  64 rotary dims: k3v4 64 x 4 / 8 + 192 x 3 / 8 + 256 x 4 / 8 + 2 x (4 + 1) = 32 + 72 + 128 + 10 = 242 -> 248;
  k3v3 32 + 72 + 96 + 10 = 210 -> 216; compact 256 x 3 / 8 + 96 + 2 x 2 = 196 (a multiple of 4).
- an explicit float16 / bfloat16 cache other than the model's dtype: config/vllm.py 0.33.0:1492-1508
  (_reject_mismatched_float_kv_cache, called at :1540 after try_verify_and_update_config at :1539, where
  model_executor/models/config.py:84-86 turns DeepSeek-V3.2's bfloat16 into auto); 0.34.0 :1431-1447, :1483-1484.
- sparse MLA (DeepSeek-V3.2, GLM-5.x) on compute capability 8.x: every sparse backend's supports_compute_capability
  wants major 9 or 10 (v1/attention/backends/mla/flashmla_sparse.py 0.11.1 :86-87; FLASHINFER_MLA_SPARSE 10,
  FLASH_ATTN_MLA_SPARSE 9, FLASHINFER_MLA_SPARSE_SM90 9) or 12 (FLASHINFER_MLA_SPARSE_SM120, 0.24 on), so
  platforms/cuda.py raises "No valid attention backend found for cuda" (0.11.1 :412, 0.32.0 :471, 0.34.0 :514);
  0.11.0 picks FlashMLASparseBackend on any GPU (cuda.py:252-255) and fails at its first kernel.
- registry (model_executor/models/registry.py): BeamForCausalLM first in 0.33.0 (:83); Keye's two architectures
  dropped in 0.34.0, "supported in vLLM until v0.33.0" (_PREVIOUSLY_SUPPORTED_MODELS :937-938, message :1313-1318).
"""

import json

import pytest

from conftest import deployments_file as deployments, line_of, run_kvplan

from kvplan.api import estimate

V32, GLM5, QWEN3 = "deepseek-ai/DeepSeek-V3.2", "zai-org/GLM-5.2", "Qwen/Qwen3-8B"


def flat(text: str) -> str:
    return " ".join(text.split())


def refusal_of(plan) -> dict:
    return plan.to_dict()["engine"]["refusal"] or {}


# -- octave_*: listed from 0.33, ROCm only ------------------------------------------------------------------------

@pytest.mark.parametrize("dtype,head,expected", [
    ("octave_k3v4", 256, 248), ("octave_k3v3", 256, 216), ("octave_k3v3_compact", 256, 196),
    # head 128 (64 rotary): k3v4 32 + 24 + 64 + 2 x 3 = 126 -> 128; k3v3 32 + 24 + 48 + 6 = 110 -> 112;
    # compact 48 + 48 + 4 = 100
    ("octave_k3v4", 128, 128), ("octave_k3v3", 128, 112), ("octave_k3v3_compact", 128, 100),
])
def test_octave_slot_bytes_by_hand(dtype, head, expected):
    from kvplan.model.precision import resolve_kv_dtype

    assert resolve_kv_dtype(dtype, "bf16").head_bytes(head) == expected


def test_octave_is_a_choice_from_0_33_only():
    r = run_kvplan("estimate", QWEN3, "--gpu", "h100", "--kv-cache-dtype", "octave_k3v4")  # the default 0.32.0
    assert r.returncode == 2
    assert "octave_k3v4 is not a choice of vLLM 0.32.0 (first listed in 0.33.0)" in r.stderr
    for release in ("0.33.0", "0.34.0"):
        (plan,) = estimate(QWEN3, gpu="h100", max_model_len=32768, kv_cache_dtype="octave_k3v3_compact",
                           engine=f"vllm=={release}")
        assert refusal_of(plan)["configuration"] is True, release


def test_octave_on_a_cuda_gpu_finds_no_attention_backend():
    (plan,) = estimate(QWEN3, gpu="h100", max_model_len=32768, kv_cache_dtype="octave_k3v4", engine="vllm==0.33.0")
    refusal = refusal_of(plan)
    assert refusal["field"] == "kv_dtype" and plan.max_concurrency == 0
    assert refusal["reason"].startswith("No valid attention backend found for cuda with kv_cache_dtype octave_k3v4")
    assert "ROCM_OCTAVE" in refusal["reason"]
    assert refusal["remedy"] == "it starts with kv_cache_dtype fp8, auto"
    text = flat(run_kvplan("estimate", QWEN3, "--gpu", "h100", "--max-model-len", "32768", "--kv-cache-dtype",
                           "octave_k3v4", "--engine", "vllm==0.33.0").stdout)
    assert ("max len 32,768 octave_k3v4 tp 1 does not start: vllm 0.33.0 refuses the configuration: No valid "
            "attention backend found for cuda with kv_cache_dtype octave_k3v4; it starts with --kv-cache-dtype fp8, "
            "auto.") in text


def test_octave_on_rocm_is_not_modelled_yet():
    r = run_kvplan("estimate", QWEN3, "--gpu", "mi300x", "--kv-cache-dtype", "octave_k3v4", "--engine", "vllm==0.33.0")
    assert r.returncode == 2 and r.stdout == ""
    assert "octave_k3v4 on ROCm is not modelled yet" in r.stderr and len(r.stderr.strip().splitlines()) == 1


# -- a 16-bit cache other than the model's dtype, from 0.33 -------------------------------------------------------

def test_float16_cache_on_a_bfloat16_model_is_refused_from_0_33():
    (old,) = estimate(QWEN3, gpu="h100", max_model_len=32768, kv_cache_dtype="float16", engine="vllm==0.32.0")
    assert old.max_concurrency > 0  # 0.32.0 has no such check
    for release in ("0.33.0", "0.34.0"):
        (plan,) = estimate(QWEN3, gpu="h100", max_model_len=32768, kv_cache_dtype="float16",
                           engine=f"vllm=={release}")
        refusal = refusal_of(plan)
        # 0.33.0 config/vllm.py:1505-1508, its f-strings filled in by hand
        assert refusal["reason"] == ('kv_cache_dtype="float16" is incompatible with dtype="bfloat16". Please set '
                                     '`--kv-cache-dtype` to `auto` or `bfloat16`.')
        assert refusal["field"] == "kv_dtype" and plan.max_concurrency == 0
        assert refusal["remedy"] == "it starts with kv_cache_dtype auto, bfloat16"


def test_the_models_own_16_bit_dtype_and_auto_pass():
    for dtype in ("bfloat16", "auto"):  # bf16, kvplan's result name, is refused as input (test_check_gate_s77.py)
        (plan,) = estimate(QWEN3, gpu="h100", max_model_len=32768, kv_cache_dtype=dtype, engine="vllm==0.33.0")
        assert plan.max_concurrency > 0, dtype
    (half,) = estimate(QWEN3, gpu="h100", max_model_len=32768, kv_cache_dtype="bfloat16", dtype="float16",
                       engine="vllm==0.34.0")
    assert refusal_of(half)["reason"] == ('kv_cache_dtype="bfloat16" is incompatible with dtype="float16". Please '
                                          'set `--kv-cache-dtype` to `auto` or `float16`.')


def test_deepseek_v32s_bfloat16_is_rewritten_before_the_check():
    """models/config.py:84-86 turns V3.2's bfloat16 into auto before VllmConfig checks it (0.33.0 :1539-1540), so a
    float16 V3.2 with a bfloat16 cache starts; GLM-5.x has no such rewrite."""
    kwargs = dict(gpu="h200", max_model_len=32768, tensor_parallel_size=8, kv_cache_dtype="bfloat16", dtype="float16",
                  engine="vllm==0.33.0")
    (v32,) = estimate(V32, **kwargs)
    assert not refusal_of(v32) and v32.max_concurrency > 0
    (glm,) = estimate(GLM5, **kwargs)
    assert refusal_of(glm)["reason"].startswith('kv_cache_dtype="bfloat16" is incompatible with dtype="float16".')


# -- sparse MLA on compute capability 8.x -------------------------------------------------------------------------

def test_sparse_mla_on_an_a100_finds_no_backend():
    """Was planned as starting: at tp 8 / pp 2 an A100-80GB leaves 29.6 GiB for the cache (24 requests of 32,768)."""
    (plan,) = estimate(V32, gpu="a100-80gb", max_model_len=32768, tensor_parallel_size=8, pipeline_parallel_size=2)
    refusal = refusal_of(plan)
    assert refusal["reason"] == ("No valid attention backend found for cuda (compute capability 8.0) with a sparse MLA "
                                 "layer: every sparse MLA backend of vLLM 0.32.0 needs compute capability 9.x, 10.x or "
                                 "12.x.")
    assert refusal["field"] == "gpu" and refusal["configuration"] is True and plan.max_concurrency == 0
    assert refusal["remedy"] == "it starts on a Hopper or Blackwell GPU (H100, H200, B200, ...)"
    (hopper,) = estimate(V32, gpu="h100", max_model_len=32768, tensor_parallel_size=8, pipeline_parallel_size=2)
    assert hopper.max_concurrency > 0


@pytest.mark.parametrize("gpu,cc,release,dtype", [
    ("l40s", "8.9", "0.34.0", "fp8"), ("a10", "8.6", "0.18.0", "auto"), ("l4", "8.9", "0.11.1", "bfloat16"),
    ("a100-40gb", "8.0", "0.33.0", "fp8_e4m3"),
])
def test_every_release_and_dtype_from_0_11_1(gpu, cc, release, dtype):
    (plan,) = estimate(GLM5 if release >= "0.16" else V32, gpu=gpu, max_model_len=8192, tensor_parallel_size=8,
                       kv_cache_dtype=dtype, engine=f"vllm=={release}")
    assert refusal_of(plan)["reason"].startswith(f"No valid attention backend found for cuda (compute capability "
                                                 f"{cc}) with a sparse MLA layer")


def test_0_11_0_fails_at_the_first_sparse_kernel():
    (plan,) = estimate(V32, gpu="a100-80gb", max_model_len=32768, tensor_parallel_size=8, pipeline_parallel_size=2,
                       engine="vllm==0.11.0")
    refusal = refusal_of(plan)
    assert refusal["reason"].startswith("FlashMLA's sparse kernels do not run on compute capability 8.0")
    assert "fails at the first sparse kernel call" in refusal["reason"] and refusal["field"] == "gpu"


def test_sm120_has_a_sparse_backend_from_0_24():
    from kvplan.engines.vllm_sparse import sparse_gpu_refusal_line

    assert "needs compute capability 9.x or 10.x" in sparse_gpu_refusal_line((12, 0), "0.23.0")
    assert sparse_gpu_refusal_line((12, 0), "0.24.0") == ""
    assert sparse_gpu_refusal_line(("rocm",), "0.32.0") == "" and sparse_gpu_refusal_line((), "0.32.0") == ""


def test_check_puts_the_sparse_gpu_refusal_on_the_gpu_key(tmp_path):
    path = deployments(tmp_path, "  - name: ampere\n    model: deepseek-ai/DeepSeek-V3.2\n    gpu: a100-80gb\n"
                                 "    tp: 8\n    pp: 2\n    context: 32768\n")
    r = run_kvplan("check", "--file", path, "--format", "json")
    assert r.returncode == 1, r.stderr
    (result,) = json.loads(r.stdout)["results"]
    (finding,) = [f for f in result["findings"] if f["level"] == "error"]
    assert (finding["key"], finding["line"]) == ("gpu", line_of(path, "gpu:", "ampere"))
    assert finding["message"] == ("vLLM 0.32.0 does not start: No valid attention backend found for cuda (compute "
                                  "capability 8.0) with a sparse MLA layer: every sparse MLA backend of vLLM 0.32.0 "
                                  "needs compute capability 9.x, 10.x or 12.x; it starts on a Hopper or Blackwell GPU "
                                  "(H100, H200, B200, ...).")


# -- registry: 0.33 / 0.34 architectures -------------------------------------------------------------------------

BASE = dict(hidden_size=2048, intermediate_size=6144, num_hidden_layers=8, num_attention_heads=16,
            num_key_value_heads=4, head_dim=128, vocab_size=32000, max_position_embeddings=32768,
            torch_dtype="bfloat16", rms_norm_eps=1e-6)
PATTERN = ["sliding_attention"] * 3 + ["full_attention"]
BEAM = dict(BASE, architectures=["BeamForCausalLM"], model_type="beam", sliding_window=4096, layer_types=PATTERN * 2)


def test_an_architecture_first_registered_in_0_33_is_refused_before():
    from kvplan.engines.vllm_config_read import architecture_refusal

    assert architecture_refusal("BeamForCausalLM", "0.33.0") is None
    old = architecture_refusal("BeamForCausalLM", "0.32.0")
    assert old.reason.startswith("Model architectures ['BeamForCausalLM'] are not supported for now")
    assert old.field == "engine" and old.options == ("vllm==0.33.0",)


def test_beam_plans_from_0_33_with_its_layer_types(write_config):
    """8 layers x 4 KV heads x 128 x (K + V) x 2 bytes = 16,384 bytes a token (windows cap 6 of them at 4,096)."""
    path = write_config(BEAM)
    (plan,) = estimate(str(path), gpu="h100", max_model_len=8192, engine="vllm==0.33.0")
    assert plan.kv_bytes_per_token == 16384 and plan.max_concurrency > 0
    (old,) = estimate(str(path), gpu="h100", max_model_len=8192)
    assert refusal_of(old)["field"] == "engine" and old.max_concurrency == 0


def test_keye_was_served_until_0_33():
    from kvplan.engines.vllm_config_read import architecture_refusal

    assert architecture_refusal("KeyeVL1_5ForConditionalGeneration", "0.33.0") is None
    gone = architecture_refusal("KeyeForConditionalGeneration", "0.34.0")
    # 0.34.0 registry.py:1313-1318, its f-string filled in by hand
    assert gone.reason == ("Model architecture KeyeForConditionalGeneration was supported in vLLM until v0.33.0, and "
                           "is not supported anymore. Please use an older version of vLLM if you want to use this "
                           "model architecture.")


@pytest.mark.parametrize("name,extra,says", [
    ("DoryForCausalLM", {"n_recurrent_loops": 2}, "recurrent loops"),
    ("DomynEdgeForCausalLM", {"window_sizes": [[128, 0]] * 8}, "'window_sizes'"),
    ("Step5ForCausalLM", {"attention_other_setting": {}}, "sparse attention with an indexer"),
    ("ZayaForCausalLM", {"cca_time0": 2, "cca_time1": 2}, "Compressed Convolutional Attention"),
    ("MistralLarge4ForCausalLM", {"kv_lora_rank": 512, "qk_rope_head_dim": 64}, "share latent caches"),
    ("AliceAIForCausalLM", {}, "Kimi Delta Attention"),
    ("CanaryForConditionalGeneration", {}, "cross-attention"),
    # a derivative under another name: caught by the field
    ("SomethingForCausalLM", {"cca_time0": 2}, "config field 'cca_time0'"),
    ("SomethingForCausalLM", {"index_sharing": [0, 0]}, "share latent caches"),
])
def test_layouts_kvplan_does_not_model_are_refused_in_one_line(write_config, name, extra, says):
    path = write_config(dict(BASE, architectures=[name], model_type="x", **extra))
    r = run_kvplan("estimate", path, "--gpu", "h100", "--engine", "vllm==0.34.0")
    assert r.returncode == 2 and r.stdout == "", r.stdout
    assert says in r.stderr and "which kvplan does not model" in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("name", ["BeamForCausalLM", "FlintForCausalLM", "Lfm3ForCausalLM", "RicursiveForCausalLM"])
def test_a_default_layer_pattern_is_refused_without_layer_types(write_config, name):
    """Their config classes fill layer_types in (beam.py:50-51, lfm3.py:61-68, ricursive.py:51-55, flint
    configs.py:74), which kvplan's reader does not: it wants the list in the file."""
    path = write_config(dict(BASE, architectures=[name], model_type="x", sliding_window=512))
    r = run_kvplan("estimate", path, "--gpu", "h100", "--engine", "vllm==0.34.0")
    assert r.returncode == 2 and f"architecture {name} without a layer_types list" in r.stderr


def test_beams_dense_layers_plan(write_config):
    """A "dense" mlp_layer_types entry is an MLP of intermediate_size, a "sparse" one the MoE block of
    moe_intermediate_size experts (models/beam/nvidia/model.py:101-115, moe.py:87-90, 0.34.0): was refused, now sized.
    One dense layer of 8: 3 x 2,048 x 6,144 = 37,748,736 dense parameters; 7 x 8 x 3 x 2,048 x 512 = 176,160,768 in
    the experts (8 x 25,165,824 = 201,326,592 with every layer sparse)."""
    from kvplan.model.sources import resolve

    moe = dict(BEAM, num_experts=8, num_experts_per_tok=2, moe_intermediate_size=512)
    path = write_config(dict(moe, mlp_layer_types=["dense"] + ["sparse"] * 7))
    assert run_kvplan("estimate", path, "--gpu", "h100", "--engine", "vllm==0.33.0").returncode == 0
    spec = resolve(str(path))
    assert (spec.param_count("dense"), spec.param_count("experts"), spec.moe_layers) == (37748736, 176160768, 7)
    all_sparse = resolve(str(write_config(dict(moe, mlp_layer_types=["sparse"] * 8), "sparse.json")))
    assert (all_sparse.param_count("dense"), all_sparse.param_count("experts")) == (0, 201326592)