"""The Python API: the command line's questions as functions, with vLLM's keyword names (`max_model_len`,
`gpu_memory_utilization`, `kv_cache_dtype`, `tensor_parallel_size`, `kv_cache_memory_bytes`, ...). Errors are
`kvplan.errors.FieldError` / `KvplanError` whose message names the keyword, never a command-line flag (a refusal
of vLLM's worded with its flags, `RefusedInput`, is re-spelled with the keywords).

MODEL is what the command line takes (a Hub id, bundled or not, a config.json or a model folder; a path also as a
`pathlib.Path`, always read as a path, never a Hub id) or a config.json's object as Python holds it (a dict:
json.load's, transformers' `AutoConfig.to_dict()`, one you patched), read by the same reader as that file
(model/sources.py, source 0) and named by its `_name_or_path` (else "config").

Results speak the same names: a `Plan` from `estimate` words its `suggestion()`, `to_dict()` and its engine refusal's
`remedy` with these keywords ("max_model_len 131072", "block_size 1"), as `check`'s result dicts do. `estimate`
returns `Plans` and `check` `Checks`: lists (of Plan, of result dicts) that also carry the command's result, so
`to_dict()` is the document `--format json` prints and `emit(result, "table")` renders it as the command does;
`verify` returns a `Verification`, the result dict, which `to_dict()` and `emit` treat alike.

Nothing heavy is imported until a function runs (no typer, no rich, no Hub client)."""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence, Union

from .errors import FieldError, KvplanError, RefusedInput, quote
from .units import is_auto_length, switches

if TYPE_CHECKING:
    from .plan.catalog import GPU

# field (as the core names it) -> the keyword these functions take
KEYWORDS = {
    "context": "max_model_len", "kv_dtype": "kv_cache_dtype", "tp": "tensor_parallel_size",
    "pp": "pipeline_parallel_size", "gpu_util": "gpu_memory_utilization", "kv_budget": "kv_cache_memory_bytes",
    "dp": "data_parallel_size", "dcp": "decode_context_parallel_size", "dcp_interleave": "cp_kv_cache_interleave_size",
    "pcp": "prefill_context_parallel_size",
}

Many = Union[int, str, Sequence]
Model = Union[str, "os.PathLike[str]", Mapping[str, Any]]  # MODEL as the command line takes it, or a config's object
JsonOrDict = Optional[Union[str, Mapping[str, Any]]]  # vLLM's JSON flags: the JSON text or the object it holds


class _RunList(list):
    """A list of one run's results that renders what it holds: `to_dict()`, `rows()` and `emit` read the items as
    they are now (after a sort, a `del`, a `pop`), and a slice is one of these too, so `plans[1:]` is the document of
    the plans it keeps, not the run's."""

    def __init__(self, result, items=None):
        super().__init__(self._items(result) if items is None else items)
        self._run = result

    def __getitem__(self, index):
        got = super().__getitem__(index)
        return type(self)(self._run, got) if isinstance(index, slice) else got

    @property
    def result(self):
        """The command's result object for the items held (what `emit` renders)."""
        raise NotImplementedError

    def to_dict(self) -> dict:
        return _as_json(self.result.to_dict())

    def rows(self) -> list:
        return self.result.rows()


class Plans(_RunList):
    """`estimate`'s plans, a list of `kvplan.plan.plan.Plan`, with the run they came from: `to_dict()` is the
    document `kvplan estimate --format json` prints ({"model": ..., "plans": [...]}, `auto_fit` under
    max_model_len="auto", `curves` with chart=True: the run's), the suggestions' flags spelled as keywords
    ("max_model_len 30864"); `rows()` its rows, and `emit(plans, fmt)` renders it as the command does. A slice or
    a sorted list is the document of the plans it holds."""

    @staticmethod
    def _items(result) -> list:
        return result.plans

    @property
    def result(self):  # commands.estimate.EstimateResult of these plans, auto-fit's records following their plans
        from dataclasses import replace

        run = self._run
        if run.auto_fitted is None:
            return replace(run, plans=list(self))
        asked = {id(run.plans[index]): length for index, length in run.auto_fitted}
        fitted = tuple((i, asked[id(p)]) for i, p in enumerate(self) if id(p) in asked)
        return replace(run, plans=list(self), auto_fitted=fitted)


class Checks(_RunList):
    """`check`'s result dicts, one per deployment, with `ok` (every one passed): `to_dict()` is the document
    `kvplan check --format json` prints ({"ok": ..., "results": [...]}), the flags in its messages spelled as
    keywords, and `emit(checks, fmt)` renders it as the command does. A slice is the document of the deployments
    it holds."""

    @staticmethod
    def _items(result) -> list:
        return result.results

    @property
    def result(self):  # commands.check.results.CheckResult of these deployments, each with its plan's shape
        from dataclasses import replace

        run = self._run  # its dicts are alive while it is, so no id below is a freed dict's
        shape_of = {id(row): shape for row, shape in zip(run.results, run.shapes)}
        return replace(run, results=list(self), shapes=tuple(shape_of.get(id(row), {}) for row in self))

    @property
    def ok(self) -> bool:
        return self.result.ok


VERIFY_RESULT = "give what kvplan.api.verify returned, or such a result saved as JSON."  # what a Verification holds


class Verification(dict):
    """`verify`'s result: the dict `kvplan verify --format json` prints (`result["verdict"]["ok"]`, `terms`, `pools`,
    `boundary`, `decode`, ...), with `ok` (every verdict held: the command's exit 0), `to_dict()` (that document, as
    json.loads reads the command's output) and `rows()` (its CSV rows); `emit(verification, fmt)` renders it as
    `kvplan verify --format fmt` does: table, json, yaml or csv (a measured run has no html page). It renders what
    the dict holds now, so a result saved with `--format json` renders too: `Verification(json.load(file))`, its
    fields read under today's names as the command reads a recorded one (verify/recorded.py)."""

    @property
    def result(self):
        """The command's result object for what the dict holds (what `emit` renders); a FieldError('result') where
        it holds no verdict to render."""
        from .commands.verify import VerifyResult

        if not isinstance(self.get("verdict"), Mapping):
            raise FieldError("result", f"has no verdict (a dict with ok), which every `kvplan verify --format json` "
                                       f"result holds; {VERIFY_RESULT}")
        return VerifyResult(dict(self))

    @property
    def ok(self) -> bool:
        """Whether every verdict held (the command's exit 0): False where the dict records no verdict `ok` true."""
        verdict = self.get("verdict")
        return isinstance(verdict, Mapping) and verdict.get("ok") is True

    def to_dict(self) -> dict:
        return _as_json(self.result.to_dict())

    def rows(self) -> list:
        return self._rendered(lambda result: result.rows())

    def copy(self) -> "Verification":
        """A shallow copy that is a Verification still (dict.copy would give a plain dict, which emit refuses)."""
        return type(self)(self)

    def _rendered(self, render):
        """render(self.result); a section every verify result holds missing from the dict (a KeyError of the
        renderers, which read what a fresh run writes) is a FieldError('result') naming it."""
        result = self.result
        try:
            return render(result)
        except KeyError as exc:
            raise FieldError("result", f"has no {quote(exc.args[0])}, which every `kvplan verify --format json` "
                                       f"result holds; {VERIFY_RESULT}") from None


def _as_json(data: dict) -> dict:
    """`data` as `--format json` writes it, read back: lists for the tuples inside a result, so the dict equals the
    command's JSON loaded."""
    import json

    from .render.formats import to_json

    return json.loads(to_json(data))


def keyword(field: str) -> str:
    return KEYWORDS.get(field, field)


def _keywords(function):
    """Re-raise a core FieldError with the field spelled as this API's keyword, and a RefusedInput with the flags it
    names spelled so."""
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        for name, value in kwargs.items():
            if not (name == "model" and isinstance(value, Mapping)):  # a config's object: _model says where
                _refuse_huge_numbers(value, name)
        try:
            return function(*args, **kwargs)
        except FieldError as exc:
            raise FieldError(keyword(exc.field), exc.problem_as(keyword)) from None
        except RefusedInput as exc:
            raise RefusedInput(exc.spelled(keyword), field=keyword(exc.field)) from None
    return wrapper


HUGE_BITS = 3000  # ~900 digits: no keyword takes such an integer (the checks themselves word smaller ones)


def _refuse_huge_numbers(value, field: str, depth: int = 3) -> None:
    """An integer of about a thousand digits or more anywhere in a keyword's value (a few levels into lists and
    dicts) is refused here, naming the keyword: the checks further in may write it with str(), which Python refuses
    past 4,300 digits (sys.int_info)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > HUGE_BITS:
        raise FieldError(field, f"is {quote(value)}, far beyond anything it takes (see help(kvplan.api.estimate)).")
    if depth and isinstance(value, (list, tuple, set, frozenset)):
        for item in list(value)[:1000]:
            _refuse_huge_numbers(item, field, depth - 1)
    elif depth and isinstance(value, dict):
        for key, item in list(value.items())[:1000]:
            _refuse_huge_numbers(key, field, depth - 1)
            _refuse_huge_numbers(item, field, depth - 1)


def _model(model):
    """MODEL as the readers take it (model.sources.model_argument): a Mapping (a config.json's object) as a
    ConfigObject, written as JSON here, so that a value no config.json can hold is refused naming `model` before
    anything else runs; a pathlib.Path as the path it names; text as given, for resolve() to read or refuse."""
    from .model.sources import model_argument

    return model_argument(model)


def _many(value, field: str, tokens: bool = False, auto_alone: bool = False, example: str = "") -> list:
    """An int, a '4096,32K' string, or a list of either -> a list of positive ints. `auto_alone`: max_model_len's,
    whose 'auto' stands alone (units.refuse_auto_in_list). `example`: a refusal's (default: lengths' for `tokens`,
    as the command line's, else TP degrees')."""
    from .units import int_list, parse_tokens, refuse_auto_in_list, require_positive

    if isinstance(value, str):
        return int_list(value, field, example or ("8192,32K" if tokens else "1,2,4,8"), tokens=tokens,
                        auto_alone=auto_alone)
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if not values:
        raise FieldError(field, "must name at least one value.")
    if auto_alone and isinstance(value, (list, tuple)):
        refuse_auto_in_list(values, field, value)
    return [parse_tokens(v, field) if tokens else require_positive(field, v) for v in values]


def _strings(value, field: str) -> list:
    if isinstance(value, str):  # each as given: the checks refuse spaces around one, as vLLM, quoting it as written
        return value.split(",")
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        return list(value)
    raise FieldError(field, f"must be a dtype name or a list of them, got {quote(value)}.")


@_keywords
def estimate(model: Model, *, max_model_len: Optional[Many] = None, kv_cache_dtype: Union[str, Sequence] = "auto",
             tensor_parallel_size: Many = 1, pipeline_parallel_size: int = 1, block_size: Optional[int] = None,
             kv_cache_memory_bytes: Optional[Union[int, str]] = None, gpu: Optional[str] = None,
             gpu_memory: Optional[Union[int, str]] = None, gpu_memory_utilization: Optional[float] = None,
             max_num_batched_tokens: Optional[Union[int, str]] = None, max_num_seqs: Optional[int] = None,
             quantization: Optional[str] = None, dtype: Optional[str] = None, batch: Optional[Many] = None,
             input_len: Optional[int] = None, engine: str = "vllm", revision: Optional[str] = None,
             enforce_eager: bool = False, skip_mm_profiling: bool = False, language_model_only: bool = False,
             limit_mm_per_prompt: JsonOrDict = None, mm_encoder_tp_mode: Optional[str] = None,
             cpu_offload_gb: Optional[float] = None, num_gpu_blocks_override: Optional[int] = None,
             speculative_config: JsonOrDict = None, data_parallel_size: Optional[int] = None,
             enable_expert_parallel: bool = False, enable_eplb: bool = False, mm_processor_kwargs: JsonOrDict = None,
             eplb_config: JsonOrDict = None, num_redundant_experts: Optional[int] = None,
             pp_layer_partition: Optional[Union[str, Sequence]] = None, gpus_per_node: Optional[int] = None,
             enable_lora: bool = False, max_loras: Optional[int] = None, max_lora_rank: Optional[int] = None,
             lora_dtype: Optional[str] = None, fully_sharded_loras: bool = False, runner: str = "auto",
             convert: str = "auto", pooler_config: JsonOrDict = None, max_cudagraph_capture_size: Optional[int] = None,
             cudagraph_capture_sizes: Optional[Sequence] = None, mamba_cache_dtype: Optional[str] = None,
             mamba_ssm_cache_dtype: Optional[str] = None, disable_sliding_window: bool = False,
             enable_prefix_caching: Optional[bool] = None, mamba_block_size: Optional[int] = None,
             enable_chunked_prefill: Optional[bool] = None,
             decode_context_parallel_size: Optional[int] = None,
             cp_kv_cache_interleave_size: Optional[int] = None,
             prefill_context_parallel_size: Optional[int] = None, dcp_comm_backend: Optional[str] = None,
             dcp_q_replicate: Optional[bool] = None, compilation_config: JsonOrDict = None,
             optimization_level: Optional[Union[int, str]] = None, chart: bool = False) -> Plans:
    """One `kvplan.plan.plan.Plan` per (max_model_len, kv_cache_dtype, tensor_parallel_size), as
    `kvplan estimate` computes them. `model`: a Hub id (a bundled spec's, or the Hub's), a config.json or a model
    folder, as MODEL on the command line (a path as text or a pathlib.Path, which is never taken for a Hub id),
    or a config.json's object as a dict (json.load's, transformers' `AutoConfig.from_pretrained(...).to_dict()`),
    read exactly as a config.json file holding it: the same reader
    and checks (a bad field is refused as the file's would be, naming it), the same plans and JSON but for the
    model's name, which is its `_name_or_path` where that is non-empty text, else "config". Nothing beside a
    config.json exists for a dict, so its quantisation side files (hf_quant_config.json, quant_config.json /
    quantize_config.json) and checkpoint shards are never read, nor is the network or the Hub cache: the size is
    the config's estimate. A value no JSON file can hold (a set, a torch.dtype) is a FieldError('model') saying
    where.

    Each of max_model_len, kv_cache_dtype and tensor_parallel_size takes one value or a list (a sweep); every default
    is vLLM's (max_model_len: the model's own; gpu_memory_utilization, block_size, max_num_batched_tokens,
    max_num_seqs: what the engine picks); sizes take ints (bytes, a whole float too) or strings ('10G', '80GiB'), and
    gpu_memory refuses a number without a unit below 1 MiB (40 is 40 bytes: write '40GiB'); a value given twice in
    a sweep, or two KV dtypes that plan alike (fp8, fp8_e4m3), give one plan; the switches (enforce_eager,
    skip_mm_profiling, language_model_only, enable_*, fully_sharded_loras) take True or False (None: off);
    enforce_eager as vLLM's (no CUDA-graph reserve), skip_mm_profiling (no vision-tower pass in the profile peak) and
    language_model_only (no vision tower at all), limit_mm_per_prompt ('{"image": 0}', image=0 or a dict),
    mm_encoder_tp_mode ('weights' or 'data'), cpu_offload_gb (GiB a GPU, 0 to 2**30), num_gpu_blocks_override
    (blocks) and speculative_config (JSON text or a dict), data_parallel_size and enable_expert_parallel as vLLM's
    (each plan's figures are one DP rank's; Plan.total_concurrency the deployment's); mm_processor_kwargs (JSON text
    or a dict: the Qwen-VL processors' size limits size the profile run's dummy image and video, Gemma 4's
    max_soft_tokens an image's tokens); enable_eplb with eplb_config (JSON text or a dict:
    '{"num_redundant_experts": 32}') or num_redundant_experts (vLLM before 0.12);
    pp_layer_partition as VLLM_PP_LAYER_PARTITION ('41,39' or [41, 39]); gpus_per_node (kvplan's own): the GPUs of
    one node in place of the catalog's, which the remedies keep a tensor-parallel group within; enable_lora with
    max_loras, max_lora_rank, lora_dtype and fully_sharded_loras as vLLM's (the adapter slots a budget term of their
    own, "lora"); runner ('auto', 'generate', 'pooling') and convert ('auto', 'none', 'embed', 'classify', 'reward',
    'mm_encoder_only') as vLLM's --runner / --convert (engines/vllm_runner_flag.py; None: auto, as check's);
    pooler_config (JSON text or a dict, '{"pooling_type": "MEAN"}') as vLLM's --pooler-config
    (engines/vllm_pooler_config.py); mamba_cache_dtype and mamba_ssm_cache_dtype ('auto', 'float32', 'float16',
    'bfloat16', as the release takes them) and disable_sliding_window (a bool) as vLLM's flags
    (engines/vllm_cache_flags.py); enable_prefix_caching (True / False; None: vLLM's default) and mamba_block_size
    (tokens) as vLLM's --enable-prefix-caching / --no-enable-prefix-caching and --mamba-block-size
    (engines/vllm_prefix_flag.py); enable_chunked_prefill (True / False; None: vLLM's default) as vLLM's
    --enable-chunked-prefill / --no-enable-chunked-prefill (engines/vllm_chunked_flag.py: off raises vLLM's batch to
    a whole prompt); decode_context_parallel_size and cp_kv_cache_interleave_size as vLLM's
    -dcp / --cp-kv-cache-interleave-size, dcp_comm_backend ('ag_rs', 'a2a') as vLLM's --dcp-comm-backend,
    dcp_q_replicate (True / False) as vLLM's --dcp-q-replicate / --no-dcp-q-replicate
    (engines/vllm_dcp.py); prefill_context_parallel_size as vLLM's -pcp (engines/vllm_pcp.py: dense MLA models,
    -dcp 1); compilation_config (JSON text or a dict, '{"cudagraph_mode": "NONE"}') and optimization_level (0-3) as
    vLLM's --compilation-config and -O (engines/vllm_compilation.py); chart (True / False) as --chart: the
    concurrency curves, in `to_dict()["curves"]`, drawn by `emit(plans, "table", chart=True)` and html's page.
    The list returned is `Plans`: `to_dict()` is `kvplan estimate --format json`'s document."""
    from .commands.estimate import estimate as run
    from .engines.vllm_dcp import check_tp, comm_backend, dcp_size, interleave_size, q_replicate
    from .engines.vllm_pcp import pcp_size
    from .engines.vllm_graphs import capture_sizes_value, max_capture_size_value
    from .engines.vllm_compilation import level_value
    from .engines.vllm_compilation_text import engine_config_value
    from .engines import (EngineFlags, cpu_offload_gb as offload, data_parallel_size as replicas, enable_eplb as eplb,
                          enable_lora as lora, encoder_tp_mode, eplb_spelled_off, gpu_blocks_override, ignored_lora,
                          media_limits, mm_processor_kwargs as processor, speculative_config as speculative)
    from .engines.vllm_cache_flags import mamba_dtype
    from .engines.vllm_pooler_config import pooler_config_choice
    from .engines.vllm_prefix_flag import mamba_block_size as mamba_block, prefix_caching_choice
    from .engines.vllm_chunked_flag import chunked_prefill_choice
    from .engines.vllm_runner_flag import convert_choice, runner_choice
    from .units import human_int

    model = _model(model)
    (enforce_eager, skip_mm_profiling, language_model_only, enable_expert_parallel, enable_eplb, enable_lora,
     fully_sharded_loras, disable_sliding_window, chart) = switches(
        enforce_eager=enforce_eager, skip_mm_profiling=skip_mm_profiling, language_model_only=language_model_only,
        enable_expert_parallel=enable_expert_parallel, enable_eplb=enable_eplb, enable_lora=enable_lora,
        fully_sharded_loras=fully_sharded_loras, disable_sliding_window=disable_sliding_window, chart=chart).values()
    balancer = eplb(enable_eplb, eplb_config, num_redundant_experts)
    adapters = lora(enable_lora, max_loras, max_lora_rank, lora_dtype, fully_sharded_loras)
    auto_fit = max_model_len is not None and is_auto_length(max_model_len)  # 'auto', ['auto'], [-1], 'auto,-1'
    contexts = None
    if max_model_len is not None and not auto_fit:
        contexts = _many(max_model_len, "context", tokens=True, auto_alone=True)
    batched = None if max_num_batched_tokens is None else human_int(max_num_batched_tokens, "max_num_batched_tokens")
    partition = None
    if pp_layer_partition is not None:  # only then: deployments.py builds check's big Deployment class
        from .commands.deployments import layer_partition

        partition = layer_partition(list(pp_layer_partition) if isinstance(pp_layer_partition, tuple)
                                    else pp_layer_partition)
    check_tp(dcp_size(decode_context_parallel_size), _many(tensor_parallel_size, "tp"))
    result = run(model, contexts=contexts, kv_dtypes=_strings(kv_cache_dtype, "kv_dtype"),
                 tps=_many(tensor_parallel_size, "tp"), pp=pipeline_parallel_size, pp_partition=partition,
                 block_size=block_size,
                 kv_budget=kv_cache_memory_bytes, gpu=gpu, gpu_memory=gpu_memory, gpu_util=gpu_memory_utilization,
                 max_num_batched_tokens=batched, max_num_seqs=max_num_seqs, quantization=quantization, dtype=dtype,
                 batches=tuple(_many(batch, "batch")) if batch is not None else (), input_len=input_len,
                 engine=engine, revision=revision, spell=keyword, chart=chart, auto_fit=auto_fit,
                 gpus_per_node=gpus_per_node,
                 flags=EngineFlags(enforce_eager, skip_mm_profiling, language_model_only,
                                   media_limits(limit_mm_per_prompt),
                                   encoder_tp_mode(mm_encoder_tp_mode), offload(cpu_offload_gb),
                                   num_gpu_blocks_override=gpu_blocks_override(num_gpu_blocks_override),
                                   speculative=speculative(speculative_config), dp=replicas(data_parallel_size),
                                   dcp=dcp_size(decode_context_parallel_size),
                                   dcp_interleave=interleave_size(cp_kv_cache_interleave_size),
                                   dcp_comm_backend=comm_backend(dcp_comm_backend),
                                   dcp_q_replicate=q_replicate(dcp_q_replicate),
                                   pcp=pcp_size(prefill_context_parallel_size),
                                   enable_expert_parallel=enable_expert_parallel,
                                   mm_processor_kwargs=processor(mm_processor_kwargs), enable_eplb=balancer,
                                   enable_lora=adapters,
                                   eplb_spelled_off=eplb_spelled_off(enable_eplb, eplb_config, num_redundant_experts),
                                   lora_ignored=ignored_lora(enable_lora, max_loras, max_lora_rank, lora_dtype,
                                                             fully_sharded_loras),
                                   runner=runner_choice("auto" if runner is None else runner),
                                   convert=convert_choice("auto" if convert is None else convert),
                                   pooler_config=pooler_config_choice(pooler_config),
                                   max_cudagraph_capture_size=max_capture_size_value(max_cudagraph_capture_size),
                                   cudagraph_capture_sizes=capture_sizes_value(cudagraph_capture_sizes),
                                   mamba_cache_dtype=mamba_dtype("mamba_cache_dtype", mamba_cache_dtype),
                                   mamba_ssm_cache_dtype=mamba_dtype("mamba_ssm_cache_dtype", mamba_ssm_cache_dtype),
                                   disable_sliding_window=disable_sliding_window,
                                   enable_prefix_caching=prefix_caching_choice(enable_prefix_caching),
                                   mamba_block_size=mamba_block(mamba_block_size),
                                   enable_chunked_prefill=chunked_prefill_choice(enable_chunked_prefill),
                                   compilation_config=engine_config_value(compilation_config, engine),
                                   optimization_level=level_value(optimization_level)))
    return Plans(result)


@_keywords
def check(model: Model, *, tensor_parallel_size: Many, pipeline_parallel_size: Optional[int] = None,
          min_concurrency: Optional[int] = None, max_model_len: Optional[Union[int, str]] = None,
          min_model_len: Optional[Union[int, str]] = None, kv_cache_dtype: Optional[str] = None,
          gpu: Optional[str] = None,
          gpu_memory_utilization: Optional[float] = None, kv_cache_memory_bytes: Optional[Union[int, str]] = None,
          revision: Optional[str] = None, engine: Optional[str] = None, enforce_eager: bool = False,
          skip_mm_profiling: bool = False, language_model_only: bool = False, limit_mm_per_prompt: JsonOrDict = None,
          mm_encoder_tp_mode: Optional[str] = None, cpu_offload_gb: Optional[float] = None,
          num_gpu_blocks_override: Optional[int] = None, speculative_config: JsonOrDict = None,
          data_parallel_size: Optional[int] = None, enable_expert_parallel: bool = False,
          enable_eplb: bool = False, mm_processor_kwargs: JsonOrDict = None, eplb_config: JsonOrDict = None,
          num_redundant_experts: Optional[int] = None, block_size: Optional[int] = None,
          quantization: Optional[str] = None, dtype: Optional[str] = None, max_num_seqs: Optional[int] = None,
          max_num_batched_tokens: Optional[Union[int, str]] = None,
          gpu_memory: Optional[Union[int, str]] = None,
          pp_layer_partition: Optional[Union[str, Sequence]] = None, gpus_per_node: Optional[int] = None,
          enable_lora: bool = False, max_loras: Optional[int] = None, max_lora_rank: Optional[int] = None,
          lora_dtype: Optional[str] = None, fully_sharded_loras: bool = False, runner: Optional[str] = None,
          convert: Optional[str] = None, pooler_config: JsonOrDict = None,
          max_cudagraph_capture_size: Optional[int] = None,
          cudagraph_capture_sizes: Optional[Sequence] = None, mamba_cache_dtype: Optional[str] = None,
          mamba_ssm_cache_dtype: Optional[str] = None, disable_sliding_window: bool = False,
          enable_prefix_caching: Optional[bool] = None, mamba_block_size: Optional[int] = None,
          enable_chunked_prefill: Optional[bool] = None, compilation_config: JsonOrDict = None,
          optimization_level: Optional[Union[int, str]] = None) -> Checks:
    """`kvplan check MODEL`: one result dict per TP degree (`passed`, `errors`, `warnings`, `max_concurrency`,
    ...), the same dicts as `kvplan check --format json`; `engine`, `block_size`, `quantization`, `dtype`,
    `max_num_seqs`, `max_num_batched_tokens`, `gpu_memory`, `pp_layer_partition`, `gpus_per_node` and the LoRA
    settings (`enable_lora`, `max_loras`, `max_lora_rank`, `lora_dtype`, `fully_sharded_loras`), `runner`,
    `convert`, `pooler_config`, `mamba_cache_dtype`, `mamba_ssm_cache_dtype`, `disable_sliding_window`,
    `enable_prefix_caching`, `mamba_block_size`, `enable_chunked_prefill`, `compilation_config` and
    `optimization_level` as `kvplan estimate`
    takes them. `max_model_len="auto"` (or -1):
    checked at the length vLLM's auto-fit picks (`context` and `auto_fit` say it); `min_model_len`: fail below it.
    `model` as estimate's: a config.json's object (a dict) too, whose name the rows' `model` and `model_id` give."""
    from .commands import check as run
    from .commands.deployments import model_deployments
    from .engines.vllm_graphs import capture_sizes_value, max_capture_size_value
    from .engines import data_parallel_size as replicas, enable_eplb as eplb, enable_lora as lora, gpu_blocks_override
    from .engines.vllm_eplb import eplb_config as eplb_config_of, redundant_count
    from .engines.vllm_prefix_flag import mamba_block_size as mamba_block, prefix_caching_choice
    from .engines.vllm_chunked_flag import chunked_prefill_choice

    model = _model(model)
    # read as estimate() reads them (a deployments file's validators would take "2" for a quoted YAML value)
    data_parallel_size, num_gpu_blocks_override = replicas(data_parallel_size), gpu_blocks_override(
        num_gpu_blocks_override)
    (enforce_eager, skip_mm_profiling, language_model_only, enable_expert_parallel, enable_eplb, enable_lora,
     fully_sharded_loras, disable_sliding_window) = switches(
        enforce_eager=enforce_eager, skip_mm_profiling=skip_mm_profiling, language_model_only=language_model_only,
        enable_expert_parallel=enable_expert_parallel, enable_eplb=enable_eplb, enable_lora=enable_lora,
        fully_sharded_loras=fully_sharded_loras, disable_sliding_window=disable_sliding_window).values()
    eplb(enable_eplb, eplb_config, num_redundant_experts)  # refused here as estimate() refuses it
    lora(enable_lora, max_loras, max_lora_rank, lora_dtype, fully_sharded_loras)
    config = None if eplb_config is None else eplb_config_of(eplb_config)
    redundant = redundant_count(num_redundant_experts)
    deployments = model_deployments(model, _many(tensor_parallel_size, "tp"), pp=pipeline_parallel_size, gpu=gpu,
                                    gpu_util=gpu_memory_utilization, kv_budget=kv_cache_memory_bytes,
                                    context=max_model_len, kv_dtype=kv_cache_dtype, min_concurrency=min_concurrency,
                                    min_model_len=min_model_len,
                                    revision=revision, engine=engine, enforce_eager=enforce_eager or None,
                                    skip_mm_profiling=skip_mm_profiling or None,
                                    language_model_only=language_model_only or None,
                                    limit_mm_per_prompt=limit_mm_per_prompt, mm_encoder_tp_mode=mm_encoder_tp_mode,
                                    cpu_offload_gb=cpu_offload_gb, num_gpu_blocks_override=num_gpu_blocks_override,
                                    speculative_config=speculative_config, dp=data_parallel_size,
                                    enable_expert_parallel=enable_expert_parallel or None,
                                    enable_eplb=enable_eplb or None, mm_processor_kwargs=mm_processor_kwargs,
                                    eplb_config=config, num_redundant_experts=redundant, block_size=block_size,
                                    quantization=quantization, dtype=dtype, max_num_seqs=max_num_seqs,
                                    max_num_batched_tokens=max_num_batched_tokens, gpu_memory=gpu_memory,
                                    gpus_per_node=gpus_per_node,
                                    pp_layer_partition=list(pp_layer_partition) if isinstance(
                                        pp_layer_partition, tuple) else pp_layer_partition,
                                    enable_lora=enable_lora or None, max_loras=max_loras, max_lora_rank=max_lora_rank,
                                    lora_dtype=lora_dtype, fully_sharded_loras=fully_sharded_loras or None,
                                    runner=runner, convert=convert, pooler_config=pooler_config,
                                    max_cudagraph_capture_size=max_capture_size_value(max_cudagraph_capture_size),
                                    cudagraph_capture_sizes=capture_sizes_value(cudagraph_capture_sizes),
                                    mamba_cache_dtype=mamba_cache_dtype, mamba_ssm_cache_dtype=mamba_ssm_cache_dtype,
                                    disable_sliding_window=disable_sliding_window or None,
                                    enable_prefix_caching=prefix_caching_choice(enable_prefix_caching),
                                    mamba_block_size=mamba_block(mamba_block_size),
                                    enable_chunked_prefill=chunked_prefill_choice(enable_chunked_prefill),
                                    compilation_config=compilation_config, optimization_level=optimization_level)
    return Checks(run.check(deployments, spell=keyword))


def check_deployments(deployments: Union[str, os.PathLike, Mapping[str, Any], Sequence[Mapping[str, Any]]]
                      ) -> Checks:
    """`kvplan check --file deployments.yaml`: the file's path, or its content as Python, {"deployments": [...]} or
    the list itself, each entry a dict with the file's keys (`name`, `model`, `tp`; `context`, `kv_dtype`,
    `min_concurrency`, `gpu`, ...: docs/ci.md), checked by the same validators. Returns `Checks`, whose
    `to_dict()` is `kvplan check --file ... --format json`'s document; suggestions name the file's keys ("tp 4").
    An entry given as a dict may give its `model` as a config.json's object (a dict), read as estimate reads one.
    A bad entry is a KvplanError naming the deployment and its key (with the file's line for a file); `serve:`
    commands are read by the command line only."""
    from .commands import check as run
    from .commands.check.results import CheckResult
    from .commands.deployments import load_deployments, mapping_deployments

    if isinstance(deployments, (str, os.PathLike)):
        return Checks(run.check(load_deployments(os.fspath(deployments))))  # its errors name the entry and line
    results, shapes = [], []
    for dep in mapping_deployments(deployments):  # one at a time, so that an error names its entry as a file's
        try:
            checked = run.check([dep])
            results += checked.results
            shapes += checked.shapes
        except FieldError as exc:
            raise KvplanError(exc.spelled(f"deployment {quote(dep.name)} field '{exc.field}'")) from None
        except KvplanError as exc:  # the model's (not on the Hub, refused by the release), after the entry's name
            said = exc.spelled() if isinstance(exc, RefusedInput) else str(exc)
            raise KvplanError(f"deployment {quote(dep.name)}: {said}") from None
    return Checks(CheckResult(results, tuple(shapes)))


@_keywords
def verify(model: Model, *, tensor_parallel_size: int = 1, max_model_len: Optional[Union[int, str]] = None,
           kv_cache_dtype: str = "auto", gpu_memory_utilization: Optional[float] = None,
           block_size: Optional[int] = None, max_num_seqs: Optional[int] = None,
           max_num_batched_tokens: Optional[Union[int, str]] = None, revision: Optional[str] = None,
           engine: str = "vllm", enforce_eager: bool = False, max_cudagraph_capture_size: Optional[int] = None,
           cudagraph_capture_sizes: Optional[Sequence] = None, enable_prefix_caching: Optional[bool] = None,
           mamba_block_size: Optional[int] = None, disable_sliding_window: bool = False,
           enable_chunked_prefill: Optional[bool] = None,
           mamba_cache_dtype: Optional[str] = None, mamba_ssm_cache_dtype: Optional[str] = None,
           compilation_config: JsonOrDict = None,
           optimization_level: Optional[Union[int, str]] = None, progress: bool = False) -> Verification:
    """`kvplan verify MODEL` on the local GPU: a `Verification`, the result dict `kvplan verify --format json` prints
    (`verdict` with `ok`, the budget terms predicted vs measured, the pools, the boundary, decode and prefill timed),
    with `.ok`, `.to_dict()` and `emit(result, fmt)` as the command's --format. `model` as estimate's: a config.json's
    object (a dict) too, whose forward pass is built from that object (dummy weights, as always). Needs the `gpu`
    extra; no usable GPU or NVRTC is a `KvplanError` in one sentence, bad input a `FieldError` naming the keyword,
    both before torch is imported. `max_model_len` None: 8192, or the model's own maximum where that is shorter.
    `progress`: the steps' timed lines on stderr, as the command prints them. `compilation_config` (a dict or its
    JSON) and `optimization_level` as vLLM's --compilation-config and -O for the release judged: cudagraph_mode NONE
    (level 0) captures no decode graph, as enforce_eager. `enable_chunked_prefill` as estimate's: off, the profile
    run's batch is vLLM's whole-prompt one."""
    from .commands.verify import verify as run
    from .units import human_int
    from .verify.progress import Progress

    model = _model(model)
    (enforce_eager, disable_sliding_window, progress) = switches(
        enforce_eager=enforce_eager, disable_sliding_window=disable_sliding_window, progress=progress).values()
    lengths = [None] if max_model_len is None else _many(max_model_len, "context", tokens=True,
                                                         example="8192 or 32K")
    if len(lengths) != 1:
        raise FieldError("context", f"takes one length for verify (it allocates one plan), got {quote(max_model_len)}.")
    batched = human_int(max_num_batched_tokens, "max_num_batched_tokens") \
        if isinstance(max_num_batched_tokens, str) else max_num_batched_tokens
    quiet = None
    if not progress:
        from rich.console import Console

        quiet = Progress(Console(stderr=True, quiet=True))
    result = run(model, tp=tensor_parallel_size, context=lengths[0], kv_dtype=kv_cache_dtype,
                 gpu_util=gpu_memory_utilization, block_size=block_size, max_num_seqs=max_num_seqs,
                 max_num_batched_tokens=batched, revision=revision, engine=engine, enforce_eager=enforce_eager,
                 max_cudagraph_capture_size=max_cudagraph_capture_size,
                 cudagraph_capture_sizes=cudagraph_capture_sizes, enable_prefix_caching=enable_prefix_caching,
                 mamba_block_size=mamba_block_size, enable_chunked_prefill=enable_chunked_prefill,
                 disable_sliding_window=disable_sliding_window, mamba_cache_dtype=mamba_cache_dtype,
                 mamba_ssm_cache_dtype=mamba_ssm_cache_dtype, compilation_config=compilation_config,
                 optimization_level=optimization_level, progress=quiet)
    return Verification(result.to_dict())  # the run's dict as it was: result["verdict"] as before


def models() -> list:
    """The bundled model specs, one dict each (id, aliases, layers, attention_heads, kv_heads,
    max_position_embeddings, default_max_model_len, ...)."""
    from .commands.catalogs import models as run

    return run().models


def gpus() -> list:
    """The GPU catalog: `kvplan.plan.catalog.GPU` entries (name, memory_bytes, bandwidth, aliases)."""
    from .plan.catalog import CATALOG

    return list(CATALOG)


def find_gpu(name: str) -> "GPU":
    """The catalog entry a name (nvidia-smi's or an alias) means; FieldError('gpu', ...) otherwise."""
    from .plan.catalog import find_gpu as find

    return find(name)


def emit(result: Union[Plans, Checks, Verification], fmt: str = "table", **options: Any) -> str:
    """`result` (what `estimate`, `check` or `verify` returned) as the command prints it with `--format fmt`: table
    (for people, as wide as the terminal), json, yaml, csv or html (not verify's: a measured run has no page);
    `chart=True` draws the curves of an `estimate(..., chart=True)` under the table, as --chart (the one option).
    A bad `fmt` is a FieldError naming `format`; a Verification that holds no verify result's sections (its
    `verdict`, `gpu`, ...) one naming `result`."""
    from .render import emit as render

    for option in options:
        if option != "chart":
            raise FieldError(str(option), "is not an option of emit, which takes chart=True (the curves of an "
                                          "estimate(..., chart=True) under its table).")
    if options.get("chart") and not isinstance(result, Plans):
        raise FieldError("chart", "draws kvplan.estimate's curves (estimate(..., chart=True)); a check or verify "
                                  "result has none.")
    if isinstance(result, Verification):
        return result._rendered(lambda run: render(run, fmt, **options))
    if not isinstance(result, (Plans, Checks)):
        wrap = (" (a verify result as a plain dict: wrap it, kvplan.Verification(result))"
                if isinstance(result, Mapping) and "verdict" in result else "")
        raise FieldError("result", f"must be what kvplan.estimate or kvplan.check returned (or kvplan.api.verify)"
                                   f"{wrap}, got {quote(result)}.")
    if not result:  # a table, a chart, a page of nothing: said, not an IndexError
        held = "plans" if isinstance(result, Plans) else "deployments"
        raise FieldError("result", f"holds no {held}; emit what kvplan.estimate or kvplan.check returned, or a slice "
                                   f"that keeps one.")
    return render(result.result, fmt, **options)
