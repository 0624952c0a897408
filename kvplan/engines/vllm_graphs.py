"""How many CUDA graphs vLLM's memory profile captures, by release: the counts behind the graph term.

vLLM 0.20+ subtracts `profile_cudagraph_memory()` from the KV budget (vllm_budget.graph_reserve). It captures the two
largest graphs of each mode and charges `first + (n - 1) x max(second, 1 MiB)` (0.32.0 v1/worker/gpu_model_runner.py:
6394-6432; V2 measures every PIECEWISE graph and extrapolates FULL the same way, v1/worker/gpu/cudagraph_utils.py:
873-957), logging "Profiling CUDA graph memory: PIECEWISE=n (largest=t), FULL=m (largest=u)" (V1, :6358-6369).
This module gives those counts from vLLM's own rules, each read in the release that changed it:

- Mode: FULL_AND_PIECEWISE by default (config/compilation.py, 0.20.0:1339 ... 0.34.0:1578): PIECEWISE graphs of
  mixed batches at every capture size, FULL graphs of uniform decode batches. A pooling model keeps PIECEWISE only,
  an encoder-decoder FULL decode only (config/vllm.py 0.20.0:1042-1058, 0.32.0:1882-1898, 0.34.0:1870-1886);
  --enforce-eager sets NONE (0.32.0:1928-1933): no graph, no profile.
- Token sizes (VllmConfig._set_cudagraph_sizes, 0.20.0:1423, 0.32.0:2292, 0.34.0:2322), where neither
  --max-cudagraph-capture-size nor --cudagraph-capture-sizes is given: the cap is min(max_num_seqs x q x 2, 512)
  tokens (q = 1 + speculative tokens, the uniform decode query length, from 0.13; 2 x max_num_seqs before), 1024
  on SM100 from 0.28 (0.28.0:1934-1940), then min(cap, max_num_batched_tokens); sizes 1, 2, 4, every 8 below 256,
  every 16 from 256, up to the cap. Before 0.11.1 (release_grid): 1, 2, 4 and every 8 up to the cap, those within
  max_num_batched_tokens (config/__init__.py 0.11.0:593-610, 0.10.2:3652-3665, 0.10.1:3768-3781; config.py 0.10.0
  :4760-4773, 0.9.2:4727-4743; 67 sizes at 512, as 0.11.0's gpt-oss hook says, models/config.py:256-258), the cap
  min(2 x max_num_seqs, 512) from 0.10.0 (SchedulerConfig.cuda_graph_sizes: config.py 0.10.0:2456, config/
  scheduler.py 0.10.1:244, 0.11.0:227) and 512 before (cuda_graph_sizes [512]: config.py 0.9.0:1972, 0.9.2:2133;
  0.8.0-0.8.5 build range(8, 513, 8) outright: 0.8.0:3586-3595, 0.8.5:4032-4045). These are V1's; V0's grid (the
  default engine before 0.8) is not modelled: its releases take 0.8's.
  0.20.1 adds max_num_batched_tokens itself when within the cap (0.20.1 :1517-1521); 0.29 adds the uniform decode
  sizes n x q when q > 1 (0.29.0:2008-2053); 0.31 adds max_num_seqs when within the cap (0.31.0:2501-2502).
  --max-cudagraph-capture-size M replaces the default cap (no decode sizes added); --cudagraph-capture-sizes L is
  taken as given, less sizes above max_num_batched_tokens, and M must then equal max(L) (0.32.0:2506-2518).
- Speculative decoding on the V1 runner (q > 1, FULL decode graphs): resolve_cudagraph_mode_and_sizes replaces the
  shared sizes with their multiples of q, each size rounded up to q and kept within the cap
  (config/compilation.py adjust_cudagraph_sizes_for_spec_decode, 0.32.0:1495-1501 and :1530-1557; from the V1
  runner 0.11.1-0.19, gpu_model_runner.py 0.13.0:4902-4908; whatever the runner 0.20-0.24, compilation.py
  0.20.0:1411-1418; V1 only from 0.25, 0.25.0:1432-1437; gone in 0.34).
- gpt-oss (GptOssForCausalLMConfig.verify_and_update_config, model_executor/models/config.py, run before the sizes
  are set): where neither capture flag is given, 0.10.1-0.11.0 capture 1, 2, 4, every 8 below 256, every 16 up
  to 1024 tokens in 0.10.x (0.10.1:258-275, 0.10.2:269-286), up to 992 in 0.11.0 (0.11.0:256-273); 0.11.1-0.33
  raise the cap to 1024 tokens, as --max-cudagraph-capture-size 1024 would
  (0.11.1:261-275, 0.32.0:471-483, 0.33.0:549-561; vLLM logs "Overriding max cuda graph capture size to 1024");
  0.34 off SM100 sets the prefill sizes to that grid below min(max_num_batched_tokens, 1024) plus that bound and
  the decode requests up to 1024 // q (0.34.0:850-881), leaving SM100's wider defaults alone.
- FULL decode graphs, up to 0.33: the sizes each rounded up to a multiple of q (1 and 2 as well), those within
  the largest size and max_num_seqs x q (v1/cudagraph_dispatcher.py 0.32.0:221-240 on sizes already rounded; V2
  v1/worker/gpu/cudagraph_utils.py 0.32.0:316-335).
- 0.34 splits the two (config/vllm.py:2558-2717 _split_cudagraph_capture_sizes): PIECEWISE at the shared sizes, FULL
  at the request counts min(ceil(s / q), max_num_seqs) of those sizes; on SM100, where neither legacy flag is given,
  the wider grids of config/compilation.py:78-124 instead (prefill tokens up to min(8192, max_num_batched_tokens),
  decode requests up to max_num_seqs).
- A diffusion model (DiffusionGemma, 0.24 on) decodes its canvas: the config's q is 1 + canvas (num_speculative_tokens
  is the canvas: config/vllm.py 0.24.0:508-518, 0.34.0:587-598; uniform_decode_query_len 0.29.0:624-642, 0.34.0:
  657-675), which sets the cap, the appended decode sizes and 0.34's decode request counts and recorded largest size
  (_set_cudagraph_sizes 0.24.0:1689-1691, 0.32.0:2360-2364, 0.34.0:2385-2447, :2662-2671, :2686-2732); the V2
  runner's q, its decode_query_len, is the canvas alone (num_speculative_steps + the ModelState's
  num_new_sampled_tokens_per_step, 0 for DiffusionGemma:
  v1/worker/gpu/model_runner.py 0.24.0:318-321, 0.32.0:435-438, 0.34.0:451-454; diffusion_gemma.py 0.24.0:1027,
  0.34.0:1139), which rounds the sizes in 0.24 (resolve_cudagraph_mode_and_sizes and the manager both get it:
  model_runner.py 0.24.0:458-462, cudagraph_utils.py 0.24.0:144-147), rounds and bounds the FULL graphs up to 0.33
  (cudagraph_utils.py 0.25.0:188-254, 0.32.0:258-338) and shapes 0.34's (the manager's decode_query_lens
  {q: max_num_seqs}, model_runner.py 0.34.0:801-807, config/vllm.py:677-693; cudagraph_utils.py 0.34.0:337-352).
  graph_counts' `decode_query_len`; the two are one where a drafter sets q (1 + n on either runner).

Not modelled: LongcatFlashNgram's hook (0.26+: FULL graphs, no compilation, unless configured), attention backends
that downgrade the mode (FlashInfer's spec-decode PIECEWISE fallback, an AttentionCGSupport of NEVER), sequence
parallelism's size filter (0.29-0.31, off by default), LoRA's extra capture cases, the interactivity performance
mode, dynamic speculative decoding's tiers, encoder CUDA graphs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

from ..errors import FieldError, KvplanError, quote

DEFAULT_CAP, SM100_CAP = 512, 1024  # default_max_graph_size (0.28+: 1024 on is_device_capability_family(100))
SM100_CAP_SINCE = (0, 28)
MNBT_APPENDED_SINCE = (0, 20, 1)
SEQS_CAP_SINCE = (0, 10)  # the default cap min(2 x max_num_seqs, 512) (config.py 0.10.0:2456); 512 before
STEP_16_SINCE = (0, 11, 1)  # the grid steps by 16 from 256 (config/vllm.py 0.11.1:876-888); by 8 throughout before
CAP_QUERY_LEN_SINCE = (0, 13)  # the default cap counts q tokens a request (config/vllm.py 0.13.0:1074; 0.12.0:1039)
DECODE_SIZES_SINCE = (0, 29)  # uniform decode sizes n x q appended when q > 1
MAX_SEQS_APPENDED_SINCE = (0, 31)
SPLIT_SIZES_SINCE = (0, 34)
FLAGS_SINCE = (0, 11, 1)  # engine/arg_utils.py: --cudagraph-capture-sizes and --max-cudagraph-capture-size
# (0.11.1:1112-1124 ... 0.34.0:1855-1858); 0.11.0 has neither
SPEC_ROUNDING_SINCE, SPEC_ROUNDING_V1_ONLY_SINCE = (0, 11, 1), (0, 25)  # adjust_cudagraph_sizes_for_spec_decode
GPT_OSS = "GptOssForCausalLM"  # MODELS_CONFIG_MAP's key for GptOssForCausalLMConfig (0.32.0:1079)
GPT_OSS_CAP, GPT_OSS_CAP_011 = 1024, 992
GPT_OSS_992_SINCE = (0, 11)  # the hook's list stops at 992 (0.11.0:256-273), at 1024 before (0.10.2:269-286)
SM100_PREFILL_TOKENS = 8192  # _split_cudagraph_capture_sizes' wide prefill default and decode token bound (0.34)


@dataclass(frozen=True)
class GraphCounts:
    """The graphs vLLM's profile captures per mode, as its "Profiling CUDA graph memory" line logs them."""

    piecewise: int
    piecewise_largest: int
    full: int
    full_largest: int

    @property
    def total(self) -> int:
        return self.piecewise + self.full

    def describe(self) -> str:
        parts = [f"{name}={n} (largest={largest})" for name, n, largest in
                 (("PIECEWISE", self.piecewise, self.piecewise_largest), ("FULL", self.full, self.full_largest)) if n]
        return ", ".join(parts) or "no graphs"


def _grid(cap: int) -> list:
    """1, 2, 4, every 8 below 256, every 16 from 256, up to `cap` tokens (config/vllm.py 0.32.0:2466-2485)."""
    sizes = [s for s in (1, 2, 4) if s <= cap]
    sizes += list(range(8, min(cap + 1, 256), 8)) if cap >= 8 else []
    return sizes + (list(range(256, cap + 1, 16)) if cap >= 256 else [])


def release_grid(version: tuple, cap: int, max_num_batched_tokens: int) -> list:
    """The default capture sizes of vLLM `version` up to `cap` tokens, within max_num_batched_tokens: _grid from
    0.11.1; before, 1, 2, 4 and every 8 up to the cap (config/__init__.py 0.11.0:594-597), then those within
    max_num_batched_tokens (:606-610), which alone bounds 1, 2 and 4."""
    if version >= STEP_16_SINCE:
        return _grid(min(cap, max_num_batched_tokens))
    return [s for s in [1, 2, 4] + list(range(8, cap + 1, 8)) if s <= max_num_batched_tokens]


def _request_counts(max_reqs: int, ceiling: int) -> list:
    """0.29's request-count grid for uniform decode sizes (config/vllm.py 0.29.0:2016-2023): the token grid's
    steps over requests, capped at the platform ceiling, with the largest count itself."""
    max_reqs = min(max_reqs, ceiling)
    return sorted(set(_grid(max_reqs) + [max_reqs]))


def _walk(limit: int, step) -> list:
    """0.34's grids (config/compilation.py:78-86): from 1, each next size the next multiple of the largest power of
    two not above step(size), then `limit` itself."""
    grid, size = [], 1
    while size < limit:
        grid.append(size)
        stride = 1 << max(0, math.floor(math.log2(max(1.0, step(size)))))
        size = (size // stride + 1) * stride
    return grid + [limit] if limit else []


def shared_sizes(version: tuple, max_num_seqs: int, max_num_batched_tokens: int, query_len: int = 1,
                 sm100: bool = False, max_capture_size: Optional[int] = None,
                 capture_sizes: Optional[Sequence[int]] = None) -> list:
    """compilation_config.cudagraph_capture_sizes as _set_cudagraph_sizes resolves them (the token counts of the
    PIECEWISE graphs), before 0.34's split."""
    mnbt = max_num_batched_tokens
    if capture_sizes is not None:
        refuse_unequal_sizes(max_capture_size, capture_sizes, mnbt)
        return sorted({s for s in capture_sizes if s <= mnbt})
    decode_sizes = []
    cap = max_capture_size
    if cap is None and version < SEQS_CAP_SINCE:
        cap = DEFAULT_CAP
    elif cap is None:
        ceiling = SM100_CAP if sm100 and version >= SM100_CAP_SINCE else DEFAULT_CAP
        cap = min(max_num_seqs * (query_len if version >= CAP_QUERY_LEN_SINCE else 1) * 2, ceiling)
        if query_len > 1 and version >= DECODE_SIZES_SINCE:
            decode_sizes = [n * query_len for n in _request_counts(max_num_seqs, ceiling) if n * query_len <= cap]
        elif query_len == 1 and version >= MAX_SEQS_APPENDED_SINCE and max_num_seqs <= cap:
            decode_sizes = [max_num_seqs]
    sizes = release_grid(version, cap, mnbt)
    cap = min(cap, mnbt)
    if version >= MNBT_APPENDED_SINCE and mnbt <= cap:
        sizes.append(mnbt)
    return sorted(set(sizes + [s for s in decode_sizes if s <= mnbt]))


def family_sizes(version: tuple, architecture: str, max_capture_size: Optional[int],
                 capture_sizes: Optional[Sequence[int]]) -> tuple:
    """(max_capture_size, capture_sizes) after the model's config hook up to 0.33 (module docstring: gpt-oss raises
    the cap where neither flag is given); the flags as given otherwise."""
    if architecture != GPT_OSS or max_capture_size is not None or capture_sizes is not None:
        return max_capture_size, capture_sizes
    if version < FLAGS_SINCE:  # 0.11.0 replaces scheduler_config.cuda_graph_sizes with an explicit list
        return None, _grid(GPT_OSS_CAP_011 if version >= GPT_OSS_992_SINCE else GPT_OSS_CAP)
    return (GPT_OSS_CAP, None) if version < SPLIT_SIZES_SINCE else (None, None)


def spec_rounded(sizes: list, query_len: int) -> list:
    """adjust_cudagraph_sizes_for_spec_decode (config/compilation.py 0.32.0:1530-1557): each size rounded up to a
    multiple of q, those within the largest size kept; q itself where none is but q fits; vLLM refuses to start
    where q exceeds every size."""
    cap = max(sizes, default=0)
    rounded = sorted({r for r in (-(-s // query_len) * query_len for s in sizes) if r <= cap})
    if not rounded and query_len <= cap:
        rounded = [query_len]
    if not rounded and sizes:
        raise KvplanError(f"vLLM refuses to start: no CUDA graph capture size (largest {cap}) is left after rounding "
                          f"to a multiple of {query_len} (num_speculative_tokens + 1; config/compilation.py "
                          f"adjust_cudagraph_sizes_for_spec_decode): raise --max-cudagraph-capture-size or give "
                          f"fewer speculative tokens.")
    return rounded


def rounds_for_spec(version: tuple, query_len: int, v1_runner: bool) -> bool:
    """Whether resolve_cudagraph_mode_and_sizes rounds the shared sizes to q (module docstring) for this runner."""
    if query_len <= 1 or not SPEC_ROUNDING_SINCE <= version < SPLIT_SIZES_SINCE:
        return False
    return v1_runner or version < SPEC_ROUNDING_V1_ONLY_SINCE


def _full_token_counts(sizes: list, max_num_seqs: int, query_len: int) -> list:
    """The FULL decode graphs' token counts up to 0.33: every size rounded up to q, those within the largest size and
    max_num_seqs x q. V2 rounds each size, 1 and 2 too (v1/worker/gpu/cudagraph_utils.py 0.25.0:233-241, 0.32.0
    :316-326); V1's dispatcher keeps the sizes from q to max_num_seqs x q (v1/cudagraph_dispatcher.py 0.32.0:221-240)
    of sizes already multiples of q (spec_rounded), and V2 before 0.25 those of sizes 0.20-0.24 round for every
    runner (cudagraph_utils.py 0.20.0:126-129): the same graphs."""
    cap = max(sizes, default=0)
    rounded = {-(-s // query_len) * query_len for s in sizes}
    return sorted(t for t in rounded if t <= cap and t // query_len <= max_num_seqs)


def _split_counts(sizes: list, legacy: bool, max_num_seqs: int, mnbt: int, query_len: int, sm100: bool,
                  gpt_oss: bool = False, decode_query_len: Optional[int] = None) -> tuple:
    """0.34's (prefill token sizes, decode request counts) (config/vllm.py:2558-2717): the counts from the config's q
    (`query_len`), reached by the runner's (`decode_query_len`, None: the same) within the recorded largest size
    (decode_cudagraph_capture_shapes, config/compilation.py 0.34.0:54-68, as v1/worker/gpu/cudagraph_utils.py
    :337-341 calls it)."""
    wide = sm100 and not legacy
    if wide:
        prefill = _walk(min(SM100_PREFILL_TOKENS, mnbt), lambda t: min(t, max(8, t / 4), 0.07 * max(t, 4096)))
        requests = _walk(max_num_seqs, _decode_step)
        decode_tokens = min(mnbt, SM100_PREFILL_TOKENS)
    elif gpt_oss and not legacy:
        prefill, requests = _gpt_oss_split(max_num_seqs, mnbt, query_len)
        decode_tokens = mnbt
    else:
        prefill, top = sizes, max(sizes, default=0)
        requests = sorted({min(-(-s // query_len), max_num_seqs) for s in sizes if -(-s // query_len) * query_len
                           <= top})
        decode_tokens = min(mnbt, max(top, max((n * query_len for n in requests), default=0)))
    limit = min(max_num_seqs, decode_tokens // (decode_query_len or query_len))
    reachable = [n for n in requests if n < limit] + ([limit] if any(n >= limit for n in requests) else [])
    return prefill, sorted({min(n, limit) for n in reachable if limit >= 1})


def _decode_step(requests: int) -> float:
    """decode_cudagraph_capture_grid's step (config/compilation.py 0.34.0:119-124)."""
    return 0.65 * requests ** (2 / 3)


def _gpt_oss_split(max_num_seqs: int, mnbt: int, query_len: int) -> tuple:
    """gpt-oss's 0.34 hook off SM100 (models/config.py 0.34.0:850-881): prefill at the 1024-token grid's sizes below
    min(max_num_batched_tokens, 1024) and that bound; decode requests on decode_cudagraph_capture_grid up to
    min(1024 // q, max_num_seqs) (config/vllm.py:2646-2651)."""
    bound = min(mnbt, GPT_OSS_CAP)
    prefill = sorted({s for s in _grid(GPT_OSS_CAP - 1) if s < bound} | {bound})
    return prefill, _walk(min(GPT_OSS_CAP // query_len, max_num_seqs), _decode_step)


def _mode_sizes(version: tuple, max_num_seqs: int, max_num_batched_tokens: int, query_len: int, sm100: bool,
                max_capture_size: Optional[int], capture_sizes: Optional[Sequence[int]], architecture: str = "",
                spec_rounding: bool = False, decode_query_len: Optional[int] = None) -> tuple:
    """(PIECEWISE token sizes, FULL decode token sizes) of a generating model; `spec_rounding`: the runner rounds the
    shared sizes to its q (rounds_for_spec); `decode_query_len`: the runner's q where it differs from the config's
    `query_len` (a diffusion model's canvas: module docstring)."""
    legacy = max_capture_size is not None or capture_sizes is not None
    max_capture_size, capture_sizes = family_sizes(version, architecture, max_capture_size, capture_sizes)
    sizes = shared_sizes(version, max_num_seqs, max_num_batched_tokens, query_len, sm100, max_capture_size,
                         capture_sizes)
    runner_q = decode_query_len or query_len
    if version >= SPLIT_SIZES_SINCE:
        prefill, requests = _split_counts(sizes, legacy, max_num_seqs, max_num_batched_tokens, query_len, sm100,
                                          gpt_oss=architecture == GPT_OSS, decode_query_len=runner_q)
        return prefill, [n * runner_q for n in requests]
    if spec_rounding:
        sizes = spec_rounded(sizes, runner_q)
    return sizes, _full_token_counts(sizes, max_num_seqs, runner_q)


def decode_sizes(version: tuple, max_num_seqs: int, max_num_batched_tokens: int, sm100: bool = False,
                 max_capture_size: Optional[int] = None, capture_sizes: Optional[Sequence[int]] = None,
                 architecture: str = "") -> list:
    """The batch sizes of the FULL decode graphs vLLM `version` captures, one token a sequence (no speculative
    tokens): what a decode step of that many sequences replays, and what kvplan verify captures; `architecture`:
    the model's, for the config hooks that change the sizes (gpt-oss)."""
    return _mode_sizes(version, max_num_seqs, max_num_batched_tokens, 1, sm100, max_capture_size, capture_sizes,
                       architecture)[1]


def graph_counts(version: tuple, max_num_seqs: int, max_num_batched_tokens: int, query_len: int = 1,
                 sm100: bool = False, pooling: bool = False, encoder_decoder: bool = False,
                 max_capture_size: Optional[int] = None, capture_sizes: Optional[Sequence[int]] = None,
                 architecture: str = "", v1_runner: bool = True,
                 decode_query_len: Optional[int] = None, cudagraph_mode: Optional[str] = None) -> GraphCounts:
    """The PIECEWISE and FULL graphs vLLM `version` captures (module docstring) for a generating model (`pooling`:
    PIECEWISE only; `encoder_decoder`: FULL decode only); `architecture`: the model's (gpt-oss's hook);
    `v1_runner`: the V1 model runner, which rounds the sizes to q with speculative decoding; `query_len`: the
    config's uniform decode query length, `decode_query_len` the runner's (None: the same; a diffusion model's
    canvas, one less); `cudagraph_mode`: the compilation config's (vllm_compilation.py; None: FULL_AND_PIECEWISE).
    A pooling model's mode with FULL graphs becomes PIECEWISE (`pooling`: before 0.11.1; from then the mode given is
    the plan's, downgraded before the splitting_ops rule: vllm_full_downgrade.py), an encoder-decoder's
    FULL_DECODE_ONLY (config/vllm.py 0.32.0:1876-1898); then PIECEWISE keeps the mixed sizes only, FULL_DECODE_ONLY
    the decode graphs only, and FULL captures one FULL graph at every mixed size and no separate decode graphs
    (v1/cudagraph_dispatcher.py 0.32.0:187-229: mixed_mode() at every size, decode graphs only where
    separate_routine())."""
    mode = cudagraph_mode or "FULL_AND_PIECEWISE"
    if pooling and mode != "PIECEWISE":
        mode = "PIECEWISE"
    elif encoder_decoder and mode != "FULL_DECODE_ONLY":
        mode = "FULL_DECODE_ONLY"
    runner_q = decode_query_len or query_len
    rounding = mode != "PIECEWISE" and rounds_for_spec(version, runner_q, v1_runner)  # no FULL graph: no rounding
    prefill, full = _mode_sizes(version, max_num_seqs, max_num_batched_tokens, query_len, sm100, max_capture_size,
                                capture_sizes, architecture, rounding, runner_q)
    if mode == "PIECEWISE":
        full = []
    elif mode == "FULL_DECODE_ONLY":
        prefill = []
    elif mode == "FULL":
        prefill, full = [], prefill
    return GraphCounts(len(prefill), max(prefill, default=0), len(full), max(full, default=0))


def check_flags(version: tuple, max_capture_size: Optional[int], capture_sizes: Optional[Sequence[int]]) -> None:
    """Refuse the capture-size flags where the release has none, or values vLLM rejects."""
    for field, flag, given in (("max_cudagraph_capture_size", "--max-cudagraph-capture-size", max_capture_size),
                               ("cudagraph_capture_sizes", "--cudagraph-capture-sizes", capture_sizes)):
        if given is not None and version < FLAGS_SINCE:
            raise FieldError(field, f"is not a flag of vLLM {'.'.join(map(str, version))}: {flag} came with 0.11.1 "
                                   f"(engine/arg_utils.py); give vllm==0.11.1 or later.")
    if max_capture_size is not None and max_capture_size < 1:
        raise FieldError("max_cudagraph_capture_size", f"{max_capture_size} is below 1: give a positive number of "
                                                         "tokens (or --enforce-eager for no graphs).")
    if capture_sizes is not None and (not capture_sizes or any(s < 1 for s in capture_sizes)):
        raise FieldError("cudagraph_capture_sizes", "give one or more positive token counts, e.g. 1,2,4,8.")


def max_capture_size_value(value) -> Optional[int]:
    """--max-cudagraph-capture-size / max_cudagraph_capture_size: a positive token count (None: vLLM's default)."""
    if value is None:
        return None
    if not _token_count(value):
        raise FieldError("max_cudagraph_capture_size", f"{quote(value)} is not a positive whole number of tokens "
                                                         "(e.g. 256).")
    return int(str(value).strip())


def _token_count(item) -> bool:
    """A positive whole number of tokens, an int or its ASCII digits (at most 18: no longer one is a count, and
    Python refuses int() past 4,300 digits)."""
    if isinstance(item, int) and not isinstance(item, bool):
        return 1 <= item < 10**18
    text = item.strip() if isinstance(item, str) else ""
    return text.isascii() and text.isdigit() and len(text) <= 18 and int(text) >= 1


def capture_sizes_value(value) -> Optional[tuple]:
    """--cudagraph-capture-sizes / cudagraph_capture_sizes: positive token counts, space-separated as vLLM takes them
    (a list[int] flag with nargs="+": engine/arg_utils.py 0.34.0:258, :1854-1855), comma-separated (kvplan's list
    style), or a YAML / Python list; never two numbers glued into one."""
    if value is None:
        return None
    items = list(value) if isinstance(value, (list, tuple)) else _size_words(str(value))
    if not items or not all(_token_count(i) for i in items):
        raise FieldError("cudagraph_capture_sizes", f"{quote(value)} is not a list of positive token counts "
                                                      "(e.g. '1 2 4 8' as vLLM takes it, or 1,2,4,8).")
    return tuple(sorted({int(str(i).strip()) for i in items}))


def _size_words(text: str) -> list:
    """The counts of '1 2 4 8', '1,2,4,8' or '1, 2, 4': split at commas and spaces; an empty piece between two
    commas ('1,,2') stays, to be refused."""
    return [word for piece in text.split(",") for word in (piece.split() or [""])]


# the smallest max_num_batched_tokens vLLM defaults to on a CUDA GPU (engine/arg_utils.py 0.32.0:2923-2951: the
# server's 2048 on GPUs under 70 GiB and A100s; 8192-16384 on larger ones and for the LLM class)
SMALLEST_DEFAULT_BATCHED = 2048


def refuse_capture_flags(flags, version: str, max_num_batched_tokens: Optional[int]) -> None:
    """The capture-size flags (`flags`: engines.EngineFlags) as vLLM `version` refuses them (check_flags: a release
    without them, a size below 1), and the two together where vLLM's _set_cudagraph_sizes refuses them whatever
    max_num_batched_tokens it picks on the GPU: a max size that is none of the sizes (config/vllm.py 0.32.0:2501-2518
    holds it to the largest size within max_num_batched_tokens); given max_num_batched_tokens, exactly as the plan
    checks them. Before torch (verify), and before check judges the sharding, whose failure would hide it."""
    from .vllm_versions import parse_version

    largest, sizes = flags.max_cudagraph_capture_size, flags.cudagraph_capture_sizes
    check_flags(parse_version(version), largest, sizes)
    if not flags.enforce_eager:  # eager: vLLM empties both (0.32.0:1928-1932)
        refuse_unequal_sizes(largest, sizes, max_num_batched_tokens)


def refuse_unequal_sizes(largest: Optional[int], sizes, max_num_batched_tokens: Optional[int]) -> None:
    """_set_cudagraph_sizes' ValueError where both capture-size flags are given: the largest size within
    max_num_batched_tokens (0 where none is: config/vllm.py 0.11.1:900-902, 0.32.0:2503-2505, 0.34.0:2508-2510) must
    equal the max size (0.32.0:2506-2518). One sentence for estimate, check and verify alike: a max that is none of
    the sizes whatever the batch; else the largest kept at `max_num_batched_tokens`, or, where it is not given (verify
    and check before the GPU's default is known), at the smallest default, which keeps every size a larger one
    would (a max below it is refused whatever the GPU)."""
    if largest is None or sizes is None:
        return
    names = ("cudagraph_capture_sizes", "max_num_batched_tokens")
    if largest not in sizes:
        raise FieldError("max_cudagraph_capture_size", f"{largest} is not one of cudagraph_capture_sizes "
                                                        f"({', '.join(map(str, sizes))}): vLLM requires it to equal "
                                                        f"the largest of them within max_num_batched_tokens "
                                                        f"(config/vllm.py _set_cudagraph_sizes).", names=names)
    bound = SMALLEST_DEFAULT_BATCHED if max_num_batched_tokens is None else max_num_batched_tokens
    kept = max((s for s in sizes if s <= bound), default=0)
    if largest < kept or (max_num_batched_tokens is not None and largest != kept):
        where = f" (at least {bound:,} by default)" if max_num_batched_tokens is None else f" {bound}"
        which = f"which keeps {kept} as the largest" if kept else "which keeps none of them, so the largest is 0"
        raise FieldError("max_cudagraph_capture_size", f"{largest} is not the largest of cudagraph_capture_sizes "
                                                        f"within max_num_batched_tokens{where}, {which}: vLLM requires "
                                                        f"them equal (config/vllm.py _set_cudagraph_sizes).",
                         names=names)
