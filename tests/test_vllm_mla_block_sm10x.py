"""Dense MLA (DeepSeek-V3: no indexer) block size by vLLM release on Blackwell (SM10x) and Hopper
(kvplan/engines/vllm_specs.py DENSE_MLA_BLOCK_RULES), held to vLLM's source read by hand (vllm-X/vllm, paths below)
and to hand arithmetic.

What vLLM does with --block-size unset (all cache dtypes alike up to 0.17):
- 0.11.0 platforms/cuda.py:142-177 check_and_update_config: compute capability 10.0 exactly (is_device_capability(100),
  :144) forces CUTLASS_MLA's 128 (:169-172), Hopper FlashMLA's 64 (is_flashmla_supported, major 9: :163-167); any
  other block, --block-size included, is replaced.
- 0.11.1-0.12.0 (0.11.1 :184-225): the same backends, but a block that is a multiple of theirs is kept (:206-214,
  `% 64`, `% 128`); Blackwell still means 10.0 exactly (:186), so a B300 (10.3) keeps 16 (TRITON_MLA).
- 0.13.0-0.14.1 (:183-226): Blackwell is is_device_capability_family(100) (:185), B300 included: 128.
- 0.16.0-0.17.1 (0.16.0 :188-242, 0.17.0 :205-263): SM10x with qk_nope_head_dim == 128 forces FLASHINFER_MLA
  (0.16.0 :193-204), a block neither 32 nor a multiple of 64 becoming 64 (:234-242); Hopper FlashMLA's 64.
- 0.18.0 on: platforms/interface.py update_block_size_for_backend (0.18.0 :427-474) keeps --block-size (:434) or
  takes the backend's get_preferred_block_size(DEFAULT_BLOCK_SIZE) (v1/attention/backend.py:189-197: the default
  when a kernel block divides it, else the smallest kernel block). SM10x tries FLASHINFER_MLA first (platforms/
  cuda.py 0.18.0 :55-75, 0.33.0 :97-133), kernel blocks [32, 64] (flashinfer_mla.py 0.18.0 :49-50, 0.33.0 :204-205)
  for auto / bfloat16 / fp8 / fp8_e4m3 (:40-46): 16 -> 32. Hopper: FLASH_ATTN_MLA (16-bit caches only, MultipleOf
  16: flashattn_mla.py 0.18.0 :47-55) keeps 16; fp8 falls to FLASHMLA ([64], flashmla.py 0.18.0 :59-60): 64.
- 0.34.0: DEFAULT_BLOCK_SIZE 64 (config/cache.py:185), which FLASHINFER_MLA, FLASH_ATTN_MLA and FLASHMLA all take.

Hand arithmetic, DeepSeek-V3 at tp 8 (61 MLA layers, a latent of kv_lora_rank 512 + rope 64 = 576 values on every
rank), a 40 GiB (42,949,672,960-byte) budget, 10,000-token requests:
- a page (one block of one layer): block x 1,152 bytes in bf16, block x 576 in fp8; a block of all 61 layers:
  block x 70,272 / x 35,136 bytes.
- bf16: 16 -> 1,124,352 B, 38,199 blocks; 32 -> 2,248,704 B, 19,099; 64 -> 4,497,408 B, 9,549; 128 -> 8,994,816 B,
  4,774. fp8: 16 -> 76,398 blocks; 32 -> 38,199; 64 -> 19,099; 128 -> 9,549.
- blocks a request: ceil(10,000 / block): 625, 313 (312.5), 157 (156.25), 79 (78.125)."""

import pytest

from kvplan.api import estimate
from kvplan.engines.vllm import layer_specs
from kvplan.engines.vllm_settings import Settings
from kvplan.engines.vllm_sparse import ROCM
from kvplan.engines.vllm_specs import attention_block_size, dense_mla_backend
from kvplan.engines.vllm_versions import behaviour
from kvplan.model.kinds import MLALatent
from kvplan.model.precision import PRECISIONS
from kvplan.model.sources import resolve

V3 = "deepseek-ai/DeepSeek-V3"
BUDGET = 40 * 2**30
LENGTH = 10_000
HOPPER, AMPERE, B200, B300, SM120 = (9, 0), (8, 0), (10, 0), (10, 3), (12, 0)
PAGE = {"bf16": 1152, "fp8": 576}  # bytes of one token of one layer's latent
BLOCKS = {  # the pool at 40 GiB by (block, dtype), hand arithmetic above
    (16, "bf16"): 38199, (32, "bf16"): 19099, (64, "bf16"): 9549, (128, "bf16"): 4774,
    (16, "fp8"): 76398, (32, "fp8"): 38199, (64, "fp8"): 19099, (128, "fp8"): 9549,
}
PER_REQUEST = {16: 625, 32: 313, 64: 157, 128: 79}

# vLLM release -> (B200 block, H200 bf16 block, H200 fp8 block) with --block-size unset (module docstring)
RELEASES = [
    ("0.11.0", 128, 64, 64), ("0.11.1", 128, 64, 64), ("0.11.2", 128, 64, 64), ("0.12.0", 128, 64, 64),
    ("0.13.0", 128, 64, 64), ("0.14.0", 128, 64, 64), ("0.14.1", 128, 64, 64),
    ("0.16.0", 64, 64, 64), ("0.17.0", 64, 64, 64), ("0.17.1", 64, 64, 64),
    ("0.18.0", 32, 16, 64), ("0.19.0", 32, 16, 64), ("0.20.0", 32, 16, 64), ("0.24.0", 32, 16, 64),
    ("0.28.0", 32, 16, 64), ("0.31.0", 32, 16, 64), ("0.32.0", 32, 16, 64), ("0.33.0", 32, 16, 64),
    ("0.34.0", 64, 64, 64),
]


def plan(version: str, gpu: str, kv: str, block_size=None):
    return estimate(V3, kv_cache_dtype=kv, tensor_parallel_size=8, gpu=gpu, kv_cache_memory_bytes=BUDGET,
                    max_model_len=LENGTH, engine=f"vllm=={version}", block_size=block_size)[0]


def assert_paged_at(p, block: int, dtype: str):
    assert p.block_size == p.engine.block_size == block
    assert p.engine.num_gpu_blocks == BLOCKS[block, dtype]
    assert p.engine.blocks_per_request == PER_REQUEST[block]


@pytest.mark.parametrize("version,b200,_h,_h8", RELEASES)
@pytest.mark.parametrize("kv,dtype", [("auto", "bf16"), ("fp8", "fp8")])
def test_b200_block_by_release(version, b200, _h, _h8, kv, dtype):
    assert_paged_at(plan(version, "B200", kv), b200, dtype)


@pytest.mark.parametrize("version,_b,h200,h200_fp8", RELEASES)
def test_h200_block_by_release(version, _b, h200, h200_fp8):
    """Hopper: FlashMLA's 64 forced whatever the dtype up to 0.17; from 0.18 FLASH_ATTN_MLA keeps a 16-bit cache at
    the default block and FLASHMLA (fp8) prefers 64."""
    assert_paged_at(plan(version, "H200", "auto"), h200, "bf16")
    assert_paged_at(plan(version, "H200", "fp8"), h200_fp8, "fp8")


@pytest.mark.parametrize("version,block", [("0.14.0", 128), ("0.17.0", 64), ("0.18.0", 32), ("0.33.0", 32),
                                           ("0.34.0", 64)])
def test_page_bytes_on_b200(version, block):
    """MLAAttentionSpec.page_size_bytes: block x 576 values x 2 bytes (bf16), on every one of the 61 layers."""
    settings = Settings(LENGTH, 8192, 1024, 2)
    for name, dtype in (("bf16", "bf16"), ("fp8_e4m3", "fp8")):
        specs, bs, _ = layer_specs(resolve(V3), 8, PRECISIONS[name], settings, None, behaviour(version), version, B200)
        assert bs == block and len(specs) == 61
        assert {(s.kind, s.block_size, s.page_bytes) for s in specs} == {("mla", block, block * PAGE[dtype])}


def test_b300_is_blackwell_only_from_0_13():
    """0.11.x-0.12.0 ask for compute capability 10.0 exactly (0.11.1 cuda.py:186): a B300 (10.3) forces nothing and
    keeps 16; 0.13.0 asks for the 10.x family (:185): 128."""
    assert_paged_at(plan("0.12.0", "B300", "auto"), 16, "bf16")
    assert_paged_at(plan("0.13.0", "B300", "auto"), 128, "bf16")
    assert_paged_at(plan("0.17.0", "B300", "auto"), 64, "bf16")
    assert_paged_at(plan("0.32.0", "B300", "fp8"), 32, "fp8")


@pytest.mark.parametrize("version,gpu,asked,paged", [
    ("0.11.0", "H200", 128, 64),  # :164 `block_size != 64`: even a multiple is replaced
    ("0.11.0", "B200", 64, 128),  # :169 `block_size != 128` (256 is no --block-size choice of 0.11.0: cache.py:24)
    ("0.12.0", "H200", 128, 128),  # :205 `% 64 != 0`: multiples kept
    ("0.12.0", "H200", 16, 64),
    ("0.14.0", "B200", 64, 128),  # :213 `% 128 != 0`
    ("0.14.0", "B200", 256, 256),
    ("0.17.0", "B200", 16, 64),  # :257-261: 32 or a multiple of 64 kept, else 64
    ("0.17.0", "B200", 32, 32),
    ("0.17.0", "B200", 128, 128),
    ("0.18.0", "B200", 16, 16),  # kept (interface.py:434): FLASHINFER_MLA and CUTLASS_MLA refuse it, TRITON_MLA runs
    ("0.32.0", "B200", 64, 64),
    ("0.32.0", "H200", 32, 32),
])
def test_a_given_block_size(version, gpu, asked, paged):
    p = plan(version, gpu, "auto", block_size=asked)
    assert p.block_size == p.engine.block_size == paged
    assert p.engine.num_gpu_blocks == BUDGET // (paged * 61 * PAGE["bf16"])


def test_backends_named():
    assert [dense_mla_backend(False, v, B200) for v in ("0.11.0", "0.14.0", "0.16.0", "0.18.0", "0.34.0")] == \
        ["CUTLASS_MLA", "CUTLASS_MLA", "FLASHINFER_MLA", "FLASHINFER_MLA", "FLASHINFER_MLA"]
    assert dense_mla_backend(False, "0.12.0", B300) == "TRITON_MLA"
    assert [dense_mla_backend(q, v, HOPPER) for q in (False, True) for v in ("0.17.1", "0.18.0")] == \
        ["FLASHMLA", "FLASH_ATTN_MLA", "FLASHMLA", "FLASHMLA"]
    assert dense_mla_backend(True, "0.32.0", ()) == "FLASHMLA"  # (): Hopper's rules


def test_ampere_and_sm12x_keep_the_default():
    """Ampere and SM12x: only TRITON_MLA (cuda.py 0.24.0 :130-134 lists TRITON_MLA first for major 12; FLASH_ATTN_MLA
    wants major 9, FLASHMLA's dense kernel Hopper, FLASHINFER_MLA / CUTLASS_MLA major 10), MultipleOf(16): the
    release's default whatever the dtype; up to 0.17 nothing is forced there (is_flashmla_dense_supported: major 9)."""
    mla = (MLALatent(512, 64),)
    for capability in (AMPERE, SM120):
        for quantized in (False, True):
            assert [attention_block_size(mla, quantized, None, v, capability) for v in ("0.14.0", "0.32.0", "0.34.0")] \
                == [16, 16, 64]


def test_rocm_and_sparse_mla_unchanged():
    """Outside this rule: ROCm keeps kvplan's earlier dense rule, sparse MLA its own (SPARSE_MLA_BLOCK_RULES)."""
    mla, sparse = (MLALatent(512, 64),), (MLALatent(512, 64, index_topk=2048),)
    assert attention_block_size(mla, True, None, "0.32.0", ROCM) == 64
    assert attention_block_size(mla, False, None, "0.32.0", ROCM) == 16
    assert attention_block_size(sparse, False, None, "0.32.0", B200) == 64
    assert attention_block_size(sparse, False, 16, "0.14.0", B200) == 64
