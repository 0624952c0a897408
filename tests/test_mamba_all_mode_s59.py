"""vLLM's Mamba "all" cache mode, which kvplan models since s59 (it used to warn "not modelled" and plan "align").

When: prefix caching on for a hybrid whose class implements SupportsMambaPrefixCaching (bamba, falcon_h1,
granitemoehybrid, jamba, nemotron_h, zamba2), in 0.11.1-0.27.x. From 0.15 MambaModelConfig picks
mamba_cache_mode "all" for such a class (models/config.py 0.15.0:332-347); in 0.11.1-0.14.x, before the mode existed,
it keeps prefix caching on for it (0.11.1:293-305) and the hybrid block takes the same branch under
`if cache_config.enable_prefix_caching` (0.11.1:394-415). From 0.28 every class runs "align" (0.28.0:602-609). A
hybrid has prefix caching on before 0.28 only with a pooler config (the pooling runner, or --pooler-config on the
generate runner from 0.12) whose pooling type keeps it (LAST), never in 0.11.0 or 0.26-0.27
(vllm_settings.HYBRID_PREFIX_RULES).

The block ("all" branch: models/config.py 0.11.1:408-415, 0.15.0:480-487; platforms/interface.py 0.20.0:585-595):
    chunk = lcm(get_mamba_chunk_size(), kernel_block_alignment_size)
    attn_block_size = chunk * cdiv(cdiv(mamba_page_size, attn_page_size_1_token), chunk)
    mamba_block_size = attn_block_size; block_size raised to it where smaller (0.20.0:604-605)
get_mamba_chunk_size (config/model.py 0.20.0:1331-1346, the same 0.11.1-0.27.1): hf_text_config.mamba_chunk_size,
else .chunk_size, else 2048. Per request (MambaSpec.max_memory_usage_bytes, v1/kv_cache_interface.py 0.15.0:293-296,
0.20.0:540-543; 0.11.1:261-263 whatever the mode): cdiv(max_model_len, mamba block) state blocks a Mamba group.
MambaManager frees the states behind the newest (get_num_skipped_tokens = computed - 1) from 0.14
(single_type_kv_cache_manager.py 0.14.0:830-834); before, none (the base class's 0, 0.13.0:290-301).

Checked against vLLM 0.34.0's own code (pure-python import, CPU torch; /tmp/s52/sd/vllm-0.34.0): MambaSpec pages
from MambaStateShapeCalculator / MambaStateDtypeCalculator: Nemotron-H-8B tp 1 shapes ((3, 10240), (128, 64, 128)),
2,158,592 B with a bf16 or float16 SSM state, 4,255,744 B with float32; Jamba-1.5-Mini tp 2 ((3, 4096), (4096, 16))
bf16, 155,648 B; FullAttentionSpec(block_size=1) 4,096 B (8 KV heads x 128) and 2,048 B (4 KV heads at tp 2).
ModelConfig.get_mamba_chunk_size on transformers 5.22.2's configs built from benchmarks/configs/*.json: Nemotron-H
128, Jamba 2048; NemotronHConfig() 128, GraniteMoeHybridConfig() 256.
"""

from __future__ import annotations

import pytest

from kvplan import api
from kvplan.engines.vllm_specs import mamba_all_blocks
from kvplan.model.bundled import find_bundled, load_bundled
from kvplan.model.parse import parse_config

NEMOTRON_H = "nvidia/Nemotron-H-8B-Base-8K"
JAMBA = "ai21labs/AI21-Jamba-1.5-Mini"


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _pooled(model: str, version: str, tp: int = 1, **kwargs):
    (plan,) = api.estimate(model, gpu="h100", max_model_len=8192, runner="pooling", convert="embed",
                           engine=f"vllm=={version}", tensor_parallel_size=tp, **kwargs)
    return plan


# ---- the chunk ---------------------------------------------------------------------------------------------------

def _chunk(config: dict) -> int:
    spec = parse_config(config, "cfg")
    return spec.linear_layers[0].chunk_size


GRANITE = {"architectures": ["GraniteMoeHybridForCausalLM"], "model_type": "granitemoehybrid", "hidden_size": 512,
           "intermediate_size": 1024, "layer_types": ["mamba", "attention"], "num_hidden_layers": 2,
           "num_attention_heads": 8, "num_key_value_heads": 8, "mamba_d_head": 64, "mamba_d_state": 128,
           "mamba_n_groups": 1, "mamba_n_heads": 16, "mamba_d_conv": 4, "max_position_embeddings": 4096,
           "vocab_size": 49152, "torch_dtype": "bfloat16", "num_local_experts": 0, "num_experts_per_tok": 0}


@pytest.mark.parametrize("fields, chunk", [
    ({}, 256),  # GraniteMoeHybridConfig's default (transformers 5.22.2 configuration_granitemoehybrid.py:102)
    ({"mamba_chunk_size": 128}, 128),  # the file's
    ({"mamba_chunk_size": None}, 2048),  # written null: None there, no chunk_size, so vLLM's 2048
    ({"mamba_chunk_size": None, "chunk_size": 64}, 64),  # then chunk_size
])
def test_the_chunk_is_read_as_vllm_reads_it(fields, chunk):
    assert _chunk({**GRANITE, **fields}) == chunk


def test_bundled_chunks():
    nemotron, jamba = (load_bundled(find_bundled(m))[1].linear_layers[0].chunk_size for m in (NEMOTRON_H, JAMBA))
    assert nemotron == 128  # its config.json's chunk_size
    assert jamba == 2048  # JambaConfig has neither field: "Mamba1 does not have a chunk notion"


def test_the_block_rule_on_vllms_own_example():
    """models/config.py 0.15.0:467-479's comment: a 788 kB state over 2 kB a token fits ~394 tokens, rounded up to a
    multiple of the chunk 256: 512, the attention and the Mamba block."""
    assert mamba_all_blocks(2048, 394 * 2048, 16, 256, False, "0.15.0") == (512, 512)
    assert mamba_all_blocks(2048, 394 * 2048, 1024, 256, False, "0.15.0") == (1024, 512)  # a larger block is kept


# ---- Nemotron-H-8B-Base-8K, pooling runner, H100, 8K -------------------------------------------------------------
# 24 Mamba-2 and 4 attention layers, grouped 4 a group (kv_cache_utils _get_kv_cache_groups_uniform_page_size: the
# smaller bucket's 4; 24 >= 1.5 x 4): 6 Mamba groups and 1 attention group, 7 in all; a block of the pool holds 4
# layers' pages. Attention: 2 x 8 KV heads x 128 x 2 B = 4,096 B a token.
# 0.20.0: SSM state float32 (NemotronHForCausalLMConfig, models/config.py 0.20.0:409-428): page 4,255,744 B,
#   cdiv(4,255,744, 4,096) = 1,039 tokens; chunk lcm(128, 16) = 128 (0.20 alignment: max(16, block 16)); block
#   128 x cdiv(1,039, 128) = 128 x 9 = 1,152; per request 7 x cdiv(8,192, 1,152) = 7 x 8 = 56 (align: 8 + 6 x 2 = 20
#   at block 1,040). The request keeps, once prefilled, its newest state a Mamba group and 8 attention blocks: 14.
# 0.12.0: no NemotronH dtype hook, SSM state bf16: page 2,158,592 B, 527 tokens; chunk lcm(128, 16) = 128 (0.11.1-0.12
#   alignment 16 for head size 128); block 128 x 5 = 640; per request 7 x cdiv(8,192, 640) = 7 x 13 = 91; MambaManager
#   frees nothing before 0.14, so a request holds all 91.
# 0.14.1: SSM state float16 (0.14.1 NemotronHForCausalLMConfig: 'float16'), 2 bytes as bf16: block 640, 91 a request,
#   but the states behind the newest are freed: 6 + 13 = 19 held.
@pytest.mark.parametrize("version, block, per_request, held", [
    ("0.20.0", 1152, 56, 6 + 8),
    ("0.12.0", 640, 91, 91),
    ("0.14.1", 640, 91, 6 + 13),
])
def test_nemotron_h_all_mode(version, block, per_request, held):
    plan = _pooled(NEMOTRON_H, version)
    e = plan.engine
    assert (e.block_size, e.num_kv_cache_groups, e.blocks_per_request) == (block, 7, per_request)
    assert e.num_gpu_blocks == e.available_kv_cache_bytes // (4 * block * 4096)
    assert e.max_concurrency == pytest.approx(e.num_gpu_blocks / per_request)
    assert e.gpu_kv_cache_tokens == e.num_gpu_blocks // 7 * block
    usable = e.num_gpu_blocks - 1  # the null block
    # admitted while the whole sequence's blocks are free (one 8,192-token chunk: the gate is the peak), then held
    assert e.resident_sequences == (usable - per_request) // held + 1
    assert not any("not modelled" in w for w in plan.tp_warnings)


# ---- AI21-Jamba-1.5-Mini, pooling runner, H100 x 2 (tp 2), 8K ----------------------------------------------------
# 28 Mamba-1 and 4 attention layers: 7 Mamba groups and 1 attention group of 4. At tp 2 a state is conv 3 x 4,096 +
# SSM 4,096 x 16 elements, bf16: 155,648 B; attention 2 x 4 x 128 x 2 = 2,048 B a token: 76 tokens. Chunk 2048
# (no field, vLLM's default), lcm(2048, 16) = 2048: block 2,048 (align would be 80), per request 8 x cdiv(8,192,
# 2,048) = 32; held once prefilled: 7 + 4 = 11 from 0.14, all 32 before.
@pytest.mark.parametrize("version, held", [("0.20.0", 7 + 4), ("0.12.0", 32)])
def test_jamba_all_mode(version, held):
    e = _pooled(JAMBA, version, tp=2).engine
    assert (e.block_size, e.num_kv_cache_groups, e.blocks_per_request) == (2048, 8, 32)
    assert e.num_gpu_blocks == e.available_kv_cache_bytes // (4 * 2048 * 2048)
    assert e.resident_sequences == (e.num_gpu_blocks - 1 - 32) // held + 1


# ---- where it does not apply ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("version, block, per_request", [
    ("0.11.0", 528, _cdiv(8192, 528) + 6),  # prefix caching off for every hybrid (models/config.py 0.11.0:296)
    ("0.27.1", 1040, 8 + 6),  # off on every runner (arg_utils.py 0.27.1:2605)
    ("0.28.0", 1040, 8 + 6 * 2),  # on, "align" for every class (models/config.py 0.28.0:602-609)
])
def test_nemotron_h_pooling_outside_all_mode(version, block, per_request):
    e = _pooled(NEMOTRON_H, version).engine
    assert (e.block_size, e.blocks_per_request) == (block, per_request)


@pytest.mark.parametrize("version, block", [("0.11.2", 528), ("0.15.0", 528), ("0.20.0", 1040), ("0.25.1", 1040)])
def test_the_generate_runner_never_reaches_all_mode_without_a_pooler_config(version, block):
    """The generate runner starts a hybrid with prefix caching off before 0.28 (HYBRID_PREFIX_RULES): "none" mode,
    one state block a request at the block that holds a state (2-byte SSM state before 0.20, float32 from it)."""
    (plan,) = api.estimate(NEMOTRON_H, gpu="h100", max_model_len=8192, engine=f"vllm=={version}")
    assert plan.engine.block_size == block and plan.engine.blocks_per_request == _cdiv(8192, block) + 6


def test_a_pooler_config_on_the_generate_runner_reaches_it_from_012():
    """From 0.12 a --pooler-config makes attn_type the class's "decoder" (config/model.py 0.12.0:1754-1761), so LAST
    pooling keeps prefix caching on; 0.11.2's generate runner keeps it off whatever the pooler."""
    on, off = (api.estimate(NEMOTRON_H, gpu="h100", max_model_len=8192, engine=f"vllm=={v}",
                            pooler_config={"pooling_type": "LAST"})[0].engine for v in ("0.12.0", "0.11.2"))
    assert (on.block_size, on.blocks_per_request) == (640, 91)
    assert (off.block_size, off.blocks_per_request) == (528, _cdiv(8192, 528) + 6)


def test_mean_pooling_keeps_it_off():
    e = _pooled(NEMOTRON_H, "0.20.0", pooler_config={"pooling_type": "MEAN"}).engine
    assert (e.block_size, e.blocks_per_request) == (1040, 8 + 6)


# ---- a --block-size above the Mamba block ------------------------------------------------------------------------
# 0.11.1-0.19.x align the "all" block to lcm(chunk, 16) whatever --block-size says (models/config.py 0.15.0:480-487),
# then keep the larger attention block (:501-503): Mamba block 640, attention 2,048 at --block-size 2048. The engine
# core's scheduler takes hash_block_size = cache_config.block_size (v1/engine/core.py 0.15.0:132-144) and the hybrid
# coordinator asserts every group's block divides by it (kv_cache_coordinator.py 0.15.0:397-400); 0.11.1 asserts the
# Mamba block a multiple of the attention one (:364-370). From 0.20 the alignment is max(kernel block, block so far)
# (platforms/interface.py 0.20.0:576-583): lcm(128, 2048) = 2,048, both blocks 2,048, 4 a group, 8 x 4 = 32.
# 0.11.1-0.17.x list no --block-size above 256 (config/cache.py 0.11.1:23, 0.17.1:22 BlockSize): 2048 reaches the
# scheduler from 0.18.0 (SkipValidation[int], config/cache.py 0.18.0:36; kv_cache_coordinator.py 0.18.0:402-405).
@pytest.mark.parametrize("version, words", [
    ("0.18.0", "block_size must be divisible by hash_block_size"),
    ("0.19.1", "block_size must be divisible by hash_block_size"),
])
def test_a_block_size_above_the_mamba_block_stops_the_scheduler(version, words):
    plan = _pooled(NEMOTRON_H, version, block_size=2048)
    refusal = plan.engine.refusal
    assert not plan.engine.starts and refusal.configuration and refusal.field == "block_size"
    assert refusal.reason.endswith(words) and "a state every 640 tokens" in refusal.reason
    assert refusal.remedy == "it starts with block_size 640 or less"  # the API names fields by their keys


@pytest.mark.parametrize("version", ["0.11.1", "0.15.0"])
def test_before_018_a_2048_block_is_no_choice(version):
    from kvplan.errors import FieldError

    with pytest.raises(FieldError, match="is not a choice of vLLM"):
        _pooled(NEMOTRON_H, version, block_size=2048)


def test_from_020_the_block_size_joins_the_alignment():
    e = _pooled(NEMOTRON_H, "0.20.0", block_size=2048).engine
    assert e.starts and (e.block_size, e.blocks_per_request) == (2048, 7 * _cdiv(8192, 2048))
