"""Defects the s62 fuzz round (benchmarks/fuzz_campaign.py --fields/--parity/--contract) found, each reproduced here.
Bad input is one line on stderr naming the field and what is valid, exit 2; exit 3 (kvplan's crash code) is a defect.

G1  a RoPE factor whose product with the model's length overflows a float (1e308 x 131,072 = inf) crashed the
    release's length rule (int(inf): OverflowError, exit 3) instead of being refused by name like a factor of 1e300.
G2  enable_lora on a model kvplan does not price LoRA for (an MoE, a multimodal model) at a TP degree that does not
    split the heads: estimate refused it (exit 2, it builds the budget at every TP degree) while check reported only
    the failed sharding rule (exit 1), so the same deployment got two answers (the --parity family).
G3  speed (the design's 0.5 s bound): a hybrid's state page re-derived the model's state dtypes once per linear layer
    (45 of Qwen3.5-397B's 60, each time through the release's NemotronH handler rules) in every plan the remedies
    replan: `estimate Qwen/Qwen3.5-397B-A17B -tp 1,2,4,8` took 0.8-0.9 s here, now about half that.
G4  speed (a hang past the campaign's 5 s): a chunked-attention model's decode peak walked every chunk boundary up
    to max_model_len, so Llama 4 Scout with attention_chunk_size 16 at its 10,485,760 tokens walked 655,360
    boundaries x 4 groups (4.5 s cold, 10 s in the campaign); now the boundaries of the last common period only.
G5  found checking G4 against the full walk: at 0 tokens done an "all"-mode Mamba table counted one block more than
    it holds (its skip of -1 tokens, floor-divided, "freed" -1 blocks); vLLM frees nothing on a skip <= 0. Reached
    only through a chunk boundary at token 0 (attention_chunk_size 1), never the peak otherwise.
G6  speed: a small --max-num-batched-tokens splits the prompt into up to 32,768 chunks (MAX_PREFILL_CHUNKS), each
    re-priced from scratch (a PassWork copied, every term of basis() redone): Mixtral-8x7B at 1 token a chunk 0.7-0.9
    s, DeepSeek-V3.2 at 16 over three KV dtypes 0.9-2.5 s. Now only the two terms a chunk changes are redone (bit
    for bit the same figures): about 2x faster.
"""

from __future__ import annotations

import json
import random
import time

import pytest
from conftest import one_error_line, run_kvplan

# Llama-3.1-8B's shape (its config.json), the RoPE entry replaced by the case's
LLAMA_CONFIG = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096,
                "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
                "num_key_value_heads": 8, "vocab_size": 128256, "max_position_embeddings": 131072,
                "tie_word_embeddings": False, "torch_dtype": "bfloat16"}


def _folder(tmp_path, **fields):
    (tmp_path / "config.json").write_text(json.dumps({**LLAMA_CONFIG, **fields}))
    return tmp_path


# ---- G1: a RoPE factor that overflows the float product ---------------------------------------------------------

@pytest.mark.parametrize("scaling, engine", [
    ({"type": "linear", "factor": 1e308}, "vllm"),  # 0.32 multiplies a linear factor in
    ({"type": "yarn", "factor": 1e308, "original_max_position_embeddings": 4096}, "vllm==0.15.0"),  # original x f
    ({"type": "dynamic", "factor": 1.7976931348623157e308}, "vllm==0.11.0"),  # the largest float itself
])
def test_an_overflowing_rope_factor_is_refused_by_name(tmp_path, scaling, engine):
    base = scaling.get("original_max_position_embeddings", 131072)
    assert base * scaling["factor"] == float("inf")  # the case: the float product overflows (float64 arithmetic)
    line = one_error_line(run_kvplan("estimate", _folder(tmp_path, rope_scaling=scaling), "--engine", engine))
    assert "'rope_scaling.factor'" in line and "past kvplan's bound of 2**40" in line and "--max-model-len" in line
    assert "1.8e+308 tokens" in line  # the largest float stands in for the overflowed length, shown short


def test_an_overflowing_rope_factor_with_a_max_model_len_is_planned(tmp_path):
    """vLLM compares an asked --max-model-len with the derived float (config/model.py 0.34.0:2700): 8192 < inf is
    served. The note gives the derived length in 3 digits, not 309."""
    r = run_kvplan("estimate", _folder(tmp_path, rope_scaling={"type": "linear", "factor": 1e308}),
                   "--max-model-len", "8192", "--format", "json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["plans"][0]["context"] == 8192
    note = next(n for n in data["model"]["rules"] if n.startswith("RoPE scaling"))
    assert "max model length of 1.8e+308 = max_position_embeddings 131,072 x linear RoPE factor 1e+308" in note


def test_a_large_finite_rope_factor_keeps_its_digits_short(tmp_path):
    """1e300 x 131,072 = 1.31e305 is finite: refused as before, and its note (with a length given) no longer prints
    all 306 digits."""
    folder = _folder(tmp_path, rope_scaling={"type": "linear", "factor": 1e300})
    assert "1.31e+305 tokens" in one_error_line(run_kvplan("estimate", folder))
    r = run_kvplan("estimate", folder, "--max-model-len", "8192")
    assert r.returncode == 0 and "1.31e+305 = max_position_embeddings 131,072" in r.stdout.replace("\n", " ")


# ---- G2: unpriced LoRA is bad input in check as in estimate, whatever the TP degree -----------------------------

GLM_FLASH = "zai-org/GLM-4.7-Flash"  # 20 query heads (its config.json): tp 8 does not split them; MoE experts


@pytest.mark.parametrize("tp", ["8", "2"])
def test_unpriced_lora_is_refused_alike_by_estimate_and_check(tmp_path, tp):
    said = one_error_line(run_kvplan("estimate", GLM_FLASH, "-tp", tp, "--enable-lora"))
    assert "--enable-lora is not priced by kvplan" in said and "(MoE experts)" in said
    said = one_error_line(run_kvplan("check", GLM_FLASH, "-tp", tp, "--enable-lora"))
    assert "--enable-lora is not priced by kvplan" in said
    path = tmp_path / "d.yaml"
    path.write_text(f"deployments:\n  - name: d\n    model: {GLM_FLASH}\n    tp: {tp}\n    enable_lora: true\n")
    said = one_error_line(run_kvplan("check", "--file", path))
    assert "d.yaml:5:" in said and "field 'enable_lora' is not priced by kvplan" in said


def test_priced_lora_at_a_refused_tp_stays_a_failed_rule():
    """Llama-3.1-8B is priced (a dense LlamaForCausalLM): at tp 3 its 32 heads do not split, a failed rule (exit 1),
    as before; estimate plans it as an invalid TP (exit 0)."""
    done = run_kvplan("check", "meta-llama/Llama-3.1-8B", "-tp", "3", "--enable-lora")
    assert done.returncode == 1 and "num_attention_heads (32) is not divisible by tp 3" in done.stdout
    assert run_kvplan("estimate", "meta-llama/Llama-3.1-8B", "-tp", "3", "--enable-lora").returncode == 0


# ---- G3: a hybrid's state page prices the model's state dtypes once ---------------------------------------------

def test_a_hybrid_state_page_reads_the_state_dtypes_once(monkeypatch):
    """Qwen3.5-397B-A17B (its config.json): gated DeltaNet layers with 16 key heads and 64 value heads of 128, conv
    kernel 4, bf16, mamba_ssm_dtype float32. One sequence's state on one GPU at tp 1 in vLLM 0.32.0 (GatedDeltaNet
    get_state_shape: conv (kernel - 1) x (2 x 16 x 128 + 64 x 128) in the model dtype, temporal 64 x 128 x 128 in
    float32 by Qwen3.5's config hook, models/config.py 0.32.0:853-879): 4,268,032 bytes, the dtypes worked out
    once, not once per layer."""
    from kvplan.engines import vllm_mamba_state
    from kvplan.model.precision import PRECISIONS
    from kvplan.model.sources import resolve

    spec = resolve("Qwen/Qwen3.5-397B-A17B")
    calls, priced = [], vllm_mamba_state.mamba_state_bytes
    monkeypatch.setattr(vllm_mamba_state, "mamba_state_bytes", lambda *a: calls.append(a) or priced(*a))
    attention, per_token, page = vllm_mamba_state.hybrid_pages(spec, 1, PRECISIONS["bf16"], "0.32.0")
    assert page == 2 * (4 - 1) * (2 * 16 * 128 + 64 * 128) + 4 * 64 * 128 * 128 == 4_268_032
    assert per_token == 2 * 2 * 256 * 2  # the first full-attention layer: K and V, 2 KV heads of 256, bf16
    assert len(calls) == 1


# ---- G4: a chunked model's decode peak walks one period of chunk boundaries, not all of them --------------------

def test_the_decode_peak_of_one_period_is_every_boundarys():
    """400 random layouts with at least one chunked group (full, sliding, chunked, MLA, Mamba in every mode,
    speculative blocks), lengths 1 to 12,000, after a prefill simulated chunk by chunk: the decode peak from the
    last period's boundaries equals the one from every boundary."""
    from kvplan.engines import vllm_admission as admission
    from test_s60_fuzz_fixes import _every_boundary, _group, _random_groups

    rng = random.Random(62)
    walked_less = 0
    for _ in range(400):
        chunked = _group("chunked", rng.choice([1, 4, 16, 64]), rng.choice([1, 3, 16, 500, 8192]))
        groups = _random_groups(rng) + [chunked]
        rng.shuffle(groups)
        length = rng.choice([1, 15, 16, 17, 4095, 8192, 8193, rng.randint(1, 12_000)])
        mamba_align = rng.choice([True, False])
        states = [(admission._MambaAlign if g.spec.kind == "mamba" and mamba_align and not g.spec.all_mode
                   else admission._Blocks)(g.spec, length) for g in groups]
        for end in range(0, length, max(1, length // 7)):  # a prefill's tables, roughly
            for state in states:
                state.remove_skipped(end)
                state.allocate(min(end + max(1, length // 7), length), end)
        assert admission._held_before_chunk_ends(states, groups, length) == _every_boundary(states, groups, length)
        walked_less += length > 2 * max(g.spec.window for g in groups if g.spec.kind == "chunked")
    assert walked_less > 100


def test_a_small_attention_chunk_at_ten_million_tokens_is_quick(tmp_path):
    """Llama 4 Scout's config with attention_chunk_size 16 (8,192 in Meta's) at its own 10,485,760 tokens."""
    import yaml
    from conftest import ROOT

    config = yaml.safe_load((ROOT / "model_specs" / "meta-llama--Llama-4-Scout-17B-16E-Instruct.yaml").read_text())
    config["config"]["text_config"]["attention_chunk_size"] = 16
    (tmp_path / "config.json").write_text(json.dumps(config["config"]))
    started = time.process_time()
    done = run_kvplan("estimate", tmp_path, "--format", "json")
    assert done.returncode == 0, done.stderr
    assert time.process_time() - started < 2.0  # 4-10 s before
    assert json.loads(done.stdout)["plans"][0]["context"] == 10_485_760


def test_a_mamba_skip_of_minus_one_frees_nothing():
    """MambaManager.get_num_skipped_tokens is computed - 1 (v1/core/single_type_kv_cache_manager.py 0.32.0:1959); a
    skip <= 0 returns before any block is freed (:696-697). With 0 tokens done and the next slot allocated an
    "all"-mode table of 96-token blocks holds that one block and its 2 speculative blocks: 3, not 4."""
    from kvplan.engines import vllm_admission as admission
    from test_s60_fuzz_fixes import _group

    table = admission._Blocks(_group("mamba", 96, 0, "all", 2).spec, 17)
    assert table.held_while_decoding(0) == 1 + 2
    assert table.held_while_decoding(1) == 1 + 2  # skip 0: still nothing freed
    wide = admission._Blocks(_group("mamba", 4, 0, "all", 0).spec, 100)
    assert wide.held_while_decoding(9) == 3 - 2  # tokens 0-9 in 3 blocks, the first 8 skipped: 2 blocks freed


# ---- G6: a prefill chunk reprices only what it changes ----------------------------------------------------------

@pytest.mark.parametrize("model, tp, dp", [("deepseek-ai/DeepSeek-V3.2", 1, 1),
                                           ("Qwen/Qwen3-Next-80B-A3B-Thinking", 2, 1),
                                           ("mistralai/Mixtral-8x7B-v0.1", 2, 2), ("google/gemma-3-27b-it", 4, 1)])
def test_a_chunks_basis_is_basis_to_the_last_bit(model, tp, dp):
    """chunk_basis(work)(kv, attention) against basis() of the PassWork with those two replaced (the one-by-one
    pricing before s62), for random reads and FLOPs; and a whole prompt's TTFT against that pricing summed."""
    from dataclasses import replace

    from kvplan.model.precision import PRECISIONS
    from kvplan.model.sources import resolve
    from kvplan.plan import prefill as pf
    from kvplan.plan.catalog import find_gpu, speed_profile
    from kvplan.plan.speed import basis, chunk_basis
    from kvplan.plan.work import attention_flops, kv_read_bytes, prefill_work

    spec, gpu = resolve(model), find_gpu("H100")
    profile, bandwidth, precision = speed_profile(gpu), gpu.decode_bandwidth, PRECISIONS["bf16"]
    work = replace(prefill_work(spec, tp, precision, 0, 512), dp=dp)
    rng = random.Random(6)
    for _ in range(200):
        kv, flops = rng.choice([0, rng.randint(1, 2**40)]), rng.random() * 10 ** rng.randint(0, 16)
        assert chunk_basis(work, bandwidth, profile.compute)(kv, flops) == \
            basis(replace(work, kv_bytes=kv, attention_flops=flops), bandwidth, profile.compute)
    fit, prompt, chunk = profile.fit, 20_000, 768
    one_by_one = []
    for start in range(0, prompt, chunk):
        count = min(chunk, prompt - start)
        b = basis(replace(prefill_work(spec, tp, precision, 0, count),
                          kv_bytes=kv_read_bytes(spec, tp, precision, start) if start else 0,
                          attention_flops=attention_flops(spec, tp, start, count, False)), bandwidth, profile.compute)
        one_by_one.append((pf.chunk_ms(b, fit), max(b.roofline_ms, b.peak_ms)))
    assert pf.chunk_times(spec, tp, precision, prompt, chunk, profile, bandwidth) == one_by_one
