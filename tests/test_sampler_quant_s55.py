"""Session 55 (sampq): V1's profile sampler peak 0.11.1-0.16 (kvplan/engines/vllm_profile.py
sorting_bytes_per_logit), and the Hub's quantisation settings files and GPTQModel's `dynamic` overrides.

The sampler pass, read by hand release by release. _dummy_sampler_run (gpu_model_runner.py 0.11.1:3900-3970,
0.11.2:3904, 0.12.0:4121, 0.13.0:4268, 0.14.0/0.14.1:4531, 0.16.0:4944; the same SamplingMetadata in all:
temperature 0.5, top_p 0.9, top_k vocab - 1, no logprobs, no penalties) keeps the LM head's bf16 logits [N, V]
while Sampler.forward (sampler.py 0.11.1:87, 0.12.0-0.16.0:90) rebinds its own `logits` to a float32 copy,
greedy-samples (argmax, [N]), divides by the temperature in place (0.11.1:138, 0.12.0-0.16.0:141) and calls
TopKTopPSampler, which on CUDA is forward_native unless VLLM_USE_FLASHINFER_SAMPLER=1 (topk_topp_sampler.py
0.11.1:30-47, 0.12.0-0.16.0:31-58: opt-in from 0.11.1; ROCm's aiter sampler, 0.12 on, only with aiter enabled, and
bypassed from 0.14). apply_top_k_top_p (0.11.1:152-192, 0.12.0/0.13.0:239-279, 0.14.0-0.16.0:243-283), per logit:
  logits.sort -> float32 values 4 + int64 order 8 (outputs that stay to the end);
  during the sort (torch aten/src/ATen/native/cuda/Sort.cpp sort_cuda_kernel, rows longer than 4096 ->
    SortStable.cu launch_stable_sort_kernel): at >= 128 rows (or 1) segmented_sort_pairs' int64 reverse indices 8
    and CUB DeviceSegmentedRadixSort::SortPairs' temporary storage, a third keys buffer (float32 4) and a third
    values buffer (int64 8) since the non-double-buffer call may not overwrite its input
    (dispatch_segmented_radix_sort.cuh InvokePasses): 2 + 4 + 12 + 8 + 12 = 38;
    at 2-127 rows segmented_sort_pairs_by_full_sort: two int2 (index, row) tensors 8 + 8, radix_sort_pairs' float32
    keys output 4 (keys_out nullptr) and DeviceRadixSort's third keys 4 and values 8 buffers: 2 + 4 + 12 + 32 = 50;
  after it: top-k mask (bool 1), probs_sort (float32 4; cumsum in place), top-p mask (bool 1), logits_sort.scatter
    into a new float32 tensor 4: 2 + 4 + 12 + 10 = 28, then freed down to 2 + 4 + 4 before softmax (4) and q (4).
So the peak is the sort: 38 bytes a logit for the usual 256 / 1,024 dummy requests, 50 for 2-127; the 28 priced
before this session was the post-sort phase only. The same torch sort gave the 0.10.1 / 0.11.0 logs (A19 / A20, a
pip install without FlashInfer) their measured 36.5 and 37.1 bytes a logit, the constant fitted there (37)."""

import json

import pytest

from conftest import run_kvplan

GiB = 2**30
MIXTRAL_VOCAB = 32000
GPT_OSS_VOCAB = 201088


def _profile_term(*args) -> dict:
    result = run_kvplan("estimate", *args, "--format", "json")
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)["plans"]
    return next(t for t in row["budget"]["terms"] if t["name"] == "profile_peak")


@pytest.mark.parametrize("engine", ["0.11.1", "0.11.2", "0.12.0", "0.13.0", "0.14.0", "0.14.1", "0.16.0"])
def test_the_sort_peaks_inside_torch_sort_at_1024_requests(engine):
    """Mixtral-8x7B on two H100s: 1,024 dummy requests (vllm serve's default there), bf16 logits: 38 bytes a logit
    (module docstring), 1,024 x 32,000 x 38 = 1,245,184,000 bytes."""
    term = _profile_term("mistralai/Mixtral-8x7B-v0.1", "--gpu", "h100", "--tp", "2", "--context", "8192",
                         "--engine", f"vllm=={engine}")
    assert "1024 requests x 32000 logits x 38 B (top-k/top-p by sorting)" in term["source"]


def test_between_2_and_127_requests_torch_sorts_flat():
    """64 dummy requests: segmented_sort_pairs_by_full_sort, 50 bytes a logit (module docstring)."""
    term = _profile_term("mistralai/Mixtral-8x7B-v0.1", "--gpu", "h100", "--tp", "2", "--context", "8192",
                         "--engine", "vllm==0.13.0", "--max-num-seqs", "64")
    assert "64 requests x 32000 logits x 50 B (top-k/top-p by sorting)" in term["source"]


@pytest.mark.parametrize("requests, per_logit", [(1, 38), (2, 50), (127, 50), (128, 38), (1024, 38)])
def test_sorting_bytes_by_row_count(requests, per_logit):
    """bf16 logits (width 2), a 201,088 vocabulary: one row is a single large segment (an nsort int64 index array 8
    and CUB's third keys and values buffers 12: 2 + 4 + 12 + 20 = 38); 2-127 the flat sort 50; from 128 the
    segmented sort 38."""
    from kvplan.engines.vllm_profile import sorting_bytes_per_logit

    assert sorting_bytes_per_logit(2, requests, GPT_OSS_VOCAB) == per_logit


def test_a_short_vocabulary_sorts_in_place():
    """Rows of at most 4,096 take torch's in-place bitonic sort (Sort.h should_use_small_sort): no buffers beside the
    outputs, so the post-sort phase sets the peak: 2 + 4 + 12 + 2 + 4 + 4 = 28."""
    from kvplan.engines.vllm_profile import sorting_bytes_per_logit

    assert sorting_bytes_per_logit(2, 1024, 4096) == 28
    assert sorting_bytes_per_logit(2, 1024, 4097) == 38


def test_the_boundary_releases_keep_their_own_paths():
    """0.11.0 keeps the fitted FlashInfer constant (37); 0.17.0 masks with the Triton kernel from 8 requests
    (topk_topp_sampler.py 0.17.0:245-255): 2 + 12 bytes a logit and the cached rows."""
    args = ("mistralai/Mixtral-8x7B-v0.1", "--gpu", "h100", "--tp", "2", "--context", "8192", "--engine")
    assert "x 37 B (FlashInfer)" in _profile_term(*args, "vllm==0.11.0")["source"]
    assert "1024 requests x 32000 logits x 14 B + Triton" in _profile_term(*args, "vllm==0.17.0")["source"]


def test_gpt_oss_120b_sampler_on_0_11_1_matches_the_0_11_0_logs_measure():
    """gpt-oss-120b on an H100 with 0.11.1: 1,024 x 201,088 x 38 = 7,824,736,256 bytes (7.29 GiB) of sampler pass
    beside the forward's held hidden states, against 37 x the same fitted on the 0.11.0 log (A20), whose pip install
    ran this same torch sort."""
    term = _profile_term("openai/gpt-oss-120b", "--gpu", "h100", "--context", "8192", "--engine", "vllm==0.11.1")
    assert "1024 requests x 201088 logits x 38 B" in term["source"]
    assert term["bytes"] >= 1024 * GPT_OSS_VOCAB * 38
