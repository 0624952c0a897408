"""Session 59: an MLA hybrid (Kimi-Linear: MLA + Kimi Delta Attention) whose attention block vLLM's CUDA platform
forces after the hybrid rule sized it does not start (vllm_backend_refusals.mla_hybrid_block_refusal).

vLLM lines read by hand in the unpacked sdists (vllm-X.Y.Z/vllm/...):
- Order: VllmConfig.__post_init__ runs try_verify_and_update_config (models/config.py HybridAttentionMambaModelConfig)
  before current_platform.check_and_update_config: config/vllm.py 0.11.1:348 then :609, 0.14.1:537 then :828,
  0.17.1:663 then :1020.
- The hybrid block: models/config.py 0.11.1:346-349 (0.14.1:387-393) aligns an MLA model's block to 64 (128 only when
  CUTLASS_MLA is chosen by hand), and without prefix caching (KimiLinearForCausalLM has no SupportsMambaPrefixCaching:
  kimi_linear.py 0.11.1:480-481, so MambaModelConfig turns it off) the block is 64 x cdiv(state page, 64 x MLA bytes a
  token) (0.11.1:423-425); the state page is padded to the block's MLA page (:447-452).
- The forcing: platforms/cuda.py 0.11.1:184-217 and 0.12.0 (capability 10.0 exactly: is_device_capability(100)),
  0.13.0 and 0.14.1:183-218 (is_device_capability_family(100)): with no backend chosen, CUTLASS_MLA, and "if
  block_size % 128 != 0: block_size = 128". 0.15.0 cuda.py:185-239 (0.16.0 :188-242) picks FLASHINFER_MLA for
  qk_nope_head_dim == 128 (Kimi-Linear's), which keeps 32 or a multiple of 64. Hopper: FLASHMLA keeps multiples of 64.
- The failure: get_kv_cache_groups, v1/core/kv_cache_utils.py 0.11.1:1160-1177 (pages not uniform: a bare
  NotImplementedError); 0.12.0 :885-921 and 0.14.1 :904-940 unify_kv_cache_spec_page_size: NotImplementedError "The
  page size of the layer is not divisible by the maximum page size" where the larger page is not a multiple of the
  smaller, else the AssertionError at 0.12.0:920 / 0.14.1:939 (a padded Mamba page does not grow with its block).
These were also run: vLLM's own HybridAttentionMambaModelConfig, CudaPlatformBase.check_and_update_config (capability
patched to 10.0) and get_kv_cache_groups of 0.11.1-0.17.1 on a CPU with mocked configs: hybrid 960 -> 128 and a
NotImplementedError at tp 2, 1920 kept at tp 1, 3776 -> 128 with fp8, 64 -> 128 and an AssertionError (0.14.1) at
tp 32; 0.15.0-0.17.1 keep every block.

Hand arithmetic (Kimi-Linear-48B-A3B-Instruct's config): a KDA layer's state per GPU is the short-conv window
3 (q, k, v) x (4 - 1) x 32 x 128 / tp bf16 values (2 bytes) + the recurrent 32 / tp x 128 x 128 float32 values;
at tp 1: 73,728 + 2,097,152 = 2,170,880 bytes; at tp 2: 1,085,440. An MLA token is 512 + 64 = 576 values: 1,152
bytes in bf16, 576 in fp8.
- tp 1, bf16: 64 x cdiv(2,170,880, 73,728) = 64 x 30 = 1920 = 15 x 128: kept, vLLM starts.
- tp 2, bf16: 64 x cdiv(1,085,440, 73,728) = 64 x 15 = 960 (7.5 x 128): forced to 128; pages 147,456 vs 1,105,920.
- tp 1, fp8: 64 x cdiv(2,170,880, 36,864) = 64 x 59 = 3776 (29.5 x 128): forced to 128.
- tp 32, bf16: the state 67,840 bytes -> 64 x cdiv(67,840, 73,728) = 64: forced to 128; the 73,728-byte state page
  divides the 147,456-byte MLA page.
"""

import json

import pytest

from conftest import run_kvplan

from kvplan.engines.vllm_specs import forced_mla_block, ununified_pages_error

KIMI = "moonshotai/Kimi-Linear-48B-A3B-Instruct"
REFUSING = ("0.11.1", "0.12.0", "0.13.0", "0.14.0", "0.14.1")
STARTING = ("0.15.0", "0.15.1", "0.16.0", "0.17.0", "0.17.1", "0.18.0")
B200, B300 = (10, 0), (10, 3)


def _plan(*args) -> dict:
    out = run_kvplan("estimate", KIMI, "-c", "8192", *args, "--format", "json")
    assert out.returncode in (0, 1), out.stderr
    return json.loads(out.stdout)["plans"][0]


@pytest.mark.parametrize("version", REFUSING)
def test_tp2_on_b200_is_refused_until_0_15(version):
    engine = _plan("--gpu", "B200", "-tp", "2", "--engine", f"vllm=={version}")["engine"]
    refusal = engine["refusal"]
    assert not engine["starts"] and refusal["configuration"] and refusal["field"] == "engine"
    assert "960-token attention block" in refusal["reason"]
    assert "CUTLASS_MLA's 128 tokens on compute capability 10.0" in refusal["reason"]
    assert "MLA page (147,456 bytes)" in refusal["reason"] and "padded to 1,105,920 bytes" in refusal["reason"]
    assert "NotImplementedError" in refusal["reason"]
    assert refusal["remedy"] == "it starts with --engine vllm==0.15.0 or newer"


@pytest.mark.parametrize("version", STARTING)
def test_tp2_on_b200_starts_from_0_15_at_block_960(version):
    plan = _plan("--gpu", "B200", "-tp", "2", "--engine", f"vllm=={version}")
    assert plan["engine"]["starts"] and plan["engine"]["refusal"] is None
    assert plan["block_size"] == 960


@pytest.mark.parametrize("version", REFUSING)
def test_tp1_on_b200_starts_at_a_multiple_of_128(version):
    plan = _plan("--gpu", "B200", "-tp", "1", "--engine", f"vllm=={version}")
    assert plan["engine"]["starts"] and plan["block_size"] == 1920


def test_fp8_cache_on_b200_is_refused():
    refusal = _plan("--gpu", "B200", "--kv-cache-dtype", "fp8", "--engine", "vllm==0.14.1")["engine"]["refusal"]
    assert "3776-token attention block" in refusal["reason"]
    assert _plan("--gpu", "B200", "--kv-cache-dtype", "fp8", "--engine", "vllm==0.15.0")["block_size"] == 3776


def test_b300_is_forced_from_0_13_only():
    """0.11.1 and 0.12.0 force CUTLASS_MLA on capability 10.0 exactly; B300 is 10.3."""
    assert _plan("--gpu", "B300", "-tp", "2", "--engine", "vllm==0.12.0")["engine"]["starts"]
    refusal = _plan("--gpu", "B300", "-tp", "2", "--engine", "vllm==0.13.0")["engine"]["refusal"]
    assert "compute capability 10.3" in refusal["reason"]


def test_hopper_keeps_the_block():
    plan = _plan("--gpu", "H200", "-tp", "2", "--engine", "vllm==0.14.1")
    assert plan["engine"]["starts"] and plan["block_size"] == 960


def test_tp32_raises_the_assertion_from_0_12():
    assert "get_kv_cache_groups: AssertionError" in \
        _plan("--gpu", "B200", "-tp", "32", "--engine", "vllm==0.14.1")["engine"]["refusal"]["reason"]
    assert "get_kv_cache_groups: NotImplementedError" in \
        _plan("--gpu", "B200", "-tp", "32", "--engine", "vllm==0.11.1")["engine"]["refusal"]["reason"]


def test_an_older_release_remedy_skips_the_refusing_run():
    """0.11.0 does not register KimiLinearForCausalLM (registry.py 0.11.1:122 first); at tp 2 on a B200 the nearest
    release that starts is 0.15.0, not 0.11.1."""
    assert _plan("--gpu", "B200", "-tp", "2", "--engine", "vllm==0.11.0")["engine"]["refusal"]["remedy"] == \
        "it starts with --engine vllm==0.15.0 or newer"
    assert _plan("--gpu", "B200", "-tp", "1", "--engine", "vllm==0.11.0")["engine"]["refusal"]["remedy"] == \
        "it starts with --engine vllm==0.11.1 or newer"


@pytest.mark.parametrize("block, version, capability, forced", [
    (960, "0.11.1", B200, 128), (960, "0.14.1", B200, 128), (1920, "0.14.1", B200, None),
    (960, "0.12.0", B300, None), (960, "0.13.0", B300, 128), (960, "0.15.0", B200, None),
    (960, "0.18.0", B200, None), (960, "0.14.1", (9, 0), None), (1000, "0.14.1", (9, 0), 64)])
def test_forced_mla_block(block, version, capability, forced):
    assert forced_mla_block(block, False, version, capability) == forced


@pytest.mark.parametrize("pages, version, error", [
    ((147_456, 1_105_920), "0.14.1", "NotImplementedError"), ((147_456, 73_728), "0.14.1", "AssertionError"),
    ((147_456, 73_728), "0.11.1", "NotImplementedError")])
def test_ununified_pages_error(pages, version, error):
    assert ununified_pages_error(pages, version) == error


# Architectures a later registry.py adds (keys of _TEXT_GENERATION_MODELS / _MULTIMODAL_MODELS, read by hand in each
# release and the one before it): (architecture, the last release without it, the first with it, its line there).
LATE_ARCHITECTURES = (
    ("NemotronHPuzzleForCausalLM", "0.15.1", "0.16.0", 168),
    ("GlmOcrForConditionalGeneration", "0.15.1", "0.16.0", 342),
    ("InternS1ProForConditionalGeneration", "0.15.1", "0.16.0", 367),
    ("OpenPanguVLForConditionalGeneration", "0.15.1", "0.16.0", 421),
    ("SarvamMLAForCausalLM", "0.17.1", "0.18.0", 197),
    ("ExaoneMoeForCausalLM", "0.26.0", "0.27.0", 100),  # 0.26.0 has only the ExaoneMoEForCausalLM key (:99)
    ("MiniCPMV4_7ForConditionalGeneration", "0.31.0", "0.32.0", 519),
)


@pytest.mark.parametrize("architecture, before, first, line", LATE_ARCHITECTURES)
def test_late_architectures_are_refused_before_their_release(architecture, before, first, line):
    from kvplan.engines.vllm_config_read import architecture_refusal

    refusal = architecture_refusal(architecture, before)
    assert refusal.reason.startswith(f"Model architectures ['{architecture}'] are not supported for now")
    assert refusal.field == "engine" and refusal.options == (f"vllm=={first}",) and refusal.onward == "newer"
    assert architecture_refusal(architecture, first) is None
    assert architecture_refusal(architecture, "0.34.0") is None


def test_exaone_moe_old_spelling_is_refused_where_unlisted():
    """ExaoneMoEForCausalLM: registry.py 0.14.0:101 ... 0.26.0:99, absent 0.27.0-0.31.0, back at 0.32.0:102: first
    listed at 0.14.0 and dropped in between (vllm_registry.UNLISTED; tests/test_late_arch_early_s59.py)."""
    from kvplan.engines.vllm_config_read import ADDED_ARCHITECTURES, architecture_refusal

    assert ADDED_ARCHITECTURES["ExaoneMoEForCausalLM"] == "0.14.0"
    assert [architecture_refusal("ExaoneMoEForCausalLM", v) is None for v in ("0.26.0", "0.27.0", "0.31.0", "0.32.0")
            ] == [True, False, False, True]
