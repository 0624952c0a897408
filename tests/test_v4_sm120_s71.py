"""DeepSeek-V4 (DeepseekV4ForCausalLM, served from vLLM 0.20.0) on compute capability 12.x (RTX PRO 6000 Blackwell,
RTX 5090), release by release. Each expectation is vLLM's or FlashInfer's source read by hand (paths under vllm/ of
the release named, or flashinfer/ of the flashinfer-python its wheel pins in METADATA's Requires-Dist) or hand
arithmetic:

- 0.20-0.23: FlashMLA's path on every CUDA GPU, no capability check (0.20.0 model_executor/layers/
  deepseek_v4_attention.py:627-628; 0.23.0 models/deepseek_v4/nvidia/model.py:716-727 picks FlashInfer's class only
  under --attention-backend FLASHINFER_MLA_SPARSE_DSV4), whose sparse kernels are SM90 / SM100 only.
- 0.24 on: _select_dsv4_attn_cls returns DeepseekV4FlashInferSM120Attention on major 12 (0.24.0 model.py:767-768,
  0.32.0 :1042-1043). It keeps use_fp8_ds_mla_layout = True (flashinfer_sparse.py 0.24.0 :513, 0.32.0 :624), so
  attention.py _resolve_dsv4_kv_cache_dtype stores every fp8* dtype as fp8_ds_mla and refuses bfloat16 as on Hopper;
  its backend's kernel block is [256] (:65-66) and get_kv_cache_shape delegates to FlashMLA's on major 12 (:124-141).
- Its prefill and decode call trtllm_batch_decode_sparse_mla_dsv4(..., swa_topk_lens=, extra_sparse_indices=,
  extra_sparse_topk_lens=) (0.24.0 flashinfer_sparse.py:750-763, :869-881). flashinfer-python 0.6.12 (0.24.0's pin)
  and 0.6.13 (0.25.0 / 0.25.1's) define it without them (flashinfer/mla/_core.py 0.6.12 :462-478, 0.6.13 :463-479);
  0.6.14 (0.26.0's pin) adds them (:1141-1160), and 0.6.16.post3, 0.6.18, 0.6.18.post1, 0.7.0.post1 and 0.7.2.post1
  (the pins of 0.27-0.33) keep them. Python's words for such a call: "f() got an unexpected keyword argument 'x'",
  naming the first one passed. The call is made at start-up, after the KV cache is sized, by kernel_warmup's
  deepseek_v4_sparse_mla_attention_warmup (model_executor/warmup/kernel_warmup.py 0.24.0 :56, 0.25.1 :73; a mixed
  prefill + decode dummy run with force_attention=True, flashinfer_sparse_mla_warmup.py :222-256), which
  gpu_worker.py compile_or_warm_up_model runs before and whatever --enforce-eager (0.24.0 :654-658).
- The profile run carries no attention metadata, so the SM120 class only reserves FlashInfer's workspace, 128 MiB
  (flashinfer_sparse.py 0.24.0 :32 and :652-655; 0.32.0 :46 and :757), not FlashMLA's bf16 gather (flashmla.py
  0.32.0 :105-129: 4 x (max_model_len / 4 + window + max_num_batched_tokens) x 512 bf16, plus int32
  [max_num_batched_tokens, round_up(index_topk + window, 128)] and [max_num_batched_tokens]).
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.conftest import estimate_plan

FLASH, PRO = "deepseek-ai/DeepSeek-V4-Flash", "deepseek-ai/DeepSeek-V4-Pro"
SM12X = ["RTX-PRO-6000-Server", "RTX-PRO-6000-Workstation"]
FLASHMLA_ONLY = ["0.20.0", "0.20.2", "0.21.0", "0.22.0", "0.22.1", "0.23.0"]
PIN_LACKS_THEM = {"0.24.0": "0.6.12", "0.25.0": "0.6.13", "0.25.1": "0.6.13"}
STARTS = ["0.26.0", "0.27.1", "0.28.0", "0.29.0", "0.30.0", "0.31.0", "0.32.0", "0.33.0", "0.34.0"]
HOPPER_OR_SM10X = "or on a Hopper or SM10x Blackwell GPU (H100, H200, B200, ...)"
MiB = 2**20


def v4(gpu: str, release: str, *flags: str, model: str = FLASH) -> dict:
    return estimate_plan(model, "--gpu", gpu, "--tp", "4", "--engine", f"vllm=={release}", "--max-model-len",
                         "131072", *flags)


def refusal(plan: dict) -> dict:
    return plan["engine"]["refusal"] or {}


@pytest.mark.parametrize("release", FLASHMLA_ONLY)
@pytest.mark.parametrize("gpu", SM12X)
def test_0_20_to_0_23_build_flashmla_s_path_on_sm12x(release, gpu):
    why = refusal(v4(gpu, release, "--kv-cache-dtype", "fp8"))  # `auto` is refused first (test_v4_auto_dtype_s71)
    assert why["field"] == "gpu" and why["configuration"]
    assert why["reason"] == (f"FlashMLA's sparse kernels do not run on compute capability 12.0: vLLM {release} builds "
                             f"DeepSeek-V4's attention on them on every CUDA GPU, with no capability check, so "
                             f"start-up fails at the first sparse kernel call.")
    # 0.24-0.25 build FlashInfer's SM120 class but cannot call their FlashInfer: 0.26.0 is the first that starts
    assert "--engine vllm==0.26.0 or newer" in why["remedy"] and why["remedy"].endswith(HOPPER_OR_SM10X)


@pytest.mark.parametrize("release,pin", sorted(PIN_LACKS_THEM.items()))
@pytest.mark.parametrize("dtype", ["fp8", "fp8_e4m3", "fp8_ds_mla"])  # `auto` is refused first (test_v4_auto_dtype_s71)
def test_0_24_and_0_25_pin_a_flashinfer_the_sm120_class_cannot_call(release, pin, dtype):
    plan = v4("RTX-PRO-6000-Server", release, "--kv-cache-dtype", dtype)
    why = refusal(plan)
    assert not plan["engine"]["starts"] and why["field"] == "engine" and why["configuration"]
    assert why["reason"] == (
        f"vLLM {release} runs DeepSeek-V4's attention on compute capability 12.0 with FlashInfer's SM120 sparse MLA "
        f"(models/deepseek_v4/nvidia/flashinfer_sparse.py DeepseekV4FlashInferSM120Attention), whose prefill and "
        f"decode pass swa_topk_lens, extra_sparse_indices and extra_sparse_topk_lens to FlashInfer, but the "
        f"FlashInfer it pins (flashinfer-python=={pin}) has no such arguments: TypeError: "
        f"trtllm_batch_decode_sparse_mla_dsv4() got an unexpected keyword argument 'swa_topk_lens', as start-up "
        f"warms up DeepSeek-V4's sparse MLA attention after sizing the KV cache (model_executor/warmup/"
        f"kernel_warmup.py; --enforce-eager does not skip it).")
    assert why["remedy"].startswith("it starts with --engine vllm==0.26.0 or newer")
    assert why["remedy"].endswith(HOPPER_OR_SM10X)
    assert plan["engine"]["kv_cache_dtype"] == "fp8_ds_mla"  # the cache it sizes before the warm-up fails


def test_the_eager_flag_does_not_skip_the_warm_up():
    why = refusal(v4("RTX-PRO-6000-Server", "0.24.0", "--enforce-eager", "--kv-cache-dtype", "fp8"))
    assert why["field"] == "engine" and "'swa_topk_lens'" in why["reason"]


def test_the_brief_s_command():
    """estimate DeepSeek-V4-Flash --gpu RTX-PRO-6000-Server --tp 4 --engine vllm==0.24.0: `auto` is refused as the
    layers are built (test_v4_auto_dtype_s71); with fp8, sized, then refused at the warm-up."""
    asked = (FLASH, "--gpu", "RTX-PRO-6000-Server", "--tp", "4", "--engine", "vllm==0.24.0")
    plan = estimate_plan(*asked)
    assert not plan["engine"]["starts"] and plan["max_concurrency"] == 0
    assert refusal(plan)["field"] == "kv_dtype" and "--engine vllm==0.26.0" in refusal(plan)["remedy"]
    plan = estimate_plan(*asked, "--kv-cache-dtype", "fp8")
    assert not plan["engine"]["starts"] and plan["max_concurrency"] == 0
    assert "flashinfer-python==0.6.12" in refusal(plan)["reason"]


@pytest.mark.parametrize("release", STARTS)
@pytest.mark.parametrize("model", [FLASH, PRO])
def test_from_0_26_it_starts_with_hopper_s_cache(release, model):
    """The SM120 class keeps the fp8_ds_mla layout, pages and block of 256: a token takes the bytes it takes on an
    H100 at the same release (the window's entry: 448 fp8 + 7 scales + 1 pad + 64 x 2 rope = 584 bytes). V4-Pro's
    weights outgrow four 96 GB cards: only its memory stops it."""
    plan = v4("RTX-PRO-6000-Server", release, "--kv-cache-dtype", "fp8", model=model)
    hopper = v4("H100", release, "--kv-cache-dtype", "fp8", model=model)
    assert not refusal(plan).get("configuration"), refusal(plan)
    assert plan["engine"]["starts"] is (model == FLASH)
    assert plan["engine"]["kv_cache_dtype"] == hopper["engine"]["kv_cache_dtype"] == "fp8_ds_mla"
    assert plan["block_size"] == hopper["block_size"] == 256
    assert plan["kv_bytes_per_token_per_gpu"] == hopper["kv_bytes_per_token_per_gpu"]


def test_bfloat16_is_refused_on_sm12x_as_on_hopper():
    """_resolve_dsv4_kv_cache_dtype raises for a 16-bit dtype under the fp8_ds_mla layout the SM120 class keeps."""
    why = refusal(v4("RTX-PRO-6000-Server", "0.32.0", "--kv-cache-dtype", "bfloat16"))
    assert why["field"] == "kv_dtype"
    assert why["reason"].startswith("DeepseekV4 fp8_ds_mla layout only supports fp8 kv-cache, got bfloat16.")


def test_the_sm120_class_reserves_flashinfer_s_workspace_not_flashmla_s_gather():
    from kvplan.engines.vllm_budget import v4_prefill_workspace
    from kvplan.model.sources import resolve

    spec = resolve(FLASH)
    settings = SimpleNamespace(max_model_len=1_048_576, max_num_batched_tokens=8192)
    # window 128, index_topk 512, latent 512 (flashmla.py 0.32.0 :105-129)
    # (its int32 top-k views from 0.27 only: flashmla.py 0.26.0 :98-100 reserves the gather alone). The indexer's
    # K gather shares that workspace (test_v4_audit_s71): 1,048,576 x 40 / 4 keys of 128 + 4 B and 1 MiB up to 0.31,
    # 1,048,576 x 8 x 2 / 4 from 0.32; a larger request replaces the buffer, FlashInfer's SM120 one stands apart
    gather = 4 * (1_048_576 // 4 + 128 + 8192) * 512 * 2
    old_indexer = 10 * 1_048_576 * 132 + MiB
    new_indexer = 4 * 1_048_576 * 132 + MiB
    assert v4_prefill_workspace(spec, settings, (9, 0), "0.32.0") == gather + 8192 * 640 * 4 + 8192 * 4
    assert v4_prefill_workspace(spec, settings, (10, 0), "0.24.0") == old_indexer > gather
    assert v4_prefill_workspace(spec, settings, (12, 0), "0.23.0") == old_indexer  # FlashMLA's class there
    for release in ("0.24.0", "0.26.0"):
        assert v4_prefill_workspace(spec, settings, (12, 0), release) == 128 * MiB + old_indexer
    for release in ("0.32.0", "0.34.0"):
        assert v4_prefill_workspace(spec, settings, (12, 0), release) == 128 * MiB + new_indexer


def test_the_budget_says_which_workspace():
    def peak_source(gpu: str) -> str:
        plan = v4(gpu, "0.32.0", "--kv-cache-dtype", "fp8")
        return next(t["source"] for t in plan["budget"]["terms"] if t["name"] == "profile_peak")

    # 128 MiB + the indexer's 131,072 x 40 / 4 keys of 132 B and 1 MiB = 308,281,344 B (test_v4_audit_s71); from
    # session 72 the indexer's gather lies in the workspace DeepGEMM's experts keep there, 1,003,487,232 B
    # (test_v4_mxfp4_s72), leaving FlashInfer's own 128 MiB
    assert peak_source("RTX-PRO-6000-Server").endswith("+ 0.12 GiB of DeepSeek-V4's FlashInfer SM120 attention's "
                                                       "and its indexer's workspace")
    # on an H100 (Humming from 0.32) the experts keep 57,344 B a token over 8,192 tokens, 469,762,048 B, more than
    # the gather at this length asks of the same buffer: nothing past them to add
    assert "DeepSeek-V4's prefill gather" not in peak_source("H100")
    assert "prefill gather (FlashMLA's or its indexer's, the larger) workspace" in peak_source("B200")


@pytest.mark.parametrize("gpu", ["H100", "B200"])
@pytest.mark.parametrize("release", ["0.24.0", "0.25.1"])
def test_hopper_and_sm10x_are_not_refused_in_0_24_and_0_25(gpu, release):
    """FlashMLA's class there: none of the SM120 class's FlashInfer calls."""
    assert not refusal(v4(gpu, release, "--kv-cache-dtype", "fp8")).get("configuration")


def test_the_rules_say_where_each_release_range_begins():
    from kvplan.engines.vllm_remedy import release_boundaries
    from kvplan.engines.vllm_v4_gpu import v4_flashinfer_sm120, v4_sm120_first_release, v4_sm120_pin_refusal_line

    assert v4_sm120_first_release() == "0.26.0"
    assert [v4_flashinfer_sm120((12, 0), r) for r in ("0.23.0", "0.24.0", "0.34.0")] == [False, True, True]
    assert not v4_flashinfer_sm120((10, 0), "0.32.0") and not v4_flashinfer_sm120(("rocm",), "0.32.0")
    assert v4_sm120_pin_refusal_line((12, 0), "0.25.1") and not v4_sm120_pin_refusal_line((12, 0), "0.26.0")
    assert not v4_sm120_pin_refusal_line((9, 0), "0.24.0") and not v4_sm120_pin_refusal_line((12, 0), "0.23.0")
    assert {"0.20.0", "0.24.0", "0.25.0", "0.26.0"} <= set(release_boundaries())
