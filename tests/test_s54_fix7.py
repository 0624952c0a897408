"""Session 54 fix7: the media-item refusal's --limit-mm-per-prompt remedy keeps the user's limits; Gemma 4's
--mm-processor-kwargs max_soft_tokens sizes an image; an offline cache lacking a settings file; a Gemma 4 Unified
text_config holding only its model_type; a settings file holding null.

vLLM read by hand (sdists in /tmp/s52/sd):
- gemma4_mm.py get_mm_max_tokens_per_item (0.32.0:250-275): image = vision_config.default_output_length (280 in the
  31B's config) unless _get_max_soft_tokens gives an int in _SUPPORTED_SOFT_TOKENS = (70, 140, 280, 560, 1120)
  (:102, :259-261); video = min(32, --limit-mm-per-prompt video num_frames) x (70 + 2 + 6); audio =
  processor.audio_seq_length (750, transformers Gemma4Processor). 0.21.0:238-242 reads max_soft_tokens the same way;
  0.20.0:225-230 does not (image always the config's).
- gemma4_mm.py _get_max_soft_tokens (0.32.0:107-119): the flat key unless None, else images_kwargs'.
  context.py _resolve_mm_processor_kwargs (0.32.0:97-114; absent from 0.31.0) drops a flat key any
  mapping-valued scope holds, so images_kwargs' value wins there from 0.32.0.
- gemma4_mm.py _call_hf_processor (0.32.0:598-604, 0.20.0:488-499): a max_soft_tokens not None and outside the five
  raises ValueError("Unsupported max_soft_tokens value: ...").
- encoder_cache_manager.py compute_mm_encoder_budget (0.32.0:335-354): max item > max_num_batched_tokens refuses
  start-up; only modalities with a limit above 0 count (encoder_budget.py 0.32.0:73-91).
- transformers 5.22.2 configuration_gemma4_unified.py Gemma4UnifiedTextConfig: num_hidden_layers default 30.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path


from tests.conftest import estimate_plan, load_yaml, one_error_line, run_hub, run_kvplan

ROOT = Path(__file__).resolve().parents[1]
DENSE = "google/gemma-4-31B-it"
FRAME = 70 + 2 + 6  # one video frame's tokens, by hand
AUDIO = 750


def _plan(*args) -> dict:
    return estimate_plan(*args)


def _refusal(*args):
    return _plan(*args)["engine"]["refusal"]


def _with_audio(write_config):
    config = copy.deepcopy(load_yaml((ROOT / "model_specs" / (DENSE.replace("/", "--") + ".yaml")).read_text())
                           ["config"])
    config["audio_config"] = {"model_type": "gemma4_audio"}
    return write_config(config)


def _limit_said(remedy: str) -> str:
    """The first --limit-mm-per-prompt value the remedy says, unquoted."""
    match = re.search(r"--limit-mm-per-prompt ('[^']*'|\S+)", remedy)
    return match.group(1).strip("'")


# ---- 1: the limit said keeps the user's own ------------------------------------------------------------------------

def test_the_limit_said_keeps_video_frames_and_count(write_config):
    """4 frames x 78 = 312 video tokens, the 750-token audio clip past 700: shutting audio alone must keep the
    video's count 1 and num_frames 4, else vLLM's 32 frames (2,496) are refused again."""
    path = _with_audio(write_config)
    args = (path, "--gpu", "H100", "-c", "8192", "--max-num-batched-tokens", "700")
    refusal = _refusal(*args, "--limit-mm-per-prompt", '{"video": {"count": 1, "num_frames": 4}}')
    assert "max_tokens_per_mm_item (750)" in refusal["reason"]
    said = _limit_said(refusal["remedy"])
    assert said == '{"audio": 0, "video": {"count": 1, "num_frames": 4}}'
    assert f"(its largest item then {4 * FRAME} tokens)" in refusal["remedy"]
    assert _plan(*args, "--limit-mm-per-prompt", said)["engine"]["refusal"] is None  # applied: it starts


def test_the_limit_said_keeps_the_image_count_and_form(write_config):
    """image=2 given in the key=value form: the video (2,496) and the clip (750) past 700 are shut, the image count
    kept, said as JSON (vLLM 0.11-0.34 parses the flag with json.loads, arg_utils.py 0.32.0:412-414); applied, the
    280-token image fits."""
    path = _with_audio(write_config)
    args = (path, "--gpu", "H100", "-c", "8192", "--max-num-batched-tokens", "700")
    refusal = _refusal(*args, "--limit-mm-per-prompt", "image=2")
    assert "max_tokens_per_mm_item (2496)" in refusal["reason"]
    said = _limit_said(refusal["remedy"])
    assert said == '{"image": 2, "audio": 0, "video": 0}'
    assert "(its largest item then 280 tokens)" in refusal["remedy"]
    assert _plan(*args, "--limit-mm-per-prompt", said)["engine"]["refusal"] is None


def test_fewer_frames_keep_the_other_limits(write_config):
    """Only the video past 700 (audio shut, image=2): 700 // 78 = 8 frames, said with image 2 and audio 0 kept."""
    path = _with_audio(write_config)
    args = (path, "--gpu", "H100", "-c", "8192", "--max-num-batched-tokens", "700")
    refusal = _refusal(*args, "--limit-mm-per-prompt", '{"image": 2, "audio": 0}')
    assert '\'{"image": 2, "audio": 0, "video": {"num_frames": 8}}\' (8 frames of 78 tokens)' in refusal["remedy"]
    assert _plan(*args, "--limit-mm-per-prompt", '{"image": 2, "audio": 0, "video": {"num_frames": 8}}'
                 )["engine"]["refusal"] is None


# ---- 2: max_soft_tokens ---------------------------------------------------------------------------------------------

IMAGES_ONLY = (DENSE, "--gpu", "H100", "-c", "8192", "--limit-mm-per-prompt", "video=0")


def test_max_soft_tokens_70_fits_256_batched_tokens():
    """70 <= 256: starts (280 > 256 without it is refused); vLLM 0.20.0 ignores the key, so refused there."""
    batched = ("--max-num-batched-tokens", "256")
    assert "max_tokens_per_mm_item (280)" in _refusal(*IMAGES_ONLY, *batched)["reason"]
    assert _refusal(*IMAGES_ONLY, *batched, "--mm-processor-kwargs", '{"max_soft_tokens": 70}') is None
    assert _refusal(*IMAGES_ONLY, *batched, "--mm-processor-kwargs", '{"images_kwargs": {"max_soft_tokens": 70}}') \
        is None
    old = _refusal(*IMAGES_ONLY, *batched, "--mm-processor-kwargs", '{"max_soft_tokens": 70}', "--engine",
                   "vllm==0.20.0")
    assert "max_tokens_per_mm_item (280)" in old["reason"]


def test_max_soft_tokens_1120_past_1000_batched_tokens_is_refused():
    """1120 > 1000: refused (the config's 280 would start)."""
    batched = ("--max-num-batched-tokens", "1000")
    assert _refusal(*IMAGES_ONLY, *batched) is None
    refusal = _refusal(*IMAGES_ONLY, *batched, "--mm-processor-kwargs", '{"max_soft_tokens": 1120}')
    assert "max_tokens_per_mm_item (1120) is larger than max_num_batched_tokens (1000)" in refusal["reason"]


def test_the_scoped_value_wins_from_0_32():
    """Flat 1120 and images_kwargs 70 at 256 batched tokens: 0.32.0 drops the flat key (70 fits); 0.31.0 reads the
    flat one first (1120 refused)."""
    both = ("--max-num-batched-tokens", "256", "--mm-processor-kwargs",
            '{"max_soft_tokens": 1120, "images_kwargs": {"max_soft_tokens": 70}}')
    assert _refusal(*IMAGES_ONLY, *both, "--engine", "vllm==0.32.0") is None
    assert "max_tokens_per_mm_item (1120)" in _refusal(*IMAGES_ONLY, *both, "--engine", "vllm==0.31.0")["reason"]


def test_an_unsupported_max_soft_tokens_is_refused():
    line = one_error_line(run_kvplan("estimate", *IMAGES_ONLY, "--mm-processor-kwargs", '{"max_soft_tokens": 100}'))
    assert "max_soft_tokens must be one of 70, 140, 280, 560, 1120" in line and "got 100" in line


# ---- 3: offline, a settings file the cache lacks --------------------------------------------------------------------

def test_offline_cache_without_the_settings_file(tmp_path):
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "cache" / "models--acme--tiny"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "snapshots" / commit / "config.json").write_text(json.dumps(
        {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 1024, "intermediate_size": 2816,
         "num_hidden_layers": 4, "num_attention_heads": 16, "num_key_value_heads": 16, "vocab_size": 32000,
         "max_position_embeddings": 4096, "torch_dtype": "float16"}))
    env = {"HF_HUB_CACHE": str(tmp_path / "cache"), "HF_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1",
           "KVPLAN_HUB_TIMEOUT": ""}
    r = run_hub("estimate", "acme/tiny", "-q", "gptq", env=env)
    assert r.returncode == 2, r.stderr
    assert "the Hugging Face cache holds no quantize_config.json" in r.stderr and "HF_HUB_OFFLINE is set" in r.stderr
    assert "lies beside" not in r.stderr


# ---- 4: a Gemma 4 Unified text_config of its model_type alone -------------------------------------------------------

def test_unified_text_config_of_model_type_only(write_config):
    """transformers fills num_hidden_layers = 30 (Gemma4UnifiedTextConfig's default)."""
    path = write_config({"architectures": ["Gemma4UnifiedForConditionalGeneration"], "model_type": "gemma4_unified",
                         "text_config": {"model_type": "gemma4_unified_text"},
                         "vision_config": {"model_type": "gemma4_unified_vision", "num_soft_tokens": 280}})
    r = run_kvplan("estimate", path, "--gpu", "H100", "-c", "8192", "--format", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["model"]["num_hidden_layers"] == 30


# ---- 5: a settings file holding null --------------------------------------------------------------------------------

def test_a_null_settings_file_says_null_and_its_folder(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(
        {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 1024, "intermediate_size": 2816,
         "num_hidden_layers": 4, "num_attention_heads": 16, "num_key_value_heads": 16, "vocab_size": 32000,
         "max_position_embeddings": 4096, "torch_dtype": "float16"}))
    (tmp_path / "quantize_config.json").write_text("null")
    line = one_error_line(run_kvplan("estimate", tmp_path, "-q", "gptq"))
    assert f"quantize_config.json in {tmp_path} must be a JSON object" in line and line.endswith("got null.")
