"""vLLM 0.33.0 and 0.34.0's model runner as kvplan models it (kvplan/engines/vllm_runner.py, vllm_profile.py), held to
the source releases read by hand (paths under vllm/ of each sdist) and to vLLM 0.32.0's own figures:

- 0.33 Model Runner V2's profile samples twice: the default pass, then every dummy request with
  SamplingParams.for_sampler_warmup() (v1/worker/gpu/model_runner.py:993-1014; 0.34 :1039-1062). That pass copies
  the logits to float32 (v1/worker/gpu/sample/sampler.py:241-242) and, with FlashInfer, masks the top-k into a new
  float32 tensor and takes its softmax into another (flashinfer-python 0.7.2.post1 sampling.py:676, 1795-1796: a
  per-request top-k tensor misses the fast path of :1583-1594): 4 + 4 + 4 bytes a logit beside the bf16 logits.
  Without FlashInfer (ROCm, compute capability below 8.0: v1/sample/ops/topk_topp_sampler.py:102-161,
  v1/attention/backends/flashinfer.py:696-704) the float32 copy is masked in place by the Triton kernel, which keeps
  min(next power of two of min(SMs, requests), SMs) float32 vocabulary rows (topk_topp_triton.py:1688-1696).
- profile_run holds the forward's output hidden states until the sampler returns (model_runner.py:1034-1050).
- 0.34 has no V1 runner (gpu_model_runner.py removed; v1/worker/gpu_worker.py:579-587 builds the V2 GPUModelRunner;
  platforms/interface.py:1481-1490 refuses VLLM_USE_V2_MODEL_RUNNER != 1), so suffix decoding runs on V2
  (v1/worker/gpu/spec_decode/suffix/); 0.33 still sends it to V1 (config/vllm.py:3066-3068).
- Async scheduling with ngram / suffix drafting: off on either runner in 0.32 (config/vllm.py:1597-1610, and vLLM
  0.32's own VllmConfig says so: tests/data/vllm_speculative_figures.json), off on V1 only in 0.33 (:1651-1666),
  never in 0.34 (:1610-1637); VllmConfig.max_concurrent_batches is then pp, else pp + 1 (V2) or 2 (V1, pp 1)."""

import json
from pathlib import Path

import pytest

from conftest import run_kvplan
from test_vllm_speculative import _served  # the reference cases' targets with their drafters
from kvplan.engines import get_engine
from kvplan.engines.vllm_profile import dummy_sampler, sampler_pass_bytes
from kvplan.engines.vllm_runner import model_runner
from kvplan.engines.vllm_speculative import speculative_config, with_drafter
from kvplan.engines.vllm_versions import behaviour
from kvplan.model.sources import resolve
from kvplan.plan.catalog import find_gpu

ROOT = Path(__file__).resolve().parents[1]
LLAMA = "meta-llama/Llama-3.1-8B-Instruct"  # vocab 128,256, hidden 4,096
QWEN14 = "Qwen/Qwen3-14B"  # vocab 151,936, hidden 5,120
MIXTRAL = "mistralai/Mixtral-8x7B-v0.1"  # Model Runner V1 through 0.28 (tests/test_vllm_runner.py)


def _drafting(model: str, method: str, version: str):
    return with_drafter(resolve(model), speculative_config(f'{{"method": "{method}", "num_speculative_tokens": 4}}'),
                        version)


def _terms(model: str, engine: str, gpu: str = "h100") -> tuple:
    result = run_kvplan("estimate", model, "--gpu", gpu, "--engine", engine, "--format", "json")
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)["plans"]
    return {t["name"]: t for t in row["budget"]["terms"]}, row["engine"]["available_kv_cache_bytes"]


@pytest.mark.parametrize("model", [LLAMA, MIXTRAL, "openai/gpt-oss-20b", "tiiuae/falcon-mamba-7b",
                                   "Qwen/Qwen3-Next-80B-A3B-Thinking", "deepseek-ai/DeepSeek-V3.2"])
@pytest.mark.parametrize("gpu", ["h100", "mi300x"])
def test_0_33_and_0_34_run_every_model_on_v2(model, gpu):
    for version in ("0.33.0", "0.34.0"):
        assert model_runner(resolve(model), behaviour(version), find_gpu(gpu)).name == "V2"


def test_suffix_decoding_leaves_v1_in_0_34():
    """0.33's _get_v2_model_runner_unsupported_features lists "suffix"; 0.34 has no V1 to fall back to."""
    gpu = find_gpu("h100")
    assert model_runner(_drafting(LLAMA, "suffix", "0.33.0"), behaviour("0.33.0"), gpu).name == "V1"
    assert model_runner(_drafting(LLAMA, "suffix", "0.34.0"), behaviour("0.34.0"), gpu).name == "V2"
    assert model_runner(_drafting(LLAMA, "ngram", "0.33.0"), behaviour("0.33.0"), gpu).name == "V2"


def test_batches_in_flight_are_vllm_0_32s_own(tmp_path):
    """vLLM 0.32.0's VllmConfig, built on the CPU for each case (benchmarks/vllm_reference/speculative_figures.py),
    turned async scheduling off for ngram and so ran one batch in flight; every other method kept two."""
    cases = json.loads((ROOT / "tests" / "data" / "vllm_speculative_figures.json").read_text())["cases"]
    engine, gpu = get_engine("vllm==0.32.0"), find_gpu("h100")
    seen = set()
    for case in cases:
        settings = engine.settings(case["inputs"]["max_model_len"], gpu, spec=_served(case, tmp_path))
        assert settings.in_flight_batches == case["settings"]["max_concurrent_batches"], case["inputs"]
        seen.add(case["settings"]["max_concurrent_batches"])
    assert seen == {1, 2}


@pytest.mark.parametrize("version, method, batches", [
    ("0.32.0", "suffix", 1),  # off whatever the runner (config/vllm.py:1597-1610)
    ("0.33.0", "ngram", 2),  # V2 keeps it: the check moved under `not self.use_v2_model_runner` (:1651-1666)
    ("0.33.0", "suffix", 1),  # suffix runs on V1 in 0.33, where it is still off
    ("0.33.0", "mtp", 2),
    ("0.34.0", "ngram", 2),  # 0.34 drops the condition (:1610-1637)
    ("0.34.0", "suffix", 2),
])
def test_async_scheduling_with_cpu_drafting(version, method, batches):
    model = "deepseek-ai/DeepSeek-V3" if method == "mtp" else LLAMA
    settings = get_engine(f"vllm=={version}").settings(8192, find_gpu("h100"), spec=_drafting(model, method, version))
    assert settings.in_flight_batches == batches


@pytest.mark.parametrize("version, gpu, kind", [
    ("0.32.0", "h100", "gumbel"),  # one Gumbel pass over the bf16 logits
    ("0.33.0", "h100", "v2-flashinfer"),
    ("0.34.0", "b200", "v2-flashinfer"),
    ("0.33.0", "t4", "v2-triton"),  # compute capability 7.5: FlashInferBackend's floor is 8.0
    ("0.33.0", "mi300x", "v2-triton"),  # not CUDA
])
def test_v2_sampler_pass_by_release_and_gpu(version, gpu, kind):
    engine = get_engine(f"vllm=={version}")
    assert engine.dummy_sampler(resolve(LLAMA), find_gpu(gpu)) == kind


@pytest.mark.parametrize("version, gpu, kind", [
    ("0.10.1", "t4", "flashinfer"),  # no capability check before 0.12 (topk_topp_sampler.py TopKTopPSampler)
    ("0.21.0", "t4", "flashinfer"),  # 0.21-0.23: FlashInferBackend supports 7.5-12.1 (flashinfer.py:407-410 in 0.23)
    ("0.23.0", "t4", "flashinfer"),
    ("0.24.0", "t4", "triton"),  # 0.24: floor 8.0 ("broken on SM75", flashinfer.py:426-434): the native Triton path
    ("0.28.0", "t4", "triton"),
    ("0.24.0", "a10g", "flashinfer"),  # 8.6
])
def test_v1_flashinfer_sampler_needs_the_backends_capability(version, gpu, kind):
    spec, rules = resolve(MIXTRAL), behaviour(version)
    runner = model_runner(spec, rules, find_gpu(gpu))
    assert runner.name == "V1" and dummy_sampler(runner, rules, find_gpu(gpu)) == kind


def test_v2_triton_pass_by_hand():
    """A T4 (40 SMs) at its 256 dummy requests: 256 x 128,256 x (2 + 4) bytes and 40 cached rows (64 programs'
    power of two, capped at the SMs) x 128,256 x 4; an MI300X (304 CUs) at 1,024: min(512, 304) = 304 rows."""
    spec = resolve(LLAMA)
    assert sampler_pass_bytes(spec, "v2-triton", 256, find_gpu("t4"))[0] == 256 * 128256 * 6 + 40 * 128256 * 4
    assert sampler_pass_bytes(spec, "v2-triton", 1024, find_gpu("mi300x"))[0] == 1024 * 128256 * 6 + 304 * 128256 * 4


@pytest.mark.parametrize("model, vocab, hidden", [(LLAMA, 128256, 4096), (QWEN14, 151936, 5120)])
def test_0_33_profile_peak_is_the_warmup_pass(model, vocab, hidden):
    """On an H100 (8,192 tokens, 1,024 requests): the warmup pass's 1,024 x vocab x (2 + 12) bytes on top of the
    forward's (8,192 + 1,024) x hidden x 2 hidden states outgrows the forward; 0.32's Gumbel pass (x 2 bytes) does
    not, and nothing else in the budget moves, so the KV cache loses exactly the difference."""
    new, available_new = _terms(model, "vllm==0.33.0")
    old, available_old = _terms(model, "vllm==0.32.0")
    peak = 1024 * vocab * 14 + (8192 + 1024) * hidden * 2
    assert new["profile_peak"]["bytes"] == peak
    assert "x 14 B (V2's warmup-parameter pass" in new["profile_peak"]["source"]
    assert old["profile_peak"]["source"].startswith("max(forward over 8192 tokens")
    assert old["profile_peak"]["bytes"] > 1024 * vocab * 2 + (8192 + 1024) * hidden * 2
    assert available_old - available_new == peak - old["profile_peak"]["bytes"]
    assert all(new[name]["bytes"] == old[name]["bytes"] for name in ("memory", "weights", "non_torch", "cuda_graphs"))


def test_llama_3_1_8b_forward_by_hand():
    """0.32's peak above: the forward, 8,192 x (2 x 4,096 + 6,144 q/k/v + 3 x 14,336 MLP) x 2 bytes."""
    old, _ = _terms(LLAMA, "vllm==0.32.0")
    assert old["profile_peak"]["bytes"] == 8192 * (2 * 4096 + 6144 + 3 * 14336) * 2 == 939_524_096


@pytest.mark.parametrize("kind", ["v2-flashinfer", "v2-triton"])
def test_verify_runs_the_warmup_pass(kind):
    """verify's own profile run (kvplan/gpu/measure.py) takes the kind dummy_sampler names; with the warmup
    parameters every token drawn is among its row's 50 largest logits (top_k 50), here on the CPU."""
    torch = pytest.importorskip("torch")
    from kvplan.gpu.measure import sampler_pass

    torch.manual_seed(0)
    logits = torch.randn(130, 1000).bfloat16()
    sampled = sampler_pass(logits, kind)
    fiftieth = logits.float().topk(50, dim=-1).values[:, -1:]
    assert sampled.shape == (130,) and bool((logits.float().gather(1, sampled[:, None]) >= fiftieth).all())
