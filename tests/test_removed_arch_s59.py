"""Session 59: the architectures vLLM's registry drops for good (_PREVIOUSLY_SUPPORTED_MODELS), by release, and the
pooling models vLLM builds encoder-only (no KV cache) that kvplan used to size.

vLLM lines read by hand (sdists unpacked as vllm-X.Y.Z/vllm/...; 0.15.x from the wheels; every key of each release's
model_executor/models/registry.py _VLLM_MODELS and _PREVIOUSLY_SUPPORTED_MODELS diffed against the release before):
- registry.py 0.34.0:883-939 _PREVIOUSLY_SUPPORTED_MODELS (VLLM_034_PREVIOUS below, verbatim); _raise_for_unsupported
  reads it from 0.10.1 (0.10.1:488-495; 0.10.0 defines it at :280 and never reads it): "Model architecture X was
  supported in vLLM until vY, and is not supported anymore. Please use an older version of vLLM if you want to use this
  model architecture." (0.32.0:1187-1195); otherwise "Model architectures [...] are not supported for now."
- last listed / first named: BambaForCausalLM 0.23.0:87 / 0.24.0:731; Phi3SmallForCausalLM 0.9.2:111 / 0.10.1:306
  (0.10.0 neither); Phi4FlashForCausalLM 0.10.2:130 / 0.11.1:483 (0.11.0 neither); JAISLMHeadModel 0.22.1:149 /
  0.23.0:717 "0.22.0"; BaichuanForCausalLM 0.24.0:83 / 0.25.0:732 "0.23.0"; TeleChatForCausalLM 0.25.1:239 /
  0.26.0:759 "0.25.0"; MotifForCausalLM 0.11.0:123 / 0.11.1:481 "0.10.2"; Tarsier2ForConditionalGeneration 0.24.0:578
  / 0.25.0:738 "0.23.0  # last version with Transformers v4" (0.24.0 requires transformers >= 5.5.3,
  requirements/common.txt:10; its tests cap Tarsier2 at 5.3, tests/models/registry.py 0.24.0:1384); OuroForCausalLM
  0.26.0:185 / 0.27.0:781; GritLM 0.28.0:231 / 0.29.0:810.
- BartModel: named 0.11.0:338 to 0.18.1:651, then _OOT_SUPPORTED_MODELS 0.19.0:657 "Model architecture X is not
  supported in-tree anymore. Please install the plugin at URL if you want to use this model architecture." (:959-966).
- encoder-only: siglip.py SiglipTextTransformer attn_cls=EncoderOnlyAttention 0.11.1:592, 0.34.0:575 (SiglipModel
  registry.py 0.11.1:219); ernie.py 0.18.0:73 ErnieModel(BertModel), bert.py 0.18.0:265 EncoderOnlyAttention
  (ErnieModel registry.py 0.18.0:217 to 0.23.0:228); colmodernvbert.py 0.17.0:278 ModernBertLayer, modernbert.py
  0.17.0:114 EncoderOnlyAttention (registry.py 0.17.0:253; ModernVBertModel 0.33.0:286); colultravbert.py 0.33.0:110
  (registry.py 0.33.0:283; UltraVBertModel 0.34.0:293); embedding_gemma2.py 0.32.0:157 attn_type=ENCODER_ONLY
  (registry.py 0.32.0:251); gritlm.py 0.11.0:245-247 is_causal = False on the pooling runner, read by llama.py
  0.11.0:275. Attention.get_kv_cache_spec returns None for ENCODER_ONLY (layers/attention/attention.py
  0.32.0:614-615).
- CLIP is not encoder-only: clip.py 0.32.0:587 builds its text encoder of plain (decoder, causal) Attention, with no
  cache_config (:404-409), so a KV cache in the model dtype whatever --kv-cache-dtype asks (attention.py
  0.32.0:276-279); the vision tower's MMEncoderAttention (:657) keeps none.
"""

import json

import pytest

from conftest import one_error_line, run_kvplan

from kvplan.engines.vllm_config_read import architecture_refusal, refuse_encoder_only
from kvplan.engines.vllm_remedy import release_boundaries
from kvplan.errors import KvplanError
from kvplan.model.parse import parse_config

# registry.py 0.34.0:883-939, verbatim (architecture -> the release its message names)
VLLM_034_PREVIOUS = {
    "MotifForCausalLM": "0.10.2", "Phi3SmallForCausalLM": "0.9.2", "Phi4FlashForCausalLM": "0.10.2",
    "Phi4MultimodalForCausalLM": "0.12.0", "JAISLMHeadModel": "0.22.0", "ErnieModel": "0.23.0",
    "ErnieForSequenceClassification": "0.23.0", "ErnieForTokenClassification": "0.23.0",
    "InternLM2VEForCausalLM": "0.23.0", "QWenLMHeadModel": "0.23.0", "QwenVLForConditionalGeneration": "0.23.0",
    "InternLMForCausalLM": "0.23.0", "DonutForConditionalGeneration": "0.10.2",
    "MllamaForConditionalGeneration": "0.10.2", "XverseForCausalLM": "0.23.0", "Dots1ForCausalLM": "0.23.0",
    "BambaForCausalLM": "0.23.0", "MiniMaxForCausalLM": "0.23.0", "MiniMaxText01ForCausalLM": "0.23.0",
    "MiniMaxM1ForCausalLM": "0.23.0", "MiniMaxVL01ForConditionalGeneration": "0.23.0", "BaiChuanForCausalLM": "0.23.0",
    "BaichuanForCausalLM": "0.23.0", "AquilaModel": "0.24.0", "AquilaForCausalLM": "0.24.0",
    "Grok1ModelForCausalLM": "0.24.0", "Grok1ForCausalLM": "0.24.0", "TarsierForConditionalGeneration": "0.24.0",
    "Tarsier2ForConditionalGeneration": "0.23.0", "MantisForConditionalGeneration": "0.24.0",
    "MusicFlamingoForConditionalGeneration": "0.24.0", "AyaVisionForConditionalGeneration": "0.24.0",
    "TeleChatForCausalLM": "0.25.0", "PersimmonForCausalLM": "0.25.0", "FuyuForCausalLM": "0.25.0",
    "Plamo2ForCausalLM": "0.26.0", "OuroForCausalLM": "0.26.0", "ArcticForCausalLM": "0.28.0",
    "ChameleonForConditionalGeneration": "0.28.0", "Cheers": "0.28.0", "CheersForConditionalGeneration": "0.28.0",
    "Fairseq2LlamaForCausalLM": "0.28.0", "FireRedLIDForConditionalGeneration": "0.28.0", "GritLM": "0.28.0",
    "HCXVisionForCausalLM": "0.28.0", "MPTForCausalLM": "0.28.0", "MptForCausalLM": "0.28.0", "RWForCausalLM": "0.28.0",
    "StableLMEpochForCausalLM": "0.28.0", "PrithviGeoSpatialMAE": "0.28.0", "KeyeForConditionalGeneration": "0.33.0",
    "KeyeVL1_5ForConditionalGeneration": "0.33.0",
}


def named(architecture: str, until: str) -> str:
    return (f"Model architecture {architecture} was supported in vLLM until v{until}, and is not supported anymore. "
            f"Please use an older version of vLLM if you want to use this model architecture.")


# 1. every architecture 0.34.0 names is refused there with vLLM's own line

@pytest.mark.parametrize("architecture, until", sorted(VLLM_034_PREVIOUS.items()))
def test_every_architecture_0_34_names_is_refused_with_its_release(architecture, until):
    refusal = architecture_refusal(architecture, "0.34.0")
    assert refusal is not None and refusal.reason == named(architecture, until)
    assert (refusal.field, refusal.onward, refusal.configuration) == ("engine", "older", True)


# 2. from which release, and the release a remedy names: (architecture, the last release that lists it, the first
# that names it, the release vLLM names, the newest release that runs it)
RETIRED_BY_HAND = (
    ("BambaForCausalLM", "0.23.0", "0.24.0", "0.23.0", "0.23.0"),
    ("MiniMaxText01ForCausalLM", "0.23.0", "0.24.0", "0.23.0", "0.23.0"),
    ("Grok1ForCausalLM", "0.24.0", "0.25.0", "0.24.0", "0.24.0"),
    ("OuroForCausalLM", "0.26.0", "0.27.0", "0.26.0", "0.26.0"),
    ("Plamo2ForCausalLM", "0.26.0", "0.27.0", "0.26.0", "0.26.0"),
    ("ArcticForCausalLM", "0.28.0", "0.29.0", "0.28.0", "0.28.0"),
    ("GritLM", "0.28.0", "0.29.0", "0.28.0", "0.28.0"),
    ("Phi4MultimodalForCausalLM", "0.12.0", "0.13.0", "0.12.0", "0.12.0"),
    ("MllamaForConditionalGeneration", "0.10.2", "0.11.0", "0.10.2", "0.10.2"),
    # vLLM names an older release than the last that lists it
    ("JAISLMHeadModel", "0.22.1", "0.23.0", "0.22.0", "0.22.1"),
    ("BaichuanForCausalLM", "0.24.0", "0.25.0", "0.23.0", "0.24.0"),
    ("BaiChuanForCausalLM", "0.24.0", "0.25.0", "0.23.0", "0.24.0"),
    ("TeleChatForCausalLM", "0.25.1", "0.26.0", "0.25.0", "0.25.1"),
    ("FuyuForCausalLM", "0.25.1", "0.26.0", "0.25.0", "0.25.1"),
    ("MotifForCausalLM", "0.11.0", "0.11.1", "0.10.2", "0.11.0"),
    # ... and rightly: 0.24.0 lists Tarsier2 but cannot run it with the transformers it requires
    ("Tarsier2ForConditionalGeneration", "0.24.0", "0.25.0", "0.23.0", "0.23.0"),
)


@pytest.mark.parametrize("architecture, last, first, until, remedy", RETIRED_BY_HAND)
def test_a_retired_architecture_is_refused_from_the_release_that_drops_it(architecture, last, first, until, remedy):
    assert architecture_refusal(architecture, last) is None
    refusal = architecture_refusal(architecture, first)
    assert refusal.reason == named(architecture, until)
    assert refusal.options == (f"vllm=={remedy}",) and refusal.onward == "older"
    assert architecture_refusal(architecture, "0.32.0").options == (f"vllm=={remedy}",)


@pytest.mark.parametrize("architecture, last, version", [("Phi3SmallForCausalLM", "0.9.2", "0.10.0"),
                                                         ("Phi4FlashForCausalLM", "0.10.2", "0.11.0")])
def test_a_release_between_the_last_listing_and_the_first_naming_says_not_supported_for_now(architecture, last,
                                                                                            version):
    """0.10.0's _raise_for_unsupported never reads _PREVIOUSLY_SUPPORTED_MODELS (registry.py 0.10.0:451-461); 0.11.0's
    dict (:334-344) lacks Phi4Flash, which 0.10.2 lists (:130) and 0.11.1 names (:483)."""
    refusal = architecture_refusal(architecture, version)
    assert refusal.reason == (f"Model architectures ['{architecture}'] are not supported for now (vLLM's registry "
                              f"lists them up to v{last}; vllm=={version} does not).")
    assert refusal.options == (f"vllm=={last}",) and refusal.onward == "older"


def test_a_bart_checkpoint_is_sent_to_its_plugin_from_0_19():
    assert architecture_refusal("BartModel", "0.18.1").reason == named("BartModel", "0.10.2")
    refusal = architecture_refusal("BartForConditionalGeneration", "0.19.0")
    assert refusal.reason == ("Model architecture BartForConditionalGeneration is not supported in-tree anymore. "
                              "Please install the plugin at https://github.com/vllm-project/bart-plugin if you want to "
                              "use this model architecture.")
    assert refusal.options == ("vllm==0.10.2",)


def test_the_releases_a_retirement_turns_on_are_remedy_boundaries():
    """0.22.1 and 0.25.1 are the last to list JAIS and TeleChat; 0.10.1 first names Phi3Small; 0.19.0 first sends Bart
    to its plugin."""
    assert {"0.22.1", "0.25.1", "0.10.1", "0.19.0", "0.24.0"} <= set(release_boundaries())


# 3. through the command line: a Llama-like Xverse config under the default release

XVERSE = {"architectures": ["XverseForCausalLM"], "model_type": "xverse", "hidden_size": 4096,
          "intermediate_size": 11008, "num_attention_heads": 32, "num_key_value_heads": 32, "num_hidden_layers": 32,
          "max_position_embeddings": 8192, "vocab_size": 100534, "torch_dtype": "bfloat16"}


def _plan(path, *args) -> dict:
    r = run_kvplan("estimate", path, "--gpu", "H100", *args, "--format", "json")
    assert r.returncode == 0, r.stderr
    (plan,) = json.loads(r.stdout)["plans"]
    return plan


def test_a_retired_architecture_no_longer_gets_a_plan_on_0_32(tmp_path):
    """XverseForCausalLM: listed 0.4.0 (models/__init__.py 0.4.0:55) to 0.23.0 (registry.py :220), named from 0.24.0
    (:729). Before this session 0.32.0 planned it (115,200 tokens on an H100)."""
    (tmp_path / "config.json").write_text(json.dumps(XVERSE))
    refusal = _plan(tmp_path)["engine"]["refusal"]
    assert refusal["reason"] == named("XverseForCausalLM", "0.23.0")
    assert refusal["remedy"] == "it starts with --engine vllm==0.23.0 (any release from 0.4.0 before 0.24.0)"
    served = _plan(tmp_path, "--engine", "vllm==0.23.0")["engine"]
    assert served["starts"] and served["refusal"] is None


# 4. encoder-only pooling models

SIGLIP = {"architectures": ["SiglipModel"], "model_type": "siglip", "torch_dtype": "float32",
          "text_config": {"model_type": "siglip_text_model", "hidden_size": 768, "intermediate_size": 3072,
                          "num_attention_heads": 12, "num_hidden_layers": 12, "max_position_embeddings": 64,
                          "vocab_size": 32000},
          "vision_config": {"model_type": "siglip_vision_model", "hidden_size": 768, "intermediate_size": 3072,
                            "num_attention_heads": 12, "num_hidden_layers": 12, "image_size": 224, "patch_size": 16}}
ERNIE = {"architectures": ["ErnieModel"], "model_type": "ernie", "hidden_size": 768, "intermediate_size": 3072,
         "num_attention_heads": 12, "num_hidden_layers": 12, "max_position_embeddings": 2048, "vocab_size": 40000,
         "type_vocab_size": 4, "task_type_vocab_size": 3, "use_task_id": True}
# a BERT-sized text tower under each architecture (the reader takes the language model's fields)
BERTISH = {"model_type": "modernbert", "hidden_size": 768, "intermediate_size": 1152, "num_attention_heads": 12,
           "num_hidden_layers": 22, "max_position_embeddings": 8192, "vocab_size": 50368, "torch_dtype": "float32"}


def _encoder_line(tmp_path, config, *engine) -> str:
    (tmp_path / "config.json").write_text(json.dumps(config))
    return one_error_line(run_kvplan("estimate", tmp_path, "--gpu", "H100", "--engine", *engine))


@pytest.mark.parametrize("release", ["0.11.1", "0.32.0", "0.34.0"])
def test_siglip_is_encoder_only_in_every_release_that_lists_it(tmp_path, release):
    """Before: 0.32.0 planned SigLIP's 12 text layers at 36 KiB a token, 1,024 requests on an H100."""
    assert _encoder_line(tmp_path, SIGLIP, f"vllm=={release}") == (
        f"kvplan: error: {tmp_path} (SiglipModel) is an encoder-only model: vLLM {release} builds no KV cache for it, "
        f"so there is nothing for kvplan to size.")


def test_siglip_before_its_registry_and_without_a_release(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(SIGLIP))
    refusal = _plan(tmp_path, "--engine", "vllm==0.11.0")["engine"]["refusal"]
    assert refusal["reason"].startswith("Model architectures ['SiglipModel'] are not supported for now (vLLM's "
                                        "registry lists them from v0.11.1 on")
    assert "(SiglipModel) is an encoder-only model: vLLM (from 0.11.1) builds no KV cache" in \
        _encoder_line(tmp_path, SIGLIP, "none")


def test_ernie_is_encoder_only_while_listed_then_retired(tmp_path):
    assert "(ErnieModel) is an encoder-only model: vLLM 0.18.0 builds no KV cache" in \
        _encoder_line(tmp_path, ERNIE, "vllm==0.18.0")
    assert "(ErnieModel) is an encoder-only model: vLLM 0.23.0 builds no KV cache" in \
        _encoder_line(tmp_path, ERNIE, "vllm==0.23.0")
    assert "vLLM (0.18.0 to 0.23.0) builds no KV cache" in _encoder_line(tmp_path, ERNIE, "none")
    r = run_kvplan("estimate", tmp_path, "--gpu", "H100")  # 0.32.0: vLLM's line, and no release to offer
    assert r.returncode == 0, r.stderr
    text = " ".join(r.stdout.split())
    assert ("vllm 0.32.0 refuses the model: Model architecture ErnieModel was supported in vLLM until v0.23.0, and is "
            "not supported anymore; --engine vllm==0.23.0 clears this, but then:") in text
    assert "it starts with" not in text


@pytest.mark.parametrize("architecture, first, config", [
    ("ColModernVBertForRetrieval", "0.17.0", {"model_type": "modernvbert", "text_config": BERTISH}),
    ("ModernVBertModel", "0.33.0", {"model_type": "modernvbert", "text_config": BERTISH}),
    ("ColUltraVBertForRetrieval", "0.33.0", {"model_type": "ultravbert", "text_config": BERTISH}),
    ("UltraVBertModel", "0.34.0", {"model_type": "ultravbert", "text_config": BERTISH}),
    ("EmbeddingGemma2Model", "0.32.0", BERTISH),
    ("ErnieForSequenceClassification", "0.18.0", ERNIE),
    ("ErnieForTokenClassification", "0.18.0", ERNIE),
])
def test_the_late_encoder_only_poolers(architecture, first, config):
    spec = parse_config({**config, "architectures": [architecture]}, architecture)
    with pytest.raises(KvplanError, match=f"is an encoder-only model: vLLM {first} builds no KV cache"):
        refuse_encoder_only(spec, first)
    before = {"0.17.0": "0.16.0", "0.33.0": "0.32.0", "0.34.0": "0.33.0", "0.32.0": "0.31.0", "0.18.0": "0.17.1"}[first]
    refuse_encoder_only(spec, before)  # that release's registry refuses it first (architecture_refusal)
    assert architecture_refusal(architecture, before).reason.startswith(
        f"Model architectures ['{architecture}'] are not supported for now")


GRITLM = {"architectures": ["GritLM"], "model_type": "mistral", "hidden_size": 4096, "intermediate_size": 14336,
          "num_attention_heads": 32, "num_key_value_heads": 8, "num_hidden_layers": 32,
          "max_position_embeddings": 32768, "vocab_size": 32000, "torch_dtype": "bfloat16"}


@pytest.mark.parametrize("release", ["0.11.0", "0.20.0", "0.28.0"])
def test_gritlm_on_the_pooling_runner_is_encoder_only(tmp_path, release):
    """GritLM is a pooling class (registry.py 0.11.0:167) whose __init__ sets is_causal false there."""
    assert f"(GritLM) is an encoder-only model: vLLM {release} builds no KV cache" in \
        _encoder_line(tmp_path, GRITLM, f"vllm=={release}")


def test_gritlm_after_0_28_is_refused_by_the_registry(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(GRITLM))
    refusal = _plan(tmp_path, "-c", "8192", "--engine", "vllm==0.29.0")["engine"]["refusal"]
    assert refusal["reason"] == named("GritLM", "0.28.0")


CLIP = {"architectures": ["CLIPModel"], "model_type": "clip", "projection_dim": 512, "torch_dtype": "float32",
        "text_config": {"model_type": "clip_text_model", "hidden_size": 512, "intermediate_size": 2048,
                        "num_attention_heads": 8, "num_hidden_layers": 12, "max_position_embeddings": 77,
                        "vocab_size": 49408},
        "vision_config": {"model_type": "clip_vision_model", "hidden_size": 768, "intermediate_size": 3072,
                          "num_attention_heads": 12, "num_hidden_layers": 12, "image_size": 224, "patch_size": 32}}


def test_clip_keeps_a_cache_in_its_model_dtype(tmp_path):
    """CLIP's 12 causal text layers keep 8 heads x 64 x K and V x 2 bytes = 2,048 bytes each a token, 24,576 in all,
    at --kv-cache-dtype fp8 too (no cache_config: 'auto'); before this session fp8 halved it to 12,288."""
    (tmp_path / "config.json").write_text(json.dumps(CLIP))
    plain = _plan(tmp_path)
    assert plain["kv_bytes_per_token"] == 12 * 8 * 64 * 2 * 2 == 24576 and plain["engine"]["starts"]
    fp8 = _plan(tmp_path, "--kv-cache-dtype", "fp8")
    assert fp8["kv_bytes_per_token"] == 24576
