"""Session 72 (dgemma): DiffusionGemma read as vLLM builds it, and a separate drafter's own cache dtype.

DiffusionGemma, read in vLLM's wheels 0.24.0-0.34.0 (paths under vllm/ of the release named):
- registry.py maps DiffusionGemmaForBlockDiffusion to diffusion_gemma.DiffusionGemmaForConditionalGeneration
  (0.24.0:401-403, 0.34.0:429-431), which builds one Gemma4Model (diffusion_gemma.py 0.24.0:230, 0.32.0:236,
  0.34.0:238), sets text_config.attention_k_eq_v = True first (0.24.0:190, 0.32.0:189, 0.34.0:190; 0.24-0.31's own
  DiffusionGemmaTextConfig the same, transformers_utils/configs/diffusion_gemma.py 0.24.0:10-15), adds a
  self-conditioning MLP of plain nn.Linear (0.24.0:66-81, 0.34.0:82-97; width self_conditioning_size or the text
  intermediate_size, 0.34.0:264-266) and Gemma 4's vision tower and embedder (0.34.0:204-233).
- Causal? Both: one backbone run causal while it commits a block (writing the paged cache) and bidirectional while it
  denoises a canvas reading it (module docstring 0.34.0:5-7; DiffusionGemmaModelState.prepare_attn's per-request
  causal flag, 0.34.0:1087-1137). Every layer is a Gemma4Attention around an ordinary Attention (gemma4.py
  0.34.0:522-540), so vLLM allocates Gemma 4's paged cache: sliding and full specs, nothing of its own.
- The canvas (DiffusionConfig.canvas_length: the hook takes hf_config.canvas_length, default 256, models/config.py
  0.34.0:672-680) is VllmConfig.num_speculative_tokens (config/vllm.py 0.24.0:510-518, 0.34.0:587-598) with no
  lookahead slots (num_lookahead_tokens reads speculative_config only, 0.34.0:601-614): a decode step is 1 + 256
  queries, and the CUDA graphs follow (0.32.0:2360-2441). V2 runner always (use_v2_model_runner: is_diffusion,
  0.24.0:527-528, 0.28.0:645-646).
- A multimodal prefix LM (use_bidirectional_attention "vision") only from 0.31, where MODEL_ARCH_CONFIG_CONVERTORS
  maps the top-level diffusion_gemma to Gemma4ModelArchConfigConvertor (model_arch_config_convertor.py 0.31.0:816;
  0.24.0:629 maps diffusion_gemma_text alone, which the lookup by hf_config.model_type, config/model.py 0.24.0:731,
  never meets).
- transformers 5.22.2 DiffusionGemmaTextConfig (configuration_diffusion_gemma.py, run in /tmp/s72/tfvenv): no
  attention_k_eq_v field, so per_layer_config takes num_global_key_value_heads whatever the file says (:136); a
  saved config writes per_layer_config keys zero-padded ("05": integrations/heterogeneity/configuration_utils.py
  :371-376) and reads them back with int(key) (:183-186).

The fixture is google/diffusiongemma-26B-A4B-it's config.json as two public re-implementations' tests pin it (the Hub
is not reachable): a Swift MLX port's ConfigurationTests ("The checkpoint's text_config", "The checkpoint's
vision_config"; search index id 71354390473) and another port's "DiffusionGemma native text geometry" suite (index id
68570398238, the same text fields). The model card as a blog post quotes it (index id 54552218822): 25.2B
parameters, 3.8B active, 30 layers, 128 experts with 8 active, a ~550M vision encoder, a 1,024-token window, a
256-token canvas, 256K context; the text layers here come to 25.25B (test_weights_by_hand), Gemma-4-26B-A4B's
figure.

The drafter (vLLM 0.25.0-0.34.0): SpeculativeConfig.kv_cache_dtype first in 0.26.0 (config/speculative.py :123; none in
0.25.0), "When None, the draft inherits the target model's --kv-cache-dtype". Set, it is the cache_config.cache_dtype
the drafter's layers are built with (V2 standalone_ar/speculator.py 0.32.0:108-110; eagle/utils.py 0.32.0:83 and
0.34.0:124 apply_draft_overrides, _DRAFT_VLLM_CONFIG_OVERRIDES 0.32.0:376-383), and each Attention layer sizes its
page at its own dtype (model_executor/layers/attention/attention.py 0.32.0:276-279, :606-675). GlmMoeDsaForCausalLM's
hook sets it to auto for a non-MTP drafter where it turns the target's auto into fp8_e4m3 on SM10x (models/config.py
0.32.0:56-64, 0.33.0:104-110); 0.34.0 (:163-181) no longer does.
"""

import json

import pytest

from conftest import estimate_plan, one_error_line, run_kvplan

from kvplan.engines.vllm_gemma4_backend import triton_forced
from kvplan.engines.vllm_speculative import Speculative, check_cache_dtype
from kvplan.errors import FieldError
from kvplan.model.kinds import FullAttention, SlidingWindow
from kvplan.model.sources import resolve

SLIDING, FULL = "sliding_attention", "full_attention"
TEXT = {  # index ids 71354390473 / 68570398238 (the module docstring)
    "model_type": "diffusion_gemma_text", "vocab_size": 262144, "hidden_size": 2816, "intermediate_size": 2112,
    "moe_intermediate_size": 704, "num_hidden_layers": 30, "num_attention_heads": 16, "num_key_value_heads": 8,
    "num_global_key_value_heads": 2, "head_dim": 256, "global_head_dim": 512, "hidden_activation": "gelu_pytorch_tanh",
    "rms_norm_eps": 1e-06, "max_position_embeddings": 262144, "pad_token_id": 0, "eos_token_id": [1],
    "bos_token_id": 2, "tie_word_embeddings": True, "sliding_window": 1024, "layer_types": ([SLIDING] * 5 + [FULL]) * 5,
    "final_logit_softcapping": 30.0, "use_bidirectional_attention": "vision", "num_experts": 128, "top_k_experts": 8,
    "attention_bias": False, "attention_dropout": 0.0,
    "rope_parameters": {SLIDING: {"rope_type": "default", "rope_theta": 10000.0},
                        FULL: {"rope_type": "proportional", "partial_rotary_factor": 0.25, "rope_theta": 1000000.0}}}
VISION = {"model_type": "gemma4_vision", "num_hidden_layers": 27, "hidden_size": 1152, "intermediate_size": 4304,
          "num_attention_heads": 16, "num_key_value_heads": 16, "head_dim": 72, "patch_size": 16,
          "rms_norm_eps": 1e-06, "default_output_length": 280, "position_embedding_size": 10240,
          "pooling_kernel_size": 3, "use_clipped_linears": False, "standardize": True,
          "rope_parameters": {"rope_type": "default", "rope_theta": 100.0}}
CONFIG = {"architectures": ["DiffusionGemmaForBlockDiffusion"], "model_type": "diffusion_gemma", "canvas_length": 256,
          "boi_token_id": 255999, "eoi_token_id": 258882, "image_token_id": 258880, "eos_token_id": [1, 106, 50],
          "dtype": "bfloat16", "tie_word_embeddings": True, "vision_soft_tokens_per_image": 280,
          "text_config": TEXT, "vision_config": VISION}
L40S, A100, H100 = (8, 9), (8, 0), ()


def _model(write_config, text=None, **outer) -> str:
    return str(write_config({**CONFIG, "text_config": {**TEXT, **(text or {})}, **outer}))


def _kv(model: str, *args) -> int:
    return estimate_plan(model, "--gpu", "h100", "--max-model-len", "8192", *args)["kv_bytes_per_token_per_gpu"]


# ---- DiffusionGemma read as Gemma 4 --------------------------------------------------------------------------------

def test_layers_are_gemma4s(write_config):
    """Before this session the reader took diffusion_gemma_text for a plain Gemma: 30 layers of 8 KV heads of 256
    (global_head_dim, num_global_key_value_heads ignored). vLLM's Gemma4Model: every 6th layer full with 2 KV heads
    of 512 (K = V), the others sliding over 1,024 tokens with 8 of 256."""
    spec = resolve(_model(write_config), None)
    kinds = [(type(layer), layer.kv_heads, layer.head_dim, layer.window) for layer in spec.layers]
    assert kinds == ([(SlidingWindow, 8, 256, 1024)] * 5 + [(FullAttention, 2, 512, None)]) * 5
    assert (spec.experts, spec.experts_per_token, spec.audio_tower, spec.canvas_length) == (128, 8, False, 256)


@pytest.mark.parametrize("tp, expected", [
    (1, 25 * 2 * 8 * 256 * 2 + 5 * 2 * 2 * 512 * 2),  # 204,800 + 20,480 = 225,280 (before: 30 x 8,192 = 245,760)
    (2, 25 * 2 * 4 * 256 * 2 + 5 * 2 * 1 * 512 * 2),  # 102,400 + 10,240 = 112,640
    (4, 25 * 2 * 2 * 256 * 2 + 5 * 2 * 1 * 512 * 2),  # the full layers' 2 KV heads: one whole head on each of 4
    (8, 25 * 2 * 1 * 256 * 2 + 5 * 2 * 1 * 512 * 2),  # 25,600 + 10,240 = 35,840
])
def test_kv_bytes_a_token_by_hand(write_config, tp, expected):
    assert _kv(_model(write_config), "-tp", str(tp)) == expected


def test_weights_by_hand(write_config):
    """What vLLM allocates of the text model, by hand from gemma4.py (0.34.0 Gemma4DecoderLayer :585-730, Gemma4Router
    :316-345): a sliding layer q, k + v, o 3 x 4096 x 2816 = 34,603,008, q_norm and k_norm 2 x 256, seven norms
    7 x 2816 = 19,712, layer_scalar 1, the dense MLP 3 x 2112 x 2816 = 17,842,176, 128 experts 3 x 704 x 2816 each
    = 761,266,176, the router 128 x 2816 + 2816 + 128 = 363,392: 814,094,977. A full layer: q and o 8192 x 2816
    each = 46,137,344, K and V rows 2 x 1024 x 2816 = 5,767,168 (V loaded from k_proj), norms 2 x 512, the rest as
    above: 831,396,993. 25 + 5 of them 24,509,359,390; the tied embedding 262144 x 2816 = 738,197,504 and the final
    norm 2816; the self-conditioning MLP 2816 + 3 x 2112 x 2816 = 17,844,992: 25,265,404,702. The checkpoint ships no
    V rows on the full layers (5 x 1024 x 2816 = 14,417,920 fewer). 16-bit: 2 bytes each."""
    spec = resolve(_model(write_config), None)
    text = sum(g.parameters for g in spec.params if g.name != "vision")
    assert text == 25_265_404_702
    vision = next(g.parameters for g in spec.params if g.name == "vision")
    assert spec.weights.parameters == text - 14_417_920 + vision
    assert spec.weights.bytes == 2 * spec.weights.parameters
    # the tower and embedder are Gemma 4's classes (diffusion_gemma.py 0.34.0:204-233): priced as Gemma 4's
    gemma4 = resolve(str(write_config({"architectures": ["Gemma4ForConditionalGeneration"], "model_type": "gemma4",
                                       "text_config": {**TEXT, "model_type": "gemma4_text"}, "vision_config": VISION},
                                      "gemma4.json")), None)
    assert vision == next(g.parameters for g in gemma4.params if g.name == "vision") > 0


def test_self_conditioning_width_from_the_outer_config(write_config):
    """getattr(config, "self_conditioning_size", None) or text intermediate_size (diffusion_gemma.py 0.34.0:264-266):
    1,024 instead of 2,112 takes 3 x 2816 x (2112 - 1024) = 9,191,424 parameters off."""
    default = resolve(_model(write_config), None)
    narrow = resolve(_model(write_config, self_conditioning_size=1024), None)
    assert default.weights.parameters - narrow.weights.parameters == 3 * 2816 * (2112 - 1024)


def test_full_layers_are_k_eq_v_whatever_the_file_says(write_config):
    """vLLM sets attention_k_eq_v, transformers takes num_global_key_value_heads ungated (the module docstring)."""
    spec = resolve(_model(write_config, {"attention_k_eq_v": False}), None)
    assert {(layer.kv_heads, layer.head_dim) for layer in spec.layers if not isinstance(layer, SlidingWindow)} == \
        {(2, 512)}


@pytest.mark.parametrize("model_type", ["diffusion_gemma_text", "gemma4_text"])
def test_a_saved_per_layer_config_zero_pads_its_keys(write_config, model_type):
    """A config transformers saved names its layers "05", "11", ... and no global_head_dim: layer 5 of 30 must read
    "05" (before, only "5" was read, and the full layers fell back to 8 KV heads)."""
    text = {key: value for key, value in TEXT.items() if key not in ("global_head_dim", "num_global_key_value_heads")}
    text.update(model_type=model_type, attention_k_eq_v=True,
                per_layer_config={f"{i:02d}": {"head_dim": 512, "num_key_value_heads": 2} for i in range(5, 30, 6)})
    outer = "diffusion_gemma" if model_type.startswith("diffusion") else "gemma4"
    spec = resolve(str(write_config({**CONFIG, "model_type": outer, "text_config": text})), None)
    assert {(layer.kv_heads, layer.head_dim) for layer in spec.layers[5::6]} == {(2, 512)}


def test_the_gemma4_backend_rule_fires_on_the_real_config(write_config):
    """Gemma4Config's hook, which DiffusionGemma's calls from 0.24 (vllm_gemma4_backend.HOOK_CALLERS): 256 / 512 heads
    run on TRITON_ATTN where FlashAttention 4 does not (L40S, A100), FA4 on Hopper. Before, the reader gave one head
    size, so the rule never fired on a DiffusionGemma config."""
    spec = resolve(_model(write_config), None)
    assert triton_forced(spec, L40S, "0.32.0") and triton_forced(spec, A100, "0.24.0")
    assert not triton_forced(spec, H100, "0.34.0")
    run = run_kvplan("estimate", _model(write_config), "--gpu", "l40s", "--max-model-len", "8192",
                     "--kv-cache-dtype", "nvfp4", "--engine", "vllm==0.34.0", "--format", "json")
    (plan,) = json.loads(run.stdout)["plans"]
    assert "mixed 256 / 512-wide heads on TRITON_ATTN" in plan["engine"]["refusal"]["reason"]


@pytest.mark.parametrize("version, refused", [("0.30.0", False), ("0.31.0", True), ("0.34.0", True)])
def test_a_prefix_lm_from_0_31(write_config, version, refused):
    """The largest item a prefix LM prefills whole: a video of 32 frames x (70 + 2 + 6) = 2,496 tokens
    (vllm_media_floor), over --max-num-batched-tokens 2048 (encoder_cache_manager.py 0.32.0:335-354)."""
    plan = estimate_plan(_model(write_config), "--gpu", "h100", "--max-model-len", "8192", "--engine",
                         f"vllm=={version}", "--max-num-batched-tokens", "2048")
    reason = (plan["engine"]["refusal"] or {}).get("reason", "")
    assert ("max_tokens_per_mm_item (2496) is larger than max_num_batched_tokens (2048)" in reason) is refused


@pytest.mark.parametrize("canvas, graphs", [
    # the config's q = 257: cap min(8 x 257 x 2, 512) = 512; PIECEWISE the grid 1, 2, 4, 8..256 by 8, 272..512 by 16
    # (51) and the decode size 257; FULL: V2's manager rounds each size up to a multiple of its own decode_query_len,
    # the canvas 256 (session 73: tests/test_dgemma_s73.py), keeping those within the cap and 8 x 256: 256 and 512
    (None, "PIECEWISE=52 (largest=512), FULL=2 (largest=512)"),
    # q = 33: the grid's 51 and the decode sizes 33, 66, 132, 264 (n x 33 for n = 1, 2, 4, 8); FULL 32 x 1..8
    (32, "PIECEWISE=55 (largest=512), FULL=8 (largest=256)"),
])
def test_the_canvas_is_a_decode_steps_draft(write_config, canvas, graphs):
    outer = {} if canvas is None else {"canvas_length": canvas}
    plan = estimate_plan(_model(write_config, **outer), "--gpu", "h100", "--max-model-len", "8192", "--engine",
                         "vllm==0.32.0")
    source = next(t["source"] for t in plan["budget"]["terms"] if t["name"] == "cuda_graphs")
    assert graphs in source


def test_model_runner_v2_from_0_24(write_config):
    """0.24-0.28 run a diffusion model on V2 (not a listed V2 default there), whose graph profile is 0 before 0.29."""
    plan = estimate_plan(_model(write_config), "--gpu", "h100", "--max-model-len", "8192", "--engine", "vllm==0.28.0")
    graphs = next(t for t in plan["budget"]["terms"] if t["name"] == "cuda_graphs")
    assert graphs["bytes"] == 0 and graphs["source"].startswith("0: V2")


# ---- a drafter's own cache dtype -----------------------------------------------------------------------------------

TARGET, DRAFT = "meta-llama/Llama-3.1-70B-Instruct", "meta-llama/Llama-3.2-1B-Instruct"
GLM = "zai-org/GLM-5.2"
GLM_BF16, GLM_FP8 = 78 * 576 * 2 + 21 * 132, 78 * 576 + 21 * 132  # tests/test_config_hooks_s72.py's by-hand figures


def _drafted(*flags, draft="", target=TARGET, model=DRAFT, gpu="h100", tp="4", version="0.32.0") -> int:
    config = json.dumps({"model": model, "num_speculative_tokens": 4, **({"kv_cache_dtype": draft} if draft else {})})
    return estimate_plan(target, "--gpu", gpu, "-tp", tp, "--max-model-len", "32768", "--engine",
                         f"vllm=={version}", "--speculative-config", config, *flags)["kv_bytes_per_token_per_gpu"]


@pytest.mark.parametrize("target, draft, expected", [
    # Llama-3.1-70B: 80 layers of 8 KV heads of 128, 2 on each of 4 GPUs; Llama-3.2-1B: 16 layers of 8 of 64
    ("auto", "", 80 * 2 * 2 * 128 * 2 + 16 * 2 * 2 * 64 * 2),  # 81,920 + 8,192 = 90,112
    ("auto", "fp8", 80 * 2 * 2 * 128 * 2 + 16 * 2 * 2 * 64 * 1),  # 81,920 + 4,096 = 86,016 (before: 90,112)
    ("fp8", "", 80 * 2 * 2 * 128 * 1 + 16 * 2 * 2 * 64 * 1),  # inherits the target's: 40,960 + 4,096 = 45,056
    ("fp8", "auto", 80 * 2 * 2 * 128 * 1 + 16 * 2 * 2 * 64 * 2),  # its own auto, bf16: 49,152 (before: 45,056)
])
def test_a_draft_models_cache_dtype(target, draft, expected):
    assert _drafted("--kv-cache-dtype", target, draft=draft) == expected


GLM_HEAD = {"architectures": ["LlamaForCausalLMEagle3"], "model_type": "llama", "hidden_size": 6144,
            "intermediate_size": 16384, "num_hidden_layers": 1, "num_attention_heads": 64, "num_key_value_heads": 8,
            "head_dim": 128, "vocab_size": 154880, "draft_vocab_size": 32000, "max_position_embeddings": 202752,
            "torch_dtype": "bfloat16"}  # an EAGLE-3 head shaped for GLM-5.2 (hidden 6,144): one layer


@pytest.mark.parametrize("gpu, version, kv, expected", [
    # B200 (SM10x): the target's auto is fp8_e4m3 (47,700 a token at tp 8); the head's layer, 1 KV head of 128 a GPU
    ("b200", "0.32.0", "auto", GLM_FP8 + 2 * 128 * 2),  # the hook keeps the head at auto: bf16, 512 bytes
    ("b200", "0.33.0", "auto", GLM_FP8 + 2 * 128 * 2),
    ("b200", "0.34.0", "auto", GLM_FP8 + 2 * 128 * 1),  # no longer: it inherits fp8_e4m3, 256 bytes
    ("b200", "0.33.0", "fp8", GLM_FP8 + 2 * 128 * 1),  # an explicit fp8: the hook leaves both alone
    ("h200", "0.33.0", "auto", GLM_BF16 + 2 * 128 * 2),  # not SM10x: bf16 throughout
    # Hopper's FLASHMLA_SPARSE keeps fp8 as the 656-byte fp8_ds_mla entry in the MLA layers only
    # (mla_attention.py _canonicalize_sparse_mla_kv_cache_dtype); the head's Llama layer keeps the fp8 asked. Before,
    # kvplan priced the head at fp8_ds_mla and stopped ("ordinary KV heads")
    ("h200", "0.33.0", "fp8", 78 * 656 + 21 * 132 + 2 * 128 * 1),
])
def test_glms_hook_keeps_a_separate_drafter_at_auto_in_0_32_and_0_33(write_config, gpu, version, kv, expected):
    head = str(write_config(GLM_HEAD).parent)
    config = json.dumps({"method": "eagle3", "model": head, "num_speculative_tokens": 3})
    plan = estimate_plan(GLM, "--gpu", gpu, "-tp", "8", "--max-model-len", "65536", "--engine", f"vllm=={version}",
                         "--kv-cache-dtype", kv, "--speculative-config", config)
    assert plan["kv_bytes_per_token_per_gpu"] == expected


@pytest.mark.parametrize("version", ["0.32.0", "0.33.0"])
def test_glms_mtp_modules_inherit_the_targets_cache(version):
    """The hook skips method mtp: the MTP module's MLA latent and indexer keys at fp8_e4m3, 576 + 132 bytes."""
    plan = estimate_plan(GLM, "--gpu", "b200", "-tp", "8", "--max-model-len", "65536", "--engine", f"vllm=={version}",
                         "--speculative-config", '{"method": "mtp", "num_speculative_tokens": 1}')
    assert plan["kv_bytes_per_token_per_gpu"] == GLM_FP8 + 576 + 132


def test_the_drafters_cache_is_said(write_config):
    run = run_kvplan("estimate", TARGET, "--gpu", "h100", "-tp", "4", "--max-model-len", "32768",
                     "--speculative-config", json.dumps({"model": DRAFT, "num_speculative_tokens": 4,
                                                         "kv_cache_dtype": "fp8"}))
    text = " ".join(run.stdout.split())
    assert "16 of 96 cache layers are the draft model's (--speculative-config), cached as fp8_e4m3 (its " \
           "kv_cache_dtype fp8)" in text


@pytest.mark.parametrize("value, words", [
    ("fp9", "kv_cache_dtype must be one of auto, fp8, "),
    (3, "kv_cache_dtype must be a cache dtype as vLLM spells it"),
    ("FP8", "got 'FP8'"),  # pydantic's Literal takes vLLM's spelling only
])
def test_a_bad_drafter_cache_dtype_is_one_line(value, words):
    config = json.dumps({"model": DRAFT, "num_speculative_tokens": 4, "kv_cache_dtype": value})
    line = one_error_line(run_kvplan("estimate", TARGET, "--gpu", "h100", "--speculative-config", config))
    assert "--speculative-config" in line and words in line


def test_a_drafter_cache_dtype_of_a_later_release_is_refused():
    """octave_k3v4 is a cache dtype from 0.33 (vllm_versions.KV_DTYPE_SINCE): 0.32's CacheDType Literal refuses it."""
    config = Speculative("draft_model", 4, DRAFT, kv_cache_dtype="octave_k3v4")
    with pytest.raises(FieldError, match="in vllm==0.32.0"):
        check_cache_dtype(config, "0.32.0")
    check_cache_dtype(config, "0.33.0")
