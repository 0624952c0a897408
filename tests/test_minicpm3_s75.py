"""MiniCPM3 (openbmb/MiniCPM3-4B, MiniCPM3ForCausalLM): MLA projections, but vLLM caches every head's K and V in
every release (kvplan/engines/vllm_premla.py ALWAYS_PER_HEAD), read in the wheels:

    # models/minicpm3.py 0.6.2:75 / 0.34.0:80   self.num_local_heads = num_heads // tp_size
    #   (num_heads=self.config.num_attention_heads, 0.6.2:186 / 0.34.0:194)
    # 0.6.2:116-119 (0.6.3:118-121, 0.8.5:120-123, 0.11.0:121-124, 0.34.0:126-131)
    #   self.attn = Attention(self.num_local_heads, self.qk_head_dim, self.scaling, num_kv_heads=self.num_local_heads)
    # 0.6.2:164-166 (0.34.0:173): v = torch.nn.functional.pad(v, [0, self.qk_head_dim - self.v_head_dim], value=0)
    # is_deepseek_mla names deepseek_v2/v3/... but never minicpm3 (config.py 0.7.3:763-767, 0.8.5:980-992,
    #   config/model.py 0.11.0:1076-1089, model_arch_config_convertor.py 0.34.0:294-328): use_mla stays off
    # V1: FullAttentionSpec(num_kv_heads=attn.num_kv_heads, head_size=attn.head_size) (gpu_model_runner.py
    #   0.8.5:1754-1755; layers/attention/attention.py 0.34.0:705-711, head_size_v = head_size at :358)

The config, from public copies (openbmb/MiniCPM3-4B is not bundled): transformers' MiniCPM3Config, whose class
defaults "match the openbmb/MiniCPM3-4B checkpoint" (huggingface/transformers
src/transformers/models/minicpm3/configuration_minicpm3.py): hidden 2560, 62 layers, 40 heads, 40 KV heads,
kv_lora_rank 256, q_lora_rank 768, qk_nope_head_dim 64, qk_rope_head_dim 32, v_head_dim None -> 2560 / 40 = 64,
max_position_embeddings 32768, vocab 73448, intermediate 6400. The checkpoint's own remote MiniCPM3Config (copied
"from https://huggingface.co/openbmb/MiniCPM3-4B/tree/6fcf8b4e..." in huggingface/optimum-habana
optimum/habana/transformers/models/minicpm/configuration_minicpm.py) sets head_dim = qk_nope_head_dim +
qk_rope_head_dim = 96, what V0's get_head_size reads, and v_head_dim = qk_nope_head_dim = 64 where absent.

Hand arithmetic, bf16 (2 bytes):
    per head (vLLM):  62 layers x 2 (K, V) x 40 heads x (64 + 32) x 2 = 952,320 B a token
    latent (ideal):   62 layers x (256 + 32) x 2                      =  35,712 B a token (26.7x less)
Before this rule kvplan planned the latent for vLLM too: H100, -c 32768: 54 requests on 0.6.3, 61 on 0.34.0.
"""

from __future__ import annotations

import json

import pytest

from conftest import one_error_line, run_kvplan

import kvplan
from kvplan.commands.verify import refuse_per_head_mla
from kvplan.engines.vllm_premla import caches_per_head, per_head_view
from kvplan.model.kinds import FullAttention, MLALatent
from kvplan.model.sources import resolve

CONFIG = {"architectures": ["MiniCPM3ForCausalLM"], "model_type": "minicpm3", "vocab_size": 73448,
          "hidden_size": 2560, "intermediate_size": 6400, "num_hidden_layers": 62, "num_attention_heads": 40,
          "num_key_value_heads": 40, "qk_nope_head_dim": 64, "qk_rope_head_dim": 32, "q_lora_rank": 768,
          "kv_lora_rank": 256, "hidden_act": "silu", "max_position_embeddings": 32768, "rms_norm_eps": 1e-05,
          "tie_word_embeddings": True, "torch_dtype": "bfloat16", "scale_emb": 12, "dim_model_base": 256,
          "scale_depth": 1.4}
PER_HEAD = 62 * 2 * 40 * (64 + 32) * 2  # 952,320
LATENT = 62 * (256 + 32) * 2  # 35,712
CONTEXT = 32768
H100_BYTES = 80 * 2**30  # the H100's 80 GiB, more than any budget


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(CONFIG))
    return str(path)


def one(model, engine, **kwargs):
    (plan,) = kvplan.estimate(model, gpu="H100", engine=engine, max_model_len=CONTEXT, **kwargs)
    return plan


def test_the_arithmetic_written_out():
    assert PER_HEAD == 952_320 and LATENT == 35_712


@pytest.mark.parametrize("version", ["0.6.2", "0.6.3", "0.7.2", "0.7.3", "0.8.5", "0.11.0", "0.32.0", "0.34.0"])
def test_every_release_caches_per_head(model, version):
    plan = one(model, f"vllm=={version}")
    assert plan.kv_bytes_per_token_per_gpu == PER_HEAD
    # a request of 32,768 tokens: 32,768 x 952,320 = 31,205,621,760 B (29.06 GiB), a whole number of blocks
    assert plan.kv_bytes_per_sequence_per_gpu == 31_205_621_760


@pytest.mark.parametrize("version", ["0.6.3", "0.34.0"])
def test_two_requests_on_an_h100_at_32k(model, version):
    """Three requests need 3 x 31,205,621,760 = 93,616,865,280 B, more than the H100's 85,899,345,920 B in all, so
    no budget holds three; the budget holds two (62.4 GB). The latent plan said 54 (0.6.3) and 61 (0.34.0)."""
    plan = one(model, f"vllm=={version}")
    assert 3 * plan.kv_bytes_per_sequence_per_gpu > H100_BYTES
    assert plan.kv_budget_bytes_per_gpu >= 2 * plan.kv_bytes_per_sequence_per_gpu
    assert plan.max_concurrency == 2


def test_v0_logs_follow_the_per_head_block(model):
    """0.6.3's V0 block: 16 tokens x 952,320 B = 15,237,120 B; its 4 GiB swap: 4,294,967,296 / 15,237,120 = 281.9
    -> 281 CPU blocks; the GPU blocks hold 16 tokens each, and the logged concurrency is 16 x blocks / 32,768."""
    plan = one(model, "vllm==0.6.3")
    assert plan.engine.log_lines[0].endswith("# CPU blocks: 281")
    blocks = plan.engine.num_gpu_blocks
    assert plan.engine.log_lines[1] == f"Maximum concurrency for 32768 tokens per request: {blocks * 16 / CONTEXT:.2f}x"
    assert blocks * 15_237_120 <= plan.kv_budget_bytes_per_gpu < (blocks + 1) * 15_237_120


@pytest.mark.parametrize("tp, per_token", [(2, 62 * 2 * 20 * 96 * 2), (8, 62 * 2 * 5 * 96 * 2)])
def test_tp_splits_the_heads(model, tp, per_token):
    """40 heads / tp a rank: 20 at tp 2 (476,160 B), 5 at tp 8 (119,040 B)."""
    plan = one(model, "vllm==0.34.0", tensor_parallel_size=tp)
    assert plan.tp_valid and plan.kv_bytes_per_token_per_gpu == per_token


def test_tp_that_does_not_divide_the_heads_is_invalid(model):
    assert not one(model, "vllm==0.34.0", tensor_parallel_size=3).tp_valid  # 40 % 3 != 0


def test_fp8_halves_the_per_head_cache(model):
    assert one(model, "vllm==0.34.0", kv_cache_dtype="fp8").kv_bytes_per_token_per_gpu == 62 * 2 * 40 * 96 * 1


def test_ideal_engine_keeps_the_latent(model):
    """--engine none plans what the model needs, not what vLLM makes of it: the latent alone determines K and V
    (kv_b_proj up-projects it), and an engine can cache just that: SGLang's MiniCPM3AttentionMLA builds
    RadixAttention(num_local_heads, kv_lora_rank + qk_rope_head_dim, num_kv_heads=1, v_head_dim=kv_lora_rank)
    (sgl-project/sglang python/sglang/srt/models/minicpm3.py)."""
    plan = one(model, "none")
    assert plan.kv_bytes_per_token_per_gpu == LATENT


def test_the_view_and_its_note(model):
    spec = resolve(model)
    assert all(isinstance(layer, MLALatent) for layer in spec.layers)
    viewed = per_head_view(spec, "0.34.0")
    assert viewed.layers[0] == FullAttention(40, 96)
    assert any("MLA cached per head: vLLM 0.34.0" in note and "head size 96" in note for note in viewed.notes)
    run = run_kvplan("estimate", model, "--gpu", "H100", "--engine", "vllm==0.34.0", "-c", "32768")
    said = " ".join(run.stdout.split())
    assert run.returncode == 0 and "MHA: 40 KV heads for 40 query heads, head_dim 96." in said
    assert "in every release, caching no latent." in said and ".." not in said


@pytest.mark.parametrize("quantization", ["", "awq", "fp8"])
def test_no_quantization_or_release_turns_the_latent_on(model, quantization):
    """use_mla's quantization rule (0.7.1-0.7.2) is DeepSeek's; MiniCPM3 is per head whatever the quantization."""
    from dataclasses import replace

    spec = replace(resolve(model), quantization=quantization)
    assert all(caches_per_head(spec, version) for version in ("0.6.2", "0.7.1", "0.7.3", "0.34.0"))


def test_verify_refuses_before_torch(model):
    """verify's forward builds MLA layers (latent cache) and its paged kernels take head sizes 64/128/256 only, so it
    cannot build vLLM's 96-wide per-head cache: one line, before torch, pointing at estimate."""
    line = one_error_line(run_kvplan("verify", model))
    assert "MODEL" in line and "caches every head's K and V" in line and "kvplan estimate" in line
    assert "CUDA" not in line


def test_verify_refuses_pre_mla_deepseek_but_not_its_latent_releases():
    line = one_error_line(run_kvplan("verify", "deepseek-ai/DeepSeek-V2-Lite", "--engine", "vllm==0.6.3"))
    # unquantized: use_mla is on from 0.7.1 (config.py 0.7.1:972-1000), not only from 0.7.3 (AWQ / GPTQ's first)
    assert "--engine vllm==0.6.3" in line and "--engine vllm==0.7.1 or newer" in line
    spec = resolve("deepseek-ai/DeepSeek-V2-Lite")
    assert refuse_per_head_mla(spec, "0.8.0") is None
