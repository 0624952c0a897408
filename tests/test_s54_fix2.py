"""A multimodal prefix-LM's media item bigger than max_num_batched_tokens stops vLLM's start-up; Gemma 4 Unified
configs without use_bidirectional_attention are prefix LMs; respelling keeps paths and vLLM's own setting; the raise's
note says the cap.

vLLM read by hand (0.32.0 unless named; sdists of 0.19.0 ... 0.34.0):
- platforms/cuda.py:333-343: a multimodal prefix-LM model gets disable_chunked_mm_input forced ("Forcing
  --disable_chunked_mm_input ..."), the same block in 0.20.0:226-236 and 0.34.0; platforms/rocm.py has it from
  0.30.0 (:949-959), not in 0.29.0.
- v1/core/encoder_cache_manager.py:335-354 compute_mm_encoder_budget: no item -> (0, 0); else with chunked MM input
  disabled, max(items) > max_num_batched_tokens raises ValueError("Chunked MM input disabled but
  max_tokens_per_mm_item ({item}) is larger than max_num_batched_tokens ({batched}). Please increase
  max_num_batched_tokens."); the same text in 0.20.0:288-307 and 0.34.0:348-367.
- multimodal/encoder_budget.py:73-91: the items are those of modalities whose limit is above 0; the budget is built
  only where the model takes media (v1/engine/input_processor.py:68-72; config/model.py:912-957: every limit 0 or
  --language-model-only is text-only).
- Gemma 4 is a prefix LM from 0.20.0 (transformers_utils/model_arch_config_convertor.py 0.20.0:478-483
  Gemma4ModelArchConfigConvertor); 0.19.0's config/model.py:1195-1208 lists bagel, gemma3, molmo2, paligemma only.
- gemma4_mm.py get_mm_max_tokens_per_item: image default_output_length (280 in the 31B's config), video
  32 x (70 + 2 + 6) = 2,496; --limit-mm-per-prompt's video num_frames lowers the frames from 0.21.0 (:249-256), not
  in 0.20.0 (:215-229, 32 frames always). So num_frames 8 is 8 x 78 = 624 tokens from 0.21.0.
- engine/arg_utils.py get_batch_defaults: 2,048 below 70 GiB (L4), 8,192 on an H100; from 0.22.0 the prefix-LM raise
  to the largest item (:3147-3162) before the cap max_num_seqs x max_model_len (:3165-3168): on an L4 at 1,200 tokens
  and 2 sequences, min(2 x 1200, max(2048, 2496)) = 2,400 < 2,496.
- transformers 5.25.0 models/gemma4_unified/configuration_gemma4_unified.py:146 Gemma4UnifiedTextConfig
  use_bidirectional_attention = "vision" (5.22.2: :147); Gemma4TextConfig's is None (configuration_gemma4.py:169).
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from tests.conftest import estimate_plan, load_yaml, one_error_line, run_kvplan

ROOT = Path(__file__).resolve().parents[1]
DENSE = "google/gemma-4-31B-it"
VIDEO = 32 * (70 + 2 + 6)  # 2,496
REFUSAL = ("Chunked MM input disabled but max_tokens_per_mm_item ({item}) is larger than max_num_batched_tokens "
           "({batched}). Please increase max_num_batched_tokens.")
L4_TP4 = (DENSE, "--gpu", "L4", "--tp", "4")
H100_2048 = (DENSE, "--gpu", "H100", "-c", "8192", "--max-num-batched-tokens", "2048")


def _plan(*args) -> dict:
    return estimate_plan(*args)


def _refusal(*args):
    return _plan(*args)["engine"]["refusal"]


def _config() -> dict:
    return copy.deepcopy(load_yaml((ROOT / "model_specs" / (DENSE.replace("/", "--") + ".yaml")).read_text())
                         ["config"])


def test_0_21_on_four_l4s_is_refused_and_0_22_raises_its_default_past_the_item():
    """Before: kvplan started it at 2,048 batched tokens; vLLM 0.21.0 has no raise and refuses the 2,496-token
    video."""
    refusal = _refusal(*L4_TP4, "-c", "8192", "--engine", "vllm==0.21.0")
    assert refusal["reason"] == REFUSAL.format(item=VIDEO, batched=2048)
    assert refusal["configuration"] and refusal["field"] == "max_num_batched_tokens"
    remedy = refusal["remedy"]
    assert remedy.startswith(f"vLLM accepts --max-num-batched-tokens {VIDEO} or more")
    assert "--limit-mm-per-prompt '{\"video\": 0}' (its largest item then 280 tokens)" in remedy
    # 2048 // 78 = 26 frames (26 x 78 = 2,028; 27 x 78 = 2,106)
    assert "--limit-mm-per-prompt '{\"video\": {\"num_frames\": 26}}' (26 frames of 78 tokens)" in remedy
    assert remedy.endswith("--engine vllm==0.22.0 or later (whose default is raised to the item)")
    later = _plan(*L4_TP4, "-c", "8192", "--engine", "vllm==0.22.0")
    assert later["engine"]["refusal"] is None and later["engine"]["max_num_batched_tokens"] == VIDEO


@pytest.mark.parametrize("engine,refused", [("vllm==0.19.0", False), ("vllm==0.20.0", True),
                                            ("vllm==0.27.0", True), ("vllm==0.34.0", True)])
def test_a_given_2048_is_refused_from_0_20(engine, refused):
    refusal = _refusal(*H100_2048, "--engine", engine)
    assert (refusal["reason"] if refusal else None) == (REFUSAL.format(item=VIDEO, batched=2048) if refused else None)


def test_the_cap_under_the_item_is_refused_and_its_note_says_the_cap():
    """max_num_seqs x max_model_len = 2 x 1200 = 2400 caps the raised 2,496: refused; ceil(2496 / 1200) = 3
    sequences lift the cap past the item."""
    args = (*L4_TP4, "-c", "1200", "--max-num-seqs", "2")
    refusal = _refusal(*args)
    assert refusal["reason"] == REFUSAL.format(item=VIDEO, batched=2400)
    assert "(30 frames of 78 tokens)" in refusal["remedy"]  # 2400 // 78 = 30
    assert refusal["remedy"].endswith("--max-num-seqs 3 or more (vLLM caps its default at --max-num-seqs x "
                                      "--max-model-len, 2 x 1200 = 2400 here)")
    assert _refusal(*L4_TP4, "-c", "1200", "--max-num-seqs", "3") is None
    plan = _plan(*args, "--limit-mm-per-prompt", "video=0")  # the image, 280 tokens, fits: it starts at 2,400
    assert plan["engine"]["max_num_batched_tokens"] == 2400 and plan["engine"]["refusal"] is None
    peak = next(t for t in plan["budget"]["terms"] if t["name"] == "profile_peak")["source"]
    assert ("forward over 2400 tokens (vLLM raises it from 2048 to 2496 to accommodate 'video' input for a "
            "prefix-LM model, then caps it at max_num_seqs x max_model_len)") in peak


@pytest.mark.parametrize("flags", [("--limit-mm-per-prompt", "video=0"), ("--language-model-only",),
                                   ("--limit-mm-per-prompt", "image=0,video=0")])
@pytest.mark.parametrize("engine", ["vllm==0.20.0", "vllm==0.26.0", "vllm==0.27.0", "vllm"])
def test_no_video_or_no_media_starts(flags, engine):
    """video 0: the largest item is an image's 280 tokens; no media at all: no budget is built, in every release."""
    assert _refusal(*H100_2048, "--engine", engine, *flags) is None


def test_num_frames_lowers_the_item_from_0_21():
    frames = ("--limit-mm-per-prompt", '{"video": {"num_frames": 8}}')
    assert _refusal(*H100_2048, "--engine", "vllm==0.21.0", *frames) is None  # 8 x 78 = 624
    assert _refusal(*H100_2048, "--engine", "vllm==0.20.0", *frames)["reason"] == REFUSAL.format(item=VIDEO,
                                                                                                   batched=2048)


def test_rocm_forces_it_from_0_30():
    mi300 = (DENSE, "--gpu", "MI300X", "-c", "8192", "--max-num-batched-tokens", "2048")
    assert _refusal(*mi300, "--engine", "vllm==0.29.0") is None
    assert _refusal(*mi300, "--engine", "vllm==0.30.0")["reason"] == REFUSAL.format(item=VIDEO, batched=2048)


def test_the_largest_taken_item_with_an_audio_tower(write_config):
    """With audio_config the processor adds a 750-token clip (transformers Gemma4Processor audio_seq_length):
    videos shut and 512 batched tokens, the clip is refused, and the limit said keeps the video at 0."""
    config = _config()
    config["audio_config"] = {"model_type": "gemma4_audio"}
    path = write_config(config)
    refusal = _refusal(path, "--gpu", "H100", "-c", "8192", "--max-num-batched-tokens", "512",
                       "--limit-mm-per-prompt", "video=0")
    assert refusal["reason"] == REFUSAL.format(item=750, batched=512)
    # said as JSON whatever form was given (vLLM parses the flag with json.loads), image, audio, video in vLLM's order
    said = "--limit-mm-per-prompt '{\"audio\": 0, \"video\": 0}' (its largest item then 280 tokens)"
    assert said in refusal["remedy"]
    nothing = _refusal(path, "--gpu", "H100", "-c", "8192", "--max-num-batched-tokens", "256",
                       "--limit-mm-per-prompt", "video=0,audio=0")  # the 280-token image past 256: nothing left
    assert nothing["reason"] == REFUSAL.format(item=280, batched=256)
    assert "--language-model-only (no media at all)" in nothing["remedy"]


def test_a_deployments_file_and_the_api_name_their_own_fields(tmp_path):
    import kvplan

    path = tmp_path / "deployments.yaml"
    path.write_text("deployments:\n  - name: g4\n    model: google/gemma-4-31B-it\n    tp: 4\n    gpu: L4\n"
                    "    context: 1200\n    max_num_seqs: 2\n")
    r = run_kvplan("check", "--file", path)
    text = " ".join(r.stdout.split())
    assert r.returncode == 1 and "vLLM 0.32.0 does not start: Chunked MM input disabled" in text
    assert "vLLM accepts max_num_batched_tokens 2496 or more" in text
    assert "or max_num_seqs 3 or more (vLLM caps its default at max_num_seqs x context, 2 x 1200" in text
    (plan,) = kvplan.estimate(DENSE, gpu="L4", tensor_parallel_size=4, max_model_len=1200, max_num_seqs=2)
    assert "or max_num_seqs 3 or more (vLLM caps its default at max_num_seqs x max_model_len" in \
        plan.engine.refusal.remedy


def test_the_floor_and_the_refusal_read_one_item(monkeypatch):
    """Both ask vllm_media_floor.item_tokens: a change there moves the raise and the refusal together."""
    from kvplan.engines import vllm_media_floor

    monkeypatch.setattr(vllm_media_floor, "item_tokens", lambda spec, version, flags: {"image": 280, "video": 3000})
    assert _plan(*L4_TP4, "-c", "8192")["engine"]["max_num_batched_tokens"] == 3000
    assert _refusal(*H100_2048)["reason"] == REFUSAL.format(item=3000, batched=2048)


def test_unified_without_the_key_is_a_prefix_lm(write_config):
    """Gemma4UnifiedTextConfig defaults use_bidirectional_attention to "vision": the L4's 2,048 is raised to the
    video (gemma4_unified.py, 0.23.0 on, reads vision_config.num_soft_tokens for the image)."""
    config = _unified()
    assert "use_bidirectional_attention" not in config["text_config"]
    tp8 = ("--gpu", "L4", "--tp", "8", "-c", "2048")
    assert _plan(write_config(config), *tp8)["engine"]["max_num_batched_tokens"] == VIDEO
    config["text_config"]["use_bidirectional_attention"] = None  # set null: causal, no raise
    assert _plan(write_config(config, "null.json"), *tp8)["engine"]["max_num_batched_tokens"] == 2048


def _unified() -> dict:
    """The 31B's config as Gemma4UnifiedForConditionalGeneration, use_bidirectional_attention left out."""
    config = _config()
    config["architectures"] = ["Gemma4UnifiedForConditionalGeneration"]
    config["model_type"] = "gemma4_unified"
    config["text_config"]["model_type"] = "gemma4_unified_text"
    config["text_config"].pop("use_bidirectional_attention", None)
    config["vision_config"]["num_soft_tokens"] = 280
    return config


def test_respelling_takes_words_only():
    from kvplan.errors import respelled

    flag = {"max_num_seqs": "--max-num-seqs"}.get
    pairs = (("max_num_seqs", "max_num_seqs"),)
    for kept in ("/data/max_num_seqs/cfg.json", "see max_num_seqs.json", "vLLM's `max_num_seqs` 2", "max_num_seqs_x",
                 "a-max_num_seqs"):
        assert respelled(kept, pairs, flag) == kept
    assert respelled("set max_num_seqs, (max_num_seqs) or max_num_seqs: max_num_seqs.", pairs, flag) == \
        "set --max-num-seqs, (--max-num-seqs) or --max-num-seqs: --max-num-seqs."


def test_an_alias_typed_names_the_other_fields_as_typed():
    """cli/run.py writes a FieldError as exc.spelled(flags.typed(field), flags.typed): each name of
    FieldError.names as the user typed its flag (ALIASES), else vLLM's."""
    from kvplan.cli import flags
    from kvplan.errors import FieldError

    exc = FieldError("tp", "8 leaves context 4096 too long; lower context.", names=("context",))
    saved = list(flags.typed_args)
    try:
        for args, written in ((["-c", "4096", "-tp", "8"], "-c"), (["--context=4096", "--tp", "8"], "--context"),
                              (["--tensor-parallel-size", "8"], "--max-model-len")):
            flags.typed_args[:] = args
            tp = flags.typed("tp")
            assert exc.spelled(tp, flags.typed) == f"{tp} 8 leaves {written} 4096 too long; lower {written}."
    finally:
        flags.typed_args[:] = saved


def test_the_defaulted_limit_is_named_as_vllms_setting():
    """Not given: vLLM's own max_num_batched_tokens is named as vLLM's setting, not as a flag the user passed;
    the remedy names the flags."""
    line = one_error_line(run_kvplan("estimate", *L4_TP4, "-c", "8192", "--max-num-seqs", "3000"))
    assert line == (
        "kvplan: error: --max-num-seqs 3000 is more than vLLM's `max_num_batched_tokens` 2496 (the default here: "
        "vLLM raises it from 2048 to accommodate 'video' input for a prefix-LM model), which vLLM refuses "
        "(\"max_num_batched_tokens (2496) must be greater than or equal to max_num_seqs (3000)\"); set "
        "--max-num-batched-tokens to 3000 or more, or --max-num-seqs to 2496 or less.")


@pytest.mark.parametrize("engine,tokens", [("vllm==0.26.0", VIDEO), ("vllm==0.27.0", 2048)])
def test_language_model_only_at_the_0_27_boundary(engine, tokens):
    """0.27.0 is the first release whose is_mm_prefix_lm takes supports_multimodal (convertor 0.27.0:596-601): a
    text-only deployment is no prefix LM there, so no raise; 0.26.0 raises anyway."""
    plan = _plan(DENSE, "--gpu", "L4", "--tp", "8", "-c", "2048", "--engine", engine, "--language-model-only")
    assert plan["engine"]["max_num_batched_tokens"] == tokens and plan["engine"]["refusal"] is None
