"""Session 71's audit of gpt-oss (GptOssForCausalLM) against vLLM's code, release by release.

Facts read in vLLM (paths under vllm/ of the release named):
- TritonAttentionImpl.__init__ raises, on CUDA below compute capability 8.9, for a cache dtype whose name starts with
  "fp8": "FP8 KV cache is not supported by the Triton attention backend on {dev} (compute capability {cap});
  native FP8 (fp8e4nv) requires SM89+. Re-run with --kv-cache-dtype {bfloat16 from 8.0, float16 below}."
  (v1/attention/backends/triton_attn.py 0.24.0:467-481, 0.34.0:514-527); 0.23.0 has no such check (:491 only
  views the cache as fp8).
- gpt-oss has a learned sink per head on every layer (models/gpt_oss.py), so its layers take the first backend of
  platforms/cuda.py _get_backend_priorities that supports sinks (0.34.0:165-178: FLASH_ATTN, FLASHINFER,
  TRITON_ATTN off SM10x): FLASH_ATTN only under FlashAttention 3/4 (fa_utils.py 0.34.0:319-322), not run on A100;
  FLASHINFER only on SM10x through TRT-LLM in 0.24 (flashinfer.py 0.24.0:437-450), plus SM90 / SM12x in 0.34
  (0.34.0:709-727); TRITON_ATTN always (triton_attn.py 0.34.0:386-388). So an A100 (8.0) with --kv-cache-dtype fp8
  lands on Triton and is refused from 0.24; an L40S (8.9) is not.
- GptOssForCausalLMConfig.verify_and_update_config (model_executor/models/config.py 0.11.0:256-273): where one
  cuda_graph_sizes value below 992 is left, the sizes become 1, 2, 4, range(8, 256, 8), range(256, 993, 16):
  3 + 31 + 47 = 81 sizes, the largest 992 (the comment's "from 67 to 81"); 0.10.1 and 0.10.2 test "below 1024" and
  build range(256, 1025, 16) (0.10.1:258-275, 0.10.2:269-286): 3 + 31 + 49 = 83 sizes, the largest 1024.
- MXFP4 expert padding (fused_moe/oracle/mxfp4.py 0.34.0:822-901): Marlin and FlashInfer TRT-LLM round the hidden
  size to 256 and the intermediate to 128; OAI Triton (the last branch) the intermediate to 64 only. gpt-oss's
  2880 x 2880: Marlin / TRT-LLM 3072 x 2944, Triton 2880 x 2880.
"""

import pytest

from kvplan.api import estimate

OSS_20B = "openai/gpt-oss-20b"
GEMMA4 = "google/gemma-4-31B-it"
# the message of triton_attn.py 0.34.0:524-527, filled in by hand for an A100 SXM 80GB (NVML's name)
A100_WORDS = ("FP8 KV cache is not supported by the Triton attention backend on NVIDIA A100-SXM4-80GB (compute "
              "capability 8.0); native FP8 (fp8e4nv) requires SM89+. Re-run with --kv-cache-dtype bfloat16.")


def _engine(model, gpu, version, kv="fp8", length=131072):
    plan, = estimate(model, gpu=gpu, engine=f"vllm=={version}", kv_cache_dtype=kv, max_model_len=length)
    return plan.engine


@pytest.mark.parametrize("version", ["0.24.0", "0.28.0", "0.32.0", "0.34.0"])
@pytest.mark.parametrize("kv", ["fp8", "fp8_e5m2"])
def test_gpt_oss_fp8_cache_on_a100_is_refused_by_triton_from_0_24(version, kv):
    engine = _engine(OSS_20B, "A100-80GB", version, kv)
    assert not engine.starts
    assert engine.refusal.configuration and engine.refusal.field == "kv_dtype"
    assert engine.refusal.reason == A100_WORDS


def test_gpt_oss_fp8_cache_on_a100_before_0_24_is_not_refused_by_that_check():
    assert _engine(OSS_20B, "A100-80GB", "0.23.0").starts  # triton_attn.py 0.23.0: no capability check


@pytest.mark.parametrize("gpu", ["L40S", "H100", "B200"])  # 8.9, 9.0, 10.0: native fp8
def test_gpt_oss_fp8_cache_from_sm89_still_starts(gpu):
    assert _engine(OSS_20B, gpu, "0.34.0").starts


def test_gpt_oss_bf16_cache_on_a100_starts():
    assert _engine(OSS_20B, "A100-80GB", "0.34.0", kv="auto").starts


def test_gemma4_forced_triton_fp8_on_a100_is_refused_too():
    # Gemma4Config sets TRITON_ATTN where FA4 does not run (A100: compute capability 8.0), so the same
    # constructor check meets the fp8 cache
    engine = _engine(GEMMA4, "A100-80GB", "0.32.0", length=8192)
    assert not engine.starts and engine.refusal.reason.startswith("FP8 KV cache is not supported by the Triton")


def test_gpt_oss_0_11_0_capture_grid_by_hand():
    sizes = [1, 2, 4] + list(range(8, 256, 8)) + list(range(256, 993, 16))
    assert len(sizes) == 81 and sizes[-1] == 992
    from kvplan.engines.vllm_graphs import family_sizes
    assert family_sizes((0, 11, 0), "GptOssForCausalLM", None, None) == (None, sizes)


@pytest.mark.parametrize("version", [(0, 10, 1), (0, 10, 2)])
def test_gpt_oss_0_10_capture_grid_by_hand(version):
    sizes = [1, 2, 4] + list(range(8, 256, 8)) + list(range(256, 1025, 16))
    assert len(sizes) == 83 and sizes[-1] == 1024
    from kvplan.engines.vllm_graphs import family_sizes
    assert family_sizes(version, "GptOssForCausalLM", None, None) == (None, sizes)


def test_mxfp4_padding_by_hand():
    marlin = (3072 * 2944) / (2880 * 2880)  # round_up(2880, 256) x round_up(2880, 128)
    assert marlin == pytest.approx(1.0904, abs=1e-4)
    a100 = estimate(OSS_20B, gpu="A100-80GB", engine="vllm==0.34.0", max_model_len=8192)[0].budget
    b200 = estimate(OSS_20B, gpu="B200", engine="vllm==0.34.0", max_model_len=8192)[0].budget
    h100 = estimate(OSS_20B, gpu="H100", engine="vllm==0.34.0", max_model_len=8192)[0].budget
    # TRT-LLM (B200) pads as Marlin (A100); OAI Triton (H100) leaves 2880 x 2880 as stored. TRT-LLM holds the biases
    # in float32 (oracle/mxfp4.py 0.32.0:977-991; session 72, test_v4_mxfp4_s72), Marlin in bf16: 768 experts of a
    # layer x (2 x 2,944 + 3,072) padded bias elements x 2 more bytes each
    assert b200.weights_bytes_per_gpu - a100.weights_bytes_per_gpu == 768 * (2 * 2944 + 3072) * 2
    assert a100.weights_bytes_per_gpu > h100.weights_bytes_per_gpu
