"""Two kinds of KV cache beside full attention on vLLM 0.9.1-0.13.x (engines/vllm_hybrid_manager.coordinator_refusal),
checked against vLLM's code:

- HybridKVCacheCoordinator.verify_and_split_kv_cache_groups asserts one full-attention spec and one other spec over
  the cache groups: "HybridKVCacheCoordinator assumes exactly one other type of groups now." (v1/core/
  kv_cache_coordinator.py 0.9.1:246-249, 0.10.0:277-280, 0.10.1:274-277, 0.13.0:397-401); a window size is part of
  the spec (0.9.1 SlidingWindowSpec.type_id names it), so two windows are two types;
- get_kv_cache_coordinator builds it for any model of more than one group in 0.9.1 (:352-363), and from 0.10.0 only
  with prefix caching on (KVCacheCoordinatorNoPrefixCache otherwise: 0.10.0:391-394, 0.13.0:537-547);
- 0.14.0's coordinator groups any number of specs ("requires at least two attention groups", 0.14.0:404-421);
- the scheduler is built after the KV cache is sized and its lines logged (v1/engine/core.py 0.9.1:83 then :107).

The model (tests/test_window_list_s75.py's): 4 Llama layers, 8 KV heads of 128, sliding_window [4096, null, 1024,
null]: layer 0 slides over 4,096, layer 2 over 1,024, layers 1 and 3 attend in full.
"""

from __future__ import annotations

import json

import pytest

from conftest import estimate_plan, run_kvplan

ASSERTION = "AssertionError: HybridKVCacheCoordinator assumes exactly one other type of groups now."
LLAMA = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 4,
         "num_attention_heads": 32, "num_key_value_heads": 8, "intermediate_size": 14336, "vocab_size": 32000,
         "max_position_embeddings": 32_768, "torch_dtype": "bfloat16", "sliding_window": [4096, None, 1024, None]}


def _config(tmp_path, **fields) -> str:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**LLAMA, **fields}))
    return str(path)


def _engine(tmp_path, version: str, *flags, **fields) -> dict:
    return estimate_plan(_config(tmp_path, **fields), "--gpu", "H100", "--engine", f"vllm=={version}", *flags)["engine"]


@pytest.mark.parametrize("version, flags", [
    ("0.9.1", ()), ("0.9.1", ("--no-enable-prefix-caching",)),  # 0.9.1 builds the hybrid coordinator regardless
    ("0.9.2", ()), ("0.10.0", ()),
])
def test_two_windows_stop_the_scheduler(tmp_path, version, flags):
    e = _engine(tmp_path, version, *flags)
    # groups of the smallest bucket's one layer: full x 2 (layers 1, 3), sliding 4,096 (0), sliding 1,024 (2)
    assert e["num_kv_cache_groups"] == 4
    assert not e["starts"] and e["refusal"]["configuration"]
    assert e["refusal"]["reason"].endswith(ASSERTION)
    assert "sliding window 1024, sliding window 4096" in e["refusal"]["reason"]
    # the cache was sized and logged before the scheduler was built
    assert e["log_lines"][-2].startswith("GPU KV cache size: ")
    assert e["log_lines"][-1].startswith("Maximum concurrency for 32,768 tokens per request: ")


def test_remedies_by_release(tmp_path):
    on_0_9_1 = _engine(tmp_path, "0.9.1")["refusal"]["remedy"]
    assert "--engine vllm==0.10.0" in on_0_9_1 and "--no-enable-prefix-caching" in on_0_9_1
    assert "--engine vllm==0.9.0 or older" in on_0_9_1  # 0.8.3-0.9.0 unify the windows to full attention
    on_0_10_0 = _engine(tmp_path, "0.10.0")["refusal"]["remedy"]
    assert on_0_10_0.startswith("it gets past this check with --no-enable-prefix-caching")


def test_0_10_0_without_prefix_caching_starts(tmp_path):
    e = _engine(tmp_path, "0.10.0", "--no-enable-prefix-caching")
    assert e["starts"] and e["refusal"] is None and e["num_kv_cache_groups"] == 4


def test_one_window_starts(tmp_path):
    # [4096, null]: full attention and one sliding spec, which the coordinator takes
    for version in ("0.9.1", "0.10.0"):
        e = _engine(tmp_path, version, sliding_window=[4096, None])
        assert e["starts"] and e["num_kv_cache_groups"] == 2


def test_0_13_0_remedy_search_skips_0_10_0(tmp_path):
    # 0.10.1 on refuse the list (pydantic); of the releases that read it, 0.10.0 now stops at the coordinator
    refusal = _engine(tmp_path, "0.13.0")["refusal"]
    assert refusal["remedy_range"] == {"from": "0.6.5", "before": "0.9.1"}
    assert "HybridKVCacheCoordinator takes full attention and one other kind" in refusal["remedy"]


def test_check_fails_the_deployment(tmp_path):
    r = run_kvplan("check", _config(tmp_path), "-tp", "1", "--gpu", "H100", "--engine", "vllm==0.10.0")
    assert r.returncode == 1
    assert "HybridKVCacheCoordinator takes full attention" in " ".join((r.stdout + r.stderr).split())


def _groups(*specs):
    from kvplan.engines.vllm_specs import Group

    return [Group(spec, (i,), (spec.page_bytes,)) for i, spec in enumerate(specs)]


def test_unit_rule():
    from kvplan.engines.vllm_hybrid_manager import coordinator_refusal
    from kvplan.engines.vllm_specs import CacheSpec

    full, mamba = CacheSpec("full", 16, 4096), CacheSpec("mamba", 16, 4096)
    wide, narrow = CacheSpec("sliding", 16, 4096, window=4096), CacheSpec("sliding", 16, 4096, window=1024)
    two_windows = _groups(full, wide, narrow)
    assert coordinator_refusal(two_windows, "0.13.0", True).reason.endswith(ASSERTION)  # 0.13.0:397-401
    assert coordinator_refusal(two_windows, "0.13.0", False) is None  # KVCacheCoordinatorNoPrefixCache
    assert coordinator_refusal(two_windows, "0.9.2", False) is not None  # no such coordinator before 0.10.0
    assert coordinator_refusal(two_windows, "0.14.0", True) is None  # any number of kinds (0.14.0:404-421)
    assert coordinator_refusal(two_windows, "0.9.0", True) is None  # no hybrid manager yet
    assert coordinator_refusal(_groups(full, wide, mamba), "0.11.0", True).reason.endswith(ASSERTION)
    assert coordinator_refusal(_groups(full, wide, full, wide), "0.11.0", True) is None
    # no full attention: two windows fail in the loop first; one window alone after it (0.13.0:403-406)
    assert coordinator_refusal(_groups(wide, narrow), "0.11.0", True).reason.endswith(ASSERTION)
    no_full = coordinator_refusal(_groups(wide, wide), "0.11.0", True)  # the check after the loop (0.13.0:403-406)
    assert no_full.reason.endswith("assumes exactly one type of full attention groups now.")
    mixed_full = coordinator_refusal(_groups(full, CacheSpec("full", 16, 8192), wide), "0.11.0", True)
    assert mixed_full.reason.endswith("assumes exactly one type of full attention groups now.")
