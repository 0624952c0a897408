"""vLLM 0.33 / 0.34 model-side rules (kvplan/engines/vllm_specs.py, vllm_eplb.py), each number hand arithmetic from
the rule as read in the sources (vllm-0.3x.0/vllm, paths below):
- 0.34 config/cache.py:185 DEFAULT_BLOCK_SIZE = 64 (0.33.0 :185 = 16), kept by every Hopper backend kvplan models
  (v1/attention/backend.py:158-166 get_preferred_block_size: FlashAttention MultipleOf(16), FLASHMLA [64]).
- 0.33 Qwen's gated DeltaNet on FlashInfer's GDN prefill (model_executor/layers/mamba/gdn/qwen_gdn_linear_attn.py
  :689-702, :739-750; _resolve_gdn_prefill_backend :249-267: SM 9.0, or 10.x / 12.x with head_k_dim 128 and CUDA
  13) in "align" mode: num_prefill_checkpoint_blocks=1 and an alignment of 64 (v1/attention/backends/gdn_attn.py:34)
  folded into the hybrid block by lcm (platforms/interface.py:1089-1094); Mamba-2 declares no alignment.
- SM10x sparse MLA at --block-size 32: FLASHINFER_MLA_SPARSE takes it, the indexer takes 64 only, and
  v1/worker/utils.py select_common_block_size raises (0.18.0 :326, 0.30.0 :386, 0.31.0 :386-392, 0.32.0 :554-561).
- 0.34 config/parallel.py:652-682: an unset num_redundant_experts is (ep - E % ep) % ep (0.33.0 :77 default 0).
"""

import json

import pytest
from conftest import run_kvplan

from kvplan.engines import vllm
from kvplan.engines.vllm_settings import Settings
from kvplan.engines.vllm_eplb import Eplb, eplb
from kvplan.engines.vllm_sparse import ROCM
from kvplan.engines.vllm_specs import (attention_block_size, cuda_sparse_block_refusal, default_block_size,
                                       hybrid_block_size, layer_spec, prefill_checkpoint_alignment)
from kvplan.engines.vllm_versions import behaviour
from kvplan.model.kinds import FullAttention, LinearState
from kvplan.model.precision import PRECISIONS
from kvplan.model.sources import resolve

QWEN3_NEXT, QWEN35_9B = "Qwen/Qwen3-Next-80B-A3B-Thinking", "Qwen/Qwen3.5-9B"
NEMOTRON_H, V32, GLM = "nvidia/Nemotron-H-8B-Base-8K", "deepseek-ai/DeepSeek-V3.2", "zai-org/GLM-5.2"
HOPPER, AMPERE, ADA, B200, B300, SM120 = (9, 0), (8, 0), (8, 9), (10, 0), (10, 3), (12, 0)
# Qwen3-Next: 2 KV heads x 256 x (K, V) x 2 bytes = 2,048 B a token; a GDN state of 3 x (2 x 16 x 128 + 32 x 128)
# conv + 32 x 128 x 128 recurrent elements in bf16 = 1,097,728 B (TP 1)
NEXT_TOKEN, NEXT_STATE = 2 * 256 * 2 * 2, (3 * (2 * 16 * 128 + 32 * 128) + 32 * 128 * 128) * 2


def _engine(model, *args):
    run = run_kvplan("estimate", model, "--format", "json", *args)
    assert run.returncode == 0, run.stderr
    (plan,) = json.loads(run.stdout)["plans"]
    return plan


# 1. the default block


def test_the_default_block_is_16_up_to_0_33_and_64_from_0_34():
    assert [default_block_size(v) for v in ("0.32.0", "0.33.0", "0.34.0")] == [16, 16, 64]
    dense = (FullAttention(8, 128),)
    assert attention_block_size(dense, False, None, "0.33.0") == 16
    assert attention_block_size(dense, False, None, "0.34.0") == 64
    assert attention_block_size(dense, False, 32, "0.34.0") == 32  # --block-size as given (phase 1 skipped)


def test_llama_pages_64_tokens_from_0_34():
    for release, block in (("0.33.0", 16), ("0.34.0", 64)):
        plan = _engine("meta-llama/Llama-3.1-8B", "--gpu", "H100", "-c", "8K", "--engine", f"vllm=={release}")
        assert plan["engine"]["block_size"] == block


def test_fp8_mla_stays_64_and_rocm_sparse_mla_takes_the_new_default():
    """FLASHMLA's [64] is the default itself in 0.34; ROCm's sparse MLA backends ([1, MultipleOf(16)], 0.34.0
    rocm_aiter_mla_sparse.py:361-362, indexer.py:238) keep the default: 16 in 0.33, 64 in 0.34."""
    v32 = resolve(V32).layers
    mla = tuple(layer for layer in resolve("deepseek-ai/DeepSeek-V3").layers)
    assert attention_block_size(mla, True, None, "0.33.0") == attention_block_size(mla, True, None, "0.34.0") == 64
    assert attention_block_size(mla, False, None, "0.33.0", HOPPER) == 16
    assert attention_block_size(mla, False, None, "0.34.0", HOPPER) == 64
    assert attention_block_size(v32, False, None, "0.33.0", ROCM) == 16
    assert attention_block_size(v32, False, None, "0.34.0", ROCM) == 64
    assert attention_block_size(v32, False, 32, "0.34.0", ROCM) == 32


def test_mamba2_hybrid_blocks_are_multiples_of_64_from_0_34():
    """Nemotron-H-8B: 8 KV heads x 128 x 2 x 2 B = 4,096 B a token; a Mamba-2 state of 3 x (8,192 + 2 x 8 x 128)
    bf16 conv elements and 128 x 64 x 128 float32 SSM ones = 4,255,744 B: 16 x ceil(4,255,744 / 65,536) = 16 x 65 =
    1,040 tokens up to 0.33, 64 x ceil(4,255,744 / 262,144) = 64 x 17 = 1,088 from 0.34 (the block chosen so far is
    the default 64, and _align_hybrid_block_size aligns to max(kernel block, block))."""
    state = 3 * (8192 + 2 * 8 * 128) * 2 + 128 * 64 * 128 * 4
    assert state == 4_255_744
    assert hybrid_block_size(4096, state, 16, False) == 1040
    assert hybrid_block_size(4096, state, 64, False) == 1088
    for release, block in (("0.32.0", 1040), ("0.33.0", 1040), ("0.34.0", 1088)):
        plan = _engine(NEMOTRON_H, "--gpu", "H100", "-c", "8K", "--engine", f"vllm=={release}")
        assert plan["engine"]["block_size"] == block
        # the NemotronH config handler's line first (models/config.py 0.34.0:1159-1162), then the hybrid rule's
        assert "Updating mamba_ssm_cache_dtype to 'float32'" in plan["engine"]["log_lines"][0]
        assert f"Setting attention block size to {block} tokens" in plan["engine"]["log_lines"][1]


# 2. gated DeltaNet prefill checkpoints from 0.33


def test_gdn_checkpoints_where_flashinfer_runs_the_prefill():
    """FlashInfer's GDN prefill: SM 9.0 exactly, or the 10.x / 12.x families (kvplan assumes vLLM's CUDA 13 wheels
    and head_k_dim 128, every Qwen3-Next / Qwen3.5 config's); Triton elsewhere; none of it before 0.33."""
    layers = resolve(QWEN3_NEXT).layers
    for gpu in ((), HOPPER, B200, B300, SM120):
        assert prefill_checkpoint_alignment(layers, "0.33.0", gpu) == 64
        assert prefill_checkpoint_alignment(layers, "0.34.0", gpu) == 64
    for gpu in (AMPERE, ADA, ROCM):
        assert prefill_checkpoint_alignment(layers, "0.33.0", gpu) is None
    assert prefill_checkpoint_alignment(layers, "0.32.0", HOPPER) is None
    # Mamba-2 declares no alignment (abstract.py get_prefill_checkpoint_alignment None): the model has none
    assert prefill_checkpoint_alignment(resolve(NEMOTRON_H).layers, "0.33.0", HOPPER) is None


def test_a_gdn_layer_keeps_three_state_blocks_with_the_checkpoint():
    """MambaSpec.max_memory_usage_bytes in "align" mode: 2 + num_prefill_checkpoint_blocks pages a request."""
    gdn = next(layer for layer in resolve(QWEN3_NEXT).layers if isinstance(layer, LinearState))
    bf16 = PRECISIONS["bf16"]
    plain = layer_spec(gdn, 576, 1, bf16, (2, 2), 576)
    checkpointed = layer_spec(gdn, 576, 1, bf16, (2, 2), 576, prefill_alignment=64)
    assert (plain.checkpoint_blocks, checkpointed.checkpoint_blocks) == (0, 1)
    assert plain.blocks_per_request(32768, 8192, True) == 2
    assert checkpointed.blocks_per_request(32768, 8192, True) == 3
    assert checkpointed.blocks_per_request(32768, 8192, False) == 1  # prefix caching off: one state block
    assert checkpointed.page_bytes == NEXT_STATE


def test_qwen3_next_block_544_becomes_576_with_the_alignment():
    """16 x ceil(1,097,728 / (16 x 2,048)) = 16 x 34 = 544; with lcm(16, 64) = 64: 64 x ceil(1,097,728 / 131,072)
    = 64 x 9 = 576 (the same from 0.34's default 64 alone)."""
    assert NEXT_STATE == 1_097_728
    assert hybrid_block_size(NEXT_TOKEN, NEXT_STATE, 16, False) == 544
    assert hybrid_block_size(NEXT_TOKEN, NEXT_STATE, 16, False, prefill_alignment=64) == 576
    assert hybrid_block_size(NEXT_TOKEN, NEXT_STATE, 64, False) == 576


def test_qwen35_9b_by_release_and_gpu():
    """Qwen3.5-9B: 4 KV heads x 256 x 2 x 2 = 4,096 B a token; a GDN state of 3 x (2 x 16 x 128 + 32 x 128) = 24,576
    conv elements in bf16 and 32 x 128 x 128 = 524,288 recurrent ones in float32 (the config's mamba_ssm_dtype, which
    model_executor/models/config.py Qwen3_5ForConditionalGenerationConfig copies into mamba_ssm_cache_dtype: 0.32.0
    :853-879, 0.34.0 :1293-1319): 49,152 + 2,097,152 = 2,146,304 B, what 0.34.0's own MambaSpec(shapes=
    gated_delta_net_state_shape(1, 16, 32, 128, 128, 4), dtypes=(bf16, fp32)).page_size_bytes prints. 2,146,304 /
    4,096 = 524 tokens: 16 x 33 = 528, or 64 x 9 = 576 aligned to 64. At 32K, one group of the 8 attention layers and
    three of the 24 GDN layers: ceil(32,768 / 528) = 63 attention blocks + 3 x 2 state blocks = 69 a request in 0.32;
    in 0.33 on an H100 (or a B200) ceil(32,768 / 576) = 57 + 3 x 3 = 66; on an A100 (Triton's GDN prefill) 0.33 keeps
    0.32's, and 0.34 pages 576 (its default 64) with 2 state blocks: 57 + 6 = 63."""
    expected = {("H100", "0.32.0"): (528, 69), ("H100", "0.33.0"): (576, 66), ("H100", "0.34.0"): (576, 66),
                ("B200", "0.33.0"): (576, 66), ("A100-80GB", "0.33.0"): (528, 69),
                ("A100-80GB", "0.34.0"): (576, 63)}
    for (gpu, release), (block, per_request) in expected.items():
        engine = _engine(QWEN35_9B, "--gpu", gpu, "-c", "32K", "--engine", f"vllm=={release}")["engine"]
        assert (engine["block_size"], engine["blocks_per_request"]) == (block, per_request), (gpu, release)


def test_prefix_caching_off_keeps_0_32s_block():
    """No "align" mode, no checkpoint and no alignment (qwen_gdn_linear_attn.py:692-694, interface.py:1089): 528 (the
    2,146,304-byte state over 4,096 B a token = 524 tokens, to a multiple of 16), against 576 aligned to 64."""
    spec, bf16 = resolve(QWEN35_9B), PRECISIONS["bf16"]
    for caching, block, checkpoints in ((True, 576, 1), (False, 528, 0)):
        settings = Settings(32768, 8192, 256, 1, caching)
        specs, bs, _ = vllm.layer_specs(spec, 1, bf16, settings, None, behaviour("0.33.0"), "0.33.0", HOPPER)
        assert bs == block
        assert {s.checkpoint_blocks for s in specs if s is not None and s.kind == "mamba"} == {checkpoints}


# 3. SM10x sparse MLA at --block-size 32


def test_hopper_keeps_no_valid_attention_backend():
    for release in ("0.18.0", "0.32.0", "0.34.0"):
        assert cuda_sparse_block_refusal(32, release, HOPPER).startswith(
            "No valid attention backend found for sparse MLA at block size 32")
    assert cuda_sparse_block_refusal(32, "0.17.0", B200) == ""  # 0.11-0.17 force 64
    assert cuda_sparse_block_refusal(64, "0.32.0", B200) == cuda_sparse_block_refusal(128, "0.32.0", B200) == ""


@pytest.mark.parametrize("release, words", [
    ("0.18.0", "No common block size for 32. "),  # utils.py:326, a trailing space
    ("0.29.0", "No common block size for 32. "),  # :376
    ("0.30.0", "No common block size for 32."),  # :386
    ("0.31.0", "No common block size for 32 (DEEPSEEK_V32_INDEXER: [64]; FLASHINFER_MLA_SPARSE: [32, 64])."),
    # printed by 0.34.0's own select_common_block_size (CPU import) with DeepseekV32IndexerBackend and
    # FlashInferMLASparseTRTLLMBackend, the registration order of a V3.2 layer's caches
    ("0.32.0", "No common block size for 32 (DEEPSEEK_V32_INDEXER: [64]; FLASHINFER_MLA_SPARSE: [MultipleOf(32)])."),
    ("0.34.0", "No common block size for 32 (DEEPSEEK_V32_INDEXER: [64]; FLASHINFER_MLA_SPARSE: [MultipleOf(32)])."),
])
def test_blackwell_block_32_has_no_common_kernel_block(release, words):
    why = cuda_sparse_block_refusal(32, release, B200, "auto", resolve(V32).layers)
    assert why.startswith("No common block size for 32: ") and why.endswith(f"select_common_block_size): {words}")


def test_the_dtypes_flashinfer_does_not_store_find_no_backend():
    """FLASHINFER_MLA_SPARSE stores 16-bit, fp8 and fp8_e4m3 (0.32.0 flashinfer_mla_sparse.py:86-92); fp8_ds_mla and
    nvfp4_ds_mla only FLASHMLA_SPARSE, which takes multiples of 64 only."""
    for dtype in ("bfloat16", "fp8", "fp8_e4m3"):
        assert cuda_sparse_block_refusal(32, "0.32.0", B200, dtype).startswith("No common block size for 32: ")
    for dtype in ("fp8_ds_mla", "nvfp4_ds_mla"):
        assert cuda_sparse_block_refusal(32, "0.32.0", B200, dtype).startswith("No valid attention backend found")


def test_glm52s_shared_indexer_layers_are_a_group_of_their_own():
    """GLM-5.2's layers 3-5, 7-9, ... reuse a top-k (MLAAttentionSpec.is_index_group_leader False): a third
    attention group, after layer 0's indexer and its leader MLA."""
    why = cuda_sparse_block_refusal(32, "0.32.0", B200, "fp8_e4m3", resolve(GLM).layers)
    assert why.endswith("(DEEPSEEK_V32_INDEXER: [64]; FLASHINFER_MLA_SPARSE: [MultipleOf(32)]; "
                        "FLASHINFER_MLA_SPARSE: [MultipleOf(32)]).")


def test_estimate_names_the_blackwell_refusal():
    run = run_kvplan("estimate", V32, "--gpu", "B200", "-tp", "8", "-c", "32K", "--block-size", "32")
    assert run.returncode == 0
    text = " ".join(run.stdout.split())
    assert "refuses the configuration: No common block size for 32; it starts with --block-size 64, 128." in text
    hopper = " ".join(run_kvplan("estimate", V32, "--gpu", "H200", "-tp", "8", "-c", "32K", "--block-size",
                                 "32").stdout.split())
    assert "No valid attention backend found for sparse MLA at block size 32" in hopper


# 4. EPLB's redundant experts from 0.34


def test_unset_redundant_experts_split_evenly_from_0_34():
    """(ep - E % ep) % ep: 128 experts over 3 ranks -> 1 (129 = 3 x 43); 256 over 3 -> 2; 256 over 8 -> 0."""
    unset = eplb(True)
    assert not unset.named
    assert unset.redundant_for(128, 3, "0.33.0") == 0
    assert unset.redundant_for(128, 3, "0.34.0") == 1
    assert unset.redundant_for(256, 3, (0, 34, 0)) == 2
    assert unset.redundant_for(256, 8, "0.34.0") == 0
    assert unset.redundant_for(128, 3) == 0  # the pinned 0.32.0
    named = eplb(True, '{"num_redundant_experts": 0}')
    assert named.named and named.redundant_for(128, 3, "0.34.0") == 0  # an explicit 0 is kept (not None)
    assert eplb(True, '{"window_size": 10}').redundant_for(128, 3, "0.34.0") == 1
    assert Eplb(4).redundant_for(128, 3, "0.34.0") == 4  # a count given is kept
    assert Eplb(0, named=True).redundant_for(128, 3, "0.34.0") == 0


def test_qwen3_moe_over_three_ranks_starts_in_0_34():
    """Qwen3-30B-A3B, DP 3 + EP + EPLB, nothing named: 0.33 refuses 128 experts over 3 ranks (FusedMoE's even split),
    0.34 adds 1 redundant expert, 43 a rank."""
    args = ("Qwen/Qwen3-30B-A3B", "-ep", "--enable-eplb", "-dp", "3", "--gpu", "H100")
    old = _engine(*args, "--engine", "vllm==0.33.0")
    assert not old["tp_valid"] and "128 + 0 redundant" in old["tp_errors"][0]
    new = _engine(*args, "--engine", "vllm==0.34.0")
    assert new["tp_valid"] and new["max_concurrency"]
    weights = next(t for t in new["budget"]["terms"] if t["name"] == "weights")
    assert "EPLB: 128 + 1 redundant (unset: the fewest that split evenly, vLLM 0.34) = 129 physical" in \
        json.dumps(weights)
