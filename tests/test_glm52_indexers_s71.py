"""GLM-5.2's shared lightning indexers (IndexShare) in vLLM releases before 0.24, read in vLLM's sources (paths under
vllm/ of the release named):

- 0.16.0-0.20.2 model_executor/models/deepseek_v2.py DeepseekV2MLAAttention (0.16.0 :832-853, 0.20.0 :976-997)
  builds an Indexer, and with it a DeepseekV32IndexerCache, on every layer of a config with index_topk; no
  index_topk_freq / index_skip_topk_offset / index_topk_pattern is read. 0.21.0-0.22.1 (:986-1023) read freq and
  pattern for skip_topk only, under use_index_cache; 0.23.0 (:999-1038) reads all three for skip_topk but still
  builds every layer's indexer. 0.24.0 (:1003-1049, `if self.is_v32 and (not _skip_topk or is_mtp_layer)`) on build
  an indexer only where the config says (0.32.0 models/deepseek_v32/attention.py:169-190).
- The checkpoint has no indexer for the 57 sharing layers (0.32.0 models/deepseek_v32/nvidia/model.py:420 looks every
  checkpoint tensor up among the parameters, so one would fail to load). The loader's check of unset parameters
  runs for an unquantised model only: model_loader/default_loader.py 0.16.0 :300-306 (every parameter), 0.21.0-0.23.0
  :403-436 (modules with a quant method excused, the indexer's k_norm LayerNorm not): "ValueError: Following weights
  were not initialized from checkpoint: {...}". With fp8 weights the check is off and vLLM starts.

Hand arithmetic per token on every TP rank (latents and keys replicated): a bf16 latent 576 x 2 = 1,152 bytes, an
fp8_ds_mla one 656 (512 fp8 + 4 float32 scales + 64 bf16 rope values; FLASHMLA_SPARSE, Hopper's only sparse backend
for fp8 to 0.24), an indexer key 132 (128 fp8 + one float32 scale):
- vLLM 0.24+: 78 latents + 21 keys: bf16 78 x 1,152 + 21 x 132 = 92,628; fp8_ds_mla 78 x 656 + 21 x 132 = 53,940.
- vLLM 0.16-0.23: 78 latents + 78 keys: bf16 78 x 1,284 = 100,152; fp8_ds_mla 78 x 788 = 61,464.
- DeepSeek-V3.2 (61 layers, an indexer on each in every release): bf16 61 x 1,284 = 78,324; fp8_ds_mla 61 x 788 =
  48,068.
Blocks of 64 tokens in 40 GiB (42,949,672,960 bytes): 7,244 / 6,700 (bf16), 12,441 / 10,918 (fp8_ds_mla), V3.2
8,568 / 13,961."""

import pytest

from kvplan.api import estimate
from kvplan.engines.vllm_index_share import (builds_every_indexer, config_leaders, first_sharing_release,
                                             index_share_refusal, index_view)
from kvplan.engines.vllm_kv_dtype import release_view
from kvplan.engines.vllm_remedy import release_boundaries
from kvplan.engines.vllm_speculative import speculative_config, with_drafter
from kvplan.model.kinds import IndexerKeys, MLALatent
from kvplan.model.sources import resolve

GLM, V32 = "zai-org/GLM-5.2", "deepseek-ai/DeepSeek-V3.2"
BUDGET = 40 * 2**30
BLOCK = 64
LATENT = {"bf16": 576 * 2, "fp8_ds_mla": 656}
KEY = 132
INDEXER_LAYERS = [0, 1, 2] + list(range(6, 78, 4))  # max(i - 3 + 1, 0) % 4 == 0


def per_token(latents: int, keys: int, latent: str) -> int:
    return latents * LATENT[latent] + keys * KEY


def run(model: str, release: str, kv: str = "auto", **flags):
    (p,) = estimate(model, gpu="H200", tensor_parallel_size=8, max_model_len=131072, kv_cache_memory_bytes=BUDGET,
                    kv_cache_dtype=kv, engine=f"vllm=={release}", **flags)
    return p


def test_hand_figures():
    assert per_token(78, 21, "bf16") == 92628 and per_token(78, 78, "bf16") == 100152
    assert per_token(78, 21, "fp8_ds_mla") == 53940 and per_token(78, 78, "fp8_ds_mla") == 61464
    assert BUDGET // (BLOCK * 92628) == 7244 and BUDGET // (BLOCK * 100152) == 6700
    assert BUDGET // (BLOCK * 53940) == 12441 and BUDGET // (BLOCK * 61464) == 10918


# (release, --kv-cache-dtype, latent kept, indexer keys a token): fp8 weights, so every release loads the model
CASES = [
    ("0.16.0", "auto", "bf16", 78),
    ("0.20.0", "auto", "bf16", 78),
    ("0.20.2", "auto", "bf16", 78),
    ("0.22.1", "auto", "bf16", 78),
    ("0.23.0", "auto", "bf16", 78),  # reads the keys for skip_topk, still an indexer on every layer
    ("0.24.0", "auto", "bf16", 21),
    ("0.31.0", "auto", "bf16", 21),
    ("0.32.0", "auto", "bf16", 21),
    ("0.20.0", "fp8", "fp8_ds_mla", 78),
    ("0.23.0", "fp8", "fp8_ds_mla", 78),
    ("0.24.0", "fp8", "fp8_ds_mla", 21),
]


@pytest.mark.parametrize("release, kv, latent, keys", CASES)
def test_per_token_and_blocks_by_release(release, kv, latent, keys):
    p = run(GLM, release, kv, quantization="fp8")
    token = per_token(78, keys, latent)
    assert p.engine.starts, p.engine.refusal
    assert p.kv_bytes_per_token_per_gpu == token
    assert p.engine.num_gpu_blocks == BUDGET // (BLOCK * token)


@pytest.mark.parametrize("release", ["0.16.0", "0.17.0", "0.20.0", "0.21.0", "0.22.1", "0.23.0"])
def test_unquantised_glm_fails_to_load_before_0_24(release):
    p = run(GLM, release)
    refusal = p.engine.refusal
    assert not p.engine.starts and p.max_concurrency == 0
    assert refusal.configuration and refusal.field == "engine"
    assert "ValueError: Following weights were not initialized from checkpoint: " in refusal.reason
    assert "'model.layers.3.self_attn.indexer.k_norm.weight'" in refusal.reason  # the first sharing layer
    assert "57 layers" in refusal.reason
    assert refusal.remedy == "it starts with engine vllm==0.24.0 or newer"  # the API names fields so
    assert p.kv_bytes_per_token_per_gpu == per_token(78, 78, "bf16")  # what that release would have built


@pytest.mark.parametrize("release", ["0.24.0", "0.29.0", "0.32.0"])
def test_unquantised_glm_starts_from_0_24(release):
    p = run(GLM, release)
    assert p.engine.starts and p.kv_bytes_per_token_per_gpu == per_token(78, 21, "bf16")
    assert p.engine.num_gpu_blocks == 7244


@pytest.mark.parametrize("release", ["0.12.0", "0.16.0", "0.20.0", "0.23.0", "0.24.0", "0.32.0"])
def test_deepseek_v32_has_its_own_indexer_everywhere_in_every_release(release):
    p = run(V32, release)
    assert p.engine.starts and p.kv_bytes_per_token_per_gpu == per_token(61, 61, "bf16") == 78324
    assert p.engine.num_gpu_blocks == 8568
    spec = resolve(V32)
    assert release_view(spec, release).layers == spec.layers
    assert index_share_refusal(spec, release) is None


def test_fp8_ds_mla_on_deepseek_v32_unmoved():
    for release in ("0.20.0", "0.32.0"):
        p = run(V32, release, "fp8")
        assert p.kv_bytes_per_token_per_gpu == per_token(61, 61, "fp8_ds_mla") == 48068
        assert p.engine.num_gpu_blocks == 13961


def test_release_boundaries():
    assert [builds_every_indexer(r) for r in ("0.11.0", "0.16.0", "0.20.2", "0.21.0", "0.23.0", "0.24.0", "0.25.1",
                                              "0.30.0", "0.32.0", "0.34.0")] == [True] * 5 + [False] * 5
    assert first_sharing_release() == "0.24.0" and "0.24.0" in release_boundaries()


def _latents(layers) -> list:
    return [layer for layer in layers if isinstance(layer, MLALatent)]


def test_the_view_gives_every_layer_an_indexer_and_goes_back():
    spec = resolve(GLM)
    old = release_view(spec, "0.20.0")
    assert len(old.layers) == 2 * 78 and sum(type(layer) is IndexerKeys for layer in old.layers) == 78
    assert all(latent.leads_index_group for latent in _latents(old.layers))
    assert [i for i, lead in enumerate(config_leaders(old)) if lead] == INDEXER_LAYERS  # the config's, kept
    assert any(note.startswith("Shared indexers: vLLM 0.20.0") and "57 layers" in note for note in old.notes)
    again = release_view(old, "0.32.0")  # a remedy's other release starts from the config's layers
    assert again.layers == spec.layers and again.notes == spec.notes and not again.config_index_leaders
    assert "(it reads them only to skip those layers' top-k)" in release_view(old, "0.23.0").notes[-1]
    assert "only to skip" not in old.notes[-1]


def test_an_mtp_drafter_keeps_its_own_indexer_through_the_view():
    """A view of a drafted spec (the drafter's layers after the decoder layers') for another release keeps the
    drafter's leading latent and its keys, and goes back to the config's layers."""
    config = speculative_config('{"method": "mtp", "num_speculative_tokens": 1}')
    drafted = with_drafter(resolve(GLM), config, "0.32.0")
    assert len(drafted.layers) == 78 + 21 + 2
    old = index_view(drafted, "0.20.0")
    assert len(old.layers) == 2 * 78 + 2 and old.layers[-2:] == drafted.layers[-2:]
    assert index_view(old, "0.32.0").layers == drafted.layers


def test_a_pattern_config_names_its_first_sharing_layer():
    """index_topk_pattern "FSSF" over 6 layers: layers 1 and 2 reuse a top-k (vLLM 0.32 reads it); 0.23 builds six
    indexers and, unquantised, stops at layer 1's."""
    from kvplan.model.parse import parse_config
    from tests.test_shared_indexers import _config

    spec = parse_config({**_config(), "num_hidden_layers": 6, "index_topk_pattern": "FSSF"}, "test")
    assert config_leaders(spec) == (True, False, False, True, True, True)
    viewed = index_view(spec, "0.23.0")
    assert sum(type(layer) is IndexerKeys for layer in viewed.layers) == 6
    refusal = index_share_refusal(viewed, "0.23.0")
    assert "model.layers.1.self_attn.indexer" in refusal.reason and "2 layers" in refusal.reason
    assert index_share_refusal(viewed, "0.24.0") is None and index_view(viewed, "0.24.0").layers == spec.layers
