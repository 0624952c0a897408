"""What a config.json leaves out, as the engine's config loader fills it. vLLM builds its config through
transformers' AutoConfig (vLLM 0.34.0 transformers_utils/config.py), so a field the file omits reaches vLLM's model
code as the default of that model_type's config class: a Llama config.json without intermediate_size is served with
LlamaConfig's 11,008, not a guess of 4 x hidden_size. The one table of those defaults, read by config.Config when
it builds a config (merged under the file's own fields, which win, null included):

- CLASS_DEFAULTS: each family's plain defaults (a number or a flag, not derived from other fields) for the fields
  kvplan reads with a fallback, as transformers 5.22.2 fills them (vLLM 0.34.0 requires >=5.16.1,<5.23.0), made by
  tests/data/transformers_config_defaults.py (`--kvplan` prints this table) and checked against its frozen output
  tests/data/transformers_config_defaults.json by tests/test_config_defaults_s72.py. Left out: the window fields
  (sliding_window, use_sliding_window, max_window_layers, attention_chunk_size), which vLLM's models read through
  layer_types, not from the class's bare default (llama.py 0.34.0:185-204: MistralConfig's sliding_window 4,096
  builds no window).
- CLASS_ALIASES: the class's attribute_map (a file's alias sets the field: DeepseekV3Config num_local_experts ->
  n_routed_experts), applied before the defaults so that a file's alias is not overwritten by the default.
- SAME_CLASS: model types one class builds alike (deepseek_v32 and kimi_k2: DeepseekV3Config; a wrapper and its
  text_config type), whose entries above are the named type's.
- FAMILY_FIELDS: more of a family's defaults, beyond those fields, where its published configs rely on them
  (Gemma 3's text_config names 5 fields).
- NO_DEFAULT: fields a family's class leaves None with nothing derived, which vLLM's model reads as they are and
  cannot build with: a config without them is refused (no_default_error) rather than guessed.

- OLDER_DEFAULTS: what older transformers fill differently, for the vLLM releases that install them (0.2.0-0.25.1):
  TRANSFORMERS_SINCE maps a release to the transformers a fresh install of it got on its day, transformers_for reads
  it (the engine's release, through engines/vllm_versions.py release_transformers: commands estimate, check and
  verify hand it to sources.resolve, which hands it to Config, and so does a speculative draft's read; a remedy
  under another release reads the model again where that release's table differs; verify's forward reads the raw
  config with the spec's, ModelSpec.transformers), and defaults_table composes the table of that version; frozen by
  the same script under transformers 5.12.0, 5.5.4, 4.57.6 and 4.45.2 (tests/data/transformers_config_defaults_
  <version>.json), checked by tests/test_transformers_4x_defaults_s73.py and tests/test_transformers_5x_defaults_s73.py
  (which also reads 5.17.0's freeze: 0.26.0-0.34.0 read alike).

Defaults a class derives from other fields stay with the readers that derive them the same way (parse._kv_heads:
num_key_value_heads = num_attention_heads; parse._head_dim: hidden_size // num_attention_heads; tensors.mlp_width:
4 x hidden_size where GPT-2's n_inner or Falcon's ffn_hidden_size is None). Families vLLM builds with a config class
of its own (kimi_linear, muse_spark, refinedweb...: _CONFIG_REGISTRY) are not in the table."""

from __future__ import annotations

from typing import Optional

from ..errors import KvplanError

# transformers 5.22.2, tests/data/transformers_config_defaults.py --kvplan (one entry per family, as generated)
CLASS_DEFAULTS = {
    "axk1": {"intermediate_size": 18432, "num_key_value_heads": 64, "head_dim": 64, "max_position_embeddings": 32768,
             "n_routed_experts": 192, "num_experts_per_tok": 8, "moe_intermediate_size": 2048, "n_shared_experts": 1,
             "q_lora_rank": 1536, "qk_rope_head_dim": 64, "qk_nope_head_dim": 128, "v_head_dim": 128,
             "kv_lora_rank": 512, "n_group": 8, "topk_group": 4, "routed_scaling_factor": 2.5, "norm_topk_prob": True,
             "tie_word_embeddings": False, "attention_bias": False},
    "bamba": {"intermediate_size": 14336, "num_key_value_heads": 8, "max_position_embeddings": 262144,
              "mamba_expand": 2, "mamba_d_conv": 4, "mamba_n_groups": 1, "mamba_d_state": 256,
              "tie_word_embeddings": False, "attention_bias": False, "mlp_bias": False},
    "cohere2_moe": {"intermediate_size": 22528, "head_dim": 128, "max_position_embeddings": 8192, "num_experts": 8,
                    "num_experts_per_tok": 2, "num_shared_experts": 0, "norm_topk_prob": True,
                    "tie_word_embeddings": True, "attention_bias": False},
    "deepseek_v2": {"intermediate_size": 11008, "head_dim": 64, "max_position_embeddings": 2048, "n_routed_experts": 64,
                    "moe_intermediate_size": 1407, "n_shared_experts": 2, "first_k_dense_replace": 0,
                    "q_lora_rank": 1536, "qk_rope_head_dim": 64, "qk_nope_head_dim": 128, "v_head_dim": 128,
                    "kv_lora_rank": 512, "routed_scaling_factor": 1.0, "norm_topk_prob": False,
                    "tie_word_embeddings": False, "attention_bias": False, "mlp_bias": False},
    "deepseek_v3": {"intermediate_size": 18432, "num_key_value_heads": 128, "head_dim": 64,
                    "max_position_embeddings": 4096, "n_routed_experts": 256, "num_experts_per_tok": 8,
                    "moe_intermediate_size": 2048, "n_shared_experts": 1, "first_k_dense_replace": 3,
                    "q_lora_rank": 1536, "qk_rope_head_dim": 64, "qk_nope_head_dim": 128, "v_head_dim": 128,
                    "kv_lora_rank": 512, "num_nextn_predict_layers": 1, "n_group": 8, "topk_group": 4,
                    "routed_scaling_factor": 2.5, "norm_topk_prob": True, "tie_word_embeddings": False,
                    "attention_bias": False},
    "deepseek_v4": {"num_key_value_heads": 1, "head_dim": 512, "max_position_embeddings": 1048576,
                    "n_routed_experts": 256, "num_experts_per_tok": 6, "moe_intermediate_size": 2048,
                    "n_shared_experts": 1, "q_lora_rank": 1024, "qk_rope_head_dim": 64, "num_nextn_predict_layers": 1,
                    "routed_scaling_factor": 1.5, "norm_topk_prob": True, "tie_word_embeddings": False,
                    "attention_bias": False, "mlp_bias": False},
    "diffusion_gemma_text": {"intermediate_size": 9216, "num_key_value_heads": 4, "head_dim": 256,
                             "max_position_embeddings": 131072, "tie_word_embeddings": True, "attention_bias": False},
    "ernie4_5": {"intermediate_size": 3072, "num_key_value_heads": 2, "head_dim": 128,
                 "max_position_embeddings": 131072, "tie_word_embeddings": True},
    "ernie4_5_moe": {"intermediate_size": 12288, "num_key_value_heads": 4, "max_position_embeddings": 131072,
                     "moe_num_experts": 64, "moe_k": 6, "moe_intermediate_size": 1536, "moe_num_shared_experts": 2,
                     "moe_layer_start_index": 1, "moe_layer_interval": 1, "tie_word_embeddings": True},
    "exaone4": {"intermediate_size": 16384, "num_key_value_heads": 32, "max_position_embeddings": 2048,
                "tie_word_embeddings": False},
    "exaone_moe": {"intermediate_size": 16384, "num_key_value_heads": 32, "max_position_embeddings": 2048,
                   "num_experts": 64, "num_experts_per_tok": 8, "moe_intermediate_size": 1024, "num_shared_experts": 1,
                   "first_k_dense_replace": 1, "n_group": 1, "topk_group": 1, "routed_scaling_factor": 2.5,
                   "norm_topk_prob": True, "tie_word_embeddings": False},
    "falcon": {"multi_query": True, "max_position_embeddings": 2048, "parallel_attn": True,
               "new_decoder_architecture": False, "bias": False, "tie_word_embeddings": True},
    "falcon_h1": {"intermediate_size": 14336, "num_key_value_heads": 8, "max_position_embeddings": 8192,
                  "mamba_expand": 2, "mamba_d_conv": 4, "mamba_n_groups": 1, "mamba_d_state": 256,
                  "tie_word_embeddings": False, "attention_bias": False, "mlp_bias": False},
    "falcon_mamba": {"expand": 2, "conv_kernel": 4, "state_size": 16, "tie_word_embeddings": True},
    "gemma": {"intermediate_size": 24576, "num_key_value_heads": 16, "head_dim": 256, "max_position_embeddings": 8192,
              "tie_word_embeddings": True, "attention_bias": False},
    "gemma2": {"intermediate_size": 9216, "num_key_value_heads": 4, "head_dim": 256, "max_position_embeddings": 8192,
               "tie_word_embeddings": True, "attention_bias": False},
    "gemma3": {"mm_tokens_per_image": 256, "intermediate_size": 9216, "num_key_value_heads": 4, "head_dim": 256,
               "max_position_embeddings": 131072, "tie_word_embeddings": True, "attention_bias": False},
    "gemma3_text": {"intermediate_size": 9216, "num_key_value_heads": 4, "head_dim": 256,
                    "max_position_embeddings": 131072, "tie_word_embeddings": True, "attention_bias": False},
    "gemma3n_text": {"num_key_value_heads": 2, "head_dim": 256, "max_position_embeddings": 32768,
                     "num_kv_shared_layers": 15, "hidden_size_per_layer_input": 256, "tie_word_embeddings": True,
                     "attention_bias": False},
    "gemma4_text": {"intermediate_size": 9216, "num_key_value_heads": 4, "head_dim": 256,
                    "max_position_embeddings": 131072, "num_kv_shared_layers": 0, "hidden_size_per_layer_input": 256,
                    "attention_k_eq_v": False, "use_double_wide_mlp": False, "tie_word_embeddings": True,
                    "attention_bias": False},
    "gemma4_unified_text": {"intermediate_size": 9216, "num_key_value_heads": 4, "head_dim": 256,
                            "max_position_embeddings": 262144, "num_kv_shared_layers": 0, "attention_k_eq_v": False,
                            "use_double_wide_mlp": False, "tie_word_embeddings": True, "attention_bias": False},
    "glm4": {"intermediate_size": 13696, "num_key_value_heads": 2, "head_dim": 128, "max_position_embeddings": 131072,
             "tie_word_embeddings": False, "attention_bias": True},
    "glm4_moe": {"intermediate_size": 10944, "num_key_value_heads": 8, "max_position_embeddings": 131072,
                 "n_routed_experts": 128, "num_experts_per_tok": 8, "moe_intermediate_size": 1408,
                 "n_shared_experts": 1, "first_k_dense_replace": 1, "num_nextn_predict_layers": 1, "n_group": 1,
                 "topk_group": 1, "routed_scaling_factor": 1.0, "norm_topk_prob": True, "tie_word_embeddings": False,
                 "attention_bias": False},
    "glm4_moe_lite": {"intermediate_size": 10240, "num_key_value_heads": 20, "max_position_embeddings": 202752,
                      "n_routed_experts": 64, "num_experts_per_tok": 4, "moe_intermediate_size": 1536,
                      "n_shared_experts": 1, "q_lora_rank": 768, "qk_rope_head_dim": 64, "qk_nope_head_dim": 192,
                      "v_head_dim": 256, "kv_lora_rank": 512, "n_group": 1, "topk_group": 1,
                      "routed_scaling_factor": 1.8, "norm_topk_prob": True, "tie_word_embeddings": False,
                      "attention_bias": False},
    "glm_moe_dsa": {"intermediate_size": 12288, "num_key_value_heads": 64, "head_dim": 64,
                    "max_position_embeddings": 202752, "n_routed_experts": 256, "num_experts_per_tok": 8,
                    "moe_intermediate_size": 2048, "n_shared_experts": 1, "first_k_dense_replace": 3,
                    "q_lora_rank": 2048, "qk_rope_head_dim": 64, "qk_nope_head_dim": 192, "v_head_dim": 256,
                    "kv_lora_rank": 512, "n_group": 1, "topk_group": 1, "routed_scaling_factor": 2.5,
                    "norm_topk_prob": True, "tie_word_embeddings": False, "attention_bias": False, "mlp_bias": False},
    "gpt2": {"n_positions": 1024, "tie_word_embeddings": True},
    "gpt_bigcode": {"multi_query": True, "n_positions": 1024, "tie_word_embeddings": True},
    "gpt_neox": {"intermediate_size": 24576, "max_position_embeddings": 2048, "tie_word_embeddings": False,
                 "attention_bias": True},
    "gpt_oss": {"intermediate_size": 2880, "num_key_value_heads": 8, "head_dim": 64, "max_position_embeddings": 131072,
                "num_local_experts": 128, "num_experts_per_tok": 4, "tie_word_embeddings": False,
                "attention_bias": True},
    "gptj": {"n_positions": 2048, "tie_word_embeddings": False},
    "granite": {"intermediate_size": 11008, "max_position_embeddings": 2048, "tie_word_embeddings": False,
                "attention_bias": False, "mlp_bias": False},
    "granitemoe": {"intermediate_size": 11008, "max_position_embeddings": 2048, "num_local_experts": 8,
                   "num_experts_per_tok": 2, "tie_word_embeddings": False, "attention_bias": False},
    "granitemoehybrid": {"intermediate_size": 11008, "max_position_embeddings": 2048, "num_local_experts": 8,
                         "num_experts_per_tok": 2, "shared_intermediate_size": 1024, "mamba_expand": 2,
                         "mamba_d_conv": 4, "mamba_n_groups": 1, "mamba_d_state": 256, "tie_word_embeddings": False,
                         "attention_bias": False},
    "jamba": {"intermediate_size": 14336, "num_key_value_heads": 8, "max_position_embeddings": 262144,
              "num_experts": 16, "num_experts_per_tok": 2, "expert_layer_period": 2, "expert_layer_offset": 1,
              "attn_layer_period": 8, "attn_layer_offset": 4, "mamba_expand": 2, "mamba_d_conv": 4, "mamba_d_state": 16,
              "tie_word_embeddings": False},
    "laguna": {"intermediate_size": 8192, "num_key_value_heads": 8, "head_dim": 128, "max_position_embeddings": 131072,
               "num_experts": 256, "num_experts_per_tok": 8, "moe_intermediate_size": 512,
               "shared_expert_intermediate_size": 512, "tie_word_embeddings": False, "attention_bias": False},
    "lfm2": {"intermediate_size": 12288, "num_key_value_heads": 8, "max_position_embeddings": 128000,
             "block_multiple_of": 256, "block_auto_adjust_ff_dim": True, "tie_word_embeddings": True},
    "lfm2_moe": {"intermediate_size": 7168, "num_key_value_heads": 8, "max_position_embeddings": 128000,
                 "num_experts": 32, "num_experts_per_tok": 4, "moe_intermediate_size": 1792, "num_dense_layers": 2,
                 "routed_scaling_factor": 1.0, "norm_topk_prob": True, "tie_word_embeddings": True},
    "llama": {"intermediate_size": 11008, "max_position_embeddings": 2048, "tie_word_embeddings": False,
              "attention_bias": False, "mlp_bias": False},
    "llama4_text": {"intermediate_size": 8192, "num_key_value_heads": 8, "head_dim": 128,
                    "max_position_embeddings": 131072, "num_local_experts": 16, "num_experts_per_tok": 1,
                    "intermediate_size_mlp": 16384, "no_rope_layer_interval": 4, "tie_word_embeddings": False,
                    "attention_bias": False},
    "mamba": {"expand": 2, "conv_kernel": 4, "state_size": 16, "tie_word_embeddings": True},
    "mamba2": {"head_dim": 64, "expand": 2, "conv_kernel": 4, "n_groups": 8, "state_size": 128, "time_step_rank": 256,
               "tie_word_embeddings": False},
    "mimo_v2_flash": {"intermediate_size": 16384, "num_key_value_heads": 4, "head_dim": 192,
                      "max_position_embeddings": 131072, "n_routed_experts": 256, "num_experts_per_tok": 8,
                      "moe_intermediate_size": 2048, "v_head_dim": 128, "n_group": 1, "topk_group": 1,
                      "routed_scaling_factor": 1.0, "norm_topk_prob": True, "tie_word_embeddings": False,
                      "attention_bias": False},
    "minimax_m2": {"intermediate_size": 1536, "num_key_value_heads": 8, "head_dim": 128,
                   "max_position_embeddings": 196608, "num_local_experts": 256, "num_experts_per_tok": 8,
                   "tie_word_embeddings": False},
    "ministral3": {"intermediate_size": 14336, "num_key_value_heads": 8, "head_dim": 128,
                   "max_position_embeddings": 262144, "tie_word_embeddings": False},
    "mistral": {"intermediate_size": 14336, "num_key_value_heads": 8, "max_position_embeddings": 131072,
                "tie_word_embeddings": False},
    "mistral3": {"spatial_merge_size": 2, "intermediate_size": 14336, "num_key_value_heads": 8,
                 "max_position_embeddings": 131072, "tie_word_embeddings": False},
    "mixtral": {"intermediate_size": 14336, "num_key_value_heads": 8, "max_position_embeddings": 131072,
                "num_local_experts": 8, "num_experts_per_tok": 2, "tie_word_embeddings": False},
    "nemotron_h": {"intermediate_size": 21504, "num_key_value_heads": 8, "head_dim": 128,
                   "max_position_embeddings": 4096, "n_routed_experts": 8, "num_experts_per_tok": 2,
                   "moe_intermediate_size": 7688, "moe_shared_expert_intermediate_size": 7688, "n_shared_experts": 1,
                   "expand": 2, "conv_kernel": 4, "n_groups": 8, "ssm_state_size": 128, "mamba_num_heads": 128,
                   "mamba_head_dim": 64, "num_nextn_predict_layers": 0, "n_group": 1, "topk_group": 1,
                   "routed_scaling_factor": 1.0, "norm_topk_prob": True, "tie_word_embeddings": False,
                   "attention_bias": False, "mlp_bias": False},
    "olmo": {"intermediate_size": 11008, "max_position_embeddings": 2048, "tie_word_embeddings": False,
             "attention_bias": False},
    "olmo2": {"intermediate_size": 11008, "max_position_embeddings": 2048, "tie_word_embeddings": False,
              "attention_bias": False},
    "olmo3": {"intermediate_size": 11008, "max_position_embeddings": 2048, "tie_word_embeddings": False,
              "attention_bias": False},
    "olmoe": {"intermediate_size": 2048, "max_position_embeddings": 4096, "num_experts": 64, "num_experts_per_tok": 8,
              "norm_topk_prob": False, "tie_word_embeddings": False, "attention_bias": False},
    "phi": {"intermediate_size": 8192, "max_position_embeddings": 2048, "tie_word_embeddings": False},
    "phi3": {"intermediate_size": 8192, "max_position_embeddings": 4096, "tie_word_embeddings": False},
    "phimoe": {"intermediate_size": 6400, "num_key_value_heads": 8, "max_position_embeddings": 131072,
               "num_local_experts": 16, "num_experts_per_tok": 2, "tie_word_embeddings": False,
               "attention_bias": False},
    "qwen2": {"intermediate_size": 22016, "num_key_value_heads": 32, "max_position_embeddings": 32768,
              "tie_word_embeddings": False},
    "qwen2_5_vl": {"tie_word_embeddings": False, "intermediate_size": 29568, "num_key_value_heads": 8,
                   "max_position_embeddings": 32768},
    "qwen2_moe": {"intermediate_size": 5632, "num_key_value_heads": 16, "max_position_embeddings": 32768,
                  "num_experts": 60, "num_experts_per_tok": 4, "moe_intermediate_size": 1408,
                  "shared_expert_intermediate_size": 5632, "decoder_sparse_step": 1, "norm_topk_prob": False,
                  "tie_word_embeddings": False},
    "qwen2_vl": {"tie_word_embeddings": False, "intermediate_size": 29568, "num_key_value_heads": 8,
                 "max_position_embeddings": 32768},
    "qwen3": {"intermediate_size": 22016, "num_key_value_heads": 32, "head_dim": 128, "max_position_embeddings": 32768,
              "tie_word_embeddings": False, "attention_bias": False},
    "qwen3_5_moe_text": {"num_key_value_heads": 2, "head_dim": 256, "max_position_embeddings": 32768,
                         "num_experts": 256, "num_experts_per_tok": 8, "moe_intermediate_size": 512,
                         "shared_expert_intermediate_size": 512, "tie_word_embeddings": False, "attention_bias": False},
    "qwen3_5_text": {"intermediate_size": 12288, "num_key_value_heads": 4, "head_dim": 256,
                     "max_position_embeddings": 32768, "tie_word_embeddings": False, "attention_bias": False},
    "qwen3_moe": {"intermediate_size": 6144, "num_key_value_heads": 4, "max_position_embeddings": 32768,
                  "num_local_experts": 128, "num_experts_per_tok": 8, "moe_intermediate_size": 768,
                  "decoder_sparse_step": 1, "norm_topk_prob": False, "tie_word_embeddings": False,
                  "attention_bias": False},
    "qwen3_next": {"intermediate_size": 5632, "num_key_value_heads": 2, "head_dim": 256,
                   "max_position_embeddings": 32768, "num_experts": 512, "num_experts_per_tok": 10,
                   "moe_intermediate_size": 512, "shared_expert_intermediate_size": 512, "decoder_sparse_step": 1,
                   "norm_topk_prob": True, "tie_word_embeddings": False, "attention_bias": False},
    "qwen3_vl": {"tie_word_embeddings": False, "intermediate_size": 22016, "num_key_value_heads": 32, "head_dim": 128,
                 "max_position_embeddings": 128000, "attention_bias": False},
    "qwen3_vl_moe_text": {"intermediate_size": 5632, "num_key_value_heads": 16, "max_position_embeddings": 128000,
                          "num_local_experts": 60, "num_experts_per_tok": 4, "moe_intermediate_size": 1408,
                          "decoder_sparse_step": 1, "tie_word_embeddings": True, "attention_bias": False},
    "qwen3_vl_text": {"intermediate_size": 22016, "num_key_value_heads": 32, "head_dim": 128,
                      "max_position_embeddings": 128000, "attention_bias": False},
    "step3p5": {"intermediate_size": 11264, "num_key_value_heads": 8, "head_dim": 128,
                "max_position_embeddings": 128000, "n_routed_experts": 288, "num_experts_per_tok": 8,
                "moe_intermediate_size": 1280, "num_nextn_predict_layers": 0, "tie_word_embeddings": False,
                "attention_bias": False, "mlp_bias": False},
    "zamba2": {"max_position_embeddings": 4096, "mamba_expand": 2, "mamba_d_conv": 4, "mamba_d_state": 64,
               "tie_word_embeddings": True},
}

# transformers 5.22.2 attribute_map entries naming a field of FIELDS (alias -> field), as generated
CLASS_ALIASES = {
    "axk1": {"num_local_experts": "n_routed_experts"},
    "deepseek_v2": {"num_experts": "n_routed_experts"},
    "deepseek_v3": {"num_local_experts": "n_routed_experts", "num_mtp_layers": "num_nextn_predict_layers"},
    "deepseek_v4": {"num_local_experts": "n_routed_experts", "intermediate_size": "moe_intermediate_size"},
    "ernie4_5_moe": {"num_experts": "moe_num_experts", "num_experts_per_tok": "moe_k"},
    "glm4_moe": {"num_local_experts": "n_routed_experts", "num_mtp_layers": "num_nextn_predict_layers"},
    "glm4_moe_lite": {"num_local_experts": "n_routed_experts", "head_dim": "qk_rope_head_dim"},
    "glm_moe_dsa": {"num_local_experts": "n_routed_experts"},
    "gpt2": {"max_position_embeddings": "n_positions"},
    "gpt_bigcode": {"max_position_embeddings": "n_positions"},
    "gpt_oss": {"num_experts": "num_local_experts"},
    "gptj": {"max_position_embeddings": "n_positions"},
    "jamba": {"num_local_experts": "num_experts"},
    "mimo_v2_flash": {"num_local_experts": "n_routed_experts"},
    "minimax_m2": {"num_experts": "num_local_experts"},
    "mixtral": {"num_experts": "num_local_experts"},
    "nemotron_h": {"num_local_experts": "n_routed_experts"},
    "olmoe": {"num_local_experts": "num_experts"},
    "qwen3_moe": {"num_experts": "num_local_experts"},
    "qwen3_vl_moe_text": {"num_experts": "num_local_experts"},
    "step3p5": {"num_local_experts": "n_routed_experts", "num_attention_groups": "num_key_value_heads",
                "moe_num_experts": "n_routed_experts", "moe_top_k": "num_experts_per_tok",
                "num_mtp_layers": "num_nextn_predict_layers"},
    "zamba2": {"head_dim": "attention_head_dim"},
}

# model types one class builds with the same defaults and aliases (as generated): {type: the type holding the entry}
SAME_CLASS = {
    "deepseek_v32": "deepseek_v3", "gemma3n": "gemma3n_text", "gemma4": "gemma4_text", "kimi_k2": "deepseek_v3",
    "llama4": "llama4_text", "qwen3_5": "qwen3_5_text", "qwen3_5_moe": "qwen3_5_moe_text",
    "qwen3_vl_moe": "qwen3_vl_moe_text",
}

# Some Hub files omit fields that transformers' config class fills with defaults; serving engines read the
# filled-in values, so we must too. Beyond CLASS_DEFAULTS' fields (the layer count, heads, vocabulary, windows):
# only families whose published configs rely on this are listed. Where a field is in both, the two agree
# (tests/test_config_defaults_s72.py).
FAMILY_FIELDS = {
    # transformers Gemma3TextConfig defaults (google/gemma-3-4b-it's text_config names only 5 fields)
    "gemma3_text": {"num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256, "vocab_size": 262208,
                    "sliding_window": 4096, "sliding_window_pattern": 6, "max_position_embeddings": 131072},
    # transformers Gemma4TextConfig defaults (5.19: configuration_gemma4.py; global_head_dim popped with 512)
    "gemma4_text": {"head_dim": 256, "global_head_dim": 512, "vocab_size": 262144, "sliding_window": 512,
                    "hidden_size_per_layer_input": 256, "vocab_size_per_layer_input": 262144,
                    "max_position_embeddings": 131072, "tie_word_embeddings": True},
    # transformers Gemma4UnifiedTextConfig defaults (5.22.2 configuration_gemma4_unified.py:124-147, global_head_dim
    # popped with 512 at :177; the same in 5.25.0 :123-146): its own window (1024, not Gemma4TextConfig's 512) and
    # use_bidirectional_attention "vision" (Gemma4TextConfig's is None), which makes it a prefix LM over each media
    # item (vision.media_prefix) and leaves the window whole (BIDIRECTIONAL_WINDOW). No per-layer-input fields: vLLM
    # gemma4.py reads getattr(config, "hidden_size_per_layer_input", 0) (0.34.0:592-593, :858-859), none here. The
    # flags the class defaults to False / 0 (attention_bias, attention_k_eq_v, num_kv_shared_layers,
    # use_double_wide_mlp: :141-150) are kvplan's getters' defaults already; layer_types: layers.gemma4_mixers.
    "gemma4_unified_text": {"vocab_size": 262144, "hidden_size": 2304, "intermediate_size": 9216,
                            "num_hidden_layers": 30, "num_attention_heads": 8, "num_key_value_heads": 4,
                            "head_dim": 256, "global_head_dim": 512, "max_position_embeddings": 262144,
                            "tie_word_embeddings": True, "sliding_window": 1024,
                            "use_bidirectional_attention": "vision"},
    # transformers DiffusionGemmaTextConfig defaults (5.22.2 configuration_diffusion_gemma.py:80-106, global_head_dim
    # popped with 512 at :130), which vLLM 0.32-0.34 builds from (0.24-0.31 register a DiffusionGemmaTextConfig of
    # their own that fills none: transformers_utils/configs/diffusion_gemma.py 0.24.0:18-22). No per-layer-input fields
    # and no attention_k_eq_v (layers.gemma4_k_eq_v: always K = V); layer_types: layers.gemma4_mixers.
    "diffusion_gemma_text": {"head_dim": 256, "global_head_dim": 512, "vocab_size": 262144, "sliding_window": 512,
                             "max_position_embeddings": 131072, "tie_word_embeddings": True},
    # transformers Gemma3nTextConfig defaults (5.19: configuration_gemma3n.py; E4B's shapes)
    "gemma3n_text": {"vocab_size": 262400, "hidden_size": 2048, "intermediate_size": 16384, "num_hidden_layers": 35,
                     "num_attention_heads": 8, "num_key_value_heads": 2, "head_dim": 256, "sliding_window": 512,
                     "max_position_embeddings": 32768, "hidden_size_per_layer_input": 256,
                     "vocab_size_per_layer_input": 262144, "altup_num_inputs": 4, "num_kv_shared_layers": 15,
                     "laurel_rank": 64, "tie_word_embeddings": True},
    # transformers 5.19 Glm4MoeConfig (configuration_glm4_moe.py; the object vLLM 0.32.0 glm4_moe.py reads) where a
    # field is absent: its shapes (GLM-4.5-Air's), first_k_dense_replace 1, one shared expert (one MTP layer from
    # 5.14.1, none before: CLASS_DEFAULTS', by release), partial_rotary_factor 0.5 (its __post_init__; vLLM's
    # glm4_moe.py:280 setdefaults the same into rope_parameters), no q/k norms, no attention biases. No head_dim:
    # vLLM reads config.head_dim with no fallback (HEAD_DIM_REQUIRED). Routing defaults: CLASS_DEFAULTS.
    "glm4_moe": {"vocab_size": 151552, "hidden_size": 4096, "intermediate_size": 10944, "num_hidden_layers": 46,
                 "num_attention_heads": 96, "num_key_value_heads": 8, "max_position_embeddings": 131072,
                 "moe_intermediate_size": 1408, "num_experts_per_tok": 8, "n_shared_experts": 1,
                 "n_routed_experts": 128, "first_k_dense_replace": 1, "partial_rotary_factor": 0.5,
                 "use_qk_norm": False, "attention_bias": False, "tie_word_embeddings": False, "rms_norm_eps": 1e-5},
    # AXK1's first dense layer where the config names neither mlp_layer_types nor first_k_dense_replace, as every
    # release read builds it: vLLM 0.30.0 with its own AXK1Config (transformers_utils/config.py 0.30.0:90;
    # configs/AXK1.py:144 first_k_dense_replace 1), read at AXK1.py 0.30.0:652; 0.32.0 with transformers
    # 5.19.0's (first_k_dense_replace 1), AXK1.py 0.32.0:649; 0.33.0-0.34.0 with 5.20.2 / 5.22.2's, which pops it with
    # 1 into mlp_layer_types (5.22.2 configuration_axk1.py:125-129), read at AXK1.py 0.34.0:98-106.
    "axk1": {"first_k_dense_replace": 1},
}


# The transformers a vLLM release installs, whose classes fill what its config.json leaves out: the newest the
# release's Requires-Dist allows among those on PyPI the day the release was uploaded (a fresh `pip install vllm==X`
# that day; today's pip would pick transformers 5 for 0.2.0-0.11.0, which name no upper bound and cannot run on it).
# Requires-Dist (the wheels' METADATA): 0.2.0 transformers>=4.33.1 ... 0.11.0 >=4.55.2 (no upper bound); 0.11.1-0.19.0
# >=4.56.0,<5; 0.19.1-0.23.0 >=4.56.0 but not 5.0-5.5.0; 0.24.0-0.28.0 >=5.5.3, the first to require transformers 5;
# 0.29.0-0.30.0 >=5.10.4; 0.31.0 >=5.10.4,<5.18.0; 0.32.0 >=5.16.1,<5.20.0; 0.33.0 <5.21.0; 0.34.0 <5.23.0. The day's
# transformers: 4.33.3 (0.2.0) ... 4.46.2 (0.6.4.post1), 4.47.1 (0.6.5) ... 4.57.6 (0.19.0), 5.5.4 (0.19.1), 5.6.2
# (0.20.0), 5.7.0, 5.8.0, 5.8.1 (0.21.0), 5.9.0 (0.22.0), 5.10.2 (0.22.1), 5.12.0 (0.23.0), 5.12.1 (0.24.0), 5.13.1
# (0.25.x), 5.14.1 (0.26.0), 5.15.0 (0.27.x), 5.15.1 (0.28.0), 5.16.1 (0.29.0), 5.17.0 (0.30.0, 0.31.0), 5.19.0
# (0.32.0), 5.20.2 (0.33.0), 5.22.2 (0.34.0). Each run is read with one frozen table: the script's output under every
# one of those versions, compared when this was made (session 73), differs within a run only in fields a class gained
# (LlamaConfig attention_bias 4.36, mlp_bias 4.42, GPTNeoXConfig attention_bias 4.42: the getters' defaults, what those
# releases' models built), classes added (a family with none keeps the newer table's entry), derived ones (head_dim,
# Falcon's ffn_hidden_size), fields no getter reads differently (Mamba-2's time_step_rank; Cohere2-MoE's
# first_k_dense_replace 0 in 5.9.0, the getter's default; GLM-5's num_experts 256 in 5.12.x, read after its
# n_routed_experts, 256 too; Gemma 4's global_head_dim 512 up to 5.14.1, then popped with 512: FAMILY_FIELDS),
# Gemma4UnifiedTextConfig's max_position_embeddings 131,072 in 5.10.2 (vLLM serves that model from 0.23.0, 262,144) and
# AXK1Config's first_k_dense_replace 1 in 5.15.0-5.19.0, popped with 1 into mlp_layer_types from 5.20 (FAMILY_FIELDS).
# The plain defaults kvplan reads that moved: Gemma2Config's widths in 4.47 (24,576 and 16 -> 9,216 and 4), hence the
# cut at 0.6.5; GlmMoeDsaConfig's first_k_dense_replace in 5.12.0 (none -> 3), the cut at 0.23.0; DeepseekV3Config's
# and Glm4MoeConfig's num_nextn_predict_layers in 5.14.1 (none -> 1), the cut at 0.26.0. (first release, the frozen
# transformers), newest first; the newest run reads CLASS_DEFAULTS, which 5.17.0's freeze reads alike.
TRANSFORMERS_SINCE = (((0, 26, 0), "5.22.2"), ((0, 23, 0), "5.12.0"), ((0, 19, 1), "5.5.4"), ((0, 6, 5), "4.57.6"),
                      ((0, 0), "4.45.2"))

# What an older transformers' classes fill differently from the next newer table (CLASS_DEFAULTS for 5.12.0, 5.12.0's
# for 5.5.4, and so on), from tests/data/transformers_config_defaults_<version>.json: {version: {family: {field: its
# value, or None where that class fills no plain value}}}. A family the older transformers has no class for keeps the
# newer table's entry (vLLM of those releases built it from the checkpoint's own configuration code or a class of its
# own, which kvplan does not read; the nearest class kvplan knows stands for it). CLASS_ALIASES is not versioned: an
# alias copies the file's own value, which the older class reads under its own name (Qwen3MoeConfig 4.57's
# num_experts). Of these, kvplan's figures move for Gemma-2 (a config without intermediate_size or
# num_key_value_heads: 24,576 and 16 up to vLLM 0.6.4), Qwen3-VL-MoE (no tie_word_embeddings anywhere: an untied LM
# head, 0.6.5-0.19.0), DeepSeek V3 / GLM-4.5 (no num_nextn_predict_layers: no MTP module, 0.6.5-0.25.1) and GLM-5
# (no first_k_dense_replace: every layer MoE, 0.19.1-0.22.1, where vLLM's deepseek_v2.py reads
# config.first_k_dense_replace, 0.19.1:1069, and stops on a config without it); the rest read the same
# (norm_topk_prob's and no_rope_layer_interval's getters default to the value the newer class fills; Mamba-2's
# time_step_rank is not read; Gemma 4's global_head_dim is FAMILY_FIELDS' 512).
OLDER_DEFAULTS = {
    "5.12.0": {
        "deepseek_v3": {"num_nextn_predict_layers": None},
        "diffusion_gemma_text": {"global_head_dim": 512},
        "gemma4_text": {"global_head_dim": 512},
        "gemma4_unified_text": {"global_head_dim": 512},
        "glm4_moe": {"num_nextn_predict_layers": None},
        "glm_moe_dsa": {"num_experts": 256},
    },
    "5.5.4": {
        "glm_moe_dsa": {"first_k_dense_replace": None, "head_dim": None, "mlp_bias": None, "num_experts": None},
    },
    "4.57.6": {
        "llama4_text": {"no_rope_layer_interval": None},
        "qwen3_moe": {"num_experts": 128, "num_local_experts": None},
        "qwen3_vl_moe_text": {"norm_topk_prob": True, "num_experts": 60, "num_local_experts": None,
                              "tie_word_embeddings": False},
        "qwen3_vl_text": {"tie_word_embeddings": False},
    },
    "4.45.2": {
        "gemma2": {"intermediate_size": 24576, "num_key_value_heads": 16},
        "mamba2": {"time_step_rank": None},
    },
}


def transformers_for(release: Optional[tuple]) -> Optional[str]:
    """The frozen transformers whose defaults vLLM `release` ((0, 6, 4), or (0, 10) for a series: its .0) reads
    (TRANSFORMERS_SINCE); None for no release (--engine none) or one of the newest run: CLASS_DEFAULTS as it is."""
    if release is None:
        return None
    version = next(version for since, version in TRANSFORMERS_SINCE if tuple(release) >= since)
    return None if version == TRANSFORMERS_SINCE[0][1] else version


_TABLES: dict = {}


def defaults_table(transformers: Optional[str]) -> dict:
    """CLASS_DEFAULTS as `transformers` fills it: OLDER_DEFAULTS applied from the newest down to that version."""
    if transformers is None:
        return CLASS_DEFAULTS
    if transformers not in OLDER_DEFAULTS:
        raise ValueError(f"no frozen defaults of transformers {transformers}")
    if transformers not in _TABLES:
        table = {family: dict(fields) for family, fields in CLASS_DEFAULTS.items()}
        for version, changes in OLDER_DEFAULTS.items():  # newest first
            for family, fields in changes.items():
                entry = table.setdefault(family, {})
                entry.update(fields)
                for field in [field for field, value in fields.items() if value is None]:
                    del entry[field]
            if version == transformers:
                break
        _TABLES[transformers] = table
    return _TABLES[transformers]


# Families whose dense MLP is 4 x hidden_size where the config names no width (tensors.mlp_width): transformers
# GPT2Config / GPTJConfig / GPTBigCodeConfig n_inner None, read as 4 x n_embd by vLLM 0.34.0 gpt2.py:158, gpt_j.py:166
# (GPT-BigCode: the Transformers backend, modeling_gpt_bigcode.py's the same); FalconConfig ffn_hidden_size None ->
# hidden_size * 4 (5.22.2 __post_init__), and vLLM's falcon.py:237, :248 builds 4 x hidden_size whatever the config
# says (its own RWConfig for refinedweb / refinedwebmodel too); Zamba2Config intermediate_size None -> 4 x hidden_size
WIDTH_FROM_HIDDEN = ("gpt2", "gptj", "gpt_bigcode", "falcon", "refinedweb", "refinedwebmodel", "zamba2")

# Families whose head_dim kvplan does not derive as hidden_size / num_attention_heads where the config names none,
# with why and what to add: vLLM 0.32.0 glm4_moe.py:344 head_dim=config.head_dim (transformers 5.19 Glm4MoeConfig
# declares no head_dim: AttributeError); Zamba2Config (5.22.2 __post_init__) derives its attention head as
# 2 x hidden_size // num_attention_heads, which vLLM 0.34.0 zamba2.py:151 reads (attention_head_dim; head_dim is
# its alias)
HEAD_DIM_REQUIRED = {
    "glm4_moe": "vLLM's glm4_moe model reads it with no default (GLM-4.5's is 128, not hidden_size / "
                "num_attention_heads)",
    "zamba2": "Zamba2Config derives it as 2 x hidden_size / num_attention_heads, which kvplan's reader does not; "
              "add head_dim",
}

# Fields a family's class leaves None and derives nothing from, which vLLM's model reads as they are: without them
# vLLM cannot build the model, so kvplan refuses the config (no_default_error). Each with what to add. A field a
# newer transformers fills (the table of the release planned says: defaults_table) is refused only where the table
# read lacks it, naming the first release whose table fills it (filled_since).
NO_DEFAULT = {
    # transformers 5.22.2 DeepseekV2Config: num_experts_per_tok, n_group, topk_group None. vLLM 0.34.0
    # deepseek_v2.py:378 top_k=config.num_experts_per_tok, :383-385 use_grouped_topk=True with
    # num_expert_group=getattr(config, "n_group", 1) and topk_group=getattr(config, "topk_group", 1) (the class's
    # None, not the getattr default), which fused_moe/router/router_factory.py:168-172 refuses with a ValueError
    "deepseek_v2": {
        "num_experts_per_tok": "the routed experts each token takes (DeepSeek-V2: 6)",
        "n_group": "the expert groups the router picks from (DeepSeek-V2: 8, DeepSeek-V2-Lite: 1)",
        "topk_group": "the groups each token's experts come from (DeepSeek-V2: 3, DeepSeek-V2-Lite: 1)",
    },
    # GlmMoeDsaConfig of transformers 5.5.4-5.10.2 (vLLM 0.19.1-0.22.1) declares no first_k_dense_replace (its
    # __post_init__ derives mlp_layer_types instead: configuration_glm_moe_dsa.py 5.5.4:114-129, 5.10.2:115-145);
    # 5.12.0 fills 3 (:128). vLLM's deepseek_v2.py reads config.first_k_dense_replace for every layer (0.19.1:1069,
    # 0.22.1:1131) and for num_moe_layers (0.19.1:1357, 0.22.1:1650): an AttributeError on a config without it
    "glm_moe_dsa": {
        "first_k_dense_replace": "the leading dense layers (GLM-5: 3)",
    },
}
# the class NO_DEFAULT cites, for the message
NO_DEFAULT_CLASS = {"deepseek_v2": "DeepseekV2Config", "glm_moe_dsa": "GlmMoeDsaConfig"}


# Defaults a family's class fills whatever the model, which its vLLM model reads only on the layers that use them:
# NemotronHConfig's MoE fields (8 experts of 7,688: a Nemotron-H MoE checkpoint's) reach vLLM for a dense Nemotron-H
# too, which builds an MoE block only on the layers hybrid_override_pattern marks "E" (nemotron_h.py 0.34.0:552,
# :591 has_moe); kvplan's reader takes routed experts for an MoE model, so they are filled only where the pattern (or
# layer_types) names an MoE layer.
MOE_LAYER_FIELDS = {"nemotron_h": ("n_routed_experts", "num_experts_per_tok", "moe_intermediate_size",
                                   "moe_shared_expert_intermediate_size", "n_shared_experts", "n_group", "topk_group",
                                   "routed_scaling_factor", "norm_topk_prob")}


def _names_moe_layers(fields: dict) -> bool:
    pattern, types = fields.get("hybrid_override_pattern"), fields.get("layer_types")
    return (isinstance(pattern, (str, list)) and any(str(code).upper() == "E" for code in pattern)) or \
        (isinstance(types, list) and "moe" in types)


def family_defaults(family: str, transformers: Optional[str] = None) -> dict:
    """Every default a family's config class fills, CLASS_DEFAULTS' (as `transformers` fills them: OLDER_DEFAULTS;
    None: the newest) and FAMILY_FIELDS' ({} for none)."""
    return {**defaults_table(transformers).get(SAME_CLASS.get(family, family), {}), **FAMILY_FIELDS.get(family, {})}


def with_defaults(fields: dict, family: str, transformers: Optional[str] = None) -> dict:
    """`fields` (a flattened config.json) as the family's config class reads it: each alias the file gives copied to
    its field where the file does not name the field (CLASS_ALIASES), then every field the file leaves out filled
    with the class's default, as `transformers` (transformers_for's; None: the newest) fills it (a field the file
    gives, null included, stays the file's)."""
    aliases = CLASS_ALIASES.get(SAME_CLASS.get(family, family), {})
    if aliases:
        fields = {**{field: fields[alias] for alias, field in aliases.items()
                     if alias in fields and field not in fields}, **fields}
    defaults = family_defaults(family, transformers)
    if family in MOE_LAYER_FIELDS and not _names_moe_layers(fields):
        defaults = {key: value for key, value in defaults.items() if key not in MOE_LAYER_FIELDS[family]}
    return {**defaults, **fields} if defaults else fields


def filled_since(family: str, field: str) -> Optional[tuple]:
    """The first vLLM release from which every newer release's transformers fills `field` of `family`'s class
    (TRANSFORMERS_SINCE, defaults_table); None where the newest does not."""
    since = None
    for release, version in TRANSFORMERS_SINCE:  # newest first
        if field not in defaults_table(transformers_for(release)).get(SAME_CLASS.get(family, family), {}):
            break
        since = release
    return since


def no_default_error(fields: dict, family: str, experts: int) -> Optional[KvplanError]:
    """The refusal of a config that leaves out (or nulls) a field NO_DEFAULT lists for its family, for a model with
    routed experts (`experts`, the count read), `fields` as the planned release's transformers fills them
    (with_defaults); None where nothing is missing."""
    for field, what in NO_DEFAULT.get(family, {}).items():
        if experts and fields.get(field) is None:
            since = filled_since(family, field) if field not in fields else None  # a null is the file's own
            release = ".".join(map(str, since or ()))
            before = f" before {dict(TRANSFORMERS_SINCE)[since]}, which vLLM {release} installs" if since else ""
            later = f", or serve it with vLLM {release} or newer" if since else ""
            return KvplanError(f"config field '{field}' is missing; transformers' {NO_DEFAULT_CLASS[family]} "
                               f"({family}) has no default for it{before}, so vLLM cannot build the model: add "
                               f"{field}, {what}{later}.")
    return None
