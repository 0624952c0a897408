"""Session 54 (g4all): a two-sided sliding window as transformers' config classes rewrite it, and the prefill chunks
estimate bounds at the batched tokens the plans use (a multimodal prefix-LM's raised default included).

Read by hand:
- transformers 5.5.0 (Gemma 4's first release; 5.4.0 has no models/gemma4) configuration_gemma4.py:178-179,
  5.22.2 :186-188, 5.25.0 :181-183: `if self.use_bidirectional_attention == "all": ... self.sliding_window =
  (self.sliding_window // 2) + 1`; the same in configuration_gemma4_unified.py:153-155 and
  configuration_diffusion_gemma.py:106-108 (5.22.2). Gemma3TextConfig from 4.57.0 (configuration_gemma3.py:228-229;
  5.22.2 :102-103): `if use_bidirectional_attention:` (a bool), the same rewrite; its default window 4,096.
- vLLM 0.34.0 models/gemma4.py:473 and gemma3.py:155: per_layer_sliding_window=config.sliding_window, the rewritten
  attribute (0.34.0 pins transformers >= 5.16.1, < 5.23.0: requirements/common.txt:11).
- vLLM 0.34.0 v1/kv_cache_interface.py:930 (a request keeps its last sliding_window - 1 tokens readable) and
  :955-958 (one block more, as the window may not start at a block edge): cdiv(W - 1, block) + 1 blocks a sequence.
- vLLM engine/arg_utils.py (0.32.0:3147-3162): the L4's default 2,048 batched tokens raised for Gemma 4 31B (a
  prefix LM) to one 32-frame video, 32 x (70 + 2 + 6) = 2,496 (gemma4_mm.py:250-275).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from tests.conftest import load_yaml, one_error_line, run_kvplan
from kvplan.model.config import Config
from kvplan.model.kinds import SlidingWindow
from kvplan.model.parse import parse_config

ROOT = Path(__file__).resolve().parents[1]
KIB = 1024


def _bundled(model: str) -> dict:
    return copy.deepcopy(load_yaml((ROOT / "model_specs" / (model.replace("/", "--") + ".yaml")).read_text())
                         ["config"])


def _with_flag(model: str, value) -> dict:
    config = _bundled(model)
    config["text_config"]["use_bidirectional_attention"] = value
    return config


def _windows(config: dict) -> set:
    return {layer.sliding_window for layer in parse_config(config, "t").layers if isinstance(layer, SlidingWindow)}


@pytest.mark.parametrize("value, window", [(None, 512), ("vision", 512), ("all", 257), (True, 512)])
def test_e4b_window_halves_only_for_all(value, window):
    """512 // 2 + 1 = 257 under "all"; null, "vision" and a bool (which transformers' Literal refuses) keep 512."""
    assert _windows(_with_flag("google/gemma-4-E4B-it", value)) == {window}


def test_the_31b_window_of_1024_reads_513():
    assert _windows(_with_flag("google/gemma-4-31B-it", "all")) == {1024 // 2 + 1} == {513}


def test_the_note_says_what_the_file_said():
    spec = parse_config(_with_flag("google/gemma-4-E4B-it", "all"), "t")
    (note,) = [n for n in spec.notes if n.startswith("sliding_window")]
    assert note.startswith("sliding_window 512 reads as 257: with use_bidirectional_attention \"all\"")
    assert not [n for n in parse_config(_bundled("google/gemma-4-E4B-it"), "t").notes if "reads as" in n]


@pytest.mark.parametrize("fields, window", [
    ({"model_type": "gemma3_text", "use_bidirectional_attention": True, "sliding_window": 512}, 257),
    ({"model_type": "gemma3_text", "use_bidirectional_attention": True}, 2049),  # the class default 4,096
    ({"model_type": "gemma3_text", "use_bidirectional_attention": False, "sliding_window": 512}, 512),
    ({"model_type": "gemma4_unified_text", "use_bidirectional_attention": "all", "sliding_window": 1024}, 513),
    ({"model_type": "diffusion_gemma_text", "use_bidirectional_attention": "all", "sliding_window": 512}, 257),
    ({"model_type": "gemma4_unified_text", "use_bidirectional_attention": "vision", "sliding_window": 1024}, 1024),
    ({"model_type": "llama", "use_bidirectional_attention": "all", "sliding_window": 512}, 512),  # no such class
])
def test_each_family_rewrites_on_its_own_value(fields, window):
    assert Config(fields, "t").int("sliding_window") == window


def test_e4b_holds_16_fewer_blocks_a_sliding_layer(tmp_path):
    """At 32,768 tokens: 4 full layers of 2 KV heads x 512 dims (K and V, bf16: 4 KiB a token) hold every token;
    20 sliding layers of 2 x 256 (2 KiB a token) hold cdiv(W - 1, 16) + 1 blocks of 16: 33 at W 512, 17 at 257."""
    full = 4 * 32768 * 4 * KIB  # 536,870,912
    per_sequence = {}
    for value in (None, "all"):
        folder = tmp_path / str(value)
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps(_with_flag("google/gemma-4-E4B-it", value)))
        r = run_kvplan("estimate", str(folder), "-c", "32768", "--format", "json")
        assert r.returncode == 0, r.stderr
        per_sequence[value] = json.loads(r.stdout)["plans"][0]["kv_bytes_per_sequence_per_gpu"]
    assert per_sequence[None] == full + 20 * 33 * 16 * 2 * KIB == 558_497_792
    assert per_sequence["all"] == full + 20 * 17 * 16 * 2 * KIB == 548_012_032


# ---- the prefill chunks estimate bounds ---------------------------------------------------------------------------

L4_TP8 = ("google/gemma-4-31B-it", "--gpu", "L4", "--tp", "8")
# its default prompt, one token short of the length (0.17+ keeps room for an output token), is 2,048 x 32,768 + 1
# tokens: 32,769 chunks of the L4's 2,048, one past the 32,768 kvplan prices
LONG = str(2048 * 32768 + 2)


def test_the_raised_default_chunks_a_prompt_the_gpu_default_would_not():
    """Before: refused at 32,769 chunks of 2,048; vLLM chunks by 2,496 here: cdiv(67,108,865, 2,496) = 26,887."""
    r = run_kvplan("estimate", *L4_TP8, "-c", LONG, "--format", "json")
    assert r.returncode == 0, r.stderr
    (plan,) = json.loads(r.stdout)["plans"]
    assert plan["engine"]["max_num_batched_tokens"] == 2496
    assert (plan["prefill"]["chunk_tokens"], plan["prefill"]["chunks"]) == (2496, 26887)


@pytest.mark.parametrize("flags", [("--language-model-only",), ("--max-num-batched-tokens", "2048")])
def test_without_the_raise_the_bound_stays_at_2048(flags):
    """A text-only deployment (0.27+) is no prefix LM, and a given value is taken as given: 2,048 a chunk."""
    line = one_error_line(run_kvplan("estimate", *L4_TP8, "-c", LONG, *flags))
    assert "2,048) splits the prompts of this run into 32,769 prefill chunks" in line  # the flag or the default


def test_an_engine_without_defaults_bounds_at_its_own_8192():
    """--engine none prices prefill in chunks of 8,192 (plan.py) on any GPU: 2^40 tokens are 2^27 chunks on an L4,
    not the 2^29 of vLLM's L4 default of 2,048."""
    line = one_error_line(run_kvplan("estimate", "meta-llama/Llama-3.1-8B", "--engine", "none", "--gpu", "L4",
                                     "--context", str(2**40)))
    assert "(kvplan's default here, 8,192) splits the prompts of this run into 134,217,728 prefill chunks" in line
