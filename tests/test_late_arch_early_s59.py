"""Session 59: the architectures vLLM's model registry lists from a release on, before 0.16 (and its pooling ones in
every release), the ones a release drops and may list again, and --block-size's choices by release.

vLLM lines read by hand (sdists on PyPI unpacked as vllm-X.Y.Z/vllm/...; 0.3.2 and 0.4.0 from their wheels, which
have no sdist; keys of the registry dicts, each release against the one before):
- model_executor/model_loader.py 0.2.0:15-34 _MODEL_REGISTRY has no AquilaForCausalLM; 0.2.1.post1:17 adds it (0.2.1
  was published only as 0.2.1.post1). 0.2.4:36 MixtralForCausalLM (absent in 0.2.3).
- model_executor/models/__init__.py 0.3.0:40 Qwen2ForCausalLM (absent in 0.2.7); 0.3.2:23 GemmaForCausalLM (wheel;
  absent in 0.3.1); 0.4.2:49 Phi3ForCausalLM (absent in 0.4.1).
- model_executor/models/registry.py: 0.6.3:90 Qwen2ForRewardModel (absent in 0.6.2's __init__.py), 0.6.6:48
  DeepseekV3ForCausalLM, 0.8.0:166 Gemma3ForConditionalGeneration, 0.8.4:105 Qwen3ForCausalLM (absent in 0.8.3),
  0.10.1:76 GptOssForCausalLM, 0.11.0:271 Qwen3VLForConditionalGeneration, 0.11.1:137 MiniMaxM2ForCausalLM (absent in
  0.11.0), 0.12.0:183 TeleChatForCausalLM, 0.13.0:276 BagelForConditionalGeneration, 0.14.0:162
  MiMoV2FlashForCausalLM, 0.17.0:260 ColQwen3, 0.20.0:281 JinaForRanking, 0.34.0:293 UltraVBertModel.
- dropped and back: ExaoneMoEForCausalLM 0.26.0:99, none in 0.27.0-0.31.0, 0.32.0:102; ChatGLMForConditionalGeneration
  0.7.2:155, none in 0.7.3 (ChatGLMModel :42 only), 0.8.4:46; Llama4ForCausalLM 0.8.3:76, none in 0.8.4-0.10.0,
  0.10.1:97. Dropped for good: VoxtralStreamingGeneration 0.14.0:437 ... 0.15.1:448, none in 0.16.0 (renamed
  VoxtralRealtimeGeneration), and no _PREVIOUSLY_SUPPORTED_MODELS entry for it in 0.34.0 (:883-).
- --block-size's argparse choices: engine/arg_utils.py 0.2.0:126 [8, 16, 32]; 0.3.3:174 [8, 16, 32, 128]; 0.4.1:241
  [8, 16, 32]; 0.5.5:320 [8, 16, 32, 128, 256, 512, 1024, 2048]; 0.6.0:324 [8, 16, 32]; 0.6.4:404 [8 ... 128];
  0.6.5:426 [8, 16, 32]; 0.6.6:431 and 0.8.4:470 [8, 16, 32, 64, 128]; from 0.8.5 the BlockSize Literal, sorted:
  config.py 0.8.5:1290 and config/cache.py 0.11.0:24 [1, 8, 16, 32, 64, 128], config/cache.py 0.11.1:23 and 0.17.1:22
  [1, 8, 16, 32, 64, 128, 256]; 0.18.0:36 block_size: SkipValidation[int] (no choices)."""

import json

import pytest

from conftest import deployments_file, one_error_line, run_kvplan

from kvplan.engines.vllm_config_read import ADDED_ARCHITECTURES, architecture_refusal

# (architecture, the last release whose registry lacks it, the first that lists it)
LATE = (
    ("AquilaForCausalLM", "0.2.0", "0.2.1.post1"),
    ("MixtralForCausalLM", "0.2.3", "0.2.4"),
    ("Qwen2ForCausalLM", "0.2.7", "0.3.0"),
    ("GemmaForCausalLM", "0.3.1", "0.3.2"),
    ("Phi3ForCausalLM", "0.4.1", "0.4.2"),
    ("Qwen2ForRewardModel", "0.6.2", "0.6.3"),
    ("DeepseekV3ForCausalLM", "0.6.5", "0.6.6"),
    ("Gemma3ForConditionalGeneration", "0.7.3", "0.8.0"),
    ("Qwen3ForCausalLM", "0.8.3", "0.8.4"),
    ("GptOssForCausalLM", "0.10.0", "0.10.1"),
    ("Qwen3VLForConditionalGeneration", "0.10.2", "0.11.0"),
    ("MiniMaxM2ForCausalLM", "0.11.0", "0.11.1"),
    ("TeleChatForCausalLM", "0.11.2", "0.12.0"),
    ("BagelForConditionalGeneration", "0.12.0", "0.13.0"),
    ("MiMoV2FlashForCausalLM", "0.13.0", "0.14.0"),
    ("ColQwen3", "0.16.0", "0.17.0"),
    ("JinaForRanking", "0.19.1", "0.20.0"),
    ("UltraVBertModel", "0.33.0", "0.34.0"),
)


@pytest.mark.parametrize("architecture, before, first", LATE)
def test_a_release_before_the_registry_lists_it_refuses_it(architecture, before, first):
    refusal = architecture_refusal(architecture, before)
    assert refusal.reason == (f"Model architectures ['{architecture}'] are not supported for now (vLLM's registry "
                              f"lists them from v{first} on; vllm=={before} is older).")
    assert refusal.field == "engine" and refusal.options == (f"vllm=={first}",) and refusal.onward == "newer"
    assert architecture_refusal(architecture, first) is None


def test_names_left_out_of_the_table():
    """InternVL's HF name: 0.10.1's _normalize_arch already maps it to InternVLChatModel (registry.py 0.10.1:577-601,
    InternVLChatModel listed); QuantMixtral: vLLM's own alias; Medusa / MLPSpeculator: speculative heads; SmolLM3:
    _TRANSFORMERS_SUPPORTED_MODELS (0.10.1:276); BertModel: encoder-only, refused in every release."""
    for name in ("InternVLForConditionalGeneration", "QuantMixtralForCausalLM", "MedusaModel",
                 "MLPSpeculatorPreTrainedModel", "SmolLM3ForCausalLM", "BertModel"):
        assert name not in ADDED_ARCHITECTURES, name


# (architecture, releases that list it, releases that do not, the remedy's release and direction)
UNLISTED = (
    ("ExaoneMoEForCausalLM", ("0.14.0", "0.26.0", "0.32.0", "0.34.0"), ("0.27.0", "0.29.0", "0.31.0"),
     ("vllm==0.32.0", "newer")),
    ("ChatGLMForConditionalGeneration", ("0.2.4", "0.7.2", "0.8.4"), ("0.7.3", "0.8.0", "0.8.3"),
     ("vllm==0.8.4", "newer")),
    ("Llama4ForCausalLM", ("0.8.3", "0.10.1"), ("0.8.4", "0.9.2", "0.10.0"), ("vllm==0.10.1", "newer")),
    ("VoxtralStreamingGeneration", ("0.14.0", "0.15.1"), ("0.16.0", "0.34.0"), ("vllm==0.15.1", "older")),
)


@pytest.mark.parametrize("architecture, listed, unlisted, remedy", UNLISTED)
def test_a_release_that_drops_an_architecture_refuses_it(architecture, listed, unlisted, remedy):
    assert all(architecture_refusal(architecture, v) is None for v in listed)
    for version in unlisted:
        refusal = architecture_refusal(architecture, version)
        assert refusal.reason.startswith(f"Model architectures ['{architecture}'] are not supported for now")
        assert (refusal.options[0], refusal.onward) == remedy


def test_the_gap_is_said_in_the_refusal():
    assert architecture_refusal("ExaoneMoEForCausalLM", "0.27.0").reason == (
        "Model architectures ['ExaoneMoEForCausalLM'] are not supported for now (vLLM's registry lists them up to "
        "v0.26.0 and again from v0.32.0; vllm==0.27.0 does not).")
    assert architecture_refusal("ExaoneMoEForCausalLM", "0.13.0").options == ("vllm==0.14.0",)  # before its first


def test_a_minor_series_takes_its_first_release():
    """--engine vllm==0.8 is 0.8.0, whose registry lists Gemma 3 (registry.py 0.8.0:166); 0.11 is 0.11.0, which lacks
    MiniMaxM2 (0.11.1:137); Falcon's RWForCausalLM is served up to 0.28.0 (registry.py 0.28.0:205)."""
    assert architecture_refusal("Gemma3ForConditionalGeneration", "0.8") is None
    assert architecture_refusal("MiniMaxM2ForCausalLM", "0.11") is not None
    assert architecture_refusal("RWForCausalLM", "0.28") is None


def test_the_post_release_name_is_the_remedy_and_a_boundary():
    from kvplan.engines.vllm_remedy import release_boundaries

    assert "0.2.1.post1" in release_boundaries() and "0.2.1" not in release_boundaries()


def _plan(*args) -> dict:
    r = run_kvplan("estimate", *args, "--format", "json")
    assert r.returncode in (0, 1), r.stderr
    (plan,) = json.loads(r.stdout)["plans"]
    return plan


def test_bundled_minimax_m2_is_refused_before_0_11_1():
    """MiniMax-M2.7 (MiniMaxM2ForCausalLM): planned under 0.11.0's rules before; refused now, remedy 0.11.1."""
    refused = _plan("MiniMaxAI/MiniMax-M2.7", "--gpu", "H200", "-tp", "8", "--engine", "vllm==0.11.0")
    assert not refused["engine"]["starts"]
    assert refused["engine"]["refusal"]["remedy"] == "it starts with --engine vllm==0.11.1 or newer"
    assert _plan("MiniMaxAI/MiniMax-M2.7", "--gpu", "H200", "-tp", "8", "--engine", "vllm==0.11.1")["engine"]["starts"]


def test_bundled_qwen3_is_refused_before_0_8_4():
    refused = _plan("Qwen/Qwen3-14B", "--gpu", "H100", "--engine", "vllm==0.5.0")
    assert refused["engine"]["refusal"]["reason"].startswith("Model architectures ['Qwen3ForCausalLM'] are not "
                                                             "supported for now")
    assert refused["engine"]["refusal"]["remedy"] == "it starts with --engine vllm==0.8.4 or newer"


# --block-size: (release, the choices read by hand, a value it refuses)
BLOCKS = (
    ("0.2.0", (8, 16, 32), 64),
    ("0.3.3", (8, 16, 32, 128), 64),
    ("0.4.1", (8, 16, 32), 128),
    ("0.5.5", (8, 16, 32, 128, 256, 512, 1024, 2048), 64),
    ("0.6.0", (8, 16, 32), 128),
    ("0.6.4", (8, 16, 32, 64, 128), 256),
    ("0.6.5", (8, 16, 32), 64),
    ("0.8.4", (8, 16, 32, 64, 128), 1),
    ("0.8.5", (1, 8, 16, 32, 64, 128), 256),
    ("0.11.0", (1, 8, 16, 32, 64, 128), 256),
    ("0.11.1", (1, 8, 16, 32, 64, 128, 256), 2048),
    ("0.17.1", (1, 8, 16, 32, 64, 128, 256), 512),
)


@pytest.mark.parametrize("release, choices, refused", BLOCKS)
def test_block_size_choices_by_release(release, choices, refused):
    from kvplan.engines.vllm_versions import block_size_choices

    assert block_size_choices(release) == choices
    line = one_error_line(run_kvplan("estimate", "Qwen/Qwen2.5-7B-Instruct", "--gpu", "H100", "--engine",
                                     f"vllm=={release}", "--block-size", refused))
    assert line == (f"kvplan: error: --block-size {refused} is not a choice of vLLM {release}; it takes "
                    f"{', '.join(map(str, choices))}.")


def test_block_size_takes_any_power_of_two_from_0_18():
    from kvplan.engines.vllm_versions import block_size_choices

    assert block_size_choices("0.18.0") is None and block_size_choices("0.34.0") is None
    assert _plan("Qwen/Qwen2.5-7B-Instruct", "--gpu", "H100", "--engine", "vllm==0.18.0", "--block-size",
                 "2048")["engine"]["starts"]


def test_the_engine_checks_the_block_and_passes_its_default():
    from kvplan.engines import get_engine
    from kvplan.errors import FieldError

    with pytest.raises(FieldError) as caught:
        get_engine("vllm==0.14.1").check_block_size(2048)
    assert caught.value.field == "block_size"
    get_engine("vllm==0.14.1").check_block_size(None)  # vLLM's default passes
    get_engine("vllm==0.34.0").check_block_size(4096)


def test_check_refuses_a_deployment_block_its_release_does_not_list(tmp_path):
    path = deployments_file(tmp_path, """  - name: q
    model: Qwen/Qwen2.5-7B-Instruct
    gpu: H100
    tp: 1
    context: 4096
    block_size: 512
    engine: vllm==0.14.1
""")
    line = one_error_line(run_kvplan("check", "--file", path))
    assert line.endswith(":7: deployment 'q' field 'block_size' 512 is not a choice of vLLM 0.14.1; it takes 1, 8, 16, "
                         "32, 64, 128, 256.")


def test_a_remedy_release_keeps_the_block_it_is_given():
    """Falcon-7B under 0.29.0 at --block-size 512: 0.28.0 serves RWForCausalLM (registry.py 0.28.0:205) and takes any
    block, but 0.17.1 and older list none above 256, so "0.28.0 or older" no longer holds: the run is 0.18.0 up to
    0.29.0."""
    refusal = _plan("tiiuae/falcon-7b", "--gpu", "H100", "--engine", "vllm==0.29.0", "--block-size", "512",
                    )["engine"]["refusal"]
    assert refusal["remedy"] == "it starts with --engine vllm==0.28.0 (any release from 0.18.0 before 0.29.0)"
    assert refusal["remedy_range"] == {"from": "0.18.0", "before": "0.29.0"}
