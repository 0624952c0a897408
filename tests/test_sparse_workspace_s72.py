"""Two workspace terms of vLLM's sparse MLA models, read in vLLM's sources (paths under vllm/ of the release named)
and checked here by hand arithmetic.

1. FLASHMLA_SPARSE reserves buffers in the process-wide workspace (v1/worker/workspace.py WorkspaceManager: one
   buffer, views rounded up to 256 bytes, grown to the largest request, never freed) as its layers are built
   (v1/attention/backends/mla/flashmla_sparse.py FlashMLASparseImpl.__init__), inside load_model's
   DeviceMemoryProfiler, so vLLM's weights figure holds them (gpu_model_runner.py 0.24.0:5171-5243):
   - 0.13.0-0.17.0 (:725-736 in 0.13.0 / 0.14.0, :571-582 in 0.17.0), fp8_ds_mla only: the bf16 prefill workspace,
     get_prefill_workspace_size = max_model_len x 5 rows (:360-367) of the 576-wide latent: 5 x L x 576 x 2 bytes;
   - 0.18.0-0.28.0 (0.24.0 :585-608): + the bf16 query buffer max_num_batched_tokens x the rank's heads x 576 first,
     alone for a 16-bit cache;
   - 0.29.0-0.30.0 (0.29.0 :589-628): a 16-bit cache's query buffer has its heads padded to prefill_padding, 64 on
     Hopper, 128 on SM100 (:583-585);
   - 0.31.0 (:737-795): + three prefill query buffers: tokens x padded heads x 576, tokens x padded heads x 512,
     tokens x heads x 512;
   - 0.32.0-0.34.0 (0.32.0 :782-838, 0.34.0 :803-851): prefill_padding 64 on every GPU (0.32.0 :760), the prefill
     rows max_model_len x sparse_mla_prefill_workspace_factor, 5 up to 256 Ki tokens, 2 past them (config/vllm.py
     0.32.0:1790-1798, 0.34.0:1795-1803).
   Up to 0.30 the layers keep views of that buffer (0.24.0 :599-608 self.q_concat_buffer, self.prefill_bf16_workspace),
   so when the profile run asks more (the fused-MoE buffers, the indexer's K gather) the manager drops its reference
   and allocates the whole request beside it (workspace.py 0.24.0:168-178); from 0.31 the layers keep none
   (0.31.0 :793-795 "Reserve capacity without retaining views"), so the buffer is replaced and the profile adds the
   excess only. Requests that fit allocate nothing: the fused-MoE buffers the profile peak counted leave it.
   GLM-5.2: 64 heads (8 a rank at TP 8), kv_lora_rank 512 + rope 64 = 576, its own 1,048,576 tokens, 8 experts of
   2048 / 8 = 256 over hidden 6144: fused-MoE workspace 8192 x 8 x (6144 + 6144) x 2 = 1,610,612,736 (as
   tests/test_indexer_s72.py). DeepSeek-V3.2: 128 heads (16 a rank), 163,840 tokens, hidden 7168:
   8192 x 8 x (7168 + 7168) x 2 = 1,879,048,192.
2. DeepSeek-V4's FlashMLA dummy branch reserves its prefill gather in the same workspace during the profile run
   (models/deepseek_v4/nvidia/flashmla.py 0.30.0-0.33.0 :105-131, 0.34.0 :101-127), which stays allocated after it:
   0.34's measured sizing counts it as used memory, not transient (v1/worker/extensible_kv_cache.py
   measure_kv_cache_bytes: margin max(1 GiB, 0.75 x the transient peak)). DeepSeek-V4-Flash at 1,048,576 tokens:
   4 rows x (1,048,576 / 4 + 128 + 8192 = 270,464) x 512 x 2 = 1,107,820,544, + 8192 x round_up(512 + 128, 128) = 640
   x 4 = 20,971,520, + 8192 x 4 = 32,768: 1,128,824,832 bytes.
"""

from dataclasses import replace
from types import SimpleNamespace

import pytest

from kvplan.api import estimate
from kvplan.engines.vllm_budget import flashmla_sparse_reservation, v4_prefill_workspace, v4_workspace_beyond_moe
from kvplan.engines.vllm_indexer_profile import flashmla_reservation, profile_allocation
from kvplan.engines.vllm_sparse import sixteen_bit_backend
from kvplan.engines.vllm_versions import behaviour
from kvplan.model.sources import resolve
from kvplan.plan.catalog import find_gpu

GLM, V32, V4 = "zai-org/GLM-5.2", "deepseek-ai/DeepSeek-V3.2", "deepseek-ai/DeepSeek-V4-Flash"
GiB = 2**30
LONG, SHORT = 1_048_576, 131_072
GLM_MOE, V32_MOE = 1_610_612_736, 1_879_048_192
# GLM-5.2 at TP 8, 8192 batched tokens
CONCAT = 8192 * 8 * 576 * 2  # 75,497,472: the query buffer, 8 heads a rank
PADDED_CONCAT = 8192 * 64 * 576 * 2  # 603,979,776: heads padded to 64
QUERIES = 8192 * 64 * 576 * 2 + 8192 * 64 * 512 * 2 + 8192 * 8 * 512 * 2  # 1,207,959,552: 0.31's three
PREFILL_5_LONG = 5 * LONG * 576 * 2  # 6,039,797,760
PREFILL_2_LONG = 2 * LONG * 576 * 2  # 2,415,919,104
PREFILL_5_SHORT = 5 * SHORT * 576 * 2  # 754,974,720
V4_WORKSPACE = 4 * 270_464 * 512 * 2 + 8192 * 640 * 4 + 8192 * 4


def test_hand_figures():
    assert CONCAT == 75_497_472 and PADDED_CONCAT == 603_979_776 and QUERIES == 1_207_959_552
    assert PREFILL_5_LONG == 6_039_797_760 and PREFILL_2_LONG == 2_415_919_104 and PREFILL_5_SHORT == 754_974_720
    assert CONCAT + PREFILL_5_LONG == 6_115_295_232  # 5.70 GiB: the brief's "about 5.6 GiB" at 0.24
    assert CONCAT + PREFILL_2_LONG + QUERIES == 3_699_376_128  # 3.45 GiB at 0.32-0.34
    assert V4_WORKSPACE == 1_128_824_832


def _settings(length):
    return SimpleNamespace(max_num_batched_tokens=8192, max_num_seqs=1024, max_model_len=length)


@pytest.mark.parametrize("release, cache, length, capability, expected", [
    ("0.12.0", "fp8_ds_mla", LONG, (9, 0), 0),  # none before the workspace manager
    ("0.13.0", "fp8_ds_mla", LONG, (9, 0), PREFILL_5_LONG),
    ("0.17.0", "fp8_ds_mla", LONG, (9, 0), PREFILL_5_LONG),
    ("0.17.0", "auto", LONG, (9, 0), 0),  # 16-bit: nothing before 0.18
    ("0.18.0", "fp8_ds_mla", LONG, (9, 0), CONCAT + PREFILL_5_LONG),
    ("0.24.0", "fp8_ds_mla", LONG, (9, 0), CONCAT + PREFILL_5_LONG),
    ("0.24.0", "fp8_ds_mla", SHORT, (9, 0), CONCAT + PREFILL_5_SHORT),
    ("0.24.0", "auto", LONG, (9, 0), CONCAT),
    ("0.28.0", "auto", LONG, (10, 0), CONCAT),  # unpadded up to 0.28
    ("0.29.0", "auto", LONG, (9, 0), PADDED_CONCAT),
    ("0.29.0", "auto", LONG, (10, 0), 8192 * 128 * 576 * 2),  # SM100 pads to 128
    ("0.29.0", "fp8_ds_mla", LONG, (9, 0), CONCAT + PREFILL_5_LONG),  # a quantized cache's heads stay unpadded
    ("0.31.0", "fp8_ds_mla", LONG, (9, 0), CONCAT + PREFILL_5_LONG + QUERIES),  # still x 5 at 1 Mi tokens
    ("0.32.0", "fp8_ds_mla", LONG, (9, 0), CONCAT + PREFILL_2_LONG + QUERIES),
    ("0.34.0", "fp8_ds_mla", LONG, (9, 0), 3_699_376_128),
    ("0.34.0", "fp8_ds_mla", SHORT, (9, 0), CONCAT + PREFILL_5_SHORT + QUERIES),
    ("0.34.0", "fp8_ds_mla", 262_144, (9, 0), CONCAT + 5 * 262_144 * 1152 + QUERIES),  # 256 Ki: still x 5
    ("0.34.0", "nvfp4_ds_mla", LONG, (10, 0), 3_699_376_128),  # the same bf16 buffers
    ("0.34.0", "auto", LONG, (10, 0), PADDED_CONCAT),
])
def test_glm52_reservation_by_release(release, cache, length, capability, expected):
    assert flashmla_reservation(resolve(GLM), _settings(length), 8, cache, release, capability) == expected


def test_v32_reservation_at_0_32():
    """16 heads a rank at TP 8, 163,840 tokens (factor 5): 8192 x 16 x 576 x 2 + 5 x 163,840 x 1152 + 8192 x 64 x
    576 x 2 + 8192 x 64 x 512 x 2 + 8192 x 16 x 512 x 2."""
    expected = 150_994_944 + 943_718_400 + 603_979_776 + 536_870_912 + 134_217_728
    assert expected == 2_369_781_760
    assert flashmla_reservation(resolve(V32), _settings(163_840), 8, "fp8_ds_mla", "0.32.0", (9, 0)) == expected


def test_built_length_sets_the_reservation():
    """The layers are built at the length asked (`length`), which auto-fit may lower afterwards."""
    assert flashmla_reservation(resolve(GLM), _settings(SHORT), 8, "fp8_ds_mla", "0.24.0", (9, 0), LONG) == \
        CONCAT + PREFILL_5_LONG


@pytest.mark.parametrize("reserved, needed, release, expected", [
    (1000, 900, "0.24.0", 0), (1000, 900, "0.34.0", 0),  # fits either way
    (1000, 1500, "0.30.0", 1500),  # the layers keep the old buffer: the whole request beside it
    (1000, 1500, "0.31.0", 500),  # the old buffer freed: the excess
    (0, 1500, "0.24.0", 1500), (0, 1500, "0.34.0", 1500),
])
def test_profile_allocation(reserved, needed, release, expected):
    assert profile_allocation(reserved, needed, release) == expected


@pytest.mark.parametrize("capability, release, heads, expected", [
    ((9, 0), "0.24.0", 8, "FLASHMLA_SPARSE"),
    ((9, 0), "0.25.0", 8, "FLASH_ATTN_MLA_SPARSE"),  # cuda.py 0.25.0:134-141
    ((9, 0), "0.34.0", 8, "FLASH_ATTN_MLA_SPARSE"),
    ((10, 0), "0.32.0", 8, "FLASHINFER_MLA_SPARSE"),
    ((10, 0), "0.32.0", 32, "FLASHMLA_SPARSE"),  # more than 16 heads a rank
    ((10, 0), "0.16.0", 8, "FLASHMLA_SPARSE"),  # no FlashInfer sparse backend yet
    ((12, 0), "0.32.0", 8, "FLASHINFER_MLA_SPARSE_SM120"),
    (("rocm",), "0.32.0", 8, "ROCM_AITER_MLA_SPARSE"),
])
def test_sixteen_bit_backend(capability, release, heads, expected):
    assert sixteen_bit_backend(capability, release, heads) == expected


@pytest.mark.parametrize("model, gpu, release, dtype, expected", [
    (GLM, "H200", "0.24.0", "fp8", CONCAT + PREFILL_5_LONG),
    (GLM, "H200", "0.24.0", "auto", CONCAT),  # bfloat16 on FLASHMLA_SPARSE
    (GLM, "H200", "0.34.0", "fp8", 3_699_376_128),
    (GLM, "H200", "0.34.0", "auto", 0),  # FLASH_ATTN_MLA_SPARSE
    (GLM, "B200", "0.32.0", "fp8", 0),  # FLASHINFER_MLA_SPARSE keeps a plain fp8 latent
    (V32, "B200", "0.32.0", "fp8", 0),
    (V32, "mi300x", "0.32.0", "fp8", 0),
    (V32, "H200", "0.32.0", "fp8", 2_369_781_760),
    (V32, "H200", "0.15.1", "fp8", 5 * 163_840 * 1152),  # models/config.py turns fp8 into fp8_ds_mla there
])
def test_reservation_only_on_flashmla_sparse(model, gpu, release, dtype, expected):
    spec = resolve(model)
    settings = _settings(spec.max_position_embeddings)
    assert flashmla_sparse_reservation(spec, 8, settings, release, find_gpu(gpu), dtype) == expected


def _terms(model, release, kv, **flags):
    (p,) = estimate(model, gpu="H200", tensor_parallel_size=8, engine=f"vllm=={release}", kv_cache_dtype=kv,
                    **flags)
    return p, {t.name: t.bytes for t in p.budget.terms}


def test_glm52_0_24_default_length_reservation_holds_the_workspace():
    """GLM-5.2, 8 x H200, --quantization fp8, vLLM 0.24.0, 1,048,576 tokens. fp8 against auto (bfloat16, whose
    reservation is the query buffer alone): the weights differ by the prefill workspace; the profile run's K gather
    (41,943,040 keys x 132 + 1 MiB = 5,537,529,856) and fused-MoE buffers fit in the 6,115,295,232 reserved with fp8,
    so its peak loses the gather's 3,926,917,120 growth past the fused-MoE buffers and those 1,610,612,736, held
    under the sampler pass, which is the peak either way."""
    _, fp8 = _terms(GLM, "0.24.0", "fp8", quantization="fp8")
    _, bf16 = _terms(GLM, "0.24.0", "auto", quantization="fp8")
    assert fp8["weights"] - bf16["weights"] == PREFILL_5_LONG
    assert bf16["profile_peak"] - fp8["profile_peak"] == 3_926_917_120 + GLM_MOE


def test_glm52_0_24_short_length_keeps_the_reservation_beside_the_workspace():
    """At 131,072 tokens the reservation (830,472,192) is smaller than the fused-MoE buffers: 0.24's layers keep it,
    so the profile run allocates the buffers in full beside it and the peak is as with bfloat16."""
    _, fp8 = _terms(GLM, "0.24.0", "fp8", quantization="fp8", max_model_len=SHORT)
    _, bf16 = _terms(GLM, "0.24.0", "auto", quantization="fp8", max_model_len=SHORT)
    assert fp8["weights"] - bf16["weights"] == PREFILL_5_SHORT
    assert fp8["profile_peak"] == bf16["profile_peak"]


@pytest.mark.parametrize("length, reserved, held", [
    (None, 3_699_376_128, 2_215_641_088),  # the 16,777,216-key gather (x 132 + 1 MiB) past the MoE buffers
    (SHORT, 2_038_431_744, GLM_MOE),  # 5,242,880 keys: 692,060,160 + 1 MiB fit in the MoE buffers
])
def test_glm52_0_34(length, reserved, held):
    """0.34.0 (bfloat16 runs on FLASH_ATTN_MLA_SPARSE: no reservation): the fp8 weights gain the reservation, and the
    profile peak loses the workspace the bfloat16 run allocates (the larger of the gather and the MoE buffers), which
    the fp8 reservation holds."""
    flags = {"quantization": "fp8", **({"max_model_len": length} if length else {})}
    _, fp8 = _terms(GLM, "0.34.0", "fp8", **flags)
    _, bf16 = _terms(GLM, "0.34.0", "auto", **flags)
    assert fp8["weights"] - bf16["weights"] == reserved
    assert bf16["profile_peak"] - fp8["profile_peak"] == held


def test_v32_0_32_released_buffer():
    """DeepSeek-V3.2, 8 x H200, 0.32.0: the 2,369,781,760 reserved hold the 1,879,048,192 MoE buffers; at 8192
    tokens the reservation (8192 x 16 x 576 x 2 + 5 x 8192 x 1152 + 1,275,068,416 = 1,473,249,280) is smaller, and
    0.32 frees it as the profile grows the workspace: the peak gains only the excess, so weights + peak equal
    bfloat16's (FLASH_ATTN_MLA_SPARSE, no reservation)."""
    _, fp8 = _terms(V32, "0.32.0", "fp8")
    _, bf16 = _terms(V32, "0.32.0", "auto")
    assert fp8["weights"] - bf16["weights"] == 2_369_781_760
    assert bf16["profile_peak"] - fp8["profile_peak"] == V32_MOE
    _, fp8 = _terms(V32, "0.32.0", "fp8", max_model_len=8192)
    _, bf16 = _terms(V32, "0.32.0", "auto", max_model_len=8192)
    assert fp8["weights"] - bf16["weights"] == 1_473_249_280 == 150_994_944 + 47_185_920 + 1_275_068_416
    assert fp8["weights"] + fp8["profile_peak"] == bf16["weights"] + bf16["profile_peak"]


def test_v4_workspace_stays_allocated_at_0_34():
    """DeepSeek-V4-Flash, 8 x H200, 0.34.0: the 1,128,824,832-byte workspace is part of what the profile leaves
    allocated, so the margin is 0.75 x the rest of the peak (here above the 1 GiB floor)."""
    (p,) = estimate(V4, gpu="H200", tensor_parallel_size=8, engine="vllm==0.34.0")
    terms = {t.name: t for t in p.budget.terms}
    assert "1.05 GiB of it stays allocated" in terms["profile_peak"].source
    assert terms["margin"].bytes == int(0.75 * (terms["profile_peak"].bytes - V4_WORKSPACE))


def test_v4_workspace_shares_the_moe_buffers():
    """With fp8 experts (V4-Flash-Base's expert_dtype) the modular kernel's buffers, 8192 x 6 x (4096 + 4096) x 2 =
    805,306,368 at TP 8 (2048 / 8 = 256 wide), sit in the same workspace: V4's gather adds only its excess. The
    bundled MXFP4 experts keep no workspace in kvplan's rule (vllm_mxfp4.kernel), so the whole gather adds."""
    spec = resolve(V4)
    settings = _settings(LONG)
    rules = behaviour("0.34.0")
    assert v4_prefill_workspace(spec, settings, (9, 0), "0.34.0") == V4_WORKSPACE
    assert v4_workspace_beyond_moe(spec, 8, settings, rules, (9, 0), "0.34.0") == V4_WORKSPACE
    fp8 = replace(spec, params=tuple(replace(g, stored="fp8") if g.name == "experts" else g for g in spec.params))
    assert v4_workspace_beyond_moe(fp8, 8, settings, rules, (9, 0), "0.34.0") == V4_WORKSPACE - 805_306_368
