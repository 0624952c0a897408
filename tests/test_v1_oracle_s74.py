"""Session 74: EngineArgs._is_v1_supported_oracle (engine/arg_utils.py), read in the wheels 0.8.0-0.8.5, 0.9.0, 0.9.1,
0.9.2, 0.10.0, 0.10.1.1 and 0.10.2, asked once (engines/vllm_v1_oracle.py v0_fallback) for every rule: with
VLLM_USE_V1 unset a release falls back to V0 for
- --kv-cache-dtype other than auto: always on 0.8.0-0.8.1 (0.8.0:1480-1483); 0.8.2-0.9.2 unless fp8 where
  FlashAttention 3 takes it (0.8.5:1359-1374; fa_utils.py 0.8.5:51-54: FA 3 and capability major 9, so an H100 yes,
  an A100 no); 0.10.0-0.10.1 also any value on capability 10.0 (cuda.py 0.10.0:459-470, B200); 0.10.2 also any value
  for an MLA model (cuda.py 0.10.2:522-541);
- compute capability below 8.0 (0.8.5:1353, 0.10.1.1:1402; not in 0.10.2's oracle): a T4 (7.5);
- --dtype float32 to 0.9.1 (0.9.1:1341-1346), --cpu-offload-gb to 0.8.2 (0.8.2:1584-1588), ROCm to 0.9.1
  (0.9.1:1444 v0_hardware; 0.9.2:1492 default_v1, True on ROCm);
- a pooling model to 0.9.1 (0.9.1:1348-1352 `task not in ["generate"]`), whose V0 scheduler runs the placeholder
  block manager (core/scheduler.py 0.8.5:442-445): kvplan refuses it, exit 2, one line.
V0 is gone in 0.11 (no oracle), so 0.11.0 plans V1 whatever.

Hand figures: Llama-3.1-8B, 32 layers x 8 KV heads x 128: one fp8 block of 16 tokens = 32 x 2 x 8 x 128 x 16 x 1 B
= 1,048,576 B; V0 logs "# cuda blocks: N" with N = available // block bytes (worker/worker.py
determine_num_available_blocks) and "Maximum concurrency" N x 16 / max_model_len (executor_base.py 0.8.5:114-120).
"""

from __future__ import annotations

import json

import pytest
from conftest import one_error_line, run_kvplan

import kvplan
from kvplan.engines.vllm_sparse import ROCM
from kvplan.engines.vllm_v1_oracle import first_v1_release, reason_key, v0_fallback
from kvplan.model.quantization import with_dtype
from kvplan.model.sources import resolve

LLAMA_8B = "meta-llama/Llama-3.1-8B-Instruct"
DEEPSEEK_V3 = "deepseek-ai/DeepSeek-V3"
A100, H100, B200, T4 = (8, 0), (9, 0), (10, 0), (7, 5)
FP8_BLOCK = 32 * 2 * 8 * 128 * 16  # bytes of one fp8 block of Llama-3.1-8B (docstring)


def spec(name=LLAMA_8B):
    return resolve(name)


def why(version, **asked):
    return reason_key(v0_fallback(spec(asked.pop("model", LLAMA_8B)), version, **asked))


@pytest.mark.parametrize("version, capability, engine", [
    ("0.8.0", A100, "kv_dtype"), ("0.8.0", H100, "kv_dtype"),  # 0.8.0:1480: no fp8 cache on V1 at all
    ("0.8.1", H100, "kv_dtype"),
    ("0.8.2", H100, None), ("0.8.2", A100, "kv_dtype"),  # 0.8.2:1561-1574: FA 3's fp8, Hopper only
    ("0.8.5", H100, None), ("0.8.5", A100, "kv_dtype"),
    ("0.9.2", B200, "kv_dtype"), ("0.10.0", B200, None),  # cuda.py 0.10.0:465: is_device_capability(100)
    ("0.10.1", A100, "kv_dtype"), ("0.10.2", A100, "kv_dtype"), ("0.10.2", H100, None),
    ("0.11.0", A100, None),  # V0 removed: no oracle
])
def test_fp8_cache_by_release_and_gpu(version, capability, engine):
    assert why(version, kv_dtype="fp8", capability=capability) == engine
    assert why(version, kv_dtype="auto", capability=capability) is None  # the flag left auto: V1


def test_an_mla_model_takes_fp8_on_v1_everywhere_from_0_10_2():
    """cuda.py 0.10.2:528-539: MLA's default backend (FlashMLA; CUTLASS MLA on 10.0) takes any cache dtype."""
    assert why("0.10.1", model=DEEPSEEK_V3, kv_dtype="fp8", capability=A100) == "kv_dtype"
    assert why("0.10.2", model=DEEPSEEK_V3, kv_dtype="fp8", capability=A100) is None


@pytest.mark.parametrize("version, engine", [("0.8.0", "capability"), ("0.8.5", "capability"),
                                             ("0.10.1", "capability"), ("0.10.2", None)])
def test_a_t4_below_capability_8(version, engine):
    assert why(version, capability=T4) == engine


def test_rocm_dtype_and_offload():
    assert why("0.9.1", capability=ROCM) == "platform" and why("0.9.2", capability=ROCM) is None
    assert why("0.9.2", capability=ROCM, kv_dtype="fp8") is None  # 0.9.0:1264-1265: ROCm takes any cache dtype
    fp32 = with_dtype(spec(), "float32")
    assert reason_key(v0_fallback(fp32, "0.9.1")) == "dtype" and v0_fallback(fp32, "0.9.2") is None

    class Offload:
        cpu_offload_gb = 4

    assert why("0.8.2", flags=Offload()) == "cpu_offload_gb" and why("0.8.3", flags=Offload()) is None


def test_the_pipeline_and_the_state_are_conditions_of_the_same_oracle():
    assert why("0.9.0", pp=2) == "pp" and why("0.9.1", pp=2) is None
    assert why("0.9.1", model="nvidia/Nemotron-H-8B-Base-8K") == "state"
    assert first_v1_release(spec(), "0.9.2", kv_dtype="fp8", capability=A100) == "0.11.0"
    assert first_v1_release(spec(), "0.8.0", kv_dtype="fp8", capability=H100) == "0.8.2"


def test_fp8_on_an_a100_is_planned_by_v0():
    """0.8.5, A100, fp8: V0's lines, blocks and 256 sequences (arg_utils.py 0.8.5 _set_default_args_v0); on an H100
    the same release runs V1 ("GPU KV cache size")."""
    (v0,) = kvplan.estimate(LLAMA_8B, gpu="A100-80GB", kv_cache_dtype="fp8", engine="vllm==0.8.5", max_model_len=8192)
    e = v0.engine
    assert e.num_gpu_blocks == e.available_kv_cache_bytes // FP8_BLOCK
    assert e.log_lines == (f"# cuda blocks: {e.num_gpu_blocks}, # CPU blocks: 4096",
                           f"Maximum concurrency for 8192 tokens per request: {e.num_gpu_blocks * 16 / 8192:.2f}x")
    assert e.max_num_seqs == 256 and e.max_num_batched_tokens == 8192  # V0: max(max_model_len, 2048)
    (v1,) = kvplan.estimate(LLAMA_8B, gpu="H100", kv_cache_dtype="fp8", engine="vllm==0.8.5", max_model_len=8192)
    assert v1.engine.log_lines[0].startswith("Available KV cache memory") and not v1.engine.v0_reason
    (auto,) = kvplan.estimate(LLAMA_8B, gpu="A100-80GB", engine="vllm==0.8.5", max_model_len=8192)
    assert auto.engine.log_lines[0].startswith("Available KV cache memory")  # the same GPU, auto: V1


def test_a_t4_on_0_8_5_is_planned_by_v0():
    (plan,) = kvplan.estimate("meta-llama/Llama-3.2-1B-Instruct", gpu="T4", engine="vllm==0.8.5", max_model_len=4096)
    assert plan.engine.log_lines[0].startswith("# cuda blocks: ") and "capability 7.5" in plan.engine.v0_reason
    (v1,) = kvplan.estimate("meta-llama/Llama-3.2-1B-Instruct", gpu="T4", engine="vllm==0.10.2", max_model_len=4096)
    assert v1.engine.log_lines[0].startswith("Available KV cache memory")


def test_the_table_says_which_engine_and_budgets_each():
    run = run_kvplan("estimate", LLAMA_8B, "--gpu", "a100-80gb", "-c", "8192", "--kv-cache-dtype", "auto,fp8",
                     "--engine", "vllm==0.8.5")
    assert run.returncode == 0, run.stderr
    out = " ".join(run.stdout.split())
    assert "KV budget (tp 1, bf16, vllm 0.8.5)" in out and "KV budget (tp 1, fp8_e4m3, vllm 0.8.5)" in out
    assert "Engine: vLLM 0.8.5 serves fp8_e4m3 on its V0 engine, not V1, for --kv-cache-dtype fp8" in out


def test_data_parallel_where_fp8_falls_back_never_starts():
    (plan,) = kvplan.estimate(LLAMA_8B, gpu="A100-80GB", kv_cache_dtype="fp8", engine="vllm==0.9.2",
                              max_model_len=8192, data_parallel_size=2)
    refusal = plan.engine.refusal
    assert "V0 engine for --kv-cache-dtype fp8" in refusal.reason and refusal.options == ("vllm==0.11.0",)


@pytest.fixture()
def embedder(tmp_path):
    from tests.hub_configs import QWEN2_5_7B

    (tmp_path / "config.json").write_text(json.dumps(dict(QWEN2_5_7B, architectures=["Qwen2Model"])))
    return str(tmp_path)


@pytest.mark.parametrize("command", ["estimate", "check"])
def test_a_pooling_model_on_0_8_5_is_not_modelled(embedder, command):
    args = ("-tp", "1") if command == "check" else ()
    run = run_kvplan(command, embedder, *args, "--gpu", "h100", "-c", "8192", "--engine", "vllm==0.8.5")
    assert run.returncode == 2 and "Traceback" not in run.stderr
    line = one_error_line(run)
    assert "on its V0 engine" in line and "kvplan does not model V0's pooling runner" in line
    assert "--engine vllm==0.9.2 or newer" in line
    assert run_kvplan("estimate", embedder, "--gpu", "h100", "-c", "8192", "--engine", "vllm==0.9.2").returncode == 0
