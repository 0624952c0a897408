"""The command line: flags <-> fields, exit codes, and nothing else. Commands return result objects
(kvplan/commands/), kvplan/render turns them into text, and this module is the only one that knows a flag's
name: FLAGS spells every field the core names in its errors and suggestions."""

from __future__ import annotations

import sys
from typing import List, Optional

import typer

from .errors import FieldError, KvplanError

# field (as the core names it) -> the flag a user types
FLAGS = {
    "model": "MODEL", "tp": "--tp", "pp": "--pipeline-parallel-size", "context": "--context", "kv_dtype": "--kv-dtype",
    "block_size": "--block-size", "kv_budget": "--kv-budget", "gpu": "--gpu", "gpu_memory": "--gpu-memory",
    "gpu_util": "--gpu-util", "max_num_batched_tokens": "--max-num-batched-tokens", "revision": "--revision",
    "min_concurrency": "--min-concurrency", "file": "--file", "format": "--format", "engine": "--engine",
    "max_num_seqs": "--max-num-seqs", "pp_partition": "--pp-layer-partition", "batch": "--batch",
    "quantization": "--quantization", "dtype": "--dtype", "input_len": "--input-len",
}
CHECK_MODEL_OPTIONS = ("pp", "gpu", "gpu_util", "kv_budget", "context", "kv_dtype", "min_concurrency", "revision")

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Plan LLM KV-cache capacity, tensor parallelism and decode speed from a model's config.json, "
         "then prove the plan on the local GPU.",
)

MODEL_HELP = "Hugging Face id (bundled spec first, then the Hub), a local config.json, or a model folder."
FORMAT_HELP = "Output format: table (for people), json, yaml or csv (stable for scripts)."


def flag(field: str) -> str:
    return FLAGS.get(field, "--" + field.replace("_", "-"))


def show(result, fmt: str) -> None:
    """Render the whole output before writing any of it: a failure never leaves half an output."""
    from .render import emit

    text = emit(result, fmt)
    sys.stdout.write(text)
    sys.stdout.flush()


def _list(text: str, field: str, example: str = "1,2,4,8", tokens: bool = False) -> list:
    from .units import int_list

    return int_list(text, field, example, tokens)


@app.command()
def estimate(
    model: str = typer.Argument(..., help=MODEL_HELP),
    context: str = typer.Option("8192", "--context", "-c", help="Tokens per sequence; comma list sweeps (4096,32k)."),
    kv_dtype: str = typer.Option("auto", "--kv-dtype", help="KV precision: auto, fp32, fp16, bf16, fp8 "
                                 "(fp8_e4m3, fp8_e5m2), int8, int4; comma list sweeps."),
    tp: str = typer.Option("1", "--tp", help="Tensor-parallel degree; comma list sweeps (1,2,4,8)."),
    block_size: Optional[int] = typer.Option(None, "--block-size", help="Paged-attention block size in tokens "
                                             "(default: the engine's; vLLM uses 16, 64 for fp8 MLA)."),
    kv_budget: Optional[str] = typer.Option(None, "--kv-budget", help="KV bytes per GPU (10GiB, 80GB or "
                                            "bytes), like vLLM's --kv-cache-memory-bytes; skips the GPU budget."),
    gpu: Optional[str] = typer.Option(None, "--gpu", help="GPU from `kvplan gpus` (case-insensitive alias); "
                                      "default: the detected GPU, else H100-80GB-SXM."),
    gpu_memory: Optional[str] = typer.Option(None, "--gpu-memory", help="Override the GPU's memory (80GB, "
                                             "79.2GiB or bytes)."),
    gpu_util: Optional[float] = typer.Option(None, "--gpu-util", help="Fraction of GPU memory the engine may "
                                             "use, as vLLM's --gpu-memory-utilization (default: the engine's, "
                                             "0.92 for vLLM 0.32)."),
    max_num_batched_tokens: Optional[int] = typer.Option(None, "--max-num-batched-tokens", help="Tokens of the "
                                                         "largest forward pass (default: what vLLM picks for "
                                                         "the GPU, 8192 on H100/H200)."),
    max_num_seqs: Optional[int] = typer.Option(None, "--max-num-seqs", help="Most sequences the engine runs at "
                                               "once (default: what vLLM picks for the GPU, 1024 on H100/H200)."),
    pp: int = typer.Option(1, "--pipeline-parallel-size", "-pp", "--pp", help="Pipeline stages; layers split "
                           "as vLLM splits them (uneven counts allowed)."),
    pp_partition: Optional[str] = typer.Option(None, "--pp-layer-partition", help="Layers per stage, like "
                                               "VLLM_PP_LAYER_PARTITION (e.g. 31,30)."),
    engine: str = typer.Option("vllm", "--engine", help="Engine model: vllm (0.32.0), vllm==<release> for an "
                               "older vLLM, or none (ideal paging, no engine reserves)."),
    revision: Optional[str] = typer.Option(None, "--revision", help="Hub revision (branch, tag or commit)."),
    batch: Optional[str] = typer.Option(None, "--batch", help="Decode batch sizes to estimate besides 1 and max "
                                        "concurrency (1,8,64); batches that do not fit are marked."),
    quantization: Optional[str] = typer.Option(None, "--quantization", "-q", help="Serve the weights quantised "
                                               "as vLLM's --quantization: fp8, awq, gptq or mxfp4."),
    dtype: Optional[str] = typer.Option(None, "--dtype", help="Model dtype as vLLM's --dtype: auto, half, "
                                        "float16, bfloat16, float, float32."),
    input_len: Optional[int] = typer.Option(None, "--input-len", help="Prompt tokens for the time to first token "
                                            "(default: the context)."),
    fmt: str = typer.Option("table", "--format", "-f", help=FORMAT_HELP),
) -> None:
    """Footprint, KV budget, max concurrency, decode ITL and time to first token; sweeps are the cross product
    of the comma lists."""
    from .commands.estimate import estimate as run
    from .render import check_format

    check_format(fmt)
    partition = tuple(_list(pp_partition, "pp_partition", "31,30")) if pp_partition else None
    result = run(model, contexts=_list(context, "context", "4096,32k", tokens=True),
                 kv_dtypes=[d.strip() for d in kv_dtype.split(",")], tps=_list(tp, "tp"), block_size=block_size,
                 kv_budget=kv_budget, gpu=gpu, gpu_memory=gpu_memory, gpu_util=gpu_util,
                 max_num_batched_tokens=max_num_batched_tokens, max_num_seqs=max_num_seqs, engine=engine, pp=pp,
                 pp_partition=partition, revision=revision,
                 batches=tuple(_list(batch, "batch", "1,8,64")) if batch else (), quantization=quantization,
                 dtype=dtype, input_len=input_len, spell=flag)
    show(result, fmt)


@app.command()
def models(fmt: str = typer.Option("table", "--format", "-f", help=FORMAT_HELP)) -> None:
    """The bundled model specs (usable offline by id)."""
    from .commands.catalogs import models as run
    from .render import check_format

    show(run(), check_format(fmt))


@app.command()
def gpus(fmt: str = typer.Option("table", "--format", "-f", help=FORMAT_HELP)) -> None:
    """The GPU catalog (runtime-reported memory, HBM bandwidth) and the detected GPU."""
    from .commands.catalogs import gpus as run
    from .render import check_format

    show(run(), check_format(fmt))


@app.command()
def check(
    model: Optional[List[str]] = typer.Argument(None, metavar="[MODEL]", show_default=False,
                                                help=MODEL_HELP + " With --file, extra arguments are more "
                                                "deployment files (as pre-commit passes them)."),
    file: Optional[str] = typer.Option(None, "--file", help="YAML file with a list under 'deployments:' "
                                       "(name, model, tp; optional pp, gpu, gpu_util, kv_budget, context, "
                                       "kv_dtype, min_concurrency, revision). See docs/ci.md."),
    tp: Optional[str] = typer.Option(None, "--tp", help="TP degrees to check for MODEL (8 or 2,4,8)."),
    pp: Optional[int] = typer.Option(None, "--pipeline-parallel-size", "-pp", "--pp", help="Pipeline stages; "
                                     "layers split as vLLM's get_pp_indices splits them (uneven counts allowed)."),
    min_concurrency: Optional[int] = typer.Option(None, "--min-concurrency", help="Fail unless this many "
                                                  "sequences of --context tokens fit at once."),
    context: Optional[str] = typer.Option(None, "--context", "-c", help="Tokens per sequence for the capacity "
                                          "check (default 8192; 32k works)."),
    kv_dtype: Optional[str] = typer.Option(None, "--kv-dtype", help="KV precision (default auto = model dtype)."),
    gpu: Optional[str] = typer.Option(None, "--gpu", help="GPU from `kvplan gpus`; default: detected, else "
                                      "H100-80GB-SXM."),
    gpu_util: Optional[float] = typer.Option(None, "--gpu-util", help="GPU memory fraction (default: vLLM's, "
                                             "0.92)."),
    kv_budget: Optional[str] = typer.Option(None, "--kv-budget", help="KV bytes per GPU (10GiB); skips the "
                                            "GPU budget."),
    revision: Optional[str] = typer.Option(None, "--revision", help="Hub revision (branch, tag or commit)."),
    suggest: bool = typer.Option(False, "--suggest", help="List every valid TP degree up to 64 for MODEL, "
                                 "with KV heads per GPU and replication."),
    fmt: str = typer.Option("table", "--format", "-f", help=FORMAT_HELP),
) -> int:
    """CI gate: TP/PP divisibility and capacity targets. Exit 0 pass, 1 a rule fails, 2 bad input.
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
            raise KvplanError(f"{flag('tp' if tps else given[0])} applies to MODEL only; with --file give it on "
                              f"each deployment (valid keys: {', '.join(VALID_KEYS)}).")
        deployments = [dep for path in [file, *models] for dep in load_deployments(path)]
    elif not models:
        raise KvplanError("kvplan check needs MODEL with --tp (or --suggest), or --file deployments.yaml.")
    elif len(models) > 1:
        raise KvplanError(f"kvplan check takes one MODEL, got {len(models)} ({', '.join(models)}); list several "
                          f"in a --file.")
    elif suggest:
        extra = ["tp"] * bool(tps) + [g for g in given if g != "revision"]
        if extra:
            raise KvplanError(f"--suggest lists every valid TP degree on its own; drop {flag(extra[0])}.")
        show(run.suggest(models[0], revision), fmt)
        return 0
    else:
        deployments = model_deployments(models[0], tps or [], **options)
    result = run.check(deployments)
    show(result, fmt)
    from .render.check import annotations, in_github_actions

    if in_github_actions():
        sys.stderr.write(annotations(result))
        sys.stderr.flush()
    return 0 if result.ok else 1


@app.command()
def verify(
    model: str = typer.Argument(..., help=MODEL_HELP),
    tp: int = typer.Option(1, "--tp", "-tp", "--tensor-parallel-size", help="Tensor-parallel degree: one "
                           "process per GPU when the machine has that many, else one simulated rank."),
    context: str = typer.Option("8192", "--context", "-c", help="Tokens per sequence (8192, 32k)."),
    kv_dtype: str = typer.Option("auto", "--kv-dtype", help="KV precision the kernel reads: auto, bf16, fp16, fp8."),
    gpu_util: Optional[float] = typer.Option(None, "--gpu-util", help="Fraction of GPU memory the engine may "
                                             "use (default: vLLM's, 0.92)."),
    block_size: Optional[int] = typer.Option(None, "--block-size", help="Paged-attention block size (8, 16, 32, "
                                             "64, 128; default: vLLM's choice)."),
    max_num_seqs: Optional[int] = typer.Option(None, "--max-num-seqs", help="Sequences per step, as vLLM's "
                                               "(default: vLLM's for this GPU): sizes the profile run's sampler "
                                               "pass and the decode graphs captured."),
    max_num_batched_tokens: Optional[int] = typer.Option(None, "--max-num-batched-tokens", help="Tokens of the "
                                                         "profile run's forward pass, as vLLM's (default: vLLM's "
                                                         "for this GPU)."),
    revision: Optional[str] = typer.Option(None, "--revision", help="Hub revision (branch, tag or commit)."),
    fmt: str = typer.Option("table", "--format", "-f", help="Output format: table, json or yaml."),
) -> int:
    """On the local GPU: run the model's real forward pass (dummy weights), measure every budget term, size
    the paged KV pools from what is left, prove the capacity boundary, time decode and prefill against the
    plan. Exit 0 when the verdicts hold, 1 when one fails, 2 on bad input or no usable GPU. Needs the `gpu`
    extra (torch, nvidia-ml-py)."""
    from .commands.verify import VerifyResult, verify as run
    from .render import check_format

    check_format(fmt, VerifyResult.formats)
    lengths = _list(context, "context", "8192 or 32k", tokens=True)
    if len(lengths) != 1:
        raise FieldError("context", f"takes one length for verify (it allocates one plan), got {context!r}.")
    result = run(model, tp=tp, context=lengths[0], kv_dtype=kv_dtype, gpu_util=gpu_util, block_size=block_size,
                 max_num_seqs=max_num_seqs, max_num_batched_tokens=max_num_batched_tokens, revision=revision)
    show(result, fmt)
    return 0 if result.ok else 1


def _click_errors() -> tuple:
    """(UsageError, Abort) from whichever click typer runs on: vendored since typer 0.26."""
    try:
        from typer._click.exceptions import UsageError
        from typer.exceptions import Abort
    except ImportError:
        from click.exceptions import Abort, UsageError
    return UsageError, Abort


def main(argv: Optional[list] = None) -> int:
    """Run one command; the exit code: 0 ok, 1 a check or verdict failed, 2 bad input, 130 interrupted."""
    usage_error, abort = _click_errors()
    try:
        result = app(args=argv, prog_name="kvplan", standalone_mode=False)
    except FieldError as exc:
        print(f"kvplan: error: {exc.spelled(flag(exc.field))}", file=sys.stderr)
        return 2
    except KvplanError as exc:
        print(f"kvplan: error: {exc}", file=sys.stderr)
        return 2
    except usage_error as exc:
        print(f"kvplan: error: {exc.format_message()}", file=sys.stderr)
        return 2
    except (abort, KeyboardInterrupt):
        print("kvplan: interrupted.", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `kvplan ... | head`: the reader left; say nothing more
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return result if isinstance(result, int) else 0


def entry() -> None:
    """The `kvplan` console script."""
    sys.exit(main())
