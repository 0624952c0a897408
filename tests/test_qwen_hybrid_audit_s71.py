"""Session 71's audit of the gated-DeltaNet hybrids (Qwen3-Next, Qwen3.5) against vLLM's code, release by release.

Sources, read by hand in each release's wheel (paths under vllm/):
- the hybrid block: platforms/interface.py update_block_size_for_backend (0.32.0:1062-1105, 0.33.0:1066-1140): the
  smallest multiple of the kernel block alignment (16 for FLASH_ATTN on Hopper) whose attention page holds a state
  page, from 0.33 in "align" mode the alignment lcm'ed with get_mamba_prefill_checkpoint_alignment (:1089-1094),
  FLASHINFER_GDN_CHECKPOINT_ALIGNMENT = 64 (v1/attention/backends/gdn_attn.py 0.33.0:34, 0.34.0:35) where the GDN
  prefill runs on FlashInfer (qwen_gdn_linear_attn.py 0.33.0:249-250: compute capability 9.0; :689-702).
- the checkpoint buffer (the one defect found): qwen_gdn_linear_attn.py _warmup_prefill_kernels sizes the workspace
  in the profile run (attn_metadata None, 0.33.0:1522-1524 -> :1336-1338; 0.34.0:1545-1547) at
  _checkpoint_buffer_spec (0.33.0:762-776): float32 (cdiv(max_num_batched_tokens, grid), num_v_heads / tp,
  head_v_dim, head_k_dim), grid = mamba_block_size = the attention block in "align" mode (layers/mamba/abstract.py
  0.33.0:116-129, platforms/interface.py :1114-1115); one process-wide buffer grown to the largest request and kept
  (v1/worker/workspace.py 0.33.0:181-207), which the fused-MoE kernels share. Before the fix kvplan priced none.

Hand arithmetic (bundled configs):
- Qwen3-Next-80B at TP 2: conv 3 x (2 x 16 x 128 + 32 x 128) / 2 = 12,288 bf16 = 24,576 B; recurrent 16 x 128 x 128
  bf16 = 524,288 B; a state page 548,864 B, 36 layers 19,759,104 B. Attention a token and layer: 1 KV head x 256 x
  2 x 2 B = 1,024 B. Block: 548,864 / 1,024 = 536 -> 544 (16s), padded (557,056 - 548,864) / 548,864 = 1.49%; from
  0.33 a multiple of 64: 576, padded 7.46%.
- Qwen3.5-27B at TP 1 (48 GDN layers of 16 key / 48 value heads of 128; 16 attention layers of 4 KV heads x 256;
  mamba_ssm_dtype float32, which vLLM keeps from 0.17): conv 3 x 10,240 x 2 B = 61,440; recurrent 48 x 128 x 128 x
  4 B = 3,145,728; page 3,207,168 B = exactly 783 tokens of 4,096 B -> 784 (16s), 832 (64s, 0.33 on). Checkpoint
  buffer, 8,192 batched tokens on a grid of 832: cdiv = 10 states of 48 x 128 x 128 x 4 B = 3,145,728 B:
  31,457,280 B; at TP 2, 24 heads a rank, grid 832 again (1,603,584 B / 2,048 B a token = 783): 15,728,640 B.
"""

from __future__ import annotations

import pytest

from tests.conftest import ROOT, estimate_plan, load_yaml

from kvplan.engines.vllm_gdn_workspace import gdn_checkpoint_workspace
from kvplan.engines.vllm_specs import CacheSpec
from kvplan.model import parse_config

NEXT = "Qwen/Qwen3-Next-80B-A3B-Thinking"
Q27 = "Qwen/Qwen3.5-27B"
CONTEXT = ("--gpu", "H200", "-c", "32768")
Q27_CHECKPOINTS_TP1 = 10 * 48 * 128 * 128 * 4
Q27_CHECKPOINTS_TP2 = 10 * 24 * 128 * 128 * 4


def _plan(model: str, version: str, *args) -> dict:
    return estimate_plan(model, *CONTEXT, "--engine", f"vllm=={version}", *args)


def _peak(plan: dict) -> dict:
    return next(term for term in plan["budget"]["terms"] if term["name"] == "profile_peak")


def test_hand_arithmetic():
    assert 3 * (2 * 16 * 128 + 32 * 128) // 2 * 2 + 16 * 128 * 128 * 2 == 548864
    assert 36 * 548864 == 19759104 and -(-548864 // 1024) == 536
    assert 3 * (2 * 16 * 128 + 48 * 128) * 2 + 48 * 128 * 128 * 4 == 3207168 == 783 * 4096
    assert (Q27_CHECKPOINTS_TP1, Q27_CHECKPOINTS_TP2) == (31457280, 15728640)


@pytest.mark.parametrize("version, block, padding", [
    ("0.10.2", 544, "1.49%"), ("0.20.0", 544, "1.49%"), ("0.32.0", 544, "1.49%"),
    ("0.33.0", 576, "7.46%"), ("0.34.0", 576, "7.46%"),
])
def test_qwen3_next_tp2_block_and_state(version, block, padding):
    plan = _plan(NEXT, version, "-tp", "2")
    assert plan["block_size"] == block
    assert plan["state_bytes_per_sequence_per_gpu"] == 19759104
    assert plan["kv_bytes_per_token_per_gpu"] == 12 * 1024
    assert plan["engine"]["num_kv_cache_groups"] == 4  # 12 attention layers, 36 GDN in three groups of 12
    assert any(f"Padding mamba page size by {padding}" in line for line in plan["engine"]["log_lines"])


@pytest.mark.parametrize("version, block", [("0.27.0", 1072), ("0.33.0", 1088)])
def test_qwen3_next_tp4_fp8_float32_states(version, block):
    """TP 4: conv 3 x 2,048 and recurrent 8 x 128 x 128, both float32 (--mamba-cache-dtype; the SSM 'auto' follows):
    24,576 + 524,288 = 548,864 B; fp8 attention 1 x 256 x 2 x 1 B = 512 B a token: exactly 1,072 tokens, 1,088
    where 0.33 aligns to 64."""
    plan = _plan(NEXT, version, "-tp", "4", "--kv-cache-dtype", "fp8", "--mamba-cache-dtype", "float32")
    assert plan["block_size"] == block
    assert plan["state_bytes_per_sequence_per_gpu"] == 36 * 548864


@pytest.mark.parametrize("version, block, state", [
    ("0.17.0", 784, 48 * 3207168), ("0.32.0", 784, 48 * 3207168), ("0.33.0", 832, 48 * 3207168),
])
def test_qwen35_27b_block_and_float32_state(version, block, state):
    plan = _plan(Q27, version)
    assert (plan["block_size"], plan["state_bytes_per_sequence_per_gpu"]) == (block, state)


def _spec_27b():
    return parse_config(load_yaml((ROOT / "model_specs" / "Qwen--Qwen3.5-27B.yaml").read_text())["config"], "q27")


def _mamba_group(block: int, checkpoint: int) -> CacheSpec:
    return CacheSpec("mamba", block, 1, checkpoint_blocks=checkpoint)


def test_checkpoint_buffer_by_hand():
    spec = _spec_27b()
    assert gdn_checkpoint_workspace(spec, 1, 8192, (_mamba_group(832, 1),)) == Q27_CHECKPOINTS_TP1
    assert gdn_checkpoint_workspace(spec, 2, 8192, (_mamba_group(832, 1),)) == Q27_CHECKPOINTS_TP2
    # 8,320 tokens still 10 states; 8,321 eleven
    assert gdn_checkpoint_workspace(spec, 1, 8320, (_mamba_group(832, 1),)) == Q27_CHECKPOINTS_TP1
    assert gdn_checkpoint_workspace(spec, 1, 8321, (_mamba_group(832, 1),)) == 11 * 48 * 128 * 128 * 4
    assert gdn_checkpoint_workspace(spec, 1, 8192, (_mamba_group(832, 0),)) == 0  # no checkpoints exported


@pytest.mark.parametrize("version", ["0.33.0", "0.34.0"])
def test_checkpoint_buffer_in_the_profile_peak(version):
    """With prefix caching on (vLLM's default for hybrids from 0.28) the peak holds the buffer; off ("none" mode)
    it does not, the rest of the profile being the same."""
    on, off = _plan(Q27, version), _plan(Q27, version, "--no-enable-prefix-caching")
    assert _peak(on)["bytes"] - _peak(off)["bytes"] == Q27_CHECKPOINTS_TP1
    assert "prefill-checkpoint workspace" in _peak(on)["source"]
    on2, off2 = _plan(Q27, version, "-tp", "2"), _plan(Q27, version, "-tp", "2", "--no-enable-prefix-caching")
    assert _peak(on2)["bytes"] - _peak(off2)["bytes"] == Q27_CHECKPOINTS_TP2


def test_no_buffer_before_033_off_flashinfer_or_under_a_larger_moe_workspace():
    assert "prefill-checkpoint" not in _peak(_plan(Q27, "0.32.0"))["source"]  # no checkpoints in 0.32
    # A100: the GDN prefill runs on Triton (qwen_gdn_linear_attn.py 0.33.0:249-266), no checkpoint alignment
    a100 = estimate_plan(Q27, "--gpu", "A100-80GB", "-c", "32768", "--engine", "vllm==0.33.0")
    assert "prefill-checkpoint" not in _peak(a100)["source"]
    # Qwen3-Next's fused-MoE workspace (0.77 GiB) already exceeds its 15 x 16 x 128 x 128 x 4 B of checkpoints
    assert "prefill-checkpoint" not in _peak(_plan(NEXT, "0.33.0", "-tp", "2"))["source"]
