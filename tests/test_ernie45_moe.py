"""ERNIE-4.5 MoE (Ernie4_5_MoeForCausalLM) as vLLM 0.32.0 builds it (model_executor/models/ernie45_moe.py): GQA of
head_dim hidden / heads, unbiased (use_bias false); layer i MoE when moe_layer_start_index <= i <=
moe_layer_end_index and (i + 1) % moe_layer_interval == 0, dense MLPs of intermediate_size elsewhere; routed experts
of moe_intermediate_size under a float32 router and a float32 e_score_correction_bias (softmax scores chosen with
the bias, renormalised); moe_num_shared_experts summed into one MLP; no MTP layer loaded ("mtp" mapped to None).
Shapes are ERNIE-4.5-21B-A3B's and -300B-A47B's as public test fixtures copy them (no verbatim config.json of
either was found, so neither is bundled); expected values are hand arithmetic."""

from kvplan.model.config import Config
from kvplan.model.layers import ffn_kinds
from kvplan.model.parse import parse_config
from kvplan.model.routing import Routing, routing

A3B = {
    "architectures": ["Ernie4_5_MoeForCausalLM"], "model_type": "ernie4_5_moe", "hidden_act": "silu",
    "hidden_size": 2560, "intermediate_size": 12288, "max_position_embeddings": 131072, "num_attention_heads": 20,
    "num_key_value_heads": 4, "num_hidden_layers": 28, "rms_norm_eps": 1e-05, "vocab_size": 103424,
    "rope_theta": 500000, "use_bias": False, "moe_num_experts": 64, "moe_num_shared_experts": 2,
    "moe_layer_start_index": 1, "moe_intermediate_size": 1536, "moe_k": 6, "moe_layer_interval": 1,
    "moe_use_aux_free": True, "tie_word_embeddings": True, "torch_dtype": "bfloat16",
}
A47B = {**A3B, "hidden_size": 8192, "intermediate_size": 28672, "num_attention_heads": 64, "num_key_value_heads": 8,
        "num_hidden_layers": 54, "moe_num_shared_experts": 0, "moe_layer_start_index": 3, "moe_layer_end_index": 53,
        "moe_intermediate_size": 3584, "moe_k": 8, "tie_word_embeddings": False}


def test_21b_a3b_parameters_and_bytes_are_what_vllm_allocates():
    h, vocab = 2560, 103424
    attention = h * h + 2 * 512 * h + h * h  # q, k, v (4 KV heads of 128), o; unbiased
    dense = 3 * h * 12288  # layer 0
    moe = 64 * 3 * 1536 * h + 3 * h * 2 * 1536 + 64 * h + 64  # experts, 2 shared experts as one, gate, bias
    total = vocab * h + h + 28 * (2 * h + attention) + dense + 27 * moe  # tied lm_head: one embedding
    spec = parse_config(A3B, "ernie")
    assert spec.weights.parameters == total == 21_825_437_888
    # bf16, the 27 routers and correction biases float32 (2 more bytes each)
    assert spec.weights.bytes == 2 * total + 2 * 27 * (64 * h + 64) == 43_659_726_592
    assert (spec.experts, spec.experts_per_token, spec.moe_layers) == (64, 6, 27)


def test_300b_a47b_shape_no_shared_expert_untied():
    h, vocab = 8192, 103424
    attention = 2 * h * h + 2 * 1024 * h
    moe = 64 * 3 * 3584 * h + 64 * h + 64
    total = 2 * vocab * h + h + 54 * (2 * h + attention) + 3 * 3 * h * 28672 + 51 * moe
    assert parse_config(A47B, "ernie").weights.parameters == total == 299_484_163_264


def test_moe_layers_follow_start_end_and_interval():
    def kinds(**fields):
        return ffn_kinds(Config({**A3B, "num_hidden_layers": 8, **fields}, "ernie"), 8)[0]

    assert kinds() == ["dense"] + ["moe"] * 7
    # (i + 1) % 2 == 0 and 1 <= i <= 5: layers 1, 3, 5
    assert kinds(moe_layer_interval=2, moe_layer_end_index=5) == ["dense", "moe"] * 3 + ["dense"] * 2
    assert kinds(use_moe=False) == ["dense"] * 8
    # transformers' Ernie4_5_MoeConfig (what vLLM reads): start 1 when absent, end -1 is the last layer
    assert kinds(moe_layer_end_index=-1) == kinds() == ["dense"] + ["moe"] * 7
    no_start = {k: v for k, v in A3B.items() if k != "moe_layer_start_index"}
    assert ffn_kinds(Config({**no_start, "num_hidden_layers": 8}, "ernie"), 8)[0] == ["dense"] + ["moe"] * 7
    # none of the three keys (review finding, session 49): still ERNIE's rule, layer 0 dense
    bare = {k: v for k, v in A3B.items() if not k.startswith("moe_layer_")}
    assert ffn_kinds(Config({**bare, "num_hidden_layers": 8}, "ernie"), 8)[0] == ["dense"] + ["moe"] * 7
    assert kinds(moe_num_experts=0) == ["dense"] * 8


def test_routing_is_softmax_chosen_with_the_correction_bias_renormalised():
    assert routing(Config(A3B, "ernie")) == Routing("softmax", True, correction_bias=True)
