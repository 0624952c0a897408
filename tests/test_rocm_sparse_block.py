"""DeepSeek-V3.2-style sparse MLA (DSA) on ROCm: the KV-cache block vLLM pages it in, release by release
(kvplan/engines/vllm_sparse.py ROCM_BLOCK_RULES), held to vLLM's source read by hand (paths under vllm/ of the release
named) and to hand arithmetic; 0.32.0 also to tests/data/vllm_rocm_sparse_block.json, frozen from vLLM 0.32.0's own
functions by benchmarks/vllm_reference/rocm_sparse_block.py.

What vLLM does (CUDA keeps its 64: vllm_specs.SPARSE_MLA_BLOCK_RULES):
- 0.11.x: no sparse attention on ROCm at all (0.11.0 platforms/rocm.py:199-201, 0.11.1 / 0.11.2 :225).
- 0.12.0 (first) to 0.17.1 (last): platforms/rocm.py get_attn_backend_cls asserts block_size == 1 for a sparse layer
  ("Sparse MLA backend on ROCm only supports block size 1 for now.": 0.12.0 :228-230, 0.13.0 :207-209, 0.14.0 and
  0.14.1 :206-208, 0.15.0 and 0.15.1 :244-246, 0.16.0 :283-285, 0.17.0 and 0.17.1 :369-371), after raising for any fp8
  dtype (0.12.0 :224-227). check_and_update_config leaves an unset --block-size at 16 (0.12.0 :386-387, 0.17.0
  :658-673), so vLLM's default fails start-up with an AssertionError, as does --block-size 64; --block-size 1 starts.
- 0.18.0 on: no such assert; 16 unless --block-size says otherwise (0.18.0 rocm.py:692-707; 0.19 on
  platforms/interface.py update_block_size_for_backend keeps 16, both backends taking kernel blocks of 1:
  rocm_aiter_mla_sparse.py 0.18.0 :90-91 [1], 0.32.0 :362-363 [1, MultipleOf(16)]).
- The indexer's key cache pages at the same block: DeepseekV32IndexerCache.get_kv_cache_spec builds its
  MLAAttentionSpec with cache_config.block_size (models/deepseek_v2.py 0.12.0 :589-591, 0.17.0 :585-587), and its
  backend takes kernel blocks of 1 on ROCm (v1/attention/backends/mla/indexer.py 0.12.0 :28-29, 0.17.0 :39-40).

Hand arithmetic, tp 8, bf16, a 40 GiB (42,949,672,960-byte) budget, 1,000-token requests (a length no block divides,
so the rounding shows). A token over 61 layers: latent 576 x 2 = 1,152 bytes + indexer key 132 = 1,284 -> 78,324
bytes; one KV-cache group (the indexer groups with the MLA layers).
- block 1:  78,324 bytes a block      -> 548,359 blocks; 1,000 blocks a request  -> 548.359x
- block 16: 1,253,184 bytes a block   -> 34,272 blocks;  63 blocks (1,008 tokens) -> 544.0x
- block 64: 5,012,736 bytes a block   -> 8,568 blocks;   16 blocks (1,024 tokens) -> 535.5x
Requests held: (blocks - 1 null block) // blocks a request: 548, 543, 535."""

import json
from pathlib import Path

import pytest

from conftest import run_kvplan

from kvplan.api import estimate
from kvplan.engines.vllm import layer_specs
from kvplan.engines.vllm_settings import Settings
from kvplan.engines.vllm_sparse import ROCM
from kvplan.engines.vllm_versions import behaviour
from kvplan.model.precision import PRECISIONS
from kvplan.model.sources import resolve

V32, GLM = "deepseek-ai/DeepSeek-V3.2", "zai-org/GLM-5.2"
BUDGET = 40 * 2**30
LENGTH = 1000
ASSERT = "Sparse MLA backend on ROCm only supports block size 1 for now."  # 0.12.0 rocm.py:229, 0.17.0 :370
FROZEN = json.loads((Path(__file__).parent / "data" / "vllm_rocm_sparse_block.json").read_text())


def plan(release, block=None, gpu="MI300X", kv="auto", model=V32, length=LENGTH, quantization=None):
    return estimate(model, kv_cache_dtype=kv, tensor_parallel_size=8, gpu=gpu, kv_cache_memory_bytes=BUDGET,
                    max_model_len=length, engine=f"vllm=={release}", block_size=block, quantization=quantization)[0]


def test_hand_figures():
    per_token = 61 * (576 * 2 + 132)
    assert per_token == 78324
    assert (BUDGET // per_token, BUDGET // (16 * per_token), BUDGET // (64 * per_token)) == (548359, 34272, 8568)
    assert (-(-LENGTH // 16), -(-LENGTH // 64)) == (63, 16)
    assert (548358 // 1000, 34271 // 63, 8567 // 16) == (548, 543, 535)


# -- 0.12.0-0.17.1: the assert ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("release", ["0.12.0", "0.14.0", "0.17.0", "0.17.1"])
@pytest.mark.parametrize("block", [None, 16, 64])
def test_0_12_to_0_17_refuse_every_block_but_1(release, block):
    """rocm.py get_attn_backend_cls: `assert block_size == 1` (0.12.0 :228-230, 0.14.0 :206-208, 0.17.0 / 0.17.1
    :369-371); unset, check_and_update_config makes it 16 first (0.12.0 :386-387, 0.14.0 :426-441, 0.17.0 :658-673)."""
    p = plan(release, block)
    refusal = p.engine.refusal
    assert not p.engine.starts and not p.fits and p.max_concurrency == 0
    assert refusal.reason == ASSERT and refusal.configuration and refusal.field == "block_size"
    assert refusal.remedy == "it starts with block_size 1"  # the API's name for it (planned: 40 GiB hold it)
    assert p.block_size == (16 if block is None else block)  # the block vLLM asserted on


@pytest.mark.parametrize("release", ["0.12.0", "0.14.0", "0.17.1"])
def test_0_12_to_0_17_start_at_block_1(release):
    """--block-size 1 passes the assert; 0.12-0.20 log num_blocks // groups x block_size tokens on two lines."""
    p = plan(release, 1)
    e = p.engine
    assert e.starts and p.block_size == e.block_size == 1
    assert e.num_gpu_blocks == 548359 and e.blocks_per_request == 1000 and e.num_kv_cache_groups == 1
    assert e.gpu_kv_cache_tokens == 548359 and e.max_concurrency == pytest.approx(548.359)
    assert e.log_lines[-2:] == ("GPU KV cache size: 548,359 tokens",
                                "Maximum concurrency for 1,000 tokens per request: 548.36x")
    assert p.max_concurrency == 548 and p.kv_bytes_per_token_per_gpu == 78324


def test_the_indexer_keys_page_at_the_same_block_1():
    """DeepseekV32IndexerCache's spec takes cache_config.block_size (models/deepseek_v2.py 0.14.0 :589-591): every
    layer's page, latent and indexer key alike, is one token: 1,152 and 132 bytes."""
    settings = Settings(LENGTH, 8192, 1024, 2)
    specs, bs, _ = layer_specs(resolve(V32), 8, PRECISIONS["bf16"], settings, 1, behaviour("0.14.0"), "0.14.0",
                               ROCM)
    assert bs == 1 and {s.block_size for s in specs} == {1}
    assert sorted({(s.kind, s.page_bytes) for s in specs}) == [("indexer", 132), ("mla", 1152)]


def test_fp8_is_refused_before_the_block():
    """rocm.py raises for fp8 (0.14.0 :202-205) before it asserts the block (:206-208): the fp8 refusal, whatever the
    block, and it names the dtypes that start."""
    for block in (None, 1):
        refusal = plan("0.14.0", block, kv="fp8").engine.refusal
        assert refusal.reason == "ROCMAiterMLASparseBackend doesn't support fp8 kv_cache_dtype.", block


@pytest.mark.parametrize("release", ["0.16.0", "0.17.0"])
def test_glm5_on_rocm_meets_the_same_assert(release):
    """GlmMoeDsaForCausalLM is DeepseekV2ForCausalLM's subclass (0.16.0 models/registry.py:117,
    deepseek_v2.py:1502): the same sparse MLA layer, the same assert. Past it, the bf16 checkpoint's missing indexers
    stop the load (tests/test_glm52_indexers_s71.py); fp8 weights start."""
    assert plan(release, model=GLM).engine.refusal.reason == ASSERT
    assert "Following weights were not initialized" in plan(release, 1, model=GLM).engine.refusal.reason
    assert plan(release, 1, model=GLM, quantization="fp8").engine.starts


def test_0_11_refuses_sparse_attention_first():
    """0.11.2 rocm.py:225: no sparse attention on ROCm, whatever the block (the assert came with 0.12's backend)."""
    assert plan("0.11.2", 1).engine.refusal.reason == "Sparse Attention is not supported on ROCm."


# -- 0.18.0 on: 16 or --block-size ------------------------------------------------------------------------------------

def test_0_18_is_the_first_to_start_at_the_default_16():
    """0.18.0 rocm.py:692-707 sets 16 when --block-size is unset; the backends are validated without a block
    (:441). 0.18-0.20 still log num_blocks x block_size tokens."""
    e = plan("0.18.0").engine
    assert e.starts and e.block_size == 16 and e.num_gpu_blocks == 34272 and e.blocks_per_request == 63
    assert e.log_lines[-2:] == ("GPU KV cache size: 548,352 tokens",
                                "Maximum concurrency for 1,000 tokens per request: 544.00x")
    assert plan("0.18.0").max_concurrency == 543


@pytest.mark.parametrize("block, blocks, per_request, held", [(1, 548359, 1000, 548), (64, 8568, 16, 535)])
def test_0_18_takes_the_block_asked(block, blocks, per_request, held):
    p = plan("0.18.0", block)
    assert p.engine.starts and p.block_size == block and p.engine.num_gpu_blocks == blocks
    assert p.engine.blocks_per_request == per_request and p.max_concurrency == held


def test_0_32_default_16_logs_concurrency_tokens():
    """0.32.0: tokens = int(concurrency x max_model_len) on one line (v1/core/kv_cache_utils.py): 544.0 x 1,000."""
    e = plan("0.32.0").engine
    assert e.block_size == 16 and e.num_gpu_blocks == 34272
    assert e.log_lines[-1] == "GPU KV cache size: 544,000 tokens, Maximum concurrency for 1,000 tokens per request: " \
                              "544.00x"


def test_cuda_keeps_its_64_in_the_same_releases():
    """The ROCm rule is ROCm's: on an H200, 0.14.0 forces 64 whatever --block-size says (platforms/cuda.py 0.17.0
    :270-274 'Forcing kv cache block size to 64 for FlashMLASparse backend'), and 0.32.0 defaults to 64."""
    assert plan("0.14.0", 1, gpu="H200").block_size == 64 and plan("0.14.0", gpu="H200").engine.starts
    assert plan("0.32.0", gpu="H200").block_size == 64


# -- vLLM 0.32.0's own functions (frozen) ------------------------------------------------------------------------------

def test_frozen_0_32_backends_are_the_rocm_models():
    """models/deepseek_v32/amd/rocm.py:24-26 and :39-48: ROCM_AITER_MLA_SPARSE for the latent, DEEPSEEK_V32_INDEXER for
    the keys, both taking kernel blocks of 1; ROCm keeps interface.py's update_block_size_for_backend."""
    assert FROZEN["vllm"] == "0.32.0" and FROZEN["backends"] == ["ROCM_AITER_MLA_SPARSE", "DEEPSEEK_V32_INDEXER"]
    assert not FROZEN["rocm_overrides_update_block_size_for_backend"]
    assert all(sizes[0] == "1" for sizes in FROZEN["kernel_block_sizes"].values())


@pytest.mark.parametrize("row", FROZEN["update_block_size_for_backend"], ids=lambda r: str(r["user_block_size"]))
def test_frozen_0_32_block_matches_kvplan(row):
    """Unset -> 16; every --block-size kvplan takes (a power of two) kept as given."""
    p = plan("0.32.0", row["user_block_size"])
    assert "error" not in row and p.engine.starts and p.block_size == row["block_size"]


def test_frozen_0_32_pages_match_kvplan():
    """MLAAttentionSpec through the backend's customize_spec (align_blocks_to_rows: one 1,152-byte row, which divides
    every page): kvplan's latent page at each block."""
    settings = Settings(LENGTH, 16384, 1024, 2)
    for frozen in FROZEN["mla_pages"]:
        block = frozen["block_size"]
        assert frozen["page_bytes"] % frozen["block_stride_alignment"] == 0
        specs, bs, _ = layer_specs(resolve(V32), 8, PRECISIONS["bf16"], settings, block, behaviour("0.32.0"),
                                   "0.32.0", ROCM)
        assert bs == block and next(s for s in specs if s.kind == "mla").page_bytes == frozen["page_bytes"]


# -- the CLI: MI300X reaches the rule ---------------------------------------------------------------------------------

def test_cli_mi300x_on_0_14_names_the_block_that_starts():
    r = run_kvplan("estimate", V32, "--gpu", "mi300x", "-tp", "8", "--engine", "vllm==0.14.0")
    text = " ".join(r.stdout.split())
    assert r.returncode == 0, r.stderr
    assert ("refuses the configuration: Sparse MLA backend on ROCm only supports block size 1 for now; it starts with "
            "--block-size 1.") in text
    r = run_kvplan("estimate", V32, "--gpu", "mi300x", "-tp", "8", "--engine", "vllm==0.14.0", "--block-size", "1",
                   "--format", "json")
    assert r.returncode == 0, r.stderr
    row = json.loads(r.stdout)
    row = row["plans"][0] if isinstance(row, dict) else row[0]
    assert row["engine"]["starts"] and row["block_size"] == 1 and row["engine"]["refusal"] is None


def test_cli_check_fails_the_default_on_0_14():
    """`kvplan check` has no --block-size: at vLLM's default the deployment does not start, and says so."""
    r = run_kvplan("check", V32, "-tp", "8", "--gpu", "mi300x", "--engine", "vllm==0.14.0")
    assert r.returncode == 1 and "Sparse MLA backend on ROCm only supports block size 1" in " ".join(r.stdout.split())
