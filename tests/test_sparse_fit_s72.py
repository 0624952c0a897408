"""Sparse attention's profile-run buffers under --max-model-len auto, and DeepSeek-V4's indexer dummy logits, read in
vLLM's sources (paths under vllm/ of the release named) and checked here by hand arithmetic.

1. Auto-fit (--max-model-len auto / -1) builds and profiles at the model's own length and fits a shorter one after:
   - ModelConfig resolves -1 to the derived length (config/model.py 0.32.0:2621-2635, original_max_model_len :810);
   - VllmConfig resolves sparse_mla_prefill_workspace_factor once, from that length ("KV cache auto-fit can lower
     max_model_len later", config/vllm.py 0.32.0:1790-1798, 0.34.0:1794-1803);
   - the model is built at it: the indexer keeps max_model_len and get_max_prefill_buffer_size
     (models/deepseek_v32/attention.py 0.32.0:101-120, 0.34.0:105-120), FlashMLA-sparse its reservation,
     DeepSeek-V4's attention and indexer their lengths (models/deepseek_v4/attention.py 0.34.0:336, :967-973);
   - the engine core profiles (determine_available_memory, v1/engine/core.py 0.32.0:315, 0.34.0:338) and only then
     fits (get_kv_cache_configs :326 / :349 -> kv_cache_utils.py 0.32.0:2414-2483 _auto_fit_max_model_len), and
     update_max_model_len (:337 / :360; gpu_worker.py 0.34.0:874-884) touches none of those buffers.
   So the K gather, the dummy logits and the FlashMLA / DeepSeek-V4 workspaces are all the built length's: a plan
   auto-fit shortens has the profile peak and the weights of the same deployment at the model's own length.
2. DeepSeek-V4's indexer runs the same op as DeepSeek-V3.2's (DeepseekV4Indexer.indexer_op = SparseAttnIndexer:
   model_executor/layers/deepseek_v4_attention.py 0.20.0:1043; models/deepseek_v4/attention.py 0.22.0:856, 0.29.0
   :892, 0.32.0:1033, 0.34.0:898-899 and :1005), so its profile branch allocates the same dummy logits
   (model_executor/layers/sparse_attn_indexer.py 0.20.0:121-124, 0.31.0:385-386: VLLM_SPARSE_INDEXER_MAX_LOGITS_MB
   = 512 MiB; 0.32.0:465-472 and 0.33.0:503-510: + with TP > 1 the row-shard exchange's 2 x max_num_batched_tokens
   x index_topk x 4 bytes, V4's top-k buffer being max_num_batched_tokens x index_topk int32, models/deepseek_v4/
   nvidia/model.py 0.32.0:1323-1328; 0.34.0:626-664: max(the prefill budget, rows x round_up(length, align) x the
   logit's bytes)), at the op's length max_model_len // compress_ratio (0.20.0 :1010-1012, 0.34.0 :967-969).
   0.34 on compute capability 10.x: DeepSeek-V3.2's and V4's config hooks make the logits bf16
   (model_executor/models/config.py 0.34.0:68-78, :95, :760; utils/deep_gemm.py :656-666), with a float32 copy
   (sparse_attn_indexer.py :587-589, :644-662): the prefill budget 512 MiB / 4 x (2 + 4) = 768 MiB, align
   lcm(384, 1024 / 2) = 1536, chunked decode rows (top-k 512 / 1024 / 2048) at most 2 GiB // (2 x length), no copy.
   GLM-5.2 (GlmMoeDsaForCausalLM, :163-181) keeps float32.
"""

from types import SimpleNamespace

import pytest

from kvplan.api import estimate
from kvplan.engines.vllm_budget import v4_prefill_workspace
from kvplan.engines.vllm_indexer_profile import dummy_logits_bytes, indexer_profile
from kvplan.model.sources import resolve

GLM, V32 = "zai-org/GLM-5.2", "deepseek-ai/DeepSeek-V3.2"
FLASH, PRO = "deepseek-ai/DeepSeek-V4-Flash", "deepseek-ai/DeepSeek-V4-Pro"
MiB, GiB = 2**20, 2**30
OWN = 1_048_576  # GLM-5.2's and DeepSeek-V4's own max_position_embeddings
# GLM-5.2's K gather at its own length, 0.32+: 1,048,576 x 8 x 2 (factor 2 past 256 Ki) = 16,777,216 keys of 128 fp8
# bytes + a 4-byte scale, + the radix top-k's 1 MiB
GLM_GATHER = 16_777_216 * (128 + 4) + MiB  # 2,215,641,088
GLM_MOE = 8192 * 8 * (6144 + 6144) * 2  # 1,610,612,736: its fused-MoE workspace at TP 8 (tests/test_indexer_s72.py)


def _terms(plan) -> dict:
    return {t.name: t for t in plan.budget.terms}


def _plan(model, release, length, **flags):
    (p,) = estimate(model, engine=f"vllm=={release}", max_model_len=length, **flags)
    return p


def test_hand_figures():
    assert GLM_GATHER == 2_215_641_088 and GLM_MOE == 1_610_612_736
    assert GLM_GATHER - GLM_MOE == 605_028_352
    # DeepSeek-V4-Flash on a B200 (16,384 batched tokens): FlashMLA's gather at its own length, 4 rows of
    # (1,048,576 / 4 + window 128 + 16,384) x 512 x 2, + int32 top-k 16,384 x round_up(512 + 128, 128) + lengths
    assert 4 * (262_144 + 128 + 16_384) * 512 * 2 + 16_384 * 640 * 4 + 16_384 * 4 == 1_183_383_552


GLM_FP8 = dict(gpu="H200", tensor_parallel_size=8, quantization="fp8")
FLASH_B200 = dict(gpu="B200", tensor_parallel_size=1, gpu_memory_utilization=0.86)


@pytest.mark.parametrize("model, flags, release", [
    (GLM, dict(GLM_FP8, kv_cache_dtype="fp8"), "0.32.0"),
    (GLM, dict(GLM_FP8, kv_cache_dtype="fp8"), "0.34.0"),
    (GLM, GLM_FP8, "0.32.0"),
    (GLM, GLM_FP8, "0.34.0"),
    (FLASH, FLASH_B200, "0.32.0"),
    (FLASH, FLASH_B200, "0.34.0"),
])
def test_auto_fit_profiles_at_the_length_the_model_is_built_with(model, flags, release):
    """Each of these is shortened by auto-fit; its weights (FLASHMLA_SPARSE's reservation) and profile peak (the K
    gather's growth, the dummy logits, DeepSeek-V4's workspace) are the deployment's at the model's own length."""
    fitted, own = _plan(model, release, "auto", **flags), _plan(model, release, OWN, **flags)
    assert fitted.context < OWN
    for term in ("weights", "profile_peak"):
        assert _terms(fitted)[term].bytes == _terms(own)[term].bytes, term
    # the longest length that fits: one request, and no more than the pages' rounding (DeepSeek-V4's 256-token
    # blocks, 0.34's 2 MiB granules); before, up to 1.27 (DeepSeek-V4-Flash 0.32: 12,244 tokens for 9,656)
    assert 1 <= fitted.engine.max_concurrency < 1.01


def test_glm52_16_bit_cache_0_32_gather_at_the_built_length():
    """GLM-5.2, --quantization fp8, bf16 cache, 8 x H200, vLLM 0.32.0, auto-fit to 427,456 tokens. Hopper's 16-bit
    sparse cache runs FLASH_ATTN_MLA_SPARSE, which reserves nothing; the gather at the built 1,048,576 tokens grows
    the fused-MoE workspace by GLM_GATHER - GLM_MOE. Planned at 427,456 tokens (the factor is 2 there too) it was
    6,839,296 keys, 0.84 GiB, inside the workspace: before this, the plan held 434,048 tokens for 427,456
    (concurrency 1.015), a longer length than vLLM's own fit would have left."""
    fitted = _plan(GLM, "0.32.0", "auto", **GLM_FP8)
    asked = _plan(GLM, "0.32.0", 427_456, **GLM_FP8)
    assert fitted.context == 427_456
    assert _terms(fitted)["profile_peak"].bytes - _terms(asked)["profile_peak"].bytes == 605_028_352
    assert "K gather (16,777,216 keys, 2.06 GiB) grows the shared workspace" in _terms(fitted)["profile_peak"].source
    assert "K gather (6,839,296 keys, 0.84 GiB) fits" in _terms(asked)["profile_peak"].source


def test_glm52_fp8_cache_0_34_decode_logits_at_the_built_length():
    """GLM-5.2, --quantization fp8 --kv-cache-dtype fp8, 8 x H200, vLLM 0.34.0: the decode logits are
    min(1024 sequences, 8192) x 1,048,576 x 4 bytes = 4,096 MiB (float32, a multiple of 256 already), not the
    1024 x round_up(770,368, 256) = 770,560 x 4 = 3,010 MiB of the length auto-fit planned before; the larger
    transient (and 0.34's margin, 0.75 of it) fits 747,968 tokens, not 770,368. The gather, 2.06 GiB, stays inside
    FLASHMLA_SPARSE's 3.45 GiB reservation at 0.32 as at 0.34: there auto-fit keeps 706,624 tokens."""
    fitted = _plan(GLM, "0.34.0", "auto", kv_cache_dtype="fp8", **GLM_FP8)
    assert fitted.context == 747_968
    assert "4,096 MiB dummy logits" in _terms(fitted)["profile_peak"].source
    assert 1024 * OWN * 4 == 4096 * MiB and 1024 * 770_560 * 4 // MiB == 3010
    assert _plan(GLM, "0.32.0", "auto", kv_cache_dtype="fp8", **GLM_FP8).context == 706_624


def test_prefill_factor_is_the_built_length_s():
    """Built at 1,048,576 tokens (factor 2), fitted to 200,000 (which alone would take factor 5): 16,777,216 keys,
    not 200,000 x 8 x 5 = 8,000,000."""
    settings = SimpleNamespace(max_num_batched_tokens=8192, max_num_seqs=1024, max_model_len=200_000)
    assert indexer_profile(resolve(GLM), settings, "0.32.0", (9, 0), 8, OWN).gather == GLM_GATHER
    assert indexer_profile(resolve(GLM), settings, "0.32.0", (9, 0), 8).gather == 8_000_000 * 132 + MiB


def test_v4_workspace_at_the_built_length():
    settings = SimpleNamespace(max_num_batched_tokens=16_384, max_num_seqs=1024, max_model_len=9_656)
    assert v4_prefill_workspace(resolve(FLASH), settings, (10, 0), "0.32.0", OWN) == 1_183_383_552
    # at the fitted 9,656 tokens: 4 x (2,414 + 128 + 16,384) x 1024 + the same top-k views
    assert v4_prefill_workspace(resolve(FLASH), settings, (10, 0), "0.32.0") == \
        4 * (2_414 + 128 + 16_384) * 1024 + 16_384 * 640 * 4 + 16_384 * 4


def test_v4_flash_b200_auto_fit_before_after():
    """DeepSeek-V4-Flash on one B200 at gpu_memory_utilization 0.86, vLLM 0.32.0: auto-fit keeps 9,656 tokens both
    ways (its estimate comes from the refusal at the built length), but the plan at 9,656 now keeps FlashMLA's
    1,183,383,552-byte workspace of the built length: 3.70 GiB of cache (9,660 tokens), not 4.69 (12,244)."""
    fitted = _plan(FLASH, "0.32.0", "auto", **FLASH_B200)
    assert fitted.context == 9_656
    assert fitted.engine.gpu_kv_cache_tokens == 9_660
    assert round(fitted.engine.available_kv_cache_bytes / GiB, 2) == 3.70


V4_TOPK = {FLASH: 512, PRO: 1024}


@pytest.mark.parametrize("model, release, capability, tp, expected", [
    (FLASH, "0.20.0", (9, 0), 8, 512 * MiB),  # V4's first release: the fixed 512 MiB
    (FLASH, "0.31.0", (9, 0), 8, 512 * MiB),
    (FLASH, "0.32.0", (9, 0), 1, 512 * MiB),  # no row-shard exchange at TP 1
    (FLASH, "0.32.0", (9, 0), 8, 512 * MiB + 2 * 8192 * 512 * 4),  # + 32 MiB: 544 MiB
    (PRO, "0.33.0", (9, 0), 8, 512 * MiB + 2 * 8192 * 1024 * 4),  # + 64 MiB
    # 0.34: float32 decode rows over the op's 1,048,576 // 4 = 262,144 tokens: 1024 x 262,144 x 4 = 1 GiB
    (FLASH, "0.34.0", (9, 0), 8, 1024 * 262_144 * 4),
    (FLASH, "0.34.0", (12, 0), 8, 1024 * 262_144 * 4),  # SM12x: not the 10.x family, float32
    # 10.x: bf16, 1024 x round_up(262,144, 1536) = 262,656 x 2 = 513 MiB < the 768 MiB prefill budget
    (FLASH, "0.34.0", (10, 0), 8, 768 * MiB),
    (PRO, "0.34.0", (10, 0), 8, 768 * MiB),
])
def test_v4_dummy_logits_by_release_and_gpu(model, release, capability, tp, expected):
    settings = SimpleNamespace(max_num_batched_tokens=8192, max_num_seqs=1024, max_model_len=OWN)
    assert dummy_logits_bytes(resolve(model), settings, release, capability, tp) == expected


def test_v4_0_34_sm10x_chunked_decode_rows():
    """4096 sequences on a B200 (16,384 batched tokens): chunked rows at most 2 GiB // (2 x 262,144) = 4096, so all
    4096 rows x 262,656 x 2 bytes; on an H200 (float32) 4096 x 262,144 x 4 = 4 GiB."""
    settings = SimpleNamespace(max_num_batched_tokens=16_384, max_num_seqs=4096, max_model_len=OWN)
    assert dummy_logits_bytes(resolve(PRO), settings, "0.34.0", (10, 0), 8) == 4096 * 262_656 * 2
    assert dummy_logits_bytes(resolve(PRO), settings, "0.34.0", (9, 0), 8) == 4 * GiB


def test_v4_logits_follow_the_built_length_too():
    settings = SimpleNamespace(max_num_batched_tokens=8192, max_num_seqs=1024, max_model_len=100_000)
    assert dummy_logits_bytes(resolve(FLASH), settings, "0.34.0", (9, 0), 8, OWN) == GiB
    # planned alone at 100,000: 1024 x round_up(25,000, 256) = 25,088 x 4 = 98 MiB < 512 MiB
    assert dummy_logits_bytes(resolve(FLASH), settings, "0.34.0", (9, 0), 8) == 512 * MiB


def test_v4_logits_join_the_profile_peak_on_cuda_only():
    """ROCm's V4 indexer is its own subclass (models/deepseek_v4/amd/rocm.py 0.34.0:1943-1953), not read: left out,
    as DeepSeek-V3.2's is."""
    (p,) = estimate(FLASH, gpu="H200", tensor_parallel_size=8, engine="vllm==0.32.0", max_model_len=8192)
    assert "DeepSeek-V4's lightning indexer's 544 MiB dummy logits join the forward" in \
        _terms(p)["profile_peak"].source
    (p,) = estimate(FLASH, gpu="mi300x", tensor_parallel_size=8, engine="vllm==0.32.0", max_model_len=8192)
    assert "dummy logits" not in _terms(p)["profile_peak"].source


def test_deepseek_v32_0_34_b200_logits_are_bf16():
    """DeepSeek-V3.2 at 163,840 tokens on 10.x: 1024 x round_up(163,840, 1536) = 164,352 x 2 = 321 MiB < 768 MiB;
    GLM-5.2 keeps float32 there (tests/test_indexer_s72.py: 512 rows x 1,049,088 x 4)."""
    settings = SimpleNamespace(max_num_batched_tokens=8192, max_num_seqs=1024, max_model_len=163_840)
    assert dummy_logits_bytes(resolve(V32), settings, "0.34.0", (10, 0), 8) == 768 * MiB
    assert dummy_logits_bytes(resolve(V32), settings, "0.34.0", (9, 0), 8) == 1024 * 163_840 * 4
