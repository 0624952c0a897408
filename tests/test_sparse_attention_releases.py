"""DeepSeek-V3.2's sparse attention by vLLM release (--engine vllm==X): where a release's rules differ from 0.32.0's.
Expected values are hand arithmetic from the rules read in each release's sources (cited in
kvplan/engines/vllm_kv_dtype.py SPARSE_MLA_AUTO, vllm_specs.py SPARSE_MLA_BLOCK_RULES, vllm_budget.py
INDEX_GROUP_RULES):
- 0.11.0 turns `--kv-cache-dtype auto` into the 656-byte fp8_ds_mla entry; 0.11.1 on keeps bf16 (1,152 bytes);
- 0.11-0.17 force the block to 64 whatever --block-size says; 0.18 on take multiples of 64 and refuse others;
- top-k buffers: the shared 8,192 x 2,048 int32 one only up to 0.29, per-layer index groups from 0.30.
Every release keeps the indexer's 132 raw bytes a token and one cache group, as 0.32.0 does."""

import json

from conftest import run_kvplan

from kvplan.engines.vllm_settings import resolve_settings
from kvplan.engines.vllm_budget import sparse_index_buffers
from kvplan.model.sources import resolve

V32 = "deepseek-ai/DeepSeek-V3.2"
GiB = 2**30
MEMORY = 40 * GiB
LATENT_BF16, LATENT_DS_MLA, KEY = 576 * 2, 656, 128 + 4  # bytes a token of one layer


def _plan(release=None, *args):
    engine = ("--engine", f"vllm=={release}") if release else ()
    out = run_kvplan("estimate", V32, "--gpu", "h100", "--tp", "8", "--format", "json", "--max-model-len", "32768",
                     "--kv-cache-memory-bytes", str(MEMORY), *engine, *args)
    assert out.returncode == 0, out.stderr
    (plan,) = json.loads(out.stdout)["plans"]
    return plan


def _blocks(plan) -> tuple:
    return plan["kv_dtype"], plan["block_size"], plan["engine"]["num_gpu_blocks"]


def test_auto_is_fp8_ds_mla_in_0_11_0_only():
    """61 layers x 64 tokens x (latent + key) a block: 3,076,352 bytes with the 656-byte entry, 5,012,736 in bf16."""
    ds_mla, bf16 = MEMORY // (61 * 64 * (LATENT_DS_MLA + KEY)), MEMORY // (61 * 64 * (LATENT_BF16 + KEY))
    assert (ds_mla, bf16) == (13961, 8568)
    first = _plan("0.11.0")
    assert _blocks(first) == ("fp8_ds_mla", 64, ds_mla)
    assert first["kv_bytes_per_token_per_gpu"] == 61 * (656 + 132)
    assert first["engine"]["gpu_kv_cache_tokens"] == ds_mla * 64  # 0.11: num_blocks // groups x block_size
    assert _blocks(_plan("0.11.1")) == ("bf16", 64, bf16)
    assert _blocks(_plan()) == ("bf16", 64, bf16)  # 0.32.0
    # an explicit bfloat16 stays bf16 even in 0.11.0 (its check runs after the auto one); fp8 is the entry in all
    assert _blocks(_plan("0.11.0", "--kv-cache-dtype", "bfloat16")) == ("bf16", 64, bf16)
    for release in ("0.11.0", "0.15.1", "0.24.0", None):
        assert _blocks(_plan(release, "--kv-cache-dtype", "fp8"))[2] == ds_mla


def test_block_size_forced_to_64_before_0_18():
    """0.17 ignores --block-size (64 whatever); 0.18 keeps 128 (half the blocks, twice the tokens each) and finds
    no backend for 32."""
    bf16_64, bf16_128 = MEMORY // (61 * 64 * 1284), MEMORY // (61 * 128 * 1284)
    assert (bf16_64, bf16_128) == (8568, 4284)
    for size in ("32", "128"):
        assert _blocks(_plan("0.17.0", "--block-size", size)) == ("bf16", 64, bf16_64)
    assert _blocks(_plan("0.18.0", "--block-size", "128")) == ("bf16", 128, bf16_128)
    assert _blocks(_plan(None, "--block-size", "128")) == ("bf16", 128, bf16_128)
    refused = run_kvplan("estimate", V32, "--gpu", "h100", "--tp", "8", "--engine", "vllm==0.18.0",
                         "--block-size", "32")
    assert refused.returncode == 0 and "No valid attention backend found for sparse MLA at block size 32" in \
        " ".join(refused.stdout.split())


def test_topk_buffers_by_release():
    """At 32K on an H200 (8,192 batched tokens, 1,024 sequences): the shared 8,192 x 2,048 int32 buffer in every
    release; from 0.30, 61 index groups of (1,024 + 1) rows x (2,048 indices + 1 count), and in 0.30 alone a
    1,024-entry request-id arange a group."""
    spec, settings = resolve(V32), resolve_settings(32768, "NVIDIA H200", 141 * 10**9)
    shared = 8192 * 2048 * 4
    groups = 61 * 1025 * 2049 * 4
    assert sparse_index_buffers(spec, settings, version="0.11.0") == shared
    assert sparse_index_buffers(spec, settings, version="0.29.0") == shared
    assert sparse_index_buffers(spec, settings, version="0.30.0") == shared + groups + 61 * 1024 * 4
    assert sparse_index_buffers(spec, settings, version="0.31.0") == shared + groups == shared + 512454900
    assert sparse_index_buffers(spec, settings) == shared + groups  # 0.32.0


def test_the_weights_term_carries_the_release_buffers():
    """The budget's weights term (the model's construction) differs between 0.29.0 and 0.31.0 by the groups alone:
    the checkpoint, its dequantised kv_b_proj copies and the shared buffer are the same in both."""
    def weights(release):
        out = run_kvplan("estimate", V32, "--gpu", "h200", "--tp", "8", "--format", "json", "--max-model-len",
                         "32768", "--engine", f"vllm=={release}")
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)["plans"][0]["budget"]["weights_bytes_per_gpu"]

    assert weights("0.31.0") - weights("0.29.0") == 61 * 1025 * 2049 * 4
    assert weights("0.30.0") - weights("0.31.0") == 61 * 1024 * 4
