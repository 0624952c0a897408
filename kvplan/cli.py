"""The command line: flags <-> fields, exit codes, and nothing else. Commands return result objects
(kvplan/commands/), kvplan/render turns them into text, and this module is the only one that knows a flag's
name: FLAGS spells every field the core names in its errors and suggestions.

Flags are vLLM's (`vllm serve --help`) wherever vLLM has one, spelled and parsed as vLLM parses them; kvplan's
earlier names stay as aliases (--context, --kv-dtype, --tp, --gpu-util, --kv-budget)."""

from __future__ import annotations

import sys
from typing import List, Optional

import typer

from .errors import FieldError, KvplanError

# field (as the core names it) -> the flag a user types (vLLM's spelling where vLLM has the flag)
FLAGS = {
    "model": "MODEL", "tp": "--tensor-parallel-size", "pp": "--pipeline-parallel-size",
    "context": "--max-model-len", "kv_dtype": "--kv-cache-dtype", "block_size": "--block-size",
    "kv_budget": "--kv-cache-memory-bytes", "gpu": "--gpu", "gpu_memory": "--gpu-memory",
    "gpu_util": "--gpu-memory-utilization", "max_num_batched_tokens": "--max-num-batched-tokens",
    "revision": "--revision", "min_concurrency": "--min-concurrency", "file": "--file", "format": "--format",
    "engine": "--engine", "max_num_seqs": "--max-num-seqs", "pp_partition": "--pp-layer-partition",
    "batch": "--batch", "quantization": "--quantization", "dtype": "--dtype", "input_len": "--input-len",
    "hub_timeout": "--hub-timeout",
}
# every spelling of a field's flag; errors and suggestions use the one the user typed
ALIASES = {
    "tp": ("-tp", "--tensor-parallel-size", "--tp"), "pp": ("-pp", "--pipeline-parallel-size", "--pp"),
    "context": ("--max-model-len", "--context", "-c"), "kv_dtype": ("--kv-cache-dtype", "--kv-dtype"),
    "kv_budget": ("--kv-cache-memory-bytes", "--kv-budget"), "gpu_util": ("--gpu-memory-utilization", "--gpu-util"),
}
_typed: list = []  # this run's arguments (set by main)
CHECK_MODEL_OPTIONS = ("pp", "gpu", "gpu_util", "kv_budget", "context", "kv_dtype", "min_concurrency", "revision")

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

MODEL_HELP = "Hugging Face id (bundled spec first, then the Hub), a local config.json, or a model folder."
FORMAT_HELP = "Output format: table (for people), json, yaml or csv (stable for scripts)."
HUB_TIMEOUT_HELP = ("Seconds the Hugging Face Hub may take for MODEL, all requests together (default 10, or "
                    "KVPLAN_HUB_TIMEOUT); 404s and gated repos answer at once, 429/5xx are retried once.")


class ReaderLeft(Exception):
    """stdout's reader went away (`kvplan ... | head`)."""


def hub_deadline(value):
    """The --hub-timeout of one command, for the Hub reads inside it."""
    from .model.hub import hub_deadline as deadline

    return deadline(value)
SUFFIXES = "vLLM's suffixes: k/m = 10^3/10^6, K/M = 2^10/2^20 (32K = 32,768; 32k = 32,000; 1M = 1,048,576)"
CONTEXT_HELP = (f"Tokens per request (vLLM's max model length). Default: the model's max_position_embeddings, "
                f"as vLLM; auto (or -1): the longest that fits, as vLLM's auto-fit. {SUFFIXES}.")
AUTO_LENGTHS = ("auto", "-1")  # vLLM's human_readable_int_or_auto
KV_DTYPE_HELP = ("KV-cache dtype, vLLM's values: auto (the model's dtype), float16, bfloat16, fp8 (= fp8_e4m3), "
                 "fp8_e5m2, fp8_inc, fp8_per_token_head, int8_per_token_head, int4_per_token_head, nvfp4, "
                 "nvfp4_4over6, turboquant_k8v4, turboquant_4bit_nc, turboquant_k3v4_nc, turboquant_3bit_nc, "
                 "ultraquant_4bit, fp8_ds_mla, nvfp4_ds_mla.")
KV_BUDGET_HELP = ("KV-cache bytes per GPU; replaces the GPU budget, as vLLM. 10G = 10 GiB, 10g = 10^10 (vLLM's "
                  "rule), or 10GiB / 80GB.")
GPU_UTIL_HELP = "Fraction of GPU memory the engine may use (default: the engine's, 0.92 for vLLM 0.32)."
DEFAULT_GPU_HELP = "GPU from `kvplan gpus` (nvidia-smi's name or an alias); default: the detected GPU, else H100."


def _complete_gpu(incomplete: str) -> list:
    from .plan.catalog import CATALOG

    return [g.name for g in CATALOG if g.name.lower().startswith(incomplete.lower())]


def _complete_kv_dtype(incomplete: str) -> list:
    from .model.precision import VLLM_KV_DTYPES

    return [d for d in ("auto", *VLLM_KV_DTYPES) if d.startswith(incomplete.lower())]


def _complete_model(incomplete: str) -> list:
    from .model.sources import bundled_files

    ids = [p.stem.replace("--", "/") for p in bundled_files()]
    return [i for i in ids if i.lower().startswith(incomplete.lower())]


def flag(field: str) -> str:
    """The flag for `field`, as vLLM spells it (suggestions teach vLLM's names)."""
    return FLAGS.get(field, "--" + field.replace("_", "-"))


def typed(field: str) -> str:
    """The flag for `field` as the user typed it in this run (an error names what they wrote), else vLLM's."""
    for spelling in ALIASES.get(field, ()):
        if any(arg == spelling or arg.startswith(spelling + "=") for arg in _typed):
            return spelling
    return flag(field)


def show(result, fmt: str, **options) -> None:
    """Render the whole output before writing any of it: a failure never leaves half an output. A closed
    stdout or a full disk is one line (exit 2), not a traceback."""
    from .render import emit

    if sys.stdout is None:
        raise KvplanError("cannot write the output: stdout is closed.")
    text = emit(result, fmt, **options)
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        raise ReaderLeft() from None  # not an OSError: typer would turn that into exit 1
    except (OSError, ValueError) as exc:
        _drop_stdout()
        raise KvplanError(f"cannot write the output to stdout: {getattr(exc, 'strerror', None) or exc}.") from None


def _list(text: str, field: str, example: str = "1,2,4,8", tokens: bool = False) -> list:
    from .units import int_list

    return int_list(text, field, example, tokens)


def _version(value: bool) -> None:
    if value:
        from . import __version__

        sys.stdout.write(f"kvplan {__version__}\n")
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
                                             "(default: the engine's; vLLM uses 16, 64 for fp8 MLA)."),
    kv_budget: Optional[str] = typer.Option(None, "--kv-cache-memory-bytes", "--kv-budget", help=KV_BUDGET_HELP),
    gpu: Optional[str] = typer.Option(None, "--gpu", help=DEFAULT_GPU_HELP, autocompletion=_complete_gpu),
    gpu_memory: Optional[str] = typer.Option(None, "--gpu-memory", help="Override the GPU's memory (80GB, "
                                             "79.2GiB or bytes); kvplan's own flag."),
    gpu_util: Optional[float] = typer.Option(None, "--gpu-memory-utilization", "--gpu-util", show_default=False,
                                             help=GPU_UTIL_HELP),
    max_num_batched_tokens: Optional[str] = typer.Option(None, "--max-num-batched-tokens", show_default=False,
                                                         help="Tokens of the largest forward pass (default: what "
                                                         f"vLLM picks for the GPU, 8192 on H100/H200); {SUFFIXES}."),
    max_num_seqs: Optional[int] = typer.Option(None, "--max-num-seqs", help="Most sequences the engine runs at "
                                               "once (default: what vLLM picks for the GPU, 1024 on H100/H200)."),
    pp_partition: Optional[str] = typer.Option(None, "--pp-layer-partition", help="Layers per stage, like "
                                               "VLLM_PP_LAYER_PARTITION (e.g. 31,30)."),
    engine: str = typer.Option("vllm", "--engine", help="Engine model (kvplan's flag): vllm (0.32.0), "
                               "vllm==<release> for an older vLLM, or none (ideal paging, no engine reserves)."),
    revision: Optional[str] = typer.Option(None, "--revision", help="Hub revision (branch, tag or commit)."),
    hub_timeout: Optional[str] = typer.Option(None, "--hub-timeout", help=HUB_TIMEOUT_HELP),
    batch: Optional[str] = typer.Option(None, "--batch", help="Decode batch sizes to estimate besides 1 and max "
                                        "concurrency (1,8,64); batches that do not fit are marked."),
    quantization: Optional[str] = typer.Option(None, "--quantization", "-q", help="Serve the weights quantised "
                                               "as vLLM's --quantization: fp8, awq, gptq or mxfp4."),
    dtype: Optional[str] = typer.Option(None, "--dtype", help="Model dtype as vLLM's --dtype: auto, half, "
                                        "float16, bfloat16, float, float32."),
    input_len: Optional[int] = typer.Option(None, "--input-len", help="Prompt tokens for the time to first token "
                                            "(default: the max model length)."),
    chart: bool = typer.Option(False, "--chart", help="Also draw requests held against max model length and "
                               "each GPU's memory as a stacked bar (always in --format html)."),
    fmt: str = typer.Option("table", "--format", "-f", help=FORMAT_HELP[:-1] + "; html writes a standalone "
                            "page with the chart and the table."),
) -> None:
    """What vLLM would log at startup (available KV cache memory, KV cache size in tokens, maximum
    concurrency) for each plan, with kvplan's footprint, budget, decode ITL and time to first token; comma
    lists sweep."""
    from .commands.estimate import estimate as run
    from .render import check_format
    from .units import human_int

    check_format(fmt)
    auto_fit = context is not None and context.strip().lower() in AUTO_LENGTHS
    contexts = None if context is None or auto_fit else _list(context, "context", "8192,32K", tokens=True)
    partition = tuple(_list(pp_partition, "pp_partition", "31,30")) if pp_partition else None
    batched = None if max_num_batched_tokens is None else human_int(max_num_batched_tokens, "max_num_batched_tokens")
    with hub_deadline(hub_timeout):
        result = run(model, contexts=contexts, kv_dtypes=[d.strip() for d in kv_dtype.split(",")],
                     tps=_list(tp, "tp"), block_size=block_size, kv_budget=kv_budget, gpu=gpu,
                     gpu_memory=gpu_memory, gpu_util=gpu_util, max_num_batched_tokens=batched,
                     max_num_seqs=max_num_seqs, engine=engine, pp=pp, pp_partition=partition, revision=revision,
                     batches=tuple(_list(batch, "batch", "1,8,64")) if batch else (), quantization=quantization,
                     dtype=dtype, input_len=input_len, spell=flag, chart=chart or fmt == "html", auto_fit=auto_fit)
    show(result, fmt, chart=chart)


@app.command(short_help="The bundled model specs (usable offline by id or alias).")
def models(fmt: str = typer.Option("table", "--format", "-f", help=FORMAT_HELP)) -> None:
    """The bundled model specs (usable offline by id or alias)."""
    from .commands.catalogs import models as run
    from .render import check_format

    show(run(), check_format(fmt))


@app.command(short_help="The GPU catalog, the names --gpu takes, and the detected GPU.")
def gpus(fmt: str = typer.Option("table", "--format", "-f", help=FORMAT_HELP)) -> None:
    """The GPU catalog (runtime-reported memory, bandwidth, the names --gpu takes) and the detected GPU."""
    from .commands.catalogs import gpus as run
    from .render import check_format

    show(run(), check_format(fmt))


@app.command(short_help="CI gate: TP/PP sharding and capacity targets (exit 0 pass, 1 fail, 2 bad input).")
def check(
    model: Optional[List[str]] = typer.Argument(None, metavar="[MODEL]", show_default=False,
                                                help=MODEL_HELP + " With --file, extra arguments are more "
                                                "deployment files (as pre-commit passes them)."),
    file: Optional[str] = typer.Option(None, "--file", help="YAML file with a list under 'deployments:' "
                                       "(name, model, tp; optional pp, gpu, gpu_util, kv_budget, context, "
                                       "kv_dtype, min_concurrency, revision). See docs/ci.md."),
    tp: Optional[str] = typer.Option(None, "-tp", "--tensor-parallel-size", "--tp",
                                     help="TP degrees to check for MODEL (8 or 2,4,8)."),
    pp: Optional[int] = typer.Option(None, "-pp", "--pipeline-parallel-size", "--pp",
                                     help="Pipeline-parallel degree."),
    min_concurrency: Optional[int] = typer.Option(None, "--min-concurrency", help="Fail unless this many "
                                                  "requests of --max-model-len tokens fit at once."),
    context: Optional[str] = typer.Option(None, "--max-model-len", "--context", "-c", help=CONTEXT_HELP),
    kv_dtype: Optional[str] = typer.Option(None, "--kv-cache-dtype", "--kv-dtype",
                                           help="KV-cache dtype (default auto = the model's dtype)."),
    gpu: Optional[str] = typer.Option(None, "--gpu", help=DEFAULT_GPU_HELP),
    gpu_util: Optional[float] = typer.Option(None, "--gpu-memory-utilization", "--gpu-util", help=GPU_UTIL_HELP),
    kv_budget: Optional[str] = typer.Option(None, "--kv-cache-memory-bytes", "--kv-budget", help=KV_BUDGET_HELP),
    revision: Optional[str] = typer.Option(None, "--revision", help="Hub revision (branch, tag or commit)."),
    hub_timeout: Optional[str] = typer.Option(None, "--hub-timeout", help=HUB_TIMEOUT_HELP),
    suggest: bool = typer.Option(False, "--suggest", help="List every valid TP degree up to 64 for MODEL, "
                                 "with KV heads per GPU and replication."),
    fmt: str = typer.Option("table", "--format", "-f", help=FORMAT_HELP),
) -> int:
    """CI gate: TP/PP sharding and capacity targets. Exit 0 pass, 1 a rule fails, 2 bad input.
    Under GitHub Actions, also prints ::error/::warning annotations (to stderr)."""
    from .commands import check as run
    from .commands.deployments import VALID_KEYS, load_deployments, model_deployments
    from .render import check_format

    check_format(fmt)
    models = list(model or [])
    options = dict(pp=pp, gpu=gpu, gpu_util=gpu_util, kv_budget=kv_budget, context=context, kv_dtype=kv_dtype,
                   min_concurrency=min_concurrency, revision=revision)
    given = [name for name in CHECK_MODEL_OPTIONS if options[name] is not None]
    tps = None if tp is None else _list(tp, "tp")
    if file is not None:
        if suggest:
            raise KvplanError("--suggest takes a MODEL, not --file; run `kvplan check --suggest MODEL`.")
        if tps or given:
            raise KvplanError(f"{typed('tp' if tps else given[0])} applies to MODEL only; with --file give it on "
                              f"each deployment (valid keys: {', '.join(VALID_KEYS)}).")
        deployments = [dep for path in [file, *models] for dep in load_deployments(path)]
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
        deployments = model_deployments(models[0], tps or [], **options)
    with hub_deadline(hub_timeout):
        result = run.check(deployments, spell=str if file is not None else flag)
    show(result, fmt)
    from .render.check import annotations, in_github_actions

    if in_github_actions():
        sys.stderr.write(annotations(result))
        sys.stderr.flush()
    return 0 if result.ok else 1


@app.command(short_help="Prove a plan on the local GPU: allocate the KV cache, time decode.")
def verify(
    model: str = typer.Argument(..., help=MODEL_HELP),
    tp: int = typer.Option(1, "-tp", "--tensor-parallel-size", "--tp", help="Tensor-parallel degree: one "
                           "process per GPU when the machine has that many, else one simulated rank."),
    context: str = typer.Option("8192", "--max-model-len", "--context", "-c",
                                help=f"Tokens per request (8192, 32K); {SUFFIXES}."),
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
    revision: Optional[str] = typer.Option(None, "--revision", help="Hub revision (branch, tag or commit)."),
    hub_timeout: Optional[str] = typer.Option(None, "--hub-timeout", help=HUB_TIMEOUT_HELP),
    fmt: str = typer.Option("table", "--format", "-f", help="Output format: table, json or yaml."),
) -> int:
    """On the local GPU: run the model's real forward pass (dummy weights), measure every budget term, size
    the paged KV pools from what is left, prove the capacity boundary, time decode and prefill against the
    plan. Exit 0 when the verdicts hold, 1 when one fails, 2 on bad input or no usable GPU. Needs the `gpu`
    extra (torch, nvidia-ml-py)."""
    from .commands.verify import VerifyResult, verify as run
    from .render import check_format

    check_format(fmt, VerifyResult.formats)
    lengths = _list(context, "context", "8192 or 32K", tokens=True)
    if len(lengths) != 1:
        raise FieldError("context", f"takes one length for verify (it allocates one plan), got {context!r}.")
    from .units import human_int

    batched = None if max_num_batched_tokens is None else human_int(max_num_batched_tokens, "max_num_batched_tokens")
    with hub_deadline(hub_timeout):
        result = run(model, tp=tp, context=lengths[0], kv_dtype=kv_dtype, gpu_util=gpu_util,
                     block_size=block_size, max_num_seqs=max_num_seqs, max_num_batched_tokens=batched,
                     revision=revision)
    show(result, fmt)
    return 0 if result.ok else 1


def _click_errors() -> tuple:
    """(usage errors, Abort, Exit) of whichever click typer runs on: vendored since typer 0.26."""
    try:
        from typer._click.exceptions import ClickException, UsageError
        from typer.exceptions import Abort, Exit
    except ImportError:
        from click.exceptions import Abort, ClickException, Exit, UsageError
    return (UsageError, ClickException), Abort, Exit


def _bare_help() -> int:
    """`kvplan` alone: the command list and a first command to try, on stdout, exit 0."""
    app(args=["--help"], prog_name="kvplan", standalone_mode=False)
    return 0


def say(message: str) -> None:
    """One line on stderr, whatever `message` holds: whitespace (line breaks included) collapsed, `##[` (a
    GitHub Actions workflow command anywhere in a log line) escaped, silently dropped when stderr is gone."""
    line = " ".join(str(message).split()).replace("##[", "##\\x5b")
    try:
        if sys.stderr is not None:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _crash_line(exc: BaseException) -> str:
    """Where an unexpected exception came from, in one line: its type, message and innermost kvplan frame."""
    import traceback

    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "kvplan" in f.filename]
    where = ""
    if frames:
        frame = frames[-1]
        where = f" at {frame.filename.rsplit('kvplan', 1)[-1].lstrip('/')}:{frame.lineno}"
    text = " ".join(str(exc).split())
    text = text if len(text) <= 120 else text[:117] + "..."
    return (f"kvplan: internal error (exit 3): {type(exc).__name__}: {text}{where}. This is a bug in kvplan, not "
            f"your input; please report it with the command line (KVPLAN_TRACEBACK=1 shows the traceback).")


def main(argv: Optional[list] = None) -> int:
    """Run one command. Exit codes: 0 ok, 1 a check or verdict failed, 2 bad input (or an output that cannot
    be written), 3 kvplan itself failed (a bug: one line says where), 130 interrupted. Never a traceback
    (unless KVPLAN_TRACEBACK=1)."""
    import os

    args = sys.argv[1:] if argv is None else list(argv)
    _typed[:] = args
    if not args:
        return _bare_help()
    usage_errors, abort, exit_ = _click_errors()
    try:
        result = app(args=args, prog_name="kvplan", standalone_mode=False)
    except FieldError as exc:
        say(f"kvplan: error: {exc.spelled(typed(exc.field))}")
        return 2
    except KvplanError as exc:
        say(f"kvplan: error: {exc}")
        return 2
    except usage_errors as exc:
        say(f"kvplan: error: {exc.format_message()}")
        return 2
    except exit_ as exc:
        return exc.exit_code if isinstance(getattr(exc, "exit_code", None), int) else 0
    except (abort, KeyboardInterrupt):
        say("kvplan: interrupted.")
        return 130
    except (ReaderLeft, BrokenPipeError):  # `kvplan ... | head`: the reader left; say nothing more
        _drop_stdout()
        return 0
    except Exception as exc:  # a bug: its own exit code, one line, never 0 or 1
        if os.environ.get("KVPLAN_TRACEBACK") == "1":
            raise
        say(_crash_line(exc))
        return 3
    if result == 130:  # typer's answer to a KeyboardInterrupt (no command of ours returns 130)
        say("kvplan: interrupted.")
    return result if isinstance(result, int) else 0


def _drop_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush has nowhere to fail."""
    import os

    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def finish(code: int) -> None:
    """Flush and leave without the interpreter's teardown: it restores the default SIGINT handling (a Ctrl-C
    there would kill the process without a word) and would wait on nothing kvplan needs (an abandoned Hub
    request thread, the Hub client's session)."""
    import os

    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            if stream is sys.stdout:
                code = code or 2
    os._exit(code)
