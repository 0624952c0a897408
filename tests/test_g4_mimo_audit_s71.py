"""Gemma 4 and MiMo-V2 against vLLM's code, release by release (session 71's audit). Paths under vllm/ of the release
named; every expected figure is hand arithmetic from the bundled configs and the rules read there.

Gemma 4 with an fp8 cache on Hopper, 0.31-0.33. model_executor/models/config.py Gemma4Config (0.31.0 :209-283,
0.32.0 :229-290) leaves flash_attn_version unset on SM90 when cache_dtype starts with "fp8" ("per-layer FA3/FA4
selection"): the 256-wide sliding layers run FA3 and the 512-wide full layers FA4 (v1/attention/backends/fa_utils.py
0.32.0 get_flash_attn_version: FA3 -> FA4 for head_size > 256 on SM90), whose fp8 kernel takes head 512 on SM90
(flash_attn_supports_kv_cache_dtype, :282-312). Every layer is then on FLASH_ATTN (E4B) or the TRITON_FLASH_ATTN
composite (the 31B, a vision prefix LM: platforms/cuda.py 0.32.0:166-179; kernel blocks Triton's MultipleOf(16) x
FLASH_ATTN's [64], composite.py:118-145), one backend class, so phase 1 of update_block_size_for_backend
(platforms/interface.py 0.32.0:767-781, one backend :721-722) takes its get_preferred_block_size(16): FLASH_ATTN's
_get_sm90_fa4_fp8_kv_block_size (flash_attn.py 0.32.0:298-324, :369-372) reads the model's head size, the largest
layer's 512 (config/model_arch.py from_layers, collapsed with max), and a cache dtype of fp8 or fp8_e4m3: 64. 0.30
forces FA4 on every layer (config.py 0.30.0:209-262), which stores no fp8 on SM90 (fa_utils.py 0.29.0: FA3 on SM90 or
FA4 on SM100), so FLASHINFER / TRITON_ATTN take the layers at the default 16. 0.34's default is 64 already.

MiMo-V2-Flash before 0.20: MiMoV2Attention pads each value to the key's width and builds its Attention with one head
size (model_executor/models/mimo_v2_flash.py 0.14.0:314, 0.16.0:315, 0.19.0:314-316 F.pad(v, [0, head_dim -
v_head_dim]); no head_size_v), so a KV head stores 2 x 192 values a token, not 192 + 128; 0.20.0 passes head_size_v
(mimo_v2_flash.py 0.20.0:302-315) and the specs count head_size + head_size_v (v1/kv_cache_interface.py 0.20.0).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import estimate_plan
from kvplan.engines.vllm_fa4_fp8_block import fa4_fp8_block
from kvplan.engines.vllm_mimo import served_layers
from kvplan.model.kinds import FullAttention, SlidingWindow
from kvplan.model.precision import resolve_kv_dtype
from kvplan.model.sources import resolve

E4B, DENSE, MIMO = "google/gemma-4-E4B-it", "google/gemma-4-31B-it", "XiaomiMiMo/MiMo-V2-Flash"
GiB = 2**30
BUDGET = 10 * GiB  # --kv-cache-memory-bytes: the engine's KV bytes a GPU, fixed


def engine(model: str, release: str, *flags: str, gpu: str = "H200", tp: int = 1) -> dict:
    plan = estimate_plan(model, "--gpu", gpu, "-tp", str(tp), "-c", "32768", "--engine", f"vllm=={release}",
                         "--kv-cache-memory-bytes", "10GiB", *flags)
    assert plan["engine"]["starts"], plan["engine"]["refusal"]
    return plan["engine"]


# ---- Gemma 4: the fp8 block on Hopper ----

def e4b_fp8_at_64() -> dict:
    """E4B (24 caches: 20 sliding of 2 x 256, 4 full of 2 x 512; 18 sharing layers hold none) in fp8 at block 64:
    the full page 64 x 2 x 512 x 2 x 1 B = 128 KiB, the sliding page (64 KiB at 64) raised to block 128 to match;
    five groups of 4 sliding layers and one of the 4 full layers, a block 4 x 128 KiB."""
    per_block = 4 * 64 * 2 * 512 * 2
    full = 32768 // 64  # blocks a request needs in the full group
    sliding = -(-(512 - 1 + 2 * 8192) // 128) + 1  # window - 1 + two batches of 8192 in flight (async), +1
    return {"block_size": 64, "num_gpu_blocks": BUDGET // per_block, "blocks_per_request": full + 5 * sliding}


@pytest.mark.parametrize("release", ["0.31.0", "0.32.0", "0.33.0"])
@pytest.mark.parametrize("dtype", ["fp8", "fp8_e4m3"])
def test_e4b_fp8_pages_in_64_token_blocks_on_hopper(release, dtype):
    e = engine(E4B, release, "--kv-cache-dtype", dtype)
    want = e4b_fp8_at_64()
    assert want == {"block_size": 64, "num_gpu_blocks": 20480, "blocks_per_request": 512 + 5 * 133}
    assert {k: e[k] for k in want} == want and e["num_kv_cache_groups"] == 6


def test_e4b_fp8_log_line_at_64():
    e = engine(E4B, "0.32.0", "--kv-cache-dtype", "fp8")
    # 0.32: concurrency = blocks / blocks a request (no null block), tokens = int(concurrency x max_model_len)
    concurrency = 20480 / 1177
    assert e["max_concurrency"] == pytest.approx(concurrency)
    assert e["gpu_kv_cache_tokens"] == int(concurrency * 32768) == 570168
    assert e["log_lines"][-1] == ("GPU KV cache size: 570,168 tokens, Maximum concurrency for 32,768 tokens per "
                                  "request: 17.40x")


def test_31b_fp8_pages_in_64_token_blocks_on_hopper():
    """50 sliding layers of 16 x 256, 10 full of 4 x 512 (K = V still cached): at 64 the sliding page is
    64 x 16 x 256 x 2 B = 512 KiB and the full page half that, so the full layers page 128 tokens; groups of 10
    layers (five sliding, one full), a block 10 x 512 KiB."""
    e = engine(DENSE, "0.32.0", "--kv-cache-dtype", "fp8")
    sliding = -(-(1024 - 1 + 2 * 8192) // 64) + 1
    assert (e["block_size"], e["num_kv_cache_groups"]) == (64, 6)
    assert e["num_gpu_blocks"] == BUDGET // (10 * 64 * 16 * 256 * 2) == 2048
    assert e["blocks_per_request"] == 32768 // 128 + 5 * sliding == 256 + 5 * 273


def e4b_at_16() -> dict:
    """E4B in fp8 at block 16: the full page 32 KiB, the sliding layers at block 32; a block 4 x 32 KiB."""
    sliding = -(-(512 - 1 + 2 * 8192) // 32) + 1
    return {"block_size": 16, "num_gpu_blocks": BUDGET // (4 * 16 * 2 * 512 * 2), "blocks_per_request":
            32768 // 16 + 5 * sliding}


@pytest.mark.parametrize("release,flags,gpu", [
    ("0.30.0", ("--kv-cache-dtype", "fp8"), "H200"),  # FA4 forced on every layer: FLASHINFER stores the fp8
    ("0.32.0", ("--kv-cache-dtype", "fp8_e5m2"), "H200"),  # no FlashAttention dtype: the 64 is fp8 / fp8_e4m3's
    ("0.32.0", ("--kv-cache-dtype", "fp8"), "B200"),  # SM100 puts FLASHINFER first
    # no FA4: TRITON_ATTN for every layer (on an A100 its fp8 check refuses: tests/test_gptoss_audit_s71.py)
    ("0.32.0", ("--kv-cache-dtype", "fp8"), "L40S"),
    ("0.32.0", ("--kv-cache-dtype", "fp8", "--block-size", "16"), "H200"),  # given: kept (FLASHINFER serves it)
])
def test_e4b_keeps_the_default_block_elsewhere(release, flags, gpu):
    e = engine(E4B, release, *flags, gpu=gpu)
    want = e4b_at_16()
    if gpu != "H200":  # another GPU's default max_num_batched_tokens moves the window's blocks, not the block
        del want["blocks_per_request"]
    assert {k: e[k] for k in want} == want


def test_bf16_keeps_16_and_034_is_64_anyway():
    e = engine(E4B, "0.32.0")  # bf16: FA4 on every layer, MultipleOf(16) blocks
    assert (e["block_size"], e["num_gpu_blocks"]) == (16, BUDGET // (4 * 16 * 2 * 512 * 2 * 2))
    assert engine(E4B, "0.34.0", "--kv-cache-dtype", "fp8")["block_size"] == 64  # DEFAULT_BLOCK_SIZE 64


def test_the_rule_reads_the_widest_head_and_the_spelling():
    spec = resolve(E4B)
    fp8, e5m2 = resolve_kv_dtype("fp8", "bf16"), resolve_kv_dtype("fp8_e5m2", "bf16")
    assert fa4_fp8_block(spec.layers, fp8, None, 16, "0.32.0") == 64
    assert fa4_fp8_block(spec.layers, fp8, None, 16, "0.32.0", (9, 0)) == 64
    assert fa4_fp8_block(spec.layers, e5m2, None, 16, "0.32.0") == 16
    assert fa4_fp8_block(spec.layers, fp8, 32, 16, "0.32.0") == 16  # --block-size given: the caller keeps it
    assert fa4_fp8_block(spec.layers, fp8, None, 16, "0.32.0", (10, 0)) == 16
    narrow = (SlidingWindow(8, 256, sliding_window=1024), FullAttention(8, 256))  # Gemma 3-like: no 512 head
    assert fa4_fp8_block(narrow, fp8, None, 16, "0.32.0") == 16


# ---- MiMo-V2-Flash: the value's width by release ----

@pytest.mark.parametrize("release", ["0.14.0", "0.16.0", "0.19.1"])
def test_mimo_values_are_key_wide_before_0_20(release):
    """TP 8: each rank holds one KV head of every layer (the 4 full heads replicated, the 8 sliding split): a page
    of 16 x 2 x 192 x 2 B whatever the kind, equal pages, groups of 9 layers (9 full; 39 sliding in 5 groups)."""
    e = engine(MIMO, release, tp=8)
    sliding = -(-(128 - 1 + 8192) // 16) + 1  # no async scheduling before 0.20's default: one batch in flight
    assert e["num_gpu_blocks"] == BUDGET // (9 * 16 * 2 * 192 * 2) == 97090
    assert e["blocks_per_request"] == 32768 // 16 + 5 * sliding == 4653


def test_mimo_values_keep_their_width_from_0_20():
    e = engine(MIMO, "0.20.0", tp=8)
    assert e["num_gpu_blocks"] == BUDGET // (9 * 16 * (192 + 128) * 2) == 116508


def test_mimo_tp2_before_0_20():
    """TP 2: full layers 2 heads (page 16 x 2 x 384 x 2 = 24 KiB), sliding 4 (48 KiB): the full layers page 32
    tokens; a block 9 x 48 KiB."""
    e = engine(MIMO, "0.19.0", tp=2)
    assert e["num_gpu_blocks"] == BUDGET // (9 * 16 * 4 * 384 * 2) == 24272
    assert e["blocks_per_request"] == 32768 // 32 + 5 * (-(-(127 + 8192) // 16) + 1)


def test_the_config_widths_stay_the_arithmetic():
    spec = resolve(MIMO)
    assert spec.layers[0] == FullAttention(4, 192, 128)
    padded = served_layers(spec, "0.19.0").layers
    assert padded[0].value_dim == 192 and padded[1].value_dim == 192 and len(padded) == 48
    assert served_layers(spec, "0.20.0") is spec
    gemma = resolve(E4B)
    assert served_layers(gemma, "0.16.0") is gemma  # only MiMo-V2 pads


# ---- Gemma 4: the KV-sharing layers' projections before 0.30 ----

def weights_term(release: str, tp: int = 1) -> int:
    plan = estimate_plan(E4B, "--gpu", "H200", "-tp", str(tp), "-c", "32768", "--engine", f"vllm=={release}")
    return next(t["bytes"] for t in plan["budget"]["terms"] if t["name"] == "weights")


def test_e4b_shared_layers_keep_k_v_projections_before_0_30():
    """E4B's 18 KV-sharing layers (15 sliding of 2 heads x 256, 3 full of 2 x 512; hidden 2560, bf16) build a
    QKVParallelLinear and a k_norm in 0.19-0.29 (gemma4.py 0.19.0:286-311), a q_proj alone from 0.30."""
    projections = 2 * (15 * 2 * 256 + 3 * 2 * 512) * 2560
    norms = 15 * 256 + 3 * 512
    assert weights_term("0.29.0") - weights_term("0.30.0") == 2 * (projections + norms) == 110_111_232
    assert weights_term("0.19.0") == weights_term("0.29.0")
    # tp 2: one of the 2 KV heads a rank, each k_norm whole
    assert weights_term("0.25.0", tp=2) - weights_term("0.30.0", tp=2) == 2 * (projections // 2 + norms)


def test_the_31b_shares_no_cache_and_loads_alike():
    plan = {r: estimate_plan(DENSE, "--gpu", "H200", "-c", "32768", "--engine", f"vllm=={r}") for r in ("0.29.0",
                                                                                                       "0.30.0")}
    weights = {r: next(t["bytes"] for t in p["budget"]["terms"] if t["name"] == "weights") for r, p in plan.items()}
    assert weights["0.29.0"] == weights["0.30.0"]


# ---- MiMo-V2-Flash: FlashAttentionDiffKVBackend's sinks off Hopper / SM10x in 0.20-0.23 ----

def mimo_engine(release: str, gpu: str) -> dict:
    return estimate_plan(MIMO, "--gpu", gpu, "-tp", "8", "-c", "32768", "--engine", f"vllm=={release}")["engine"]


@pytest.mark.parametrize("release", ["0.20.0", "0.21.0", "0.22.1", "0.23.0"])
@pytest.mark.parametrize("gpu,cc", [("A100-80GB", "8.0"), ("L40S", "8.9"), ("RTX-PRO-6000-Server", "12.0")])
def test_mimo_sinks_stop_fa2_gpus_in_0_20_to_0_23(release, gpu, cc):
    """mimo_v2_flash.py 0.20.0:294-300 / mimo_v2.py 0.21.0:295-300 hand the sliding layers (sinks: config
    add_swa_attention_sink_bias; values 128 under 192-wide keys) FlashAttentionDiffKVBackend, and FlashAttentionImpl
    asserts flash_attn_supports_sinks() (flash_attn.py 0.20.0:658-662), FA 3 or 4: FA2 on these GPUs."""
    e = mimo_engine(release, gpu)
    why = e["refusal"]
    assert not e["starts"] and why["configuration"] and why["field"] == "engine"
    assert f"compute capability {cc} does not run (FA2)" in why["reason"]
    assert why["reason"].endswith("AssertionError: Sinks are only supported in FlashAttention 3")
    assert why["remedy"].startswith("it starts with --engine vllm==0.24.0 or newer")


@pytest.mark.parametrize("release,gpu", [("0.19.1", "A100-80GB"), ("0.24.0", "A100-80GB"), ("0.21.0", "H200"),
                                         ("0.21.0", "B200")])
def test_mimo_starts_where_its_sinks_find_a_kernel(release, gpu):
    # 0.19: the selector's TRITON_ATTN (supports_sink True, triton_attn.py 0.19.0:335-336); 0.24: TRITON_ATTN_DIFFKV
    # (mimo_v2.py 0.24.0:297-318); Hopper FA3, SM10x FA4
    assert mimo_engine(release, gpu)["starts"]


def test_a_mimo_config_without_sliding_sinks_starts(write_config):
    import copy
    import json

    from tests.conftest import load_yaml

    spec_file = Path(__file__).resolve().parents[1] / "model_specs" / "XiaomiMiMo--MiMo-V2-Flash.yaml"
    config = copy.deepcopy(load_yaml(spec_file.read_text())["config"])
    config["add_swa_attention_sink_bias"] = False
    path = write_config(config)
    plan = estimate_plan(str(path), "--gpu", "A100-80GB", "-tp", "8", "-c", "32768", "--engine", "vllm==0.21.0")
    assert plan["engine"]["starts"], json.dumps(plan["engine"]["refusal"])


@pytest.mark.parametrize("release", ["0.20.0", "0.21.0"])
@pytest.mark.parametrize("gpu", ["B200", "A100-80GB"])
def test_mimo_fp8_needs_hopper_in_0_20_and_0_21(release, gpu):
    """FlashAttentionImpl.__init__ (flash_attn.py 0.20.0:653-656, 0.21.0:648-651) raises for a quantised cache unless
    flash_attn_supports_fp8(): FA3 on 9.x; the first layer (full, DiffKV) meets it before any sink. 0.22 drops it."""
    plan = estimate_plan(MIMO, "--gpu", gpu, "-tp", "8", "-c", "32768", "--engine", f"vllm=={release}",
                         "--kv-cache-dtype", "fp8")
    why = plan["engine"]["refusal"]
    assert not plan["engine"]["starts"] and why["field"] == "kv_dtype"
    assert why["reason"].endswith("NotImplementedError: FlashAttention does not support fp8 kv-cache on this device.")


@pytest.mark.parametrize("release,gpu", [("0.21.0", "H200"), ("0.22.0", "B200"), ("0.19.1", "B200")])
def test_mimo_fp8_starts_on_hopper_and_past_the_check(release, gpu):
    plan = estimate_plan(MIMO, "--gpu", gpu, "-tp", "8", "-c", "32768", "--engine", f"vllm=={release}",
                         "--kv-cache-dtype", "fp8")
    assert plan["engine"]["starts"], plan["engine"]["refusal"]


# ---- Gemma 4: TRITON_ATTN forced, and the dtypes it lacks ----

TRITON_WORDS = ("Selected backend AttentionBackendEnum.TRITON_ATTN is not valid for this configuration. Reason: "
                "['kv_cache_dtype not supported']")


@pytest.mark.parametrize("release,gpu", [("0.22.0", "B200"), ("0.23.0", "H200"), ("0.21.0", "A100-80GB"),
                                         ("0.24.0", "A100-80GB"), ("0.32.0", "A100-80GB"), ("0.32.0", "L40S")])
@pytest.mark.parametrize("dtype", ["nvfp4", "turboquant_k8v4"])
def test_gemma4_forced_triton_refuses_what_triton_lacks(release, gpu, dtype):
    """models/config.py Gemma4Config sets TRITON_ATTN in 0.19-0.23 (0.19.0 :97-111) and, from 0.24, where FA4 does
    not run (0.24.0 :100-111: not 9.x / 10.x / 11.x); the selected backend is validated alone (platforms/cuda.py
    0.23.0 :312-316) and triton_attn.py lists neither dtype (0.23.0, 0.32.0 supported_kv_cache_dtypes)."""
    plan = estimate_plan(E4B, "--gpu", gpu, "-c", "32768", "--engine", f"vllm=={release}", "--kv-cache-dtype", dtype)
    why = plan["engine"]["refusal"]
    assert not plan["engine"]["starts"] and why["field"] == "kv_dtype"
    assert why["reason"].endswith(TRITON_WORDS)


@pytest.mark.parametrize("release,gpu,dtype", [
    ("0.24.0", "B200", "nvfp4"), ("0.32.0", "H200", "nvfp4"), ("0.23.0", "A100-80GB", "fp8"),
    ("0.23.0", "H200", "fp8_per_token_head")])
def test_gemma4_dtypes_a_backend_takes_start(release, gpu, dtype):
    # FA4 GPUs from 0.24: the selector's FLASHINFER stores NVFP4 (SM100; SM90's fa2 path from 0.32); Triton's own list
    plan = estimate_plan(E4B, "--gpu", gpu, "-c", "32768", "--engine", f"vllm=={release}", "--kv-cache-dtype", dtype)
    assert plan["engine"]["starts"], plan["engine"]["refusal"]
