"""DeepSeek-V4's attention in vLLM on each CUDA GPU, release by release: which attention class vLLM builds for it,
where that class cannot start, and what it reserves in the profile run. Paths are under vllm/ of the release named;
FlashInfer's under flashinfer/ of the flashinfer-python that release's wheel pins (METADATA Requires-Dist). kvplan
copies no vLLM code.

Without --attention-backend (which kvplan does not model), models/deepseek_v4/nvidia/model.py picks the class:
- 0.20-0.23: FlashMLA's path on every CUDA GPU, whose sparse kernels run on SM90 / SM100 only (V4_MAJORS).
- 0.24 on: DeepseekV4FlashInferSM120Attention on major 12 (RTX PRO 6000 Blackwell, RTX 5090), FlashMLA's elsewhere
  (_select_dsv4_attn_cls, 0.24.0 :738-769, 0.32.0 :1042-1044). That class keeps the fp8_ds_mla layout
  (use_fp8_ds_mla_layout = True: flashinfer_sparse.py 0.24.0 :513, 0.32.0 :624, 0.34.0 :622) and FlashMLA's cache
  shape (get_kv_cache_shape delegates on major 12, 0.24.0 :124-141) and kernel block [256] (0.24.0 :65-66, 0.34.0
  :119-120, as sparse_mla.py's): the cache, its pages and the dtype rules
  (vllm_backend_refusals.V4_DTYPE_REFUSALS) are Hopper's. What differs: the FlashInfer it calls
  (V4_SM120_ARGS_SINCE) and its profile-run workspace (V4_SM120_WORKSPACE).
"""

from __future__ import annotations

from .vllm_sparse import BLACKWELL, HOPPER, SM120, first_pinning, flashinfer_lacks, is_rocm_platform
from .vllm_versions import PINNED, release_rule

# The compute capability majors DeepSeek-V4's attention runs on, by first release. No platform check stands in the
# way on the others: vLLM builds the FlashMLA path with no capability check and start-up fails at the first sparse
# kernel, FlashMLA's being SM90 / SM100 only (models/deepseek_v4/sparse_mla.py 0.34.0:95-96
# supports_compute_capability major in [9, 10], never asked on this path).
V4_MAJORS = (
    ((0, 24), (HOPPER, BLACKWELL, SM120), "models/deepseek_v4/nvidia/model.py _select_dsv4_attn_cls (0.24.0 "
                                          ":738-769, 0.34.0 :539-569): FlashInfer's SM120 path on major 12 "
                                          "(flashinfer_sparse.py 0.34.0 :139-141 majors [10, 12]), FlashMLA's on "
                                          "every other CUDA GPU"),
    ((0, 20), (HOPPER, BLACKWELL), "FlashMLA's path on every CUDA GPU (0.20.0 model_executor/layers/"
                                   "deepseek_v4_attention.py:627-628, 0.22.1 models/deepseek_v4/nvidia/flashmla.py"
                                   ":117, 0.23.0 nvidia/model.py:716-727: FlashInfer's only by --attention-backend)"),
)
V4_UNCHECKED_GPU = ("FlashMLA's sparse kernels do not run on compute capability {cc}: vLLM {version} builds "
                    "DeepSeek-V4's attention on them on {where}, with no capability check, so start-up fails at the "
                    "first sparse kernel call.")

# DeepseekV4FlashInferSM120Attention's prefill and decode both call FlashInfer's trtllm_batch_decode_sparse_mla_dsv4
# with swa_topk_lens=, extra_sparse_indices= and extra_sparse_topk_lens= (flashinfer_sparse.py 0.24.0 :750-763 and
# :869-881; 0.25.x and 0.26.0 :769, :888; 0.32.0 :854, :973), keywords FlashInfer takes from 0.6.14
# (flashinfer/mla/_core.py 0.6.14 :1141-1160; 0.6.16.post3 :1151, 0.6.18 / 0.6.18.post1 :1488, 0.7.0.post1 :1832,
# 0.7.2.post1 :1889, 0.7.4 :1822 keep them: V4_SM120_ARGS_SINCE), which 0.24-0.25's pins lack
# (vllm_sparse.FLASHINFER_PINS). The class's own probe passes on those pins (utils/flashinfer.py 0.24.0 :216-232
# has_flashinfer_sparse_mla_sm120 only imports the names, which flashinfer/decode.py 0.6.12 :34-35 exports), so start-up
# sizes the KV cache, then the kernel warm-up's mixed prefill + decode dummy run with attention
# (model_executor/warmup/flashinfer_sparse_mla_warmup.py 0.24.0 and 0.25.x :222-256
# deepseek_v4_sparse_mla_attention_warmup, from kernel_warmup.py 0.24.0 :56 / 0.25.x :73, v1/worker/gpu_worker.py 0.24.0
# :654 / 0.25.x :758, before and whatever --enforce-eager) raises.
V4_SM120_ARGS_SINCE = (0, 6, 14)  # 0.6.12 mla/_core.py:462-478 and 0.6.13 :463-479 lack all three
V4_SM120_PIN_FAILURE = ("vLLM {version} runs DeepSeek-V4's attention on compute capability {cc} with FlashInfer's "
                        "SM120 sparse MLA (models/deepseek_v4/nvidia/flashinfer_sparse.py "
                        "DeepseekV4FlashInferSM120Attention), whose prefill and decode pass swa_topk_lens, "
                        "extra_sparse_indices and extra_sparse_topk_lens to FlashInfer, but the FlashInfer it pins "
                        "(flashinfer-python=={pin}) has no such arguments: TypeError: "
                        "trtllm_batch_decode_sparse_mla_dsv4() got an unexpected keyword argument 'swa_topk_lens', as "
                        "start-up warms up DeepSeek-V4's sparse MLA attention after sizing the KV cache "
                        "(model_executor/warmup/kernel_warmup.py; --enforce-eager does not skip it).")

# What the SM120 class reserves in the profile run, which has no attention metadata: FlashInfer's workspace, one
# zeroed uint8 buffer per device (flashinfer_sparse.py _FLASHINFER_DSV4_WORKSPACE_BUFFER_SIZE = 128 MiB, 0.24.0 :32,
# 0.32.0 :46, 0.34.0 :45; forward_mqa -> _reserve_empty_forward_workspace, 0.24.0 :592-595 and :652-655, 0.32.0
# :696-699 and :757), kept for serving; not FlashMLA's bf16 gather (vllm_budget.v4_prefill_workspace).
V4_SM120_WORKSPACE = 128 * 1024 * 1024


def _cc(capability) -> str:
    return f"{capability[0]}.{capability[1]}"


def v4_gpu_refusal_line(capability=(), version: str = PINNED) -> str:
    """Why DeepSeek-V4 does not start on this CUDA GPU ('' where it does, on ROCm, for an unknown GPU): V4_MAJORS."""
    majors = release_rule(V4_MAJORS, version)
    if not capability or is_rocm_platform(capability) or majors is None or capability[0] in majors:
        return ""
    where = "every CUDA GPU but 12.x (FlashInfer's)" if SM120 in majors else "every CUDA GPU"
    return V4_UNCHECKED_GPU.format(cc=_cc(capability), version=version, where=where)


def v4_flashinfer_sm120(capability=(), version: str = PINNED) -> bool:
    """Whether vLLM `version` builds DeepSeek-V4's attention on this GPU as DeepseekV4FlashInferSM120Attention."""
    return bool(capability) and not is_rocm_platform(capability) and capability[0] == SM120 and \
        SM120 in (release_rule(V4_MAJORS, version) or ())


def v4_sm120_pin_refusal_line(capability=(), version: str = PINNED) -> str:
    """Why DeepSeek-V4 on SM12x fails as start-up warms up its attention in `version` ('' where it does not, and on
    other GPUs): the FlashInfer the release pins lacks arguments the SM120 class passes (V4_SM120_ARGS_SINCE)."""
    pin = flashinfer_lacks(V4_SM120_ARGS_SINCE, version)
    if not pin or not v4_flashinfer_sm120(capability, version):
        return ""
    return V4_SM120_PIN_FAILURE.format(version=version, cc=_cc(capability), pin=pin)


def v4_sm120_first_release() -> str:
    """The first release whose DeepSeek-V4 starts on SM12x: the SM120 class's first, past V4_SM120_ARGS_SINCE."""
    with_class = next(row[0] for row in reversed(V4_MAJORS) if SM120 in row[1])
    first = max(with_class, first_pinning(V4_SM120_ARGS_SINCE))
    return ".".join(map(str, first + (0,) * (3 - len(first))))
