"""The V1 runner's sampler pass in vLLM's profile run, by release (kvplan/engines/vllm_profile.py dummy_sampler,
sampler_pass_bytes): FlashInfer's kernels by default up to 0.11.0 and from 0.21 (VLLM_USE_FLASHINFER_SAMPLER unset,
envs.py), PyTorch's top-k / top-p by sorting 0.11.1-0.16, the Triton top-k / top-p kernel 0.17-0.20
(v1/sample/ops/topk_topp_triton.py, from 8 requests)."""

import json
from pathlib import Path

import pytest

from conftest import run_kvplan

GiB = 2**30
GPT_OSS_20B_VOCAB = 201088


def _peak(*args) -> dict:
    result = run_kvplan("estimate", *args, "--format", "json")
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)["plans"]
    return row


def test_a27_held_out_on_the_triton_path():
    """A27 (vLLM 0.19.0, gpt-oss-20b, A100 80GB, gpu_memory_utilization 0.65, max_model_len 131072; never fitted on):
    "Available KV cache memory: 36.56 GiB". 0.19 samples the 256 dummy requests with the Triton top-k/top-p kernel:
    256 x 201,088 x (2 + 12) bytes + 108 SMs' rows 108 x 201,088 x 4 = 807,569,408 bytes (0.75 GiB), against
    1.77 GiB with FlashInfer's fitted 37 bytes a logit, on top of the forward's output hidden states profile_run
    still holds (gpu_model_runner.py:5782-5793 in 0.19): (2,048 + 256 rows) x 2,880 x 2 = 13,271,040 bytes, and
    the Marlin experts' buffers the workspace manager keeps (an A100 runs gpt-oss's experts on Marlin, from 0.17 as
    MarlinExperts in the modular kernel: fused_marlin_moe.py 0.19.0:692-693 workspace shapes M k max(N, K) and
    M k max(2 N, K) with N = 2,880 padded to 2,944 and K = 2,880 padded to 3,072, taken by modular_kernel.py
    0.19.0:1059-1066 from the manager): 2,048 x 4 x (3,072 + 5,888) x 2 = 146,800,640 bytes. kvplan's figure comes
    to -0.51% of the log (-0.1% before session 72 counted the workspace: source over fit)."""
    row = _peak("openai/gpt-oss-20b", "--gpu", "a100-80gb", "--engine", "vllm==0.19.0", "--gpu-util", "0.65",
                "--context", "131072")
    peak = next(t for t in row["budget"]["terms"] if t["name"] == "profile_peak")
    assert peak["bytes"] == 807_569_408 + 13_271_040 + 146_800_640
    assert abs(row["kv_budget_bytes_per_gpu"] / GiB - 36.56) / 36.56 < 0.006


@pytest.mark.parametrize("engine, kind, per_logit", [
    ("vllm==0.11.0", "FlashInfer", 37),  # fitted on A19 / A20 (0.10.1, 0.11.0)
    ("vllm==0.11.1", "top-k/top-p by sorting", 38),  # the CUDA sort's own buffers at the peak: derived by hand in
    ("vllm==0.16.0", "top-k/top-p by sorting", 38),  # tests/test_sampler_quant_s55.py
])  # 0.21 on: the seeded forward_native pass after FlashInfer's sets the peak (tests/test_s54_fix6.py)
def test_the_v1_sampler_by_release(engine, kind, per_logit):
    """Mixtral-8x7B runs Model Runner V1 in all of these (tests/test_vllm_runner.py); 1,024 dummy requests on an
    H100 (vllm serve's batch default there)."""
    row = _peak("mistralai/Mixtral-8x7B-v0.1", "--gpu", "h100", "--tp", "2", "--context", "8192", "--engine", engine)
    peak = next(t for t in row["budget"]["terms"] if t["name"] == "profile_peak")
    assert f"1024 requests x 32000 logits x {per_logit} B ({kind})" in peak["source"]


def test_the_triton_path_keeps_one_row_a_program():
    """0.17-0.20 from 8 requests: min(next power of two of min(SMs, requests), SMs) rows of the vocabulary in float32
    (topk_topp_triton.py apply_top_k_top_p_triton): 132 on an H100 at 1,024 requests, 8 at 8 requests."""
    row = _peak("mistralai/Mixtral-8x7B-v0.1", "--gpu", "h100", "--tp", "2", "--context", "8192", "--engine",
                "vllm==0.19.0")
    peak = next(t for t in row["budget"]["terms"] if t["name"] == "profile_peak")
    assert "1024 requests x 32000 logits x 14 B + Triton top-k/top-p rows 132 x 32000 x 4 B" in peak["source"]
    few = _peak("mistralai/Mixtral-8x7B-v0.1", "--gpu", "h100", "--tp", "2", "--context", "8192", "--engine",
                "vllm==0.19.0", "--max-num-seqs", "8")
    assert "rows 8 x 32000" in next(t for t in few["budget"]["terms"] if t["name"] == "profile_peak")["source"]


def test_below_eight_requests_the_sort_runs_in_place_as_vllms_own_sampler_measures():
    """tests/data/vllm_sampler_profile_peak.json: vLLM 0.32.0's V1 Sampler with its PyTorch top-k / top-p (the same
    apply_top_k_top_p_pytorch as 0.17-0.20's, scatter_ in place) run on the CPU over bf16 logits
    (benchmarks/vllm_reference/sampler_profile_peak.py): 24 bytes a logit, the phase after the sort (logits 2, float32
    copy 4, sorted values and order 12, two bool masks 2, probabilities 4), the CPU sort allocating nothing beside
    its outputs. On a GPU 4 rows of 201,088 sort as one flat CUB radix sort (SortStable.cu
    segmented_sort_pairs_by_full_sort) whose two int2 pair tensors 16, float32 keys output 4 and CUB's third keys and
    values 12 peak at 2 + 4 + 12 + 32 = 50: kvplan's figure is the CPU's + 26 bytes a logit, but for a few small
    tensors (s55 sampqfix)."""
    from kvplan.engines.vllm_profile import sampler_pass_bytes
    from kvplan.model.sources import resolve
    from kvplan.plan.catalog import find_gpu

    frozen = json.loads((Path(__file__).parent / "data" / "vllm_sampler_profile_peak.json").read_text())
    assert frozen["vllm"] == "0.32.0"
    spec = resolve("openai/gpt-oss-20b")
    assert spec.vocab_size == GPT_OSS_20B_VOCAB
    for case in frozen["cases"]:
        if case["requests"] >= 8:  # the reference runs without Triton: the sort at any count
            continue
        got, how = sampler_pass_bytes(spec, "triton", case["requests"], find_gpu("h100"))
        cuda_sort = 26 * case["requests"] * GPT_OSS_20B_VOCAB
        assert "sorting" in how and 0 <= case["peak_bytes"] + cuda_sort - got < 1024, (case, got)


def test_rocm_never_samples_with_flashinfer():
    """TopKTopPSampler takes FlashInfer only on CUDA; an MI300X on 0.32's V1 (a ROCm V1 architecture there) and on
    0.21 sorts or runs the Triton kernel."""
    from kvplan.engines.vllm_profile import dummy_sampler
    from kvplan.engines.vllm_runner import Runner
    from kvplan.engines.vllm_versions import behaviour
    from kvplan.plan.catalog import find_gpu

    v1 = Runner("V1", True, "")
    assert dummy_sampler(v1, behaviour("0.21.0"), find_gpu("mi300x")) == "triton"
    assert dummy_sampler(v1, behaviour("0.10.1"), find_gpu("mi300x")) == "sort"
    assert dummy_sampler(v1, behaviour("0.21.0"), find_gpu("h100")) == "flashinfer"
