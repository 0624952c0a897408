"""What `kvplan check` checks: deployments, from a YAML file (one entry per deployment under `deployments:`,
with the line of every key for annotations) or from a MODEL and its options. Every field goes through the
same validators as the rest of kvplan; a bad one is reported with its file, line and deployment."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

from ..errors import FieldError, KvplanError, quote, values_as_yaml
from ..model.precision import check_kv_dtype
from ..model.hub import check_revision
from ..plan.catalog import find_gpu, node_gpus
from ..plan.sharding import require_stage_counts
from ..units import (AUTO_LENGTHS, REAL_TEXT, human_int, int_list, oversized, parse_gpu_memory, parse_size,
                     parse_tokens, require_fraction, require_positive)

if TYPE_CHECKING:
    from ..engines import MediaLimits

DEFAULT_CONTEXT = None  # vLLM's default: the model's max length (plan/max_len.py)
DEFAULT_GPU_UTIL = None  # the engine's own default (vLLM 0.32: 0.92)
REQUIRED_KEYS = ("name", "model", "tp")
OPTIONAL_KEYS = ("pp", "gpu", "gpu_util", "kv_budget", "context", "kv_dtype", "min_concurrency", "revision",
                 "engine", "enforce_eager", "skip_mm_profiling", "language_model_only", "limit_mm_per_prompt",
                 "mm_encoder_tp_mode", "cpu_offload_gb", "num_gpu_blocks_override", "speculative_config", "dp",
                 "dcp", "dcp_interleave", "dcp_comm_backend", "dcp_q_replicate", "pcp", "enable_expert_parallel",
                 "enable_eplb",
                 "mm_processor_kwargs",
                 "eplb_config", "num_redundant_experts",
                 "block_size", "quantization", "dtype", "max_num_seqs", "max_num_batched_tokens", "pp_layer_partition",
                 "gpu_memory", "gpus_per_node", "enable_lora", "max_loras", "max_lora_rank", "lora_dtype",
                 "fully_sharded_loras", "runner", "convert", "pooler_config", "max_cudagraph_capture_size",
                 "cudagraph_capture_sizes", "mamba_cache_dtype", "mamba_ssm_cache_dtype", "disable_sliding_window",
                 "enable_prefix_caching", "mamba_block_size", "min_model_len", "compilation_config",
                 "optimization_level", "enable_chunked_prefill")
# the `vllm serve` command the deployment runs, its flags read as check's command line reads them (cli/serve_command.py)
SERVE_KEY = "serve"
VALID_KEYS = REQUIRED_KEYS + OPTIONAL_KEYS + (SERVE_KEY,)
TOP_KEYS = ("deployments",)


@dataclass(frozen=True)
class Deployment:
    """One thing to check: a model at one TP (and optional PP) degree, with the capacity target it must meet."""

    name: str
    model: str  # as given; the API's config.json object as a model.sources.ConfigObject
    tp: int
    pp: Optional[int] = None
    gpu: Optional[str] = None
    gpu_util: Optional[float] = DEFAULT_GPU_UTIL
    kv_budget: Optional[int] = None  # bytes per GPU; replaces the GPU budget
    context: Optional[int] = DEFAULT_CONTEXT
    kv_dtype: str = "auto"
    min_concurrency: Optional[int] = None
    # the shortest max model length the deployment must serve (kvplan's own: a gate on what --max-model-len auto
    # fits; a fixed context is held to it too)
    min_model_len: Optional[int] = None
    block_size: Optional[int] = None  # vLLM's --block-size (None: the engine's own)
    revision: Optional[str] = None
    engine: str = "vllm"  # the engine model (engines.get_engine): "vllm", "vllm==<release>", "none"
    enforce_eager: bool = False  # vLLM's --enforce-eager
    skip_mm_profiling: bool = False  # vLLM's --skip-mm-profiling
    language_model_only: bool = False  # vLLM's --language-model-only
    limit_mm_per_prompt: Optional["MediaLimits"] = None  # vLLM's --limit-mm-per-prompt (None: 999 a modality)
    mm_encoder_tp_mode: Optional[str] = None  # vLLM's --mm-encoder-tp-mode (None: weights)
    cpu_offload_gb: Optional[float] = None  # vLLM's --cpu-offload-gb
    max_cudagraph_capture_size: Optional[int] = None  # vLLM's --max-cudagraph-capture-size (engines/vllm_graphs.py)
    cudagraph_capture_sizes: Optional[tuple] = None  # vLLM's --cudagraph-capture-sizes (engines/vllm_graphs.py)
    num_gpu_blocks_override: Optional[int] = None  # vLLM's --num-gpu-blocks-override
    speculative_config: Optional[object] = None  # vLLM's --speculative-config (engines/vllm_speculative.py)
    dp: Optional[int] = None  # vLLM's --data-parallel-size (None: 1)
    dcp: Optional[int] = None  # vLLM's --decode-context-parallel-size (None: 1; engines/vllm_dcp.py)
    dcp_interleave: Optional[int] = None  # vLLM's --cp-kv-cache-interleave-size (None: 1)
    dcp_comm_backend: Optional[str] = None  # vLLM's --dcp-comm-backend (None: ag_rs; engines/vllm_dcp.py)
    dcp_q_replicate: Optional[bool] = None  # vLLM's --dcp-q-replicate / --no-dcp-q-replicate (None: off)
    pcp: Optional[int] = None  # vLLM's --prefill-context-parallel-size (engines/vllm_pcp.py; None: 1)
    enable_expert_parallel: bool = False  # vLLM's --enable-expert-parallel
    enable_eplb: bool = False  # vLLM's --enable-eplb (engines/vllm_eplb.py, with the next two)
    eplb_config: Optional[object] = None  # vLLM's --eplb-config: its JSON object, as a mapping
    num_redundant_experts: Optional[int] = None  # vLLM 0.9.2-0.11.2's --num-redundant-experts
    mm_processor_kwargs: Optional[object] = None  # vLLM's --mm-processor-kwargs (engines.ProcessorKwargs)
    quantization: Optional[str] = None  # vLLM's --quantization (model/quantization.py: the weights re-priced)
    dtype: Optional[str] = None  # vLLM's --dtype (None: auto, as the model's dtype and the GPU leave it)
    max_num_seqs: Optional[int] = None  # vLLM's --max-num-seqs (None: the engine's for the GPU)
    max_num_batched_tokens: Optional[int] = None  # vLLM's --max-num-batched-tokens (None: the engine's for the GPU)
    pp_layer_partition: Optional[tuple] = None  # decoder layers per stage, as vLLM's VLLM_PP_LAYER_PARTITION
    gpu_memory: Optional[int] = None  # bytes: the GPU's memory in place of the catalog's (kvplan's own)
    gpus_per_node: Optional[int] = None  # the GPUs of one node in place of the catalog's (kvplan's own; remedies)
    enable_lora: bool = False  # vLLM's --enable-lora (engines/vllm_lora.py, with the next four)
    max_loras: Optional[int] = None  # vLLM's --max-loras (None: 1)
    max_lora_rank: Optional[int] = None  # vLLM's --max-lora-rank (None: 16)
    lora_dtype: Optional[str] = None  # vLLM's --lora-dtype (None: auto)
    fully_sharded_loras: bool = False  # vLLM's --fully-sharded-loras
    runner: str = "auto"  # vLLM's --runner (engines/vllm_runner_flag.py)
    convert: str = "auto"  # vLLM's --convert
    pooler_config: Optional[str] = None  # vLLM's --pooler-config, canonical JSON (engines/vllm_pooler_config.py)
    mamba_cache_dtype: Optional[str] = None  # vLLM's --mamba-cache-dtype (engines/vllm_cache_flags.py; None: auto)
    mamba_ssm_cache_dtype: Optional[str] = None  # vLLM's --mamba-ssm-cache-dtype
    disable_sliding_window: bool = False  # vLLM's --disable-sliding-window
    # vLLM's --enable-prefix-caching / --no-enable-prefix-caching (None: vLLM's default) and --mamba-block-size
    # (engines/vllm_prefix_flag.py)
    enable_prefix_caching: Optional[bool] = None
    mamba_block_size: Optional[int] = None
    # vLLM's --enable-chunked-prefill / --no-enable-chunked-prefill (None: vLLM's default): engines/vllm_chunked_flag.py
    enable_chunked_prefill: Optional[bool] = None
    # vLLM's --compilation-config (canonical JSON) and -O / --optimization-level (as given): engines/vllm_compilation.py
    compilation_config: Optional[str] = None
    optimization_level: Optional[str] = None
    # the model's own length where context is vLLM's auto-fit (AUTO_FIT) and check has fitted it (check/auto_fit.py
    # fitted): the length vLLM builds its runner with before it fits a shorter one; None otherwise
    fitted_from: Optional[int] = None
    file: Optional[str] = None  # the deployments file, as given on the command line
    line: Optional[int] = None  # 1-based line of the entry's first key
    key_lines: dict = field(default_factory=dict)  # key -> 1-based line

    def line_of(self, key: Optional[str]) -> Optional[int]:
        return self.key_lines.get(key, self.line) if key else self.line

    @property
    def auto_fit(self) -> bool:
        """context is vLLM's auto-fit: as given (AUTO_FIT), or fitted (fitted_from)."""
        return self.context == AUTO_FIT or self.fitted_from is not None


def one_line(message: str) -> str:
    return " ".join(str(message).split())


def _bad(message: str) -> KvplanError:
    return KvplanError(one_line(message))


# ---- field values (shared by the options and the file) -----------------------------------------------------

def _gpu(value) -> str:
    if not isinstance(value, str):
        raise FieldError("gpu", f"must be a GPU name from the catalog, got {quote(value)}.")
    return find_gpu(value).name


def _engine(value) -> str:
    from ..engines import get_engine

    if not isinstance(value, str):
        raise FieldError("engine", f"must be vllm, vllm==<release> or none, got {quote(value)}.")
    get_engine(value)  # FieldError naming the valid engines
    return value.strip().lower()


def _flag(name: str):
    def check(value) -> bool:
        if not isinstance(value, bool):
            what = f"the text {quote(value)}" if isinstance(value, str) else quote(value)
            raise FieldError(name, f"must be true or false (a YAML boolean, unquoted), got {what}.")
        return value
    check.boolean = True  # a switch: YAML 1.1's yes / no / on / off are refused in it (_Values)
    return check


def _media_limits(value):
    from ..engines import media_limits

    return media_limits(value)


def _encoder_tp_mode(value) -> Optional[str]:
    from ..engines import encoder_tp_mode

    return encoder_tp_mode(value)


def _graphs():
    from ..engines import vllm_graphs

    return vllm_graphs


def _cpu_offload_gb(value) -> Optional[float]:
    from ..engines import cpu_offload_gb

    return cpu_offload_gb(value)


def _gpu_blocks(value) -> Optional[int]:
    from ..engines import gpu_blocks_override

    if isinstance(value, str):  # a YAML integer, not text (as tp)
        raise FieldError("num_gpu_blocks_override", f"must be a whole number of KV-cache blocks, unquoted, got "
                                                    f"{quote(value)}.")
    return gpu_blocks_override(value)


def _dcp():
    from ..engines import vllm_dcp

    return vllm_dcp


def _pcp():
    from ..engines import vllm_pcp

    return vllm_pcp


def _unquoted(field: str, value):
    if isinstance(value, str):  # a YAML integer, not text (as tp)
        raise FieldError(field, f"must be a whole number, unquoted, got {quote(value)}.")
    return value


def _dp(value) -> Optional[int]:
    from ..engines import data_parallel_size

    if isinstance(value, str):  # a YAML integer, not text (as tp)
        raise FieldError("dp", f"must be a whole number of engine replicas, unquoted, got {quote(value)}.")
    return data_parallel_size(value)


def _eplb_config(value) -> dict:
    from ..engines.vllm_eplb import eplb_config

    return eplb_config(value)


def _redundant(value) -> Optional[int]:
    from ..engines.vllm_eplb import redundant_count

    if isinstance(value, str):  # a YAML integer, not text (as tp)
        raise FieldError("num_redundant_experts", f"must be a whole number of experts, unquoted, got {quote(value)}.")
    return redundant_count(value)


def _processor_kwargs(value):
    from ..engines import mm_processor_kwargs

    return mm_processor_kwargs(value)


def _lora_setting(**settings):
    """vllm_lora.lora_config with LoRA on and one setting given: the setting's own checks."""
    from ..engines import enable_lora

    return enable_lora(True, **settings)


def _lora_count(field: str, value) -> int:
    """max_loras / max_lora_rank as estimate checks them (vllm_lora.lora_config, the one place): the checks that hold
    with LoRA off here; max_loras' range (LoRAConfig's Field(ge=1)) with enable_lora, as the deployment is built."""
    from ..engines import enable_lora
    from ..units import whole_number

    if isinstance(value, str):  # a YAML integer, not text (as tp)
        raise FieldError(field, f"must be a whole number, unquoted, got {quote(value)}.")
    enable_lora(False, **{field: value})
    return whole_number(value)


def lora_settings(fields: dict):
    """The deployment's LoRA (engines/vllm_lora.LoraConfig; None when off: a setting without enable_lora is ignored,
    as vLLM ignores it, and check warns of it)."""
    from ..engines import enable_lora

    return enable_lora(fields.get("enable_lora"), fields.get("max_loras"), fields.get("max_lora_rank"),
                       fields.get("lora_dtype"), fields.get("fully_sharded_loras"))


MAX_BLOCK_SIZE = 2**16


def _runner(value) -> str:
    from ..engines.vllm_runner_flag import runner_choice

    return runner_choice(value)


def _convert(value) -> str:
    from ..engines.vllm_runner_flag import convert_choice

    return convert_choice(value)


def _pooler_config(value) -> Optional[str]:
    from ..engines.vllm_pooler_config import pooler_config_choice

    return pooler_config_choice(value)


def _mamba_block_size(value) -> int:
    """vLLM's --mamba-block-size: a YAML integer of tokens above 0, unquoted (as block_size)."""
    from ..engines.vllm_prefix_flag import mamba_block_size

    if isinstance(value, str):
        raise FieldError("mamba_block_size", f"must be a whole number of tokens, unquoted, got {quote(value)}.")
    return mamba_block_size(value)


def block_size(value) -> int:
    """vLLM's --block-size: a positive number of tokens a KV-cache block (estimate takes the same). Which values a
    release takes is the engine's to say: the argparse choices up to 0.17, from 0.18 any int its attention backends
    take (vllm_engine.check_block_size, vllm_backend_refusals.attention_block_refusal)."""
    if isinstance(value, str):  # a YAML integer, not text (as tp)
        raise FieldError("block_size", f"must be a whole number of tokens, unquoted, got {quote(value)}.")
    return require_positive("block_size", value, maximum=MAX_BLOCK_SIZE)


def _speculative(value):
    from ..engines import speculative_config

    return speculative_config(value)


def _quantization(value) -> str:
    from ..model.quantization import quantization_method

    return quantization_method(value)


def _model_dtype(value) -> str:
    from ..model.quantization import model_dtype

    return model_dtype(value)


def batched_tokens(value, field: str = "max_num_batched_tokens") -> int:
    """vLLM's --max-num-batched-tokens: a positive token count in vLLM's human-readable form (16384, 16K, 16k)."""
    return require_positive(field, human_int(value, field))


def layer_partition(value, field: str = "pp_layer_partition") -> tuple:
    """Layers per pipeline stage as VLLM_PP_LAYER_PARTITION writes them ("31,30"), or a YAML list of them; whether
    they fit the model and pp is sharding's to say (plan/sharding.py)."""
    if isinstance(value, list):
        for count in value:
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise FieldError(field, f"takes positive whole numbers of layers (e.g. 31,30 or [31, 30]), got "
                                        f"{quote(count)}.")
        value = ",".join(map(str, value))
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise FieldError(field, f"takes layer counts separated by commas (e.g. 31,30), got {quote(value)}.")
    return tuple(int_list(str(value), field, "31,30"))


# context as vLLM's auto-fit: auto and -1 both read as -1 (utils/argparse_utils.py 0.32.0:76-93
# human_readable_int_or_auto); check fits the length as vLLM would (check/auto_fit.py fitted)
AUTO_FIT = -1


def _length(value) -> int:
    """check's context: one length, or vLLM's auto-fit (auto or -1: AUTO_FIT), whose release check_deployment
    checks (vllm_auto_fit.refuse_auto_fit)."""
    if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip().lower() in AUTO_LENGTHS:
        return AUTO_FIT
    if isinstance(value, (list, tuple)) or isinstance(value, str) and "," in value:  # not a malformed number
        raise FieldError("context", f"takes one length in check, got {quote(value)}: a deployment is checked at "
                                    f"one max model length, so check each length on its own (estimate sweeps them).")
    return parse_tokens(value, "context")


def _kv_dtype(value, engine: str) -> str:
    """kv_dtype (None: auto), refused as estimate's --kv-cache-dtype where no release takes it, listing the values
    of the deployment's `engine` (VllmEngine.known_kv_dtype); one its release does not list is check's to say."""
    from ..engines import get_engine

    if value is None:
        return DEFAULTS["kv_dtype"]
    return getattr(get_engine(engine), "known_kv_dtype", check_kv_dtype)(value)


def _mamba_dtype(name: str, value) -> str:
    """A Mamba state dtype (vllm_cache_flags.mamba_dtype); the release's own list is the engine's to check."""
    from ..engines.vllm_cache_flags import mamba_dtype

    return mamba_dtype(name, value)


# field -> validator of its value; each raises FieldError naming the field (kv_dtype: _kv_dtype, with the engine)
VALIDATORS = {
    "tp": lambda v: require_positive("tp", v),
    "pp": lambda v: require_positive("pp", v),
    "gpu": _gpu,
    "gpu_util": lambda v: require_fraction("gpu_util", v),
    "kv_budget": lambda v: parse_size(v, "kv_budget"),
    "context": _length,
    "min_model_len": lambda v: parse_tokens(v, "min_model_len"),
    "min_concurrency": lambda v: require_positive("min_concurrency", v),
    "revision": check_revision,
    "engine": _engine,
    "enforce_eager": _flag("enforce_eager"),
    "skip_mm_profiling": _flag("skip_mm_profiling"),
    "language_model_only": _flag("language_model_only"),
    "limit_mm_per_prompt": _media_limits,
    "mm_encoder_tp_mode": _encoder_tp_mode,
    "cpu_offload_gb": _cpu_offload_gb,
    "max_cudagraph_capture_size": lambda v: _graphs().max_capture_size_value(v),
    "cudagraph_capture_sizes": lambda v: _graphs().capture_sizes_value(v),
    "num_gpu_blocks_override": _gpu_blocks,
    "speculative_config": _speculative,
    "dp": _dp,
    "dcp": lambda v: _dcp().dcp_size(_unquoted("dcp", v)),
    "dcp_interleave": lambda v: _dcp().interleave_size(_unquoted("dcp_interleave", v)),
    "dcp_comm_backend": lambda v: _dcp().comm_backend(v),
    "dcp_q_replicate": _flag("dcp_q_replicate"),
    "pcp": lambda v: _pcp().pcp_size(_unquoted("pcp", v)),
    "enable_expert_parallel": _flag("enable_expert_parallel"),
    "enable_eplb": _flag("enable_eplb"),
    "eplb_config": _eplb_config,
    "num_redundant_experts": _redundant,
    "mm_processor_kwargs": _processor_kwargs,
    "block_size": block_size,
    "quantization": _quantization,
    "dtype": _model_dtype,
    "max_num_seqs": lambda v: require_positive("max_num_seqs", v),
    "max_num_batched_tokens": batched_tokens,
    "pp_layer_partition": layer_partition,
    "gpu_memory": parse_gpu_memory,
    "gpus_per_node": node_gpus,
    "enable_lora": _flag("enable_lora"),
    "max_loras": lambda v: _lora_count("max_loras", v),
    "max_lora_rank": lambda v: _lora_count("max_lora_rank", v),
    "lora_dtype": lambda v: _lora_setting(lora_dtype=v).lora_dtype,
    "fully_sharded_loras": _flag("fully_sharded_loras"),
    "runner": _runner,
    "convert": _convert,
    "pooler_config": _pooler_config,
    "mamba_cache_dtype": lambda v: _mamba_dtype("mamba_cache_dtype", v),
    "mamba_ssm_cache_dtype": lambda v: _mamba_dtype("mamba_ssm_cache_dtype", v),
    "disable_sliding_window": _flag("disable_sliding_window"),
    "enable_prefix_caching": _flag("enable_prefix_caching"),
    "enable_chunked_prefill": _flag("enable_chunked_prefill"),
    "mamba_block_size": _mamba_block_size,
    "compilation_config": lambda v: v,  # read as the entry's release reads it: deployment_fields
    "optimization_level": lambda v: _compilation().level_value(v),
}


def _compilation():
    from ..engines import vllm_compilation

    return vllm_compilation
DEFAULTS = {"gpu_util": DEFAULT_GPU_UTIL, "context": DEFAULT_CONTEXT, "kv_dtype": "auto", "engine": "vllm",
            "enforce_eager": False, "skip_mm_profiling": False, "language_model_only": False,
            "enable_expert_parallel": False, "enable_eplb": False, "enable_lora": False, "fully_sharded_loras": False,
            "runner": "auto", "convert": "auto", "disable_sliding_window": False}


def deployment_fields(values: dict) -> dict:
    """Validated values of the optional fields given (None: not given, the default applies). A deployments file is
    the user's input as much as the flags are, so the fields that contradict each other (a layer partition of
    another number of stages than pp) are refused here for both, with the key's line in a file (exit 2), not
    left to check's verdict on the model (plan/sharding.py require_stage_counts)."""
    fields = {key: DEFAULTS.get(key) if values.get(key) is None else VALIDATORS[key](values[key])
              for key in OPTIONAL_KEYS if key != "kv_dtype"}
    fields["kv_dtype"] = _kv_dtype(values.get("kv_dtype"), fields["engine"])
    if fields["compilation_config"] is not None:  # text as the release's parser reads it (vllm_compilation_text.py)
        from ..engines.vllm_compilation_text import release_of

        fields["compilation_config"] = _compilation().config_value(fields["compilation_config"],
                                                                   release_of(fields["engine"]))
    require_stage_counts(fields["pp"], fields["pp_layer_partition"])
    return fields


def one_kv_dtype(kv_dtype) -> None:
    """--kv-cache-dtype as check's flag takes it: one dtype (a comma list, or the API's list, refused before the dtype
    check, which would call the list unknown)."""
    if isinstance(kv_dtype, (list, tuple)) or isinstance(kv_dtype, str) and "," in kv_dtype:
        raise FieldError("kv_dtype", f"takes one KV-cache dtype in check, got {quote(kv_dtype)}: check sweeps TP "
                                     f"degrees, not KV dtypes; run it once per dtype (estimate sweeps them).")


def model_deployments(model: str, tps: list, **options) -> list:
    """`kvplan check MODEL` at each TP degree: one deployment per degree, named after it."""
    if not tps:
        raise FieldError("tp", "is required with MODEL (a TP degree such as 8, or several: 2,4,8).")
    for tp in tps:
        require_positive("tp", tp)
    one_kv_dtype(options.get("kv_dtype"))
    common = deployment_fields(options)
    # the name says the parallel degrees set: the pipeline's and the context-parallel ones (-dcp shares the TP
    # GPUs, -pcp multiplies them: its notice gives the GPU count)
    degrees = "".join(f"-{key}{common[key]}" for key in ("pp", "dcp", "pcp") if common.get(key))
    return [Deployment(name=f"tp{tp}{degrees}", model=model, tp=tp, **common) for tp in dict.fromkeys(tps)]


def mapping_deployments(value) -> list:
    """A deployments file's content given as Python (the API's check_deployments): {"deployments": [entry, ...]} or
    the list itself, each entry a dict with the file's keys, checked by the same validators as the file's values. An
    error names the entry and the key as the file's do, without a line."""
    if isinstance(value, dict):
        for key in value:
            if key not in TOP_KEYS:
                raise _unknown_key("the deployments mapping", key, TOP_KEYS)
        if "deployments" not in value:
            raise FieldError("deployments", "has no 'deployments' key; list the deployments to check under it.")
        value = value["deployments"]
    if not isinstance(value, (list, tuple)) or not value:
        raise FieldError("deployments", f"must be a non-empty list of entries (each a dict with name, model and tp), "
                                        f"got {quote(value)}.")
    deployments, seen = [], set()
    for index, entry in enumerate(value, start=1):
        dep = _mapping_deployment(index, entry)
        if dep.name in seen:
            raise _bad(f"deployment name {quote(dep.name)} is used twice; give each entry a unique name.")
        seen.add(dep.name)
        deployments.append(dep)
    return deployments


def _mapping_deployment(index: int, entry) -> Deployment:
    keys = REQUIRED_KEYS + OPTIONAL_KEYS  # no `serve:`: its flags are read by the command line's parser
    if not isinstance(entry, dict):
        raise _bad(f"deployments entry {index} must be a dict with name, model and tp, got {quote(entry)}.")
    try:
        name = deployment_name(entry.get("name"))
    except FieldError as exc:
        raise _bad(exc.spelled(f"deployments entry {index} field 'name'")) from None
    where = f"deployment {quote(name)}"
    if "serve" in entry:  # a file's key, whose flags only the command line's parser reads: not "unknown"
        raise _bad(f"{where} holds 'serve', which only `kvplan check --file` reads; give its flags as the entry's "
                   f"keys (tp, context, kv_dtype, ...).")
    for key in entry:
        if key not in keys:
            raise _unknown_key(where, key, keys)
    for key in REQUIRED_KEYS[1:]:
        if key not in entry:
            raise _bad(f"{where} is missing '{key}'; every entry needs name, model and tp.")
    try:
        model = entry["model"]
        if not isinstance(model, str):  # a config.json's object, read as that file would be, or a pathlib.Path,
            from ..model.sources import model_argument  # as its path (model/sources.py); else FieldError('model')

            model = model_argument(model)
        elif not model.strip():
            raise FieldError("model", f"must be a Hugging Face id, a config.json, a model folder or a config.json's "
                                      f"object (a dict), got {quote(model)}.")
        tp = VALIDATORS["tp"](entry["tp"])
        one_kv_dtype(entry.get("kv_dtype"))
        fields = deployment_fields({key: entry.get(key) for key in OPTIONAL_KEYS})
    except FieldError as exc:
        raise _bad(exc.spelled(f"{where} field '{exc.field}'")) from None
    return Deployment(name=name, model=model, tp=tp, **fields)


# ---- the deployments file ----------------------------------------------------------------------------------
# Read with PyYAML's safe composer (no Python tags), then turned into values here, node by node, so that every
# value and the line it is reported at come from the same parse. Bounded: at most MAX_FILE_BYTES, MAX_DEPTH
# levels of nesting (checked on the parser's events, before the composer recurses) and MAX_VALUES values after
# aliases are expanded (a billion-laughs file stops there). Refused with their line: a key given twice at any
# level (YAML keeps the last one silently), merge keys (<<), keys that are not plain scalars, integer
# and float fields written in a YAML 1.1 form another parser reads differently (010 octal, 0x10, 1_000, 2:16:32), and
# YAML 1.1's booleans yes / no / on / off (text to YAML 1.2).

MAX_FILE_BYTES = 2**20
MAX_DEPTH = 32
MAX_VALUES = 20_000
INT_FIELDS = ("tp", "pp", "min_concurrency", "min_model_len", "context", "kv_budget", "num_gpu_blocks_override", "dp",
              "dcp", "dcp_interleave", "pcp",
              "num_redundant_experts", "block_size", "max_num_seqs", "max_num_batched_tokens", "pp_layer_partition",
              "gpu_memory", "gpus_per_node", "mamba_block_size")
# YAML 1.1 (PyYAML) reads a float only with a dot and a signed exponent, so 9e-1, 1e300 and 1.0e300 stay strings
# while YAML 1.2 and the flags (--gpu-util 9e-1) read them as numbers: an unquoted one in these fields is read as the
# float YAML 1.2 reads, and so is quoted decimal text ('0.9', '8'), in both fields alike; YAML 1.1-only number forms
# (010, 0x8, 0b1, 1_000.5, 1:30) are refused as in INT_FIELDS (_yaml_1_1_number)
FLOAT_FIELDS = ("gpu_util", "cpu_offload_gb")
FLOAT_TAG = "tag:yaml.org,2002:float"
STR_TAG = "tag:yaml.org,2002:str"
# a scalar YAML reads as a number or date: its text
TEXT_FIELDS = ("name", "gpu", "kv_dtype", "revision", "engine", "quantization", "dtype", "runner", "convert",
               "mamba_cache_dtype", "mamba_ssm_cache_dtype")
PLAIN_INT = re.compile(r"^[-+]?(0|[1-9][0-9]*)$")
INT_TAG = "tag:yaml.org,2002:int"
# YAML 1.2's booleans (its core schema); PyYAML's YAML 1.1 also reads yes/no/on/off (any case) as booleans, which a
# YAML 1.2 reader reads as text: refused, as YAML 1.1-only numbers are
BOOL_TAG = "tag:yaml.org,2002:bool"
YAML_1_2_BOOLS = ("true", "True", "TRUE", "false", "False", "FALSE")


def _line(node) -> int:
    return node.start_mark.line + 1


def _yaml_1_1_form(text: str) -> str:
    if ":" in text:
        return "a base-60 (sexagesimal) number"
    if text.lower().lstrip("+-").startswith(("0x", "0b", "0o")):
        return "a hexadecimal, binary or octal number"
    if "_" in text:
        return "a number with '_' separators"
    if text.lstrip("+-").startswith("0"):
        return "an octal number"
    return "a signed number"


def _read_yaml(path: str):
    """The YAML file's root node, or one-sentence FieldError('file') naming the file."""
    import yaml  # only deployment files need it

    from ..model.files import read_regular
    from ..model.sources import existing_path

    if not path:  # Path('') is the current folder: said as what was given (' ' is a file name like any other)
        raise FieldError("file", f"is empty ({quote(path)}); give a YAML file with a list of entries under "
                                 f"'deployments:'.")
    if path == "-":  # the usual spelling of standard input, which a gate reading files by path does not read
        raise FieldError("file", "- is standard input, which kvplan check does not read; give the deployments file's "
                                 "path.")
    try:
        target = existing_path(path, what="")
    except KvplanError as exc:  # a name too long, a folder we may not enter
        raise FieldError("file", f"{str(exc).rstrip('.')}; give a YAML file with a list of entries under "
                                 f"'deployments:'.") from None
    if target is None:  # a name with spaces at its ends quoted, so they show
        shown = quote(path) if str(path) != str(path).strip() else path
        raise FieldError("file", f"{shown} does not exist; give a YAML file with a list of entries under "
                                 f"'deployments:'.")
    if target.is_dir():
        raise FieldError("file", f"{path} is a folder; give a YAML file with a list of entries under "
                                 f"'deployments:'.")
    try:
        text = read_regular(target, MAX_FILE_BYTES).decode("utf-8")
    except KvplanError as exc:
        raise FieldError("file", f"cannot be used: {exc}") from None
    except UnicodeDecodeError:
        raise FieldError("file", f"{path} cannot be read (not UTF-8); give a readable UTF-8 YAML file.") from None
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        depth = 0
        for event in yaml.parse(text, Loader=loader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise FieldError("file", f"{path}:{_line(event)}: nests deeper than {MAX_DEPTH} levels; a "
                                             f"deployments file needs three.")
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
        return yaml.compose(text, Loader=loader)
    except yaml.reader.ReaderError as exc:  # a control character: found here, as libyaml counts bytes, not lines
        where = text.find(chr(exc.character)) if isinstance(exc.character, int) else -1
        line = f" at line {text.count(chr(10), 0, where) + 1}" if where >= 0 else ""
        raise FieldError("file", f"{path} is not valid YAML{line}: it holds U+{exc.character:04X}, a control "
                                 f"character YAML does not allow; remove it.") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "it does not parse"
        if "nesting depth" in problem:  # libyaml >= 0.2.6 (PyYAML 6.0.4 wheels) stops deep flow nesting first
            line = f":{mark.line + 1}" if mark is not None else ""
            raise FieldError("file", f"{path}{line}: nests deeper than {MAX_DEPTH} levels; a deployments file "
                                     f"needs three.") from None
        raise FieldError("file", f"{path} is not valid YAML{where}: {problem}.") from None


class _Values:
    """Python values from YAML nodes, counting what it builds (aliases expand: the count bounds them) and the lists
    and mappings it is inside (an alias can nest a value in itself, or deeper than the text does: the parser's
    depth check sees only the text)."""

    def __init__(self, path: str):
        import yaml

        self.path = path
        self.left = MAX_VALUES
        self.building: list = []  # the lists and mappings being built, outermost first
        self.inner: list = []  # the key (None: a list item) of each value being built inside them
        self.key: Optional[str] = None  # the deployment field being built (field), which an error names
        self.constructor = yaml.constructor.SafeConstructor()
        self.seen: set = set()  # ids of the nodes built: an alias is the node it names, met again
        self.aliased = False

    def __call__(self, node):
        import yaml

        self.left -= 1
        self.aliased = self.aliased or id(node) in self.seen
        self.seen.add(id(node))
        if self.left < 0:
            why = " (YAML aliases repeat parts of it)" if self.aliased else ""
            raise _bad(f"{self.path}:{_line(node)}: the file expands to more than {MAX_VALUES:,} values{why}; a "
                       f"deployments file holds a few dozen.")
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
            return self.collection(node)
        if node.tag == INT_TAG and oversized(node.value):  # before PyYAML's int(), which stops at 4,300 digits
            return oversized(node.value)
        if node.tag == BOOL_TAG and node.value not in YAML_1_2_BOOLS:  # yes / no / on / off: YAML 1.1's only
            raise self.yaml_1_1_boolean(node)
        try:
            return self.constructor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            if self.key and isinstance(node, yaml.ScalarNode):  # `gpu_util: =` (YAML 1.1's value tag)
                raise _unbuildable(self.key, node) from None
            raise _bad(f"{self.path}:{_line(node)}: {getattr(exc, 'problem', None) or exc}.") from None

    def yaml_1_1_boolean(self, node) -> KvplanError:
        """yes / no / on / off, which YAML 1.1 reads as a boolean and YAML 1.2 as text: said with what to write (a
        switch: the boolean; within a field's mapping or list, at its key and line: the boolean, or quoted text; in
        a `serve:` list, whose arguments are text, quoted)."""
        means = str(self.constructor.construct_object(node)).lower()
        reads = f"which YAML 1.1 reads as {means} and YAML 1.2 as text"
        if not self.key:  # outside a deployment's fields (`- yes` for an entry): at its line
            return _bad(f"{self.path}:{_line(node)}: a value is written {quote(node.value)}, {reads}; write {means}, "
                        f"or quote it to mean the text.")
        if not self.building:  # a field's own value: a switch's (a field taking text reads it as text: field())
            return FieldError(self.key, f"is written {quote(node.value)}, {reads}; write {means}.")
        inner = self.inner[-1]  # the field's line is the error's: the key and line inside it are said
        held = quote(node.value) if inner is None else f"{inner}: {node.value}"
        fix = "quote it" if self.key == SERVE_KEY else f"write {means}, or quote it"
        return FieldError(self.key, f"has {held} at line {_line(node)}, {reads}; {fix} to mean the text.")

    def collection(self, node):
        """A list or mapping, refused where an alias puts it inside itself (&a [*a]: it never ends) or nests it
        deeper than MAX_DEPTH."""
        import yaml

        problem = None
        if any(node is outer for outer in self.building):
            problem = "holds itself through a YAML alias (&anchor ... *anchor), so it never ends; write the value out."
        elif len(self.building) >= MAX_DEPTH:
            problem = f"nests deeper than {MAX_DEPTH} levels through YAML aliases; a deployments file needs three."
        if problem and self.key:  # named by the field it is in, at the field's line (_deployment)
            raise FieldError(self.key, problem)
        if problem:
            kind = "list" if isinstance(node, yaml.SequenceNode) else "mapping"
            raise _bad(f"{self.path}:{_line(node)}: this {kind} {problem}")
        self.building.append(node)
        try:
            if isinstance(node, yaml.MappingNode):
                return {key: self.within(key, value) for key, (_, value) in self.keys(node).items()}
            return [self.within(None, item) for item in node.value]
        finally:
            self.building.pop()

    def within(self, key: Optional[str], node):
        """A value of a mapping (its key) or list (None) being built, which an error inside it names."""
        self.inner.append(key)
        try:
            return self(node)
        finally:
            self.inner.pop()

    def keys(self, node, owner: str = "") -> dict:
        """key -> (line, value node) of a mapping node; a repeated key, a merge key or a key that is not a
        plain scalar is an error at its line, naming `owner` (a deployment) where given, or the deployment field
        being built (a FieldError, which _deployment says with the deployment's name)."""
        import yaml

        found: dict = {}
        for key_node, value_node in node.value:
            line = _line(key_node)
            if key_node.tag == "tag:yaml.org,2002:merge" or key_node.value == "<<":
                if self.key:  # within a field's value ({image: 1, <<: *base}): said on the field, by deployment
                    raise FieldError(self.key, f"uses a merge key (<<) at line {line}, which a deployments file does "
                                               f"not support; write each key out.")
                raise _bad(f"{self.path}:{line}: merge keys (<<) are not supported in "
                           f"{owner or 'a deployments file'}; write each key out.")
            if not isinstance(key_node, yaml.ScalarNode):
                kind = "list" if isinstance(key_node, yaml.SequenceNode) else "mapping"
                if self.key:
                    raise FieldError(self.key, f"has a key at line {line} that is a {kind}; a key must be a plain "
                                               f"name.")
                raise _bad(f"{self.path}:{line}: {f'{owner}: ' if owner else ''}a key must be a plain name, got a "
                           f"{kind}.")
            key = key_node.value
            if key in found:
                if self.key:
                    raise FieldError(self.key, f"repeats key {quote(key)} at line {line} (first at line "
                                               f"{found[key][0]}); YAML would silently keep only the last, so give "
                                               f"each key once.")
                raise _bad(f"{self.path}:{line}: {owner or 'the file'} repeats key {quote(key)} (first at line "
                           f"{found[key][0]}); YAML would silently keep only the last, so give each key once.")
            found[key] = (line, value_node)
        return found

    def field(self, key: str, node):
        """The value of a deployment field: integer fields as plain decimal digits only; text fields as
        written."""
        import yaml

        items = node.value if key in INT_FIELDS and isinstance(node, yaml.SequenceNode) else [node]  # a list's too
        for item in items:
            if key in INT_FIELDS + FLOAT_FIELDS and _yaml_1_1_number(item):
                digits = "plain decimal digits" if key in INT_FIELDS else "a plain decimal number (8, 0.9, 9e-1)"
                raise FieldError(key, f"is written {quote(item.value)}, which YAML 1.1 reads as "
                                      f"{_yaml_1_1_form(item.value)} and YAML 1.2 may not; write {digits}.")
        if key in TEXT_FIELDS and node.tag != "tag:yaml.org,2002:null" and not isinstance(node.value, list):
            return node.value
        if node.tag == BOOL_TAG and node.value not in YAML_1_2_BOOLS and not getattr(VALIDATORS.get(key), "boolean",
                                                                                      False):
            return node.value  # `mm_encoder_tp_mode: yes`: the text YAML 1.2 reads, which the field's check speaks of
        if key in FLOAT_FIELDS and _decimal_text(node):
            return float(node.value)  # inf past the float range: the field's validator refuses it
        self.key = key
        try:
            return self(node)
        finally:
            self.key = None


def _unbuildable(key: str, node) -> FieldError:
    """A field's scalar PyYAML builds no value of (`=` is YAML 1.1's 'value' type, tag:yaml.org,2002:value): the
    field's own check of the text as written says what the field takes; where the text would do, quoting it says so."""
    validate = VALIDATORS.get(key)
    try:
        if validate is not None:
            validate(node.value)
    except FieldError as exc:
        return exc
    return FieldError(key, f"is written {quote(node.value)}, which YAML reads as {node.tag}, not a value; quote it "
                           f"(\"{node.value}\") to mean the text.")


def _yaml_1_1_number(node) -> bool:
    """A number only YAML 1.1 reads so (PyYAML's int and float resolvers): an int not in plain decimal digits (010
    octal, 0x8, 0b1, 1_000, 1:30 base 60), a float with '_' or ':' (1_000.5, 1:30.5); .inf and .nan are left to the
    field's validator."""
    if node.tag == INT_TAG:
        return not PLAIN_INT.match(node.value)
    return node.tag == FLOAT_TAG and ("_" in node.value or ":" in node.value)


def _decimal_text(node) -> bool:
    """A scalar YAML 1.1 leaves a string that is a decimal number (REAL_TEXT), read as a float in FLOAT_FIELDS:
    unquoted, YAML 1.2's float that YAML 1.1 misses (9e-1, 1e300); quoted, the same text, as the flags read it
    (--gpu-util '0.9', --cpu-offload-gb '8'), so both fields take '0.9' and '8' alike (FLOAT_FIELDS)."""
    return node.tag == STR_TAG and REAL_TEXT.fullmatch(node.value.strip()) is not None  # as the flags strip


# vLLM's names for what an entry writes under another key (EngineArgs fields, vllm/engine/arg_utils.py:500-597 in
# 0.32.0; `vllm serve` spells them --max-model-len): an unknown key that is one of them, or close to one, names the
# entry's key, where a plain closest match would name another field (kv_cache_dtype -> mamba_cache_dtype)
VLLM_NAMES = {"max_model_len": "context", "tensor_parallel_size": "tp", "pipeline_parallel_size": "pp",
              "data_parallel_size": "dp", "decode_context_parallel_size": "dcp",
              "cp_kv_cache_interleave_size": "dcp_interleave", "dcp_kv_cache_interleave_size": "dcp_interleave",
              "prefill_context_parallel_size": "pcp",
              "gpu_memory_utilization": "gpu_util", "kv_cache_dtype": "kv_dtype",
              "kv_cache_memory_bytes": "kv_budget"}


def _unknown_key(where: str, key, valid: tuple) -> KvplanError:
    import difflib

    written = str(key).strip().lstrip("-").replace("-", "_").lower()  # a flag's spelling: --max-num-seqs
    said = _vllm_key(where, key, written)
    if said is not None:
        return _bad(said)
    names = {**({k: k for k in valid}), **({k: v for k, v in VLLM_NAMES.items() if v in valid})}
    close = [written] if written in names else difflib.get_close_matches(written, list(names), n=1)
    hint = ""
    if close and names[close[0]] != close[0]:
        hint = f" (vLLM's {close[0]} is '{names[close[0]]}' here)"
    elif close:
        hint = f" (did you mean '{close[0]}'?)"
    return _bad(f"{where} has unknown key {quote(key)}{hint}; valid keys are {', '.join(valid)}.")


def _vllm_key(where: str, key, written: str):
    """The sentence for an unknown key that is a `vllm serve` flag kvplan does not read (written as an EngineArgs
    field, hf_overrides, or as the flag), as the command line says it (cli/vllm_serve_flags.py, imported only here):
    what to write instead, what it changes that kvplan does not model, or that it changes nothing; None for others."""
    from ..cli.flags import FLAGS, VLLM_SERVER_FLAGS
    from ..cli.vllm_serve_flags import NOTHING, in_file, vllm_flag

    flag = "--" + written.replace("_", "-")
    if flag in VLLM_SERVER_FLAGS:
        return f"{where} has key {quote(key)}: vLLM's {flag} {NOTHING}."
    known = vllm_flag(flag)
    if known is None or known.negated:
        return None
    keys = {FLAGS[field]: field for field in VALID_KEYS if field in FLAGS}  # the flags kvplan reads, as keys here
    return f"{where} has key {quote(key)}: {in_file(known, keys)}."


def _kind(value) -> str:
    """What a YAML value is, in YAML's words (a mapping, not a dict): for 'must be a list, got ...'."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"a boolean ({quote(value)})"
    if isinstance(value, (int, float)):
        return f"a number ({quote(value)})"
    if isinstance(value, str):
        return f"the text {quote(value)}"
    if isinstance(value, bytes):
        return "binary data (!!binary)"
    return {list: "a list", dict: "a mapping"}.get(type(value), f"a {type(value).__name__}")  # a date, a datetime


def further_file(path: str) -> str:
    """An argument beside --file, read as one more deployments file (pre-commit passes several): `path` when it names
    a file. Else one sentence that says how it was read, since a MODEL given with --file is the likelier slip, and
    names no --file the user never gave it."""
    from ..model.sources import existing_path

    found = existing_path(path, what="")
    if found is None or found.is_dir():
        raise KvplanError(f"{quote(path)} beside --file is read as one more deployments file (as pre-commit passes "
                          f"them), and it {'is a folder' if found else 'does not exist'}; check a MODEL with "
                          f"--tensor-parallel-size, or deployments files with --file, not both.")
    return path


def load_deployments(path: str, read_serve: Optional[Callable] = None) -> list:
    """Every entry under `deployments:`, validated, with the line of each key for annotations; a value the file
    wrote is said in errors as YAML writes it (errors.values_as_yaml). `read_serve` reads a `serve:` command as the
    command line reads its flags (cli/serve_command.read_serve, handed in by the command line, whose parser it is)."""
    with values_as_yaml():
        return _load_deployments(path, read_serve)


def _load_deployments(path: str, read_serve: Optional[Callable]) -> list:
    import yaml

    root = _read_yaml(path)
    values = _Values(path)
    if root is None or (isinstance(root, yaml.ScalarNode) and root.tag == "tag:yaml.org,2002:null"):
        raise FieldError("file", f"{path} is empty; it needs a list of entries under 'deployments:'.")
    if not isinstance(root, yaml.MappingNode):
        kind = "a list" if isinstance(root, yaml.SequenceNode) else _kind(values(root))
        raise FieldError("file", f"{path} must be a mapping with a 'deployments:' list at the top, got {kind}.")
    top = values.keys(root)
    for key, (line, _) in top.items():
        if key not in TOP_KEYS:
            raise _unknown_key(f"{path}:{line}: the file", key, TOP_KEYS)
    if "deployments" not in top:
        raise FieldError("file", f"{path} has no 'deployments:' key; list the deployments to check under it.")
    line, seq = top["deployments"]
    where = f"{path}:{line}: 'deployments'"
    if not isinstance(seq, yaml.SequenceNode):
        raise _bad(f"{where} must be a list of entries (each '- name: ...' with model and tp), got "
                   f"{_kind(values(seq))}.")
    if not seq.value:
        raise _bad(f"{where} is an empty list; add at least one entry with name, model and tp.")
    deployments, seen = [], {}
    for index, node in enumerate(seq.value, start=1):
        dep = _deployment(path, index, node, values, read_serve)
        if dep.name in seen:
            raise _bad(f"{path}:{dep.line}: deployment name {quote(dep.name)} is already used at line "
                       f"{seen[dep.name]}; give each entry a unique name.")
        seen[dep.name] = dep.line
        deployments.append(dep)
    return deployments


NAME_BREAKS = ("Cc", "Zl", "Zp")  # Unicode categories of control characters (\n, \t, NUL, DEL, C1) and line breaks


def deployment_name(value) -> str:
    """A deployment's name: a non-empty string that prints as one line in every output, so no control character
    or line break (a newline splits the table's row; CSV and JSON would each escape it their own way)."""
    import unicodedata

    if not isinstance(value, str) or not value.strip():
        raise FieldError("name", f"must be a non-empty string, got {quote(value)}.")
    bad = next((char for char in value if unicodedata.category(char) in NAME_BREAKS), None)
    if bad is not None:
        raise FieldError("name", f"holds U+{ord(bad):04X}, a control character or line break, in {quote(value)}; a "
                                 f"name is printable text on one line (letters, digits, spaces, punctuation).")
    return value


def _local_model(path: str, model: str) -> str:
    """A relative model path is read from the deployments file's folder first; a bundled Hub id stays the
    bundled spec (kvplan/model/sources.py, rule 1)."""
    from ..model.sources import bundled_for, existing_path

    if bundled_for(model) is not None or Path(model).is_absolute():
        return model
    try:
        local = existing_path(str(Path(path).parent / model))
    except KvplanError:
        return model  # not usable as a path: resolve() says why, or finds it on the Hub
    return str(local) if local is not None else model


def _written_name(node) -> Optional[str]:
    """The entry's name as its first `name:` writes it, where that is a valid name (deployment_name), else None."""
    import yaml

    for key_node, value_node in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == "name":
            text = value_node.value if isinstance(value_node, yaml.ScalarNode) else None
            try:
                return deployment_name(text) if value_node.tag != "tag:yaml.org,2002:null" else None
            except FieldError:
                return None
    return None


def _deployment(path: str, index: int, node, values: _Values, read_serve: Optional[Callable]) -> Deployment:
    import yaml

    line = _line(node)
    if not isinstance(node, yaml.MappingNode):
        raise _bad(f"{path}:{line}: deployments entry {index} must be a mapping with name, model and tp, got "
                   f"{_kind(values(node))}.")
    named = _written_name(node)  # errors before the name is checked still say whose entry it is
    entry_is = f"deployment {quote(named)} (entry {index})" if named is not None else f"deployments entry {index}"
    keys = values.keys(node, entry_is)
    line = min((key_line for key_line, _ in keys.values()), default=line)
    lines = {key: key_line for key, (key_line, _) in keys.items()}
    for key in keys:
        if key not in VALID_KEYS:
            raise _unknown_key(f"{path}:{lines[key]}: {entry_is}", key, VALID_KEYS)
    for key in REQUIRED_KEYS:
        if key not in keys and (key == "name" or SERVE_KEY not in keys):  # serve: gives model and tp
            what = {"name": "a unique label", "model": "a Hugging Face id, config.json or model folder",
                    "tp": "a positive integer"}[key]
            raise _bad(f"{path}:{line}: {entry_is} is missing '{key}' ({what}); every entry needs name, model and tp.")

    def label_of(key: str, name: str) -> str:
        return f"{path}:{lines.get(key, line)}: deployment {quote(name)} field '{key}'"

    try:
        name = deployment_name(values.field("name", keys["name"][1]))
    except FieldError as exc:
        raise _bad(exc.spelled(f"{path}:{lines['name']}: deployments entry {index} field 'name'")) from None
    try:
        entry = {key: values.field(key, value) for key, (_, value) in keys.items() if key != "name"}
    except FieldError as exc:
        raise _bad(exc.spelled(label_of(exc.field, name))) from None
    serve = None
    if SERVE_KEY in entry:
        serve = _serve(entry, lines, read_serve, label_of(SERVE_KEY, name))
    model = entry["model"]
    if not isinstance(model, str) or not model.strip():
        raise _bad(f"{label_of('model', name)} must be a Hugging Face id, a config.json or a model folder, got "
                   f"{quote(model)}.")
    try:
        tp = VALIDATORS["tp"](entry["tp"])
        if serve is not None:  # -O and --compilation-config: one kept before vLLM 0.12, as the entry's release keeps it
            one_kv_dtype(serve.fields.get("kv_dtype"))
            entry.update(serve.compilation(entry))
        fields = deployment_fields({key: entry.get(key) for key in OPTIONAL_KEYS})
        if serve is not None:
            serve.refuse_later_spellings(fields["engine"])
    except FieldError as exc:
        if serve is not None and exc.field in serve.fields:
            raise _bad(f"{label_of(SERVE_KEY, name)}: {serve.said(exc)}") from None
        raise _bad(exc.spelled(label_of(exc.field, name))) from None
    except KvplanError as exc:  # refuse_later_spellings: the command line's sentence
        raise _bad(f"{label_of(SERVE_KEY, name)}: {exc}") from None
    return Deployment(name=name, model=_local_model(path, model), tp=tp, **fields, file=path, line=line,
                      key_lines=lines)


def _serve(entry: dict, lines: dict, read_serve: Optional[Callable], where: str):
    """The entry's `serve:` command read (cli/serve_command.py) and its fields put in `entry`, each at the command's
    line; a field the entry also gives as a key, a model given in neither or a bad command is refused, at `where`.
    TP not given in either is vLLM's default, 1."""
    if read_serve is None:
        raise _bad(f"{where}: is read by `kvplan check --file`, whose parser reads its flags; give the fields as keys "
                   f"here.")
    try:
        serve = read_serve(entry.pop(SERVE_KEY))
    except KvplanError as exc:
        if hasattr(exc, "usage"):  # cli/serve_command.ServeUsage: said by the command line, at this entry
            exc.where = where
            raise
        raise _bad(f"{where}: {exc}") from None
    given = {**serve.fields, **{key: value for key, value in (("model", serve.model), ("tp", serve.tp))
                                if value is not None}}
    for key in given:
        if key in entry:
            raise _bad(f"{where}: gives {serve.spell(key)} and the entry gives key '{key}' at line {lines[key]}; "
                       f"give it once, in one place.")
    if "model" not in given and "model" not in entry:
        raise _bad(f"{where}: names no model and the entry has no 'model' key; give the model as `vllm serve` takes "
                   f"it (vllm serve MODEL, or --model MODEL).")
    entry.update({"tp": 1, **given} if "tp" not in entry else given)
    lines.update({key: lines[SERVE_KEY] for key in given})
    return serve
