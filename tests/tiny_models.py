"""Tiny configs of every architecture verify's forward pass covers (real field names, toy sizes): the CPU
tests run the model code on them against the float64 reference."""

BASE = {"torch_dtype": "bfloat16", "max_position_embeddings": 4096, "vocab_size": 128, "hidden_size": 64,
        "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "rms_norm_eps": 1e-6}

TINY = {
    "llama": {**BASE, "model_type": "llama", "intermediate_size": 96, "num_hidden_layers": 2,
              "tie_word_embeddings": True, "rope_theta": 500000.0},
    # fp8 per-tensor checkpoint (Devstral-Small-2's quantization_config): W8A8 linears
    "llama_fp8": {**BASE, "model_type": "llama", "intermediate_size": 96, "num_hidden_layers": 2,
                  "tie_word_embeddings": False, "rope_theta": 500000.0,
                  "quantization_config": {"quant_method": "fp8", "activation_scheme": "static",
                                          "weight_block_size": None}},
    # Falcon-7B's form: multi-query attention, one non-gated MLP of exact GELU (4 x hidden), tied embeddings
    "falcon": {"model_type": "falcon", "torch_dtype": "bfloat16", "hidden_size": 64, "n_head": 4, "n_layer": 2,
               "multi_query": True, "parallel_attn": True, "new_decoder_architecture": False, "bias": False,
               "vocab_size": 128, "max_position_embeddings": 4096},
    "gemma3": {**BASE, "model_type": "gemma3_text", "intermediate_size": 96, "num_hidden_layers": 3,
               "sliding_window": 8, "sliding_window_pattern": 3, "query_pre_attn_scalar": 16,
               "rope_theta": 1000000.0, "rope_local_base_freq": 10000.0},
    "mixtral": {**BASE, "model_type": "mixtral", "intermediate_size": 32, "num_hidden_layers": 2,
                "num_local_experts": 4, "num_experts_per_tok": 2, "tie_word_embeddings": False},
    "gpt_oss": {**BASE, "model_type": "gpt_oss", "intermediate_size": 64, "num_hidden_layers": 2,
                "layer_types": ["sliding_attention", "full_attention"], "sliding_window": 8,
                "num_local_experts": 4, "num_experts_per_tok": 2, "tie_word_embeddings": False,
                "quantization_config": {"quant_method": "mxfp4"}},
    "deepseek_v2": {**BASE, "model_type": "deepseek_v2", "intermediate_size": 96, "num_hidden_layers": 2,
                    "num_key_value_heads": 4, "kv_lora_rank": 32, "qk_nope_head_dim": 16, "qk_rope_head_dim": 8,
                    "v_head_dim": 16, "n_routed_experts": 4, "num_experts_per_tok": 2, "n_shared_experts": 1,
                    "moe_intermediate_size": 32, "first_k_dense_replace": 1, "routed_scaling_factor": 1.5,
                    # DeepSeek-V2-Lite's: full-rank queries, one expert group (DeepseekV2Config fills q_lora_rank
                    # 1536 where absent and leaves the groups None, which vLLM cannot build)
                    "q_lora_rank": None, "n_group": 1, "topk_group": 1},
    "deepseek_q_lora": {**BASE, "model_type": "deepseek_v3", "intermediate_size": 96, "num_hidden_layers": 1,
                        "num_key_value_heads": 4, "q_lora_rank": 24, "kv_lora_rank": 32, "qk_nope_head_dim": 16,
                        "qk_rope_head_dim": 8, "v_head_dim": 16, "norm_topk_prob": True,
                        "n_routed_experts": None},  # dense: DeepseekV3Config fills 256 experts where absent
    # DeepSeek-V3's router: sigmoid scores chosen with a correction bias from the best 2 of 4 expert groups
    "deepseek_v3_groups": {**BASE, "model_type": "deepseek_v3", "intermediate_size": 96, "num_hidden_layers": 2,
                           "num_key_value_heads": 4, "q_lora_rank": 24, "kv_lora_rank": 32, "qk_nope_head_dim": 16,
                           "qk_rope_head_dim": 8, "v_head_dim": 16, "n_routed_experts": 16, "num_experts_per_tok": 3,
                           "n_shared_experts": 1, "moe_intermediate_size": 32, "first_k_dense_replace": 1,
                           "n_group": 4, "topk_group": 2, "norm_topk_prob": True, "routed_scaling_factor": 2.5,
                           "scoring_func": "sigmoid", "topk_method": "noaux_tc", "num_nextn_predict_layers": 0},
    # DeepSeek-V3's checkpoint form: every layer matrix e4m3 with a float32 scale per 128 x 128 block (the experts'
    # 128 rows are one block, so the shared expert joins them as verify allocates it, and q_a's 128 rows stack with
    # kv_a's 40 and their scales; the rest are part blocks)
    "deepseek_v3_fp8": {**BASE, "model_type": "deepseek_v3", "intermediate_size": 96, "num_hidden_layers": 2,
                        "num_key_value_heads": 4, "q_lora_rank": 128, "kv_lora_rank": 32, "qk_nope_head_dim": 16,
                        "qk_rope_head_dim": 8, "v_head_dim": 16, "n_routed_experts": 16, "num_experts_per_tok": 3,
                        "n_shared_experts": 1, "moe_intermediate_size": 128, "first_k_dense_replace": 1,
                        "n_group": 4, "topk_group": 2, "norm_topk_prob": True, "routed_scaling_factor": 2.5,
                        "scoring_func": "sigmoid", "topk_method": "noaux_tc", "num_nextn_predict_layers": 0,
                        "quantization_config": {"quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic",
                                                "weight_block_size": [128, 128]}},
    # Llama 4: every second layer MoE (top 1, the router's sigmoid weighing the expert's input) with a shared
    # expert; the dense layers' MLP of intermediate_size_mlp
    "llama4": {"model_type": "llama4", "torch_dtype": "bfloat16",
               "text_config": {**BASE, "model_type": "llama4_text", "intermediate_size": 32,
                               "intermediate_size_mlp": 96, "num_hidden_layers": 2, "interleave_moe_layer_step": 2,
                               "num_local_experts": 4, "num_experts_per_tok": 1, "rope_theta": 500000.0,
                               "tie_word_embeddings": False}},
    # MiniMax-M2: q and k normed over the whole projections, rotary on half of each head (rotary_dim), sigmoid
    # scores chosen with a correction bias (no groups), a float32 router, no shared expert
    "minimax_m2": {**BASE, "model_type": "minimax_m2", "intermediate_size": 32, "num_hidden_layers": 2,
                   "attn_type_list": [1, 1], "num_local_experts": 8, "num_experts_per_tok": 3, "rotary_dim": 8,
                   "scoring_func": "sigmoid", "use_routing_bias": True, "use_qk_norm": True,
                   "qk_norm_type": "per_layer", "shared_intermediate_size": 0, "rope_theta": 5000000.0,
                   "tie_word_embeddings": False},
    "qwen3_next": {**BASE, "model_type": "qwen3_next", "intermediate_size": 96, "num_hidden_layers": 4,
                   "full_attention_interval": 2, "linear_num_key_heads": 2, "linear_num_value_heads": 4,
                   "linear_key_head_dim": 8, "linear_value_head_dim": 8, "linear_conv_kernel_dim": 4,
                   "num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 32,
                   "shared_expert_intermediate_size": 32, "norm_topk_prob": True, "decoder_sparse_step": 1},
    # Mamba-2 (M), attention without RoPE (*) and relu2 MLP (-) blocks, each block one of them
    "nemotron_h": {**BASE, "model_type": "nemotron_h", "hybrid_override_pattern": "M-*M-", "num_hidden_layers": 5,
                   "intermediate_size": 96, "mlp_hidden_act": "relu2", "mamba_num_heads": 8, "mamba_head_dim": 8,
                   "n_groups": 2, "ssm_state_size": 8, "conv_kernel": 4, "use_conv_bias": True,
                   "mamba_proj_bias": False, "tie_word_embeddings": False},
    # Nemotron-H with MoE blocks (E, as NVIDIA-Nemotron-3-Nano): relu2 experts and shared expert, sigmoid scores
    # chosen with a correction bias from the best 1 of 2 groups
    "nemotron_h_moe": {**BASE, "model_type": "nemotron_h", "hybrid_override_pattern": "ME*E", "num_hidden_layers": 4,
                       "intermediate_size": 96, "mlp_hidden_act": "relu2", "mamba_num_heads": 8,
                       "mamba_head_dim": 8, "n_groups": 2, "ssm_state_size": 8, "conv_kernel": 4,
                       "use_conv_bias": True, "mamba_proj_bias": False, "tie_word_embeddings": False,
                       "n_routed_experts": 8, "num_experts_per_tok": 2, "moe_intermediate_size": 32,
                       "moe_shared_expert_intermediate_size": 48, "n_shared_experts": 1, "n_group": 2,
                       "topk_group": 1, "norm_topk_prob": True, "routed_scaling_factor": 2.5},
    # Jamba: Mamba-1 layers (RMSNorms on dt, B and C) with attention without RoPE in one layer of two, MoE (softmax
    # top-2, not renormalised) in the other layer of two
    "jamba": {**BASE, "model_type": "jamba", "intermediate_size": 96, "num_hidden_layers": 4, "attn_layer_period": 2,
              "attn_layer_offset": 1, "expert_layer_period": 2, "expert_layer_offset": 0, "num_experts": 4,
              "num_experts_per_tok": 2, "mamba_d_state": 16, "mamba_d_conv": 4, "mamba_expand": 2,
              "mamba_dt_rank": 4, "mamba_conv_bias": True, "mamba_proj_bias": False, "tie_word_embeddings": False},
    # Granite 4.0 hybrid (granitemoehybrid): Mamba-2 named mamba_n_heads / mamba_d_head, attention without RoPE,
    # experts and an ungated shared MLP in every layer
    "granite4": {**BASE, "model_type": "granitemoehybrid", "intermediate_size": 32, "num_hidden_layers": 4,
                 "layer_types": ["mamba", "attention", "mamba", "mamba"], "position_embedding_type": "nope",
                 "mamba_n_heads": 8, "mamba_d_head": 8, "mamba_n_groups": 2, "mamba_d_state": 8, "mamba_d_conv": 4,
                 "mamba_expand": 1, "mamba_conv_bias": True, "mamba_proj_bias": False, "num_local_experts": 4,
                 "num_experts_per_tok": 2, "shared_intermediate_size": 48, "tie_word_embeddings": True},
    # ERNIE-4.5 MoE: rotary on interleaved pairs (GPT-J style); a dense MLP before moe_layer_start_index and after
    # moe_layer_end_index, MoE layers between of a float32 router and correction bias (softmax chosen with it,
    # renormalised) beside two shared experts summed into one MLP (ERNIE-4.5-21B-A3B's form)
    "ernie4_5_moe": {**BASE, "model_type": "ernie4_5_moe", "hidden_act": "silu", "intermediate_size": 96,
                     "num_hidden_layers": 4, "moe_num_experts": 8, "moe_k": 3, "moe_intermediate_size": 32,
                     "moe_num_shared_experts": 2, "moe_layer_start_index": 1, "moe_layer_end_index": 2,
                     "moe_layer_interval": 1, "use_bias": False, "rope_theta": 500000.0, "tie_word_embeddings": True},
    # ERNIE-4.5 dense (Ernie4_5ForCausalLM: vLLM's Llama with the interleaved rotary)
    "ernie4_5": {**BASE, "model_type": "ernie4_5", "hidden_act": "silu", "intermediate_size": 96,
                 "num_hidden_layers": 2, "use_bias": False, "rope_theta": 500000.0, "tie_word_embeddings": True},
    # MiMo-V2 (Flash's form, toy sizes): full layers of 1 KV head and sliding layers (8 tokens) of their own 2 KV
    # heads, keys 24 wide and values 16 (full) or 8 (sliding), a sink a query head on the sliding layers, rotary on
    # int(24 x 0.334) = 8 dims at two bases, v scaled by attention_value_scale; a dense first layer, then MoE
    # (sigmoid scores chosen with a correction bias, float32 router, no shared expert)
    "mimo_v2": {"architectures": ["MiMoV2FlashForCausalLM"], "model_type": "mimo_v2_flash",
                "torch_dtype": "bfloat16", "hidden_size": 64, "intermediate_size": 96, "moe_intermediate_size": 32,
                "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 24,
                "v_head_dim": 16, "swa_num_attention_heads": 4, "swa_num_key_value_heads": 2, "swa_head_dim": 24,
                "swa_v_head_dim": 8, "hybrid_layer_pattern": [0, 1, 1, 0], "moe_layer_freq": [0, 1, 1, 1],
                "sliding_window_size": 8, "add_swa_attention_sink_bias": True, "add_full_attention_sink_bias": False,
                "attention_bias": False, "hidden_act": "silu", "layernorm_epsilon": 1e-5, "n_routed_experts": 8,
                "num_experts_per_tok": 2, "n_group": 1, "topk_group": 1, "norm_topk_prob": True,
                "scoring_func": "sigmoid", "topk_method": "noaux_tc", "vocab_size": 128,
                "max_position_embeddings": 4096, "tie_word_embeddings": False, "rope_theta": 5000000.0,
                "swa_rope_theta": 10000.0, "partial_rotary_factor": 0.334, "attention_value_scale": 0.707},
    # Kimi Linear: Kimi Delta Attention (a log decay per key channel, three short convolutions, float32 state) in the
    # layers kda_layers names (from 1), MLA without RoPE (mla_use_nope, no q LoRA) in the others; layer 0 dense, then
    # MoE with a shared expert, sigmoid scores chosen with a correction bias, renormalised, times 2.446
    "kimi_linear": {**BASE, "model_type": "kimi_linear", "intermediate_size": 96, "num_hidden_layers": 4,
                    "num_key_value_heads": 4, "q_lora_rank": None, "kv_lora_rank": 32, "qk_nope_head_dim": 16,
                    "qk_rope_head_dim": 8, "v_head_dim": 16, "mla_use_nope": True,
                    "linear_attn_config": {"kda_layers": [1, 2, 4], "full_attn_layers": [3], "num_heads": 4,
                                           "head_dim": 8, "short_conv_kernel_size": 4},
                    "num_experts": 8, "num_experts_per_token": 2, "moe_intermediate_size": 32,
                    "num_shared_experts": 1, "first_k_dense_replace": 1, "moe_layer_freq": 1,
                    "moe_renormalize": True, "moe_router_activation_func": "sigmoid", "routed_scaling_factor": 2.446,
                    "use_grouped_topk": True, "num_expert_group": 1, "topk_group": 1, "tie_word_embeddings": False},
    # GLM-4.5 / 4.6 / 4.7 (glm4_moe, GLM-4.6's form): q / k / v biased, o_proj not; per-head q / k norms; rotary on
    # half of each head (partial_rotary_factor left to its 0.5 default); a dense first layer (first_k_dense_replace),
    # then MoE of a float32 router, sigmoid scores chosen with a correction bias, renormalised, times 2.5, beside one
    # shared expert
    "glm4_moe": {**BASE, "model_type": "glm4_moe", "architectures": ["Glm4MoeForCausalLM"], "hidden_act": "silu",
                 "intermediate_size": 96, "num_hidden_layers": 3, "attention_bias": True, "use_qk_norm": True,
                 "first_k_dense_replace": 1, "n_routed_experts": 8, "num_experts_per_tok": 3,
                 "moe_intermediate_size": 32, "n_shared_experts": 1, "n_group": 1, "topk_group": 1,
                 "norm_topk_prob": True, "routed_scaling_factor": 2.5, "num_nextn_predict_layers": 1,
                 "rope_theta": 1000000.0, "tie_word_embeddings": False},
    # Gemma 4 as E2B / E4B: sliding layers of 64-wide heads, full layers of 512 (global_head_dim: wider than the
    # bundled decode kernel takes) rotated proportionally on a quarter of their pairs, the last 3 layers reading the
    # caches of layers 2 (full) and 3 (sliding) with MLPs twice as wide, per-layer inputs over a smaller vocabulary
    # than the model's (tokens past it read row 0), soft-capped logits
    "gemma4": {**BASE, "model_type": "gemma4_text", "intermediate_size": 96, "num_hidden_layers": 7, "head_dim": 64,
               "global_head_dim": 512,
               "layer_types": ["sliding_attention", "sliding_attention", "full_attention", "sliding_attention",
                               "full_attention", "sliding_attention", "full_attention"],
               "sliding_window": 8, "num_kv_shared_layers": 3, "use_double_wide_mlp": True,
               "hidden_size_per_layer_input": 8, "vocab_size_per_layer_input": 96, "final_logit_softcapping": 30.0,
               "rope_parameters": {"sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
                                   "full_attention": {"rope_type": "proportional", "partial_rotary_factor": 0.25,
                                                      "rope_theta": 1000000.0}}},
}

# the same in Flash's checkpoint form: every layer matrix e4m3 with a float32 scale per 128 x 128 block but the
# o_proj of each layer, which ignored_layers keeps 16-bit
TINY["mimo_v2_fp8"] = {**TINY["mimo_v2"], "moe_intermediate_size": 128,
                       "quantization_config": {"quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic",
                                               "weight_block_size": [128, 128],
                                               "ignored_layers": [f"model.layers.{i}.self_attn.o_proj"
                                                                  for i in range(4)]}}
# DeepSeek-V3.2's sparse attention (DSA): every layer runs a lightning indexer (16 heads of 128, the width verify
# takes) whose top 8 latents each query attends: fewer than the tests' longer prompts, so the selection matters
# (no shared expert: DeepSeek-V3's MoE has its own tiny models).
# 16 heads, not 4: a key whose product with every head is <= 0 scores exactly 0 (relu), and two such keys tie; top-k
# breaks ties as it likes (vLLM's kernels too), so the tests keep them rare (4 heads tied in a 9-token prompt)
TINY["deepseek_v32"] = {**BASE, "architectures": ["DeepseekV32ForCausalLM"], "model_type": "deepseek_v32",
                        "intermediate_size": 96, "num_hidden_layers": 2, "num_key_value_heads": 4, "q_lora_rank": 24,
                        "kv_lora_rank": 32, "qk_nope_head_dim": 16, "qk_rope_head_dim": 8, "v_head_dim": 16,
                        "index_head_dim": 128, "index_n_heads": 16, "index_topk": 8, "n_routed_experts": 4,
                        "num_experts_per_tok": 2, "moe_intermediate_size": 32,
                        "first_k_dense_replace": 1, "norm_topk_prob": True, "routed_scaling_factor": 2.5,
                        "scoring_func": "sigmoid", "topk_method": "noaux_tc", "rope_theta": 10000.0,
                        # no shared expert, one expert group, no MTP layer (DeepseekV3Config, which vLLM builds
                        # deepseek_v32 with, fills 1, 8 / 4 and 1 where absent)
                        "n_shared_experts": 0, "n_group": 1, "topk_group": 1, "num_nextn_predict_layers": 0}
# the same with a top-k wider than any test prompt: every query attends all its latents, as dense MLA
TINY["deepseek_v32_wide"] = {**TINY["deepseek_v32"], "index_topk": 64}
# GLM-5.2's shared indexers (IndexShare): layers 0 and 2 run an indexer, layer 1 reuses layer 0's top-k
# (max(i - index_skip_topk_offset + 1, 0) % index_topk_freq == 0)
TINY["glm_dsa"] = {**TINY["deepseek_v32"], "architectures": ["GlmMoeDsaForCausalLM"], "model_type": "glm_moe_dsa",
                   "num_hidden_layers": 3, "index_topk_freq": 2, "index_skip_topk_offset": 1, "index_topk": 6}
# Attention-free models (vLLM mamba.py / mamba2.py): every layer an RMSNorm and a Mamba mixer, no MLP.
# Falcon-Mamba's form: intermediate_size, not expand x hidden, sets the channels (its 7B: 8,192 beside an expand of
# 16); dt, B and C RMS-normed without weights at mixer_rms_eps (0.05 here, so that the norms' eps against the block
# norms' layer_norm_epsilon is seen); untied LM head
TINY["falcon_mamba"] = {"model_type": "falcon_mamba", "architectures": ["FalconMambaForCausalLM"],
                        "torch_dtype": "bfloat16", "vocab_size": 128, "hidden_size": 64, "num_hidden_layers": 3,
                        "intermediate_size": 128, "expand": 16, "state_size": 16, "conv_kernel": 4,
                        "time_step_rank": 8, "use_bias": False, "use_conv_bias": True, "hidden_act": "silu",
                        "layer_norm_epsilon": 1e-5, "mixer_rms_eps": 0.05, "residual_in_fp32": True,
                        "tie_word_embeddings": False}
# Mamba (state-spaces/mamba-*-hf's form): no norms on dt, B and C, time_step_rank "auto" (ceil(64 / 16) = 4), the
# channels expand x hidden, the LM head tied (transformers' MambaConfig default)
TINY["mamba"] = {"model_type": "mamba", "architectures": ["MambaForCausalLM"], "torch_dtype": "bfloat16",
                 "vocab_size": 128, "hidden_size": 64, "num_hidden_layers": 3, "expand": 2, "state_size": 16,
                 "conv_kernel": 4, "time_step_rank": "auto", "use_bias": False, "use_conv_bias": True,
                 "hidden_act": "silu", "layer_norm_epsilon": 1e-5}
# Mamba-2 (Mamba2ForCausalLM): 8 heads of 16 (= expand x hidden), 2 groups of B and C, the gated norm per group
TINY["mamba2"] = {"model_type": "mamba2", "architectures": ["Mamba2ForCausalLM"], "torch_dtype": "bfloat16",
                  "vocab_size": 128, "hidden_size": 64, "num_hidden_layers": 3, "expand": 2, "num_heads": 8,
                  "head_dim": 16, "state_size": 16, "n_groups": 2, "conv_kernel": 4, "use_bias": False,
                  "use_conv_bias": True, "hidden_act": "silu", "layer_norm_epsilon": 1e-5,
                  "tie_word_embeddings": False}
# Gemma 3n as E2B / E4B: four AltUp streams, Laurel blocks of rank 8, per-layer inputs over a smaller vocabulary
# than the model's, a width of its own in each layer's MLP and activation sparsity in some (0.95 and 0.8: a shared
# layer's too), 64-wide heads, the last 3 layers reading the caches of layers 2 (sliding, 2 before the first shared
# layer) and 3 (full, 1 before), soft-capped logits
TINY["gemma3n"] = {**BASE, "architectures": ["Gemma3nForConditionalGeneration"], "model_type": "gemma3n_text",
                   "num_hidden_layers": 7, "head_dim": 64, "intermediate_size": [96, 128, 64, 96, 128, 64, 96],
                   "layer_types": ["sliding_attention", "full_attention", "sliding_attention", "full_attention",
                                   "sliding_attention", "sliding_attention", "full_attention"],
                   "activation_sparsity_pattern": [0.95, 0.8, 0.95, 0.0, 0.0, 0.95, 0.0], "sliding_window": 8,
                   "num_kv_shared_layers": 3, "altup_num_inputs": 4, "altup_active_idx": 0, "altup_coef_clip": 120.0,
                   "altup_correct_scale": True, "laurel_rank": 8, "hidden_size_per_layer_input": 8,
                   "vocab_size_per_layer_input": 96, "final_logit_softcapping": 30.0, "rope_theta": 1000000.0,
                   "rope_local_base_freq": 10000.0, "hidden_activation": "gelu_pytorch_tanh"}
