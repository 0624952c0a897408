"""Sparse MLA (DeepSeek-V3.2, GLM-5.x: a config with index_topk) in vLLM, release by release: which attention
backend a quantized --kv-cache-dtype lands on for the GPU's compute capability, the latent that backend keeps, or
vLLM's refusal when none takes it. DeepSeek-V4 has its own path (vllm_backend_refusals.py V4_DTYPE_REFUSALS,
vllm_v4_gpu.py); 16-bit caches keep a bf16 latent on every backend. Paths are under vllm/ of the release named;
kvplan copies no vLLM code.

How vLLM gets there (0.18 on; 0.32.0's is also frozen from vLLM's own functions in
tests/data/sparse_mla_backends_0.32.0.json, made by tests/data/sparse_mla_backends.py):
1. models/config.py may rewrite the dtype first (GLM-5.x's `auto` on SM10x: SM10X_AUTO).
2. The MLA layer asks the platform for a backend (platforms/cuda.py get_valid_backends, 0.32.0 cuda.py:375-415):
   _get_backend_priorities' list for the GPU, the first whose validate_configuration accepts the layer
   (v1/attention/backend.py:276 on: its supported_kv_cache_dtypes, compute capability, supports_combination).
   The dtype is matched as spelled (backend.py:111-116), and FLASHMLA_SPARSE lists `fp8` but not `fp8_e4m3`.
3. mla_attention.py _canonicalize_sparse_mla_kv_cache_dtype (0.32.0 :358-375; 0.18-0.23 inline, 0.18.0 :342-356)
   turns a quantized dtype into the 656-byte fp8_ds_mla entry on FLASHMLA_SPARSE only; FlashInfer's sparse backends
   keep a plain fp8 latent, 576 bytes (mla_attention.py:534-543 "Using standard fp8 KV cache format").
Before 0.18, models/config.py DeepseekV32ForCausalLM.verify_and_update_config turned every fp8* dtype into
fp8_ds_mla before any backend was chosen (0.11.1 config.py:478-480 ... 0.17.0 config.py:597-599; 0.11.0 :419-421,
auto too) and FLASHMLA_SPARSE served it on every GPU: CONFIG_REWRITE, for that architecture only (GLM-5.x's fp8 on
0.16-0.17 finds no backend). AMD GPUs follow vLLM's ROCm platform instead: ROCM_DTYPES.

Block sizes: every sparse backend here takes kernel blocks of a multiple of 64 on Hopper (FLASHMLA_SPARSE,
FLASH_ATTN_MLA_SPARSE, FLASHINFER_MLA_SPARSE_SM90: MultipleOf(64), 0.32.0 flashinfer_mla_sparse_sm90.py:155-157)
and FLASHINFER_MLA_SPARSE on SM10x [32, 64] in 0.17-0.31 (0.17.0 flashinfer_mla_sparse.py:69-70, 0.31.0 :85-86; a
block passes as a multiple of either, backend.py supports_block_size) and MultipleOf(32) from 0.32 (0.32.0 :95-96,
0.34.0 :96-97), beside the indexer's exact 64 (indexer.py:283-285): the block stays 64 (vllm_specs.SPARSE_MLA_BLOCK)
unless --block-size asks another, which fails "No common block size" from 0.18 (vllm_specs.no_common_block).
Their block-stride alignments (sparse_utils.py:44-47 align_blocks_to_rows: one 576-byte row on SM90's FlashInfer
(flashinfer_mla_sparse_sm90.py:159-161, 0.32.0 only), 32 rows on SM10x's (flashinfer_mla_sparse.py:74-79);
FLASHMLA_SPARSE MultipleOf(64) of its entries, flashmla_sparse.py:166-175) divide every page of a multiple of 64
tokens, so they pad nothing. On ROCm both backends take kernel blocks of 1: the block is --block-size or 16 (64 from
0.34, config/cache.py:185; vllm_specs), and
0.12-0.17 start at 1 only (ROCM_BLOCK_RULES).

GPUs: every sparse backend checks the compute capability's major (supports_compute_capability: FLASHMLA_SPARSE 9 or
10, FLASHINFER_MLA_SPARSE 10, FLASH_ATTN_MLA_SPARSE and FLASHINFER_MLA_SPARSE_SM90 9, FLASHINFER_MLA_SPARSE_SM120 12),
so on any other CUDA GPU (Ampere's 8.0 / 8.6, Ada's 8.9, Turing's 7.5) vLLM finds none: SPARSE_MAJORS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..model.layers import DSA_ARCHITECTURES  # the sparse MLA models kvplan plans
from .vllm_versions import PINNED, parse_version, release_rule

FP8_DS_MLA = "fp8_ds_mla"
HOPPER, BLACKWELL = 9, 10  # compute capability majors (platforms/cuda.py:96 device_capability.major == 10)
FLASHMLA, FLASHINFER, FLASHINFER_SM90, FLASH_ATTN = ("FLASHMLA_SPARSE", "FLASHINFER_MLA_SPARSE",
                                                      "FLASHINFER_MLA_SPARSE_SM90", "FLASH_ATTN_MLA_SPARSE")

# The architectures whose every fp8* dtype models/config.py turns into fp8_ds_mla before any backend is chosen
# (MODELS_CONFIG_MAP, looked up by the model's architecture: 0.16.0 config/vllm.py:1387-1396, 0.17.0 :1577-1588), by
# first release. GlmMoeDsaForCausalLM (GLM-5.x, registered from 0.16.0: models/registry.py:117; not in 0.15.1's) is not
# in the map in 0.16.0 or 0.17.0 (models/config.py 0.16.0 :592-615, 0.17.0 :659-688), so its fp8 reaches backend
# selection as spelled there, where FLASHMLA_SPARSE lists fp8_ds_mla only (FLASHMLA_DTYPES' default) and vLLM refuses to
# start.
CONFIG_REWRITE = (
    ((0, 18), (), "0.18.0 models/config.py:30-42 DeepseekV32ForCausalLM keeps fp8 as asked; mla_attention.py "
                  "canonicalizes per backend (so to 0.32.0)"),
    ((0, 11), ("DeepseekV32ForCausalLM",), "0.11.0-0.17.x models/config.py DeepseekV32ForCausalLM: cache_dtype."
                                           "startswith('fp8') -> fp8_ds_mla (0.15.x and 0.16.0 :557-558, 0.17.0 "
                                           ":597-599)"),
)
# Hopper's sparse backends in priority order (platforms/cuda.py _get_backend_priorities, the SM90 branch's tail;
# the dense MLA backends before them refuse a sparse layer, backend.py:318-320), by first release:
HOPPER_ORDER = (
    ((0, 30), (FLASH_ATTN, FLASHMLA, FLASHINFER_SM90), "0.30.0 cuda.py:137-153 (0.32.0 :137-153): FlashInfer's SM90 "
                                                       "backend (new in 0.30.0) last for a 576-wide latent, first "
                                                       "for 512"),
    ((0, 25), (FLASH_ATTN, FLASHMLA), "0.25.1 cuda.py:134-141 (0.24.0 has no FLASH_ATTN_MLA_SPARSE)"),
    ((0, 18), (FLASHMLA,), "0.18.0 cuda.py:74-81"),
)
# SM10x: when FLASHINFER_MLA_SPARSE goes before FLASHMLA_SPARSE, by first release:
# "quantized": any quantized dtype (is_quantized_kv_cache), else at <= 16 heads a rank; "fp8": dtype.startswith
# ("fp8"), else by heads; "heads": at <= 16 heads a rank only.
BLACKWELL_FLASHINFER_FIRST = (
    ((0, 20), "quantized", "0.20.0 cuda.py:91 (0.32.0 :100-118)"),
    ((0, 19), "fp8", "0.19.0 cuda.py:63-81"),
    ((0, 18), "heads", "0.18.0 cuda.py:55-66"),
)
# The quantized dtypes each backend's supported_kv_cache_dtypes lists, by first release:
FLASHMLA_DTYPES = (
    ((0, 30), ("fp8", FP8_DS_MLA, "nvfp4_ds_mla"), "0.30.0 flashmla_sparse.py:132-138 (0.32.0 :149-155)"),
    ((0, 18), ("fp8", FP8_DS_MLA), "0.18.0 flashmla_sparse.py:82-87 (the 'fp8' alias; 0.17.0 had fp8_ds_mla only)"),
)
FLASHINFER_DTYPES = (
    ((0, 18), ("fp8", "fp8_e4m3"), "flashinfer_mla_sparse.py 0.18.0 :63-69, 0.32.0 :86-92"),
    ((0, 11), (), "0.17.0 flashinfer_mla_sparse.py:63-66 auto/bfloat16 only (0.16.0 has no FLASHINFER_MLA_SPARSE: "
                  "its SM10x list ends in FLASHMLA_SPARSE, cuda.py:51-59, which refuses all the same)"),
)
FLASHINFER_SM90_DTYPES = ("fp8", "fp8_e4m3")  # flashinfer_mla_sparse_sm90.py 0.30.0 :69-74, 0.32.0 :148-153
# Not modelled: 0.18.0's FLASHINFER_MLA_SPARSE took qk_nope_head_dim 128 only (flashinfer_mla_sparse.py:116-127;
# 128 or 192 from 0.19.0), so GLM-5.x (192) on SM10x fell back to FLASHMLA_SPARSE there; kvplan's spec does not keep
# qk_nope_head_dim.
# FLASHINFER_MLA_SPARSE_SM90 needs FlashInfer's SM90 MLA (supports_combination, 0.32.0 :205-210: the keyword-only
# ckv_scale_arr of BatchMLAPagedAttentionWrapper.run, utils/flashinfer.py:414-437, FlashInfer >= 0.6.18), and a
# 512-wide latent with 0 or 64 rope dims (:213-223): vLLM's CUDA wheels pin flashinfer-python 0.6.18.post1 (0.30.0)
# and 0.7.0.post1 (0.31.0, 0.32.0), both with it (flashinfer/mla/_core.py:2309, mla/_batch_mla/_wrapper.py:780).
FLASHINFER_SM90_LATENT = 512
# GLM-5.x on SM10x: models/config.py:43-55 GlmMoeDsaForCausalLM turns `auto` into fp8_e4m3 ("Using fp8 kv-cache for
# GlmMoeDsaForCausalLM on SM10x": vllm_kv_dtype.config_hook_line), from 0.32.0 (0.31.0's class sets DCP defaults only)
# to 0.34.0 (0.33.0:89-101, 0.34.0:163-175); an explicit bfloat16 stays. 0.32-0.33 then keep a separate drafter's
# cache at `auto` (speculative_config.kv_cache_dtype, for any method but mtp: 0.32.0:56-64), which 0.34 no longer does:
# vllm_speculative.SM10X_DRAFT_AUTO.
SM10X_AUTO = (((0, 32), {"GlmMoeDsaForCausalLM": "fp8_e4m3"}, "0.32.0 models/config.py:43-55, 0.34.0:163-175"),)
# SM12x (GB202: RTX PRO 6000, GeForce RTX 5090), by release:
# - 0.11.0 picks FLASHMLA_SPARSE with no capability check (SPARSE_MAJORS' None row: UNCHECKED_SPARSE_GPU);
# - 0.11.1-0.23.x: the platform's list for any major but 10 ends in FLASHMLA_SPARSE (0.11.1 cuda.py:63-70, 0.23.0
#   :123-130), which needs major 9 or 10 (SPARSE_MAJORS): "No valid attention backend found" (NO_SPARSE_GPU);
# - from 0.24.0 the list for major 12 is TRITON_MLA, which refuses a sparse layer, then FLASHINFER_MLA_SPARSE_SM120
#   (0.24.0 cuda.py:130-134, 0.32.0 :132-136; supports_compute_capability major == 12, flashinfer_mla_sparse.py 0.24.0
#   :170-171). It lists auto, fp8, fp8_e4m3 and fp8_ds_mla (supports_combination: index_topk 2048 and a bfloat16
#   model only, as both bundled sparse models are) and keeps every one as the 656-byte fp8_ds_mla entry, `auto`
#   included (mla_attention.py _canonicalize_sparse_mla_kv_cache_dtype; its impl raises for any other,
#   flashinfer_mla_sparse_sm120.py 0.24.0 :65-69); DeepSeek-V3.2's bfloat16 is `auto` by then (models/config.py
#   0.24.0 :37-39, 0.32.0 :38-40), GLM-5.x's finds no backend. Its kernel blocks are [64, 256] up to 0.31 (0.24.0
#   :158-159, 0.31.0 :174-175) and MultipleOf(64) from 0.32 (:184-185): either way a block must be a multiple of 64
#   (backend.py supports_block_size), as vllm_specs.SPARSE_MLA_BLOCK_RULES says, and an unset one is 64.
# - 0.24.0-0.25.x start-up then fails at its kernel warm-up's first sparse MLA call: KV_SCALE_FORMAT_SINCE.
SM120 = 12
FLASHINFER_SM120 = "FLASHINFER_MLA_SPARSE_SM120"
SM120_DTYPES = (
    ((0, 24), ("auto", "fp8", "fp8_e4m3", FP8_DS_MLA), "0.24.0 flashinfer_mla_sparse.py:146-151 (supports_combination "
                                                       ":174-218), mla_attention.py:323-335; the same lists to 0.32.0 "
                                                       "(flashinfer_mla_sparse.py:172-177, mla_attention.py:369-374)"),
)
# FLASHINFER_MLA_SPARSE_SM120's decode passes kv_scale_format= to FlashInfer's trtllm_batch_decode_with_kv_cache_mla
# (flashinfer_mla_sparse_sm120.py 0.24.0 :141-156, 0.31.0 :241), a keyword FlashInfer takes from 0.6.14 (flashinfer/
# mla/_core.py:2553: KV_SCALE_FORMAT_SINCE), which 0.24-0.25's pins lack (FLASHINFER_PINS). forward_mqa sends
# every token, prefill ones too, through that call
# (flashinfer_mla_sparse_sm120.py 0.24.0 and 0.25.x :103-156). Start-up first reaches it in the kernel warm-up, after
# the KV cache is sized and before any CUDA graph capture (v1/worker/gpu_worker.py 0.24.0 :654 then :657-658, 0.25.x
# :758 then :761-762): flashinfer_sparse_mla_decode_autotune_warmup (model_executor/warmup/kernel_warmup.py 0.24.0
# :55, 0.25.x :72) runs a 16-token mixed prefill + decode dummy run with force_attention=True on a 12.x GPU with this
# backend whenever kernel_config.enable_flashinfer_autotune is True (flashinfer_sparse_mla_warmup.py 0.24.0 and 0.25.x
# :92-97, :115-121, :145, :157). That is every optimization level but -O0 (config/vllm.py 0.24.0 :214 False, :235,
# :256, :277 True, default O2 :364; 0.25.x :211, :232, :253, :274, :361), and --enforce-eager keeps the level (it sets
# the compile and cudagraph modes to NONE only: 0.24.0 :1061-1067, 0.25.x :1095-1101). With autotune off the call
# comes at the full decode CUDA graph capture (the sparse metadata builder's AttentionCGSupport.UNIFORM_BATCH,
# flashinfer_mla_sparse.py 0.24.0 :266; gpu_model_runner.py 0.24.0 :6673 force_attention), and with no graphs either
# (-O0's cudagraph_mode NONE, 0.24.0 :210) at the first request. kvplan models the default level.
# The flashinfer-python each release's wheel pins (METADATA Requires-Dist), by first release: what a rule needing
# a FlashInfer argument asks (flashinfer_lacks). Releases before 0.24 are not listed: no rule here reads them.
FLASHINFER_PINS = (
    ((0, 34), (0, 7, 3), "0.34.0: 0.7.3 (not on PyPI to read; 0.7.4 is)"),
    ((0, 33), (0, 7, 2), "0.33.0: 0.7.2.post1"),
    ((0, 31), (0, 7, 0), "0.31.0 and 0.32.0: 0.7.0.post1"),
    ((0, 30), (0, 6, 18), "0.30.0: 0.6.18.post1"),
    ((0, 29), (0, 6, 18), "0.29.0: 0.6.18"),
    ((0, 27), (0, 6, 16), "0.27.x and 0.28.0: 0.6.16.post3"),
    ((0, 26), (0, 6, 14), "0.26.0: 0.6.14"),
    ((0, 25), (0, 6, 13), "0.25.0 and 0.25.1: flashinfer-python==0.6.13"),
    ((0, 24), (0, 6, 12), "0.24.0: flashinfer-python==0.6.12"),
)
# the first FlashInfer that takes kv_scale_format (0.6.12 mla/_core.py:1054-1077 and 0.6.13 :1622-1645 lack it)
KV_SCALE_FORMAT_SINCE = (0, 6, 14)
SM120_PIN_FAILURE = ("vLLM {version} runs sparse MLA on compute capability {cc} with FLASHINFER_MLA_SPARSE_SM120, "
                     "whose decode passes kv_scale_format to FlashInfer (v1/attention/backends/mla/"
                     "flashinfer_mla_sparse_sm120.py:155), but the FlashInfer it pins (flashinfer-python=={pin}) has "
                     "no such argument: TypeError: trtllm_batch_decode_with_kv_cache_mla() got an unexpected keyword "
                     "argument 'kv_scale_format', as start-up's kernel warm-up, after sizing the KV cache, runs a "
                     "mixed prefill + decode batch through it to autotune FlashInfer (model_executor/warmup/"
                     "flashinfer_sparse_mla_warmup.py; autotune is on at every optimization level but -O0, so "
                     "--enforce-eager does not skip it; with autotune off, at the decode CUDA graph capture, or with "
                     "no graphs either, at the first request).")
SM120_BF16_AS_AUTO = ("DeepseekV32ForCausalLM",)  # models/config.py 0.24.0 :37-39, 0.32.0 :38-40: bfloat16 -> auto
# ROCm: every sparse MLA layer gets ROCM_AITER_MLA_SPARSE, the only backend its priority list holds (platforms/
# rocm.py _get_backend_priorities: 0.18.0 :315-316, 0.32.0 :485-486), and mla_attention.py turns nothing there into
# fp8_ds_mla (0.32.0 :358-375 rewrites on FLASHMLA_SPARSE and FLASHINFER_MLA_SPARSE_SM120 only): the dtype it takes
# keeps a plain latent. Its quantized dtypes by first release (None: rocm.py raises for any fp8* dtype):
ROCM_DTYPES = (
    ((0, 21), ("fp8", "fp8_e4m3"), "rocm_aiter_mla_sparse.py 0.21.0 :266-272, 0.32.0 :353-359 (read 0.21-0.32)"),
    ((0, 18), (), "rocm_aiter_mla_sparse.py 0.18.0 :83-87, 0.20.0 :85-89: auto/float16/bfloat16 only"),
    # 0.12.0-0.17.0 rocm.py get_attn_backend_cls (0.17.0 :364-368) raises for fp8; 0.11.x: ROCM_NO_SPARSE
    ((0, 0), None, "0.12.0 rocm.py:226, 0.17.0 :367"),
)
# 0.11.x's ROCm platform refuses sparse attention whatever the dtype (0.11.0 rocm.py:199-201, 0.11.1 / 0.11.2 :225)
ROCM_SPARSE_SINCE, ROCM_NO_SPARSE = (0, 12), "Sparse Attention is not supported on ROCm."
ROCM = ("rocm",)  # a GPU's "capability" for an AMD GPU (catalog: none): vLLM's ROCm platform, not CUDA's rules
ROCM_FP8_REFUSAL = "ROCMAiterMLASparseBackend doesn't support fp8 kv_cache_dtype."  # 0.17.0 rocm.py:366-368
# ROCm's block for a sparse MLA layer (CUDA's is vllm_specs.SPARSE_MLA_BLOCK_RULES). An unset --block-size is 16 in
# every release: 0.12-0.18 platforms/rocm.py check_and_update_config sets it (0.12.0 :386-387, 0.17.0 :658-673, 0.18.0
# :692-707; 64 only under VLLM_ROCM_USE_AITER_UNIFIED_ATTENTION=1 with VLLM_ROCM_USE_AITER=1, 0.13-0.18), and from
# 0.19 platforms/interface.py update_block_size_for_backend keeps the default 16 since both backends a V3.2 layer uses
# take kernel blocks of 1 (AttentionBackend.supports_block_size: 16 % 1 == 0): ROCM_AITER_MLA_SPARSE [1] (0.18.0
# rocm_aiter_mla_sparse.py:90-91), [1, 64] (0.21.0 :275-276), [1, MultipleOf(16)] (0.28.0 :277-278, 0.32.0
# :362-363); the indexer's DeepseekV32IndexerBackend the same on ROCm (indexer.py 0.18.0 :39-40, 0.24.0 :124-125, 0.32.0
# :284-285). Whether a block starts, by first release:
# - "one": get_attn_backend_cls asserts block_size == 1 for a sparse layer, after its fp8 check (0.12.0 rocm.py:228-230,
#   0.13.0 :207-209, 0.14.0 and 0.14.1 :206-208, 0.15.0 and 0.15.1 :244-246, 0.16.0 :283-285, 0.17.0 and 0.17.1
#   :369-371), called while the model's MLA layers are built (attention/layer.py 0.12.0 :605-625 with
#   cache_config.block_size): the default 16 and any --block-size but 1 stop start-up with an AssertionError.
# - "any": 0.18.0 validates ROCm's backends without a block size (rocm.py:441 _replace(block_size=None)) and 0.19 on
#   every block is a multiple of the kernels' 1: --block-size as given, else 16.
ROCM_BLOCK_RULES = (
    ((0, 18), "any", "0.18.0 rocm.py:441, :692-707; 0.19.0 interface.py:427-474; 0.32.0 interface.py:750-781"),
    ((0, 12), "one", "rocm.py get_attn_backend_cls: assert block_size == 1 (0.12.0 :228-230 ... 0.17.0 :369-371)"),
)
ROCM_DEFAULT_BLOCK = 16
ROCM_BLOCK_ASSERT = "Sparse MLA backend on ROCm only supports block size 1 for now."  # 0.17.0 rocm.py:369-371
NO_BACKEND = ("No valid attention backend found for {platform} with kv_cache_dtype {dtype}: no sparse MLA backend "
              "takes it ({why}).")
# The compute capability majors some sparse MLA backend takes on CUDA, by first release (None: no check). Any other GPU
# gets "No valid attention backend found for cuda with {config}. Reasons: {...}" from platforms/cuda.py
# get_attn_backend_cls while the model's first sparse layer is built, whatever the dtype (0.11.1 cuda.py:412, 0.12.0
# :399, 0.13.0-0.14.1 :339, 0.15.x :352, 0.16.0 :355, 0.17.x :393, 0.18.x :282, 0.19.x :299, 0.20.x :333, 0.21.0 :337,
# 0.22-0.23 :343, 0.24.0 :445, 0.25.x :441, 0.26-0.27 :447, 0.28.0 :451, 0.29.0 :457, 0.30.0 :503, 0.31.0 :491, 0.32.0
# :471, 0.33.0 :473, 0.34.0 :514).
SPARSE_MAJORS = (
    ((0, 24), (HOPPER, BLACKWELL, 12), "0.24.0 cuda.py:130-133 adds FLASHINFER_MLA_SPARSE_SM120 for major 12 "
                                       "(flashinfer_mla_sparse.py supports_compute_capability major == 12; so to "
                                       "0.34.0 :195-196)"),
    ((0, 11, 1), (HOPPER, BLACKWELL), "flashmla_sparse.py supports_compute_capability major in [9, 10] (0.11.1 "
                                      ":86-87, 0.34.0 the same); FLASHINFER_MLA_SPARSE 10 (0.17 on), "
                                      "FLASH_ATTN_MLA_SPARSE 9 (0.25.1 on), FLASHINFER_MLA_SPARSE_SM90 9 (0.30 on)"),
    # 0.11.0 cuda.py:252-255 returns FlashMLASparseBackend for any sparse layer, no capability check: start-up gets
    # past backend selection and fails at the first sparse kernel call of the profile run
    ((0, 11), None, "0.11.0 platforms/cuda.py:252-255"),
)
NO_SPARSE_GPU = ("No valid attention backend found for cuda (compute capability {cc}) with a sparse MLA layer: every "
                 "sparse MLA backend of vLLM {version} needs compute capability {majors}.")
UNCHECKED_SPARSE_GPU = ("FlashMLA's sparse kernels do not run on compute capability {cc}: vLLM {version} picks "
                        "FLASHMLA_SPARSE for a sparse MLA layer on any CUDA GPU (platforms/cuda.py:252-255, no "
                        "capability check), so start-up fails at the first sparse kernel call.")

# Dense MLA (no indexer) on CUDA: the fp8 spellings some dense MLA backend lists (supported_kv_cache_dtypes) on a
# GPU of each compute capability major (None: any), by first release. The platform's selector checks them from 0.11.1
# (get_valid_backends, then "No valid attention backend found for cuda with ...": cuda.py 0.11.1 :412, 0.17.x :393,
# 0.18.x :282, 0.34.0 :514), in an MLA layer's __init__ after its KV cache quant check up to 0.17 and before it from
# 0.18 (vllm_e5m2.MLA_BACKEND_FIRST). No CUDA MLA backend lists fp8_e5m2 in any release (FLASHMLA, FLASH_ATTN_MLA,
# TRITON_MLA, FLASHINFER_MLA, CUTLASS_MLA; TOKENSPEED_MLA from 0.22: fp8 and fp8_e4m3 only); ROCm's ROCM_AITER_MLA
# does from 0.18 (rocm_aiter_mla.py 0.18.0:27-34), not modelled. 0.11.0 picks by GPU and block with no dtype check
# (cuda.py 0.11.0:240-300): FLASHMLA on Hopper, CUTLASS_MLA on 10.0, TRITON_MLA on any other GPU (Ampere, Ada, 10.3,
# SM12x: vllm_specs.dense_mla_backend), whose impl then raises for every cache dtype but auto: TRITON_MLA_QUANTIZED.
DENSE_MLA_FP8 = (
    ((0, 18), {None: ("fp8", "fp8_e4m3")}, "0.18.0 triton_mla.py:32-38 (any GPU, :63), flashmla.py:50-56, "
                                           "0.22.0 / 0.28.0 / 0.34.0 the same lists"),
    ((0, 11, 1), {HOPPER: ("fp8", "fp8_e4m3"), BLACKWELL: ("fp8", "fp8_e4m3")},
     "0.11.1 flashmla.py:43-47 on majors 9 and 10 (:62), cutlass_mla.py:40-44 and flashinfer_mla.py:39-43 on 10; "
     "triton_mla.py:31 and flashattn_mla.py:45 auto only (0.17.0 :31-34, :47-50 auto and bfloat16)"),
)
# TritonMLAImpl.__init__'s refusal of a cache dtype, by first release ("": none; the selector checks from 0.11.1):
TRITON_MLA_QUANTIZED = (
    ((0, 11, 1), "", "0.11.1 triton_mla.py:31 supported_kv_cache_dtypes, checked by the selector (DENSE_MLA_FP8)"),
    ((0, 11), "TritonMLA V1 with FP8 KV cache not yet supported",
     "0.11.0 v1/attention/backends/mla/triton_mla.py:68-70 NotImplementedError for is_quantized_kv_cache, any dtype "
     "but auto (attention/backends/abstract.py:203-204), bfloat16 too"),
)
PLAIN_FP8 = ("fp8", "fp8_e4m3", "fp8_e5m2")  # the spellings DENSE_MLA_FP8 decides; others are other rules'
DENSE_NO_BACKEND = ("No valid attention backend found for cuda (compute capability {cc}) with kv_cache_dtype {dtype}: "
                    "no MLA backend of vLLM {version} takes it (kv_cache_dtype not supported).")


def dense_mla_fp8(capability=(), version: str = PINNED) -> Optional[tuple]:
    """The fp8 spellings some dense MLA backend of vLLM `version` takes on this CUDA GPU (DENSE_MLA_FP8); None where
    vLLM checks none (0.11.0) or kvplan does not model it (ROCm)."""
    taken = release_rule(DENSE_MLA_FP8, version)
    if taken is None or is_rocm_platform(capability):
        return None
    return taken.get(None, taken.get(major_of(capability), ()))


def dense_mla_refusal_line(dtype: str, capability=(), version: str = PINNED) -> str:
    """vLLM's refusal of a dense MLA layer's plain fp8 `dtype` (as spelled) no backend takes ('' where one does)."""
    taken = dense_mla_fp8(capability, version)
    if dtype not in PLAIN_FP8 or taken is None or dtype in taken:
        return ""
    cc = f"{capability[0]}.{capability[1]}" if capability else "9.0"
    return DENSE_NO_BACKEND.format(cc=cc, dtype=dtype, version=version)


@dataclass(frozen=True)
class SparseCache:
    """What one sparse MLA layer keeps for a quantized dtype: the backend, the cache dtype it keeps (fp8_ds_mla or
    the dtype as asked), or, with backend None, why vLLM found none."""

    backend: Optional[str]
    cache: Optional[str]
    why: str = ""


def major_of(capability) -> int:
    """The compute capability's major number; Hopper's 9 when unknown (the rules kvplan modelled first)."""
    return capability[0] if capability else HOPPER


def auto_on_gpu(architecture: str, capability=(), version: str = PINNED) -> str:
    """What `auto` becomes on this GPU ("" for no rewrite): models/config.py's SM10X_AUTO, or on SM12x the sparse
    MLA backend's fp8_ds_mla (SM120_DTYPES) for a sparse MLA architecture (those models/config.py rewrites)."""
    if sm120_sparse(capability, version):
        return FP8_DS_MLA if architecture in DSA_ARCHITECTURES else ""
    if major_of(capability) != BLACKWELL:
        return ""
    return release_rule(SM10X_AUTO, version, {}).get(architecture, "")


def sm120_sparse(capability=(), version: str = PINNED) -> bool:
    """Whether vLLM `version` runs sparse MLA on this GPU with FLASHINFER_MLA_SPARSE_SM120 as kvplan has read it
    (SM120_DTYPES): every cache dtype it takes, 16-bit ones included, stored as fp8_ds_mla."""
    return bool(capability) and not is_rocm_platform(capability) and capability[0] == SM120 and \
        release_rule(SM120_DTYPES, version) is not None


def _order(major: int, dtype: str, heads: Optional[int], version: str) -> tuple:
    if major == HOPPER:
        return release_rule(HOPPER_ORDER, version, (FLASHMLA,))
    rule = release_rule(BLACKWELL_FLASHINFER_FIRST, version, "heads")
    first = (rule == "quantized" or (rule == "fp8" and dtype.startswith("fp8"))
             or (heads is not None and heads <= 16))
    return (FLASHINFER, FLASHMLA) if first else (FLASHMLA, FLASHINFER)


def _refusal(backend: str, dtype: str, major: int, version: str, shape: dict) -> str:
    """Why `backend` does not take this layer ('' when it does): its dtype list, capability, supports_combination."""
    if backend == FLASH_ATTN:
        return "kv_cache_dtype not supported"  # 16-bit only (flashattn_mla_sparse.py:38-42)
    if backend == FLASHMLA:
        if dtype not in release_rule(FLASHMLA_DTYPES, version, (FP8_DS_MLA,)):
            return "kv_cache_dtype not supported"
        if dtype == "nvfp4_ds_mla" and major != BLACKWELL:  # flashmla_sparse.py:250-254
            return "FLASHMLA_SPARSE only supports the nvfp4_ds_mla kv-cache dtype on SM100 (Blackwell)"
        return ""
    if backend == FLASHINFER:
        return "" if dtype in release_rule(FLASHINFER_DTYPES, version, ()) else "kv_cache_dtype not supported"
    if dtype not in FLASHINFER_SM90_DTYPES:  # FLASHINFER_SM90
        return "kv_cache_dtype not supported"
    if shape.get("kv_lora_rank", FLASHINFER_SM90_LATENT) != FLASHINFER_SM90_LATENT:
        return "FLASHINFER_MLA_SPARSE_SM90 requires kv_lora_rank=512"
    return "" if shape.get("qk_rope_head_dim", 64) in (0, 64) else "requires qk_rope_head_dim in (0, 64)"


def is_rocm_platform(capability) -> bool:
    return tuple(capability or ()) == ROCM


def _rocm_cache(dtype: str, version: str) -> SparseCache:
    """ROCM_AITER_MLA_SPARSE's answer for a quantized `dtype` after models/config.py (ROCM_DTYPES)."""
    taken = release_rule(ROCM_DTYPES, version)
    if taken is None:
        return SparseCache(None, None, ROCM_FP8_REFUSAL)
    return SparseCache("ROCM_AITER_MLA_SPARSE", dtype) if dtype in taken else SparseCache(
        None, None, "kv_cache_dtype not supported")


def rocm_sparse_block(block_size: Optional[int]) -> int:
    """The block a sparse MLA layer pages on ROCm: --block-size as given, else vLLM's ROCm default (ROCM_BLOCK_RULES;
    in 0.12-0.17 that default is then refused: rocm_block_refusal)."""
    return ROCM_DEFAULT_BLOCK if block_size is None else block_size


def rocm_block_refusal(block_size: Optional[int], version: str = PINNED) -> str:
    """vLLM's AssertionError for a sparse MLA layer at `block_size` (None: unset) on ROCm in `version`, '' when it
    starts (ROCM_BLOCK_RULES; releases before 0.12 refuse sparse attention on ROCm first: ROCM_NO_SPARSE)."""
    one = release_rule(ROCM_BLOCK_RULES, version, "any") == "one"
    return ROCM_BLOCK_ASSERT if one and rocm_sparse_block(block_size) != 1 else ""


def sparse_cache(dtype: str, capability=(), version: str = PINNED, heads: Optional[int] = None,
                 shape: Optional[dict] = None, architecture: str = "") -> SparseCache:
    """The backend vLLM `version` gives a sparse MLA layer of `architecture` asked for quantized `dtype` (as spelled)
    on a GPU of `capability` (ROCM: an AMD GPU), with `heads` query heads a rank and the latent `shape`
    (kv_lora_rank, qk_rope_head_dim), and the cache dtype it keeps. SM12x from 0.24: FLASHINFER_MLA_SPARSE_SM120
    (SM120_DTYPES); other capabilities (and SM12x before 0.24, which no sparse backend runs on: sparse_gpu_refusal_line)
    keep kvplan's earlier reading, fp8* as fp8_ds_mla and no refusal."""
    shape = shape or {}
    if dtype.startswith("fp8") and architecture in release_rule(CONFIG_REWRITE, version, ()):
        dtype = FP8_DS_MLA  # models/config.py, before any platform chooses a backend
    if is_rocm_platform(capability):
        return _rocm_cache(dtype, version)
    if sm120_sparse(capability, version):
        dtype = "auto" if dtype == "bfloat16" and architecture in SM120_BF16_AS_AUTO else dtype
        if dtype in release_rule(SM120_DTYPES, version):
            return SparseCache(FLASHINFER_SM120, FP8_DS_MLA)
        return SparseCache(None, None, "kv_cache_dtype not supported")
    major = major_of(capability)
    if major not in (HOPPER, BLACKWELL):
        return SparseCache(FLASHMLA, FP8_DS_MLA if dtype.startswith("fp8") else dtype)
    reasons = []
    for backend in _order(major, dtype, heads, version):
        why = _refusal(backend, dtype, major, version, shape)
        if not why:
            return SparseCache(backend, FP8_DS_MLA if backend == FLASHMLA and dtype != "nvfp4_ds_mla" else dtype)
        reasons.append(why)
    why = next((r for r in reasons if r.startswith("FLASHMLA_SPARSE only")), reasons[0] if reasons else "")
    return SparseCache(None, None, why)


# FLASHINFER_MLA_SPARSE, the first release with it (0.17.0 flashinfer_mla_sparse.py:63-66, auto / bfloat16 only; 0.16.0
# has none: its SM10x list ends in FLASHMLA_SPARSE, cuda.py:51-59)
FLASHINFER_SPARSE_SINCE = (0, 17)


def sixteen_bit_backend(capability=(), version: str = PINNED, heads: Optional[int] = None) -> str:
    """The backend a sparse MLA layer with a 16-bit cache gets on CUDA: the first of the platform's list that takes a
    16-bit cache. Hopper: FLASH_ATTN_MLA_SPARSE from 0.25 (16-bit only, flashattn_mla_sparse.py 0.32.0:93-96), else
    FLASHMLA_SPARSE (HOPPER_ORDER); SM10x: FLASHINFER_MLA_SPARSE at <= 16 query heads a rank from 0.17 (_order), else
    FLASHMLA_SPARSE; SM12x from 0.24 FLASHINFER_MLA_SPARSE_SM120 (which stores it as fp8_ds_mla: sparse_cache); ROCm
    ROCM_AITER_MLA_SPARSE. `heads` None: more than 16."""
    if is_rocm_platform(capability):
        return "ROCM_AITER_MLA_SPARSE"
    if sm120_sparse(capability, version):
        return FLASHINFER_SM120
    major = major_of(capability)
    if major == HOPPER:
        return release_rule(HOPPER_ORDER, version, (FLASHMLA,))[0]
    few = heads is not None and heads <= 16
    if major == BLACKWELL and few and parse_version(version) >= FLASHINFER_SPARSE_SINCE:
        return FLASHINFER
    return FLASHMLA


def taken_dtypes(capability=(), version: str = PINNED, heads: Optional[int] = None,
                 shape: Optional[dict] = None, architecture: str = "") -> tuple:
    """The --kv-cache-dtype values a sparse MLA layer of `architecture` starts with in `version` on this GPU: the
    16-bit ones and the quantized ones some backend takes."""
    quantized = ("fp8", "fp8_e4m3", "fp8_e5m2", FP8_DS_MLA, "nvfp4_ds_mla")
    checked = ("auto", "bfloat16") + quantized if sm120_sparse(capability, version) else quantized
    return tuple(d for d in ("auto", "bfloat16") if d not in checked) + tuple(
        d for d in checked if sparse_cache(d, capability, version, heads, shape, architecture).backend is not None)


def sparse_gpu_refusal_line(capability=(), version: str = PINNED) -> str:
    """vLLM's refusal of a sparse MLA layer on a CUDA GPU no sparse backend runs on ('' when one does, on ROCm, and
    for an unknown GPU, read as Hopper): SPARSE_MAJORS."""
    if not capability or is_rocm_platform(capability):
        return ""
    majors = release_rule(SPARSE_MAJORS, version, (HOPPER, BLACKWELL))
    cc = f"{capability[0]}.{capability[1]}"
    if capability[0] in (majors or (HOPPER, BLACKWELL)):
        return ""
    if majors is None:
        return UNCHECKED_SPARSE_GPU.format(cc=cc, version=version)
    named = [f"{m}.x" for m in majors]
    return NO_SPARSE_GPU.format(cc=cc, version=version, majors=", ".join(named[:-1]) + " or " + named[-1])


def flashinfer_lacks(since: tuple, version: str = PINNED) -> str:
    """The flashinfer-python release `version` pins where it is older than `since` (the first FlashInfer that takes
    the arguments a backend passes), '' where it takes them or the pin is not listed (FLASHINFER_PINS)."""
    row = next((row for row in FLASHINFER_PINS if parse_version(version)[:2] >= row[0]), None)
    return ".".join(map(str, row[1])) if row is not None and row[1] < since else ""


def first_pinning(since: tuple) -> tuple:
    """The first release whose FlashInfer pin takes what a backend first passes in FlashInfer `since`."""
    return min(row[0] for row in FLASHINFER_PINS if row[1] >= since)


def sm120_pin_refusal_line(capability=(), version: str = PINNED) -> str:
    """Why sparse MLA on SM12x fails at start-up's kernel warm-up in `version` ('' where it does not, and on other
    GPUs): the FlashInfer the release pins lacks kv_scale_format, which FLASHINFER_MLA_SPARSE_SM120 passes
    (KV_SCALE_FORMAT_SINCE)."""
    pin = flashinfer_lacks(KV_SCALE_FORMAT_SINCE, version)
    if not pin or not sm120_sparse(capability, version):
        return ""
    return SM120_PIN_FAILURE.format(version=version, cc=f"{capability[0]}.{capability[1]}", pin=pin)


def sm120_first_release() -> str:
    """The first release whose sparse MLA starts on SM12x (SM120_DTYPES' first row, past KV_SCALE_FORMAT_SINCE)."""
    first = max(SM120_DTYPES[-1][0], first_pinning(KV_SCALE_FORMAT_SINCE))
    return ".".join(map(str, first + (0,) * (3 - len(first))))


def refusal_line(dtype: str, capability=(), why: str = "") -> str:
    """vLLM's refusal when no sparse MLA backend takes `dtype`: ROCm's own words on ROCm, else the CUDA platform's."""
    if is_rocm_platform(capability):
        return why if why == ROCM_FP8_REFUSAL else NO_BACKEND.format(platform="rocm", dtype=dtype, why=why)
    cc = f"{capability[0]}.{capability[1]}" if capability else "9.0"
    return NO_BACKEND.format(platform=f"cuda (compute capability {cc})", dtype=dtype, why=why)
