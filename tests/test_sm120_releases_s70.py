"""Sparse MLA (DeepSeek-V3.2, GLM-5.x) and dense MLA on compute capability 12.x (RTX PRO 6000 Blackwell, RTX 5090),
release by release from 0.11.0 to 0.31.x. Each figure is hand arithmetic or vLLM's source read by hand (paths under
vllm/ of the release named; the FlashInfer each vLLM wheel pins is its METADATA's Requires-Dist):

- 0.11.0: platforms/cuda.py:252-255 returns FlashMLASparseBackend for any sparse layer, no capability check.
- 0.11.1-0.23.x: an MLA layer on any major but 10 gets FLASH_ATTN_MLA, FLASHMLA, FLASHINFER_MLA, TRITON_MLA,
  FLASHMLA_SPARSE (0.11.1 cuda.py:63-70, 0.23.0 :123-130); the one sparse backend, FLASHMLA_SPARSE, wants major 9 or
  10 (flashmla_sparse.py 0.11.1 :86-87, 0.23.0 :129-130): "No valid attention backend found for cuda".
- 0.24.0 on: major 12 gets TRITON_MLA then FLASHINFER_MLA_SPARSE_SM120 (0.24.0 cuda.py:130-134), which lists auto,
  fp8, fp8_e4m3, fp8_ds_mla (flashinfer_mla_sparse.py 0.24.0 :146-151, the same to 0.32.0) and stores auto, fp8 and
  fp8_e4m3 as fp8_ds_mla (mla_attention.py 0.24.0 :323-335); V3.2's bfloat16 is auto first (models/config.py
  0.24.0 :37-39); GLM-5.x's bfloat16 finds no backend.
- 0.24.0-0.25.x: its decode passes kv_scale_format to FlashInfer's trtllm_batch_decode_with_kv_cache_mla
  (flashinfer_mla_sparse_sm120.py 0.24.0 :141-156), which flashinfer-python 0.6.12 (0.24.0's pin) and 0.6.13
  (0.25.x's) lack (flashinfer/mla/_core.py 0.6.12 :1054-1077, 0.6.13 :1622-1645); 0.6.14 (0.26.0's pin) has it
  (:2553). Python's words for such a call: "f() got an unexpected keyword argument 'x'".
- dense MLA, 0.11.0: TRITON_MLA on every GPU but Hopper (FlashMLA) and 10.0 (CUTLASS_MLA) (cuda.py 0.11.0:240-300),
  whose impl raises NotImplementedError("TritonMLA V1 with FP8 KV cache not yet supported") for any dtype but auto
  (triton_mla.py 0.11.0 :68-70; is_quantized_kv_cache is `!= "auto"`, attention/backends/abstract.py:203-204).

Bytes a token a GPU, by hand: DeepSeek-V3.2 has 61 layers, each an MLA latent and a 132-byte indexer key; the
fp8_ds_mla entry is 512 fp8 latent + 4 float32 scales (16) + 64 bf16 rope (128) = 656 bytes, so 61 x (656 + 132) =
48,068; a bf16 latent (512 + 64) x 2 = 1,152, so 61 x (1,152 + 132) = 78,324. DeepSeek-V2-Lite: 27 layers of a
576-wide latent, 27 x 576 x 2 = 31,104 in bf16, 15,552 in fp8.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import estimate_plan, run_kvplan

V32, GLM5, V2_LITE = "deepseek-ai/DeepSeek-V3.2", "zai-org/GLM-5.2", "deepseek-ai/DeepSeek-V2-Lite"
FP8_DS_MLA_V32, BF16_V32 = 61 * (512 + 4 * 4 + 64 * 2 + 132), 61 * ((512 + 64) * 2 + 132)
assert (FP8_DS_MLA_V32, BF16_V32) == (48_068, 78_324)

# every minor release from 0.11.1 that serves DeepSeek-V3.2 before FLASHINFER_MLA_SPARSE_SM120 (and their patches)
NO_SM120_BACKEND = ["0.11.1", "0.11.2", "0.12.0", "0.13.0", "0.14.1", "0.15.1", "0.16.0", "0.17.1", "0.18.1", "0.19.1",
                    "0.20.2", "0.21.0", "0.22.1", "0.23.0"]
PIN_LACKS_KV_SCALE_FORMAT = {"0.24.0": "0.6.12", "0.25.0": "0.6.13", "0.25.1": "0.6.13"}
STARTS = ["0.26.0", "0.27.0", "0.27.1", "0.28.0", "0.29.0", "0.30.0", "0.31.0"]


def v32(gpu: str, release: str, dtype: str, model: str = V32, length: str = "8192") -> dict:
    return estimate_plan(model, "--gpu", gpu, "-tp", "8", "--engine", f"vllm=={release}", "--kv-cache-dtype", dtype,
                         "--max-model-len", length)


def refusal(plan: dict) -> dict:
    return plan["engine"]["refusal"] or {}


@pytest.mark.parametrize("release", STARTS)
@pytest.mark.parametrize("dtype", ["auto", "bfloat16", "fp8", "fp8_e4m3", "fp8_ds_mla"])
def test_from_0_26_every_dtype_the_sm120_backend_takes_is_a_656_byte_entry(release, dtype):
    plan = v32("RTX-PRO-6000-Server", release, dtype)
    assert plan["kv_bytes_per_token_per_gpu"] == FP8_DS_MLA_V32
    assert plan["engine"]["starts"], refusal(plan)
    if dtype == "auto":
        assert plan["kv_dtype"] == "fp8_ds_mla"


def test_the_brief_s_command_at_0_28():
    r = run_kvplan("estimate", V32, "--gpu", "RTX-PRO-6000-Server", "--tp", "8", "--engine", "vllm==0.28.0",
                   "--kv-cache-dtype", "fp8", "--format", "json")
    assert r.returncode == 0, r.stderr
    (plan,) = json.loads(r.stdout)["plans"]
    assert plan["kv_bytes_per_token_per_gpu"] == FP8_DS_MLA_V32
    assert not refusal(plan).get("configuration")  # at the model's own 163,840 tokens only memory can stop it


@pytest.mark.parametrize("release", ["0.26.0", "0.31.0"])
@pytest.mark.parametrize("model,dtype", [(V32, "fp8_e5m2"), (GLM5, "bfloat16"), (GLM5, "fp8_e5m2")])
def test_what_the_sm120_backend_does_not_list_is_refused(release, model, dtype):
    plan = v32("RTX-5090", release, dtype, model)
    why = refusal(plan)
    assert why["field"] == "kv_dtype" and not plan["engine"]["starts"]
    assert why["reason"] == (f"No valid attention backend found for cuda (compute capability 12.0) with kv_cache_dtype "
                             f"{dtype}: no sparse MLA backend takes it (kv_cache_dtype not supported).")


@pytest.mark.parametrize("release,pin", sorted(PIN_LACKS_KV_SCALE_FORMAT.items()))
@pytest.mark.parametrize("dtype", ["auto", "bfloat16", "fp8", "fp8_ds_mla"])
def test_0_24_and_0_25_pin_a_flashinfer_the_sm120_decode_cannot_call(release, pin, dtype):
    plan = v32("RTX-PRO-6000-Server", release, dtype)
    why = refusal(plan)
    assert plan["kv_bytes_per_token_per_gpu"] == FP8_DS_MLA_V32  # the cache it sizes before the capture fails
    assert not plan["engine"]["starts"] and why["field"] == "engine" and why["configuration"]
    assert why["reason"] == (
        f"vLLM {release} runs sparse MLA on compute capability 12.0 with FLASHINFER_MLA_SPARSE_SM120, whose decode "
        f"passes kv_scale_format to FlashInfer (v1/attention/backends/mla/flashinfer_mla_sparse_sm120.py:155), but "
        f"the FlashInfer it pins (flashinfer-python=={pin}) has no such argument: TypeError: "
        f"trtllm_batch_decode_with_kv_cache_mla() got an unexpected keyword argument 'kv_scale_format', as start-up's "
        f"kernel warm-up, after sizing the KV cache, runs a mixed prefill + decode batch through it to autotune "
        f"FlashInfer (model_executor/warmup/flashinfer_sparse_mla_warmup.py; autotune is on at every optimization "
        f"level but -O0, so --enforce-eager does not skip it; with autotune off, at the decode CUDA graph capture, or "
        f"with no graphs either, at the first request).")
    assert "--engine vllm==0.26.0" in why["remedy"]


def test_0_24_refuses_a_dtype_its_backend_does_not_list_before_the_decode_fails():
    why = refusal(v32("RTX-PRO-6000-Server", "0.24.0", "bfloat16", GLM5))  # GLM-5.x's bfloat16 is not rewritten
    assert why["field"] == "kv_dtype" and "kv_cache_dtype bfloat16: no sparse MLA backend takes it" in why["reason"]


@pytest.mark.parametrize("release", NO_SM120_BACKEND)
@pytest.mark.parametrize("dtype", ["auto", "fp8"])
def test_0_11_1_to_0_23_find_no_sparse_backend_on_sm120(release, dtype):
    plan = v32("RTX-5090", release, dtype)
    why = refusal(plan)
    assert not plan["engine"]["starts"] and why["field"] == "gpu" and why["configuration"]
    assert why["reason"] == (f"No valid attention backend found for cuda (compute capability 12.0) with a sparse MLA "
                             f"layer: every sparse MLA backend of vLLM {release} needs compute capability 9.x or "
                             f"10.x.")
    assert "--engine vllm==0.26.0" in why["remedy"]  # 0.24-0.25 fail at their first decode
    assert why["remedy"].endswith("or on a Hopper or SM10x Blackwell GPU (H100, H200, B200, ...)")


def test_glm5_from_its_first_release_finds_no_sparse_backend_on_sm120():
    why = refusal(v32("RTX-PRO-6000-Server", "0.16.0", "fp8", GLM5))
    assert why["field"] == "gpu" and "every sparse MLA backend of vLLM 0.16.0 needs" in why["reason"]


def test_0_11_0_picks_flashmla_sparse_on_sm120_and_fails_at_its_first_kernel():
    why = refusal(v32("RTX-PRO-6000-Server", "0.11.0", "auto"))
    assert why["field"] == "gpu"
    assert why["reason"].startswith("FlashMLA's sparse kernels do not run on compute capability 12.0: vLLM 0.11.0 "
                                    "picks FLASHMLA_SPARSE")


def test_the_rules_say_where_each_release_range_begins():
    from kvplan.engines.vllm_remedy import release_boundaries
    from kvplan.engines.vllm_sparse import sm120_first_release, sm120_pin_refusal_line, sm120_sparse

    assert sm120_first_release() == "0.26.0"
    assert [sm120_sparse((12, 0), r) for r in ("0.23.0", "0.24.0", "0.31.0")] == [False, True, True]
    assert sm120_pin_refusal_line((12, 0), "0.25.1") and not sm120_pin_refusal_line((12, 0), "0.26.0")
    assert not sm120_pin_refusal_line((10, 0), "0.24.0")  # SM10x runs FLASHINFER_MLA_SPARSE / FLASHMLA_SPARSE
    assert {"0.24.0", "0.25.0", "0.26.0"} <= set(release_boundaries())


# -- dense MLA on SM12x -------------------------------------------------------------------------------------------

def dense(gpu: str, release: str, dtype: str) -> dict:
    return estimate_plan(V2_LITE, "--gpu", gpu, "--engine", f"vllm=={release}", "--kv-cache-dtype", dtype,
                         "--max-model-len", "8192")


@pytest.mark.parametrize("dtype", ["bfloat16", "fp8", "fp8_e4m3"])
def test_0_11_0_triton_mla_raises_for_any_dtype_but_auto(dtype):
    why = refusal(dense("RTX-PRO-6000-Server", "0.11.0", dtype))
    assert (why["reason"], why["field"]) == ("TritonMLA V1 with FP8 KV cache not yet supported", "kv_dtype")
    assert "--kv-cache-dtype auto" in why["remedy"]


def test_0_11_0_dense_mla_elsewhere():
    plan = dense("RTX-PRO-6000-Server", "0.11.0", "auto")
    assert plan["engine"]["starts"] and plan["kv_bytes_per_token_per_gpu"] == 31_104 and plan["block_size"] == 16
    assert refusal(dense("A100-80GB", "0.11.0", "fp8"))["reason"].startswith("TritonMLA V1")  # TRITON_MLA too
    hopper = dense("H100", "0.11.0", "fp8")  # FlashMLA, its block forced to 64 (cuda.py 0.11.0:162-167)
    assert hopper["engine"]["starts"] and (hopper["kv_bytes_per_token_per_gpu"], hopper["block_size"]) == (15_552, 64)


@pytest.mark.parametrize("release,starts", [("0.11.1", False), ("0.17.1", False), ("0.18.0", True), ("0.24.0", True),
                                            ("0.31.0", True)])
def test_dense_mla_fp8_on_sm120_is_triton_mla_s_from_0_18(release, starts):
    """TRITON_MLA, the only dense MLA backend on major 12, lists auto only up to 0.16 (bfloat16 in 0.17) and fp8 /
    fp8_e4m3 from 0.18 (triton_mla.py 0.11.1 :31, 0.18.0 :32-38); its kernel blocks are MultipleOf(16) from 0.18, none
    before, and no release forces a block on major 12: 16."""
    plan = dense("RTX-PRO-6000-Server", release, "fp8")
    assert plan["engine"]["starts"] is starts and plan["block_size"] == 16
    assert plan["kv_bytes_per_token_per_gpu"] == 15_552
    if not starts:
        assert refusal(plan)["reason"].startswith("No valid attention backend found for cuda (compute capability 12.0) "
                                                  "with kv_cache_dtype fp8")


def test_the_sm120_gpu_refusal_s_own_remedy_reads_as_a_sentence():
    """What `kvplan check` says where no planned fix is given (Refusal.remedy): 'it starts on a Hopper ...'."""
    from kvplan.engines.vllm_backend_refusals import sparse_gpu_refusal
    from kvplan.model.bundled import load_bundled
    from kvplan.model.sources import bundled_for

    _, spec = load_bundled(bundled_for("deepseek-ai/DeepSeek-V3.2"))
    refused = sparse_gpu_refusal(spec, (12, 0), "0.20.0")
    assert refused.remedy == "it starts on a Hopper or SM10x Blackwell GPU (H100, H200, B200, ...)"
