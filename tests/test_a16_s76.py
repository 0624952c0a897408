"""V0's profile forward of an MoE model past the fused-MoE chunk (A16: DeepSeek-Coder-V2-Lite on 2 x L40, vLLM 0.5.1,
163,840 tokens), read in the wheels:

- VLLM_FUSED_MOE_CHUNK_SIZE: fused_moe.py fused_experts allocates its three caches for min(tokens, chunk) tokens
  (fused_moe.py 0.5.1:428-456); the chunk is absent in 0.5.0.post1, 65,536 in 0.5.1 (envs.py:253) and 0.5.5
  (envs.py:351), 32,768 in 0.6.0 (envs.py:356).
- 0.5.1 profiles max(max_model_len, 2048) tokens without chunked prefill (config.py 0.5.1:785), which it never turns
  on by the length (engine/arg_utils.py 0.5.1 has no use_long_context; 0.5.5:820 does).
- DeepSeek-V2's layer 0 is a dense DeepseekV2MLP of intermediate_size (deepseek_v2.py 0.5.1:366-375): gate/up M x 2I
  and the activated M x I over the whole batch (:79-83), freed after the layer as the experts' caches are.

DeepSeek-V2-Lite at TP 2, fp16/bf16 (2 bytes): hidden 2,048, 16 heads (8 a rank), the pre-MLA per-head cache of
head size 256 (vllm_premla.py), dense intermediate 10,944 (5,472 a rank), 64 experts of 1,408 (704 a rank), top 6.
"""

from __future__ import annotations

from conftest import estimate_plan

from kvplan.engines.vllm_profile import forward_peak
from kvplan.engines.vllm_versions import behaviour
from kvplan.model.sources import resolve

V2_LITE = "deepseek-ai/DeepSeek-V2-Lite"
TOKENS = 163840
# kvplan's V0 activations a token beside the MLP: hidden + residual + a rank's q, k, v at head size 256
# (2 x 2,048 + (8 + 2 x 8) x 256) x 2 B
ACTIVATION = (2 * 2048 + (8 + 2 * 8) * 256) * 2  # 20,480
DENSE = 3 * 5472 * 2  # 32,832 B a token: gate/up 2 x 5,472 + activated 5,472
EXPERTS = 6 * (2 * 704 + 704 + 2048) * 2  # 49,920 B a token: caches M x 6 x 1,408, M x 6 x 704, M x 6 x 2,048


def test_v0_fused_moe_chunk_by_release():
    assert behaviour("0.5.0.post1").moe_chunk_tokens is None
    assert behaviour("0.4.3").moe_chunk_tokens is None
    assert behaviour("0.5.1").moe_chunk_tokens == 65536
    assert behaviour("0.5.5").moe_chunk_tokens == 65536
    assert behaviour("0.6.0").moe_chunk_tokens == 32768
    assert behaviour("0.6.5").moe_chunk_tokens == 32768
    assert behaviour("0.6.5").v0_chunk_tokens == 2048  # 0.6.5's own rule kept
    assert behaviour("0.7.3").moe_chunk_tokens == 32768


def test_a16_profile_forward_is_the_dense_layer():
    """0.5.1: the experts' caches cover 65,536 tokens (3.05 GiB), layer 0's dense MLP all 163,840 (5.01 GiB)."""
    plan = estimate_plan(V2_LITE, "--gpu", "L40", "-tp", "2", "--engine", "vllm==0.5.1", "--max-model-len",
                         str(TOKENS))
    assert 65536 * EXPERTS == 3_271_557_120 < TOKENS * DENSE == 5_379_194_880
    assert plan["budget"]["activation_bytes"] == TOKENS * (ACTIVATION + DENSE) == 8_734_638_080
    # before: 163,840 x (20,480 + 49,920) = 11,534,336,000, the experts' caches over the whole batch
    assert plan["engine"]["starts"] is False  # the log's refusal: 163,840 tokens do not fit


def test_forward_by_release_and_batch():
    served = resolve(V2_LITE, None)
    from kvplan.engines import get_engine
    from kvplan.engines.vllm_speculative import served as as_served
    spec = as_served(served, get_engine("vllm==0.5.1"))
    # 0.5.0.post1 (no chunk): the experts' caches over every token, larger than the dense layer
    assert forward_peak(spec, 2, TOKENS, behaviour("0.5.0.post1")) == TOKENS * (ACTIVATION + EXPERTS)
    # 0.6.0 (32,768): the dense layer again
    assert forward_peak(spec, 2, TOKENS, behaviour("0.6.0")) == TOKENS * (ACTIVATION + DENSE)
    # 8,192 tokens (inside the chunk): the experts' 49,920 B a token beat the dense layer's 32,832
    assert forward_peak(spec, 2, 8192, behaviour("0.5.1")) == 8192 * (ACTIVATION + EXPERTS)


def test_mixtral_past_the_chunk_has_no_dense_layer():
    """Mixtral-8x7B at TP 2, 0.5.1, --max-num-batched-tokens 131,072: top 2 of 14,336 (7,168 a rank), hidden 4,096,
    32 heads (16 a rank), 8 KV heads (4 a rank) of 128; every layer routed, so only the chunk applies:
    131,072 x (2 x 4,096 + (16 + 2 x 4) x 128) x 2 + 65,536 x 2 x (2 x 7,168 + 7,168 + 4,096) x 2."""
    plan = estimate_plan("mistralai/Mixtral-8x7B-v0.1", "--gpu", "H100", "-tp", "2", "--engine", "vllm==0.5.1",
                         "--max-num-batched-tokens", "131072")
    activation = (2 * 4096 + (16 + 2 * 4) * 128) * 2  # 22,528
    experts = 2 * (2 * 7168 + 7168 + 4096) * 2  # 102,400
    assert plan["budget"]["activation_bytes"] == 131072 * activation + 65536 * experts == 9_663_676_416
