"""MLA's absorbed decode keeps kv_b_proj's key and value halves (W_UK_T, W_UV) in the activation dtype: views of a
16-bit kv_b_proj, but a new tensor where the checkpoint quantised it (vLLM 0.32.0 mla_attention.py split_kv_b_proj
-> get_and_maybe_dequant_weights, MLAAttention.process_weights_after_loading), measured with the weights. Expected
bytes by hand from the configs: heads / tp x (qk_nope + v_head) x kv_lora_rank x 2 bytes, a layer."""

from kvplan import api
from kvplan.engines.vllm_budget import mla_dequantized_copies
from kvplan.model.sources import resolve


def weights_term(plan):
    return next(t for t in plan.budget.terms if t.name == "weights")


def test_fp8_deepseek_v3_holds_a_bf16_copy_of_kv_b_a_layer():
    # 128 heads / 8 x (128 + 128) x 512 x 2 bytes = 4 MiB a layer, 61 layers
    assert mla_dequantized_copies(resolve("deepseek-ai/DeepSeek-V3"), 8) == 61 * 16 * 256 * 512 * 2 == 255852544
    plan = api.estimate("deepseek-ai/DeepSeek-V3", tensor_parallel_size=8, gpu="h200", max_model_len=32768)[0]
    assert "0.24 GiB of MLA's dequantised W_UK_T / W_UV copies" in weights_term(plan).source


def test_a_pipeline_stage_holds_its_layers_copies():
    # about half of the 61 layers a stage: 30 or 31 x 4 MiB = 0.12 GiB
    plan = api.estimate("deepseek-ai/DeepSeek-V3", tensor_parallel_size=8, pipeline_parallel_size=2, gpu="h200",
                        max_model_len=32768)[0]
    assert "0.12 GiB of MLA's dequantised" in weights_term(plan).source


def test_a_16_bit_kv_b_costs_nothing_and_online_fp8_a_copy():
    lite = resolve("deepseek-ai/DeepSeek-V2-Lite")  # bf16: W_UK_T / W_UV are views of kv_b_proj
    assert mla_dequantized_copies(lite, 1) == 0
    plan = api.estimate("deepseek-ai/DeepSeek-V2-Lite", gpu="h200", max_model_len=32768)[0]
    assert "W_UK_T" not in weights_term(plan).source
    fp8 = api.estimate("deepseek-ai/DeepSeek-V2-Lite", gpu="h200", max_model_len=32768, quantization="fp8")[0]
    # 16 heads x (128 + 128) x 512 x 2 bytes, 27 layers
    assert "0.11 GiB of MLA's dequantised" in weights_term(fp8).source
    assert weights_term(fp8).bytes - 27 * 16 * 256 * 512 * 2 < weights_term(plan).bytes


def test_models_without_mla_have_none():
    assert mla_dequantized_copies(resolve("meta-llama/Llama-3.1-8B"), 1) == 0
    assert mla_dequantized_copies(resolve("deepseek-ai/DeepSeek-V4-Flash"), 8) == 0  # V4 is not MLAAttention
