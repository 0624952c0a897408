"""One run of the command line: exit codes (0 ok, 1 a check or verdict failed, 2 bad input, 3 a bug in kvplan,
130 interrupted), one line on stderr for each failure, never a traceback."""

from __future__ import annotations

import re
import sys
from contextlib import contextmanager
from typing import Optional

from ..errors import MAX_QUOTED, FieldError, KvplanError, quote
from . import flags
from .app import GuardedStdout, ReaderLeft, _drop_stdout, app, click_command, read_names
from .run_errors import click_errors as _click_errors

@contextmanager
def guarded_stdout(finished: tuple = ()):
    """sys.stdout as GuardedStdout for one command: what help, --version and results write is held and written once
    as the command ends, or leaves through one of `finished` (click's Exit: --version; shell completion's
    SystemExit); on any other exception nothing is written, so a failure never leaves half an output."""
    real = sys.stdout
    guarded = sys.stdout = GuardedStdout(real)
    try:
        yield
    except finished:
        sys.stdout = real
        guarded.write_out()
        raise
    except BaseException:
        sys.stdout = real
        raise
    sys.stdout = real
    guarded.write_out()


def say(message: str) -> None:
    """One line on stderr, whatever `message` holds: each line break (with the whitespace around it) one space, `##[`
    (a GitHub Actions workflow command anywhere in a log line) escaped, silently dropped when stderr is gone. Other
    spaces stay: a value quoted ('   ', 'H100  X') is said as the user gave it."""
    line = LINE_BREAKS.sub(" ", str(message)).strip().replace("##[", "##\\x5b")
    try:
        if sys.stderr is not None:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _crash_line(exc: BaseException) -> str:
    """Where an unexpected exception came from, in one line: its type, message and innermost kvplan frame."""
    import os
    import traceback

    # frames inside the package directory itself (a checkout or venv path that merely contains "kvplan" is not one)
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if os.path.abspath(f.filename).startswith(package)]
    where = ""
    if frames:
        frame = frames[-1]
        where = f" at {os.path.relpath(os.path.abspath(frame.filename), package)}:{frame.lineno}"
    text = " ".join(str(exc).split())
    text = text if len(text) <= 120 else text[:117] + "..."
    return (f"kvplan: internal error (exit 3): {type(exc).__name__}: {text}{where}. This is a bug in kvplan, not "
            f"your input; please report it with the command line (KVPLAN_TRACEBACK=1 shows the traceback).")


def _said_error(exc: BaseException, sentence: str) -> None:
    """A bad input's line; under GitHub Actions, where `kvplan check --file` marked the error with the files it read
    (exc.deployments_files) and the sentence starts with one's place, also its ::error workflow command at that line,
    as check's violations get (render/check.py)."""
    say(f"kvplan: error: {sentence}")
    files = getattr(exc, "deployments_files", None)
    if files:
        from ..render.check import in_github_actions, input_annotation

        annotation = input_annotation(LINE_BREAKS.sub(" ", sentence).strip(), files) if in_github_actions() else ""
        try:
            if annotation and sys.stderr is not None:
                sys.stderr.write(annotation)
                sys.stderr.flush()
        except (OSError, ValueError):
            pass


def _runner():
    """The command to run: the one built once (click_command); under KVPLAN_TRACEBACK=1 typer's app itself, whose
    call installs typer's traceback printer for the crash that leaves main."""
    import os

    return app if os.environ.get("KVPLAN_TRACEBACK") == "1" else click_command()


def main(argv: Optional[list] = None) -> int:
    """Run one command. Exit codes: 0 ok, 1 a check or verdict failed, 2 bad input (or an output that cannot
    be written), 3 kvplan itself failed (a bug: one line says where), 130 interrupted. Never a traceback
    (unless KVPLAN_TRACEBACK=1)."""
    args = sys.argv[1:] if argv is None else list(argv)
    flags.typed_args[:] = args
    usage_errors, abort, exit_ = _click_errors()
    result = None  # the command's exit code, kept when only writing its output fails
    try:
        # click's Exit (--version) and SystemExit (shell completion's answer) end a command that wrote its output
        with guarded_stdout((exit_, SystemExit)):  # `kvplan` alone: the command list and a first command, exit 0
            result = _runner()(args=args or ["--help"], prog_name="kvplan", standalone_mode=False)
    except FieldError as exc:
        _said_error(exc, exc.spelled(flags.typed(exc.field), flags.typed))
        return 2
    except KvplanError as exc:
        # a deployments file's `serve:` command's usage error (serve_command.ServeUsage, not imported here: a run
        # without `serve:` never loads it): its flags said as the command line says them
        if getattr(exc, "usage", None) is not None:
            with exc.command.reading():
                sentence = _usage_sentence(exc.usage) or exc.usage.format_message()
            _said_error(exc, f"{exc.where}: {_cut_arguments(sentence, list(exc.command.args))}")
            return 2
        _said_error(exc, str(exc))
        return 2
    except usage_errors as exc:
        say(f"kvplan: error: {_cut_arguments(_usage_sentence(exc) or exc.format_message(), args)}")
        return 2
    except exit_ as exc:
        return exc.exit_code if isinstance(getattr(exc, "exit_code", None), int) else 0
    except (abort, KeyboardInterrupt):
        say("kvplan: interrupted.")
        return 130
    except (ReaderLeft, BrokenPipeError):  # `kvplan ... | head`: the reader left; say nothing more
        _drop_stdout()  # but a failed check's verdict (exit 1) stands: `kvplan check ... | head` in a pipeline
        return 1 if result == 1 else 0
    except OSError as exc:
        if "--install-completion" not in args:
            return _crashed(exc)
        # typer writes the shell's rc file and a completion script under HOME: a HOME it cannot write is the user's
        where = f" ({quote(exc.filename)})" if exc.filename else ""
        say(f"kvplan: error: --install-completion could not write the completion script: "
            f"{exc.strerror or type(exc).__name__}{where}; check HOME and SHELL, or print the script with "
            f"--show-completion and install it by hand.")
        return 2
    except Exception as exc:  # a bug: its own exit code, one line, never 0 or 1
        return _crashed(exc)
    if result == 130:  # typer's answer to a KeyboardInterrupt (no command of ours returns 130)
        say("kvplan: interrupted.")
    return result if isinstance(result, int) else 0


LINE_BREAKS = re.compile(r"\s*[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]\s*")  # what str.splitlines splits at
EXTRA_ARGUMENTS = re.compile(r"Got unexpected extra argument(?:s|\(s\))? \((.*)\)", re.DOTALL)  # click 8's, typer's
NO_COMMAND = re.compile(r"No such command (.*?)\.(?: Did you mean '(.+)'\?)?", re.DOTALL)
NEEDS_VALUE = re.compile(r"Option '(.+)' requires an argument\.", re.DOTALL)
NOT_A_NUMBER = re.compile(r"Invalid value for .*?: (.*) is not a valid (int|integer|float)\.", re.DOTALL)


def _usage_sentence(exc) -> Optional[str]:
    """click's usage errors that say nothing of what is valid, as one sentence that does: an option the command
    lacks ("No such option: --gpu", from `kvplan models --gpu H100`), arguments past the command's own ("Got
    unexpected extra argument(s) (json)", from `kvplan models json` or `-c 8K 32K`), a command kvplan lacks, a
    missing MODEL, an option given no value, and text where an option takes a number ("Invalid value for '-tp' /
    '--tensor-parallel-size' / '--tp': '1,2' is not a valid int."); None for the others."""
    message = exc.format_message()
    needs = NEEDS_VALUE.fullmatch(message)
    if needs:  # click gives this one no context: the command is the run's first argument
        given = flags.typed_args[:1]
        path = f"kvplan {given[0]}" if given and given[0] in click_command().commands else "kvplan"
        return f"{flags.as_typed(needs[1])} needs a value after it; `{path} -h` says what it takes."
    ctx = getattr(exc, "ctx", None)
    if ctx is None:
        return None
    path = ctx.command_path
    command = NO_COMMAND.fullmatch(message)
    if command:
        choices = f"did you mean {command[2]}?" if command[2] else \
            f"the commands are {', '.join(ctx.command.list_commands(ctx))} (`{path} -h`)."
        return f"{path} has no command {command[1]}; {choices}"
    param = getattr(exc, "param", None)
    number = NOT_A_NUMBER.fullmatch(message)
    if number and param is not None:
        spelled = flags.typed_spelling(param.opts, as_typed=True) or param.opts[0]
        whole = number[2] != "float"
        return f"{spelled} takes {'a whole number' if whole else 'a number'}, got {number[1]}."
    if param is not None and param.param_type_name == "argument" and message.startswith("Missing argument"):
        return f"{path} needs {param.name.upper()}: {flags.MODEL_HELP}"  # MODEL: the one argument a command needs
    name = getattr(exc, "option_name", None)
    if name is not None:
        typed = flags.as_typed(name)  # click names the flag as read: --max-model, typed --max_model
        instead = flags.NOT_THIS_COMMAND.get((ctx.command.name, name))
        if instead:
            return f"{path} has no option {typed}: {instead}."
        vllm_line = ctx.command.name in ("estimate", "check", "verify")  # the commands a `vllm serve` line is for
        if name in read_names(ctx.command):  # a negative switch (--no-enforce-eager=1), read but not declared
            return f"{typed} is a switch and takes no value (neither does vLLM's); write it alone."
        server = flags.server_flag(name)
        if server and vllm_line:
            value = " and its value" if flags.VLLM_SERVER_FLAGS[server] else ""
            return (f"{path} has no option {typed}: vLLM's {name} changes nothing kvplan plans (memory, capacity, "
                    f"speed); drop it{value}.")
        lacking = flags.unnegatable_server_flag(name)
        if lacking and vllm_line:  # vLLM stops on it too ("unrecognized arguments"): no near flag of kvplan's helps
            kind = ("takes a value and has no negative" if flags.VLLM_SERVER_FLAGS[lacking]
                    else "is a plain switch with no negative (off is the flag left out)")
            return f"{path} has no option {typed}, nor has vLLM: its {lacking} {kind}; drop it."
        known = _vllm_flag(name, read_names(ctx.command)) if vllm_line else None
        if known is not None:  # a flag of `vllm serve` kvplan does not read: never a kvplan flag's near miss
            return _vllm_flag_sentence(path, *known)
        beginning = _beginning_sentence(path, typed, name, read_names(ctx.command)) if vllm_line else None
        if beginning:  # vLLM's argparse would read a prefix unique among its own flags (flags.py: Abbreviations)
            return beginning
        near = list(getattr(exc, "possibilities", None) or ())  # click's order: the closest first
        return (f"{path} has no option {quote(typed)[1:-1]}; " +
                (f"did you mean {' or '.join(near)}?" if near else f"`{path} -h` lists the options it takes."))
    extra = EXTRA_ARGUMENTS.fullmatch(exc.format_message())
    if extra is None:
        return None
    takes = [param.name.upper() for param in ctx.command.params if param.param_type_name == "argument"]
    if not takes:
        return f"{path} takes no arguments, got {quote(extra[1])}; `{path} -h` lists the options it takes."
    return (f"{path} takes one {' '.join(takes)}, got {quote(extra[1])} besides; each option takes one value (a "
            f"list joined with commas: 8K,32K), and `{path} -h` lists the options.")


def _beginning_sentence(path: str, typed: str, name: str, read: set) -> Optional[str]:
    """The sentence for `name`, a beginning of flags (flags.whole_flags), or None: of kvplan's own, write the whole
    flag; else of vLLM's flags kvplan does not read (vllm_serve_flags.py, the hand list), the flags, or where only one
    begins so, the flag argparse reads it as and what kvplan does with that flag."""
    whole = flags.whole_flags(name, read)
    if not whole:
        from .vllm_serve_flags import flag_names

        whole = flags.whole_flags(name, flag_names() | set(flags.VLLM_SERVER_FLAGS))
        if len(whole) == 1:
            said = _whole_flag_words(whole[0], name)
            return f"{path} has no option {typed}: vLLM's argparse reads {typed} as {said}."
    if not whole:
        return None
    return (f"{path} has no option {typed}: write the whole flag, {' or '.join(whole)} (kvplan does not read a flag's "
            f"beginning as vLLM's argparse does).")


def _whole_flag_words(flag: str, typed_as: str) -> str:
    """`flag` (a vLLM flag kvplan does not read, typed as its beginning `typed_as`) and what kvplan does with it."""
    from .vllm_serve_flags import NOTHING, consequence, vllm_flag

    if flag in flags.VLLM_SERVER_FLAGS:
        return f"{flag}, which {NOTHING}{' and its value' if flags.VLLM_SERVER_FLAGS[flag] else ''}"
    known = vllm_flag(flag, _typed_value(typed_as))
    if known.instead:
        return f"{flag}: {known.instead}"
    value = {True: " and its value", "optional": " and its value, if it has one"}.get(known.value, "")
    return f"{flag}, which {consequence(known)}{'' if known.unmodelled else value}"


def _typed_value(name: str) -> Optional[str]:
    """The value typed with the option `name` (--load-format ipc_cache, --load-format=ipc_cache), the last, or None."""
    options = flags.typed_args[:flags.typed_args.index("--")] if "--" in flags.typed_args else flags.typed_args
    typed = flags.as_typed(name)
    value = None
    for index, arg in enumerate(options):
        spelled, equals, given = arg.partition("=")
        if spelled in (name, typed):
            value = given if equals else options[index + 1] if index + 1 < len(options) else None
    return value


def _vllm_flag(name: str, read: set):
    """(the spelling typed, vLLM's name, what vllm_serve_flags says of it) where the unknown option `name` is a flag
    of `vllm serve` kvplan does not read (vllm_serve_flags.py, imported only here), else None. click names a short
    option it cannot match by its first letter (-dpl 2: "-d"), so a short one is found as typed."""
    from .vllm_serve_flags import ELSEWHERE, SHORT, vllm_flag

    options = flags.typed_args[:flags.typed_args.index("--")] if "--" in flags.typed_args else flags.typed_args
    if len(name) == 2 and name[1] != "-":
        name = next((arg.partition("=")[0] for arg in options if arg.startswith(name) and arg.partition("=")[0] in
                     (*SHORT, *ELSEWHERE) and arg not in read), name)
    known = vllm_flag(name, _typed_value(name))
    return None if known is None else (flags.as_typed(name), name, known)


def _vllm_flag_sentence(path: str, typed: str, name: str, known) -> str:
    """One sentence for a vLLM flag kvplan does not read (vllm_serve_flags.Flag): what to write instead, that vLLM has
    no such negative either, what it changes that kvplan does not model, or that it changes nothing."""
    if known.instead:
        return f"{path} has no option {typed}: {known.instead}."
    if known.negated and not known.negatable:  # a negative vLLM has in some release is the flag's own
        kind = ("takes a value and has no negative" if known.value is not False
                else "is a plain switch with no negative (off is the flag left out)")
        return f"{path} has no option {typed}, nor has vLLM: its {known.flag} {kind}; drop it."
    from .vllm_serve_flags import SHORT, consequence

    if name in SHORT:  # -dpl: the flag's long name too
        name = f"{name} ({known.flag})"
    value = {True: " and its value", "optional": " and its value, if it has one"}.get(known.value, "")
    return f"{path} has no option {typed}: vLLM's {name} {consequence(known)}{'' if known.unmodelled else value}."


def _cut_arguments(message: str, args: list) -> str:
    """click's own errors (a value its type refuses, an unknown option) repeat the argument whole: each one longer
    than MAX_QUOTED is cut in its middle there, as quote() cuts a value, so the error stays one short line."""
    long = {part for arg in args for part in (arg, *arg.split("=", 1)[1:]) if len(part) > MAX_QUOTED}
    for arg in sorted(long, key=len, reverse=True):
        half = (MAX_QUOTED - 3) // 2
        message = message.replace(arg, f"{arg[:half]}...{arg[-half:]}")
    return message


def _crashed(exc: Exception) -> int:
    """A bug: its own exit code, one line, never 0 or 1 (the traceback itself under KVPLAN_TRACEBACK=1)."""
    import os

    if os.environ.get("KVPLAN_TRACEBACK") == "1":
        raise exc
    say(_crash_line(exc))
    return 3


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
