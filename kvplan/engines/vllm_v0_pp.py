"""vLLM V0's pipeline-parallel virtual engines: with --pipeline-parallel-size P > 1, V0 runs P schedulers over one
cache, each with its own share of the blocks and its own max_num_seqs (read in the wheels 0.5.0, 0.5.1, 0.5.5,
0.6.3, 0.7.3, 0.8.0, 0.8.5, 0.9.0, 0.9.1, 0.9.2, 0.10.0, 0.10.1.1):
- LLMEngine builds one Scheduler a virtual engine, range(pipeline_parallel_size) (engine/llm_engine.py 0.5.1:302-305,
  0.6.3:423-428, 0.10.1.1:331-337); each Scheduler's block manager gets num_gpu_blocks // pp (core/scheduler.py
  0.5.5:319-322, 0.6.3:324-326, 0.7.3:449-451, 0.10.1.1:440-442) and the worker's CacheEngine allocates that many
  a virtual engine (worker/cache_engine.py 0.5.1:44, 0.6.3:44, 0.7.3:50, 0.8.5:45, 0.10.1.1:46), while each
  scheduler's budget admits up to scheduler_config.max_num_seqs on its own (core/scheduler.py 0.6.3:995-998,
  0.10.1.1:1225-1228: SchedulingBudget(max_num_seqs=...)). So a server holds P x the requests one share holds, each
  share capped at max_num_seqs (v0_resident), and the longest request is one share's tokens.
- The block-count lines print the whole count: "# GPU blocks: N" and "Maximum concurrency ...: N x block_size /
  max_model_len" before any division (executor/distributed_gpu_executor.py 0.6.3:57-62, gpu_executor.py :122-127;
  executor_base.py 0.7.3:111-117, 0.10.1.1:114-120): vllm.size_lines, unchanged; so does the one --num-gpu-blocks-
  override line, the fewest of any worker (vllm_workers.v0_override_line), where V1 logs one a worker.
- The start-up check (worker/worker.py raise_if_cache_size_invalid), by release (SHARE_CHECK_SINCE):
  up to 0.7.3 on the whole count (0.5.5:474, 0.6.3:490, 0.7.3:542: block_size x num_gpu_blocks), so a server whose
  share is shorter than max_model_len starts, and each scheduler then ignores a request longer than its share
  (AllocStatus.NEVER, "Input prompt ... is too long and exceeds the capacity of block_manager": core/scheduler.py
  0.6.3:915-918): it holds none of max_model_len; from 0.8.0 on one share (0.8.0:543, 0.8.5:563, 0.10.1.1:580:
  block_size x (num_gpu_blocks // pipeline_parallel_size)), which refuses to start instead.
- Which releases run pp > 1 on V0 by default (PP_FALLBACK): every release up to 0.7 (kvplan's era "v0"); on
  0.8.0-0.9.0 EngineArgs._is_v1_supported_oracle falls back to V0 for it with the default executor (VLLM_USE_V1
  unset): "PP" in 0.8.0 (engine/arg_utils.py 0.8.0:1590-1591, _warn_or_fallback), unless --distributed-executor-
  backend ray in 0.8.5 (:1476-1482), ray, mp or external_launcher in 0.9.0 (:1378-1384; the default, None, falls
  back); 0.9.1 takes ParallelConfig's default (None) too (:1434-1441), so V1 from there. kvplan plans the default
  executor. 0.9.1-0.10.1 run pp > 1 on V0 only for a model that falls back for its Mamba state (vllm_mamba_v0.py).
V0 serves no --data-parallel-size: it has no DP coordinator (the engine-core processes one a DP rank, and headless
mode, are V1's: entrypoints/cli/serve.py 0.9.0:80-82 "Headless mode is only supported for V1"), yet ParallelConfig
keeps data_parallel_size, and each worker's init_distributed_environment, run under the VllmConfig (worker/
worker_base.py 0.9.0:601-603), widens the process group to world_size_across_dp = tp x pp x dp ranks and waits at its
TCP rendezvous for the (dp - 1) x tp x pp ranks nothing launches (distributed/parallel_state.py 0.9.0:923-935,
0.10.1.1:982-991; worker/worker.py 0.9.0:529, 0.10.1.1:541): the server never starts. So wherever a release from 0.8
falls back to V0 (pp > 1 on 0.9.0, as 0.8.0-0.8.5 take -dp only where kvplan does not model it; a Mamba model's
state on 0.9.1-0.10.1) -dp > 1 is a start refusal (vllm_v1_oracle.v0_data_parallel_refusal, beside v0_rules), whose
remedy is the first release that runs the deployment on V1. Before 0.8 kvplan refuses -dp as input
(vllm_engine.MODELLED_SINCE).
Each share's scheduler admits requests into it less its block manager's watermark (vllm_v0_admission.py, 1% of the
share); releases that refuse pp > 1 (every one before 0.5.1, 0.5.1-0.5.2 with their default executor, 0.5.3-0.6.2 for
an architecture off their list) are plan.sharding.EARLY_PIPELINE's."""

from __future__ import annotations

from .vllm_versions import in_span, parse_version

PP_FALLBACK = ((0, 8), (0, 9, 1))  # [from, before): pp > 1 falls back to V0 with the default executor (docstring)
SHARE_CHECK_SINCE = (0, 8)  # raise_if_cache_size_invalid checks one virtual engine's share from here (docstring)


def pp_runs_v0(version: str, pp: int) -> bool:
    """Whether vLLM `version` (0.8 on) falls back to V0 for pp > 1 with the default executor (PP_FALLBACK)."""
    return pp > 1 and in_span(version, PP_FALLBACK)


def virtual_engines(rules, pp: int) -> int:
    """The schedulers sharing the blocks: pp on V0 (rules.era "v0"), else one (V1 schedules every stage's blocks
    as one pool)."""
    return max(pp, 1) if rules.era == "v0" else 1


def checked_engines(engines: int, version: str) -> int:
    """Into how many shares raise_if_cache_size_invalid divides the blocks it holds max_model_len against: the
    virtual engines from 0.8.0, one (the whole count) before (SHARE_CHECK_SINCE)."""
    return engines if parse_version(version) >= SHARE_CHECK_SINCE else 1


def v0_resident(resident_of, num_blocks: int, engines: int, max_num_seqs: int) -> tuple:
    """(requests held, requests before the cap, capped) over `engines` virtual engines, each scheduling
    max_num_seqs over num_blocks // engines; resident_of(blocks) is what one pool of `blocks` holds."""
    one = resident_of(num_blocks // engines)
    return engines * min(one, max_num_seqs), engines * one, one > max_num_seqs
