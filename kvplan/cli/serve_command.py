"""A deployments file's `serve:` key: the `vllm serve` command a deployment runs, as a string (a docker-compose
`command:`, a script's line: split as a POSIX shell splits it) or a list of arguments (a Kubernetes container's
`args:`). Its flags are read by `kvplan check`'s own click command and check_options, as `kvplan check MODEL
--flags...` reads them (underscores, negatives, dotted JSON keys, later spellings, the refusals of vLLM flags kvplan
does not read), so an entry's fields, figures and refusals are the command line's. Only what a deployed command
holds around the flags is read here: its launcher (`vllm serve`, `python -m vllm.entrypoints.openai.api_server`)
and `--model X`, which `vllm serve` takes beside its MODEL argument."""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Callable, Optional

from ..errors import FieldError, KvplanError, quote
from . import flags

API_SERVER = "vllm.entrypoints.openai.api_server"
PYTHON = re.compile(r"python[0-9.]*")
ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")  # a shell's `NAME=value` before the command
LAUNCH = f"give the `vllm serve` command (or python -m {API_SERVER})"


class ServeUsage(KvplanError):
    """click's usage error on a `serve:` command, said by run.main as the command line says it (its sentences need
    the command line's modules, which import this one), at `where` (the entry, set by the deployments loader)."""

    def __init__(self, usage, args: tuple):
        if getattr(usage, "possibilities", None):  # click's near flags for one the command lacks: only vLLM's, since
            # a flag of kvplan's own (--format, --kv-dtype, --gpu-util, --engine: NOT_VLLM) is refused in the command
            usage.possibilities = [near for near in usage.possibilities if near not in NOT_VLLM]
        super().__init__(usage.format_message())
        self.usage, self.command, self.where = usage, ServeCommand(None, None, {}, args), ""


# check's options a deployment's command may not hold: they are the run's, not a deployment's
RUN_ONLY = {"files": "--file", "suggest": "--suggest", "fmt": "--format", "hub_timeout": "--hub-timeout"}
# check's spellings that no release's `vllm serve` takes (none of 0.5.5-0.34.0 lists them:
# tests/data/vllm_serve_flags.json), so a deployed command holding one stops on argparse's "unrecognized arguments"
NOT_VLLM = flags.KVPLAN_OWN | {"-c"}
KEY_OF = {"pp_partition": "pp_layer_partition"}  # the entry's key for an option of kvplan's, where not its name


@dataclass(frozen=True)
class ServeCommand:
    """What one `serve:` command gives: its MODEL, its TP degree (None: not given), the other fields it gives (as
    check_options reads them, None left out) and the arguments as read (the flags' spellings in errors)."""

    model: Optional[str]
    tp: Optional[int]
    fields: dict
    args: tuple
    model_by_flag: bool = False  # the model came as --model X (taken out of args)
    refuse_later: Optional[Callable] = None  # app.refuse_later_spellings, handed in by the command line

    def spell(self, field: str) -> str:
        """The flag that gave `field`, as this command typed it (--max_model_len), or MODEL's place."""
        if field == "model":
            return "--model" if self.model_by_flag else "its MODEL argument"
        with self.reading():
            return flags.typed(field)

    def said(self, exc: FieldError) -> str:
        """A field's error as `kvplan check` says it for the same flags."""
        with self.reading():
            return exc.spelled(flags.typed(exc.field), flags.typed)

    def refuse_later_spellings(self, engine) -> None:
        """A flag typed as a release after `engine`'s spells it (app.refuse_later_spellings, as the command line)."""
        with self.reading():
            self.refuse_later(engine)

    def compilation(self, entry: dict) -> dict:
        """The entry's compilation_config and optimization_level with one kept where the entry's release (its
        engine, a key or this command's) keeps one of those this command typed (vllm_compilation_text.one_flag)."""
        from ..engines.vllm_compilation import one_flag

        config, level = entry.get("compilation_config"), entry.get("optimization_level")
        if any(value is not None and key not in self.fields
               for key, value in (("compilation_config", config), ("optimization_level", level))):
            # a key has no place in the command's order: both as given, which resolve refuses together before 0.12
            return {"compilation_config": config, "optimization_level": level}
        with self.reading():
            config, level = one_flag(flags.typed_args, config, level, entry.get("engine"))
        return {"compilation_config": config, "optimization_level": level}

    @contextmanager
    def reading(self):
        """flags.typed_args as this command's, for the command line's readers of what was typed; restored after."""
        saved = list(flags.typed_args)
        flags.typed_args[:] = ["check", *self.args]
        try:
            yield
        finally:
            flags.typed_args[:] = saved


def serve_arguments(value) -> list:
    """The command's arguments: a list of strings as given, a string split as a POSIX shell splits it (a backslash
    before a line break continues the line, as in a script; a comment is dropped)."""
    import shlex

    if isinstance(value, list):
        bad = next((item for item in value if not isinstance(item, str)), None)
        if bad is not None or not value:
            what = "is an empty list" if not value else f"holds {quote(bad)}, which is not text"
            raise KvplanError(f"{what}; give the command as a string or a list of strings, each argument quoted "
                              f"where YAML would read a number (as a Kubernetes container's args).")
        return list(value)
    if not isinstance(value, str) or not value.strip():
        raise KvplanError(f"must be the `vllm serve` command as a string or a list of arguments, got "
                          f"{quote(value)}.")
    try:
        args = shlex.split(without_comments(value).replace("\\\n", " "))
    except ValueError as exc:  # "No closing quotation", "No escaped character"
        raise KvplanError(f"cannot be split as a shell splits it ({str(exc).lower()}); balance its quotes.") from None
    if not args:
        raise KvplanError("holds only a comment; give the `vllm serve` command the deployment runs.")
    return args


def without_comments(text: str) -> str:
    """`text` without its shell comments: from a `#` that begins a word, outside quotes, to the end of its line (a
    YAML block scalar keeps `vllm serve X -tp 2  # two GPUs` whole; a shell drops the comment). A `#` inside a word
    (a#b), quoted or escaped is the word's, as a shell reads it (shlex's comments=True would cut a#b)."""
    kept, quoting, word_start, index = [], None, True, 0
    while index < len(text):
        char = text[index]
        if char == "#" and quoting is None and word_start:
            end = text.find("\n", index)
            index = len(text) if end < 0 else end
            continue
        if char == "\\" and quoting != "'":  # the next character as it is; a line's continuation joins the lines
            kept.append(text[index:index + 2])
            word_start = word_start and text[index + 1:index + 2] == "\n"
            index += 2
            continue
        if quoting is None and char in "'\"":
            quoting = char
        elif char == quoting:
            quoting = None
        kept.append(char)
        word_start = quoting is None and char.isspace()
        index += 1
    return "".join(kept)


def without_launcher(args: list) -> list:
    """The arguments after `vllm serve` or `python -m vllm.entrypoints.openai.api_server` (any path to either);
    arguments without one (a container's args) as they are."""
    first = PurePosixPath(args[0]).name if args else ""
    if args and ASSIGNMENT.match(args[0]):  # the word, not its name (HF_HOME=/data/hf's is 'hf'): else MODELs
        raise KvplanError(f"sets {quote(args[0])} in the command's environment, which kvplan does not read; "
                          f"{LAUNCH} without it.")
    serve_at = next((i for i in range(1, len(args) - 1)
                     if PurePosixPath(args[i]).name == "vllm" and args[i + 1] == "serve"), None)
    if first != "vllm" and not PYTHON.fullmatch(first) and serve_at is not None:  # docker exec ..., uv run ...
        raise KvplanError(f"runs {quote(' '.join(args[:serve_at]))} before `vllm serve`; {LAUNCH} alone.")
    if first == "vllm":
        if args[1:2] != ["serve"]:
            raise KvplanError(f"runs `vllm {' '.join(args[1:2])}`; {LAUNCH}.")
        return args[2:]
    if PYTHON.fullmatch(first):
        if args[1:3] != ["-m", API_SERVER]:
            raise KvplanError(f"runs {quote(' '.join(args[:3]))}; {LAUNCH}.")
        return args[3:]
    return args


def model_option(args: list) -> tuple:
    """(the arguments without `--model X` / `--model=X`, X or None): vLLM's flag for MODEL, which check reads as its
    argument; given twice, refused."""
    cut = args.index("--") if "--" in args else len(args)
    rest, models, index = [], [], 0
    while index < cut:
        arg = args[index]
        if arg == "--model" and index + 1 < cut:  # without a value: left to check's "needs a value"
            models.append(args[index + 1])
            index += 2
            continue
        if arg.startswith("--model="):
            models.append(arg.partition("=")[2])
        else:
            rest.append(arg)
        index += 1
    if len(models) > 1:
        raise KvplanError(f"gives --model twice ({', '.join(map(quote, models))}); a deployment serves one model.")
    return rest + args[cut:], (models[0] if models else None)


def without_idle_flags(args: list) -> list:
    """The arguments without the vLLM flags that change nothing kvplan plans (--port 8000, --host, --served-model-name,
    --trust-remote-code...: flags.VLLM_SERVER_FLAGS and vllm_serve_flags' NO_EFFECT, a value's exceptions kept) and
    their values: a deployed command holds them, and the command line's "drop it" would make every real command be
    trimmed before the gate reads it. What changes the plan unmodelled stays, to be refused as the command line
    refuses it."""
    from .vllm_serve_flags import vllm_flag

    cut = args.index("--") if "--" in args else len(args)
    kept, index = [], 0
    while index < cut:
        name, equals, typed = args[index].partition("=")
        server = flags.server_flag(name)
        known = None if server or not name.startswith("-") else vllm_flag(name, typed if equals else
                                                                          (args[index + 1] if index + 1 < cut
                                                                           else None))
        idle = server is not None or (known is not None and known.unmodelled is None and known.instead is None)
        if not idle:
            kept.append(args[index])
            index += 1
            continue
        takes_value = flags.VLLM_SERVER_FLAGS.get(server, False) if server else known.value is True
        negated = server is not None and server != name or known is not None and known.negated
        index += 2 if takes_value and not equals and not negated else 1
    return kept + args[cut:]


def read_serve(value, group, check_options, refuse_later) -> ServeCommand:
    """The `serve:` value read as `kvplan check` reads its command line: by `group`'s check command (app.click_command),
    `check_options` and `refuse_later` (app.check_options, app.refuse_later_spellings), handed in by the command line
    (this module imports none of it: app imports this one); a bad command is a KvplanError of one
    sentence (the caller names the entry), a usage error ServeUsage."""
    from ..units import int_list
    from .run_errors import click_errors

    args, flag_model = model_option(without_idle_flags(without_launcher(serve_arguments(value))))
    command = ServeCommand(None, None, {}, tuple(args))
    check = group.commands["check"]
    usage_errors, _, exit_ = click_errors()
    with command.reading():
        try:
            ctx = check.make_context("check", list(args), parent=group.context_class(group, info_name="kvplan"))
            fields = {key: value for key, value in check_options(ctx.params).items() if value is not None}
            tps = None if ctx.params["tp"] is None else int_list(ctx.params["tp"], "tp", "1,2,4,8", False, False)
        except FieldError as exc:
            raise KvplanError(command.said(exc)) from None
        except usage_errors as exc:
            raise ServeUsage(exc, tuple(args)) from None
        except exit_:  # -h, --help: help is the command line's
            raise KvplanError("asks for help (-h); give the command the deployment runs.") from None
    with command.reading():
        for name, spelled in RUN_ONLY.items():
            if ctx.get_parameter_source(name).name != "DEFAULT":
                param = next(p for p in check.params if p.name == name)
                spelled = flags.typed_spelling(param.opts + param.secondary_opts, as_typed=True) or spelled
                raise KvplanError(f"holds {spelled}, a flag of kvplan check's run, not of a deployment; drop it.")
        _refuse_kvplan_flags(check, ctx)
    words = list(ctx.params["model"] or [])
    if len(words) > 1:  # `vllm serve` takes one positional word (argparse: "unrecognized arguments")
        raise KvplanError(f"holds {len(words)} words where `vllm serve` takes one MODEL "
                          f"({', '.join(map(quote, words))}); {LAUNCH}, or a container's args.")
    models = words + ([flag_model] if flag_model is not None else [])
    if len(models) > 1:
        raise KvplanError(f"gives the model twice ({', '.join(map(quote, models))}); a deployment serves one model.")
    if tps is not None and len(tps) != 1:
        raise KvplanError(f"gives {command.spell('tp')} {ctx.params['tp']}; a deployment runs at one TP degree.")
    return ServeCommand(models[0] if models else None, tps[0] if tps else None, fields, tuple(args),
                        flag_model is not None, refuse_later)


def _refuse_kvplan_flags(check, ctx) -> None:
    """A flag of kvplan's own in the command (NOT_VLLM, as typed: flags.typed_args is the command's), said with what
    vLLM's command holds instead: vLLM's spelling of the same option, or the entry's key for one vLLM has none of;
    where vLLM's argparse reads it as the beginning of one flag of its own (--gpu-memory: --gpu-memory-utilization,
    _vllm_reads_as), that flag."""
    for param in check.params:
        if param.name in RUN_ONLY or ctx.get_parameter_source(param.name).name == "DEFAULT":
            continue
        spellings = param.opts + param.secondary_opts
        spelled = flags.typed_spelling(spellings)
        if spelled not in NOT_VLLM:
            continue
        typed = flags.typed_spelling(spellings, as_typed=True)  # --gpu_memory, as the line has it
        key = KEY_OF.get(param.name, param.name)
        begun = _vllm_reads_as(spelled, check)
        if begun is not None:
            raise KvplanError(f"holds {typed}, a flag of kvplan's that `vllm serve` reads as the beginning of "
                              f"{begun} (argparse's abbreviation); write {begun}, or give kvplan's {spelled} as the "
                              f"entry's `{key}:` key.")
        vllm = next((o for o in param.opts if o.startswith("--") and o not in NOT_VLLM), None)
        if vllm is not None:
            raise KvplanError(f"holds {typed}, kvplan's name for vLLM's {vllm}, which `vllm serve` does not take "
                              f"(vLLM stops on it); write {vllm}.")
        raise KvplanError(f"holds {typed}, a flag of kvplan's that `vllm serve` does not take (vLLM stops on it); "
                          f"give it as the entry's `{key}:` key.")


def _vllm_reads_as(spelled: str, check) -> Optional[str]:
    """The vLLM flag that `spelled`, a long flag of kvplan's own, is the one beginning of among every `vllm serve`
    flag kvplan knows (those check declares as vLLM's, and vllm_serve_flags' classes), where it is one kvplan reads:
    vLLM's parsers keep argparse's allow_abbrev (flags.whole_flags), so `--gpu-memory 0.9` runs as
    --gpu-memory-utilization 0.9 in every release (0.5.5-0.34.0: tests/data/vllm_serve_flags.json); None where
    none or several begin so (vLLM stops: "unrecognized arguments", "ambiguous option")."""
    from .vllm_serve_flags import flag_names

    if not spelled.startswith("--"):
        return None
    read = {o for p in check.params for o in p.opts + p.secondary_opts if o.startswith("--") and o not in NOT_VLLM}
    begun = [name for name in read | flag_names() | set(flags.VLLM_SERVER_FLAGS) if name.startswith(spelled)]
    return begun[0] if len(begun) == 1 and begun[0] in read else None
