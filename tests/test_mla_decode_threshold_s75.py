"""Which prompt chunks vLLM's dense MLA runs on its decode path (engines/vllm_mla_decode.py): those of at most the
running backend's reorder_batch_threshold new tokens (split_decodes_and_prefills counts short extends as decodes,
v1/attention/backends/utils.py 0.32.0:803-843). Read in the wheels, paths under vllm/:

- FLASH_ATTN_MLA: `reorder_batch_threshold: int = 512  # process small prefills with decode pathway`
  (v1/attention/backends/mla/flashattn_mla.py 0.11.1:97, 0.32.0:130); first MLA backend on SM90 from 0.11.1
  (platforms/cuda.py 0.11.1:63-70, 0.32.0:147-151), 16-bit caches only (flashattn_mla.py 0.11.1:45 ["auto"],
  0.32.0:43-47 auto / float16 / bfloat16); 0.10.2-0.11.0 run FLASHMLA on Hopper (cuda.py 0.11.0:263-290).
- FLASHMLA (Hopper, fp8 cache): 128 from 0.11.1 (flashmla.py 0.11.1:101, 0.32.0:113), the base 1 before.
- TRITON_MLA (A100), CUTLASS_MLA and FLASHINFER_MLA (B200): the base builder's 1 (mla_attention.py 0.32.0:2265).
- -dcp D > 1: 1 unless the builder passes supports_dcp_with_varlen (v1/attention/backend.py 0.32.0:676-680):
  FLASH_ATTN_MLA `supports_dcp_with_varlen=True` in 0.11.1 / 0.12.0 (flashattn_mla.py 0.11.1:112, 0.12.0:115),
  `=(interleave_size == 1)` from 0.13.0 (:115; 0.32.0:146); FLASHMLA never (flashmla.py 0.32.0:121-123).
- speculative decoding: max(threshold, 1 + k) where query_len_support is not SINGLE_ONLY (backend.py 0.32.0:662-674):
  FLASHINFER_MLA VARLEN and keeps it under -dcp from 0.29 (flashinfer_mla.py 0.29.0:147); CUTLASS_MLA SINGLE_ONLY;
  TRITON_MLA UNIFORM from 0.31 (0.27-0.30 only for DSpark: triton_mla.py 0.27.0:60-64); 1 + 2k under
  parallel_drafting (backend.py 0.16.0:485 `(2 if speculative_config.parallel_drafting else 1)`).

DeepSeek-V3 at tp 8: 16 query heads a GPU, 61 MLA layers, latent 512 + rope 64.
"""

from __future__ import annotations

import pytest

from conftest import estimate_plan

DSV3 = "deepseek-ai/DeepSeek-V3"
HOPPER, BLACKWELL, AMPERE = (9, 0), (10, 0), (8, 0)


def _spec(model: str = DSV3, kv: str = "bf16"):
    from kvplan.model.precision import resolve_kv_dtype
    from kvplan.model.sources import resolve

    spec = resolve(model)
    return spec, resolve_kv_dtype(kv, spec.dtype, spec.auto_kv_dtype)


def _threshold(version: str, capability: tuple, kv: str = "bf16", dcp=None, interleave=None, draft=None) -> int:
    from kvplan.engines import EngineFlags, get_engine
    from kvplan.plan.catalog import find_gpu

    gpu = {HOPPER: "H100", BLACKWELL: "B200", AMPERE: "A100-80GB"}[capability]
    spec, precision = _spec(kv=kv)
    engine = get_engine(f"vllm=={version}", EngineFlags(dcp=dcp, dcp_interleave=interleave, speculative=draft))
    return engine.mla_decode_query_len(spec, precision, find_gpu(gpu))


@pytest.mark.parametrize("version, capability, kv, dcp, interleave, expected", [
    ("0.32.0", HOPPER, "bf16", None, None, 512),  # FLASH_ATTN_MLA
    ("0.32.0", HOPPER, "bf16", 8, None, 512),  # supports_dcp_with_varlen at interleave 1, the default
    ("0.32.0", HOPPER, "bf16", 8, 2, 1),  # interleave 2: not varlen-capable under DCP
    ("0.12.0", HOPPER, "bf16", 8, 2, 512),  # 0.11.1-0.12.x: supports_dcp_with_varlen=True whatever the interleave
    ("0.13.0", HOPPER, "bf16", 8, 2, 1),
    ("0.11.1", HOPPER, "bf16", None, None, 512),  # FLASH_ATTN_MLA first on SM90 from here
    ("0.11.0", HOPPER, "bf16", None, None, 1),  # FLASHMLA runs, the base threshold
    ("0.32.0", HOPPER, "fp8", None, None, 128),  # FLASHMLA
    ("0.32.0", HOPPER, "fp8", 8, None, 1),  # FLASHMLA: no supports_dcp_with_varlen
    ("0.11.0", HOPPER, "fp8", None, None, 1),
    ("0.32.0", BLACKWELL, "bf16", None, None, 1),  # FLASHINFER_MLA
    ("0.32.0", BLACKWELL, "bf16", 8, None, 1),
    ("0.14.0", BLACKWELL, "bf16", None, None, 1),  # CUTLASS_MLA
    ("0.32.0", AMPERE, "bf16", None, None, 1),  # TRITON_MLA
    ("0.32.0", AMPERE, "bf16", 8, None, 1),
])
def test_threshold_by_gpu_dtype_release(version, capability, kv, dcp, interleave, expected):
    assert _threshold(version, capability, kv, dcp, interleave) == expected


@pytest.mark.parametrize("backend, version, dcp, parallel, expected", [
    ("FLASHINFER_MLA", "0.32.0", 1, False, 4),  # 1 + 3
    ("FLASHINFER_MLA", "0.32.0", 8, False, 4),  # kept under DCP from 0.29
    ("FLASHINFER_MLA", "0.28.0", 8, False, 1),
    ("CUTLASS_MLA", "0.32.0", 1, False, 1),  # SINGLE_ONLY
    ("TRITON_MLA", "0.30.0", 1, False, 1),
    ("TRITON_MLA", "0.31.0", 1, False, 4),
    ("FLASHINFER_MLA", "0.32.0", 1, True, 7),  # 1 + 2 x 3
    ("FLASHINFER_MLA", "0.15.1", 1, True, 4),  # no parallel drafting before 0.16
    ("FLASHMLA", "0.32.0", 1, False, 128),  # its own 128 is wider
    ("FLASHMLA", "0.32.0", 8, False, 1),
])
def test_speculative_tokens_widen_the_threshold(backend, version, dcp, parallel, expected):
    from kvplan.engines.vllm_mla_decode import decode_query_len

    assert decode_query_len(backend, version, dcp, None, 3, parallel) == expected


def test_threshold_through_the_speculative_config():
    """DeepSeek-V3 with MTP, 600 draft tokens (no upper bound in vLLM), on Hopper 0.32: FLASH_ATTN_MLA's 512 widens
    to 601; on A100 TRITON_MLA 0.32 (UNIFORM) to 601 as well."""
    from kvplan.engines.vllm_speculative import Speculative

    draft = Speculative("mtp", 600)
    assert _threshold("0.32.0", HOPPER, draft=draft) == 601
    assert _threshold("0.32.0", AMPERE, draft=draft) == 601
    assert _threshold("0.32.0", BLACKWELL, dcp=8, draft=draft) == 601


def test_decode_path_exchange_by_hand():
    """A chunk of n <= 512 tokens under -dcp 8 on FLASH_ATTN_MLA pays decode's three collectives per layer (183
    calls), gathered per token per layer: query 128 heads x 576 x 2 B = 147,456, LSEs 8 x 128 x 4 = 4,096, outputs
    128 x 512 x 2 = 131,072, 282,624 B; a rank sends 7/8, 247,296 B. A chunk of 513 with nothing cached runs the
    prefill path: no collective."""
    from kvplan.plan.work import dcp_exchange

    spec, bf16 = _spec()
    for n in (1, 2, 512):
        exchange = dcp_exchange(spec, 8, bf16, n, 8, 0, decode_tokens=512)
        assert (exchange.calls, exchange.bytes_sent) == (183, 61 * 247_296 * n)
    prefill = dcp_exchange(spec, 8, bf16, 513, 8, 0, decode_tokens=512)
    assert (prefill.calls, prefill.bytes_sent) == (0, 0)
    # the base threshold: 2 tokens already run the prefill path
    assert dcp_exchange(spec, 8, bf16, 2, 8, 0).calls == 0


def test_decode_path_attention_by_hand():
    """A 512-token chunk on the decode path attends absorbed: per layer 2 x 16 heads x (576 + 512) FLOPs a
    query-key pair over the causal 512 x 513 / 2 = 131,328 pairs; the prefill path prices 2 x 16 x (128 + 64 + 128)
    (DeepSeek's up-projected head shape) over the same pairs."""
    from kvplan.plan.work import prefill_work

    spec, bf16 = _spec()
    pairs = 512 * 513 / 2
    assert prefill_work(spec, 8, bf16, 0, 512, decode_tokens=512).attention_flops == 61 * 2 * 16 * 1088 * pairs
    assert prefill_work(spec, 8, bf16, 0, 512).attention_flops == 61 * 2 * 16 * 320 * pairs


def ttft(gpu: str, n: int, *flags) -> float:
    return estimate_plan(DSV3, "--tp", "8", "--gpu", gpu, "--input-len", str(n), *flags)["prefill"]["ttft_ms"]


@pytest.mark.parametrize("gpu", ["H100", "H200"])
def test_one_and_two_tokens_on_the_same_side_on_hopper(gpu):
    """Hopper, bf16, -dcp 8: 1, 2 and 512 tokens all run the decode path and pay its exchange, so TTFT grows with
    the prompt there; 513 tokens with nothing cached gather nothing, so TTFT falls across 512 -> 513 (before the fix
    2 tokens read 9.24 ms on H100 against 14.75 ms for 1)."""
    one, two, most, past = (ttft(gpu, n, "-dcp", "8") for n in (1, 2, 512, 513))
    assert one < two < most and past < most


@pytest.mark.parametrize("gpu, flags", [("B200", ()), ("A100-80GB", ()), ("H100", ("--kv-cache-dtype", "fp8"))])
def test_threshold_one_elsewhere(gpu, flags):
    """B200 (FLASHINFER_MLA), A100 (TRITON_MLA) and Hopper's fp8 FLASHMLA under -dcp: threshold 1, so the 1-token
    prompt alone pays decode's exchange and 2 tokens run the prefill path, with no collective on a first chunk."""
    one, two = (ttft(gpu, n, "-dcp", "8", *flags) for n in (1, 2))
    assert two < one
