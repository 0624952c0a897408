"""Which kernel vLLM runs gpt-oss's MXFP4 experts on, by release and GPU, and what it costs (session 72;
kvplan/engines/vllm_mxfp4.py).

The weights by hand, from each release's create_weights shapes (quantization/mxfp4.py 0.11.0:199-226, 0.12.0:290-330;
fused_moe/oracle/mxfp4.py 0.19.0:376-400, 0.26.0:655-657, 0.27.0:656-658, 0.32.0:816-896): an expert of a layer holds
w13 (2 I' x H' values at 4 bits + one byte of scale per 32) and w2 (H' x I', the same), so 3 I' H' x 17/32 bytes, and
its biases w13_bias (2 I') and w2_bias (H') in bf16. gpt-oss-120b: 36 layers x 128 experts = 4,608; gpt-oss-20b: 24 x
32 = 768; both H = I = 2,880. The rest of the checkpoint (embeddings, LM head, attention, routers, norms, bf16) is
4,255,115,904 bytes (120b) and 3,595,648,128 (20b): 2 x 201,088 x 2,880 x 2 + layers x (attention 26,550,144
+ router 368,768 + norms 5,760) x 2 + 2,880 x 2.
OAI Triton and TRT-LLM convert both biases to float32 after loading, inside load_model's memory profiler
(oracle/mxfp4.py 0.32.0:977-991, :1359-1363; quantization/mxfp4.py 0.10.1:307-308, :390-394); Marlin keeps them bf16
(marlin_utils_fp4.py 0.10.1:284-287):
- as stored (OAI Triton at tp 1: I' = round_up(2,880, 64) = 2,880, H' = H): 3 x 2,880^2 x 17/32 + 8,640 x 4
  = 13,219,200 + 34,560 = 13,253,760 bytes an expert
- Marlin (I' = round_up(2,880, 128) = 2,944, H' = round_up(2,880, 256) = 3,072):
  3 x 2,944 x 3,072 x 17/32 + (5,888 + 3,072) x 2 = 14,413,824 + 17,920 = 14,431,744
- TRT-LLM from 0.27 (Marlin's tile): 14,413,824 + 8,960 x 4 = 14,449,664
- TRT-LLM up to 0.26 (I' = H' = 3,072): 3 x 3,072^2 x 17/32 + 9,216 x 4 = 15,040,512 + 36,864 = 15,077,376
kvplan pads the matrices by both tiles and each bias along its one dimension (session 72, tests/test_v4_mxfp4_s72.py).
"""

from __future__ import annotations

import pytest

from kvplan.engines import EngineFlags, get_engine
from kvplan.engines.vllm_mxfp4 import kernel
from kvplan.engines.vllm_profile import moe_workspace
from kvplan.engines.vllm_versions import behaviour
from kvplan.model.sources import resolve
from kvplan.plan.catalog import find_gpu

MiB = 2**20
OSS_120B, OSS_20B = "openai/gpt-oss-120b", "openai/gpt-oss-20b"
REST = {OSS_120B: 4_255_115_904, OSS_20B: 3_595_648_128}
EXPERTS = {OSS_120B: 4608, OSS_20B: 768}
STORED, MARLIN, TRTLLM, TRTLLM_256 = 13_253_760, 14_431_744, 14_449_664, 15_077_376  # bytes an expert of a layer
BY_HAND = {(model, tile): REST[model] + EXPERTS[model] * size for model in (OSS_120B, OSS_20B)
           for tile, size in (("stored", STORED), ("marlin", MARLIN), ("trtllm", TRTLLM), ("trtllm256", TRTLLM_256))}
# e.g. gpt-oss-120b: 65,328,441,984 stored (60.84 GiB), 70,756,592,256 Marlin (65.90), 73,731,664,512 TRT-LLM (68.67)


def _weights(model: str, gpu: str, version: str) -> tuple:
    budget = get_engine(f"vllm=={version}").budget(resolve(model, None), 1, find_gpu(gpu), 0.9)
    term = next(t for t in budget.terms if t.name == "weights")
    return term.bytes, term.source


@pytest.mark.parametrize("model", [OSS_120B, OSS_20B])
@pytest.mark.parametrize("gpu, version, tile, name", [
    # Hopper: no triton_kernels before 0.12 (the wheels of 0.10.1-0.11.2 ship none; 0.11.0 quantization/mxfp4.py
    # :95-99 Marlin without them); 0.12 vendors them (vllm/third_party/triton_kernels): OAI Triton (0.12.0 :153-166)
    ("H100-80GB-SXM", "0.11.0", "marlin", "Marlin"),
    ("H100-80GB-SXM", "0.12.0", "stored", "OAI Triton"),
    ("H100-80GB-SXM", "0.20.0", "stored", "OAI Triton"),
    ("H100-80GB-SXM", "0.32.0", "stored", "OAI Triton"),
    # SM100 with FlashInfer (a dependency from 0.11.1): TRT-LLM, both sizes to 256 up to 0.26, the intermediate to
    # 128 from 0.27 (oracle/mxfp4.py 0.26.0:655-657, 0.27.0:656-658)
    ("B200", "0.19.0", "trtllm256", "FlashInfer TRT-LLM"),
    ("B200", "0.32.0", "trtllm", "FlashInfer TRT-LLM"),
    # below SM90: Marlin in every release (0.19.0 oracle: Triton needs 9.0 <= capability < 11.0)
    ("A100-80GB", "0.19.0", "marlin", "Marlin"),
    # SM12x: outside Triton's window up to 0.31, behind Marlin from 0.32 (oracle/mxfp4.py 0.32.0:412-420)
    ("RTX-5090", "0.32.0", "marlin", "Marlin"),
    ("RTX-PRO-6000-Server", "0.32.0", "marlin", "Marlin"),
])
def test_weights_by_kernel_by_hand(model, gpu, version, tile, name):
    weights, source = _weights(model, gpu, version)
    assert abs(weights - BY_HAND[model, tile]) < MiB
    assert f"MXFP4 experts on {name}, padded" in source


@pytest.mark.parametrize("version, tile, name", [
    ("0.10.1", "marlin", "Marlin"),  # _should_use_marlin: not exactly 10.0 (0.10.1 :123-135), no triton_kernels
    ("0.11.2", "marlin", "Marlin"),  # get_mxfp4_backend asks is_device_capability(100): 10.3 is not
    ("0.12.0", "stored", "OAI Triton"),  # not 10.0, inside Triton's 9.0-11.0 window (0.12.0 :141, :153-166)
    ("0.14.0", "trtllm256", "FlashInfer TRT-LLM"),  # is_device_capability_family(100) (0.14.0 :120-141)
])
def test_b300_leaves_trt_llm_until_0_14(version, tile, name):
    """B300 is SM103 (compute capability 10.3): the SM100 checks before 0.14 ask for exactly 10.0."""
    weights, source = _weights(OSS_20B, "B300", version)
    assert abs(weights - BY_HAND[OSS_20B, tile]) < MiB and f"on {name}," in source


def test_sm100_without_flashinfer_before_0_11_1():
    """FlashInfer is an extra of 0.10.1-0.11.0 (their wheels' Requires-Dist ... extra == "flashinfer"), a dependency
    from 0.11.1 (flashinfer-python==0.5.2): a pip-installed 0.11.0 runs Marlin on a B200 (0.11.0 :95-99), 0.11.1
    TRT-LLM (:123); 0.10.1 allocates at OAI Triton's tile (:185-186, then fails to import triton_kernels: not
    modelled)."""
    assert abs(_weights(OSS_20B, "B200", "0.11.0")[0] - BY_HAND[OSS_20B, "marlin"]) < MiB
    assert abs(_weights(OSS_20B, "B200", "0.11.1")[0] - BY_HAND[OSS_20B, "trtllm256"]) < MiB
    assert abs(_weights(OSS_20B, "B200", "0.10.1")[0] - BY_HAND[OSS_20B, "stored"]) < MiB


@pytest.mark.parametrize("version, name", [("0.11.0", "Marlin"), ("0.11.1", "Marlin"), ("0.12.0", "OAI Triton"),
                                           ("0.14.0", "Marlin"), ("0.32.0", "Marlin"), ("0.34.0", "Marlin")])
def test_lora_moves_hopper_to_marlin_from_0_14(version, name):
    """--enable-lora: Marlin in 0.11.1 (get_mxfp4_backend_with_lora, 0.11.1 :77-86), Triton on 9.0-11.0 in 0.12
    (0.12.0 :91-104), Marlin from 0.14 unless VLLM_MXFP4_USE_MARLIN=0 (0.14.0 :91-104); from 0.23 Marlin is the only
    listed kernel whose class supports_lora (modular_kernel.py 0.23.0:579, 0.32.0:591; 0.34's TRT-LLM LoRA experts
    only when named, oracle/mxfp4.py 0.34.0:596-615). kvplan refuses --enable-lora on an MoE model (vllm_lora.py:
    adapters priced for dense decoders only), so this is the kernel's rule alone."""
    spec = resolve(OSS_20B, None)
    assert kernel(spec, version, find_gpu("H100-80GB-SXM"), lora=True).name == name


def _layout(model: str, dp: int, version: tuple):
    return EngineFlags(dp=dp).moe_layout(resolve(model, None), 1, version)


@pytest.mark.parametrize("gpu, version, dp, per_token", [
    # Marlin from 0.17 (MarlinExperts in the modular kernel, quantization/mxfp4.py 0.17.0:443-450): the common
    # buffer max(M k max(N, K), M K) and M k max(2 N, K), N = 2,944 and K = 3,072 (fused_marlin_moe.py 0.19.0:692-694;
    # modular_kernel.py 0.19.0:1059-1066): 4 x (3,072 + 5,888) x 2 = 71,680 bytes a token
    ("A100-80GB", "0.19.0", 1, 71_680),
    ("RTX-5090", "0.32.0", 1, 71_680),
    ("A100-80GB", "0.16.0", 1, 0),  # fused_marlin_moe called directly (0.16.0 :904): its own buffers, freed
    # OAI Triton: monolithic with one DP rank (gpt_oss_triton_kernels_moe.py 0.19.0:917-925), so nothing kept;
    # with two, OAITritonExperts: output M K and M k N/2 (0.19.0 :651-667), the experts split over both ranks
    # without EP (I / 2 = 1,440, to 64: 1,472): (2,880 + 4 x 1,472) x 2 = 17,536
    ("H100-80GB-SXM", "0.32.0", 1, 0),
    ("H100-80GB-SXM", "0.32.0", 2, 17_536),
    ("H100-80GB-SXM", "0.17.0", 2, 0),  # 0.17 runs Triton monolithic whatever the DP (is_monolithic :1003-1011)
    # TRT-LLM: TrtLlmMxfp4ExpertsModular's output alone, the unpadded hidden size in 0.32 (trtllm_mxfp4_moe.py
    # 0.32.0:333): 2,880 x 2; the padded 3,072 x 2 in 0.19 (0.19.0 :262, K the padded input's)
    ("B200", "0.32.0", 1, 0),
    ("B200", "0.32.0", 2, 5_760),
    ("B200", "0.19.0", 2, 6_144),
])
def test_kept_workspace_by_kernel(gpu, version, dp, per_token):
    """The workspace manager's buffers the profile forward leaves for the sampler pass, over 2,048 tokens a DP rank
    (the experts see every rank's: 2,048 x dp)."""
    spec = resolve(OSS_20B, None)
    release = tuple(int(p) for p in version.split("."))
    layout = _layout(OSS_20B, dp, release)
    mxfp4 = kernel(spec, version, find_gpu(gpu), layout)
    assert moe_workspace(spec, 1, 2048, behaviour(version), layout, mxfp4) == 2048 * dp * per_token


def test_0_17_marlin_workspace_capped_at_the_chunk():
    """0.17's modular kernel chunks at VLLM_FUSED_MOE_CHUNK_SIZE (16,384, modular_kernel.py 0.17.0:1038-1053) and
    sizes the workspace by the chunk: 16,384 x 71,680 bytes however long the batch."""
    spec = resolve(OSS_20B, None)
    mxfp4 = kernel(spec, "0.17.0", find_gpu("A100-80GB"))
    assert moe_workspace(spec, 1, 32768, behaviour("0.17.0"), None, mxfp4) == 16384 * 71_680
