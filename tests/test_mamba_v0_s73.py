"""V0's Mamba state cache, planned (kvplan/engines/vllm_mamba_v0.py): vLLM 0.8-0.10.1 fall back to V0 for models with
Mamba state (runs_v0), and every release up to 0.7 is V0. Figures by hand from the vLLM sources:
- slots: MambaCacheManager takes max_num_seqs, padded to a CUDA graph size unless --enforce-eager (mamba_cache.py
  0.9.2:31-33, 0.7.3:31-33); 0.6.5-0.7.2 the class pads it, or takes 8192 + 2 eager (jamba.py 0.6.6:424-435);
  0.5.x-0.6.4 _get_graph_batch_size whatever eager (jamba.py 0.5.5:832-834, worker/model_runner.py 0.5.5:1632-1644).
- a slot: (num_mamba_layers, slot) + conv (mamba_expand x hidden / tp, d_conv - 1) and temporal (mamba_expand x
  hidden / tp, d_state) in lm_head.weight.dtype (jamba.py 0.9.2:427-431, :446-458).
- the KV block: attention layers only (worker/cache_engine.py 0.9.2:121-143); V0's max_num_seqs 256
  (arg_utils.py 0.9.2:1567-1569, 0.6.6:211-213).
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from kvplan import api
from kvplan.engines.vllm_mamba_v0 import v0_slots, v0_state_refusal, v0_state_unmodelled
from kvplan.errors import RefusedInput

from conftest import run_kvplan

JAMBA = "ai21labs/AI21-Jamba-1.5-Mini"
FALCON_MAMBA = "tiiuae/falcon-mamba-7b"
NEMOTRON_H = "nvidia/Nemotron-H-8B-Base-8K"

# Jamba-1.5-Mini at tp 2: 28 Mamba layers (attn_layer_period 8, offset 4: 4 attention layers of 32), each slot
# conv (2 x 4,096 / 2 = 4,096 channels, 4 - 1 = 3 inputs) + temporal (4,096 x 16) in bf16
JAMBA_TP2_SLOT = 28 * (4096 * 3 + 4096 * 16) * 2
# its V0 block: 4 attention layers x 16 tokens x K and V x 4 KV heads (8 / 2) x 128 x 2 B
JAMBA_TP2_BLOCK = 4 * 16 * 2 * 4 * 128 * 2
# falcon-mamba-7b at tp 1: 64 Mamba layers, intermediate_size 8,192, d_conv 4, d_state 16, bf16
FALCON_SLOT = 64 * (8192 * 3 + 8192 * 16) * 2


def _plan(model: str, version: str, tp: int = 1, **kwargs):
    (plan,) = api.estimate(model, gpu="h100", max_model_len=8192, engine=f"vllm=={version}",
                           tensor_parallel_size=tp, **kwargs)
    return plan


def _term(plan, name: str):
    return next((t for t in plan.budget.terms if t.name == name), None)


@pytest.mark.parametrize("seqs,eager,version,slots", [
    (256, False, "0.9.2", 256), (100, False, "0.9.2", 104), (100, True, "0.9.2", 100), (3, False, "0.10.1", 4),
    (100, True, "0.7.3", 100),
    (100, False, "0.6.6", 104), (100, True, "0.6.6", 8194), (100, True, "0.7.2", 8194),
    (100, True, "0.6.4", 104), (2, True, "0.5.5", 2), (9, False, "0.6.0", 16)])
def test_slots_by_release(seqs, eager, version, slots):
    assert v0_slots(seqs, eager, version) == slots


def test_jamba_0_9_2_state_cache_blocks_and_concurrency_by_hand():
    assert JAMBA_TP2_SLOT == 4_358_144 and JAMBA_TP2_BLOCK == 131_072
    plan = _plan(JAMBA, "0.9.2", 2)
    assert _term(plan, "mamba_cache").bytes == 256 * 4_358_144 == 1_115_684_864
    e = plan.engine
    assert e.starts and e.num_gpu_blocks == plan.budget.kv_budget_bytes_per_gpu // 131_072
    assert e.gpu_kv_cache_tokens == e.num_gpu_blocks * 16  # no hybrid raise of the block in V0
    assert not any("attention block size" in line for line in e.log_lines)
    assert e.log_lines[0].startswith(f"# cuda blocks: {e.num_gpu_blocks}, ")  # 0.7.3+: device_name
    assert e.max_num_seqs == 256  # V0's default, not V1's 1,024 on an H100
    # memory holds 8,192-token requests in 142,462 blocks x 16 / 8,192 = 278; the 256 sequences bind
    assert plan.max_concurrency == 256 and plan.max_concurrency_limited_by == "max_num_seqs"


def test_fewer_sequences_leave_the_state_slots_to_the_kv_cache():
    # max_num_seqs 8 -> 8 slots: 248 slots x 4,358,144 B more for the KV cache; nothing else moves with it in V0
    wide, narrow = _plan(JAMBA, "0.9.2", 2), _plan(JAMBA, "0.9.2", 2, max_num_seqs=8)
    gained = narrow.budget.kv_budget_bytes_per_gpu - wide.budget.kv_budget_bytes_per_gpu
    assert gained == (256 - 8) * 4_358_144
    assert narrow.max_concurrency == 8


def test_more_sequences_than_memory_holds_is_memory_bound():
    plan = _plan(JAMBA, "0.9.2", 2, max_num_seqs=300)  # 304 slots, padded to a graph size
    assert _term(plan, "mamba_cache").bytes == 304 * 4_358_144
    blocks = plan.engine.num_gpu_blocks
    # V0 admits into the pool less its 1% watermark (vllm_v0_admission.py), no null block: 140,866 blocks keep
    # 1,408 free, (140,866 - 1,408) // 512 = 272
    assert blocks == 140866
    assert plan.max_concurrency_limited_by == "memory" and plan.max_concurrency == (140866 - 1408) // 512 == 272


def test_jamba_0_6_6_state_in_the_budget_and_attention_blocks_only():
    plan = _plan(JAMBA, "0.6.6", 2)
    assert _term(plan, "mamba_cache").bytes == 256 * 4_358_144
    assert plan.engine.num_gpu_blocks == plan.budget.kv_budget_bytes_per_gpu // 131_072
    eager = _plan(JAMBA, "0.6.6", 2, enforce_eager=True)  # the class takes 8,192 + 2 slots eager
    assert _term(eager, "mamba_cache").bytes == 8194 * 4_358_144


def test_attention_free_mamba_has_no_blocks_and_runs_max_num_seqs():
    assert FALCON_SLOT == 19_922_944
    plan = _plan(FALCON_MAMBA, "0.9.2")
    assert _term(plan, "mamba_cache").bytes == 256 * 19_922_944
    e = plan.engine
    assert e.starts and e.num_gpu_blocks == 0 and e.log_lines[0] == "# cuda blocks: 0, # CPU blocks: 0"
    assert plan.max_concurrency == 256 and plan.max_concurrency_limited_by == "max_num_seqs"


def test_v1_from_0_10_2_unchanged():
    # Nemotron-H-8B tp 1 at 8K on V1: block 528, 905 blocks (as in s72)
    plan = _plan(NEMOTRON_H, "0.10.2")
    assert plan.engine.gpu_kv_cache_tokens == 905 * 528 and _term(plan, "mamba_cache") is None


def test_nemotron_h_0_10_1_plans_on_v0():
    plan = _plan(NEMOTRON_H, "0.10.1")
    assert plan.engine.starts and _term(plan, "mamba_cache").bytes > 0
    assert plan.engine.gpu_kv_cache_tokens == plan.engine.num_gpu_blocks * 16


def test_unmodelled_state_still_refused_in_one_line():
    spec = SimpleNamespace(architecture="MiniMaxText01ForCausalLM", architectures=("MiniMaxText01ForCausalLM",),
                           linear_layers=(0,))
    refusal = v0_state_refusal(spec, "0.9.2")
    assert refusal is not None and "MinimaxCacheManager" in refusal.reason and refusal.options == ("vllm==0.10.2",)
    jamba = SimpleNamespace(architecture="JambaForCausalLM", architectures=("JambaForCausalLM",), linear_layers=(0,))
    assert v0_state_refusal(jamba, "0.9.2") is None


def test_command_line_plans_0_10_1():
    result = run_kvplan("estimate", JAMBA, "--gpu", "H100", "--tp", "2", "-c", "8192", "--engine", "vllm==0.10.1")
    assert result.returncode == 0 and "# cuda blocks:" in result.stdout


def test_unmodelled_release_asked_for_raises_naming_the_piece():
    spec = SimpleNamespace(architecture="Plamo2ForCausalLM", architectures=("Plamo2ForCausalLM",),
                           linear_layers=(0,))
    with pytest.raises(RefusedInput) as raised:
        v0_state_unmodelled(spec, "0.9.2")
    assert raised.value.field == "engine" and "Plamo2's own layer pattern" in raised.value.text
    assert "--engine vllm==0.10.2 or newer" in raised.value.text


@pytest.mark.parametrize("version, gpu, word", [
    ("0.6.4", "H100", "GPU"),   # distributed_gpu_executor.py 0.6.5:57 "# GPU blocks: %d"; A01/A02's logs (0.6.4) say so
    ("0.6.0", "MI300X", "GPU"),  # A06 (ROCm, 0.6.0): "# GPU blocks: 78897"
    ("0.7.0", "H100", "CUDA"),  # executor_base.py 0.7.0:108 current_platform.dispatch_key, platforms/cuda.py :79
    ("0.7.2", "MI300X", "CUDA"),  # platforms/rocm.py 0.7.0:66 dispatch_key "CUDA" on ROCm too
    ("0.7.3", "H100", "cuda"),  # executor_base.py 0.7.3:111 current_platform.device_name
    ("0.7.3", "MI300X", "rocm"),  # platforms/rocm.py 0.7.0:64 device_name "rocm"
])
def test_v0_names_its_block_count_after_the_platform(version, gpu, word):
    from kvplan.engines.vllm import v0_blocks_word
    from kvplan.plan.catalog import device_name, find_gpu

    assert v0_blocks_word(version, device_name(find_gpu(gpu))) == word


def test_a_dense_v0_plan_logs_the_release_word():
    lines = run_kvplan("estimate", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "H100", "-c", "8192",
                       "--engine", "vllm==0.7.2").stdout
    assert "# CUDA blocks: " in lines and "# GPU blocks" not in lines
