"""DeepSeek-V2/V3 before vLLM cached the MLA latent (kvplan/engines/vllm_premla.py), read in the wheels:

    # ModelConfig.get_head_size, config.py 0.5.1:308-314 (0.6.3:451-457; 0.6.6:719-726 adds 'deepseek_v3')
    if ... model_type == 'deepseek_v2':
        # FlashAttention supports only head_size 32, 64, 128, 256, we need to pad head_size 192 to 256
        return 256
    # models/deepseek_v2.py 0.5.4:264-266: Attention(self.num_local_heads, 256, ..., num_kv_heads=self.num_local_heads)
    # config.py 0.7.0:733-743: return qk_rope_head_dim + qk_nope_head_dim (deepseek_v2.py 0.7.0:316-319 pads v to it)
    # config.py 0.7.1:972-978 / 0.7.2:987-996 use_mla: False for quantization not in ["fp8", "compressed-tensors"]
    # config.py 0.7.3:998-999 use_mla: is_deepseek_mla and not VLLM_MLA_DISABLE
    # worker/cache_engine.py 0.5.4:105-123: block = block_size x num_kv_heads x head_size, K and V, x layers x dtype

DeepSeek-V2-Lite (bundled): 27 layers, 16 query heads = 16 num_key_value_heads, kv_lora_rank 512, rope 64, nope 128.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from conftest import run_kvplan

import kvplan
from kvplan.engines import get_engine
from kvplan.engines.vllm_premla import caches_per_head, per_head_view, with_latents
from kvplan.engines.vllm_speculative import served
from kvplan.engines.vllm_v0_chunked import mla_prompt_limit
from kvplan.model.bundled import find_bundled, load_bundled
from kvplan.model.kinds import FullAttention, MLALatent
from kvplan.model.precision import resolve_kv_dtype
from kvplan.plan.work import kv_read_bytes

LITE = "deepseek-ai/DeepSeek-V2-Lite"
V3 = "deepseek-ai/DeepSeek-V3"
BF16 = resolve_kv_dtype("bf16", "bf16")
LATENT = 27 * (512 + 64) * 2  # 31,104 B a token: the MLA latent, every rank
PADDED = 27 * 2 * 16 * 256 * 2  # 442,368 B: K and V of 16 heads at 256, 2 B each, 27 layers
QK = 27 * 2 * 16 * (128 + 64) * 2  # 331,776 B: 0.7.0's head size 192


def bundled(model=LITE):
    return load_bundled(find_bundled(model))[1]


def one(version, **kwargs):
    (plan,) = kvplan.estimate(LITE, gpu=kwargs.pop("gpu", "H100"), engine=f"vllm=={version}", **kwargs)
    return plan


@pytest.mark.parametrize("version, per_token", [("0.5.1", PADDED), ("0.5.4", PADDED), ("0.6.3", PADDED),
                                                ("0.6.6", PADDED), ("0.7.0", QK), ("0.7.1", LATENT),
                                                ("0.7.3", LATENT), ("0.8.0", LATENT)])
def test_bytes_per_token_by_release(version, per_token):
    assert one(version, max_model_len=32768).kv_bytes_per_token_per_gpu == per_token


def test_brief_example_before_and_after():
    """`kvplan estimate deepseek-ai/DeepSeek-V2-Lite --gpu H100 --engine vllm==0.6.3 -c 32768`: 432 KiB a token
    (14.2x the latent's 30.4 KiB), a request of 32,768 tokens 13.5 GiB, and the blocks V0 logs follow it."""
    plan = one("0.6.3", max_model_len=32768)
    assert plan.kv_bytes_per_sequence_per_gpu == 32768 * PADDED  # 2,048 blocks of 16, no partial block
    # V0's CPU blocks: swap 4 GiB / (16 tokens x 442,368 B) = 4,294,967,296 / 7,077,888 = 606.8 -> 606
    assert plan.engine.log_lines[0].endswith("# CPU blocks: 606")
    assert plan.engine.gpu_kv_cache_tokens == plan.engine.num_gpu_blocks * 16
    run = run_kvplan("estimate", LITE, "--gpu", "H100", "--engine", "vllm==0.6.3", "-c", "32768")
    assert run.returncode == 0 and "MLA cached per head: vLLM 0.6.3" in " ".join(run.stdout.split())


def test_tp_splits_the_heads():
    """A16's shape: tp 2 leaves 16 / 2 = 8 heads a rank: 27 x 2 x 8 x 256 x 2 = 221,184 B; V0's swap then holds
    4 GiB / (16 x 221,184 B = 3,538,944) = 1,213.6 -> 1,213 CPU blocks."""
    plan = one("0.5.1", gpu="L40", tensor_parallel_size=2, dtype="float16")
    assert plan.kv_bytes_per_token_per_gpu == 221_184
    assert "# CPU blocks: 1213" in plan.engine.log_lines[0]
    assert plan.tp_valid


def test_a16_held_out():
    """A16 (vllm#6156, 0.5.1 by date, 2x L40, tp 2, fp16, max len 163,840) logs 63,040 tokens; kvplan plans
    per-head K/V and refuses the length as vLLM did. Held out (no constant fitted on it): within 25%, too low; the
    latent (MLA) plan said 403,280 tokens, 6.4x the log."""
    plan = one("0.5.1", gpu="L40", tensor_parallel_size=2, dtype="float16")
    assert plan.engine.refusal is not None and "max seq len (163840)" in plan.engine.refusal.reason
    tokens = plan.engine.num_gpu_blocks * 16
    assert 0.75 * 63040 < tokens < 63040


def test_decode_reads_the_per_head_cache():
    """The speed model's KV read: 1,000 tokens x 442,368 B under 0.6.3's view, x 31,104 B under 0.8.0's."""
    spec = bundled()
    precision = resolve_kv_dtype("auto", spec.dtype)
    old = served(spec, get_engine("vllm==0.6.3"))
    new = served(spec, get_engine("vllm==0.8.0"))
    assert kv_read_bytes(old, 1, precision, 1000) == 1000 * PADDED
    assert kv_read_bytes(new, 1, precision, 1000) == 1000 * LATENT


def test_layer_answers_its_per_head_form():
    layer = MLALatent(512, 64, qk_nope_head_dim=128)
    assert layer.qk_head_dim == 192
    assert layer.per_head(16) == FullAttention(16, 192)
    assert layer.per_head(16, 256).bytes_per_token(2, BF16) == 2 * 8 * 256 * 2


def test_v3_at_0_6_6():
    """DeepSeek-V3 (61 layers, 128 heads) on 0.6.6 at tp 8: 61 x 2 x 16 x 256 x 2 = 999,424 B a token a rank."""
    spec = per_head_view(bundled(V3), "0.6.6")
    assert all(isinstance(layer, FullAttention) for layer in spec.layers)
    assert sum(layer.bytes_per_token(8, BF16) for layer in spec.layers) == 999_424


@pytest.mark.parametrize("quantization, version, per_head", [
    ("awq", "0.7.1", True), ("gptq", "0.7.2", True), ("awq", "0.7.3", False), ("fp8", "0.7.1", False),
    ("compressed-tensors", "0.7.2", False), ("", "0.7.1", False), ("awq", "0.7.0", True), ("awq", "0.8.0", False)])
def test_quantization_turns_mla_off_in_0_7_1_and_0_7_2(quantization, version, per_head):
    spec = replace(bundled(), quantization=quantization)
    assert caches_per_head(spec, version) is per_head
    viewed = per_head_view(spec, version)
    assert isinstance(viewed.layers[0], FullAttention) is per_head
    if per_head and version != "0.7.0":
        assert viewed.layers[0].head_dim == 192
        assert any("use_mla is off for" in note for note in viewed.notes)
        # chunked prefill stays on where use_mla is off: no 0.7.1-0.7.3 prompt limit (vllm_v0_chunked)
        assert mla_prompt_limit(viewed, version, 163840, 2048) is None


def test_view_is_undone_for_another_release():
    old = per_head_view(bundled(), "0.6.3")
    again = per_head_view(old, "0.8.0")
    assert again == bundled() and with_latents(old) == bundled()
    assert not any(note.startswith("MLA cached per head") for note in again.notes)


def test_other_mla_model_types_are_left_alone():
    """get_head_size pads only 'deepseek_v2' / 'deepseek_v3' configs (config.py 0.6.6:719-726); MiniCPM3, per head in
    every release, is tests/test_minicpm3_s75.py's."""
    spec = replace(bundled(), model_type="kimi_k2")
    assert per_head_view(spec, "0.6.3") is spec
