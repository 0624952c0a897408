"""GLM-5.2's shared indexers (DeepSeek sparse attention with index_topk_freq): which layers run an indexer, the
cache a token takes, vLLM 0.32.0's one cache group and its blocks, the decode read, the indexers' weights and top-k
buffers, MTP and pipeline stages, and the refusals. Expected values are hand arithmetic from the config and vLLM's
frozen figures (tests/data/vllm_0.32.0_kv_figures.json, the glm-dsa-shared cases, made by vLLM's own code)."""

import json
from pathlib import Path

import pytest
from conftest import load_yaml, run_kvplan

from kvplan.engines.vllm_kv_dtype import cache_precision
from kvplan.engines.vllm_settings import resolve_settings
from kvplan.engines.vllm_budget import index_groups, sparse_index_buffers
from kvplan.engines.vllm_speculative import speculative_config, with_drafter
from kvplan.model.kinds import IndexerKeys, MLALatent
from kvplan.model.precision import PRECISIONS
from kvplan.model.sources import resolve
from kvplan.plan.capacity import read_bytes, token_bytes
from kvplan.plan.sharding import pp_stages, stage_cache_layers

GLM = "zai-org/GLM-5.2"
GiB = 2**30
FIGURES = Path(__file__).parent / "data" / "vllm_0.32.0_kv_figures.json"
# max(layer - 3 + 1, 0) % 4 == 0, written out: the first three, then every fourth from layer 6
INDEXER_LAYERS = [0, 1, 2] + list(range(6, 78, 4))
BF16_TOKEN = 78 * 1152 + 21 * 132  # every latent (512 + 64 bf16 values), 21 indexer keys (128 fp8 + 4)
FP8_TOKEN = 78 * 656 + 21 * 132  # fp8_ds_mla: 512 fp8 + 4 float32 scales + 64 bf16 rope values


def _glm_cases() -> list:
    return [c for c in json.loads(FIGURES.read_text())["cases"] if c["inputs"]["family"] == "glm-dsa-shared"]


def _latents(spec) -> list:
    return [layer for layer in spec.layers if isinstance(layer, MLALatent)]


def test_vllms_skip_rule_picks_21_indexer_layers():
    spec = resolve(GLM)
    leaders = [i for i, latent in enumerate(_latents(spec)) if latent.leads_index_group]
    assert leaders == INDEXER_LAYERS and len(leaders) == 21
    assert sum(isinstance(layer, IndexerKeys) for layer in spec.layers) == 21 and len(spec.layers) == 78 + 21
    for case in _glm_cases():  # what vLLM's own model built: 21 leaders, 57 followers, 21 indexer caches
        assert case["sparse_mla_roles"]["leader_layers"] == leaders
        assert case["sparse_mla_roles"]["counts"] == {"indexer": 21, "sparse leader": 21, "sparse": 57}
        assert case["num_kv_layers_per_rank"] == len(spec.layers)


def test_a_token_takes_every_latent_and_21_indexer_keys():
    spec = resolve(GLM)
    assert token_bytes(spec, 8, PRECISIONS["bf16"]) == token_bytes(spec, 4, PRECISIONS["bf16"]) == BF16_TOKEN
    fp8 = cache_precision(spec, PRECISIONS["fp8_e4m3"])
    assert fp8.name == "fp8_ds_mla" and token_bytes(spec, 8, fp8) == FP8_TOKEN == 53940


@pytest.mark.parametrize("kv, token", [("auto", BF16_TOKEN), ("fp8", FP8_TOKEN)])
def test_one_group_of_99_layers_as_vllm_makes_it(kv, token):
    """Leader and follower latents differ in is_index_group_leader, but every spec is an MLAAttentionSpec of block
    64, so vLLM puts all 99 in one UniformTypeKVCacheSpecs group: a block is 64 tokens of every layer's cache."""
    out = run_kvplan("estimate", GLM, "--gpu", "h100", "--tp", "8", "--format", "json", "--max-model-len", "32768",
                     "--kv-cache-memory-bytes", str(40 * GiB), "--kv-cache-dtype", kv)
    (plan,) = json.loads(out.stdout)["plans"]
    blocks = 40 * GiB // (64 * token)
    (case,) = [c for c in _glm_cases() if c["inputs"]["kv_cache_dtype"] == kv and c["inputs"]["tp"] == 8
               and c["inputs"]["max_model_len"] == 32768 and c["inputs"]["available_kv_cache_bytes"] == 40 * GiB]
    assert case["kv"]["num_groups"] == 1 and case["kv"]["num_gpu_blocks"] == blocks == plan["engine"]["num_gpu_blocks"]
    assert blocks == {"auto": 7244, "fp8": 12441}[kv]
    # 32,768 tokens are 512 blocks a request; vLLM logs blocks / 512 and keeps that many, rounded down, resident
    assert plan["engine"]["max_concurrency"] == case["kv"]["max_concurrency"] == blocks / 512
    assert plan["max_concurrency"] == case["resident"]["requests"] == blocks // 512


def test_a_decode_step_attends_topk_latents_everywhere_and_scores_keys_on_21_layers():
    spec = resolve(GLM)
    bf16 = PRECISIONS["bf16"]
    assert read_bytes(spec, 8, bf16, 1000) == 1000 * BF16_TOKEN
    assert read_bytes(spec, 8, bf16, 32768) == 78 * 2048 * 1152 + 21 * 32768 * 132


def test_only_the_21_indexer_layers_hold_indexer_weights():
    """wq_b 4,096 x 2,048, wk + weights_proj (128 + 32) x 6,144, k_norm weight and bias 2 x 128, a layer."""
    per_layer = 32 * 128 * 2048 + (128 + 32) * 6144 + 2 * 128
    dense = {k: v for k, v in _config().items() if not k.startswith("index")}  # the same model, dense MLA
    assert resolve(GLM).param_count("attention") - _spec_of(dense).param_count("attention") == 21 * per_layer


def test_the_topk_buffers_are_one_shared_and_one_per_index_group():
    """8,192 x 2,048 int32 shared, and per index group (1,024 + 1) rows of 2,048 indices and one count
    (8,400,900 bytes): 21 groups, not 78."""
    settings = resolve_settings(32768, "NVIDIA H200", 141 * 10**9)
    assert sparse_index_buffers(resolve(GLM), settings) == 8192 * 2048 * 4 + 21 * 1025 * 2049 * 4 == 243527764


def test_a_later_pipeline_stage_starting_on_a_follower_builds_a_group_for_it():
    spec = resolve(GLM)
    first, second = pp_stages(78, 2)
    assert (first.end_layer, index_groups(spec, first)) == (39, 12)  # 0, 1, 2, 6, ..., 38
    assert index_groups(spec, second) == 9 + 1  # 42, ..., 74 and layer 39's own group
    caches = stage_cache_layers(spec, (first, second))
    assert sum(isinstance(spec.layers[i], IndexerKeys) for i in caches[0]) == 12
    assert len(caches[0]) + len(caches[1]) == 99 and len(caches[1]) == 39 + 9


def test_an_mtp_module_runs_its_own_indexer():
    """vLLM builds an indexer on every MTP layer (is_mtp_layer): the drafter adds a leading latent and its keys,
    and its own top-k buffer and index group."""
    spec = with_drafter(resolve(GLM), speculative_config('{"method": "mtp", "num_speculative_tokens": 1}'), "0.32.0")
    latent, keys = spec.draft.layers
    assert latent.leads_index_group and isinstance(keys, IndexerKeys)
    settings = resolve_settings(32768, "NVIDIA H200", 141 * 10**9)
    rows = min(8192, 1024 * 2) + 1
    assert sparse_index_buffers(spec, settings) == 4 * (2 * 8192 * 2048 + 22 * rows * 2049)


def _config() -> dict:
    return load_yaml((Path(__file__).parents[1] / "model_specs" / "zai-org--GLM-5.2.yaml").read_text())["config"]


def _spec_of(config: dict):
    from kvplan.model.parse import parse_config
    return parse_config(config, "test")


def test_without_index_topk_freq_every_layer_runs_an_indexer():
    """GLM-5 / GLM-5.1 configs (no index_topk_freq): vLLM's defaults, freq 1, give every layer an indexer."""
    raw = {k: v for k, v in _config().items() if k not in ("index_topk_freq", "index_skip_topk_offset")}
    spec = _spec_of(raw)
    assert all(latent.leads_index_group for latent in _latents(spec)) and len(spec.layers) == 2 * 78


def test_index_topk_pattern_overrides_the_frequency_and_layers_past_it_run_indexers():
    spec = _spec_of({**_config(), "num_hidden_layers": 6, "index_topk_pattern": "FSSF"})
    assert [latent.leads_index_group for latent in _latents(spec)] == [True, False, False, True, True, True]


@pytest.mark.parametrize("field, value", [("index_topk_pattern", "FXS"), ("index_topk_pattern", 7),
                                          ("index_topk_freq", 0)])
def test_bad_sharing_fields_are_refused_in_one_line(tmp_path, field, value):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**_config(), field: value}))
    result = run_kvplan("estimate", str(path), "--gpu", "h200")
    assert result.returncode == 2 and result.stdout == "" and "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert field in line


def test_verify_builds_glm_and_goes_on_to_the_gpu(monkeypatch):
    """verify used to refuse GLM-5.2; now its shared-indexer layers build (tests/test_verify_sparse_mla.py runs the
    form) and verify goes on to the GPU (stopped here where it would load torch)."""
    from kvplan.errors import KvplanError
    from kvplan.gpu import nvml

    def stop():
        raise KvplanError("stopped before torch")

    monkeypatch.setattr(nvml, "import_stack", stop)
    result = run_kvplan("verify", GLM, "--tp", "8")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == ["kvplan: error: stopped before torch"]


def test_a_block_size_sparse_mla_cannot_take_is_refused_without_naming_another_model():
    result = run_kvplan("estimate", GLM, "-tp", "8", "--block-size", "32")
    assert result.returncode == 0 and "DeepSeek-V3.2" not in result.stdout
    assert "No valid attention backend found for sparse MLA at block size 32" in " ".join(result.stdout.split())
