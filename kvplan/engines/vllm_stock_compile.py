"""vLLM's CUDA graphs under compilation mode 1, STOCK_TORCH_COMPILE (-cc '{"mode": 1}'): none, where the runner
would otherwise capture full graphs around the stock-compiled model.

- 0.34: VllmConfig._disable_cudagraphs_for_stock_torch_compile sets cudagraph_mode NONE (and the capture sizes
  empty) for every plan (config/vllm.py 0.34.0:3439-3455, called :2004), after the compile-mode rule has made
  FULL_AND_PIECEWISE FULL_DECODE_ONLY (:1842, :1995) and before set_splitting_ops_for_v1 (:2071, VLLM_COMPILE
  alone): no graph, no graph term.
- 0.32-0.33: the same rule for Model Runner V2 alone (_disable_cudagraphs_for_v2_stock_torch_compile, 0.32.0:
  3165-3185 called :2016-2017 under `if self.use_v2_model_runner`; 0.33.0:3302-3322, :2092-2093).
- 0.22-0.31: V2 lists stock torch.compile unsupported and the plan runs on V1 (config/vllm.py 0.22.0:1989-1990,
  0.29.0:2545-2546, 0.30.0:2821-2822 in _get_v2_model_runner_unsupported_features; 0.30.0:714-721 "using the V1
  model runner instead").
Not modelled: the V1 runner's own stock-compile path (v1/worker/gpu_model_runner.py 0.32.0:5174-5184), which returns
before wrapping the model in a CUDA-graph wrapper yet keeps the config's mode, so its graph profile runs the capture
sizes unwrapped; kvplan keeps the config's mode and its graph term there, and does not move a stock-compile plan
of 0.22-0.31 from V2 to V1. DYNAMO_TRACE_ONCE (mode 2) has no graph rule of its own in 0.20-0.34 (only
CompilationConfig.init_backend reads it, compilation.py 0.34.0:1274-1279): the below-VLLM_COMPILE rules alone.
"""

from __future__ import annotations

from dataclasses import replace

STOCK_TORCH_COMPILE = 1
FLAG = f"--compilation-config mode {STOCK_TORCH_COMPILE}"  # as the graph term names it
ALL_RUNNERS_SINCE = (0, 34)
V2_SINCE = (0, 32)


def graph_view(flags, release: tuple, v2_runner):
    """`flags` with cudagraph_mode NONE, and why, where `release` turns a stock-compile plan's graphs off;
    `v2_runner`: a callable answering whether the plan runs on Model Runner V2 (asked for 0.32-0.33 alone).
    Breakable CUDA graphs set the compilation mode NONE first (vllm_breakable.py), so the rule passes them by."""
    if not flags.stock_compile or flags.breakable or flags.cudagraph_mode == "NONE" or release < V2_SINCE:
        return flags
    if release >= ALL_RUNNERS_SINCE:
        return replace(flags, cudagraph_mode="NONE", cudagraph_mode_why=f"stock torch.compile ({FLAG})")
    if v2_runner():
        return replace(flags, cudagraph_mode="NONE",
                       cudagraph_mode_why=f"stock torch.compile on Model Runner V2 ({FLAG})")
    return flags
