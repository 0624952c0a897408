"""The commands as typer declares them: each parses its flags, calls kvplan/commands/ and hands the result to
`show`. No rule lives here.

No `from __future__ import annotations` here: typer reads every command's annotations at each start, and real
objects spare it compiling each string (half of building the command line). Commands import what they need when
they run, so that one command never pays for another's modules."""

import sys
from contextlib import contextmanager
from types import SimpleNamespace
from functools import lru_cache
from typing import List, Optional

import typer

from ..errors import FieldError, KvplanError, quote
from ..engines.vllm_releases import SPAN
from ..engines.vllm_underscore_flags import dashed
from ..units import is_auto_length
from .help_layout import fold_long_words
from .flags import (CAPTURE_SIZES_HELP, MAX_CAPTURE_HELP, PCP_HELP,  # noqa: I001
                    CHECK_CONTEXT_HELP, CHECK_MODEL_OPTIONS, CONTEXT_HELP, CPU_OFFLOAD_HELP, DEFAULT_GPU_HELP,
                    MM_PROCESSOR_KWARGS_HELP, ENABLE_LORA_HELP, MAX_LORAS_HELP, MAX_LORA_RANK_HELP, LORA_DTYPE_HELP,
                    MAMBA_CACHE_DTYPE_HELP, MAMBA_SSM_CACHE_DTYPE_HELP, DISABLE_SLIDING_WINDOW_HELP,
                    FULLY_SHARDED_LORAS_HELP, RUNNER_HELP, CONVERT_HELP, POOLER_CONFIG_HELP, PREFIX_CACHING_HELP,
                    MAMBA_BLOCK_SIZE_HELP, CHUNKED_PREFILL_HELP, loose_capture_sizes, boolean_typed,
                    valued_switches, typed_value_form,
                    DCP_HELP, DCP_INTERLEAVE_HELP, DCP_COMM_BACKEND_HELP, DCP_Q_REPLICATE_HELP, DP_HELP,
                    ENFORCE_EAGER_HELP, EP_HELP,
                    EPLB_CONFIG_HELP, EPLB_HELP,
                    REDUNDANT_HELP,
                    GPU_BLOCKS_OVERRIDE_HELP, SPECULATIVE_HELP,
                    FORMAT_HELP, GPU_UTIL_HELP, HUB_TIMEOUT_HELP, KV_BUDGET_HELP, KV_DTYPE_HELP,
                    LANGUAGE_MODEL_ONLY_HELP, LIMIT_MM_HELP, MM_ENCODER_TP_HELP, MODEL_HELP, SKIP_MM_PROFILING_HELP,
                    SUFFIXES, DTYPE_HELP, GPU_MEMORY_HELP, GPUS_PER_NODE_HELP, MAX_NUM_BATCHED_TOKENS_HELP,
                    MAX_NUM_SEQS_HELP,
                    PP_PARTITION_HELP, QUANTIZATION_HELP, REVISION_HELP,
                    VERIFY_COMPILATION, VERIFY_ENFORCE_EAGER_HELP, VERIFY_FORMAT_HELP, VERIFY_GRAPHS,
                    VERIFY_MAMBA_DTYPE, VERIFY_WINDOW,
                    _complete_gpu, _complete_kv_dtype, _complete_model, flag, typed, typed_spelling, LATER_SPELLINGS,
                    NEGATIVES, KVPLAN_OWN, last_switches, switch_spellings, typed_args,
                    COMPILATION_CONFIG_HELP, OPTIMIZATION_LEVEL_HELP, JSON_FLAGS)

app = typer.Typer(
    add_completion=True,
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Plan LLM KV-cache capacity, tensor parallelism and decode speed from a model's config.json, "
         "in vLLM's terms, then prove the plan on the local GPU.",
    epilog="Try: kvplan estimate meta-llama/Llama-3.1-8B-Instruct --gpu L4\n\n"
           "kvplan estimate Qwen/Qwen3-32B -tp 2 --max-model-len 32K,128K --kv-cache-dtype auto,fp8 --chart\n\n"
           "kvplan check --file deployments.yaml  (docs/ci.md)\n\n"
           "Every command takes -h. Shell completion: kvplan --install-completion.",
)


@lru_cache(maxsize=None)
def click_command():
    """`app` as the click command typer builds from the commands' signatures: built once per process (typer's own
    app() rebuilds it on every call, a tenth of the test suite's time in-process) and reused, as a click command can
    be: each call parses into a fresh context, the options' defaults are never written, and help reads the terminal's
    width and COLUMNS as it is laid out, not here."""
    command = typer.main.get_command(app)
    fold_long_words(command)  # --help spells every long flag whole at 80 columns (help_layout.py)
    for name in ("estimate", "check", "verify"):
        _refuse_loose_capture_sizes(command.commands[name])
        _read_later_spellings(command.commands[name])
    return command


def _read_later_spellings(command) -> None:
    """Have `command` read its long flags' underscores as dashes (--max_model_len, as vLLM's parser: flags.KVPLAN_OWN
    says why kvplan's own too), vLLM's later spellings of its flags as the flags themselves (flags.LATER_SPELLINGS)
    and each boolean flag's spellings as its last one typed (flags.last_switches: --no-enforce-eager, ...); the run's
    typed_args keep them as typed, for errors and the release check (refuse_later_spellings). The arguments after
    `--` are MODEL's, left as typed."""
    parse = command.parse_args
    switches = switch_spellings(read_names(command, switches=False))

    def parse_args(ctx, args):
        from ..engines.vllm_dotted_flags import fold

        cut = args.index("--") if "--" in args else len(args)
        respelled = fold([_respelled(arg) for arg in args[:cut]], JSON_FLAGS)  # --speculative-config.method ngram
        respelled = valued_switches(respelled)  # --enable-chunked-prefill false (vLLM 0.5.3-0.8.4)
        return parse(ctx, last_switches(respelled, switches) + list(args[cut:]))

    command.parse_args = parse_args


def read_names(command, switches: bool = True) -> set:
    """Every flag name `command` reads: its options' own, vLLM's later spellings of them and (`switches`) the
    negative spellings of its boolean flags."""
    names = {name for param in command.params for name in getattr(param, "opts", [])}
    names |= {later for later, flag_name in LATER_SPELLINGS.items() if flag_name in names}
    return names | set(switch_spellings(names)) if switches else names


def _respelled(arg: str) -> str:
    name, equals, value = dashed(arg).partition("=")
    return LATER_SPELLINGS.get(name, name) + equals + value


def _refuse_loose_capture_sizes(command) -> None:
    """Have `command` refuse `--cudagraph-capture-sizes 1 2 4 8` unquoted (vLLM's spelling) in one sentence, before
    click reads the 2, 4 and 8 as more MODEL arguments."""
    parse = command.parse_args

    def parse_args(ctx, args):
        stray = loose_capture_sizes(args)
        if stray:
            raise FieldError("cudagraph_capture_sizes", f"takes one argument here, but {' '.join(stray)} followed "
                                                        f"it: quote the list ('1 2 4 8', as vLLM takes it) or join "
                                                        f"it with commas (1,2,4,8).")
        return parse(ctx, args)

    command.parse_args = parse_args


def refuse_later_spellings(engine) -> None:
    """A vLLM flag typed as a release newer than `engine`'s first spells it (engines/vllm_engine.py SPELLING_SINCE,
    a boolean flag's negatives vllm_bool_flags.py: that release's `vllm serve` stops on it), anywhere in the run's
    flags."""
    from ..engines.vllm_bool_flags import VALUE_FORMS, value_refusal
    from ..engines.vllm_engine import SPELLING_SINCE, _release, refuse_spelling, refuse_switch, refuse_underscore

    for spelling in SPELLING_SINCE:
        refuse_spelling(typed_spelling((spelling,)), engine)
    for field, spellings in NEGATIVES.items():
        for spelling in spellings:
            if typed_spelling((spelling,)):
                refuse_switch(field, flag(field), spelling, engine)
    for field in VALUE_FORMS:  # --enable-chunked-prefill false where the release's flag takes no value
        spelled = typed_value_form(field)
        version = _release(engine) if spelled else None
        said = version and value_refusal(field, flag(field), spelled, version)
        if said:
            raise KvplanError(said)
    for name in underscored_names():  # --max_model_len before vLLM 0.5.1
        refuse_underscore(name, engine)
    refuse_dotted(engine)


def refuse_dotted(engine) -> None:
    """A dotted JSON key (--speculative-config.method ngram) typed where the release `engine` names does not fold it
    so (engines/vllm_dotted_flags.py)."""
    from ..engines.vllm_dotted_flags import refusal, split
    from ..engines.vllm_engine import _release

    options = typed_args[:typed_args.index("--")] if "--" in typed_args else typed_args
    version = None
    for index, arg in enumerate(options):
        parts = split(dashed(arg))
        if parts is None or parts[0] not in JSON_FLAGS:
            continue
        version = version or _release(engine)
        if version is None:
            return
        value = parts[2] if parts[2] is not None else (options[index + 1] if index + 1 < len(options) else None)
        said = refusal(arg, value, version)
        if said:
            raise KvplanError(said)


def underscored_names() -> list:
    """The names of vLLM's long flags the user typed with an underscore (--max_model_len; kvplan's own flags, which
    no release reads, are left out: flags.KVPLAN_OWN), in the order typed."""
    options = typed_args[:typed_args.index("--")] if "--" in typed_args else typed_args
    names = [arg.partition("=")[0] for arg in options if arg.startswith("--")]
    return [name for name in names if "_" in name.partition(".")[0] and dashed(name) not in KVPLAN_OWN]


class ReaderLeft(Exception):
    """stdout's reader went away (`kvplan ... | head`)."""


def hub_deadline(value):
    """The --hub-timeout of one command, for the Hub reads inside it."""
    from ..model.hub import hub_deadline as deadline

    return deadline(value)


def show(result, fmt: str, **options) -> None:
    """Render the whole output before writing any of it: a failure never leaves half an output."""
    from ..render import emit

    write_stdout(emit(result, fmt, **options))


CLOSED = "cannot write the output: stdout is closed."


def write_stdout(text: str) -> None:
    """`text` on stdout in one write, flushed: a closed stdout, a full disk or an encoding that cannot hold the text
    is one line (exit 2), not a traceback (writing_stdout). Where stdout's encoding has no box characters
    (PYTHONIOENCODING=ascii, a C locale) the tables are already ASCII and any other character it cannot hold (rich's
    '\u2026' in help, a model's name) is written as '?' (render.text.encodable), so the output degrades, not fails."""
    from ..render.text import draws_boxes, encodable

    with writing_stdout():
        if sys.stdout is None:
            raise KvplanError(CLOSED)
        sys.stdout.write(text if draws_boxes() else encodable(text))
        sys.stdout.flush()


@contextmanager
def writing_stdout():
    """The one place a failed write to stdout becomes words: the reader left (ReaderLeft: exit 0, nothing said),
    else KvplanError (exit 2), stdout pointed at /dev/null first so that the final flush writes nothing half."""
    try:
        yield
    except BrokenPipeError:
        raise ReaderLeft() from None  # not an OSError: typer would turn that into exit 1
    except UnicodeEncodeError as exc:  # a ValueError: before the clause below
        _drop_stdout()
        raise KvplanError(f"cannot write the output to stdout: its encoding ({exc.encoding}) has no "
                          f"{quote(exc.object[exc.start:exc.end][:8])}; set PYTHONIOENCODING=utf-8 or use a UTF-8 "
                          f"locale.") from None
    except (OSError, ValueError) as exc:
        _drop_stdout()
        raise KvplanError(f"cannot write the output to stdout: {getattr(exc, 'strerror', None) or exc}.") from None


class GuardedStdout:
    """sys.stdout while a command runs (run.guarded_stdout): what --help, --version and a command write is held here
    and written once as the command ends (write_out, through write_stdout), so a full disk, a closed stdout (`stream`
    None) or an encoding that cannot hold the text fails alike, and nothing half-written is left; everything else
    (isatty, encoding, fileno), which rich and click lay out by, is the real stream's."""

    def __init__(self, stream):
        self._stream = stream
        self._held = []

    def write(self, text) -> int:
        if not isinstance(text, str):  # as a text stream refuses bytes: click probes for a binary writer so
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        self._held.append(text)
        return len(text)

    def flush(self) -> None:
        """Nothing to flush before write_out: the held text goes out whole or not at all."""

    def write_out(self) -> None:
        """The held text in one write to the real stream (which must be sys.stdout again); none held, none written."""
        text = "".join(self._held)
        self._held.clear()
        if text:
            write_stdout(text)

    def isatty(self) -> bool:
        return self._stream is not None and self._stream.isatty()

    def __getattr__(self, name):
        if self._stream is None:  # rich and click read encoding, fileno... with getattr and a default
            raise AttributeError(name)
        return getattr(self._stream, name)


# the engine flags that change its budget (engines.EngineFlags), declared once for estimate and check
ENFORCE_EAGER = typer.Option(False, "--enforce-eager", help=ENFORCE_EAGER_HELP)
SKIP_MM_PROFILING = typer.Option(False, "--skip-mm-profiling", help=SKIP_MM_PROFILING_HELP)
LANGUAGE_MODEL_ONLY = typer.Option(False, "--language-model-only", help=LANGUAGE_MODEL_ONLY_HELP)
LIMIT_MM_PER_PROMPT = typer.Option(None, "--limit-mm-per-prompt", help=LIMIT_MM_HELP)
MM_ENCODER_TP_MODE = typer.Option(None, "--mm-encoder-tp-mode", help=MM_ENCODER_TP_HELP)
CPU_OFFLOAD_GB = typer.Option(None, "--cpu-offload-gb", help=CPU_OFFLOAD_HELP)
MAX_CAPTURE_SIZE = typer.Option(None, "--max-cudagraph-capture-size", help=MAX_CAPTURE_HELP)
CAPTURE_SIZES = typer.Option(None, "--cudagraph-capture-sizes", help=CAPTURE_SIZES_HELP)
MM_PROCESSOR_KWARGS = typer.Option(None, "--mm-processor-kwargs", help=MM_PROCESSOR_KWARGS_HELP)
NUM_GPU_BLOCKS_OVERRIDE = typer.Option(None, "--num-gpu-blocks-override", help=GPU_BLOCKS_OVERRIDE_HELP)
SPECULATIVE_CONFIG = typer.Option(None, "--speculative-config", help=SPECULATIVE_HELP)
DATA_PARALLEL_SIZE = typer.Option(None, "-dp", "--data-parallel-size", "--dp", help=DP_HELP)
DECODE_CONTEXT_PARALLEL_SIZE = typer.Option(None, "-dcp", "--decode-context-parallel-size", "--dcp", help=DCP_HELP)
DCP_INTERLEAVE = typer.Option(None, "--cp-kv-cache-interleave-size", "--dcp-kv-cache-interleave-size",
                              help=DCP_INTERLEAVE_HELP)
DCP_COMM_BACKEND = typer.Option(None, "--dcp-comm-backend", help=DCP_COMM_BACKEND_HELP)
DCP_Q_REPLICATE = typer.Option(False, "--dcp-q-replicate", help=DCP_Q_REPLICATE_HELP)
NO_DCP_Q_REPLICATE = typer.Option(False, "--no-dcp-q-replicate", help="As vLLM's --no-dcp-q-replicate: its default, "
                                  "the query gathered (see --dcp-q-replicate).")
PREFILL_CONTEXT_PARALLEL_SIZE = typer.Option(None, "-pcp", "--prefill-context-parallel-size", "--pcp", help=PCP_HELP)
ENABLE_EXPERT_PARALLEL = typer.Option(False, "--enable-expert-parallel", "-ep", help=EP_HELP)
ENABLE_EPLB = typer.Option(False, "--enable-eplb", help=EPLB_HELP)
EPLB_CONFIG = typer.Option(None, "--eplb-config", help=EPLB_CONFIG_HELP)
NUM_REDUNDANT_EXPERTS = typer.Option(None, "--num-redundant-experts", help=REDUNDANT_HELP)
ENABLE_LORA = typer.Option(False, "--enable-lora", help=ENABLE_LORA_HELP)
MAX_LORAS = typer.Option(None, "--max-loras", help=MAX_LORAS_HELP)
MAX_LORA_RANK = typer.Option(None, "--max-lora-rank", help=MAX_LORA_RANK_HELP)
LORA_DTYPE = typer.Option(None, "--lora-dtype", help=LORA_DTYPE_HELP)
FULLY_SHARDED_LORAS = typer.Option(False, "--fully-sharded-loras", help=FULLY_SHARDED_LORAS_HELP)
RUNNER = typer.Option("auto", "--runner", help=RUNNER_HELP)
CONVERT = typer.Option("auto", "--convert", help=CONVERT_HELP)
POOLER_CONFIG = typer.Option(None, "--pooler-config", help=POOLER_CONFIG_HELP)
MAMBA_CACHE_DTYPE = typer.Option(None, "--mamba-cache-dtype", help=MAMBA_CACHE_DTYPE_HELP)
MAMBA_SSM_CACHE_DTYPE = typer.Option(None, "--mamba-ssm-cache-dtype", help=MAMBA_SSM_CACHE_DTYPE_HELP)
DISABLE_SLIDING_WINDOW = typer.Option(False, "--disable-sliding-window", help=DISABLE_SLIDING_WINDOW_HELP)
# two plain flags, not typer's on/off pair, whose second column would squeeze every option name at 80 columns
PREFIX_CACHING = typer.Option(False, "--enable-prefix-caching", help=PREFIX_CACHING_HELP)
NO_PREFIX_CACHING = typer.Option(False, "--no-enable-prefix-caching",
                                 help="As vLLM's --no-enable-prefix-caching (--disable-prefix-caching from vLLM 0.33): "
                                 "prefix caching off (see --enable-prefix-caching).")
MAMBA_BLOCK_SIZE = typer.Option(None, "--mamba-block-size", show_default=False, help=MAMBA_BLOCK_SIZE_HELP)
CHUNKED_PREFILL = typer.Option(False, "--enable-chunked-prefill", help=CHUNKED_PREFILL_HELP)
NO_CHUNKED_PREFILL = typer.Option(False, "--no-enable-chunked-prefill",
                                  help="As vLLM's --no-enable-chunked-prefill (--disable-chunked-prefill from vLLM "
                                  "0.33): chunked prefill off (see --enable-chunked-prefill).")
COMPILATION_CONFIG = typer.Option(None, "--compilation-config", "-cc", help=COMPILATION_CONFIG_HELP)
OPTIMIZATION_LEVEL = typer.Option(None, "-O", "--optimization-level", help=OPTIMIZATION_LEVEL_HELP)
# the other flags that change capacity, declared once for estimate and check
QUANTIZATION = typer.Option(None, "--quantization", "-q", help=QUANTIZATION_HELP)
DTYPE = typer.Option(None, "--dtype", help=DTYPE_HELP)
MAX_NUM_SEQS = typer.Option(None, "--max-num-seqs", help=MAX_NUM_SEQS_HELP)
MAX_NUM_BATCHED_TOKENS = typer.Option(None, "--max-num-batched-tokens", show_default=False,
                                      help=MAX_NUM_BATCHED_TOKENS_HELP)
PP_LAYER_PARTITION = typer.Option(None, "--pp-layer-partition", help=PP_PARTITION_HELP)
GPU_MEMORY = typer.Option(None, "--gpu-memory", help=GPU_MEMORY_HELP)
GPUS_PER_NODE = typer.Option(None, "--gpus-per-node", show_default=False, help=GPUS_PER_NODE_HELP)


def _list(text: str, field: str, example: str = "1,2,4,8", tokens: bool = False, auto_alone: bool = False) -> list:
    from ..units import int_list

    return int_list(text, field, example, tokens, auto_alone)


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        write_stdout(f"kvplan {__version__}\n")
        raise typer.Exit()


@app.callback()
def root(version: bool = typer.Option(False, "--version", "-V", callback=_version, is_eager=True,
                                      help="Print kvplan's version and exit.")) -> None:
    """Plan LLM KV-cache capacity, tensor parallelism and decode speed from a model's config.json, in vLLM's
    terms, then prove the plan on the local GPU."""


@app.command(short_help="vLLM's startup figures and max concurrency per plan; comma lists sweep.")
def estimate(
    model: str = typer.Argument(..., help=MODEL_HELP, autocompletion=_complete_model),
    context: Optional[str] = typer.Option(None, "--max-model-len", "--context", "-c", show_default=False,
                                          help=CONTEXT_HELP + " A comma list sweeps (8K,32K,128K)."),
    kv_dtype: str = typer.Option("auto", "--kv-cache-dtype", "--kv-dtype", autocompletion=_complete_kv_dtype,
                                 help=KV_DTYPE_HELP + " A comma list sweeps (auto,fp8)."),
    tp: str = typer.Option("1", "-tp", "--tensor-parallel-size", "--tp",
                           help="Tensor-parallel degree; a comma list sweeps (1,2,4,8)."),
    pp: int = typer.Option(1, "-pp", "--pipeline-parallel-size", "--pp", help="Pipeline stages; layers split "
                           "as vLLM splits them (uneven counts allowed)."),
    block_size: Optional[int] = typer.Option(None, "--block-size", help="Paged-attention block size in tokens "
                                             "(default: the engine's; vLLM uses 16 (64 from 0.34), MLA by GPU and "
                                             "release; up to 0.17 one the release lists: 1 to 256 in 0.11.1-0.17; "
                                             "from 0.18 any its attention backends take: a multiple of 16 on "
                                             "CUDA)."),
    kv_budget: Optional[str] = typer.Option(None, "--kv-cache-memory-bytes", "--kv-budget", help=KV_BUDGET_HELP),
    gpu: Optional[str] = typer.Option(None, "--gpu", help=DEFAULT_GPU_HELP, autocompletion=_complete_gpu),
    gpu_memory: Optional[str] = GPU_MEMORY,
    gpus_per_node: Optional[int] = GPUS_PER_NODE,
    gpu_util: Optional[float] = typer.Option(None, "--gpu-memory-utilization", "--gpu-util", show_default=False,
                                             help=GPU_UTIL_HELP),
    max_num_batched_tokens: Optional[str] = MAX_NUM_BATCHED_TOKENS,
    max_num_seqs: Optional[int] = MAX_NUM_SEQS,
    pp_partition: Optional[str] = PP_LAYER_PARTITION,
    engine: str = typer.Option("vllm", "--engine", help="Engine model (kvplan's flag): vllm (0.32.0), "
                               "vllm==<release> for an older vLLM, or none (ideal paging, no engine reserves)."),
    revision: Optional[str] = typer.Option(None, "--revision", help=REVISION_HELP),
    hub_timeout: Optional[str] = typer.Option(None, "--hub-timeout", help=HUB_TIMEOUT_HELP),
    batch: Optional[str] = typer.Option(None, "--batch", help="Decode batch sizes to estimate besides 1 and max "
                                        "concurrency, a comma list (8,64; default: those two only): ITL and tok/s of "
                                        "each in a note under the table; batches past max concurrency are marked."),
    quantization: Optional[str] = QUANTIZATION,
    dtype: Optional[str] = DTYPE,
    input_len: Optional[int] = typer.Option(None, "--input-len", help="Prompt tokens for the time to first token "
                                            "(default: the longest the engine admits: the max model length, one "
                                            "token less where vLLM keeps room for an output token: from 0.11.1 for "
                                            "a text model, from 0.17 for a multimodal one too, never for a pooling "
                                            "model)."),
    enforce_eager: bool = ENFORCE_EAGER,
    skip_mm_profiling: bool = SKIP_MM_PROFILING,
    language_model_only: bool = LANGUAGE_MODEL_ONLY,
    limit_mm_per_prompt: Optional[str] = LIMIT_MM_PER_PROMPT,
    mm_encoder_tp_mode: Optional[str] = MM_ENCODER_TP_MODE,
    cpu_offload: Optional[str] = CPU_OFFLOAD_GB,
    processor_kwargs: Optional[str] = MM_PROCESSOR_KWARGS,
    gpu_blocks: Optional[str] = NUM_GPU_BLOCKS_OVERRIDE,
    speculative: Optional[str] = SPECULATIVE_CONFIG,
    dp: Optional[str] = DATA_PARALLEL_SIZE,
    dcp: Optional[str] = DECODE_CONTEXT_PARALLEL_SIZE,
    dcp_interleave: Optional[str] = DCP_INTERLEAVE,
    dcp_comm: Optional[str] = DCP_COMM_BACKEND,
    dcp_q_replicate: bool = DCP_Q_REPLICATE,
    no_dcp_q_replicate: bool = NO_DCP_Q_REPLICATE,
    pcp: Optional[str] = PREFILL_CONTEXT_PARALLEL_SIZE,
    expert_parallel: bool = ENABLE_EXPERT_PARALLEL,
    eplb: bool = ENABLE_EPLB,
    eplb_config: Optional[str] = EPLB_CONFIG,
    redundant: Optional[str] = NUM_REDUNDANT_EXPERTS,
    lora: bool = ENABLE_LORA,
    max_loras: Optional[int] = MAX_LORAS,
    max_lora_rank: Optional[int] = MAX_LORA_RANK,
    lora_dtype: Optional[str] = LORA_DTYPE,
    fully_sharded_loras: bool = FULLY_SHARDED_LORAS,
    runner: str = RUNNER,
    convert: str = CONVERT,
    pooler_config: Optional[str] = POOLER_CONFIG,
    max_capture_size: Optional[str] = MAX_CAPTURE_SIZE,
    capture_sizes: Optional[str] = CAPTURE_SIZES,
    mamba_cache_dtype: Optional[str] = MAMBA_CACHE_DTYPE,
    mamba_ssm_cache_dtype: Optional[str] = MAMBA_SSM_CACHE_DTYPE,
    disable_sliding_window: bool = DISABLE_SLIDING_WINDOW,
    prefix_caching: bool = PREFIX_CACHING,
    no_prefix_caching: bool = NO_PREFIX_CACHING,
    mamba_block: Optional[str] = MAMBA_BLOCK_SIZE,
    chunked: bool = CHUNKED_PREFILL,
    no_chunked: bool = NO_CHUNKED_PREFILL,
    compilation_config: Optional[str] = COMPILATION_CONFIG,
    optimization_level: Optional[str] = OPTIMIZATION_LEVEL,
    chart: bool = typer.Option(False, "--chart", help="Also draw requests held against max model length and "
                               "each GPU's memory as a stacked bar (always in --format html)."),
    fmt: str = typer.Option("table", "--format", "-f", help=FORMAT_HELP[:-1] + "; html's page has the chart, "
                            "the table and its notes."),
) -> None:
    """What vLLM would log at startup (available KV cache memory, KV cache size in tokens, maximum
    concurrency) for each plan, with kvplan's footprint, budget, decode ITL and time to first token; comma
    lists sweep."""
    from ..commands.estimate import estimate as run
    from ..engines import (EngineFlags, cpu_offload_gb, data_parallel_size, enable_eplb, enable_lora, encoder_tp_mode,
                           eplb_spelled_off, gpu_blocks_override, ignored_lora, media_limits, mm_processor_kwargs,
                           speculative_config)
    from ..render import check_format

    from ..engines.vllm_cache_flags import mamba_dtype
    from ..engines.vllm_pooler_config import pooler_config_choice
    from ..engines.vllm_prefix_flag import mamba_block_size
    from ..engines.vllm_runner_flag import convert_choice, runner_choice
    from ..engines.vllm_graphs import capture_sizes_value, max_capture_size_value
    from ..engines.vllm_compilation import level_value
    from ..engines.vllm_compilation_text import engine_config_value

    from ..engines.vllm_dcp import check_tp, comm_backend, dcp_size, interleave_size
    from ..engines.vllm_pcp import pcp_size

    fmt = check_format(fmt)
    balancer = enable_eplb(eplb, eplb_config, redundant)
    adapters = enable_lora(lora, max_loras, max_lora_rank, lora_dtype, fully_sharded_loras)
    auto_fit = context is not None and is_auto_length(context)  # 'auto,auto' is auto, as repeats merge
    contexts = None
    if context is not None and not auto_fit:
        contexts = _list(context, "context", "8192,32K", tokens=True, auto_alone=True)
    partition = batched = None
    if pp_partition is not None or max_num_batched_tokens is not None:  # deployments.py: check's big Deployment class
        from ..commands.deployments import batched_tokens, layer_partition

        partition = None if pp_partition is None else layer_partition(pp_partition)  # '' is refused, not unset
        batched = None if max_num_batched_tokens is None else batched_tokens(max_num_batched_tokens)
    refuse_later_spellings(engine)  # --disable-prefix-caching before vLLM 0.33, ...
    compilation_config, optimization_level = compilation_fields(compilation_config, optimization_level,
                                                                engine).values()
    check_tp(dcp_size(dcp), _list(tp, "tp"))  # -dcp dividing every TP degree asked
    pcp_size(pcp)  # -pcp: a whole number (bad input before the Hub is asked)
    with hub_deadline(hub_timeout):
        result = run(model, contexts=contexts, kv_dtypes=kv_dtype.split(","),
                     tps=_list(tp, "tp"), block_size=block_size, kv_budget=kv_budget, gpu=gpu,
                     gpu_memory=gpu_memory, gpu_util=gpu_util, max_num_batched_tokens=batched,
                     max_num_seqs=max_num_seqs, engine=engine, pp=pp, pp_partition=partition, revision=revision,
                     batches=() if batch is None else tuple(_list(batch, "batch", "1,8,64")), quantization=quantization,
                     dtype=dtype, input_len=input_len, spell=flag, chart=chart or fmt == "html", auto_fit=auto_fit,
                     gpus_per_node=gpus_per_node,
                     flags=EngineFlags(enforce_eager, skip_mm_profiling, language_model_only,
                                       media_limits(limit_mm_per_prompt),
                                       encoder_tp_mode(mm_encoder_tp_mode), cpu_offload_gb(cpu_offload),
                                       num_gpu_blocks_override=gpu_blocks_override(gpu_blocks),
                                       speculative=speculative_config(speculative), dp=data_parallel_size(dp),
                                       dcp=dcp_size(dcp), dcp_interleave=interleave_size(dcp_interleave),
                                       dcp_comm_backend=comm_backend(dcp_comm),
                                       dcp_q_replicate=boolean_typed(dcp_q_replicate, no_dcp_q_replicate),
                                       pcp=pcp_size(pcp),
                                       enable_expert_parallel=expert_parallel,
                                       mm_processor_kwargs=mm_processor_kwargs(processor_kwargs),
                                       enable_eplb=balancer, enable_lora=adapters,
                                       eplb_spelled_off=eplb_spelled_off(eplb, eplb_config, redundant),
                                       lora_ignored=ignored_lora(lora, max_loras, max_lora_rank, lora_dtype,
                                                                 fully_sharded_loras),
                                       runner=runner_choice(runner), convert=convert_choice(convert),
                                       pooler_config=pooler_config_choice(pooler_config),
                                       max_cudagraph_capture_size=max_capture_size_value(max_capture_size),
                                       cudagraph_capture_sizes=capture_sizes_value(capture_sizes),
                                       mamba_cache_dtype=mamba_dtype("mamba_cache_dtype", mamba_cache_dtype),
                                       mamba_ssm_cache_dtype=mamba_dtype("mamba_ssm_cache_dtype",
                                                                         mamba_ssm_cache_dtype),
                                       disable_sliding_window=disable_sliding_window,
                                       enable_prefix_caching=boolean_typed(prefix_caching, no_prefix_caching),
                                       mamba_block_size=mamba_block_size(mamba_block),
                                       enable_chunked_prefill=boolean_typed(chunked, no_chunked),
                                       compilation_config=engine_config_value(compilation_config, engine),
                                       optimization_level=level_value(optimization_level)))
    show(result, fmt, chart=chart)


@app.command(short_help="The bundled model specs (usable offline by id or alias).")
def models(fmt: str = typer.Option("table", "--format", "-f", help=FORMAT_HELP)) -> None:
    """The bundled model specs (usable offline by id or alias)."""
    from ..commands.catalogs import models as run
    from ..render import check_format

    show(run(), check_format(fmt))


@app.command(short_help="The GPU catalog, the names --gpu takes, and the detected GPU.")
def gpus(fmt: str = typer.Option("table", "--format", "-f", help=FORMAT_HELP)) -> None:
    """The GPU catalog (runtime-reported memory, bandwidth, the names --gpu takes) and the detected GPU."""
    from ..commands.catalogs import gpus as run
    from ..render import check_format

    show(run(), check_format(fmt))


@app.command(short_help="CI gate: TP/PP sharding and capacity targets (exit 0 pass, 1 fail, 2 bad input).")
def check(
    model: Optional[List[str]] = typer.Argument(None, metavar="[MODEL]", show_default=False,
                                                help=MODEL_HELP + " With --file, extra arguments are more "
                                                "deployment files (as pre-commit passes them)."),
    files: Optional[List[str]] = typer.Option(None, "--file", help="YAML file with a list under 'deployments:' "
                                       "(name, model, tp; optional pp, gpu, gpu_util, kv_budget, context, "
                                       "kv_dtype, min_concurrency, min_model_len, revision, engine, enforce_eager, "
                                       "skip_mm_profiling, language_model_only, limit_mm_per_prompt, "
                                       "mm_encoder_tp_mode, cpu_offload_gb, num_gpu_blocks_override, "
                                       "speculative_config, dp, dcp, dcp_interleave, dcp_comm_backend, "
                                       "dcp_q_replicate, pcp, enable_expert_parallel, "
                                       "enable_eplb, "
                                       "eplb_config, num_redundant_experts, mm_processor_kwargs, block_size, "
                                       "quantization, dtype, max_num_seqs, max_num_batched_tokens, "
                                       "pp_layer_partition, gpu_memory, gpus_per_node, enable_lora, max_loras, "
                                       "max_lora_rank, lora_dtype, fully_sharded_loras, runner, convert, "
                                       "pooler_config, max_cudagraph_capture_size, cudagraph_capture_sizes, "
                                       "mamba_cache_dtype, mamba_ssm_cache_dtype, disable_sliding_window, "
                                       "enable_prefix_caching, enable_chunked_prefill, mamba_block_size, "
                                       "compilation_config (a "
                                       "mapping), optimization_level; or serve: the `vllm serve` "
                                       "command, its flags read as here); repeat --file for more "
                                       "files, each checked. See docs/ci.md."),
    tp: Optional[str] = typer.Option(None, "-tp", "--tensor-parallel-size", "--tp",
                                     help="TP degrees to check for MODEL (8 or 2,4,8); required with MODEL."),
    pp: Optional[int] = typer.Option(None, "-pp", "--pipeline-parallel-size", "--pp",
                                     help="Pipeline stages; layers split as vLLM splits them (default 1)."),
    min_concurrency: Optional[int] = typer.Option(None, "--min-concurrency", help="Fail unless this many "
                                                  "requests of --max-model-len tokens fit at once (default: no "
                                                  "target; not one request fails anyway, as vLLM refuses to start)."),
    min_model_len: Optional[str] = typer.Option(None, "--min-model-len", help="Fail unless the max model length "
                                                "served is at least this many tokens (kvplan's flag: a gate on what "
                                                "--max-model-len auto fits; a fixed length is held to it too). "
                                                "Default: no target."),
    context: Optional[str] = typer.Option(None, "--max-model-len", "--context", "-c", help=CHECK_CONTEXT_HELP),
    kv_dtype: Optional[str] = typer.Option(None, "--kv-cache-dtype", "--kv-dtype",
                                           help=KV_DTYPE_HELP + " Default: auto."),
    block_size: Optional[int] = typer.Option(None, "--block-size", help="Paged-attention block size in tokens "
                                             "(default: the engine's; vLLM uses 16 (64 from 0.34), MLA by GPU and "
                                             "release; up to 0.17 one the release lists: 1 to 256 in 0.11.1-0.17; "
                                             "from 0.18 any its attention backends take: a multiple of 16 on "
                                             "CUDA)."),
    gpu: Optional[str] = typer.Option(None, "--gpu", help=DEFAULT_GPU_HELP),
    gpu_util: Optional[float] = typer.Option(None, "--gpu-memory-utilization", "--gpu-util", help=GPU_UTIL_HELP),
    kv_budget: Optional[str] = typer.Option(None, "--kv-cache-memory-bytes", "--kv-budget", help=KV_BUDGET_HELP),
    revision: Optional[str] = typer.Option(None, "--revision", help=REVISION_HELP),
    engine: Optional[str] = typer.Option(None, "--engine", help="Engine model (kvplan's flag): vllm (0.32.0, the "
                                         "default), vllm==<release> for the vLLM the deployment runs, or none."),
    enforce_eager: bool = ENFORCE_EAGER,
    skip_mm_profiling: bool = SKIP_MM_PROFILING,
    language_model_only: bool = LANGUAGE_MODEL_ONLY,
    limit_mm_per_prompt: Optional[str] = LIMIT_MM_PER_PROMPT,
    mm_encoder_tp_mode: Optional[str] = MM_ENCODER_TP_MODE,
    cpu_offload: Optional[str] = CPU_OFFLOAD_GB,
    processor_kwargs: Optional[str] = MM_PROCESSOR_KWARGS,
    gpu_blocks: Optional[str] = NUM_GPU_BLOCKS_OVERRIDE,
    speculative: Optional[str] = SPECULATIVE_CONFIG,
    dp: Optional[str] = DATA_PARALLEL_SIZE,
    dcp: Optional[str] = DECODE_CONTEXT_PARALLEL_SIZE,
    dcp_interleave: Optional[str] = DCP_INTERLEAVE,
    dcp_comm: Optional[str] = DCP_COMM_BACKEND,
    dcp_q_replicate: bool = DCP_Q_REPLICATE,
    no_dcp_q_replicate: bool = NO_DCP_Q_REPLICATE,
    pcp: Optional[str] = PREFILL_CONTEXT_PARALLEL_SIZE,
    expert_parallel: bool = ENABLE_EXPERT_PARALLEL,
    eplb: bool = ENABLE_EPLB,
    eplb_config: Optional[str] = EPLB_CONFIG,
    redundant: Optional[str] = NUM_REDUNDANT_EXPERTS,
    lora: bool = ENABLE_LORA,
    max_loras: Optional[int] = MAX_LORAS,
    max_lora_rank: Optional[int] = MAX_LORA_RANK,
    lora_dtype: Optional[str] = LORA_DTYPE,
    fully_sharded_loras: bool = FULLY_SHARDED_LORAS,
    runner: Optional[str] = typer.Option(None, "--runner", help=RUNNER_HELP),
    convert: Optional[str] = typer.Option(None, "--convert", help=CONVERT_HELP),
    pooler_config: Optional[str] = POOLER_CONFIG,
    max_capture_size: Optional[str] = MAX_CAPTURE_SIZE,
    capture_sizes: Optional[str] = CAPTURE_SIZES,
    mamba_cache_dtype: Optional[str] = MAMBA_CACHE_DTYPE,
    mamba_ssm_cache_dtype: Optional[str] = MAMBA_SSM_CACHE_DTYPE,
    disable_sliding_window: bool = DISABLE_SLIDING_WINDOW,
    prefix_caching: bool = PREFIX_CACHING,
    no_prefix_caching: bool = NO_PREFIX_CACHING,
    mamba_block: Optional[str] = MAMBA_BLOCK_SIZE,
    chunked: bool = CHUNKED_PREFILL,
    no_chunked: bool = NO_CHUNKED_PREFILL,
    compilation_config: Optional[str] = COMPILATION_CONFIG,
    optimization_level: Optional[str] = OPTIMIZATION_LEVEL,
    quantization: Optional[str] = QUANTIZATION,
    dtype: Optional[str] = DTYPE,
    max_num_seqs: Optional[int] = MAX_NUM_SEQS,
    max_num_batched_tokens: Optional[str] = MAX_NUM_BATCHED_TOKENS,
    pp_partition: Optional[str] = PP_LAYER_PARTITION,
    gpu_memory: Optional[str] = GPU_MEMORY,
    gpus_per_node: Optional[int] = GPUS_PER_NODE,
    hub_timeout: Optional[str] = typer.Option(None, "--hub-timeout", help=HUB_TIMEOUT_HELP),
    suggest: bool = typer.Option(False, "--suggest", help="List every valid TP degree up to 64 for MODEL, "
                                 "with KV heads per GPU and replication."),
    fmt: str = typer.Option("table", "--format", "-f", help=FORMAT_HELP),
) -> int:
    """CI gate: TP/PP sharding and capacity targets. Exit 0 pass, 1 a rule fails, 2 bad input.
    Under GitHub Actions, also prints ::error/::warning annotations (to stderr)."""
    params = dict(locals())  # check_options reads them by name, as it reads a `serve:` command
    from ..commands import check as run
    from ..commands.deployments import VALID_KEYS, further_file, load_deployments, model_deployments
    from ..render import check_format

    fmt = check_format(fmt)
    models = list(model or [])
    options = check_options(params)
    given = [name for name in CHECK_MODEL_OPTIONS if options[name] is not None]
    tps = None if tp is None else _list(tp, "tp")
    if files:  # each --file given, not the last only: a gate never drops a file
        if suggest:
            raise KvplanError("--suggest takes a MODEL, not --file; run `kvplan check --suggest MODEL`.")
        # a boolean flag typed off, which last_switches left out where off is its absence (--no-enforce-eager)
        off = next((typed_spelling((spelling,), as_typed=True) for field in CHECK_MODEL_OPTIONS
                    for spelling in NEGATIVES.get(field, ()) if typed_spelling((spelling,))), None)
        if tps or given or off:
            raise KvplanError(f"{typed('tp' if tps else given[0]) if tps or given else off} applies to MODEL only; "
                              f"with --file give it on each deployment (valid keys: {', '.join(VALID_KEYS)}).")
        from functools import partial

        from .serve_command import read_serve

        serve = partial(read_serve, group=click_command(), check_options=check_options,
                        refuse_later=refuse_later_spellings)  # `serve:` read as this command line is
        paths = [*files, *map(further_file, models)]
        with _placed_in(paths):
            deployments = [dep for path in paths for dep in load_deployments(path, serve)]
    elif not models:
        raise KvplanError(f"kvplan check needs MODEL with {flag('tp')} N (or --suggest), or --file "
                          f"deployments.yaml.")
    elif len(models) > 1:
        raise KvplanError(f"kvplan check takes one MODEL, got {len(models)} ({', '.join(models)}); list several "
                          f"in a --file.")
    elif suggest:
        extra = ["tp"] * bool(tps) + [g for g in given if g != "revision"]
        if extra:
            raise KvplanError(f"--suggest lists every valid TP degree on its own; drop {typed(extra[0])}.")
        with hub_deadline(hub_timeout):
            show(run.suggest(models[0], revision), fmt)
        return 0
    else:
        refuse_later_spellings(engine)  # --disable-prefix-caching before vLLM 0.33, ...
        deployments = model_deployments(models[0], tps or [], **options)
    with hub_deadline(hub_timeout), _placed_in(paths if files else ()):
        result = run.check(deployments, spell=str if files else flag)
    show(result, fmt)
    from ..render.check import annotations, in_github_actions

    if in_github_actions():
        sys.stderr.write(annotations(result))
        sys.stderr.flush()
    return 0 if result.ok else 1


@contextmanager
def _placed_in(paths):
    """A bad input raised while `kvplan check --file` reads and checks `paths` is marked with them, so that run.main
    says one at a file's line as a GitHub annotation too (render/check.input_annotation)."""
    try:
        yield
    except KvplanError as exc:
        if paths:
            exc.deployments_files = tuple(paths)
        raise


def check_options(params: dict) -> dict:
    """The deployment fields check's flags give (None: not given), from `params`, check's parameters by name as click
    parsed them: the one reading of the flags, for the command line and a deployments file's `serve:` command
    (serve_command.py) alike."""
    from ..engines import data_parallel_size, gpu_blocks_override
    from ..engines.vllm_dcp import comm_backend, dcp_size, interleave_size
    from ..engines.vllm_pcp import pcp_size
    from ..engines.vllm_eplb import redundant_count
    from ..engines.vllm_prefix_flag import mamba_block_size

    p = SimpleNamespace(**params)
    return dict(pp=p.pp, gpu=p.gpu, gpu_util=p.gpu_util, kv_budget=p.kv_budget, context=p.context, kv_dtype=p.kv_dtype,
                min_concurrency=p.min_concurrency, min_model_len=p.min_model_len, revision=p.revision, engine=p.engine,
                enforce_eager=p.enforce_eager or None, skip_mm_profiling=p.skip_mm_profiling or None,
                language_model_only=p.language_model_only or None, limit_mm_per_prompt=p.limit_mm_per_prompt,
                mm_encoder_tp_mode=p.mm_encoder_tp_mode, cpu_offload_gb=p.cpu_offload,
                num_gpu_blocks_override=None if p.gpu_blocks is None else gpu_blocks_override(p.gpu_blocks),
                speculative_config=p.speculative, dp=data_parallel_size(p.dp), dcp=dcp_size(p.dcp),
                dcp_interleave=interleave_size(p.dcp_interleave), dcp_comm_backend=comm_backend(p.dcp_comm),
                dcp_q_replicate=boolean_typed(p.dcp_q_replicate, p.no_dcp_q_replicate), pcp=pcp_size(p.pcp),
                enable_expert_parallel=p.expert_parallel or None, enable_eplb=p.eplb or None,
                mm_processor_kwargs=p.processor_kwargs, eplb_config=p.eplb_config,
                num_redundant_experts=redundant_count(p.redundant), block_size=p.block_size,
                quantization=p.quantization, dtype=p.dtype, max_num_seqs=p.max_num_seqs,
                max_num_batched_tokens=p.max_num_batched_tokens, pp_layer_partition=p.pp_partition,
                gpu_memory=p.gpu_memory, gpus_per_node=p.gpus_per_node, enable_lora=p.lora or None,
                max_loras=p.max_loras, max_lora_rank=p.max_lora_rank, lora_dtype=p.lora_dtype,
                fully_sharded_loras=p.fully_sharded_loras or None, runner=p.runner, convert=p.convert,
                pooler_config=p.pooler_config, max_cudagraph_capture_size=p.max_capture_size,
                cudagraph_capture_sizes=p.capture_sizes, mamba_cache_dtype=p.mamba_cache_dtype,
                mamba_ssm_cache_dtype=p.mamba_ssm_cache_dtype, disable_sliding_window=p.disable_sliding_window or None,
                enable_prefix_caching=boolean_typed(p.prefix_caching, p.no_prefix_caching),
                mamba_block_size=None if p.mamba_block is None else mamba_block_size(p.mamba_block),
                **compilation_fields(p.compilation_config, p.optimization_level, p.engine),
                enable_chunked_prefill=boolean_typed(p.chunked, p.no_chunked))


def compilation_fields(config, level, engine) -> dict:
    """--compilation-config and -O as typed, one kept where vLLM `engine` keeps one (vllm_compilation_text.one_flag):
    a deployments file's `serve:` read again with the file's engine (ServeCommand.compilation)."""
    from ..engines.vllm_compilation import one_flag

    config, level = one_flag(typed_args, config, level, engine)
    return {"compilation_config": config, "optimization_level": level}


@app.command(short_help="Prove a plan on the local GPU: allocate the KV cache, time decode.")
def verify(
    model: str = typer.Argument(..., help=MODEL_HELP),
    tp: int = typer.Option(1, "-tp", "--tensor-parallel-size", "--tp", help="Tensor-parallel degree: one "
                           "process per GPU when the machine has that many, else one simulated rank."),
    context: Optional[str] = typer.Option(None, "--max-model-len", "--context", "-c",
                                          help=f"Tokens per request (8192, 32K; default 8192, or the model's own "
                                               f"maximum where that is shorter, as vLLM refuses more); {SUFFIXES}."),
    kv_dtype: str = typer.Option("auto", "--kv-cache-dtype", "--kv-dtype",
                                 help="KV-cache dtype the kernel reads: auto, bfloat16, float16, fp8."),
    gpu_util: Optional[float] = typer.Option(None, "--gpu-memory-utilization", "--gpu-util", help=GPU_UTIL_HELP),
    block_size: Optional[int] = typer.Option(None, "--block-size", help="Paged-attention block size (8, 16, 32, "
                                             "64, 128; default: vLLM's choice)."),
    max_num_seqs: Optional[int] = typer.Option(None, "--max-num-seqs", help="Sequences per step, as vLLM's "
                                               "(default: vLLM's for this GPU): sizes the profile run's sampler "
                                               "pass and the decode graphs captured."),
    max_num_batched_tokens: Optional[str] = typer.Option(None, "--max-num-batched-tokens", help="Tokens of the "
                                                         "profile run's forward pass, as vLLM's (default: vLLM's "
                                                         f"for this GPU); {SUFFIXES}."),
    engine: str = typer.Option("vllm", "--engine", help="Engine model (kvplan's flag): vllm (0.32.0) or "
                               f"vllm==<release> for another vLLM ({SPAN}): the release whose plan and budget "
                               "rules verify judges."),
    revision: Optional[str] = typer.Option(None, "--revision", help=REVISION_HELP),
    enforce_eager: bool = typer.Option(False, "--enforce-eager", help=VERIFY_ENFORCE_EAGER_HELP),
    max_capture_size: Optional[str] = typer.Option(None, "--max-cudagraph-capture-size",
                                                   help=MAX_CAPTURE_HELP + VERIFY_GRAPHS),
    capture_sizes: Optional[str] = typer.Option(None, "--cudagraph-capture-sizes",
                                                help=CAPTURE_SIZES_HELP + VERIFY_GRAPHS),
    prefix_caching: bool = PREFIX_CACHING,
    no_prefix_caching: bool = NO_PREFIX_CACHING,
    mamba_block: Optional[str] = MAMBA_BLOCK_SIZE,
    chunked: bool = CHUNKED_PREFILL,
    no_chunked: bool = NO_CHUNKED_PREFILL,
    disable_sliding_window: bool = typer.Option(False, "--disable-sliding-window",
                                                help=DISABLE_SLIDING_WINDOW_HELP + VERIFY_WINDOW),
    mamba_cache_dtype: Optional[str] = typer.Option(None, "--mamba-cache-dtype",
                                                    help=MAMBA_CACHE_DTYPE_HELP + VERIFY_MAMBA_DTYPE),
    mamba_ssm_cache_dtype: Optional[str] = typer.Option(None, "--mamba-ssm-cache-dtype",
                                                        help=MAMBA_SSM_CACHE_DTYPE_HELP + VERIFY_MAMBA_DTYPE),
    compilation_config: Optional[str] = typer.Option(None, "--compilation-config", "-cc",
                                                     help=COMPILATION_CONFIG_HELP + VERIFY_COMPILATION),
    optimization_level: Optional[str] = typer.Option(None, "-O", "--optimization-level",
                                                     help=OPTIMIZATION_LEVEL_HELP + VERIFY_COMPILATION),
    dcp: Optional[str] = typer.Option(None, "-dcp", "--decode-context-parallel-size", "--dcp", hidden=True,
                                      help="Not measured by verify: 1 only (kvplan estimate plans -dcp)."),
    hub_timeout: Optional[str] = typer.Option(None, "--hub-timeout", help=HUB_TIMEOUT_HELP),
    fmt: str = typer.Option("table", "--format", "-f", help=VERIFY_FORMAT_HELP),
) -> int:
    """On the local GPU: run the model's real forward pass (dummy weights), measure every budget term, size
    the paged KV pools from what is left, prove the capacity boundary, time decode and prefill against the
    plan. Exit 0 when the verdicts hold, 1 when one fails, 2 on bad input or no usable GPU. Needs the `gpu`
    extra (torch, nvidia-ml-py)."""
    from ..commands.verify import VerifyResult, verify as run
    from ..render import check_format

    from ..engines.vllm_dcp import dcp_size

    fmt = check_format(fmt, VerifyResult.formats)
    refuse_later_spellings(engine)  # --disable-prefix-caching before vLLM 0.33, ...
    compilation = compilation_fields(compilation_config, optimization_level, engine)
    if dcp_size(dcp):  # one rank's cache on one GPU: no DCP group to shard a request over
        raise FieldError("dcp", "is not measured by verify (it runs one GPU's ranks, no decode-context-parallel "
                                "group); leave it out or at 1, and plan it with kvplan estimate.")
    lengths = [None] if context is None else _list(context, "context", "8192 or 32K", tokens=True)
    if len(lengths) != 1:
        raise FieldError("context", f"takes one length for verify (it allocates one plan), got {quote(context)}.")
    from ..units import human_int

    batched = None if max_num_batched_tokens is None else human_int(max_num_batched_tokens, "max_num_batched_tokens")
    with hub_deadline(hub_timeout):
        result = run(model, tp=tp, context=lengths[0], kv_dtype=kv_dtype, gpu_util=gpu_util,
                     block_size=block_size, max_num_seqs=max_num_seqs, max_num_batched_tokens=batched,
                     revision=revision, engine=engine, enforce_eager=enforce_eager,
                     max_cudagraph_capture_size=max_capture_size, cudagraph_capture_sizes=capture_sizes,
                     enable_prefix_caching=boolean_typed(prefix_caching, no_prefix_caching),
                     mamba_block_size=mamba_block, disable_sliding_window=disable_sliding_window,
                     mamba_cache_dtype=mamba_cache_dtype, mamba_ssm_cache_dtype=mamba_ssm_cache_dtype,
                     **compilation, enable_chunked_prefill=boolean_typed(chunked, no_chunked))
    show(result, fmt)
    return 0 if result.ok else 1


def _drop_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush has nowhere to fail."""
    import os

    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
