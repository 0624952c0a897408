"""The command line: flags <-> fields (flags.py), the commands as typer declares them (app.py), and one run's
exit codes (run.py). Commands return result objects (kvplan/commands/), kvplan/render turns them into text, and
this package is the only place that knows a flag's name.

Flags are vLLM's (`vllm serve --help`) wherever vLLM has one, spelled and parsed as vLLM parses them; kvplan's
earlier names stay as aliases (--context, --kv-dtype, --tp, --gpu-util, --kv-budget)."""

from .flags import FLAGS, flag
from .run import finish, main

__all__ = ["FLAGS", "finish", "flag", "main"]
