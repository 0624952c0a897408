"""Session 55 bad-input sweep, the config reader's share: a config.json field of the wrong shape gets one line naming
the field and what would be valid (exit 2), never a traceback (exit 3) or a silent guess (exit 0 with other numbers).
Each refusal has a control: the valid config still estimates what an independent source says (Hugging Face's
safetensors totals, vLLM 0.32.0's own meta-device count for Gemma 3n, hand arithmetic for fp8 blocks)."""

import json
from pathlib import Path

import pytest

from tests.conftest import load_yaml, one_error_line, run_kvplan
from tests.hub_configs import GPT_OSS_20B, LLAMA3_8B

ROOT = Path(__file__).resolve().parents[1]
ERROR = "kvplan: error: "
# Hugging Face safetensors.total (the bundled specs cite where each was read)
LLAMA3_8B_PARAMETERS, LLAMA3_8B_BYTES = 8_030_261_248, 16_060_522_496  # meta-llama/Llama-3.1-8B, bfloat16
GPT_OSS_20B_PARAMETERS = 20_914_757_184  # openai/gpt-oss-20b


def _model(path, *args) -> dict:
    """The `model` block of `estimate PATH --format json`, which must exit 0."""
    r = run_kvplan("estimate", path, "-c", "4096", "--format", "json", *args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["model"]


def _refusal(write_config, config) -> str:
    """The one line `estimate` gives `config` (exit 2, nothing on stdout), without its 'kvplan: error: ' prefix."""
    return one_error_line(run_kvplan("estimate", write_config(config), "-c", "4096"))[len(ERROR):]


def _bundled(name: str) -> dict:
    return load_yaml((ROOT / "model_specs" / f"{name}.yaml").read_text())["config"]


def test_the_controls_estimate_the_published_counts(write_config):
    """Llama-3.1-8B's and gpt-oss-20b's configs, estimated from the config alone, give the Hub's safetensors totals."""
    llama = _model(write_config(LLAMA3_8B))
    assert (llama["parameters"], llama["weights_bytes"]) == (LLAMA3_8B_PARAMETERS, LLAMA3_8B_BYTES)
    assert _model(write_config(GPT_OSS_20B, "gpt_oss.json"))["parameters"] == GPT_OSS_20B_PARAMETERS


# 1. architectures: a list of class names (transformers PretrainedConfig.architectures)

ARCHITECTURES_MESSAGE = ("config field 'architectures' must be a list of class names (such as "
                         "[\"LlamaForCausalLM\"]), got ")


@pytest.mark.parametrize("value, shown", [(True, "true"), (-1, "-1"), ({"a": 1}, '{"a": 1}'),
                                          ("LlamaForCausalLM", '"LlamaForCausalLM"'), ([5], "[5]"),
                                          (["LlamaForCausalLM", None], '["LlamaForCausalLM", null]')])
def test_architectures_of_the_wrong_type_are_refused(write_config, value, shown):
    """Before: True, -1 and a mapping crashed (exit 3 at layers.py is_v4); a string was read as its first letter
    and [5] passed as if no architecture were named. Values are written as the JSON file writes them (true, null,
    double quotes), not as Python's repr (review, session 55)."""
    assert _refusal(write_config, {**LLAMA3_8B, "architectures": value}) == ARCHITECTURES_MESSAGE + shown + "."


def test_a_string_architecture_on_deepseek_v4_names_architectures_not_compress_ratios(write_config):
    """DeepSeek-V4-Flash with "architectures": "DeepseekV4ForCausalLM" used to get a compress_ratios error."""
    config = {**_bundled("deepseek-ai--DeepSeek-V4-Flash"), "architectures": "DeepseekV4ForCausalLM"}
    assert _refusal(write_config, config) == ARCHITECTURES_MESSAGE + '"DeepseekV4ForCausalLM".'


def test_the_outer_architectures_of_a_wrapper_is_checked_too(write_config):
    """vLLM's registry reads the top-level architectures (parse._registered_architecture), though the nested
    language model's config names its own."""
    config = {"architectures": "LlavaForConditionalGeneration", "model_type": "llava", "text_config": LLAMA3_8B}
    assert _refusal(write_config, config) == ARCHITECTURES_MESSAGE + '"LlavaForConditionalGeneration".'


@pytest.mark.parametrize("value", [[], None, ["LlamaForCausalLM", "Other"]])
def test_an_empty_absent_or_longer_list_still_estimates_the_same(write_config, value):
    config = {**LLAMA3_8B, "architectures": value}
    assert _model(write_config(config))["parameters"] == LLAMA3_8B_PARAMETERS


# 2. a routed-expert model's width

def test_gpt_oss_without_intermediate_size_is_refused(write_config):
    """Before: the expert width read as 0 and gpt-oss's MXFP4 padding divided by it (exit 3, ZeroDivisionError).
    vLLM 0.34.0 gpt_oss.py:394 reads config.intermediate_size, MoE blocks elsewhere moe_intermediate_size
    (qwen3_moe.py:209). Null here: a config without the key gets GptOssConfig's 2,880
    (tests/test_config_defaults_s72.py)."""
    config = {**GPT_OSS_20B, "intermediate_size": None}
    assert _refusal(write_config, config) == ("config field 'moe_intermediate_size' is missing (nor "
                                              "intermediate_size); it must be a positive integer.")


def test_a_zero_expert_width_is_refused(write_config):
    config = {**GPT_OSS_20B, "moe_intermediate_size": 0}
    assert _refusal(write_config, config) == "config field 'moe_intermediate_size' must be a positive integer, got 0."


# 3. Gemma 3n's audio subsampler (transformers 5.22.2 modeling_gemma3n.py:731-775: two convolutions, entries 0 and 1)

GEMMA3N = "google--gemma-3n-E2B"
PAIRS = "must be two [height, width] pairs of positive integers, one a convolution (such as "


def _gemma3n(**audio) -> dict:
    config = _bundled(GEMMA3N)
    return {**config, "audio_config": {**config["audio_config"], **audio}}


@pytest.mark.parametrize("key, value, message", [
    ("sscp_conv_stride_size", [[2, 2], "x"], f"{PAIRS}[[2, 2], [2, 2]]), got [[2, 2], \"x\"]."),
    ("sscp_conv_stride_size", 2.0, f"{PAIRS}[[2, 2], [2, 2]]), got 2.0."),
    ("sscp_conv_stride_size", [], f"{PAIRS}[[2, 2], [2, 2]]), got []."),
    ("sscp_conv_kernel_size", [[3, 3]], f"{PAIRS}[[3, 3], [3, 3]]), got [[3, 3]]."),
    ("sscp_conv_kernel_size", [[3, 3], [3, 0]], f"{PAIRS}[[3, 3], [3, 3]]), got [[3, 3], [3, 0]]."),
    ("sscp_conv_channel_size", [128], "must be two positive channel counts, one a convolution (such as [128, 32]), "
                                      "got [128]."),
    ("sscp_conv_kernel_size", [[3, 3], [3, 999]], "has a width (999) that leaves no frequency bins of "
                                                  "audio_config.input_feat_size; each convolution must keep at least "
                                                  "one."),
])
def test_gemma3n_audio_convolutions_of_the_wrong_shape_are_refused(write_config, key, value, message):
    """Before: [[2, 2], "x"] crashed (exit 3, ValueError at gemma3n.py:82); a float crashed too, and [] fell back
    to the default silently."""
    assert _refusal(write_config, _gemma3n(**{key: value})) == f"config field 'audio_config.{key}' {message}"


def test_gemma3n_audio_control_equals_vllms_count(write_config):
    """vLLM 0.32.0's meta-device count of the E2B model (tests/data/vllm_gemma3n_figures.json), with the sharing
    layers' K / V projections and k_norm the checkpoint ships beside it (10 layers x (2 x 512 x 2048 + 256)); the
    same with the transformers defaults spelled out, as integral floats, or left to Gemma3nAudioConfig."""
    figures = json.loads((ROOT / "tests" / "data" / "vllm_gemma3n_figures.json").read_text())
    (vllm,) = [w for w in figures["weights"] if w["model"] == "google/gemma-3n-E2B" and w["tp"] == 1]
    expected = vllm["parameters"] + 10 * (2 * 512 * 2048 + 256)
    spelled = {"sscp_conv_channel_size": [128, 32], "sscp_conv_kernel_size": [[3.0, 3.0], [3, 3]],
               "sscp_conv_stride_size": [[2, 2], [2, 2]]}
    for name, config in (("bundled", _bundled(GEMMA3N)), ("spelled", _gemma3n(**spelled))):
        assert _model(write_config(config, f"{name}.json"))["parameters"] == expected, name
    defaults = _bundled(GEMMA3N)
    for key in spelled:
        defaults["audio_config"].pop(key)
    assert _model(write_config(defaults, "defaults.json"))["parameters"] == expected


# 5. vocab_size

def test_a_missing_vocabulary_is_refused(write_config):
    """Before: the embedding and LM head read as 0 rows (6.98B parameters for Llama-3.1-8B instead of 8.03B).
    transformers would fill LlamaConfig's 32,000 (configuration_llama.py:64, 5.22.2), not the checkpoint's 128,256."""
    config = {key: value for key, value in LLAMA3_8B.items() if key != "vocab_size"}
    assert _refusal(write_config, config) == ("config field 'vocab_size' is missing (nor padded_vocab_size); it must "
                                              "be a positive integer.")
    assert _refusal(write_config, {**LLAMA3_8B, "vocab_size": 0}) == ("config field 'vocab_size' must be a positive "
                                                                      "integer, got 0.")


def test_padded_vocab_size_and_a_family_default_still_serve(write_config):
    """ChatGLM's spelling; Gemma 3's text_config (google/gemma-3-4b-it names 5 fields) takes Gemma3TextConfig's
    vocab_size 262,208 (transformers 5.22.2 configuration_gemma3.py:74): embedding 262,208 x 2,560, tied."""
    config = {key: value for key, value in LLAMA3_8B.items() if key != "vocab_size"}
    assert _model(write_config({**config, "padded_vocab_size": 128256}))["parameters"] == LLAMA3_8B_PARAMETERS
    from kvplan.model.parse import parse_config

    gemma = parse_config(_bundled("google--gemma-3-4b-it"), "gemma-3-4b-it")
    assert gemma.vocab_size == 262_208
    assert gemma.param_count("embed") == 262_208 * 2560


# 6. quantization_config

PRICED = ("fp8, fbgemm_fp8, mxfp4, awq, gptq, marlin, auto-round, inc, awq_marlin, gptq_marlin, moe_wna16, "
          "bitsandbytes, compressed-tensors, modelopt, modelopt_fp4")
GPTQ = {"quant_method": "gptq", "bits": 4, "group_size": 128, "desc_act": False, "sym": True}


NOT_PRICED = f"names \"weird\", a method no vLLM release registers (0.11.0 to 0.34.0); kvplan prices {PRICED}."
BITS = ("must be an integer from 1 to 8, the widths some vLLM class takes: AWQ 4, or 8 with Marlin; GPTQ 2, 3, 4 or 8, "
        "with Marlin 4 or 8; INC 2 to 8; BitBLAS 1, 2, 4 or 8, got ")
GROUP = "must be a positive integer, or -1 for one group a row, got "
BLOCK = "must be two positive integers [rows, columns] (such as [128, 128]), or null for one scale a matrix, got "


@pytest.mark.parametrize("qcfg, key, problem", [
    ({"quant_method": "weird"}, "quant_method", NOT_PRICED),
    ({"quant_method": 5}, "quant_method", "must be a method's name, such as \"gptq\", got 5."),
    ({**GPTQ, "bits": "8"}, "bits", BITS + '"8".'),
    ({**GPTQ, "bits": 99}, "bits", BITS + "99."),
    ({"quant_method": "awq", "w_bit": True, "q_group_size": 128, "zero_point": True}, "w_bit", BITS + "true."),
    ({**GPTQ, "group_size": -7}, "group_size", GROUP + "-7."),
    ({**GPTQ, "group_size": 0}, "group_size", GROUP + "0."),
    ({"quant_method": "fp8", "weight_block_size": "128x128"}, "weight_block_size", BLOCK + '"128x128".'),
    ({"quant_method": "fp8", "weight_block_size": [128, 128, 1]}, "weight_block_size", BLOCK + "[128, 128, 1]."),
])
def test_quantization_configs_kvplan_cannot_price_are_refused(write_config, qcfg, key, problem):
    """Before, each was priced as some 4-bit format ("weird 4-bit", "quantized 4-bit", int4-gptq for bits 99 or
    "8"), a group size of -7 as 128, and a malformed fp8 block as one scale a matrix. vLLM refuses a
    weight_block_size of other than two entries (quantization/fp8.py 0.34.0:119-123) and calls .lower() on
    quant_method (transformers_utils/model_arch_config_convertor.py 0.34.0:274)."""
    line = _refusal(write_config, {**LLAMA3_8B, "quantization_config": qcfg})
    assert line == f"config field 'quantization_config.{key}' {problem}"


def _llama_fp8_block_bytes() -> int:
    """Llama-3.1-8B stored in fp8 with 128 x 128 blocks, by hand: a byte a linear weight and a float32 scale a block
    (vLLM 0.34.0 utils/fp8_utils.py:1412-1421, ceil(rows / 128) x ceil(cols / 128)); embeddings, LM head and norms
    bfloat16. A layer: q and o 4096 x 4096 (32 x 32 blocks each), k and v 1024 x 4096 (8 x 32), gate and up
    14336 x 4096 (112 x 32), down 4096 x 14336 (32 x 112)."""
    weights = 2 * 4096 * 4096 + 2 * 1024 * 4096 + 3 * 14336 * 4096
    scales = 2 * 32 * 32 + 2 * 8 * 32 + 3 * 112 * 32
    layer = weights + 4 * scales + 2 * 4096 * 2  # and its two norms
    return 32 * layer + 2 * 128256 * 4096 * 2 + 4096 * 2


def test_the_formats_kvplan_prices_still_price_the_same(write_config):
    """The fp8 block control by hand; bits and block sizes written as integral floats read as the integers; a null
    bits is left to the engine's missing-key refusal (vllm_wna16.REQUIRED_KEYS) and priced at 4; vLLM spells
    compressed_tensors as compressed-tensors (model_arch_config_convertor.py 0.34.0:276-278), so kvplan prices it."""
    assert _llama_fp8_block_bytes() == 32 * (218_103_808 + 53_248 + 16_384) + 2_101_346_304 + 8_192
    fp8 = {"quant_method": "fp8", "weight_block_size": [128, 128]}
    model = _model(write_config({**LLAMA3_8B, "quantization_config": fp8}))
    assert (model["weights_bytes"], model["weights_dtype"]) == (_llama_fp8_block_bytes(), "fp8")
    floats = _model(write_config({**LLAMA3_8B, "quantization_config": {**fp8, "weight_block_size": [128.0, 128]}},
                                 "floats.json"))
    assert floats["weights_bytes"] == _llama_fp8_block_bytes()

    gptq = _model(write_config({**LLAMA3_8B, "quantization_config": GPTQ}, "gptq.json"), "--engine", "none")
    for bits, name in ((4.0, "float"), (None, "null")):
        other = _model(write_config({**LLAMA3_8B, "quantization_config": {**GPTQ, "bits": bits}}, f"{name}.json"),
                       "--engine", "none")
        assert (other["weights_bytes"], other["weights_dtype"]) == (gptq["weights_bytes"], "int4-gptq"), name

    scheme = {"targets": ["Linear"], "weights": {"type": "float", "num_bits": 8, "strategy": "channel"},
              "input_activations": {"type": "float", "num_bits": 8, "strategy": "token", "dynamic": True}}
    ct = {"quant_method": "compressed-tensors", "format": "float-quantized", "config_groups": {"group_0": scheme},
          "ignore": ["lm_head"]}
    dashed = _model(write_config({**LLAMA3_8B, "quantization_config": ct}, "dashed.json"))
    underscored = _model(write_config({**LLAMA3_8B, "quantization_config": {**ct, "quant_method":
                                                                            "compressed_tensors"}}, "under.json"))
    assert underscored["weights_bytes"] == dashed["weights_bytes"] < LLAMA3_8B_BYTES
    assert underscored["weights_dtype"] == dashed["weights_dtype"] == "fp8-w8a8"


# 11. the nested language model's config

@pytest.mark.parametrize("value, shown", [("llama", '"llama"'), ([LLAMA3_8B], None)])
def test_a_text_config_that_is_not_a_mapping_is_refused(write_config, value, shown):
    """Before: "config field 'num_hidden_layers' is missing", about a field the user never touched."""
    config = {"architectures": ["LlavaForConditionalGeneration"], "model_type": "llava", "text_config": value}
    line = _refusal(write_config, config)
    assert line.startswith("config field 'text_config' must be a mapping of fields, got ")
    if shown:
        assert line.endswith(f"got {shown}.")


def test_a_null_text_config_with_no_layers_outside_is_refused(write_config):
    config = {"architectures": ["LlavaForConditionalGeneration"], "model_type": "llava", "text_config": None}
    assert _refusal(write_config, config) == ("config field 'text_config' is null and the config names no layers of "
                                              "its own (num_hidden_layers); give text_config the language model's "
                                              "fields.")


def test_a_null_text_config_beside_a_flat_model_and_a_nested_one_still_estimate(write_config):
    assert _model(write_config({**LLAMA3_8B, "text_config": None}))["parameters"] == LLAMA3_8B_PARAMETERS
    wrapped = {"architectures": ["LlavaForConditionalGeneration"], "model_type": "llava", "text_config": LLAMA3_8B}
    assert _model(write_config(wrapped, "wrapped.json"))["parameters"] == LLAMA3_8B_PARAMETERS


# 12. a directory where config.json should be

def test_a_directory_named_config_json_is_called_a_directory(tmp_path):
    """Before: "is not a regular file (a pipe, socket or device)"."""
    (tmp_path / "model" / "config.json").mkdir(parents=True)
    line = one_error_line(run_kvplan("estimate", "model", cwd=tmp_path))
    assert line == f"{ERROR}'model/config.json' is not a regular file but a directory; give a file."
    # named itself, the directory is a MODEL folder, which holds no config.json
    line = one_error_line(run_kvplan("estimate", "model/config.json", cwd=tmp_path))
    assert line == f"{ERROR}MODEL folder 'model/config.json' has no config.json."


# 13. quant_method values vLLM serves that the first sweep refused (review, session 55)

def _llama_int4_g128_bytes() -> int:
    """Llama-3.1-8B in vLLM's GPTQ / AWQ layout at 4 bits, groups of 128, by hand (gptq.py 0.11.0:218-264
    create_weights: qweight 4 bits a weight, per 128 inputs and output row one fp16 scale and one 4-bit zero): a
    layer's linear weights 2 x 4096 x 4096 + 2 x 1024 x 4096 + 3 x 14336 x 4096 = 218,103,808, so 109,051,904 bytes
    of qweight and 218,103,808 / 128 x 2.5 = 4,259,840 of scales and zeros, its two norms 16,384; embeddings, LM head
    and the final norm bfloat16 (2,101,346,304 + 8,192)."""
    layer = 218_103_808 // 2 + 218_103_808 // 128 * 5 // 2 + 16_384
    return 32 * layer + 2 * 128256 * 4096 * 2 + 4096 * 2


@pytest.mark.parametrize("qcfg", [
    # INCConfig.from_config reads bits and group_size (inc/inc.py 0.34.0:278-280), MoeWNA16Config too
    # (moe_wna16.py 0.34.0:120-121), AWQMarlinConfig and GPTQMarlinConfig by these keys (awq_marlin.py 0.11.0:99-100,
    # gptq_marlin.py 0.11.0:168-169; AutoAWQConfig / AutoGPTQConfig from 0.24 / 0.22, __init__.py 0.34.0:153-171)
    {"quant_method": "inc", "bits": 4, "group_size": 128, "sym": True},
    {"quant_method": "moe_wna16", "bits": 4, "group_size": 128, "linear_quant_method": "gptq"},
    {"quant_method": "awq_marlin", "bits": 4, "group_size": 128, "zero_point": True},
    {"quant_method": "gptq_marlin", "bits": 4, "group_size": 128, "desc_act": False, "sym": True},
])
def test_methods_reading_gptqs_bits_and_group_are_priced_as_int4(write_config, qcfg):
    """Before: refused as "a quantisation kvplan does not price" (the first sweep) and, before that, 4 bits with no
    scales (5.21 GiB)."""
    model = _model(write_config({**LLAMA3_8B, "quantization_config": qcfg}), "--engine", "none")
    assert _llama_int4_g128_bytes() == 5_727_854_592
    assert (model["weights_bytes"], model["weights_dtype"]) == (5_727_854_592, f"int4-{qcfg['quant_method']}")


@pytest.mark.parametrize("engine, qcfg, reason", [
    # MoeWNA16Config takes the checkpoint's quant_method as its linear method (moe_wna16.py 0.34.0:119, :123-132)
    ("vllm==0.32.0", {"quant_method": "moe_wna16", "bits": 4, "group_size": 128},
     "moe_wna16 only support gptq and awq."),
    # 0.14.1's inc is Intel Gaudi's FP8 class, from_config raises AssertionError (inc.py 0.11.0:28-29)
    ("vllm==0.14.1", {"quant_method": "inc", "bits": 4, "group_size": 128, "sym": True},
     "vLLM 0.14.1's inc is Intel Gaudi's FP8 class, whose from_config raises AssertionError: AutoRound checkpoints run "
     "as inc from vLLM 0.15.0."),
    # AWQMarlinConfig's TYPE_MAP {4} from 0.12 (awq_marlin.py 0.21.0:156-158), printed by its keys (0.23.0:195-199)
    ("vllm==0.21.0", {"quant_method": "awq_marlin", "bits": 3, "group_size": 128, "zero_point": True},
     "Unsupported num_bits = 3. Supported num_bits = dict_keys([4])"),
    # GPTQMarlinConfig's (bits, sym) TYPE_MAP (gptq_marlin.py 0.21.0:159-161), AutoGPTQConfig's from 0.22
    ("vllm==0.21.0", {"quant_method": "gptq_marlin", "bits": 4, "group_size": 128, "desc_act": False, "sym": False},
     "Unsupported quantization config: bits=4, sym=False"),
    ("vllm==0.32.0", {"quant_method": "gptq_marlin", "bits": 4, "group_size": 128, "desc_act": False, "sym": False},
     "Unsupported quantization config: bits=4, sym=False"),
    # AutoGPTQ's linear layers ask Marlin for the group size (auto_gptq.py 0.32.0:317-331)
    ("vllm==0.32.0", {"quant_method": "gptq_marlin", "bits": 4, "group_size": 7, "desc_act": False, "sym": True},
     "Marlin does not support group_size = 7. Only group_sizes = [-1, 32, 64, 128] are supported."),
])
def test_the_engine_refuses_what_those_classes_refuse(write_config, engine, qcfg, reason):
    r = run_kvplan("estimate", write_config({**LLAMA3_8B, "quantization_config": qcfg}), "-c", "4096", "--gpu", "h100",
                   "--engine", engine, "--format", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["plans"][0]["engine"]["refusal"]["reason"] == reason


@pytest.mark.parametrize("method", ["torchao", "quark", "experts_int8", "w4afp8", "hqq", "gguf"])
def test_methods_vllm_serves_and_kvplan_does_not_price_are_kvplans_limit(write_config, method):
    line = _refusal(write_config, {**LLAMA3_8B, "quantization_config": {"quant_method": method}})
    assert line == (f"config field 'quantization_config.quant_method' names \"{method}\": kvplan does not price "
                    f"{method} checkpoints yet (it prices {PRICED}).")


MODELOPT_FLAT = {"fp8": {"quant_method": "modelopt", "quant_algo": "FP8", "exclude_modules": ["lm_head"]},
                 "nvfp4": {"quant_method": "modelopt", "quant_algo": "NVFP4", "group_size": 16,
                           "exclude_modules": ["lm_head"]}}


@pytest.mark.parametrize("algo, flat", [("FP8", "fp8"), ("nvfp4", "nvfp4")])
def test_modelopts_own_config_reads_as_vllm_renames_it(write_config, algo, flat):
    """hf_quant_config.json's shape, with no quant_method: vLLM names it modelopt / modelopt_fp4 by its algorithm,
    upper-cased (model_arch_config_convertor.py 0.32.0:271-289), and ModelOpt's class reads the nested block, so it
    prices as the flat config does. Before: "quant_method is missing"."""
    legacy = {"producer": {"name": "modelopt", "version": "0.19.0"},
              "quantization": {"quant_algo": algo, "exclude_modules": ["lm_head"],
                               **({"group_size": 16} if flat == "nvfp4" else {})}}
    model = _model(write_config({**LLAMA3_8B, "quantization_config": legacy}))
    control = _model(write_config({**LLAMA3_8B, "quantization_config": MODELOPT_FLAT[flat]}, "flat.json"))
    assert (model["weights_bytes"], model["weights_dtype"]) == (control["weights_bytes"], control["weights_dtype"])
    assert model["weights_bytes"] < LLAMA3_8B_BYTES


def test_modelopts_own_config_with_an_algorithm_vllm_does_not_know_is_refused_in_its_words(write_config):
    legacy = {"producer": {"name": "modelopt"}, "quantization": {"quant_algo": "INT4_AWQ"}}
    assert _refusal(write_config, {**LLAMA3_8B, "quantization_config": legacy}) == (
        "config field 'quantization_config.quantization.quant_algo' names \"INT4_AWQ\", which vLLM refuses (\"Unknown "
        "ModelOpt quant algo\"); it takes FP8, FP8_PER_CHANNEL_PER_TOKEN, FP8_PB_WO, NVFP4, MIXED_PRECISION.")


@pytest.mark.parametrize("qcfg", [{}, {"bits": 4}, {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4"}])
def test_a_quantization_config_without_quant_method_is_served_unquantised(write_config, qcfg):
    """vLLM reads quant_method "" as no quantisation (config/model.py 0.34.0:1471-1474; no override claims it), so the
    weights are the Hub's bfloat16 total, and a rule line says why. Before: "quant_method is missing" (exit 2)."""
    r = run_kvplan("estimate", write_config({**LLAMA3_8B, "quantization_config": qcfg}), "-c", "4096", "--format",
                   "json")
    assert r.returncode == 0, r.stderr
    model = json.loads(r.stdout)["model"]
    assert (model["parameters"], model["weights_bytes"]) == (LLAMA3_8B_PARAMETERS, LLAMA3_8B_BYTES)
    assert any(rule.startswith("quantization_config names no quant_method: vLLM serves the model unquantised")
               for rule in model["rules"])


# 14. verify's architecture of a checkpoint re-priced to fp8 (no quantization_config to read)

def test_verify_reads_a_16_bit_checkpoint_served_as_fp8():
    """--quantization fp8 on Llama-3.1-8B: vLLM quantises each linear weight online with one scale a matrix
    (Fp8LinearMethod per tensor), which verify runs as its "fp8" linears. The config has no quantization_config, so
    verify must not ask quantized_format for one (the first sweep's quant_method refusal made this a crash)."""
    from kvplan.model import parse_config
    from kvplan.model.quantization import apply_weight_precision
    from kvplan.verify.arch import architecture

    spec = apply_weight_precision(parse_config(LLAMA3_8B, "llama"), "fp8")
    assert {g.stored for g in spec.params if g.name in ("attention", "dense")} == {"fp8"}
    assert architecture(LLAMA3_8B, spec, 1).linear_format == "fp8"


# reviewer fixes (wna16fix): vLLM's own constructors, read by hand in /tmp/s52/sd/vllm-X.Y.Z

AWQ_MARLIN_4 = {"quant_method": "awq_marlin", "bits": 4, "group_size": 128, "zero_point": True}


def _engine_refusal(write_config, qcfg, engine, gpu="h100"):
    """The refusal `estimate --engine ENGINE` gives `qcfg` on `gpu` (None: the plan runs)."""
    r = run_kvplan("estimate", write_config({**LLAMA3_8B, "quantization_config": qcfg}), "-c", "4096", "--gpu", gpu,
                   "--engine", engine, "--format", "json")
    assert r.returncode == 0, r.stderr
    refusal = json.loads(r.stdout)["plans"][0]["engine"].get("refusal")
    return refusal and refusal["reason"]


@pytest.mark.parametrize("engine, change, reason", [
    # AWQMarlinConfig.__init__ calls verify_marlin_supported(quant_type, group_size, has_zp=zero_point)
    # (awq_marlin.py 0.23.0:203-205); the group: utils/marlin_utils.py 0.23.0:137-143
    ("vllm==0.23.0", {"group_size": 256},
     "Marlin does not support group_size = 256. Only group_sizes = [-1, 32, 64, 128] are supported."),
    # zero_point false asks Marlin's types without zero points (marlin_utils.py 0.23.0:78-83), uint4 not among them;
    # an H100 is device_capability 90 (:129-136 print it)
    ("vllm==0.23.0", {"zero_point": False},
     "Marlin does not support weight_bits = uint4. Only types = [ScalarType.uint4b8, ScalarType.uint8b128, "
     "ScalarType.float8_e4m3fn, ScalarType.float4_e2m1f] are supported (for group_size = 128, device_capability = 90, "
     "zp = False)."),
    # 0.11.0's TYPE_MAP has 8 bits (awq_marlin.py 0.11.0:46-49) but Marlin with zero points only uint4
    # (marlin_utils.py 0.11.0:59-61)
    ("vllm==0.11.0", {"bits": 8},
     "Marlin does not support weight_bits = uint8. Only types = [ScalarType.uint4] are supported (for group_size = "
     "128, device_capability = 90, zp = True)."),
    # 0.12.0's TYPE_MAP is 4 bits only (awq_marlin.py 0.12.0:72-74)
    ("vllm==0.12.0", {"bits": 8}, "Unsupported num_bits = 8. Supported num_bits = dict_keys([4])"),
])
def test_awq_marlin_by_name_runs_marlins_check_in_its_constructor(write_config, engine, change, reason):
    assert _engine_refusal(write_config, {**AWQ_MARLIN_4, **change}, engine) == reason


def test_awq_marlin_by_name_with_a_marlin_type_and_group_runs(write_config):
    assert _engine_refusal(write_config, AWQ_MARLIN_4, "vllm==0.23.0") is None


@pytest.mark.parametrize("method", ["fp8", "gptq", "awq"])
def test_a_quantization_config_without_quant_method_refuses_any_quantization_flag(write_config, method):
    """quant_method "" becomes None and any --quantization then mismatches it (config/model.py 0.32.0:1439-1448; the
    same words at 0.11.0:948-957 and 0.34.0:1472-1481). Before: fp8 re-priced the weights online (exit 0)."""
    r = run_kvplan("estimate", write_config({**LLAMA3_8B, "quantization_config": {"bits": 4}}), "-c", "4096",
                   "--quantization", method)
    assert r.returncode == 2 and not r.stdout
    assert one_error_line(r) == (
        f"{ERROR}--quantization {method} does not match the checkpoint, whose quantization_config names no "
        f"quant_method: "
        f"vLLM stops at \"Quantization method specified in the model config (None) does not match the quantization "
        f"method specified in the `quantization` argument ({method}).\"")


GPTQ_4 = {"quant_method": "gptq", "bits": 4, "group_size": 128, "desc_act": False, "sym": True}


@pytest.mark.parametrize("engine, dynamic, reason", [
    # normalize_and_validate_gptq_desc_act reads every rule but "-:" ones (gptq_utils.py 0.30.0:39-48), here one
    # matching no module of Llama (model.layers.0-31): its desc_act with the config's group 128
    ("vllm==0.30.0", {r"+:model\.layers\.99\..*": {"desc_act": True}},
     "GPTQ group activation ordering (desc_act=True) is no longer supported, but is enabled by dynamic rule "
     "'+:model\\\\.layers\\\\.99\\\\..*'. Use a checkpoint with static activation ordering or desc_act=False."),
    # a "-:" rule is skipped (:40), and a rule with group -1 is a no-op ordering (:44)
    ("vllm==0.32.0", {r"-:model\.layers\.99\..*": {"desc_act": True}}, None),
    ("vllm==0.32.0", {r"model\.layers\.99\..*": {"desc_act": True, "group_size": -1}}, None),
    # before 0.30 AutoGPTQConfig calls no such check (auto_gptq.py 0.29.0 has no normalize_and_validate_gptq_desc_act)
    ("vllm==0.29.0", {r"+:model\.layers\.99\..*": {"desc_act": True}}, None),
])
def test_autogptq_checks_every_dynamic_rules_activation_ordering(write_config, engine, dynamic, reason):
    assert _engine_refusal(write_config, {**GPTQ_4, "dynamic": dynamic}, engine) == reason


def test_eight_bit_awq_marlin_names_no_older_release():
    """No release serves 8-bit AWQ Marlin: AutoAWQConfig takes 4 bits (auto_awq.py 0.24.0:178-206), AWQMarlinConfig's
    TYPE_MAP is 4 bits from 0.12 (awq_marlin.py 0.12.0:72-74, 0.23.0:173-175) and in 0.11.x Marlin with zero points
    takes uint4 only (utils/marlin_utils.py 0.11.0:59-61). Before: "it starts with --engine vllm==0.22.0 or older"."""
    from kvplan.engines.vllm_quant import class_config_refusal
    from kvplan.engines.vllm_wna16 import LAST_BEFORE
    from kvplan.model import parse_config

    assert (0, 23, 0) in LAST_BEFORE  # the last minor before AutoAWQConfig (__init__.py 0.24.0:141)
    qcfg = {**AWQ_MARLIN_4, "bits": 8}
    spec = parse_config({**LLAMA3_8B, "quantization_config": qcfg}, "llama")
    refusal = class_config_refusal(spec, "awq_marlin", (9, 0), "0.32.0")
    assert refusal.reason.startswith("Unsupported num_bits = 8. Supported: 4.")
    assert (refusal.options, refusal.onward) == ((), "")
    for release in ("0.23.0", "0.12.0", "0.11.0"):
        assert class_config_refusal(spec, "awq_marlin", (9, 0), release, search=False) is not None


LEGACY_FP8 = {"producer": {"name": "modelopt"}, "quantization": {"quant_algo": "FP8", "exclude_modules": ["lm_head"]}}


@pytest.mark.parametrize("engine, qcfg, reason", [
    # 0.11.0-0.13.0 take quant_algo exactly "FP8" or "NVFP4" (config/model.py 0.11.0:864-875)
    ("vllm==0.13.0", {**LEGACY_FP8, "quantization": {"quant_algo": "fp8"}}, "Unknown ModelOpt quant algo: fp8"),
    ("vllm==0.14.0", {**LEGACY_FP8, "quantization": {"quant_algo": "fp8"}}, None),  # upper-cased from 0.14.0:147-160
    ("vllm==0.13.0", LEGACY_FP8, None),
    # without producer.name, a quantization block holding modelopt_quant_config is read from 0.26 (0.26.0:218-223;
    # 0.25.0:218 asks the producer only)
    ("vllm==0.25.0", {"quantization": {"quant_algo": "FP8", "modelopt_quant_config": {}}},
     "vLLM 0.25.0 reads ModelOpt's own config only where producer.name is \"modelopt\" (a quantization block holding "
     "modelopt_quant_config from 0.26.0): it finds no quant_method and serves the model unquantised, which kvplan "
     "does not price from this checkpoint."),
    ("vllm==0.26.0", {"quantization": {"quant_algo": "FP8", "modelopt_quant_config": {}}}, None),
])
def test_modelopts_own_config_is_renamed_as_each_release_renames_it(write_config, engine, qcfg, reason):
    assert _engine_refusal(write_config, qcfg, engine) == reason


def test_modelopt_mixed_precision_is_unknown_before_0_33():
    """MIXED_PRECISION maps to modelopt_mixed from 0.33 (model_arch_config_convertor.py 0.33.0:267); 0.32.0:290 raises
    (kvplan does not price modelopt_mixed yet, so the engine rule is asked directly)."""
    from types import SimpleNamespace

    from kvplan.engines.vllm_quant import modelopt_legacy_refusal

    spec = SimpleNamespace(modelopt_legacy=("MIXED_PRECISION", True))
    assert modelopt_legacy_refusal(spec, "0.32.0").reason == "Unknown ModelOpt quant algo: MIXED_PRECISION"
    assert modelopt_legacy_refusal(spec, "0.33.0") is None
