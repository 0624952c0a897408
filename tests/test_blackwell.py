"""Sparse MLA (DeepSeek-V3.2, GLM-5.2) on Blackwell datacenter GPUs (SM10x) in vLLM 0.32.0, against hand arithmetic
from vLLM's source read by hand (paths under vllm/):

- platforms/cuda.py:96-130: on SM10x a quantized cache tries FLASHINFER_MLA_SPARSE first, which takes fp8 /
  fp8_e4m3 (flashinfer_mla_sparse.py:86-93) and keeps them plain (mla_attention.py:358-375 canonicalizes on
  FLASHMLA_SPARSE only): a 576-byte latent (512 + 64 fp8 values), not Hopper's 656-byte fp8_ds_mla.
- fp8_ds_mla and nvfp4_ds_mla run on FLASHMLA_SPARSE; nvfp4_ds_mla (352 bytes: 256 packed e2m1 + 64 e4m3 rope + 32
  scales, flashmla_sparse.py:111-123) only on SM10x (flashmla_sparse.py:250-254); Hopper has no backend for it.
- GLM-5.2 (GlmMoeDsaForCausalLM): `auto` becomes fp8_e4m3 on SM10x (models/config.py:43-55); bfloat16 stays.
- The indexer's key cache (132 bytes: 128 fp8 + one fp32 scale) and its kernel block of 64 (indexer.py:284-285)
  are the same everywhere: block 64.

Budgets are fixed with --kv-cache-memory-bytes 40 GiB at TP 8; V3.2 has 61 layers, each a latent and an indexer
key; GLM-5.2 78 latents and 21 indexer keys (layers 0, 1, 2, 6, ..., 74)."""

import pytest

from kvplan.api import estimate
from kvplan.plan.catalog import CATALOG, find_gpu, match_device_name

V32, GLM = "deepseek-ai/DeepSeek-V3.2", "zai-org/GLM-5.2"
BUDGET = 40 * 2**30
BLOCK = 64
INDEXER = 132
LAYERS = {V32: (61, 61), GLM: (78, 21)}  # (latents, indexer keys)
LATENT = {"bf16": 2 * 576, "fp8": 576, "fp8_ds_mla": 656, "nvfp4_ds_mla": 352}


def per_token(model: str, latent: str) -> int:
    latents, keys = LAYERS[model]
    return latents * LATENT[latent] + keys * INDEXER


def blocks(model: str, latent: str) -> int:
    return BUDGET // (BLOCK * per_token(model, latent))


def plan_of(model: str, gpu: str, kv: str):
    return run(model, kv=kv, gpu=gpu)


def run(model: str, kv: str, gpu: str, **flags):
    return estimate(model, kv_cache_dtype=kv, tensor_parallel_size=8, gpu=gpu, kv_cache_memory_bytes=BUDGET,
                    max_model_len=flags.pop("max_model_len", 131072), **flags)[0]


# (model, --kv-cache-dtype, latent kept on H200, latent kept on B200)
CASES = [
    (V32, "auto", "bf16", "bf16"),
    (V32, "bfloat16", "bf16", "bf16"),
    (V32, "fp8", "fp8_ds_mla", "fp8"),
    # FLASHMLA_SPARSE lists fp8, not fp8_e4m3 (flashmla_sparse.py:149-155): on Hopper fp8_e4m3 runs on
    # FLASHINFER_MLA_SPARSE_SM90, a plain 576-byte latent (tests/test_sparse_mla_fp8_spelling.py)
    (V32, "fp8_e4m3", "fp8", "fp8"),
    (V32, "fp8_ds_mla", "fp8_ds_mla", "fp8_ds_mla"),
    (GLM, "auto", "bf16", "fp8"),
    (GLM, "bfloat16", "bf16", "bf16"),
    (GLM, "fp8", "fp8_ds_mla", "fp8"),
    (GLM, "fp8_ds_mla", "fp8_ds_mla", "fp8_ds_mla"),
]


@pytest.mark.parametrize("model,kv,hopper,blackwell", CASES)
def test_blocks_on_b200_and_h200(model, kv, hopper, blackwell):
    for gpu, latent in (("H200", hopper), ("B200", blackwell)):
        p = plan_of(model, gpu, kv)
        assert p.block_size == BLOCK
        assert p.kv_bytes_per_token_per_gpu == per_token(model, latent), (gpu, kv)
        assert p.engine.num_gpu_blocks == blocks(model, latent), (gpu, kv)
        assert p.engine.starts


def test_hand_figures():
    """The arithmetic spelled out once: V3.2 fp8 on B200 61 x (576 + 132) = 43,188 bytes a token, 2,764,032 a
    block, 15,538 blocks in 40 GiB; on H200 61 x (656 + 132) = 48,068, 13,961 blocks."""
    assert per_token(V32, "fp8") == 43188 and blocks(V32, "fp8") == 15538
    assert per_token(V32, "fp8_ds_mla") == 48068 and blocks(V32, "fp8_ds_mla") == 13961
    assert per_token(GLM, "fp8") == 47700 and blocks(GLM, "fp8") == 14068
    assert plan_of(V32, "B200", "fp8").engine.num_gpu_blocks == 15538
    assert plan_of(GLM, "B200", "auto").engine.num_gpu_blocks == 14068


def test_glm_auto_is_fp8_on_sm10x_only():
    assert plan_of(GLM, "B200", "auto").kv_dtype == "fp8_e4m3"
    assert plan_of(GLM, "H200", "auto").kv_dtype == "bf16"
    assert plan_of(V32, "B200", "auto").kv_dtype == "bf16"  # DeepseekV32's verify_and_update_config keeps auto


@pytest.mark.parametrize("model", [V32, GLM])
def test_nvfp4_ds_mla_on_blackwell_only(model):
    p = plan_of(model, "B200", "nvfp4_ds_mla")
    assert p.engine.starts and p.kv_bytes_per_token_per_gpu == per_token(model, "nvfp4_ds_mla")
    assert p.engine.num_gpu_blocks == blocks(model, "nvfp4_ds_mla")
    hopper = plan_of(model, "H200", "nvfp4_ds_mla")
    assert not hopper.engine.starts and hopper.max_concurrency == 0
    assert "No valid attention backend" in hopper.engine.refusal.reason
    assert "SM100" in hopper.engine.refusal.reason


@pytest.mark.parametrize("gpu", ["H200", "B200"])
def test_fp8_e5m2_has_no_sparse_backend(gpu):
    """No sparse MLA backend lists fp8_e5m2 (flashmla_sparse.py:149-155, flashinfer_mla_sparse.py:86-93,
    flashattn_mla_sparse.py:38-42, flashinfer_mla_sparse_sm90.py:148-154): vLLM finds no backend."""
    p = plan_of(V32, gpu, "fp8_e5m2")
    assert not p.engine.starts and "kv_cache_dtype not supported" in p.engine.refusal.reason


def test_block_size_rule_unchanged_on_b200():
    p = run(V32, "fp8", "B200", block_size=128)
    assert p.block_size == 128 and p.engine.num_gpu_blocks == BUDGET // (128 * per_token(V32, "fp8"))
    refused = run(V32, "fp8", "B200", block_size=32)  # no backend for it: a configuration refusal on the block
    assert refused.engine.refusal.field == "block_size" and refused.max_concurrency == 0


def test_dense_mla_unchanged_on_b200():
    """DeepSeek-V3 (dense MLA): the capability changes nothing kvplan models (fp8 a plain 576-byte latent)."""
    h = run("deepseek-ai/DeepSeek-V3", "fp8", "H200", max_model_len=32768)
    b = run("deepseek-ai/DeepSeek-V3", "fp8", "B200", max_model_len=32768)
    assert h.kv_bytes_per_token_per_gpu == b.kv_bytes_per_token_per_gpu == 61 * 576


def test_catalog_capabilities():
    """NVIDIA's compute capability table: Hopper 9.0, Blackwell datacenter 10.0; AMD none."""
    assert find_gpu("B200").compute_capability == (10, 0)
    assert find_gpu("H200").compute_capability == (9, 0)
    assert find_gpu("A100-80GB").compute_capability == (8, 0)
    assert find_gpu("MI300X").compute_capability == ()
    assert match_device_name("NVIDIA B200").compute_capability == (10, 0)
    nvidia = [g for g in CATALOG if not g.name.startswith("MI")]
    assert all(len(g.compute_capability) == 2 for g in nvidia)


def test_b300_and_gb200_in_the_catalog():
    """nvidia-smi's names and totals (275040 / 189471 MiB) from public outputs; SM10x: sparse MLA's SM10x rules."""
    assert match_device_name("NVIDIA B300 SXM6 AC").name == "B300"
    assert match_device_name("NVIDIA GB200").name == "GB200"
    assert find_gpu("B300").compute_capability == (10, 3) and find_gpu("GB200").compute_capability == (10, 0)
    assert 267 * 2**30 < find_gpu("B300").memory_bytes < 275040 * 2**20
    assert 184 * 2**30 < find_gpu("GB200").memory_bytes < 189471 * 2**20
    for gpu in ("B300", "GB200"):
        p = run(V32, "fp8", gpu)
        assert p.kv_bytes_per_token_per_gpu == per_token(V32, "fp8") and p.engine.num_gpu_blocks == blocks(V32, "fp8")
