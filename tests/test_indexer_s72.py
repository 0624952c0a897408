"""Two memory terms of DeepSeek sparse attention's lightning indexer in vLLM, read in vLLM's sources (paths under
vllm/ of the release named) and checked here by hand arithmetic.

1. The indexers vLLM 0.16-0.23 build on GLM-5.2's 57 layers that reuse a top-k (engines/vllm_index_share.py):
   model_executor/models/deepseek_v2.py Indexer.__init__ builds, whole on every rank,
   - wq_b: ReplicatedLinear q_lora_rank 2048 -> index_n_heads 32 x index_head_dim 128 = 8,388,608 weights, with the
     attention's quant_config (0.16.0 :614-618, 0.20.0 :632-636, 0.23.0 :627-631): fp8 (1 byte) and one float32
     scale under --quantization fp8 (online, per tensor), bf16 unquantised;
   - 0.16.0-0.19.1: wk ReplicatedLinear hidden 6144 -> 128 with the quant_config (786,432 weights) and weights_proj
     6144 -> 32 with none (196,608 bf16 weights = 393,216 bytes) (0.16.0 :621-633, 0.19.1 :642-654);
     0.20.0 on: wk_weights_proj MergedColumnParallelLinear 6144 -> 128 + 32, quant_config None (983,040 bf16
     weights = 1,966,080 bytes) (0.20.0 :641-645, 0.23.0 :636-640);
   - k_norm: LayerNorm(128) with float32 weight and bias: 1,024 bytes (layers/layernorm.py 0.23.0 :322-323).
   One indexer: --quantization fp8, 0.20-0.23: 8,388,608 + 4 + 1,966,080 + 1,024 = 10,355,716 bytes;
   0.16-0.19: 8,388,608 + 4 + 786,432 + 4 + 393,216 + 1,024 = 9,569,288; bf16, 0.20-0.23: 16,777,216 + 1,966,080 +
   1,024 = 18,744,320. kvplan prices the quantised projections at the attention group's mean bytes a parameter
   (its scales spread over it), so within a few bytes a layer of vLLM's figure: TOLERANCE.
2. The indexer's profile-run buffers (engines/vllm_indexer_profile.py): model_executor/layers/sparse_attn_indexer.py's
   dummy branch (no attention metadata in the profile run) reserves its K gather in the shared workspace
   (0.20.0 :108-117, 0.23.0 :106-115, 0.32.0 :444-461): get_max_prefill_buffer_size keys (v1/attention/backends/mla/
   indexer.py: max_model_len x 40 to 0.31, 0.23.0 :219-229; x 8 x (5, or 2 past 256 Ki tokens) from 0.32, :918-929)
   x (128 fp8 + 4 scale bytes) + 1 MiB radix top-k; then a dummy logits tensor, freed at return: 512 MiB from 0.19
   (0.19.0 :58-61, 0.23.0 :119-122); in 0.32-0.33, with TP > 1, the row-shard exchange's 2 x max_num_batched_tokens
   x index_topk x 4 bytes beside it (0.32.0 :370-396, :472); in 0.34 max(512 MiB, min(max_num_seqs,
   max_num_batched_tokens) x round_up(max_model_len, 256, or 768 on 10.x) x 4), the rows on 10.x at most
   2 GiB // (4 x max_model_len) (0.34.0 :626-664).
   The fused-MoE workspace shares the gather's buffer: GLM-5.2 at TP 8 over 8192 tokens, 8 experts a token, a rank's
   expert intermediate 2048 / 8 = 256, hidden 6144: 8192 x 8 x (max(256, 6144) + max(512, 6144)) x 2 bytes =
   1,610,612,736 (engines/vllm_profile.py moe_workspace, unchanged here).
"""

from types import SimpleNamespace

import pytest

from kvplan.api import estimate
from kvplan.engines.vllm_index_share import shared_indexer_weights
from kvplan.engines.vllm_indexer_profile import dummy_logits_bytes, gather_bytes, prefill_buffer_keys
from kvplan.engines.vllm_profile import forward_peak
from kvplan.engines.vllm_versions import behaviour
from kvplan.model.quantization import with_quantization
from kvplan.model.sources import resolve

GLM, V32 = "zai-org/GLM-5.2", "deepseek-ai/DeepSeek-V3.2"
MiB, GiB = 2**20, 2**30
SHARING = 57  # GLM-5.2's layers that reuse a top-k (index_topk_freq 4, offset 3: 21 of 78 run an indexer)
FP8_NEW = 8_388_608 + 4 + 1_966_080 + 1_024  # one indexer, --quantization fp8, 0.20-0.23
FP8_OLD = 8_388_608 + 4 + 786_432 + 4 + 393_216 + 1_024  # 0.16-0.19: wk quantised too
BF16_NEW = 16_777_216 + 1_966_080 + 1_024
TOLERANCE = SHARING * 8  # bytes: the group's mean rate against vLLM's one float32 scale a projection
MOE_WORKSPACE = 8192 * 8 * (6144 + 6144) * 2


def test_hand_figures():
    assert FP8_NEW == 10_355_716 and FP8_OLD == 9_569_288 and BF16_NEW == 18_744_320
    assert MOE_WORKSPACE == 1_610_612_736
    assert 40 * 1_048_576 == 41_943_040 and 41_943_040 * 132 + MiB == 5_537_529_856
    assert 5_537_529_856 - MOE_WORKSPACE == 3_926_917_120


@pytest.mark.parametrize("release, one", [("0.16.0", FP8_OLD), ("0.19.1", FP8_OLD), ("0.20.0", FP8_NEW),
                                          ("0.23.0", FP8_NEW), ("0.24.0", 0), ("0.32.0", 0)])
def test_extra_indexer_weights_by_release(release, one):
    spec = with_quantization(resolve(GLM), "fp8")
    assert abs(shared_indexer_weights(spec, None, release) - SHARING * one) <= TOLERANCE


def test_bf16_extra_indexers_and_none_for_deepseek_v32():
    assert abs(shared_indexer_weights(resolve(GLM), None, "0.23.0") - SHARING * BF16_NEW) <= TOLERANCE
    assert shared_indexer_weights(resolve(V32), None, "0.20.0") == 0  # an indexer on every layer: none shared


def test_pipeline_stages_hold_their_own_layers_extra_indexers():
    """pp 2: layers 0-38 hold 12 indexer layers (0, 1, 2, 6, ..., 38), so 27 sharing ones; 39-77 hold 9 (42, ..., 74),
    so 30."""
    spec = with_quantization(resolve(GLM), "fp8")
    first, second = SimpleNamespace(first_layer=0, end_layer=39), SimpleNamespace(first_layer=39, end_layer=78)
    assert abs(shared_indexer_weights(spec, first, "0.23.0") - 27 * FP8_NEW) <= TOLERANCE
    assert abs(shared_indexer_weights(spec, second, "0.23.0") - 30 * FP8_NEW) <= TOLERANCE


def _terms(release, **flags):
    (p,) = estimate(GLM, gpu="H200", tensor_parallel_size=8, engine=f"vllm=={release}", **flags)
    return p, {t.name: t for t in p.budget.terms}


def test_glm52_quantised_at_0_23_before_and_after():
    """The brief's case: GLM-5.2, 8 x H200, vLLM 0.23.0, --quantization fp8, its own 1,048,576 tokens. The weights
    term gains the 57 indexers; the profile peak (the sampler pass's, which holds the workspace) gains the gather's
    growth past the fused-MoE buffers; at 131,072 tokens the 0.65 GiB gather fits in them and the peak is as
    before."""
    _, terms = _terms("0.23.0", quantization="fp8")
    _, short_terms = _terms("0.23.0", quantization="fp8", max_model_len=131072)
    assert "lightning indexers vLLM 0.23.0 builds" in terms["weights"].source
    assert terms["weights"].bytes == short_terms["weights"].bytes
    assert terms["profile_peak"].bytes - short_terms["profile_peak"].bytes == 3_926_917_120
    assert "K gather (41,943,040 keys, 5.16 GiB) grows the shared workspace 3.66 GiB" in terms["profile_peak"].source
    assert "K gather (5,242,880 keys, 0.65 GiB) fits in the shared workspace" in short_terms["profile_peak"].source
    _, terms_024 = _terms("0.24.0", quantization="fp8", max_model_len=131072)
    assert "lightning indexers" not in terms_024["weights"].source


def test_prefill_buffer_keys_and_gather_by_release():
    assert prefill_buffer_keys(163_840, "0.31.0") == 6_553_600
    assert prefill_buffer_keys(163_840, "0.32.0") == 163_840 * 8 * 5
    assert prefill_buffer_keys(1_048_576, "0.32.0") == 1_048_576 * 8 * 2 == 16_777_216
    assert gather_bytes(6_553_600, 128, "0.19.0") == 6_553_600 * 132  # no radix workspace before 0.20
    assert gather_bytes(6_553_600, 128, "0.20.0") == 6_553_600 * 132 + MiB


@pytest.mark.parametrize("release, tp, expected", [
    ("0.18.0", 8, 0),
    ("0.19.0", 8, 512 * MiB),
    ("0.24.0", 8, 512 * MiB),
    ("0.31.0", 8, 512 * MiB),
    ("0.32.0", 1, 512 * MiB),
    ("0.32.0", 8, 512 * MiB + 2 * 8192 * 2048 * 4),  # + the row-shard exchange (128 MiB)
    ("0.33.0", 8, 512 * MiB + 2 * 8192 * 2048 * 4),
])
def test_dummy_logits_by_release(release, tp, expected):
    settings = SimpleNamespace(max_num_batched_tokens=8192, max_num_seqs=1024, max_model_len=163_840)
    assert dummy_logits_bytes(resolve(V32), settings, release, (9, 0), tp) == expected


@pytest.mark.parametrize("model, length, capability, expected", [
    (V32, 163_840, (9, 0), 1024 * 163_840 * 4),  # 640 MiB of float32 decode logits on Hopper
    # 10.x: DeepSeek-V3.2's config hook makes its logits bf16 there (0.34.0 model_executor/models/config.py :68-95),
    # with a float32 copy: the prefill budget 512 MiB / 4 x (2 + 4) = 768 MiB tops 1024 x 164,352 x 2 (sparse_fit_s72)
    (V32, 163_840, (10, 0), 768 * MiB),
    (GLM, 1_048_576, (9, 0), 1024 * 1_048_576 * 4),  # 4 GiB
    (GLM, 1_048_576, (10, 0), 512 * 1_049_088 * 4),  # 10.x: 2 GiB // (4 x 1 Mi) = 512 rows a chunk
    (V32, 32_768, (9, 0), 512 * MiB),  # 1024 x 32,768 x 4 = 128 MiB: the 512 MiB prefill budget binds
])
def test_0_34_decode_logits(model, length, capability, expected):
    settings = SimpleNamespace(max_num_batched_tokens=8192, max_num_seqs=1024, max_model_len=length)
    assert dummy_logits_bytes(resolve(model), settings, "0.34.0", capability, 8) == expected


def test_deepseek_v32_0_32_peak_is_the_forward_with_the_dummy_logits():
    """DeepSeek-V3.2 on 8 x H200, vLLM 0.32.0 defaults (163,840 tokens, 8192 batched, 1024 sequences): its 0.81 GiB
    gather fits in the 1.75 GiB fused-MoE workspace; the 640 MiB of logits (512 + the 128 MiB exchange) come while
    the fp8 experts' e4m3 copies of x and the activated intermediate, (7168 + 8 x 256) x 8192 bytes, are not live, so
    the forward pass gains 671,088,640 - 75,497,472 bytes and now tops the sampler pass."""
    (p,) = estimate(V32, gpu="H200", tensor_parallel_size=8, engine="vllm==0.32.0")
    peak = next(t for t in p.budget.terms if t.name == "profile_peak")
    forward = forward_peak(resolve(V32), 8, 8192, behaviour("0.32.0"))
    assert peak.bytes == forward + 671_088_640 - (7168 + 8 * 256) * 8192
    assert "fits in the shared workspace the fused-MoE buffers hold, and its 640 MiB dummy logits" in peak.source


def test_the_0_34_extensible_sizing_keeps_the_grown_workspace_allocated():
    """GLM-5.2 at vLLM 0.34 (8 x H200, 1,048,576 tokens): the workspace after the profile is the indexer's gather,
    16,777,216 keys x 132 + 1 MiB, which exceeds the fused-MoE buffers; V2's FlashInfer sampler caches no rows."""
    p, _ = _terms("0.34.0")
    assert p.budget.measured.persistent_bytes == 16_777_216 * 132 + MiB


def test_rocm_and_releases_before_0_16_are_left_alone():
    (p,) = estimate(V32, gpu="mi300x", tensor_parallel_size=8, engine="vllm==0.32.0")
    assert "lightning indexer" not in next(t for t in p.budget.terms if t.name == "profile_peak").source
    (p,) = estimate(V32, gpu="H200", tensor_parallel_size=8, engine="vllm==0.15.1")
    assert "lightning indexer" not in next(t for t in p.budget.terms if t.name == "profile_peak").source
