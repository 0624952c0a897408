"""Session 55 vLLM-rule gaps (rules): rejection_sample_method by release; Gemma 4 E-series max_soft_tokens; the
is_causal readers of qwen3_next and openpangu; release remedies past encoder-only releases; the registry's line
before the encoder-only one. Expectations are read by hand from the vLLM sources cited in each test
(/tmp/s52/sd/vllm-X.Y.Z/vllm)."""

import json

import pytest

from tests.conftest import load_yaml, one_error_line, run_kvplan

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"


def _ngram(**extra) -> str:
    return json.dumps({"method": "ngram", "num_speculative_tokens": 2, **extra})


# 1. rejection_sample_method

@pytest.mark.parametrize("release, method", [("0.32.0", "standard"), ("0.32.0", "synthetic"), ("0.32.0", "block"),
                                             ("0.33.0", "fly"), ("0.34.0", "fly"), ("0.34.0", "block")])
def test_rejection_methods_each_release_types(release, method):
    """RejectionSampleMethod = Literal["standard", "synthetic", "block"] (0.32.0 config/speculative.py:84); 0.33.0
    :83 and 0.34.0 :98 add "fly"."""
    out = run_kvplan("estimate", LLAMA, "-c", "4096", "--engine", f"vllm=={release}",
                     "--speculative-config", _ngram(rejection_sample_method=method))
    assert out.returncode == 0, out.stderr


def test_fly_is_refused_before_0_33():
    """0.32.0 config/speculative.py:84 has no "fly": pydantic refuses the value."""
    line = one_error_line(run_kvplan("estimate", LLAMA, "-c", "4096", "--engine", "vllm==0.32.0",
                                     "--speculative-config", _ngram(rejection_sample_method="fly")))
    assert line == ("kvplan: error: --speculative-config rejection_sample_method must be one of 'standard', "
                    "'synthetic', 'block' in vllm==0.32.0, got 'fly'.")


def test_the_pre_0_21_names_are_refused():
    """"strict" was 0.18.0-0.20.2's name (0.20.0 config/speculative.py:66); 0.34.0 :98 lists four others."""
    line = one_error_line(run_kvplan("estimate", LLAMA, "-c", "4096", "--engine", "vllm==0.34.0",
                                     "--speculative-config", _ngram(rejection_sample_method="strict")))
    assert line == ("kvplan: error: --speculative-config rejection_sample_method must be one of 'standard', "
                    "'synthetic', 'block', 'fly' in vllm==0.34.0, got 'strict'.")


def test_fly_needs_two_draft_tokens():
    """0.34.0 config/speculative.py:1706-1709 (0.33.0 :2020-2023): "FLy requires num_speculative_tokens to be at
    least 2."""
    config = json.dumps({"method": "ngram", "num_speculative_tokens": 1, "rejection_sample_method": "fly"})
    line = one_error_line(run_kvplan("estimate", LLAMA, "-c", "4096", "--engine", "vllm==0.34.0",
                                     "--speculative-config", config))
    assert "rejection_sample_method 'fly' needs num_speculative_tokens 2 or more in vllm==0.34.0, got 1" in line


def test_fly_window_size_is_a_field_from_0_33():
    """fly_window_size: 0.33.0 config/speculative.py:652; 0.32.0 has no such field and forbids extras
    (config/utils.py:71)."""
    config = _ngram(rejection_sample_method="standard", fly_window_size=1)
    line = one_error_line(run_kvplan("estimate", LLAMA, "-c", "4096", "--engine", "vllm==0.32.0",
                                     "--speculative-config", config))
    assert "names fly_window_size, which vllm==0.32.0's SpeculativeConfig does not have (from 0.33)" in line
    assert run_kvplan("estimate", LLAMA, "-c", "4096", "--engine", "vllm==0.33.0", "--speculative-config",
                      _ngram(rejection_sample_method="fly", fly_window_size=1)).returncode == 0


# 2. Gemma 4 E-series max_soft_tokens

E4B = "google/gemma-4-E4B-it"  # bundled; its text_config sets no use_bidirectional_attention: no prefix LM
BAD_SOFT = ("--mm-processor-kwargs", '{"max_soft_tokens": 100}')
SOFT_LINE = ("kvplan: error: --mm-processor-kwargs max_soft_tokens must be one of 70, 140, 280, 560, 1120 for Gemma 4: "
             "vLLM's processor raises \"Unsupported max_soft_tokens value: 100\" on every media item, got 100.")


@pytest.mark.parametrize("release", ["0.19.0", "0.20.0", "0.32.0", "0.34.0"])
def test_e_series_bad_soft_tokens_are_refused_from_0_19(release):
    """gemma4_mm.py registers Gemma4MultiModalProcessor on Gemma4ForConditionalGeneration (0.32.0:1008-1012) whatever
    use_bidirectional_attention says (only :1165 reads it, for the attention mask); _call_hf_processor refuses a
    value outside (70, 140, 280, 560, 1120) (0.32.0:598-604 ValueError, 0.20.0:488-499; 0.19.0:474-488 sys.exit(1)),
    and the profile run's dummy item meets it (0.32.0 v1/worker/gpu/model_runner.py:991-1001,
    multimodal/encoder_budget.py:193-217)."""
    line = one_error_line(run_kvplan("estimate", E4B, "--gpu", "H100", "-c", "8192", "--engine", f"vllm=={release}",
                                     *BAD_SOFT))
    assert line == SOFT_LINE


def test_e_series_good_soft_tokens_start():
    """280 is one of _SUPPORTED_SOFT_TOKENS (gemma4_mm.py 0.32.0:102)."""
    out = run_kvplan("estimate", E4B, "--gpu", "H100", "-c", "8192", "--mm-processor-kwargs",
                     '{"max_soft_tokens": 280}')
    assert out.returncode == 0, out.stderr


def test_before_0_19_the_registry_refuses_gemma_4_first():
    """0.18.0's registry.py has no Gemma4ForConditionalGeneration (0.19.0:385 first): ModelConfig refuses the
    architecture before any processor runs, for the E-series and the 31B prefix LM alike. No release starts it:
    every release that lists the class refuses 100 (gemma4_mm.py 0.19.0:474-488 sys.exit(1); 0.20.0:488-499,
    0.32.0:598-604 ValueError), so the remedy names the nearest that clears the registry and what then stops it
    (session 58)."""
    for model in (E4B, "google/gemma-4-31B-it"):
        out = run_kvplan("estimate", model, "--gpu", "H100", "-c", "8192", "--engine", "vllm==0.18.0", *BAD_SOFT)
        assert out.returncode == 0, out.stderr
        text = _flat(out.stdout)
        assert "Model architectures ['Gemma4ForConditionalGeneration'] are not supported for now" in text
        assert "it starts with" not in text
        assert ("older); --engine vllm==0.19.0 clears this, but then: mm_processor_kwargs max_soft_tokens must be one "
                "of 70, 140, 280, 560, 1120 for Gemma 4.") in text


def test_before_0_19_a_supported_value_gets_the_release():
    """280 is one of _SUPPORTED_SOFT_TOKENS (gemma4_mm.py 0.32.0:102), so 0.19.0 on serve it."""
    out = run_kvplan("estimate", E4B, "--gpu", "H100", "-c", "8192", "--engine", "vllm==0.18.0",
                     "--mm-processor-kwargs", '{"max_soft_tokens": 280}')
    assert "it starts with --engine vllm==0.19.0 or newer." in _flat(out.stdout)


def test_e_series_taking_no_media_starts():
    """No dummy item where no modality is taken (0.32.0 encoder_budget.py:198-199); the E4B checkpoint's audio tower
    (the bundled spec's audio_config) adds audio to the modalities (gemma4_mm.py has_audio 0.32.0:225-226,
    get_supported_mm_limits :243-248), so shutting images and videos is not enough: the dummy audio item meets the
    check (:598-604)."""
    for args in (("--language-model-only",), ("--limit-mm-per-prompt", '{"image": 0, "video": 0, "audio": 0}')):
        out = run_kvplan("estimate", E4B, *args, "--gpu", "H100", "-c", "8192", *BAD_SOFT)
        assert out.returncode == 0, (args, out.stderr)
    line = one_error_line(run_kvplan("estimate", E4B, "--limit-mm-per-prompt", '{"image": 0, "video": 0}',
                                     "--gpu", "H100", "-c", "8192", *BAD_SOFT))
    assert line == SOFT_LINE


# 3. is_causal in qwen3_next.py and openpangu.py

# openPangu-Embedded-7B's config.json fields (FreedomIntelligence/openPangu-Embedded-7B-V1.1, as a public test quotes
# them), is_causal added
PANGU = {"architectures": ["PanguEmbeddedForCausalLM"], "model_type": "PanguEmbedded", "bias": True,
         "hidden_act": "silu", "hidden_size": 4096, "intermediate_size": 12800, "max_position_embeddings": 32768,
         "num_attention_heads": 32, "num_hidden_layers": 34, "num_key_value_heads": 8, "rms_norm_eps": 1e-05,
         "rope_theta": 16000000.0, "tie_word_embeddings": False, "torch_dtype": "bfloat16", "vocab_size": 153376}


def _bundled(model: str) -> dict:
    from tests.conftest import ROOT

    return load_yaml((ROOT / "model_specs" / (model.replace("/", "--") + ".yaml")).read_text())["config"]


def _estimate(tmp_path, config: dict, release: str):
    (tmp_path / "config.json").write_text(json.dumps(config))
    return run_kvplan("estimate", tmp_path, "-c", "8192", "--gpu", "H100", "--engine", f"vllm=={release}")


@pytest.mark.parametrize("release", ["0.11.1", "0.32.0", "0.34.0"])
def test_pangu_embedded_with_is_causal_false_is_encoder_only(tmp_path, release):
    """OpenPanguDecoderLayer picks AttentionType.ENCODER_ONLY when getattr(config, "is_causal", True) is false
    (openpangu.py 0.11.1:595-602, 0.34.0:859-866); registered from 0.11.1 (registry.py 0.11.1:153)."""
    line = one_error_line(_estimate(tmp_path, {**PANGU, "is_causal": False}, release))
    assert line == (f"kvplan: error: {tmp_path} (PanguEmbeddedForCausalLM) is an encoder-only model: vLLM {release} "
                    f"builds no KV cache for it, so there is nothing for kvplan to size.")


def test_pangu_embedded_stays_causal_without_the_switch(tmp_path):
    assert _estimate(tmp_path, PANGU, "0.34.0").returncode == 0
    assert _estimate(tmp_path, {**PANGU, "is_causal": True}, "0.34.0").returncode == 0


def test_pangu_before_0_11_1_gets_the_registry_line(tmp_path):
    """0.11.0's registry.py has no PanguEmbeddedForCausalLM."""
    out = _estimate(tmp_path, {**PANGU, "is_causal": False}, "0.11.0")
    assert out.returncode == 0, out.stderr
    assert "Model architectures ['PanguEmbeddedForCausalLM'] are not supported for now" in out.stdout


def test_qwen3_next_full_attention_is_encoder_only_from_0_24(tmp_path):
    """Qwen3NextAttention: AttentionType.ENCODER_ONLY where is_causal is false (qwen3_next.py 0.24.0:271-279, 0.34.0
    :353-359); 0.23.0's has no such line. Its gated-DeltaNet layers keep their state, so the refusal says so."""
    config = {**_bundled("Qwen/Qwen3-Next-80B-A3B-Thinking"), "is_causal": False}
    assert _estimate(tmp_path, config, "0.23.0").returncode == 0
    line = one_error_line(_estimate(tmp_path, config, "0.24.0"))
    assert line == (f"kvplan: error: {tmp_path} (Qwen3NextForCausalLM) has its attention layers built encoder-only "
                    f"by vLLM 0.24.0, with no KV cache, while its linear-attention layers keep their state: kvplan "
                    f"does not model that layout, so it refuses rather than mis-size the cache.")


def test_qwen3_5_reads_the_switch_from_its_text_config(tmp_path):
    """Qwen3_5DecoderLayer hands Qwen3NextAttention hf_text_config (qwen3_5.py 0.24.0:132, 0.34.0:132): the
    text_config's is_causal counts, an outer one does not reach it."""
    inner = _bundled("Qwen/Qwen3.5-27B")
    inner["text_config"] = {**inner["text_config"], "is_causal": False}
    assert "has its attention layers built encoder-only by vLLM 0.34.0" in one_error_line(
        _estimate(tmp_path, inner, "0.34.0"))
    outer = {**_bundled("Qwen/Qwen3.5-27B"), "is_causal": False}
    assert _estimate(tmp_path, outer, "0.34.0").returncode == 0


# 4. a release remedy skips the releases that build the model encoder-only

TINY = {"model_type": "llama", "hidden_size": 1024, "intermediate_size": 2048, "num_hidden_layers": 4,
        "num_attention_heads": 8, "num_key_value_heads": 2, "vocab_size": 1000, "max_position_embeddings": 4096,
        "torch_dtype": "bfloat16"}
JINA_V5 = {**TINY, "architectures": ["JinaEmbeddingsV5Model"], "model_type": "qwen3", "head_dim": 128,
           "is_decoder": False}


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_the_registry_remedy_stops_before_the_encoder_only_releases(tmp_path):
    """JinaEmbeddingsV5Model: registered from 0.20.0 (registry.py 0.20.0:233), built encoder-only where is_decoder is
    false from 0.27.0 (models/config.py 0.27.0:477-493; 0.20-0.26 build it a causal Qwen3). Asked at 0.19.0, the
    registry refuses it; 0.20.0 starts, but not every newer release does (0.27.0 on: no cache to size), so the
    remedy names the run of releases that start, any from 0.20.0 before 0.27.0, not "0.20.0 or newer" (session 58)."""
    (tmp_path / "config.json").write_text(json.dumps(JINA_V5))
    out = run_kvplan("estimate", tmp_path, "-c", "2048", "--gpu", "H100", "--engine", "vllm==0.19.0")
    assert out.returncode == 0, out.stderr
    text = _flat(out.stdout)
    assert "it starts with --engine vllm==0.20.0 (any release from 0.20.0 before 0.27.0)." in text
    assert "or newer" not in text


def test_the_remedy_still_says_or_newer_where_every_newer_release_is_causal(tmp_path):
    """The same config with is_decoder true (the decoder variant, models/config.py 0.27.0:477-493 leaves is_causal
    alone): every release from 0.20.0 builds it with a cache."""
    (tmp_path / "config.json").write_text(json.dumps({**JINA_V5, "is_decoder": True}))
    out = run_kvplan("estimate", tmp_path, "-c", "2048", "--gpu", "H100", "--engine", "vllm==0.19.0")
    assert "it starts with --engine vllm==0.20.0 or newer." in _flat(out.stdout)


# 5. the registry's refusal before the encoder-only one

@pytest.mark.parametrize("architecture, first, before", [("Ministral3ForCausalLM", "0.20.0", "0.19.1"),
                                                          ("TeleChat3ForCausalLM", "0.20.0", "0.19.1"),
                                                          ("IQuestCoderForCausalLM", "0.14.0", "0.13.0")])
def test_an_unregistered_release_says_the_registry_line(tmp_path, architecture, first, before):
    """registry.py 0.20.0:166 (Ministral3ForCausalLM), :214 (TeleChat3ForCausalLM), 0.14.0:134
    (IQuestCoderForCausalLM); none in 0.19.1's or 0.13.0's. _raise_for_unsupported refuses the architecture while
    ModelConfig reads the config, before llama.py / mistral.py build any layer (0.32.0 registry.py:1186-1209)."""
    (tmp_path / "config.json").write_text(json.dumps({**TINY, "architectures": [architecture], "is_causal": False}))
    out = run_kvplan("estimate", tmp_path, "-c", "2048", "--gpu", "H100", "--engine", f"vllm=={before}")
    assert out.returncode == 0, out.stderr
    text = _flat(out.stdout)
    assert (f"Model architectures ['{architecture}'] are not supported for now (vLLM's registry lists them from "
            f"v{first} on; vllm=={before} is older)") in text
    assert "it starts with" not in text  # every release that lists it builds it encoder-only (task 4)
    line = one_error_line(run_kvplan("estimate", tmp_path, "-c", "2048", "--gpu", "H100", "--engine",
                                     f"vllm=={first}"))
    assert f"({architecture}) is an encoder-only model: vLLM {first} builds no KV cache" in line


def test_engine_none_names_the_first_release_that_serves_it(tmp_path):
    """TeleChat3's Llama module reads is_causal from 0.11.0 (llama.py 0.11.0:275), but 0.20.0 first serves it."""
    (tmp_path / "config.json").write_text(json.dumps({**TINY, "architectures": ["TeleChat3ForCausalLM"],
                                                      "is_causal": False}))
    line = one_error_line(run_kvplan("estimate", tmp_path, "-c", "2048", "--gpu", "H100", "--engine", "none"))
    assert "is an encoder-only model: vLLM (from 0.20.0) builds no KV cache for it" in line


def test_qwen3_5_causal_lm_is_refused_by_the_registry_before_0_27(tmp_path):
    """Qwen3_5ForCausalLM: registry.py 0.27.0:201 (absent from 0.26.0's), though Qwen3NextAttention reads is_causal
    from 0.24.0: 0.26.0 says the registry's line, with no release to offer (0.27.0 on builds it encoder-only)."""
    config = {**_bundled("Qwen/Qwen3.5-27B")["text_config"], "architectures": ["Qwen3_5ForCausalLM"],
              "is_causal": False}
    out = _estimate(tmp_path, config, "0.26.0")
    assert out.returncode == 0, out.stderr
    text = _flat(out.stdout)
    assert "Model architectures ['Qwen3_5ForCausalLM'] are not supported for now" in text
    assert "it starts with" not in text
    assert "built encoder-only by vLLM 0.27.0" in one_error_line(_estimate(tmp_path, config, "0.27.0"))


# review fixes: PanguEmbedded's MLA and sink attention (openpangu.py OpenPanguDecoderLayer)

PANGU_MLA = {"qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128, "kv_lora_rank": 512}


@pytest.mark.parametrize("release", ["0.11.1", "0.13.0", "0.34.0"])
def test_pangu_with_every_mla_key_stays_causal(tmp_path, release):
    """use_mla = hasattr of all four MLA keys (openpangu.py 0.11.1:564-569, 0.34.0:790-795); OpenPanguMLAAttention
    (0.11.1:251-400) reads no is_causal, so is_causal false leaves it causal, with a cache."""
    out = _estimate(tmp_path, {**PANGU, **PANGU_MLA, "is_causal": False}, release)
    assert out.returncode == 0, out.stderr


def test_pangu_with_three_mla_keys_is_encoder_only(tmp_path):
    """Without v_head_dim hasattr fails (0.34.0:790-795): the GQA branch reads is_causal (0.34.0:859-866)."""
    config = {**PANGU, **PANGU_MLA, "is_causal": False}
    del config["v_head_dim"]
    assert "is an encoder-only model: vLLM 0.34.0 builds no KV cache" in one_error_line(
        _estimate(tmp_path, config, "0.34.0"))


SINK_LINE = "building the model raises \"is_causal=False is not support for attention with sink\"."


@pytest.mark.parametrize("release", ["0.14.0", "0.34.0"])
def test_pangu_sink_attention_refuses_is_causal_false(tmp_path, release):
    """param_sink_number > 0 builds OpenPanguSinkAttention (0.14.0:832-834, :852; 0.34.0:796-798, :816), which raises
    ValueError(f"is_causal={config.is_causal} is not support for attention with sink") (0.14.0:859-866, 0.34.0
    :822-829)."""
    line = one_error_line(_estimate(tmp_path, {**PANGU, "param_sink_number": 128, "is_causal": False}, release))
    assert line == (f"kvplan: error: {tmp_path} (PanguEmbeddedForCausalLM) does not start on vLLM {release}: "
                    + SINK_LINE)


def test_pangu_sink_before_0_14_is_encoder_only(tmp_path):
    """0.13.0's openpangu.py has no sink attention (no param_sink_number read): the GQA branch builds it encoder-only
    (0.13.0:588-591)."""
    line = one_error_line(_estimate(tmp_path, {**PANGU, "param_sink_number": 128, "is_causal": False}, "0.13.0"))
    assert "is an encoder-only model: vLLM 0.13.0 builds no KV cache" in line


def test_pangu_sink_with_engine_none_and_causal(tmp_path):
    config = {**PANGU, "param_sink_number": 128, "is_causal": False}
    (tmp_path / "config.json").write_text(json.dumps(config))
    line = one_error_line(run_kvplan("estimate", tmp_path, "-c", "8192", "--gpu", "H100", "--engine", "none"))
    assert line.endswith("does not start on vLLM (from 0.14.0): " + SINK_LINE)
    # a causal sink attention builds (0.34.0:823-824): no refusal of kvplan's
    assert _estimate(tmp_path, {**config, "is_causal": True}, "0.34.0").returncode == 0
    # MLA comes first (0.34.0:799 `if self.use_mla`), sinks or not
    assert _estimate(tmp_path, {**config, **PANGU_MLA}, "0.34.0").returncode == 0


def test_pangu_remedy_names_no_release(tmp_path):
    """Asked at 0.11.0 (no PanguEmbeddedForCausalLM in its registry), a sink config with is_causal false gets no
    release that starts it: 0.11.1-0.13.x build it encoder-only, 0.14.0 on raise; the remedy says the nearest that
    clears the registry and what then stops it (session 58)."""
    (tmp_path / "config.json").write_text(json.dumps({**PANGU, "param_sink_number": 128, "is_causal": False}))
    out = run_kvplan("estimate", tmp_path, "-c", "8192", "--gpu", "H100", "--engine", "vllm==0.11.0")
    assert out.returncode == 0, out.stderr
    text = _flat(out.stdout)
    assert "it starts with" not in text
    assert "older); --engine vllm==0.11.1 clears this, but then: " in text
    assert "(PanguEmbeddedForCausalLM) is an encoder-only model." in text


# review fixes: FLy's fields (config/speculative.py 0.33.0, 0.34.0)

def _fly(tokens: int = 4, **extra) -> str:
    return json.dumps({"method": "ngram", "num_speculative_tokens": tokens, "rejection_sample_method": "fly",
                       **extra})


def _spec_line(release: str, config: str) -> str:
    return one_error_line(run_kvplan("estimate", LLAMA, "-c", "4096", "--engine", f"vllm=={release}",
                                     "--speculative-config", config))


@pytest.mark.parametrize("release", ["0.33.0", "0.34.0"])
@pytest.mark.parametrize("window", [4, 5])
def test_fly_window_must_be_below_the_draft_tokens(release, window):
    """"FLy requires fly_window_size to be smaller than num_speculative_tokens." (0.33.0 config/speculative.py
    :2026-2029, 0.34.0 :1712-1715): 4 or 5 with 4 draft tokens is refused, 3 starts."""
    line = _spec_line(release, _fly(4, fly_window_size=window))
    assert line.endswith(f"fly_window_size must be smaller than num_speculative_tokens (4) for "
                         f"rejection_sample_method 'fly' in vllm=={release}, got {window}.")
    out = run_kvplan("estimate", LLAMA, "-c", "4096", "--engine", f"vllm=={release}", "--speculative-config",
                     _fly(4, fly_window_size=3))
    assert out.returncode == 0, out.stderr


def test_fly_window_is_only_checked_for_fly():
    """The window check sits under `if self.rejection_sample_method == "fly"` (0.34.0 :1700-1715): "standard"
    takes any window of 1 or more."""
    out = run_kvplan("estimate", LLAMA, "-c", "4096", "--engine", "vllm==0.34.0", "--speculative-config",
                     _ngram(rejection_sample_method="standard", fly_window_size=9))
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("key, value, least, kind", [("fly_window_size", 0, 1, "a whole number"),
                                                     ("fly_entropy_top_k", 0, 1, "a whole number"),
                                                     ("fly_entropy_threshold", -0.5, 0, "a number"),
                                                     ("fly_window_size", 1.5, 1, "a whole number")])
def test_fly_fields_bounds(key, value, least, kind):
    """Field(ge=1) on fly_window_size (0.34.0 :704; 0.33.0 :652), ge=0 on fly_entropy_threshold (:708; :656), ge=1
    on fly_entropy_top_k (:711; :659)."""
    line = _spec_line("0.34.0", _fly(4, **{key: value}))
    assert line.endswith(f"{key} must be {kind}, {least} or more, got {value}.")


def test_fly_fields_in_range_start():
    """0 is ge=0 for the threshold (:708); a null window takes min(6, k - 1) (0.34.0 :1710-1711)."""
    out = run_kvplan("estimate", LLAMA, "-c", "4096", "--engine", "vllm==0.34.0", "--speculative-config",
                     _fly(4, fly_window_size=None, fly_entropy_threshold=0, fly_entropy_top_k=1))
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("key", ["fly_entropy_threshold", "fly_entropy_top_k"])
def test_fly_entropy_fields_from_0_33(key):
    """0.33.0 config/speculative.py:656, :659; 0.32.0 has neither and forbids extras (config/utils.py:71)."""
    line = _spec_line("0.32.0", _ngram(**{key: 1}))
    assert f"names {key}, which vllm==0.32.0's SpeculativeConfig does not have (from 0.33)" in line


# review fixes: ColQwen3.5's retrieval_attention_contract (models/config.py ColQwen3_5Config)

def _colqwen(outer=None, inner=None) -> dict:
    """The bundled Qwen3.5-9B config as a ColQwen3_5 checkpoint (colqwen3_5.py 0.34.0:112-115: a
    Qwen3_5ForConditionalGeneration), the contract on the outer config and / or its text_config."""
    config = _bundled("Qwen/Qwen3.5-9B")
    config["architectures"] = ["ColQwen3_5"]
    if outer is not None:
        config["retrieval_attention_contract"] = outer
    if inner is not None:
        config["text_config"] = {**config["text_config"], "retrieval_attention_contract": inner}
    return config


@pytest.mark.parametrize("outer, inner", [("bidirectional", None), (None, "bidirectional"),
                                          ("bidirectional", "bidirectional")])
@pytest.mark.parametrize("release", ["0.27.0", "0.34.0"])
def test_colqwen_bidirectional_is_encoder_only_from_0_27(tmp_path, release, outer, inner):
    """ColQwen3_5Config: is_causal = declarations[0] == "causal" on hf_config and hf_text_config (models/config.py
    0.27.0:873-875, 0.34.0:1446-1448); Qwen3NextAttention then builds the full-attention layers ENCODER_ONLY
    (qwen3_next.py 0.27.0:295-298) while the gated-DeltaNet layers keep their state."""
    line = one_error_line(_estimate(tmp_path, _colqwen(outer, inner), release))
    assert f"(ColQwen3_5) has its attention layers built encoder-only by vLLM {release}" in line


@pytest.mark.parametrize("release", ["0.27.0", "0.34.0"])
def test_colqwen_causal_contract_keeps_its_cache(tmp_path, release):
    """"causal" sets is_causal true (0.34.0:1446): the value, not its truth, decides."""
    assert _estimate(tmp_path, _colqwen("causal", "causal"), release).returncode == 0


@pytest.mark.parametrize("release", ["0.19.0", "0.24.0", "0.26.0"])
def test_colqwen_before_0_27_is_causal(tmp_path, release):
    """0.19-0.23 read no is_causal (qwen3_next.py); 0.24.0-0.26 set hf_config.is_causal only (models/config.py
    0.24.0:639-641), which the nested text_config the layers read (qwen3_5.py 0.24.0:132 hf_text_config) never
    gets."""
    assert _estimate(tmp_path, _colqwen("bidirectional", "bidirectional"), release).returncode == 0


def test_colqwen_registered_from_0_19(tmp_path):
    """registry.py 0.19.0:279 lists ColQwen3_5 (0.18.1's does not); 0.27.0 on build it encoder-only
    (models/config.py 0.27.0:855-862 reads its contract; 0.26.0's has no handler), so the remedy names any release
    from 0.19.0 before 0.27.0."""
    out = _estimate(tmp_path, _colqwen("bidirectional"), "0.18.0")
    assert out.returncode == 0, out.stderr
    text = _flat(out.stdout)
    assert ("Model architectures ['ColQwen3_5'] are not supported for now (vLLM's registry lists them from v0.19.0"
            in text)
    assert "it starts with --engine vllm==0.19.0 (any release from 0.19.0 before 0.27.0)." in text


@pytest.mark.parametrize("outer, inner, said", [
    (None, None, "ColQwen3.5 checkpoints must declare retrieval_attention_contract as 'causal' or 'bidirectional'"),
    ("causal", "bidirectional", "unsupported or conflicting ColQwen3.5 retrieval_attention_contract declarations: "
                                "['causal', 'bidirectional']"),
    ("full", None, "unsupported or conflicting ColQwen3.5 retrieval_attention_contract declarations: ['full']")])
def test_colqwen_contract_refusals(tmp_path, outer, inner, said):
    """models/config.py 0.34.0:1424-1445 (0.27.0:851-872): no declaration, a value outside {"causal",
    "bidirectional"}, or two that differ raise ValueError; 0.26.0's handler (0.24.0:639-641 the same) reads none."""
    line = one_error_line(_estimate(tmp_path, _colqwen(outer, inner), "0.34.0"))
    assert line == (f"kvplan: error: {tmp_path} (ColQwen3_5) does not start on vLLM 0.34.0: building the model "
                    f"raises \"{said}\".")
    assert _estimate(tmp_path, _colqwen(outer, inner), "0.26.0").returncode == 0


def test_switched_on_equality_case():
    from kvplan.model.unmodelled import switched_on

    switch = ("retrieval_attention_contract", "bidirectional")
    assert switched_on(switch, {"retrieval_attention_contract": "bidirectional"}.get)
    assert not switched_on(switch, {"retrieval_attention_contract": "causal"}.get)
    assert not switched_on(switch, {}.get)
    assert switched_on(("use_bidirectional_attention", True), {"use_bidirectional_attention": 1}.get)
