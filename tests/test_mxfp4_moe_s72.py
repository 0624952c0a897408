"""gpt-oss's MXFP4 experts in vLLM's profile run, read release by release (session 72).

What the MXFP4 MoE kernels allocate during the profile forward (vLLM source read in 0.10.1, 0.11.0, 0.12.0, 0.14.0,
0.15.1, 0.16.0, 0.17.0, 0.18.0, 0.19.0, 0.24.0, 0.32.0, 0.34.0):
- Marlin (Hopper up to 0.11 without triton_kernels, A100 / Ada always): fused_marlin_moe takes the whole batch,
  intermediate_cache13 M k max(2 I', K') and intermediate_cache2 M k I' by torch.empty, freed after the layer
  (fused_marlin_moe.py 0.10.1:94-127); no VLLM_FUSED_MOE_CHUNK_SIZE loop, which is fused_experts_impl's (the
  Triton experts') and the modular kernel's. Called directly up to 0.16.0 (quantization/mxfp4.py 0.16.0:904); from
  0.17.0 as MarlinExperts in mk.FusedMoEKernel (mxfp4.py 0.17.0:443-450), chunked in 0.17 (modular_kernel.py
  0.17.0:1038-1053) and, from then on, its buffers taken from the process-wide workspace manager.
- OAI Triton (Hopper from 0.12, triton_kernels vendored): triton_kernel_moe_forward, monolithic, torch.empty per
  call, never chunked (experts/gpt_oss_triton_kernels_moe.py 0.32.0:791-802).
- FlashInfer TRT-LLM (SM100): monolithic, its workspace "managed by flashinfer" (trtllm_mxfp4_moe.py 0.32.0:330).
"""

from __future__ import annotations

import pytest

from kvplan.engines import get_engine
from kvplan.engines.vllm_mxfp4 import kernel
from kvplan.engines.vllm_profile import forward_peak
from kvplan.engines.vllm_versions import behaviour
from kvplan.model.sources import resolve
from kvplan.plan.catalog import find_gpu

GiB = 2**30

# gpt-oss-120b (model_specs/openai--gpt-oss-120b.yaml): hidden 2,880, 64 query heads and 8 KV heads of 64, 4 routed
# experts a token of intermediate 2,880, bf16 activations.
# Activations a token besides the MLP (residual, hidden state, q/k/v): (2 x 2,880 + 64 x 64 + 2 x 8 x 64) x 2 B
ACTIVATION = (2 * 2880 + 4096 + 1024) * 2  # 21,760
# The MXFP4 experts' buffers a token as kvplan prices them: 4 pairs x 3 x 2,880 x 2 B (Marlin's two caches, unpadded)
EXPERTS = 4 * 3 * 2880 * 2  # 69,120


def _forward(version: str, tokens: int, model: str = "openai/gpt-oss-120b", gpu=None) -> int:
    spec = resolve(model, None)
    mxfp4 = kernel(spec, version, find_gpu(gpu)) if gpu else None
    return forward_peak(spec, 1, tokens, behaviour(version), mxfp4=mxfp4)


@pytest.mark.parametrize("version, chunk", [("0.11.0", 32768), ("0.14.0", 16384), ("0.16.0", 16384)])
def test_mxfp4_experts_take_the_whole_batch_before_0_17(version, chunk):
    """VLLM_FUSED_MOE_CHUNK_SIZE (32,768 to 0.11, 16,384 in 0.12-0.17) caps the Triton experts' buffers, not
    Marlin's or the OAI Triton kernels': gpt-oss's forward grows with every token past the chunk, where a bf16 MoE's
    (Mixtral, Triton experts) stops growing in its experts."""
    assert _forward(version, 2 * chunk) == 2 * chunk * (ACTIVATION + EXPERTS)
    assert _forward(version, 2 * chunk) == 2 * _forward(version, chunk)
    mixtral = "mistralai/Mixtral-8x7B-v0.1"
    assert _forward(version, 2 * chunk, mixtral) < 2 * _forward(version, chunk, mixtral)


def test_0_17_marlin_experts_run_chunked_in_the_modular_kernel():
    """0.17.0: MarlinExperts.supports_chunking (fused_marlin_moe.py 0.17.0:661-662) under the modular kernel's 16,384
    tokens a chunk; the experts' buffers stop at 16,384 tokens while the rest of the forward keeps growing. Marlin is
    an A100's kernel; an H100 runs OAI Triton, monolithic in 0.17 (quantization/mxfp4.py 0.17.0:1003-1011
    is_monolithic), whose buffers take the whole batch. The modular MarlinExperts' buffers are the workspace it
    keeps, at the padded sizes (workspace_shapes, fused_marlin_moe.py 0.17.0:690-692): 4 pairs x (max(2,944, 3,072)
    + max(5,888, 3,072)) x 2 B = 71,680 a token, above kvplan's 69,120 for the unpadded caches (session 72)."""
    assert _forward("0.17.0", 32768, gpu="A100-80GB") == 32768 * ACTIVATION + 16384 * 71_680
    assert _forward("0.17.0", 32768, gpu="H100-80GB-SXM") == 32768 * (ACTIVATION + EXPERTS)


@pytest.mark.parametrize("version, modular", [("0.11.0", False), ("0.16.0", False), ("0.17.0", True),
                                              ("0.18.0", True), ("0.19.0", True), ("0.32.0", True),
                                              ("0.34.0", True)])
def test_mxfp4_marlin_in_the_modular_kernel_from_0_17(version, modular):
    """0.16.0 quantization/mxfp4.py:904 `return fused_marlin_moe(` in apply; 0.17.0 :443-450 mk.FusedMoEKernel(...,
    MarlinExperts(...)); 0.18.0 :469-471 the same; 0.19.0 on through fused_moe/oracle/mxfp4.py (MARLIN ->
    [MarlinExperts], 0.19.0:119-124). An A100 runs Marlin in every release."""
    mxfp4 = kernel(resolve("openai/gpt-oss-120b", None), version, find_gpu("A100-80GB"))
    assert mxfp4.name == "Marlin" and mxfp4.modular is modular


def test_a_long_batch_on_0_11_prices_every_token_through_the_experts():
    """gpt-oss-120b on an H100 (vLLM 0.11.0), --gpu-memory-utilization 0.95 --max-num-batched-tokens 65536
    --max-num-seqs 64: the profile forward sets the peak, 65,536 x (21,760 + 69,120) = 5,955,911,680 bytes, above
    the sampler's 64 x 201,088 x 37 = 476,176,384; before this session the experts were capped at 32,768 tokens
    (3.44 GiB, a budget 2.1 GiB too large)."""
    budget = get_engine("vllm==0.11.0").budget(resolve("openai/gpt-oss-120b", None), 1, find_gpu("H100-80GB-SXM"),
                                               0.95, max_num_batched_tokens=65536, max_num_seqs=64)
    peak = next(t for t in budget.terms if t.name == "profile_peak")
    assert peak.bytes == 5_955_911_680


@pytest.mark.parametrize("version, util, tokens", [("0.10.1", 0.9, None), ("0.11.0", 0.95, 1024)])
def test_a19_a20_peaks_are_the_sampler_pass_alone(version, util, tokens):
    """A19 (0.10.1) and A20 (0.11.0), gpt-oss-120b on an H100, the logs v1_sampler_bytes_per_logit was fitted on:
    their profile peak is the sampler pass, 1,024 dummy requests x 201,088 logits x 37 B = 7,618,822,144 bytes, and
    no MoE buffer stays under it (Marlin's are freed after each layer in 0.10.1 / 0.11.0, "caches" era), so the
    constant absorbed none of the experts' buffers. The Marlin forward by hand from 0.10.1's shapes, at A19's
    8,192 tokens: residual and normed input 2 x 5,760, router logits 128 x 2, the input padded to K' = 3,072
    (6,144), top-k weights and ids 4 x 8, intermediate_cache2 4 x 2,944 x 2 (23,552), intermediate_cache13
    4 x 5,888 x 2 (47,104) and the padded output 6,144: 94,752 B a token, 776,208,384 bytes (0.72 GiB), far below."""
    budget = get_engine(f"vllm=={version}").budget(resolve("openai/gpt-oss-120b", None), 1,
                                                   find_gpu("H100-80GB-SXM"), util, max_num_batched_tokens=tokens)
    peak = next(t for t in budget.terms if t.name == "profile_peak")
    assert peak.bytes == 1024 * 201088 * 37 == 7_618_822_144
    assert 8192 * 94_752 < peak.bytes
