"""Session 72: vLLM's per-architecture config hooks (model_executor/models/config.py, VerifyAndUpdateConfig subclasses
looked up in MODELS_CONFIG_MAP by VllmConfig.try_verify_and_update_config) against kvplan's engine model.

Facts read in vLLM (wheels 0.10.1-0.34.0, 0.9.2 and 0.10.0; paths under vllm/ of the release named):
- GlmMoeDsaForCausalLM (GLM-5.x) turns `auto` into fp8_e4m3 on CUDA compute capability 10.x
  (is_device_capability_family(100)) and logs "Using fp8 kv-cache for GlmMoeDsaForCausalLM on SM10x": 0.32.0:43-55,
  0.33.0:89-101, 0.34.0:163-175; 0.29.0-0.31.0's class (0.29.0:43-50, 0.31.0:43-50) sets the DCP defaults only. An
  explicit dtype is left alone (`cache_config.cache_dtype == "auto"`).
  GLM-5.2's cache a token on one GPU, from its bundled config (78 MLA layers, 21 of them with an indexer; the MLA
  latent is replicated over TP): bf16 78 x (512 + 64) x 2 + 21 x 132 = 89,856 + 2,772 = 92,628 bytes; fp8_e4m3 on
  SM10x's FLASHINFER_MLA_SPARSE, a plain 576-byte fp8 latent: 78 x 576 + 2,772 = 44,928 + 2,772 = 47,700 bytes.
- DeepseekV32ForCausalLM logs "Using custom fp8 kv-cache format for DeepSeekV3.2" where it turns fp8* (and in 0.11.0
  `auto`) into fp8_ds_mla (0.11.0:419-422, 0.11.1:478-480, 0.17.0:597-599; gone in 0.18.0:30-42) and "Using bfloat16
  kv-cache for DeepSeekV3.2" where it turns bfloat16 into auto (0.11.0:423-425, 0.18.0:40-42, 0.32.0:38-40,
  0.34.0:91-93).
- DiffusionGemmaModelForBlockDiffusionConfig (mapped from 0.24.0:676 to 0.34.0:1552, none in 0.23.0) sets
  scheduler_config.max_num_seqs = 8 wherever it is >= SchedulerConfig.DEFAULT_MAX_NUM_SEQS = 128 (config.py
  0.24.0:158-159, 0.32.0:371-372, 0.34.0:691-692; config/scheduler.py 0.24.0:44, 0.32.0:43, 0.34.0:42), run in
  VllmConfig.__post_init__ (config/vllm.py 0.32.0:1443) before the CUDA graph sizes (:1937), so those follow the 8,
  with the canvas (256 tokens, DiffusionConfig.canvas_length) as the draft tokens of a decode step
  (num_speculative_tokens, 0.32.0:608-611; tests/test_dgemma_drafter_s72.py): query length 257, cap
  min(8 x 257 x 2, 512) = 512, the grid 1, 2, 4, 8..256 by 8, 272..512 by 16 (51 sizes) and the decode size 257 = 52
  PIECEWISE graphs (:2360-2441); FULL decode graphs at the V2 runner's query length, the canvas 256 (session 73,
  tests/test_dgemma_s73.py): the sizes rounded up to 256 and 512 = 2. It calls Gemma4Config's hook
  first (0.24.0:120, 0.32.0:330, 0.34.0:650).
- Gemma4Config (0.19.0:61-111 ... 0.34.0:532-600): 0.19-0.23 force TRITON_ATTN where the two head sizes differ and
  the larger is over 256 (0.19.0:96 `max_head_dim > 256`); from 0.24 wherever they differ (0.24.0:75, 0.28.0:220
  by layer type), TRITON_ATTN unless FlashAttention 4 runs there and the larger head is at most 512 (0.24.0:83,
  0.32.0:262, 0.34.0:565).
"""


import pytest

from kvplan.api import estimate
from kvplan.engines.vllm_gemma4_backend import forced_triton_refusal, triton_forced
from kvplan.engines.vllm_settings import hooked_seqs
from kvplan.model.kinds import FullAttention
from kvplan.model.precision import resolve_kv_dtype
from kvplan.model.sources import resolve

GLM = "zai-org/GLM-5.2"
V32 = "deepseek-ai/DeepSeek-V3.2"
GLM_BF16, GLM_FP8 = 78 * 576 * 2 + 21 * 132, 78 * 576 + 21 * 132  # bytes a token on one GPU (docstring)
GLM_LINE = "Using fp8 kv-cache for GlmMoeDsaForCausalLM on SM10x"
DS_MLA_LINE = "Using custom fp8 kv-cache format for DeepSeekV3.2"
BF16_LINE = "Using bfloat16 kv-cache for DeepSeekV3.2"


def _plan(model, gpu, version, kv="auto", **keywords):
    plan, = estimate(model, gpu=gpu, engine=f"vllm=={version}", kv_cache_dtype=kv, max_model_len=8192,
                     **keywords)
    return plan


def _sparse(model, gpu, version, kv="auto"):
    return _plan(model, gpu, version, kv, tensor_parallel_size=8, quantization="fp8")


def test_glm_cache_arithmetic():
    assert (GLM_BF16, GLM_FP8) == (92_628, 47_700)


@pytest.mark.parametrize("version", ["0.32.0", "0.33.0", "0.34.0"])
@pytest.mark.parametrize("gpu", ["B200", "B300", "GB200"])  # 10.0, 10.3, 10.0: the SM10x family
def test_glm_auto_is_fp8_on_sm10x_from_0_32(version, gpu):
    plan = _sparse(GLM, gpu, version)
    assert (plan.kv_dtype, plan.kv_bytes_per_token_per_gpu) == ("fp8_e4m3", GLM_FP8)
    assert plan.engine.log_lines[0] == GLM_LINE


def test_glm_auto_stays_bf16_on_b200_before_0_32():
    plan = _sparse(GLM, "B200", "0.31.0")
    assert (plan.kv_dtype, plan.kv_bytes_per_token_per_gpu) == ("bf16", GLM_BF16)
    assert GLM_LINE not in plan.engine.log_lines


@pytest.mark.parametrize("gpu", ["H200", "MI355X"])  # 9.0, and a ROCm GPU: not SM10x
def test_glm_auto_stays_bf16_off_sm10x(gpu):
    plan = _sparse(GLM, gpu, "0.34.0")
    assert (plan.kv_dtype, plan.kv_bytes_per_token_per_gpu) == ("bf16", GLM_BF16)
    assert GLM_LINE not in plan.engine.log_lines


def test_glm_explicit_bfloat16_on_b200_is_kept():
    plan = _sparse(GLM, "B200", "0.34.0", kv="bfloat16")
    assert (plan.kv_dtype, plan.kv_bytes_per_token_per_gpu) == ("bf16", GLM_BF16)
    assert GLM_LINE not in plan.engine.log_lines


@pytest.mark.parametrize("version, kv, line", [
    ("0.11.0", "auto", DS_MLA_LINE), ("0.11.0", "fp8", DS_MLA_LINE), ("0.17.0", "fp8", DS_MLA_LINE),
    ("0.17.0", "auto", None), ("0.18.0", "fp8", None), ("0.32.0", "fp8", None),
    ("0.11.0", "bfloat16", BF16_LINE), ("0.32.0", "bfloat16", BF16_LINE), ("0.34.0", "bfloat16", BF16_LINE),
])
def test_deepseek_v32_hook_lines(version, kv, line):
    lines = _sparse(V32, "B200", version, kv).engine.log_lines
    assert (lines[0] if lines[0].startswith("Using ") else None) == line


def _diffusion_gemma(write_config):
    text = {"model_type": "diffusion_gemma_text", "hidden_size": 2560, "num_hidden_layers": 6,
            "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256, "intermediate_size": 9216,
            "vocab_size": 262144, "sliding_window": 512, "max_position_embeddings": 131072,
            "layer_types": ["sliding_attention", "sliding_attention", "full_attention"] * 2}
    return str(write_config({"architectures": ["DiffusionGemmaForBlockDiffusion"], "model_type": "diffusion_gemma",
                             "torch_dtype": "bfloat16", "text_config": text}))


@pytest.mark.parametrize("version", ["0.24.0", "0.32.0", "0.34.0"])
@pytest.mark.parametrize("seqs, held", [(None, 8), (200, 8), (128, 8), (127, 127), (64, 64)])
def test_diffusion_gemma_max_num_seqs_is_8_from_0_24(write_config, version, seqs, held):
    plan = _plan(_diffusion_gemma(write_config), "H100", version, max_num_seqs=seqs)
    assert plan.engine.max_num_seqs == held
    assert (plan.max_concurrency, plan.max_concurrency_limited_by) == (held, "max_num_seqs")


def test_diffusion_gemma_with_the_hook_plans_as_eight_sequences_asked(write_config):
    """The hook's 8 is --max-num-seqs 8 in every term: the profile's sampler rows, the graphs, the budget."""
    model = _diffusion_gemma(write_config)
    hooked, asked = _plan(model, "H100", "0.32.0"), _plan(model, "H100", "0.32.0", max_num_seqs=8)
    assert hooked.to_dict() == asked.to_dict()
    graphs = next(t for t in hooked.budget.terms if t.name == "cuda_graphs").source
    assert "PIECEWISE=52 (largest=512), FULL=2 (largest=512)" in graphs  # the docstring (session 72, dgemma)


def test_diffusion_gemma_keeps_the_default_before_its_hook(write_config):
    spec = resolve(_diffusion_gemma(write_config), None)
    assert hooked_seqs(spec, 1024, "0.23.0") == 1024  # not in 0.23.0's map (and not in its registry)
    assert hooked_seqs(spec, 1024, "0.24.0") == 8


def _with_heads(spec, sliding: int, full: int):
    """`spec` with its sliding layers `sliding` wide and its full ones `full` wide."""
    from dataclasses import replace

    from kvplan.model.kinds import SlidingWindow

    def width(layer):
        if isinstance(layer, SlidingWindow):
            return replace(layer, head_dim=sliding)
        return replace(layer, head_dim=full) if isinstance(layer, FullAttention) else layer

    return replace(spec, layers=tuple(width(layer) for layer in spec.layers))


A100, H100, B200 = (8, 0), (9, 0), (10, 0)


@pytest.mark.parametrize("heads, version, capability, forced", [
    ((256, 512), "0.23.0", H100, True),  # 0.19-0.23: Triton on every GPU past 256
    ((128, 256), "0.23.0", A100, False),  # ... and only past 256
    ((256, 512), "0.24.0", H100, False),  # FA4 on 9.x
    ((256, 512), "0.32.0", B200, False),
    ((256, 512), "0.32.0", A100, True),  # no FA4 on 8.0
    ((128, 256), "0.24.0", A100, True),  # from 0.24 any two sizes
    ((128, 256), "0.34.0", H100, False),
    ((256, 640), "0.32.0", H100, True),  # over 512: Triton even where FA4 runs
    ((256, 256), "0.32.0", A100, False),  # one size: the hook returns
])
def test_gemma4_hook_forces_triton(heads, version, capability, forced):
    spec = _with_heads(resolve("google/gemma-4-31B-it", None), *heads)
    assert triton_forced(spec, capability, version) is forced


def test_gemma4_hook_runs_for_diffusion_gemma_from_0_24(write_config):
    spec = _with_heads(resolve(_diffusion_gemma(write_config), None), 256, 512)
    assert triton_forced(spec, A100, "0.24.0") and triton_forced(spec, A100, "0.34.0")
    assert not triton_forced(spec, A100, "0.23.0")
    refusal = forced_triton_refusal(spec, resolve_kv_dtype("nvfp4", "bf16"), A100, "0.34.0")
    assert refusal is not None and "mixed 256 / 512-wide heads" in refusal.reason
