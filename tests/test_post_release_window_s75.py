"""The fix 0.6.3.post1 already has 0.6.4's reading of interleaved attention, read in its wheel (config.py):

    # ModelConfig.__init__, 0.6.3.post1:176-190 (0.6.3 has Gemma 2's own rule there, :176-184)
    sliding_window = getattr(self.hf_text_config, "sliding_window", None)
    has_interleaved_attention = (sliding_window is not None) and (
        isinstance(sliding_window, list) or (self.hf_text_config.model_type in ["gemma2"]))
    if (not self.disable_sliding_window and has_interleaved_attention):
        sliding_window_len_min = get_min_sliding_window(self.hf_text_config.sliding_window)
        print_warning_once(f"{model_type} has interleaved attention, which is currently not supported by vLLM. ...")
        self.disable_sliding_window = True
    # get_min_sliding_window, 0.6.3.post1:1796-1799: min(s for s in sliding_window if s is not None)
    # _get_and_verify_max_len, 0.6.3.post1:1708-1715: the derived length capped to that smallest window

So a list of windows is served there (every layer full, the length its smallest window), not refused as in 0.6.3,
and the remedy search orders a fix after its base (vllm_versions.release_order).

The model: 4 Llama layers, 8 KV heads of 128, bf16: one layer holds 2 x 8 x 128 x 2 = 4,096 bytes a token.
"""

from __future__ import annotations

import json

from conftest import estimate_plan, run_kvplan

from kvplan.engines.figures import Refusal
from kvplan.engines.vllm_remedy import _candidates, release_boundaries

LAYER_TOKEN = 2 * 8 * 128 * 2
LLAMA = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 4,
         "num_attention_heads": 32, "num_key_value_heads": 8, "intermediate_size": 14336, "vocab_size": 32000,
         "max_position_embeddings": 32768, "torch_dtype": "bfloat16", "sliding_window": [4096, None, 1024, None]}
GEMMA2 = {**LLAMA, "architectures": ["Gemma2ForCausalLM"], "model_type": "gemma2", "sliding_window": 4096,
          "head_dim": 256, "num_attention_heads": 16, "max_position_embeddings": 8192}


def _config(tmp_path, body) -> str:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(body))
    return str(path)


def test_0_6_3_post1_turns_a_list_off_and_caps_to_its_smallest(tmp_path):
    plan = estimate_plan(_config(tmp_path, LLAMA), "--gpu", "H100", "--engine", "vllm==0.6.3.post1")
    assert plan["engine"]["starts"]
    assert plan["context"] == 1024  # min(4096, 1024), the nulls skipped
    assert plan["engine"]["blocks_per_request"] == 1024 // 16  # V0, every layer full: 64 blocks of 16
    assert plan["kv_bytes_per_sequence_per_gpu"] == 4 * 1024 * LAYER_TOKEN == 16_777_216


def test_0_6_3_still_crashes_in_the_profile_run(tmp_path):
    # worker/model_runner.py 0.6.3:457-459 adds the block size to the list
    refusal = estimate_plan(_config(tmp_path, LLAMA), "--gpu", "H100", "--engine", "vllm==0.6.3")["engine"]["refusal"]
    assert refusal["reason"] == 'TypeError: can only concatenate list (not "int") to list'


def test_gemma2_on_0_6_3_post1_logs_the_interleaved_words(tmp_path):
    out = run_kvplan("estimate", _config(tmp_path, GEMMA2), "--gpu", "H100", "--engine", "vllm==0.6.3.post1").stdout
    said = " ".join(out.split())
    assert "gemma2 has interleaved attention, which is currently not supported by vLLM" in said
    assert "Gemma 2 uses sliding window attention for every odd layer" not in said


def test_the_remedy_search_names_and_orders_the_fix_after_its_base():
    releases = release_boundaries()
    assert "0.6.3.post1" in releases and releases.index("0.6.3") < releases.index("0.6.3.post1")
    newer = Refusal("r", None, configuration=True, field="engine", options=("vllm==0.6.3.post1",), onward="newer")
    # newer from the fix: not its base, which comes before it
    assert _candidates(newer, ("0.6.3", "0.6.3.post1", "0.6.4")) == ["vllm==0.6.3.post1", "vllm==0.6.4"]
    older = Refusal("r", None, configuration=True, field="engine", options=("vllm==0.6.3",), onward="older")
    assert _candidates(older, ("0.6.2", "0.6.3", "0.6.3.post1")) == ["vllm==0.6.3", "vllm==0.6.2"]
