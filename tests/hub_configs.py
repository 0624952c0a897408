"""config.json dicts shaped like the real Hub files (same keys, same nesting, same legacy names), trimmed to
what the parser reads plus a few fields it must ignore. Expected numbers in the tests are worked out by hand
from these values, independently of kvplan's code."""

LLAMA3_8B = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096,
    "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
    "vocab_size": 128256, "max_position_embeddings": 8192, "rope_theta": 500000.0, "rms_norm_eps": 1e-05,
    "tie_word_embeddings": False, "torch_dtype": "bfloat16", "bos_token_id": 128000, "eos_token_id": 128001,
}

LLAMA2_7B = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096,
    "intermediate_size": 11008, "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 32,
    "vocab_size": 32000, "max_position_embeddings": 4096, "torch_dtype": "float16", "pretraining_tp": 1,
}

LLAMA3_70B = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 8192,
    "intermediate_size": 28672, "num_hidden_layers": 80, "num_attention_heads": 64, "num_key_value_heads": 8,
    "vocab_size": 128256, "max_position_embeddings": 131072, "torch_dtype": "bfloat16",
}

MISTRAL_7B_V01 = {
    "architectures": ["MistralForCausalLM"], "model_type": "mistral", "hidden_size": 4096,
    "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
    "sliding_window": 4096, "vocab_size": 32000, "max_position_embeddings": 32768, "torch_dtype": "bfloat16",
}

GEMMA2_9B = {
    "architectures": ["Gemma2ForCausalLM"], "model_type": "gemma2", "hidden_size": 3584,
    "intermediate_size": 14336, "num_hidden_layers": 42, "num_attention_heads": 16, "num_key_value_heads": 8,
    "head_dim": 256, "sliding_window": 4096, "query_pre_attn_scalar": 256, "vocab_size": 256000,
    "max_position_embeddings": 8192, "torch_dtype": "float32", "final_logit_softcapping": 30.0,
}

GEMMA3_27B = {  # multimodal wrapper: the language model sits in text_config, torch_dtype at the top
    "architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3", "torch_dtype": "bfloat16",
    "mm_tokens_per_image": 256,
    "text_config": {
        "model_type": "gemma3_text", "hidden_size": 5376, "intermediate_size": 21504, "num_hidden_layers": 62,
        "num_attention_heads": 32, "num_key_value_heads": 16, "head_dim": 128, "sliding_window": 1024,
        "sliding_window_pattern": 6, "query_pre_attn_scalar": 168, "max_position_embeddings": 131072,
        "vocab_size": 262208,
    },
    "vision_config": {"hidden_size": 1152, "num_hidden_layers": 27, "patch_size": 14, "image_size": 896},
}

QWEN2_5_7B = {
    "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 3584, "intermediate_size": 18944,
    "num_hidden_layers": 28, "num_attention_heads": 28, "num_key_value_heads": 4, "max_window_layers": 28,
    "sliding_window": 131072, "use_sliding_window": False, "vocab_size": 152064,
    "max_position_embeddings": 32768, "torch_dtype": "bfloat16", "tie_word_embeddings": False,
}

QWEN3_14B = {
    "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "hidden_size": 5120, "head_dim": 128,
    "intermediate_size": 17408, "num_hidden_layers": 40, "num_attention_heads": 40, "num_key_value_heads": 8,
    "max_window_layers": 40, "sliding_window": None, "use_sliding_window": False, "vocab_size": 151936,
    "max_position_embeddings": 40960, "torch_dtype": "bfloat16", "tie_word_embeddings": False,
}

DEEPSEEK_V2_LITE = {
    "architectures": ["DeepseekV2ForCausalLM"], "model_type": "deepseek_v2", "hidden_size": 2048,
    "intermediate_size": 10944, "moe_intermediate_size": 1408, "num_hidden_layers": 27,
    "num_attention_heads": 16, "num_key_value_heads": 16, "kv_lora_rank": 512, "q_lora_rank": None,
    "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128, "n_routed_experts": 64,
    "n_shared_experts": 2, "num_experts_per_tok": 6, "first_k_dense_replace": 1, "moe_layer_freq": 1,
    "vocab_size": 102400, "max_position_embeddings": 163840, "torch_dtype": "bfloat16", "n_group": 1, "topk_group": 1,
}

DEEPSEEK_V3 = {
    "architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3", "hidden_size": 7168,
    "intermediate_size": 18432, "moe_intermediate_size": 2048, "num_hidden_layers": 61,
    "num_attention_heads": 128, "num_key_value_heads": 128, "kv_lora_rank": 512, "q_lora_rank": 1536,
    "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128, "n_routed_experts": 256,
    "n_shared_experts": 1, "num_experts_per_tok": 8, "first_k_dense_replace": 3, "vocab_size": 129280,
    "max_position_embeddings": 163840, "torch_dtype": "bfloat16", "n_group": 8, "topk_group": 4,
    "norm_topk_prob": True, "routed_scaling_factor": 2.5, "scoring_func": "sigmoid", "topk_method": "noaux_tc",
    "quantization_config": {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8",
                            "weight_block_size": [128, 128]},
}

FALCON_7B = {  # legacy names, multi_query, 71 heads
    "architectures": ["FalconForCausalLM"], "model_type": "falcon", "hidden_size": 4544, "n_head": 71,
    "n_layer": 32, "multi_query": True, "parallel_attn": True, "new_decoder_architecture": False, "alibi": False,
    "bias": False, "vocab_size": 65024, "torch_dtype": "bfloat16",
}

FALCON_40B = {
    "architectures": ["FalconForCausalLM"], "model_type": "falcon", "hidden_size": 8192,
    "num_attention_heads": 128, "num_hidden_layers": 60, "num_kv_heads": 8, "new_decoder_architecture": True,
    "parallel_attn": True, "vocab_size": 65024, "torch_dtype": "bfloat16",
}

FALCON_RW_1B = {  # RefinedWeb: multi_query false means plain MHA
    "architectures": ["FalconForCausalLM"], "model_type": "falcon", "hidden_size": 2048, "n_head": 32,
    "n_layer": 24, "multi_query": False, "new_decoder_architecture": False, "alibi": True, "parallel_attn": False,
    "vocab_size": 50304, "torch_dtype": "bfloat16",
}

GPT2 = {  # no torch_dtype at all, n_positions instead of max_position_embeddings
    "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_embd": 768, "n_head": 12, "n_layer": 12,
    "n_positions": 1024, "n_ctx": 1024, "vocab_size": 50257, "activation_function": "gelu_new",
}

QWEN3_NEXT_80B = {
    "architectures": ["Qwen3NextForCausalLM"], "model_type": "qwen3_next", "hidden_size": 2048,
    "num_hidden_layers": 48, "num_attention_heads": 16, "num_key_value_heads": 2, "head_dim": 256,
    "full_attention_interval": 4, "linear_num_key_heads": 16, "linear_num_value_heads": 32,
    "linear_key_head_dim": 128, "linear_value_head_dim": 128, "linear_conv_kernel_dim": 4,
    "num_experts": 512, "num_experts_per_tok": 10, "moe_intermediate_size": 512,
    "shared_expert_intermediate_size": 512, "intermediate_size": 5120, "vocab_size": 151936,
    "max_position_embeddings": 262144, "torch_dtype": "bfloat16",
}

GPT_OSS_20B = {
    "architectures": ["GptOssForCausalLM"], "model_type": "gpt_oss", "hidden_size": 2880,
    "intermediate_size": 2880, "num_hidden_layers": 24, "num_attention_heads": 64, "num_key_value_heads": 8,
    "head_dim": 64, "sliding_window": 128, "num_local_experts": 32, "num_experts_per_tok": 4,
    "layer_types": ["sliding_attention", "full_attention"] * 12, "vocab_size": 201088,
    "max_position_embeddings": 131072, "torch_dtype": "bfloat16",
    "quantization_config": {"modules_to_not_convert": ["model.layers.*.self_attn", "model.embed_tokens",
                                                        "lm_head"], "quant_method": "mxfp4"},
}

LLAMA4_SCOUT = {  # chunked attention on RoPE layers, every 4th (NoPE) layer global
    "architectures": ["Llama4ForConditionalGeneration"], "model_type": "llama4", "torch_dtype": "bfloat16",
    "text_config": {
        "model_type": "llama4_text", "hidden_size": 5120, "intermediate_size": 8192,
        "intermediate_size_mlp": 16384, "num_hidden_layers": 48, "num_attention_heads": 40,
        "num_key_value_heads": 8, "head_dim": 128, "attention_chunk_size": 8192,
        "no_rope_layers": [0 if (i + 1) % 4 == 0 else 1 for i in range(48)], "num_local_experts": 16,
        "num_experts_per_tok": 1, "interleave_moe_layer_step": 1, "vocab_size": 202048,
        "max_position_embeddings": 10485760,
    },
    "vision_config": {"hidden_size": 1408, "num_hidden_layers": 34, "patch_size": 14, "image_size": 336},
}

PHI3_MINI = {
    "architectures": ["Phi3ForCausalLM"], "model_type": "phi3", "hidden_size": 3072, "intermediate_size": 8192,
    "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 32, "sliding_window": 2047,
    "vocab_size": 32064, "max_position_embeddings": 4096, "torch_dtype": "bfloat16",
}

JAMBA = {  # one attention layer in eight, Mamba-1 elsewhere
    "architectures": ["JambaForCausalLM"], "model_type": "jamba", "hidden_size": 4096,
    "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
    "attn_layer_period": 8, "attn_layer_offset": 4, "mamba_d_state": 16, "mamba_d_conv": 4, "mamba_expand": 2,
    "num_experts": 16, "num_experts_per_tok": 2, "vocab_size": 65536, "max_position_embeddings": 262144,
    "torch_dtype": "bfloat16",
}

INTERNVL_LLM = {  # llm_config nesting (InternVL 2.5), Qwen2-shaped language model inside
    "architectures": ["InternVLChatModel"], "model_type": "internvl_chat", "torch_dtype": "bfloat16",
    "llm_config": {
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 3584,
        "intermediate_size": 18944, "num_hidden_layers": 28, "num_attention_heads": 28, "num_key_value_heads": 4,
        "use_sliding_window": False, "sliding_window": 32768, "max_window_layers": 28, "vocab_size": 151674,
        "max_position_embeddings": 32768,
    },
    "vision_config": {"hidden_size": 1024, "num_hidden_layers": 24, "patch_size": 14, "image_size": 448},
}

# nvidia/Nemotron-H-8B-Base-8K's config.json (transformers_version 4.48.0.dev0) as copied into
# NVIDIA-NeMo/Megatron-Bridge@2310230d3bb7687ede368c7a7481f36ca32c664e:
# tests/unit_tests/models/nemotronh/test_nemotron_h_bridge.py (nemotronh_8b_config_dict); token ids, dropout,
# initialisation and kernel switches left out. M Mamba-2, * attention, - MLP: every block is one of them.
NEMOTRON_H_8B = {
    "architectures": ["NemotronHForCausalLM"], "model_type": "nemotron_h", "hidden_size": 4096,
    "hybrid_override_pattern": "M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M-", "num_hidden_layers": 52,
    "intermediate_size": 21504, "mlp_hidden_act": "relu2", "mlp_bias": False, "attention_bias": False,
    "attention_head_dim": 128, "num_attention_heads": 32, "num_key_value_heads": 8, "mamba_num_heads": 128,
    "mamba_head_dim": 64, "n_groups": 8, "ssm_state_size": 128, "conv_kernel": 4, "expand": 2,
    "use_conv_bias": True, "use_bias": False, "mamba_proj_bias": False, "chunk_size": 128,
    "max_position_embeddings": 8192, "vocab_size": 131072, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
}

# a multimodal wrapper over a small Mistral (layers, width and vocab trimmed): the quantisation readers' tests
MISTRAL3_WRAPPER = {
    "architectures": ["Mistral3ForConditionalGeneration"], "model_type": "mistral3", "dtype": "bfloat16",
    "text_config": {"model_type": "mistral", "hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 4,
                    "num_attention_heads": 8, "num_key_value_heads": 2, "head_dim": 128, "vocab_size": 32000,
                    "max_position_embeddings": 32768},
    "vision_config": {"hidden_size": 1024, "num_hidden_layers": 24, "intermediate_size": 4096, "patch_size": 14,
                      "image_size": 1540}}
