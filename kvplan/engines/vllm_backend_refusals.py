"""vLLM's refusals, whatever the memory, met as the attention layers are built and pick their backends
(model_executor/layers/attention/, v1/attention/backends/, platforms/cuda.py and rocm.py _get_backend_priorities),
each on the dtype the layers are built with (vllm_kv_dtype.cache_precision):
- a cache dtype no backend stores on this GPU: sparse MLA's (sparse_dtype_refusal, over vllm_sparse.py), dense MLA's
  fp8_e5m2 (dense_mla_dtype_refusal), NVFP4 (nvfp4_refusal, over vllm_nvfp4.py), Octave on CUDA (octave_refusal),
  DeepSeek-V4's fp8-only layout (v4_dtype_refusal), fp8_e5m2 beside a quantisation config's KV cache method
  (checkpoint_e5m2_refusal, over vllm_e5m2.py);
- sparse MLA or DeepSeek-V4 on a GPU none of its kernels runs on (sparse_gpu_refusal);
- a --block-size no backend takes (sparse_block_refusal, attention_block_refusal, over vllm_specs.py), and an MLA
  hybrid's pages the block forced on its MLA backend leaves ununified (mla_hybrid_block_refusal);
- a logit soft-cap (Gemma 2) on V0's XFormers backend in 0.5.4-0.6.4 (softcap_refusal).
vllm.configuration_refusal asks them in the order vLLM meets them.
"""

from __future__ import annotations

from typing import Optional

from ..model.kinds import V4_KINDS, FullAttention, MLALatent
from ..model.precision import vllm_name
from .figures import Refusal
from .vllm_e5m2 import MLA_BACKEND_FIRST, e5m2_refusal
from .vllm_kv_dtype import V4_AUTO, _sparse_layer_args, cache_precision, is_sparse, is_v4, sparse_choice
from .vllm_mamba_state import hybrid_pages
from .vllm_mla_quantized import quantized_mla_refusal_line
from .vllm_model_dtype import served_dtype
from .vllm_nvfp4 import nvfp4_refusal_line, refusal_options
from .vllm_quant import REMEDY_FLAGS
from .vllm_sparse import (ROCM_NO_SPARSE, ROCM_SPARSE_SINCE, SM120, TRITON_MLA_QUANTIZED, dense_mla_fp8,
                          dense_mla_refusal_line, is_rocm_platform, refusal_line, rocm_block_refusal,
                          sm120_first_release, sm120_pin_refusal_line, sm120_sparse, sparse_gpu_refusal_line,
                          taken_dtypes)
from .vllm_specs import (BACKEND_BLOCK_MULTIPLE, DENSE_MLA_BLOCK_RULES, backend_block_refusal,
                         cuda_sparse_block_refusal, default_block_size, dense_mla_backend, forced_mla_block,
                         hybrid_block_size, ununified_pages_error)
from .vllm_v4_gpu import v4_gpu_refusal_line, v4_sm120_first_release, v4_sm120_pin_refusal_line
from .vllm_versions import PINNED, in_span, parse_version, release_rule

# DeepSeek-V4 on NVIDIA Hopper and Blackwell datacenter GPUs (models/deepseek_v4/nvidia/model.py
# _select_dsv4_attn_cls: DeepseekV4FlashMLAAttention unless SM12x or an explicit FlashInfer backend), and on SM12x
# (its DeepseekV4FlashInferSM120Attention keeps the same layout: vllm_v4_gpu.py): the fp8_ds_mla layout only; the
# attention layer, as it is built, turns every fp8* dtype into fp8_ds_mla and refuses any other, `auto` too before
# 0.30 (vllm_kv_dtype.V4_AUTO). vLLM's words by first release (newest first): an AssertionError up to 0.29, then a
# ValueError with advice.
V4_REFUSAL = ("DeepseekV4 fp8_ds_mla layout only supports fp8 kv-cache, got {dtype}. Please set `--kv-cache-dtype "
              "fp8` or select a backend that supports bfloat16 KV cache.")
V4_DTYPE_REFUSALS = (
    ((0, 30), V4_REFUSAL, "0.30.0 models/deepseek_v4/attention.py:111-118 _resolve_dsv4_kv_cache_dtype (0.32.0 "
                          ":110-117)"),
    ((0, 24), "DeepseekV4 fp8_ds_mla layout only supports fp8 kv-cache, got {dtype}.",
     "0.24.0 models/deepseek_v4/attention.py:79-82, 0.25.x and 0.26.0 :83-86, 0.27.0 :105-108, 0.28.0 :106-109, "
     "0.29.0 :105-108"),
    ((0, 23), "DeepseekV4 FlashMLA fp8 layout only supports fp8 kv-cache, got {dtype}.",
     "0.23.0 models/deepseek_v4/attention.py:80-83"),
    ((0, 20), "DeepseekV4 only supports fp8 kv-cache format for now, got {dtype}.",
     "0.20.0 model_executor/layers/deepseek_v4_attention.py:597-600, 0.20.1 and 0.20.2 :671-674, 0.21.0 :697-700; "
     "0.22.x models/deepseek_v4/attention.py:671-674"),
)
V4_FP8 = ("fp8",)  # the dtype vLLM's own advice names; every fp8* is stored alike (vllm_kv_dtype.cache_precision)
# where `auto` is refused, the release that stores it (V4_AUTO's newest row), said beside the dtype the search checks
V4_AUTO_RELEASE = "--engine vllm=={first} or newer, where auto is fp8_ds_mla"


def sparse_dtype_refusal(spec, precision, capability=(), version: str = PINNED,
                         tp: Optional[int] = None) -> Optional[Refusal]:
    """vLLM's refusal of a quantized cache dtype no sparse MLA backend takes on this GPU (None when one does), or
    of sparse attention itself (ROCm before 0.12)."""
    if not is_sparse(spec) or is_v4(spec):
        return None
    if is_rocm_platform(capability) and parse_version(version) + (0,) < ROCM_SPARSE_SINCE:
        return Refusal(ROCM_NO_SPARSE, None, configuration=True, field="engine",
                       options=("vllm==" + ".".join(map(str, ROCM_SPARSE_SINCE + (0,))),), onward="newer")
    if precision.bits >= 16 and not sm120_sparse(capability, version):  # 16-bit latents on every other backend
        return None
    choice = sparse_choice(spec, precision, capability, version, tp)
    if choice.backend:
        return None
    taken = taken_dtypes(capability, version, *_sparse_layer_args(spec, tp, version))
    return Refusal(refusal_line(precision.vllm_dtype, capability, choice.why), None, configuration=True,
                   field="kv_dtype", options=taken)


def _has_dense_mla(spec) -> bool:
    return any(isinstance(layer, MLALatent) and not layer.sparse and not isinstance(layer, V4_KINDS)
               for layer, _ in spec.layer_counts)


def dense_mla_dtype_refusal(spec, precision, capability=(), version: str = PINNED,
                            tp: Optional[int] = None) -> Optional[Refusal]:
    """vLLM's refusal of a plain fp8 cache (fp8_e5m2) no dense MLA backend takes on this GPU, on the dtype the layers
    are built with (vllm_sparse.DENSE_MLA_FP8); the remedy names the values that start. In 0.11.0 TRITON_MLA, the
    backend of every CUDA GPU but Hopper and 10.0, raises for any dtype but auto (vllm_sparse.TRITON_MLA_QUANTIZED);
    0.8.0-0.10.2's MLA impls, V0's and V1's, raise for it themselves (vllm_mla_quantized.py)."""
    if not _has_dense_mla(spec):
        return None
    early = early_mla_refusal(spec, precision, capability, version)
    if early is not None:
        return early
    built = cache_precision(spec, precision, capability, version, tp).vllm_dtype
    triton = release_rule(TRITON_MLA_QUANTIZED, version, "")
    if triton and not precision.auto and not is_rocm_platform(capability) and \
            dense_mla_backend(True, version, capability) == "TRITON_MLA":  # what the layer sees: `auto` as asked
        return Refusal(triton, None, configuration=True, field="kv_dtype", options=("auto",))
    why = dense_mla_refusal_line(built, capability, version)
    if not why:
        return None
    return Refusal(why, None, configuration=True, field="kv_dtype",
                   options=("auto",) + dense_mla_fp8(capability, version))


def early_mla_refusal(spec, precision, capability, version: str) -> Optional[Refusal]:
    """0.8.0-0.10.2's refusal of a dense MLA model's cache dtype other than auto on CUDA, in the words of the impl the
    engine the V1 oracle picks builds (vllm_mla_quantized.py); None elsewhere."""
    from .vllm_v1_oracle import asked_kv_dtype, v0_fallback

    if not precision.quantized or is_rocm_platform(capability):  # 16 bits: `auto`, the one such value they take
        return None
    asked = asked_kv_dtype(precision)
    # one stage read: a pipeline on 0.8-0.9.0 runs V0, whose impl's words differ but whose verdict does not
    v1 = v0_fallback(spec, version, kv_dtype=asked, capability=capability) is None
    why = quantized_mla_refusal_line(capability, version, v1)
    return None if why is None else Refusal(why, None, configuration=True, field="kv_dtype", options=("auto",))


def _mla_backend_first(spec, precision, capability, version: str, tp: Optional[int]) -> bool:
    """Whether an MLA layer's backend refuses `precision` before its KV cache quant check runs (from
    MLA_BACKEND_FIRST: sparse_dtype_refusal, dense_mla_dtype_refusal)."""
    if parse_version(version) < MLA_BACKEND_FIRST:
        return False
    if is_sparse(spec):
        return sparse_choice(spec, precision, capability, version, tp).backend is None
    return dense_mla_dtype_refusal(spec, precision, capability, version, tp) is not None


SPARSE_GPU_REMEDY = "it starts on a Hopper or Blackwell GPU (H100, H200, B200, ...)"
SM120_GPU_ALSO = "on a Hopper or SM10x Blackwell GPU (H100, H200, B200, ...)"  # besides a later release


def sparse_gpu_refusal(spec, capability=(), version: str = PINNED) -> Optional[Refusal]:
    """vLLM's refusal of a sparse MLA layer (DeepSeek-V3.2, GLM-5.x) on a CUDA GPU none of its sparse backends runs on
    (A100, A10, L4, L40S: vllm_sparse.SPARSE_MAJORS), or of DeepSeek-V4's attention where its FlashMLA kernels do not
    run (vllm_v4_gpu.V4_MAJORS), whatever the dtype and block. The GPU is at fault; kvplan's remedy search changes
    the release, dtype, length and block only, so the remedy is said in words, and on SM12x (RTX PRO 6000, RTX 5090:
    no sparse MLA backend before 0.24, FlashMLA's V4 path before 0.24) the search also tries the releases from the
    first that starts there (vllm_sparse.sm120_first_release, vllm_v4_gpu.v4_sm120_first_release)."""
    why, first = _sparse_words(spec, v4_gpu_refusal_line, sparse_gpu_refusal_line, capability, version)
    if not why:
        return None
    if capability and capability[0] == SM120:
        return Refusal(why, None, configuration=True, field="gpu", remedy=f"it starts {SM120_GPU_ALSO}",
                       fix_field="engine", options=(f"vllm=={first}",), onward="newer", also=SM120_GPU_ALSO)
    return Refusal(why, None, configuration=True, field="gpu", remedy=SPARSE_GPU_REMEDY)


def sm120_decode_refusal(spec, capability=(), version: str = PINNED) -> Optional[Refusal]:
    """Sparse MLA on SM12x in 0.24-0.25: FLASHINFER_MLA_SPARSE_SM120 is chosen and the cache sized, then start-up's
    kernel warm-up (FlashInfer autotune, on by default, --enforce-eager or not) calls the FlashInfer the release pins
    with an argument it lacks (vllm_sparse.KV_SCALE_FORMAT_SINCE). DeepSeek-V4 likewise, its SM120 attention class
    failing as start-up warms it up (vllm_v4_gpu.V4_SM120_ARGS_SINCE). The release is at fault: the remedy is
    the first whose pin takes it, or a GPU without the SM12x path. Met after every other configuration check (and
    after the memory check, which kvplan does not order against it)."""
    why, first = _sparse_words(spec, v4_sm120_pin_refusal_line, sm120_pin_refusal_line, capability, version)
    if not why:
        return None
    return Refusal(why, None, configuration=True, field="engine", options=(f"vllm=={first}",), onward="newer",
                   also=SM120_GPU_ALSO if is_v4(spec) else "")


def _sparse_words(spec, v4_line, sparse_line, capability, version: str) -> tuple:
    """(vLLM's refusal line, the first release whose SM12x path starts) for DeepSeek-V4's attention (`v4_line`,
    vllm_v4_gpu.py) or another sparse MLA layer (`sparse_line`, vllm_sparse.py); ("", None) for any other model."""
    if is_v4(spec):
        return v4_line(capability, version), v4_sm120_first_release()
    if is_sparse(spec):
        return sparse_line(capability, version), sm120_first_release()
    return "", None


def sparse_block_refusal(spec, block_size: Optional[int], capability=(), version: str = PINNED,
                         dtype: str = "auto") -> Optional[Refusal]:
    """vLLM's AssertionError for a sparse MLA layer on ROCm 0.12-0.17 at any block but 1, the unset --block-size (16)
    included (vllm_sparse.ROCM_BLOCK_RULES); block 1 passes it. On CUDA from 0.18.0, no attention backend for a block
    that is not a multiple of 64 (vllm_specs.cuda_sparse_block_refusal; on SM10x one of 32 finds no kernel block the
    indexer shares, for a `dtype` FLASHINFER_MLA_SPARSE stores): 64 and 128 pass."""
    if not is_sparse(spec) or is_v4(spec):
        return None
    if not is_rocm_platform(capability):
        why = cuda_sparse_block_refusal(block_size, version, capability, dtype, spec.layers)
        return Refusal(why, None, configuration=True, field="block_size", options=(64, 128)) if why else None
    why = rocm_block_refusal(block_size, version)
    return Refusal(why, None, configuration=True, field="block_size", options=(1,)) if why else None


HYBRID_RAISED_AFTER_SELECTION = (0, 20)  # a Mamba hybrid's block is raised after its layers pick backends


def attention_block_refusal(spec, precision, block_size: Optional[int], capability=(), version: str = PINNED,
                            tp: int = 1) -> Optional[Refusal]:
    """vLLM's "No valid attention backend found" for a --block-size no CUDA attention backend takes, from 0.18
    (vllm_specs.backend_block_refusal: a multiple of 16, FlexAttention's any block in 0.18-0.20). The block the
    selector sees is the flag's, but a Mamba hybrid's in 0.18-0.19 is first raised to the multiple of 16 that holds
    a state (models/config.py 0.18.0:135-149, run from VllmConfig.__post_init__, config/vllm.py 0.18.0:669, before the
    layers pick their backends); from 0.20 the raise comes after (platforms/interface.py 0.20.0:499)."""
    if is_rocm_platform(capability) or is_sparse(spec) or is_v4(spec) or block_size is None:
        return None
    if spec.layers and len(spec.linear_layers) == len(spec.layers):
        return None  # no attention layer picks a backend
    attention, per_token, page = hybrid_pages(spec, tp, cache_precision(spec, precision, capability, version, tp),
                                              version)
    mla = isinstance(attention, MLALatent) or any(isinstance(layer, MLALatent) for layer in spec.layers)
    if attention is not None and page and parse_version(version) < HYBRID_RAISED_AFTER_SELECTION:
        if hybrid_block_size(per_token, page, block_size, mla, None, version, capability) > block_size:
            return None
    why = backend_block_refusal(block_size, version, mla, precision.vllm_dtype, getattr(spec, "attention_sinks", False))
    if not why:
        return None
    below = block_size // BACKEND_BLOCK_MULTIPLE * BACKEND_BLOCK_MULTIPLE  # the multiples of 16 around it
    options = tuple(size for size in (below, below + BACKEND_BLOCK_MULTIPLE) if size)
    return Refusal(why, None, configuration=True, field="block_size", options=options)


def mla_hybrid_block_refusal(spec, precision, block_size: Optional[int], capability=(), version: str = PINNED,
                             tp: int = 1) -> Optional[Refusal]:
    """vLLM's failure to unify the pages of an MLA hybrid (Kimi-Linear) where its CUDA platform forces an MLA
    backend's block over the attention block the hybrid rule chose (vllm_specs.FORCED_AFTER_HYBRID: on SM10x
    CUTLASS_MLA's 128 in 0.11.1-0.14.x over a block that is not a multiple of 128, as Kimi-Linear's 960 at tp 2 or
    3776 with an fp8 cache), None where the block is kept. vLLM stops after profiling memory, whatever the memory.
    The release is at fault: the remedy is the first that keeps the block (0.15.0 for Kimi-Linear on SM10x, whose
    forced FLASHINFER_MLA takes its multiples of 64). A smaller --block-size is raised to the hybrid's, and the
    --block-size choices end at 256 up to 0.17 (config/cache.py BlockSize); a CUTLASS_MLA chosen by hand (aligned to
    128) is a backend choice kvplan does not model."""
    if is_rocm_platform(capability):
        return None
    built = cache_precision(spec, precision, capability, version, tp)
    attention, per_token, page = hybrid_pages(spec, tp, built, version)
    if not isinstance(attention, MLALatent) or isinstance(attention, V4_KINDS) or attention.sparse:
        return None
    quantized = built.bits < 16

    def chosen(release: str) -> tuple:  # (the hybrid's block in `release`, the block forced over it or None)
        raised = hybrid_block_size(per_token, page, block_size or default_block_size(release), True, None, release,
                                   capability)
        return raised, forced_mla_block(raised, quantized, release, capability)

    raised, forced = chosen(version)
    if forced is None:
        return None
    later = [".".join(map(str, row[0] + (0,) * (3 - len(row[0])))) for row in reversed(DENSE_MLA_BLOCK_RULES)
             if row[0] > parse_version(version)]
    first = next(release for release in later if chosen(release)[1] is None)  # 0.18 forces none
    backend = dense_mla_backend(quantized, version, capability)
    where = f"compute capability {capability[0]}.{capability[1]}" if len(capability) > 1 else "Hopper"
    pages = (forced * per_token, raised * per_token)
    why = (f"vLLM {version} cannot unify this MLA hybrid's KV cache pages: the {raised}-token attention block that "
           f"holds a Mamba state is forced to {backend}'s {forced} tokens on {where}, so the MLA page ({pages[0]:,} "
           f"bytes) no longer matches the state page padded to {pages[1]:,} bytes (v1/core/kv_cache_utils.py "
           f"get_kv_cache_groups: {ununified_pages_error(pages, version)}).")
    return Refusal(why, None, configuration=True, field="engine", options=(f"vllm=={first}",), onward="newer")


def v4_dtype_refusal(spec, precision, capability=(), version: str = PINNED) -> Optional[Refusal]:
    """vLLM's refusal of a DeepSeek-V4 cache dtype its fp8_ds_mla layout cannot store (None when it can): every dtype
    not fp8*, and `auto` before 0.30, which the layer sees as "auto" (vllm_kv_dtype.V4_AUTO). The remedy the search
    checks is fp8 (and auto from 0.30); for `auto` refused, also the release that stores it, where V4 runs on this GPU
    there (vllm_v4_gpu.v4_gpu_refusal_line)."""
    if not is_v4(spec) or vllm_name(precision.name).startswith("fp8"):
        return None
    asked = "auto" if precision.auto else vllm_name(precision.name)
    why = release_rule(V4_DTYPE_REFUSALS, version, V4_REFUSAL).format(dtype=asked)
    stored_auto = release_rule(V4_AUTO, version, "")
    options = (("auto",) if stored_auto else ()) + V4_FP8
    first = ".".join(map(str, V4_AUTO[0][0] + (0,)))
    also = V4_AUTO_RELEASE.format(first=first) if asked == "auto" and not v4_gpu_refusal_line(capability, first) \
        else ""
    return Refusal(why, None, configuration=True, field="kv_dtype", options=options, also=also,
                   remedy_flags=(("engine", "--engine"),) if also else ())


# The octave_* formats (0.33 on) are ROCm's: ROCM_OCTAVE is the only backend that lists them (0.33.0
# v1/attention/backends/rocm_octave_attn.py:95-99 supported_kv_cache_dtypes; on ROCm platforms/rocm.py:566), so on
# CUDA every backend answers "kv_cache_dtype not supported" and platforms/cuda.py raises (0.33.0 :471-475, 0.34.0
# :512-516). On ROCm the slot depends on the model's rotary width (rocm_octave.py:76-98 rope_dim_from_hf_config),
# which kvplan's spec does not keep, and the backend runs on RDNA3 / CDNA3 with head_size 256 and 64 rotary dims only
# (rocm_octave_attn.py:120-127, :292-301): not modelled yet.
OCTAVE_NO_BACKEND = ("No valid attention backend found for cuda with kv_cache_dtype {dtype}: the Octave formats have "
                     "one backend, ROCm's ROCM_OCTAVE, and every CUDA backend answers 'kv_cache_dtype not supported'.")


def octave_refusal(precision, capability=()) -> Optional[Refusal]:
    """vLLM's refusal of an Octave cache on a CUDA GPU (None for other dtypes; ROCm: cache_precision refuses to plan
    it)."""
    if precision.layout != "octave" or is_rocm_platform(capability):
        return None
    return Refusal(OCTAVE_NO_BACKEND.format(dtype=precision.vllm_dtype), None, configuration=True, field="kv_dtype",
                   options=("fp8", "auto"))


def checkpoint_e5m2_refusal(spec, precision, capability=(), version: str = PINNED,
                            tp: Optional[int] = None) -> Optional[Refusal]:
    """vLLM's refusal of fp8_e5m2 where the quantisation config hands an attention layer a KV cache method
    (vllm_e5m2.e5m2_refusal), on the dtype the layers are built with (cache_precision: a
    vllm_kv_dtype.KV_DTYPE_QUIRKS family's auto, a compressed-tensors scheme's fp8 in 0.15-0.21, sparse MLA's
    fp8_ds_mla); from 0.18 an MLA layer no backend takes is refused by its backend first (MLA_BACKEND_FIRST:
    sparse_dtype_refusal, dense_mla_dtype_refusal; 0.11.1-0.17 the other way round)."""
    if precision.vllm_dtype != "fp8_e5m2":
        return None
    if _mla_backend_first(spec, precision, capability, version, tp):
        return None
    built = cache_precision(spec, precision, capability, version, tp).vllm_dtype
    return e5m2_refusal(spec, built, version, capability)


def nvfp4_refusal(spec, precision, capability=(), version: str = PINNED) -> Optional[Refusal]:
    """vLLM's refusal of an NVFP4 cache on `spec`'s ordinary attention layers where no backend takes it on this GPU
    (vllm_nvfp4.py: the release, the compute capability, the head sizes, attention sinks); None when one does. Sparse
    MLA and DeepSeek-V4 have their own (sparse_dtype_refusal, v4_dtype_refusal); a family that keeps its model dtype
    (vllm_kv_dtype.KV_DTYPE_QUIRKS) stores none. Where `auto` was asked and stored the checkpoint's NVFP4
    (vllm_kv_dtype.CHECKPOINT_KV), the message says so (not for nvfp4 asked by name), and the fix search finds `auto`
    refused the same way."""
    if precision.layout != "nvfp4" or is_sparse(spec) or is_v4(spec):
        return None
    if cache_precision(spec, precision, capability, version).layout != "nvfp4":
        return None
    heads = tuple(sorted({layer.head_dim for layer in spec.layers if isinstance(layer, FullAttention)}))
    if not heads:  # no attention layer picks a backend for it
        return None
    dtype, sinks = precision.vllm_dtype, getattr(spec, "attention_sinks", False)
    chosen = precision.auto and getattr(spec, "checkpoint_kv_dtype", "") == dtype == spec.auto_kv_dtype
    why = nvfp4_refusal_line(dtype, capability, version, heads, sinks, chosen)
    if not why:
        return None
    return Refusal(why, None, configuration=True, field="kv_dtype",
                   options=refusal_options(dtype, capability, version, heads, sinks))


# V0's XFormersImpl.__init__ raises on a logit soft-cap in 0.5.4-0.6.4 (attention/backends/xformers.py 0.5.4:416-418,
# 0.5.5-0.6.2 :421-423, 0.6.3 :424-426, 0.6.4 :388-390); from 0.6.5 it warns "XFormers does not support logits soft
# cap. Outputs may be slightly off." and goes on (0.6.5 :386-388, 0.10.2 :398-400). [from, before)
XFORMERS_SOFTCAP_RAISES = ((0, 5, 4), (0, 6, 5))
XFORMERS_SOFTCAP = "XFormers does not support attention logits soft capping."
XFORMERS_BLOCK_MULTIPLE = 16  # FlashAttention-2 takes a block that is a multiple of 16 (selector below)
V0_DEFAULT_BLOCK = 16  # --block-size unset (engine/arg_utils.py 0.6.3:107 block_size: int = 16)


def softcap_refusal(spec, precision, block_size: Optional[int], capability=(),
                    version: str = PINNED) -> Optional[Refusal]:
    """vLLM's refusal of a soft-capped model (spec.attention_softcap: Gemma 2) where V0's CUDA selector lands on
    XFormers in 0.5.4-0.6.4 (XFORMERS_SOFTCAP_RAISES), None elsewhere. which_attn_to_use (attention/selector.py
    0.5.4:149-172, 0.6.3:222-249, 0.6.4:259-282) leaves FlashAttention-2 for XFormers on a GPU below compute
    capability 8.0, for a model dtype other than float16 / bfloat16 (--dtype float32: 0.5.4:155-159, 0.6.4:265-269),
    for an fp8* cache dtype (its "Cannot use FlashAttention-2 backend for FP8 KV cache", with advice to
    set VLLM_ATTENTION_BACKEND=FLASHINFER, whose impl takes the cap: flashinfer.py 0.6.3:729-742; kvplan plans the
    default backend) and for a block not a multiple of 16; Gemma 2's window is off in these releases
    (vllm_gemma2_window), so the sliding-window branch does not fire. ROCm's selector picks ROCM_FLASH. The remedy:
    the cache dtype `auto` on an fp8 cache, a block of 16 or 32 on an odd one, and below SM 8.0 or on float32 the
    first release where XFormers only warns (0.6.5), which clears float32 beside an fp8 cache or odd block too."""
    if not getattr(spec, "attention_softcap", False) or is_rocm_platform(capability) or \
            not in_span(version, XFORMERS_SOFTCAP_RAISES):
        return None
    first = ".".join(map(str, XFORMERS_SOFTCAP_RAISES[1]))
    if capability and tuple(capability) < (8, 0):
        return Refusal(XFORMERS_SOFTCAP, None, configuration=True, field="engine", options=(f"vllm=={first}",),
                       onward="newer")
    if served_dtype(spec, capability, version) == "fp32":  # the selector's dtype check comes before the cache's
        return Refusal(XFORMERS_SOFTCAP, None, configuration=True, field="dtype", remedy_flags=REMEDY_FLAGS,
                       fix_field="engine", options=(f"vllm=={first}",), onward="newer")
    if not precision.auto and precision.vllm_dtype.startswith("fp8"):
        return Refusal(XFORMERS_SOFTCAP, None, configuration=True, field="kv_dtype", options=("auto",))
    if (block_size or V0_DEFAULT_BLOCK) % XFORMERS_BLOCK_MULTIPLE:
        return Refusal(XFORMERS_SOFTCAP, None, configuration=True, field="block_size", options=(16, 32))
    return None
