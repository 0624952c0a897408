"""What the token count vLLM logs at start-up ("GPU KV cache size: N tokens", EngineFigures.gpu_kv_cache_tokens)
counts, release by release: the figure users compare against, so kvplan keeps it and says what it is.

- V0 (every release to 0.7, and 0.8-0.10 falling back to it) logs no token count, only "# GPU blocks: N"
  (gpu_executor.py 0.6.3:122-123): kvplan's figure is those blocks x the block size, the pool's token slots.
- V1 up to 0.20.0: the pool's token slots, blocks // block groups x the smallest block size (kv_cache_utils.py
  0.9.2:714, 871; 0.14.0:1288-1292, times the context-parallel size under -dcp / -pcp, :1293-1296).
- From 0.20.1: int(max_concurrency x max_model_len), the tokens of the max-length requests the pool holds
  (get_kv_cache_capacity: kv_cache_utils.py 0.24.0:2138-2146, 0.32.0:2300-2308, 0.34.0:1141-1149): fewer than the
  slots where max_model_len leaves a request's last block part-empty (at max_model_len 1, one token a 16-slot
  block), more where a sliding window caps the blocks a request keeps.

The rule itself lives in vllm.size_lines (Behaviour.tokens_rule); this module only names it for the words."""

from __future__ import annotations

from .vllm_versions import behaviour


def logged_tokens_count(version: str, core: str) -> str:
    """What the logged token count of `version` serving on `core` ("v0" | "v1") counts: "requests" (max_model_len x
    the requests of max_model_len the pool holds, unrounded), "slots" (V1's blocks x block size) or "v0_slots" (V0's
    blocks x block size: a line V0 does not log)."""
    if core == "v0":
        return "v0_slots"
    return "requests" if behaviour(version).tokens_rule == "concurrency" else "slots"
