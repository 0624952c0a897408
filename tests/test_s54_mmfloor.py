"""vLLM raises its own max_num_batched_tokens for a multimodal prefix-LM model (Gemma 4 with
text_config.use_bidirectional_attention "vision") to the largest media item, so more sequences than the GPU's default
batched tokens may start; and the refusal of more sequences than batched tokens names the other limit as the caller
spells it (the command line's flag, a deployments file's key).

vLLM read by hand (0.32.0 unless named):
- engine/arg_utils.py:3136-3170 _set_default_max_num_seqs_and_batched_tokens_args: only where
  max_num_batched_tokens was not given, `if model_config.is_multimodal_model and model_config.is_mm_prefix_lm` the
  default is raised to _get_min_mm_batched_tokens's item (:3065-3095, the largest of get_mm_max_tokens_per_item)
  when larger, then capped at max_num_seqs x max_model_len. The same block is in 0.22.0:2525-2540 and absent from
  0.21.0's arg_utils.py; get_batch_defaults :2943-2951: 2,048 tokens below 70 GiB (an L4), 8,192 on an H100.
- model_executor/models/gemma4_mm.py:250-275 get_mm_max_tokens_per_item: image = vision_config.default_output_length
  (280 in the 31B's config), audio = the processor's audio_seq_length where audio_config is set (750, transformers'
  Gemma4Processor default), video = min(32, num_frames) x (70 + 2 + 6) (_VIDEO_MAX_FRAMES 32, _VIDEO_MAX_SOFT_TOKENS
  70, :103-104): 32 x 78 = 2,496 tokens.
- transformers_utils/model_arch_config_convertor.py:767-774 Gemma4ModelArchConfigConvertor.is_mm_prefix_lm: False
  without multimodal inputs (from 0.27.0; 0.26.0's takes no such argument), else use_bidirectional_attention ==
  "vision"; config/model.py:941-955: every supported modality limited to 0 (or --language-model-only,
  config/multimodal.py get_limit_per_prompt) is text-only.
- config/scheduler.py:328-333: "max_num_batched_tokens (...) must be greater than or equal to max_num_seqs (...)".
- v1/worker/gpu_model_runner.py:516 and :6193-6194: the profile's dummy batch is scheduler_config.
  max_num_batched_tokens, the raised value (SchedulerConfig is built from it after the raise, arg_utils.py:2601-2620).
- vLLM 0.34.0 tests/v1/attention/test_mm_prefix.py:424-425: stock google/gemma-4-E2B-it ships
  use_bidirectional_attention null.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from tests.conftest import load_yaml, one_error_line, run_kvplan

ROOT = Path(__file__).resolve().parents[1]
DENSE, E4B = "google/gemma-4-31B-it", "google/gemma-4-E4B-it"
# the 31B on eight L4s (tp 8) at 2,048 tokens: weights fit, and 2,400 sequences are past the L4's 2,048 default
L4_TP8 = (DENSE, "--gpu", "L4", "--tp", "8", "-c", "2048")
VIDEO = 32 * (70 + 2 + 6)  # 2,496


def _plan(*args) -> dict:
    r = run_kvplan("estimate", *args, "--format", "json")
    assert r.returncode == 0, r.stderr
    (plan,) = json.loads(r.stdout)["plans"]
    return plan


def _batched(*args) -> int:
    return _plan(*args)["engine"]["max_num_batched_tokens"]


def _config() -> dict:
    return copy.deepcopy(load_yaml((ROOT / "model_specs" / (DENSE.replace("/", "--") + ".yaml")).read_text())
                         ["config"])


def test_the_l4_default_is_raised_to_one_video_and_2400_sequences_start():
    """Before: refused ('2400 is more than max_num_batched_tokens 2048'); vLLM starts with 2,496 batched tokens."""
    plan = _plan(*L4_TP8, "--max-num-seqs", "2400")
    assert (plan["engine"]["max_num_batched_tokens"], plan["engine"]["max_num_seqs"]) == (VIDEO, 2400)
    assert plan["engine"]["starts"] and plan["engine"]["refusal"] is None
    assert _batched(*L4_TP8) == VIDEO  # the default 256 sequences: raised as well
    assert _batched(DENSE, "--gpu", "H100", "-c", "2048") == 8192  # already above the item: left as it is


def test_the_raised_default_plans_as_the_same_value_given():
    """vLLM builds one SchedulerConfig from the raised value: the profile's dummy batch, the runner's buffers and the
    sliding layers' in-flight tokens are those of --max-num-batched-tokens 2496 given by hand."""
    raised, given = _plan(*L4_TP8), _plan(*L4_TP8, "--max-num-batched-tokens", str(VIDEO))
    for key in ("kv_budget_bytes_per_gpu", "kv_capacity_tokens", "max_concurrency"):
        assert raised[key] == given[key], key
    assert raised["budget"]["activation_bytes"] == given["budget"]["activation_bytes"]
    assert raised["engine"]["log_lines"] == given["engine"]["log_lines"]
    peak = next(t for t in raised["budget"]["terms"] if t["name"] == "profile_peak")["source"]
    assert f"forward over {VIDEO} tokens (vLLM raises it from 2048 to accommodate 'video' input" in peak
    # what kvplan planned before, which vLLM refuses for the video (tests/test_s54_fix2.py): shut videos to start it
    default = _plan(*L4_TP8, "--max-num-batched-tokens", "2048", "--limit-mm-per-prompt", "video=0")
    assert raised["budget"]["activation_bytes"] > default["budget"]["activation_bytes"]
    assert raised["kv_capacity_tokens"] < default["kv_capacity_tokens"]


def test_past_the_item_is_refused_naming_the_flags_on_the_command_line():
    line = one_error_line(run_kvplan("estimate", *L4_TP8, "--max-num-seqs", "2497"))
    assert line == (
        "kvplan: error: --max-num-seqs 2497 is more than vLLM's `max_num_batched_tokens` 2496 (the default here: "
        "vLLM raises it from 2048 to accommodate 'video' input for a prefix-LM model), which vLLM refuses "
        "(\"max_num_batched_tokens (2496) must be greater than or equal to max_num_seqs (2497)\"); set "
        "--max-num-batched-tokens to 2497 or more, or --max-num-seqs to 2496 or less.")
    check = one_error_line(run_kvplan("check", *L4_TP8, "--max-num-seqs", "2497"))
    assert check == line


def test_a_deployments_file_hears_its_keys(tmp_path):
    path = tmp_path / "deployments.yaml"
    path.write_text("deployments:\n  - name: g4\n    model: google/gemma-4-31B-it\n    tp: 8\n    gpu: L4\n"
                    "    context: 2048\n    max_num_seqs: 2497\n")
    line = one_error_line(run_kvplan("check", "--file", path))
    assert line == (
        f"kvplan: error: {path}:7: deployment 'g4' field 'max_num_seqs' 2497 is more than vLLM's "
        "`max_num_batched_tokens` 2496 (the default here: vLLM raises it from 2048 to accommodate 'video' input for a "
        "prefix-LM model), which vLLM refuses (\"max_num_batched_tokens (2496) must be greater than or equal to "
        "max_num_seqs (2497)\"); set max_num_batched_tokens to 2497 or more, or max_num_seqs to 2496 or less.")


def test_an_aliased_flag_is_named_as_typed_and_the_api_by_its_keywords():
    import kvplan

    line = one_error_line(run_kvplan("estimate", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "H100", "-c", "512",
                                     "--max-num-seqs", "9000"))
    assert "; set --max-num-batched-tokens to 9000 or more, or --max-num-seqs to 8192 or less." in line
    with pytest.raises(kvplan.KvplanError) as caught:
        kvplan.estimate("meta-llama/Llama-3.1-8B-Instruct", gpu="H100", max_model_len=512, max_num_seqs=9000)
    assert str(caught.value).endswith("; set max_num_batched_tokens to 9000 or more, or max_num_seqs to 8192 or less.")


def test_a_value_the_user_gives_is_not_raised():
    """`if orig_max_num_batched_tokens is None`: --max-num-batched-tokens is taken as given."""
    line = one_error_line(run_kvplan("estimate", *L4_TP8, "--max-num-seqs", "2400", "--max-num-batched-tokens",
                                     "2048"))
    assert line.startswith("kvplan: error: --max-num-seqs 2400 is more than --max-num-batched-tokens 2048, which vLLM "
                           "refuses")
    assert _batched(*L4_TP8, "--max-num-batched-tokens", "1024") == 1024


@pytest.mark.parametrize("engine,raised", [("vllm==0.21.0", False), ("vllm==0.22.0", True), ("vllm==0.26.0", True),
                                           ("vllm==0.34.0", True)])
def test_the_raise_is_in_0_22_on(engine, raised):
    assert _batched(*L4_TP8, "--engine", engine) == (VIDEO if raised else 2048)


@pytest.mark.parametrize("flags,engine,tokens", [
    (("--language-model-only",), "vllm", 2048),  # 0.27 on: no media, no prefix LM
    (("--language-model-only",), "vllm==0.26.0", VIDEO),  # is_mm_prefix_lm without the supports_multimodal check
    (("--limit-mm-per-prompt", "image=0,video=0"), "vllm", 2048),  # no audio tower: every modality shut
    (("--limit-mm-per-prompt", "image=0"), "vllm", VIDEO),  # videos still come
    (("--limit-mm-per-prompt", '{"video": {"num_frames": 30}}'), "vllm", 30 * 78),  # 2,340 > 2,048
    (("--limit-mm-per-prompt", '{"video": {"num_frames": 8}}'), "vllm", 2048),  # 8 x 78 = 624: the default stands
])
def test_what_the_deployment_takes_decides_the_item(flags, engine, tokens):
    assert _batched(*L4_TP8, "--engine", engine, *flags) == tokens


def test_the_e_series_is_served_causal():
    """E4B's config sets no use_bidirectional_attention (null in the checkpoints): no raise."""
    assert _batched(E4B, "--gpu", "L4", "-c", "2048") == 2048


def test_the_reader_keeps_what_the_rule_reads(write_config):
    from kvplan.engines import EngineFlags, MediaLimits
    from kvplan.engines.vllm_media_floor import media_floor
    from kvplan.model.parse import parse_config
    from kvplan.model.sources import resolve

    dense = resolve(DENSE)
    assert dense.media_prefix.vision_tokens == (("default_output_length", 280),) and not dense.audio_tower
    assert resolve(E4B).media_prefix is None
    config = _config()
    config["audio_config"] = {"model_type": "gemma4_audio"}
    with_audio = parse_config(config, "with audio")
    four_frames = EngineFlags(mm_limits=MediaLimits(video_frames=4))
    # image 280, audio 750, video 4 x 78 = 312: the audio clip is the largest item
    assert media_floor(with_audio, "0.32.0", four_frames) == (750, "audio")
    # images and videos shut, audio open: still media, still a prefix LM
    assert media_floor(with_audio, "0.32.0", EngineFlags(mm_limits=MediaLimits(image=0, video=0))) == (VIDEO, "video")
    assert media_floor(with_audio, "0.32.0", EngineFlags(mm_limits=MediaLimits(image=0, video=0, audio=0))) == (0, "")
    del config["vision_config"]["default_output_length"]  # vLLM's lookup raises, is caught and logged: no floor
    assert media_floor(parse_config(config, "no image field"), "0.32.0", EngineFlags()) == (0, "")
    config["text_config"]["use_bidirectional_attention"] = None
    assert parse_config(config, "causal").media_prefix is None
    # not a multimodal class (registry.py _TEXT_GENERATION_MODELS): is_multimodal_model is False
    text_class = parse_config(_config() | {"architectures": ["Gemma4ForCausalLM"]}, "text class")
    assert text_class.media_prefix is not None and media_floor(text_class, "0.32.0", EngineFlags()) == (0, "")
    path = write_config(_config())
    assert _batched(path, "--gpu", "L4", "--tp", "8", "-c", "2048") == VIDEO


def test_an_engine_message_in_quotes_keeps_its_own_names():
    from kvplan.errors import FieldError, respelled

    flag = {"max_num_batched_tokens": "--max-num-batched-tokens"}.get
    text = 'max_num_batched_tokens 8 is low ("max_num_batched_tokens (8) must be ..."); raise max_num_batched_tokens.'
    assert respelled(text, (("max_num_batched_tokens", "max_num_batched_tokens"),), flag) == (
        '--max-num-batched-tokens 8 is low ("max_num_batched_tokens (8) must be ..."); raise --max-num-batched-tokens.')
    exc = FieldError("max_num_seqs", "9 needs max_num_batched_tokens_x and max_num_batched_tokens 9.",
                     names=("max_num_batched_tokens",))
    assert exc.spelled("--max-num-seqs", flag) == ("--max-num-seqs 9 needs max_num_batched_tokens_x and "
                                                   "--max-num-batched-tokens 9.")
    assert exc.spelled("max_num_seqs") == str(exc)
