"""An NVFP4 KV cache (--kv-cache-dtype nvfp4 / nvfp4_4over6, or `auto` where a ModelOpt checkpoint names an NVFP4 KV
cache: vllm_kv_dtype.CHECKPOINT_KV) on ordinary attention layers in vLLM, release by release: whether an attention
backend takes it for the GPU's compute capability, the layers' head size and their attention sinks, or vLLM's refusal.
Sparse MLA's nvfp4_ds_mla is vllm_sparse.py's, DeepSeek-V4's cache its own (vllm_backend_refusals.
V4_DTYPE_REFUSALS); a dense MLA latent has no nvfp4 layout at all (precision.Precision.latent_bytes). Paths are
under vllm/ of the release named; kvplan copies no vLLM code.

FLASHINFER is the one attention backend that lists nvfp4 (every other backend's supported_kv_cache_dtypes, CUDA's
and ROCm's, stops short of it, 0.20.0-0.34.0), so on CUDA the platform either picks FLASHINFER (its head sizes,
compute capabilities, supports_kv_cache_dtype and supports_combination permitting: v1/attention/backend.py
validate_configuration, 0.32.0 :276-336) or raises "No valid attention backend found" (platforms/cuda.py 0.20.0 :333,
0.25.0 :441, 0.32.0 :471, 0.34.0 :514); ROCm raises the same (platforms/rocm.py 0.20.0 :520-521, 0.34.0 :867-897).
What FLASHINFER then does with it, by first release (NVFP4_PATHS):
- 0.20.x "none": nvfp4 is a --kv-cache-dtype choice (config/cache.py) but FLASHINFER does not list it
  (flashinfer.py 0.20.0:328-335; its builder would raise "nvfp4 KV cache is not yet supported", :625).
- 0.21-0.22 "unchecked": FLASHINFER lists it (0.21.0 flashinfer.py:329-337) and runs it on FlashInfer's trtllm-gen
  wrappers only ("fa2/fa3 do not support nvfp4", :771-773, :797-799), whose FP4 kernels exist for SM100 alone, with
  no capability check: on any other GPU start-up fails at the first attention call.
- 0.23-0.24 "builder": the metadata builder raises off the SM100 family (0.23.0 flashinfer.py:622-630, 0.24.0
  :650-658: "--kv-cache-dtype nvfp4 requires sm100f, ...").
- 0.25-0.31 "sm100": supports_kv_cache_dtype takes nvfp4 (and nvfp4_4over6, 0.28 on) on the SM100 family only
  (0.25.0 flashinfer.py:427-433, 0.28.0 :517-523, 0.31.0 :499-505): elsewhere no backend.
- 0.32 on "fa2": the SM80 / SM90 / SM120 families read plain nvfp4 through FlashInfer's fa2 prefill (0.32.0
  flashinfer.py:109-110 _nvfp4_kv_on_fa2, :529-539; 0.34.0 :116-117, :656-666; nvfp4_4over6 stays SM100's), which
  supports_combination refuses at head size 64 and with attention sinks (0.32.0 :542-562, 0.34.0 :669-690). SM100
  keeps trtllm-gen.
FLASHINFER's own limits: head sizes 64, 128, 256 (0.21.0 flashinfer.py:403-406), 512 added in 0.22.0 (:402-405; the
same to 0.34.0 :692-695); compute capability 7.5 to 12.1 (0.21.0 :408-412), 8.0 to 12.1 from 0.24.0 (:426-436).
Not modelled: a layer whose keys and values differ in width (0.31 on asserts they match, flashinfer.py 0.31.0
:408-410; MiMo-V2 builds its own DiffKV backend), and DCP (0.32.0 :828-832).
"""

from __future__ import annotations

from .vllm_sparse import is_rocm_platform
from .vllm_versions import PINNED, release_rule

SM100, FA2_MAJORS = 10, (8, 9, 12)  # is_device_capability_family(100); _nvfp4_kv_on_fa2's families 80, 90, 120
NVFP4_PATHS = (
    ((0, 32), "fa2", "0.32.0 flashinfer.py:109-110, :529-562 (0.34.0 :116-117, :656-690)"),
    ((0, 25), "sm100", "0.25.0 flashinfer.py:427-433 (0.31.0 :499-505)"),
    ((0, 23), "builder", "0.23.0 flashinfer.py:622-630 (0.24.0 :650-658)"),
    ((0, 21), "unchecked", "0.21.0 flashinfer.py:329-337, :771-799 (0.22.1 the same)"),
    ((0, 20), "none", "0.20.0 flashinfer.py:328-335 (0.20.2 the same)"),
)
FLASHINFER_HEADS = (((0, 22), (64, 128, 256, 512), "0.22.0 flashinfer.py:402-405, 0.34.0 :692-695"),
                    ((0, 20), (64, 128, 256), "0.21.0 flashinfer.py:403-406"))
FLASHINFER_LOWEST_CC = (((0, 24), (8, 0), "0.24.0 flashinfer.py:426-436"), ((0, 20), (7, 5), "0.21.0 :408-412"))
FLASHINFER_HIGHEST_CC = (12, 1)

NO_BACKEND = ("No valid attention backend found for {platform} with kv_cache_dtype {dtype}: {why}.")
SM100_BUILDER = "--kv-cache-dtype {dtype} requires sm100f, please try a different dtype or remove"  # 0.23.0 :626-630
UNCHECKED = ("FlashInfer's trtllm-gen kernels, the only ones vLLM {version} reads kv_cache_dtype {dtype} with, run on "
             "SM100 GPUs only: it picks FLASHINFER on compute capability {cc} without a check, so start-up fails at "
             "the first attention call.")
FA2_HEAD_64 = "fa2 prefill misreads an NVFP4 KV cache at head_size 64"  # 0.32.0 flashinfer.py:559-560
FA2_SINKS = "the sink prefill wrapper cannot read an NVFP4 KV cache"  # 0.32.0 flashinfer.py:561-562
# where a ModelOpt checkpoint chose it: named inside the message, before any ": " (Refusal.summary keeps that far)
CHECKPOINT_CHOSE = ("{dtype} (what --kv-cache-dtype auto stores for this checkpoint, whose ModelOpt "
                    "quantization_config names an NVFP4 KV cache)")


def _cc(capability) -> str:
    return f"{capability[0]}.{capability[1]}"


def flashinfer_limit(version: str, capability, head_sizes) -> str:
    """FLASHINFER's reason to refuse these layers whatever the dtype ('' when it takes them): a head size or a compute
    capability outside its lists (FLASHINFER_HEADS, FLASHINFER_LOWEST_CC)."""
    heads = release_rule(FLASHINFER_HEADS, version, ())
    if any(size not in heads for size in head_sizes):
        return "head_size not supported"
    lowest = release_rule(FLASHINFER_LOWEST_CC, version, (7, 5))
    if capability and not lowest <= tuple(capability)[:2] <= FLASHINFER_HIGHEST_CC:
        return "compute capability not supported"
    return ""


def _fa2_refusal(dtype: str, major: int, head_sizes, sinks: bool) -> str:
    """FLASHINFER's answer from 0.32 on ('' when it takes the layers): SM100 on trtllm-gen, the fa2 families for plain
    nvfp4 but not at head size 64 nor with sinks, no other GPU."""
    if major == SM100:
        return ""
    if major not in FA2_MAJORS or dtype != "nvfp4":
        return "kv_cache_dtype not supported"
    if 64 in head_sizes:
        return FA2_HEAD_64
    return FA2_SINKS if sinks else ""


def nvfp4_refusal_line(dtype: str, capability=(), version: str = PINNED, head_sizes=(), sinks: bool = False,
                       chosen_by_checkpoint: bool = False) -> str:
    """vLLM `version`'s refusal of an NVFP4 `dtype` cache on attention layers of `head_sizes` (any with attention
    `sinks`) on a GPU of `capability` (vllm_sparse.ROCM: an AMD GPU; (): unknown, where only the release's and the
    head sizes' rules are checked); '' when it starts. `chosen_by_checkpoint`: `auto` stored it (CHECKPOINT_CHOSE)."""
    named = CHECKPOINT_CHOSE.format(dtype=dtype) if chosen_by_checkpoint else dtype
    if is_rocm_platform(capability):
        return NO_BACKEND.format(platform="rocm", dtype=named, why="no ROCm attention backend lists it")
    platform = f"cuda (compute capability {_cc(capability)})" if capability else "cuda"
    path = release_rule(NVFP4_PATHS, version, "none")
    if path == "none":
        why = f"no attention backend of vLLM {version} lists it, FLASHINFER included"
        return NO_BACKEND.format(platform=platform, dtype=named, why=why)
    why = flashinfer_limit(version, capability, head_sizes)
    if not why and capability:
        if path == "fa2":
            why = _fa2_refusal(dtype, capability[0], head_sizes, sinks)
        elif capability[0] != SM100:
            if path == "unchecked":
                return UNCHECKED.format(version=version, dtype=named, cc=_cc(capability))
            if path == "builder":
                return SM100_BUILDER.format(dtype=named)
            why = "kv_cache_dtype not supported"
    if not why:
        return ""
    return NO_BACKEND.format(platform=platform, dtype=named, why=f"FLASHINFER, the one backend that lists it, "
                                                                 f"refuses it ({why})")


def nvfp4_starts(dtype: str, capability=(), version: str = PINNED, head_sizes=(), sinks: bool = False) -> bool:
    return not nvfp4_refusal_line(dtype, capability, version, head_sizes, sinks)


def boundaries() -> set:
    """The first release of every row here (vllm_remedy.release_boundaries)."""
    return {row[0] for table in (NVFP4_PATHS, FLASHINFER_HEADS, FLASHINFER_LOWEST_CC) for row in table}


def refusal_options(dtype: str, capability=(), version: str = PINNED, head_sizes=(), sinks: bool = False) -> tuple:
    """The --kv-cache-dtype values to try in place of a refused NVFP4 one (the fix search checks each against every
    configuration refusal, `auto` included: for a checkpoint that names NVFP4 it is refused again)."""
    others = ("nvfp4",) if dtype != "nvfp4" and nvfp4_starts("nvfp4", capability, version, head_sizes, sinks) else ()
    return ("auto", "bfloat16", "fp8", "fp8_e4m3") + others
