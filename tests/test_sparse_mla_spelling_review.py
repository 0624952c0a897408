"""Three review fixes to sparse MLA's --kv-cache-dtype rules (engines/vllm_sparse.py), each held to vLLM's source read
by hand (paths under vllm/ of the release named) and to hand arithmetic, not to kvplan's formula.

Bytes a token at TP 8 with a 40 GiB (42,949,672,960-byte) budget and 64-token blocks (the indexer's block):
- DeepSeek-V3.2, 61 latents + 61 indexer keys of 132 bytes: fp8_ds_mla 61 x (656 + 132) = 48,068 -> 3,076,352 a block
  -> 13,961 blocks; a plain fp8 latent 61 x (576 + 132) = 43,188 -> 2,764,032 a block -> 15,538 blocks.
- GLM-5.2, 78 latents + 21 keys: fp8_ds_mla 78 x 656 + 21 x 132 = 53,940 -> 3,452,160 a block -> 12,441 blocks."""

import pytest

from conftest import run_kvplan

from kvplan.api import estimate

V32, GLM = "deepseek-ai/DeepSeek-V3.2", "zai-org/GLM-5.2"
BUDGET = 40 * 2**30


def plan(model, kv, gpu, engine, length=32768, quantization=None):
    return estimate(model, kv_cache_dtype=kv, tensor_parallel_size=8, gpu=gpu, kv_cache_memory_bytes=BUDGET,
                    max_model_len=length, engine=f"vllm=={engine}", quantization=quantization)[0]


def test_hand_figures():
    assert 61 * (656 + 132) == 48068 and BUDGET // (64 * 48068) == 13961
    assert 61 * (576 + 132) == 43188 and BUDGET // (64 * 43188) == 15538
    assert 78 * 656 + 21 * 132 == 53940 and BUDGET // (64 * 53940) == 12441


# -- 1. the config rewrite is DeepseekV32ForCausalLM's only ---------------------------------------------------------

@pytest.mark.parametrize("release", ["0.16.0", "0.17.0"])
@pytest.mark.parametrize("kv", ["fp8", "fp8_e4m3"])
def test_glm5_fp8_on_0_16_and_0_17_is_refused(release, kv):
    """models/config.py's fp8 -> fp8_ds_mla rewrite is DeepseekV32ForCausalLM.verify_and_update_config (0.16.0
    :557-558, 0.17.0 :597-599), found through MODELS_CONFIG_MAP by the architecture (config/vllm.py 0.16.0 :1387-1396,
    0.17.0 :1577-1588); the map has no GlmMoeDsaForCausalLM (models/config.py 0.16.0 :592-615, 0.17.0 :659-688). So
    GLM-5's fp8 reaches Hopper's one sparse backend as spelled: FLASHMLA_SPARSE lists auto, bfloat16, fp8_ds_mla only
    (flashmla_sparse.py 0.16.0 :79-83, 0.17.0 :82-86) -> "No valid attention backend" (platforms/cuda.py 0.17.0
    :393)."""
    p = plan(GLM, kv, "H200", release)
    assert not p.engine.starts and p.max_concurrency == 0
    assert p.engine.refusal.reason == (f"No valid attention backend found for cuda (compute capability 9.0) with "
                                       f"kv_cache_dtype {kv}: no sparse MLA backend takes it (kv_cache_dtype not "
                                       f"supported).")
    assert p.engine.kv_cache_dtype == "fp8_e4m3"  # the refused row keeps no fp8_ds_mla cache (fp8's kvplan name)


def test_glm5_fp8_on_blackwell_0_17_is_refused_too():
    """SM10x in 0.17.0 adds FLASHINFER_MLA_SPARSE, which lists auto and bfloat16 only (flashinfer_mla_sparse.py
    :63-66)."""
    assert not plan(GLM, "fp8", "B200", "0.17.0").engine.starts


def test_glm5_fp8_ds_mla_spelled_on_0_17_starts():
    """fp8_ds_mla is in FLASHMLA_SPARSE's list (0.17.0 flashmla_sparse.py:85). 0.17 builds an indexer on all 78 layers
    and loads GLM-5.2 only with quantised weights (tests/test_glm52_indexers_s71.py): 78 x (656 + 132) = 61,464
    bytes a token, 10,918 blocks; the bf16 checkpoint stops as it loads."""
    p = plan(GLM, "fp8_ds_mla", "H200", "0.17.0", quantization="fp8")
    assert p.engine.starts and p.kv_bytes_per_token_per_gpu == 61464 and p.engine.num_gpu_blocks == 10918
    assert "Following weights were not initialized" in plan(GLM, "fp8_ds_mla", "H200", "0.17.0").engine.refusal.reason


def test_v32_fp8_on_0_17_keeps_its_656_byte_entry():
    """DeepseekV32ForCausalLM is in the map (0.17.0 models/config.py:682): fp8 -> fp8_ds_mla (:597-599)."""
    p = plan(V32, "fp8", "H200", "0.17.0")
    assert p.engine.starts and p.engine.kv_cache_dtype == "fp8_ds_mla"
    assert p.kv_bytes_per_token_per_gpu == 48068 and p.engine.num_gpu_blocks == 13961


def test_glm5_evidence_command_is_a_refused_row():
    r = run_kvplan("estimate", GLM, "-tp", "8", "--gpu", "H200", "--engine", "vllm==0.17.0", "--kv-cache-dtype", "fp8",
                   "--kv-cache-memory-bytes", "40G", "--max-model-len", "32768")
    assert r.returncode == 0, r.stderr
    assert "refuses to start: No valid attention backend" in r.stdout and "keeps an fp8_ds_mla" not in r.stdout


# -- 2. AMD GPUs: ROCm's own sparse backend ----------------------------------------------------------------------------

@pytest.mark.parametrize("gpu", ["MI300X", "MI250X", "MI325X"])
@pytest.mark.parametrize("kv", ["fp8", "fp8_e4m3"])
def test_rocm_0_32_keeps_a_plain_576_byte_latent(gpu, kv):
    """0.32.0 platforms/rocm.py:485-486: a sparse layer gets ROCM_AITER_MLA_SPARSE only, which lists fp8 and fp8_e4m3
    (rocm_aiter_mla_sparse.py:353-359); _canonicalize_sparse_mla_kv_cache_dtype (mla_attention.py:358-375) rewrites
    only on FLASHMLA_SPARSE and FLASHINFER_MLA_SPARSE_SM120: a plain fp8 latent, 43,188 bytes a token. ROCm pages it
    in vLLM's default 16-token blocks, not CUDA's 64 (its kernels take blocks of 1: tests/test_rocm_sparse_block.py):
    40 GiB // (16 x 43,188) = 62,155 blocks."""
    p = plan(V32, kv, gpu, "0.32.0")
    assert p.engine.starts and p.engine.kv_cache_dtype == "fp8_e4m3"
    assert p.kv_bytes_per_token_per_gpu == 43188 and p.engine.num_gpu_blocks == 62155 and p.block_size == 16


def test_rocm_fp8_e5m2_is_refused_in_rocm_words():
    """fp8_e5m2 is not in ROCM_AITER_MLA_SPARSE's list: platforms/rocm.py's refusal (0.32.0 :823) names rocm."""
    reason = plan(V32, "fp8_e5m2", "MI300X", "0.32.0").engine.refusal.reason
    assert reason.startswith("No valid attention backend found for rocm with kv_cache_dtype fp8_e5m2")
    assert "compute capability" not in reason


@pytest.mark.parametrize("release,reason", [
    # 0.18.0 rocm_aiter_mla_sparse.py:83-87 / 0.20.0 :85-89: auto, float16, bfloat16 only
    ("0.20.0", "No valid attention backend found for rocm with kv_cache_dtype fp8: no sparse MLA backend takes it "
               "(kv_cache_dtype not supported)."),
    # 0.17.0 rocm.py:364-368 raises for any fp8* (V3.2's fp8 is fp8_ds_mla by then, still fp8*)
    ("0.17.0", "ROCMAiterMLASparseBackend doesn't support fp8 kv_cache_dtype."),
])
def test_rocm_before_0_21_takes_no_quantized_cache(release, reason):
    p = plan(V32, "fp8", "MI300X", release)
    assert not p.engine.starts and p.engine.refusal.reason == reason


def test_rocm_0_21_is_the_first_with_fp8():
    """0.21.0 rocm_aiter_mla_sparse.py:266-272 adds fp8 and fp8_e4m3."""
    assert plan(V32, "fp8_e4m3", "MI300X", "0.21.0").kv_bytes_per_token_per_gpu == 43188


# -- 3. fp8_e4m3 with no backend: a refused row, not a usage error ---------------------------------------------------

def test_h200_0_25_1_fp8_and_fp8_e4m3_give_two_rows_the_second_refused():
    """0.25.1 platforms/cuda.py:134-141: Hopper's sparse list is FLASH_ATTN_MLA_SPARSE (16-bit only) then
    FLASHMLA_SPARSE, which lists fp8 (656-byte fp8_ds_mla) but not fp8_e4m3; FLASHINFER_MLA_SPARSE_SM90 comes in
    0.30."""
    r = run_kvplan("estimate", V32, "--gpu", "h200", "-tp", "8", "--engine", "vllm==0.25.1", "--kv-cache-dtype",
                   "fp8,fp8_e4m3", "--kv-cache-memory-bytes", "40G", "--max-model-len", "32768")
    assert r.returncode == 0, r.stderr
    rows = [line.split() for line in r.stdout.splitlines() if line.strip().startswith("32,768")]
    assert [(row[1], row[3], row[6]) for row in rows] == [("fp8", "27", "893,504"), ("fp8_e4m3", "0", "0")]
    assert 13961 * 64 == 893504 and 893504 // 32768 == 27
    text = " ".join(r.stdout.split())
    assert ("refuses to start: No valid attention backend found for cuda (compute capability 9.0) with kv_cache_dtype "
            "fp8_e4m3") in text
    assert text.count("keeps an fp8_ds_mla cache") == 1


def test_a_refused_configuration_says_it_does_not_start_not_that_it_does_not_fit():
    """The refused fp8_e4m3 row (above) used to read "does not fit: one request needs 1.32 GiB ... no TP degree up to
    64 or fp8 makes it fit" beside a 41.8 GiB budget: vLLM refuses the dtype whatever the memory. Now the row says
    vLLM does not start and why; the JSON marks the refusal `configuration` (absent from memory refusals)."""
    r = run_kvplan("estimate", V32, "--gpu", "h200", "-tp", "8", "--engine", "vllm==0.25.1", "--kv-cache-dtype",
                   "fp8,fp8_e4m3", "--max-model-len", "32768")
    text = " ".join(r.stdout.split())
    assert "fp8_e4m3 tp 8 does not start: vllm 0.25.1 refuses the configuration: No valid attention backend" in text
    assert "does not fit" not in text
    refused, started = plan(V32, "fp8_e4m3", "h200", "0.25.1"), plan(V32, "fp8", "h200", "0.25.1")
    assert refused.to_dict()["engine"]["refusal"]["configuration"] is True and started.engine.refusal is None
    short = estimate(V32, kv_cache_dtype="fp8", tensor_parallel_size=8, gpu="h200", engine="vllm==0.25.1",
                     kv_cache_memory_bytes=2**30, max_model_len=32768)[0].to_dict()["engine"]["refusal"]
    assert short["reason"].startswith("To serve at least one request") and "configuration" not in short


def test_check_fails_a_deployment_whose_cache_dtype_vllm_refuses():
    """Second review (session 50): after fp8_e4m3 became a refused row, `check` passed the deployment with a warning
    ("not one sequence fits ... no tp up to 64, fp8 KV or shorter context reaches it"), though vLLM 0.25.1 does not
    start (platforms/cuda.py:134-141: no Hopper sparse backend lists fp8_e4m3) and fp8 holds 27 requests there. Now
    an error on kv_dtype naming vLLM's refusal and the spellings that start (exit 1: a violation)."""
    r = run_kvplan("check", V32, "-tp", "8", "--gpu", "H200", "--engine", "vllm==0.25.1", "--kv-cache-dtype",
                   "fp8_e4m3", "-c", "32K")
    text = " ".join(r.stdout.split())
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "vLLM 0.25.1 does not start: No valid attention backend found" in text
    assert "it starts with --kv-cache-dtype auto, bfloat16, fp8, fp8_ds_mla." in text
    ok = run_kvplan("check", V32, "-tp", "8", "--gpu", "H200", "--engine", "vllm==0.25.1", "--kv-cache-dtype", "fp8",
                    "-c", "32K")
    assert ok.returncode == 0, ok.stdout


def test_glm5_fp8_on_0_17_names_the_spelling_that_starts():
    """0.17.0: GLM-5's fp8 reaches backend selection unrewritten (models/config.py:659-688 has no GlmMoeDsa entry) and
    FLASHMLA_SPARSE takes only auto / bfloat16 / fp8_ds_mla (flashmla_sparse.py:82-86): the row says so."""
    r = run_kvplan("estimate", GLM, "-tp", "8", "--gpu", "H200", "--engine", "vllm==0.17.0", "--kv-cache-dtype",
                   "fp8", "--kv-cache-memory-bytes", "40G", "-c", "auto", "--quantization", "fp8")  # loads on 0.17
    text = " ".join(r.stdout.split())
    assert "fp8 tp 8 does not start" in text and "vLLM accepts --kv-cache-dtype auto, bfloat16, fp8_ds_mla" in text
    # planned: at the auto-fit's 1,048,576 tokens the 40 GiB hold no request with them (tests/test_refusal_remedies.py)
    assert "at --kv-cache-dtype auto it would fit with --max-model-len" in text
    assert "the model's full length fits" not in text


def test_rocm_before_0_12_refuses_sparse_attention_whatever_the_dtype():
    """0.11.0 platforms/rocm.py:199-201 (0.11.1 / 0.11.2 :225): get_attn_backend_cls raises "Sparse Attention is not
    supported on ROCm." for any sparse model (second review: kvplan started V3.2 bf16 on an MI300X there)."""
    for dtype in ("auto", "bfloat16"):
        p = estimate(V32, kv_cache_dtype=dtype, tensor_parallel_size=8, gpu="MI300X", kv_cache_memory_bytes=BUDGET,
                     max_model_len=32768, engine="vllm==0.11.0")[0]
        assert p.engine.refusal.reason == "Sparse Attention is not supported on ROCm." and not p.fits, dtype
    # 0.12 serves it in 16 bits, at --block-size 1 (rocm.py:228-230 asserts it: tests/test_rocm_sparse_block.py)
    assert estimate(V32, kv_cache_dtype="bfloat16", tensor_parallel_size=8, gpu="MI300X", kv_cache_memory_bytes=BUDGET,
                    max_model_len=32768, engine="vllm==0.12.0", block_size=1)[0].engine.refusal is None
