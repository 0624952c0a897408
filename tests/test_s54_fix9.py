"""Session 54 fix9: the dummy rejection pass's draft probabilities; Gemma 4's max_soft_tokens checked only where a
dummy media item meets the processor; an offline cache that knows the repo lacks its settings file (s55: a
marker for the exact name proves nothing of the names vLLM's glob takes; the test now says so).

vLLM read by hand (sdists in /tmp/s52/sd):
- gpu_model_runner.py _dummy_sampler_run, 0.32.0:6005-6016 (0.33.0:5944-5955, "fly" added): with
  rejection_sample_method "standard" and draft_sample_method "probabilistic" the runner makes draft_probs =
  softmax(torch.rand(num_tokens, V, float32)), one draft token a request, and passes it to both rejection-sampler
  calls (:6022-6040): 4 more bytes a request's logit held through the pass priced at 30 (test_s54_fix6).
- gemma4_mm.py _call_hf_processor: 0.32.0:598-604 raises ValueError("Unsupported max_soft_tokens value") before
  any image or video is handled; 0.19.0:474-488 logs and calls sys.exit(1). Only an item the processor handles
  meets it: a deployment taking no media profiles none (0.19.0 gpu_model_runner.py profile_run skips the encoder
  when every limit is 0; --language-model-only builds no budget).
- huggingface_hub 2.4.0 try_to_load_from_cache answers _CACHED_NO_EXIST for a .no_exist/<commit>/<file> marker.
"""

from __future__ import annotations

import json

from tests.conftest import one_error_line, run_hub, run_kvplan
from tests.fake_hub import COMMIT, cached_repo, hub_env

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
VOCAB = 128256
REQUESTS = 1024  # vllm serve's batch default on an H100
HELD = (8192 + REQUESTS) * 4096 * 2  # the forward's hidden states held under the sampler, bf16
H100_ROWS = 132  # the Triton top-k / top-p kernel's float32 rows on 132 SMs


def _profile_peak(*args) -> dict:
    out = run_kvplan("estimate", LLAMA, "-c", "32768", "--gpu", "h100", "--format", "json", *args)
    assert out.returncode == 0, out.stderr
    (row,) = json.loads(out.stdout)["plans"]
    return next(t for t in row["budget"]["terms"] if t["name"] == "profile_peak")


def _suffix(sampling: str, **extra) -> tuple:
    config = {"method": "suffix", "num_speculative_tokens": 3, "draft_sample_method": sampling, **extra}
    return "--speculative-config", json.dumps(config)


# ---- 1: probabilistic draft sampling on V1's rejection pass ------------------------------------------------------

def test_probabilistic_suffix_holds_the_draft_probabilities():
    """1,024 x 128,256 x (30 + 4) + 132 x 128,256 x 4 + (8,192 + 1,024) x 4,096 x 2 = 4,608,577,536 bytes on 0.32.0
    and 0.33.0 (greedy: 30, 4,083,240,960)."""
    probabilistic = REQUESTS * VOCAB * 34 + H100_ROWS * VOCAB * 4 + HELD
    greedy = REQUESTS * VOCAB * 30 + H100_ROWS * VOCAB * 4 + HELD
    assert (probabilistic, greedy) == (4_608_577_536, 4_083_240_960)
    for release in ("0.32.0", "0.33.0"):
        engine = ("--engine", f"vllm=={release}")
        peak = _profile_peak(*engine, *_suffix("probabilistic"))
        assert peak["bytes"] == probabilistic, release
        assert "x 34 B (with the float32 draft probabilities)" in peak["source"]
        assert _profile_peak(*engine, *_suffix("greedy"))["bytes"] == greedy, release


def test_no_draft_probabilities_outside_the_standard_rejection_sampler():
    """rejection_sample_method "synthetic" passes draft_probs None (0.32.0:6006-6009): the 30 bytes stay."""
    peak = _profile_peak("--engine", "vllm==0.32.0", *_suffix("probabilistic", rejection_sample_method="synthetic"))
    assert peak["bytes"] == REQUESTS * VOCAB * 30 + H100_ROWS * VOCAB * 4 + HELD


def test_0_34_suffix_runs_v2_whatever_the_draft_sampling():
    engine = ("--engine", "vllm==0.34.0")
    assert _profile_peak(*engine, *_suffix("probabilistic"))["bytes"] == _profile_peak(*engine, *_suffix("greedy"))[
        "bytes"]


# ---- 2: max_soft_tokens where no media is taken ------------------------------------------------------------------

GEMMA = ("google/gemma-4-31B-it", "--gpu", "H100", "-c", "8192")
BAD = ("--mm-processor-kwargs", '{"max_soft_tokens": 100}')


def test_a_deployment_taking_no_media_starts_with_any_max_soft_tokens():
    for args in (("--limit-mm-per-prompt", '{"image": 0, "video": 0}'), ("--engine", "vllm==0.24.0",
                                                                          "--language-model-only"),
                 ("--engine", "vllm==0.19.0", "--language-model-only")):
        out = run_kvplan("estimate", *GEMMA, *args, *BAD)
        assert out.returncode == 0, (args, out.stderr)


def test_a_deployment_taking_media_is_refused_in_every_release():
    """Images only, videos only (the check precedes the video handling) and 0.19.0 (sys.exit at the dummy item)."""
    for args in (("--limit-mm-per-prompt", '{"video": 0}'), ("--limit-mm-per-prompt", '{"image": 0}'),
                 ("--engine", "vllm==0.19.0")):
        line = one_error_line(run_kvplan("estimate", *GEMMA, *args, *BAD))
        assert "max_soft_tokens must be one of 70, 140, 280, 560, 1120" in line and "got 100" in line, args


# ---- 3: offline, the cache records the settings file missing -----------------------------------------------------

TINY = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 256, "intermediate_size": 512,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 1000,
        "max_position_embeddings": 4096, "torch_dtype": "float16"}


def test_a_no_exist_marker_does_not_prove_the_repo_lacks_a_settings_file(tmp_path):
    """A .no_exist marker records the Hub's 404 for quantize_config.json by that name, but vLLM reads any *.json whose
    name ends so (model_quantize_config.json: weight_utils.py 0.32.0:365-369), which the snapshot may lack: offline
    that is unknown, and said so (s55 sampqfix; before, "no quantize_config.json lies beside its config.json")."""
    cached_repo(tmp_path, "acme/tiny-gptq", {"config.json": TINY})
    marker = tmp_path / "cache" / "models--acme--tiny-gptq" / ".no_exist" / COMMIT
    marker.mkdir(parents=True)
    (marker / "quantize_config.json").touch()
    r = run_hub("estimate", "acme/tiny-gptq", "-q", "gptq", env=hub_env(tmp_path, offline=True))
    assert r.returncode == 2, r.stderr
    assert "the Hugging Face cache holds no quantize_config.json for it, nor a *.json whose name ends so" in r.stderr
    assert "the repo may hold one the cache lacks" in r.stderr and "lies beside" not in r.stderr


def test_awq_offline_names_both_endings(tmp_path):
    """AWQ reads a file ending quant_config.json or quantize_config.json: the error names both."""
    cached_repo(tmp_path, "acme/tiny-awq", {"config.json": TINY})
    r = run_hub("estimate", "acme/tiny-awq", "-q", "awq", env=hub_env(tmp_path, offline=True))
    assert r.returncode == 2 and "the Hugging Face cache holds no quant_config.json or quantize_config.json for it" \
        in r.stderr, r.stderr
