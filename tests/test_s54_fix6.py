"""V1's profile sampler peak by release (kvplan/engines/vllm_profile.py priced_kind, rejection_pass_bytes), from the
tensors vLLM's code allocates, read by hand:
- up to 0.11.0 the 37 bytes a logit fitted on A19 / A20 stay: a pip-installed 0.11.0 has no FlashInfer (setup.py:669
  lists it as an extra only) and falls back to PyTorch's sort (v1/sample/ops/topk_topp_sampler.py:65-70), whose CUDA
  segmented radix sort over >= 128 rows holds 2 + 4 + 4 + 8 + 8 + 4 + 8 = 38 bytes a logit (bf16 logits, float32
  copy, sorted values, int64 order, int64 reverse indices, CUB's third keys / values buffers);
- from 0.21 _dummy_sampler_run samples again with a seeded generator (0.21.0 gpu_model_runner.py:5742-5757), which
  sends FlashInfer's sampler to forward_native and the Triton top-k / top-p (topk_topp_sampler.py:305-315): 2 + 4
  (float32 copy) + 4 (softmax) + 4 (exponential q) bytes a logit and the cached rows, at least FlashInfer's own pass
  (2 + 4 + masked copy 4 + softmax 4: flashinfer-python 0.7.2.post1 sampling.py:1807-1818);
- 0.32 / 0.33 V1 with a drafter (parallel drafting falls back to V1): the rejection sampler's dummy pass
  (gpu_model_runner.py 0.32.0:5995-6040, rejection_sampler.py:140-200, :487, :697-709): random logits [2N, V] bf16 4,
  bonus rows 2, their float32 raw logits 4, target rows float32 4 and a clone 4, softmax 4, q 4 and 1/q 4 = 30 bytes
  a request's logit."""

import json
from pathlib import Path

from conftest import run_kvplan

ROOT = Path(__file__).resolve().parents[1]
LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
VOCAB = 128256
REQUESTS = 1024  # vllm serve's batch default on an H100: 1,024 sequences, 8,192 batched tokens
HELD = (8192 + REQUESTS) * 4096 * 2  # profile_run's output hidden states and their request rows, bf16
H100_ROWS = 132  # min(next power of two of min(132 SMs, 1,024), 132) float32 rows of the Triton kernel


def _profile_peak(*args) -> dict:
    out = run_kvplan("estimate", LLAMA, "-c", "32768", "--gpu", "h100", "--format", "json", *args)
    assert out.returncode == 0, out.stderr
    (row,) = json.loads(out.stdout)["plans"]
    return next(t for t in row["budget"]["terms"] if t["name"] == "profile_peak")


def _eagle3_head(tmp_path) -> str:
    data = json.loads((ROOT / "tests" / "data" / "vllm_speculative_figures.json").read_text())
    case = next(c for c in data["cases"] if (c["inputs"]["speculative_config"] or {}).get("method") == "eagle3")
    path = tmp_path / "eagle3"
    path.mkdir()
    (path / "config.json").write_text(json.dumps(case["inputs"]["draft_config"]))
    return str(path)


def test_0_11_0_keeps_the_fitted_constant():
    """37 x 1,024 x 128,256 = 4,859,363,328 bytes (the fit; the sort's derivation, 38, within its scatter)."""
    peak = _profile_peak("--engine", "vllm==0.11.0")
    assert peak["bytes"] == 37 * REQUESTS * VOCAB == 4_859_363_328
    sort_derived = 38 * REQUESTS * VOCAB  # the CUDA sort's bytes a logit read from the code (module docstring)
    assert 0 < sort_derived - peak["bytes"] < 0.03 * peak["bytes"]  # the fit sits within 3 % below the derivation


def test_0_21_prices_the_seeded_native_pass_like_0_20():
    """0.20 (Triton top-k / top-p by default) and 0.21 (FlashInfer, then the seeded native pass): 1,024 x 128,256 x
    14 + 132 x 128,256 x 4 + the held hidden states (8,192 + 1,024) x 4,096 x 2 = 1,981,894,656 bytes, against
    4,859,363,328 at the 0.10 / 0.11 fit."""
    expected = REQUESTS * VOCAB * 14 + H100_ROWS * VOCAB * 4 + HELD
    assert expected == 1_981_894_656
    for release in ("0.20.0", "0.21.0"):  # 0.21 runs V1 for every model
        peak = _profile_peak("--engine", f"vllm=={release}")
        assert peak["bytes"] == expected, release
    assert "seeded forward_native" in _profile_peak("--engine", "vllm==0.21.0")["source"]


def test_parallel_drafting_on_0_32_prices_the_rejection_pass(tmp_path):
    """Llama-3.1-8B-Instruct + an EAGLE-3 head, 3 draft tokens, parallel drafting (V1 on 0.32 / 0.33): 1,024 x
    128,256 x 30 + 132 x 128,256 x 4 + the held hidden states = 4,083,240,960 bytes (was 37 x 1,024 x 128,256 =
    4,859,363,328). Serial drafting runs V2 (Gumbel sampler, no V1 rejection pass priced)."""
    head = _eagle3_head(tmp_path)
    config = {"method": "eagle3", "model": head, "num_speculative_tokens": 3, "parallel_drafting": True}
    expected = REQUESTS * VOCAB * 30 + H100_ROWS * VOCAB * 4 + HELD
    assert expected == 4_083_240_960
    for release in ("0.32.0", "0.33.0"):
        peak = _profile_peak("--engine", f"vllm=={release}", "--speculative-config", json.dumps(config))
        assert peak["bytes"] == expected, release
        assert "rejection sampler over 1024 requests x 128256 logits x 30 B" in peak["source"]
    serial = _profile_peak("--engine", "vllm==0.32.0", "--speculative-config",
                           json.dumps(dict(config, parallel_drafting=False)))
    assert "rejection" not in serial["source"]
