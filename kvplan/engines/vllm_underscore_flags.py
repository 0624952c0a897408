"""vLLM's parser reads the underscores of a long flag's name as dashes: `--max_model_len 8192` is --max-model-len.

FlexibleArgumentParser.parse_args rewrites each argument that starts with `--` before argparse reads it: the name
only (before the first `=`; the value after it is kept, `--kv_cache_dtype=fp8_e4m3` is --kv-cache-dtype=fp8_e4m3),
and from the dotted JSON arguments' release the name up to its first `.` only (utils/argparse_utils.py 0.34.0:378-394,
0.31.0:336-351; utils.py 0.5.1:933-943 rewrote the whole name, which differs only in dotted names, none of which
kvplan takes). A short flag (-tp) and an argument without `--` (the model, a value) are left alone. The YAML of its
--config becomes `--key value` arguments before the rewrite (0.34.0:371-372), so its keys take underscores too;
kvplan reads no --config.

UNDERSCORES_SINCE: the first release with that parser, 0.5.1 (utils.py 0.5.1:924, its OpenAI server's parser
entrypoints/openai/cli_args.py 0.5.1:27; `vllm serve` from 0.5.2, scripts.py 0.5.2:110). 0.5.0.post1 and older parse
with argparse.ArgumentParser (cli_args.py 0.5.0:26, 0.4.2:26), which stops on `--max_model_len` ("unrecognized
arguments").
"""

from __future__ import annotations

from typing import Optional

UNDERSCORES_SINCE = (0, 5, 1)


def dashed(arg: str) -> str:
    """`arg` as vLLM's parser hands it on: where it starts with `--`, the underscores of its name read as dashes."""
    if not arg.startswith("--"):
        return arg
    name, equals, value = arg.partition("=")
    head, dot, tail = name.partition(".")
    return head.replace("_", "-") + dot + tail + equals + value


def refusal(typed: str, version: str) -> Optional[str]:
    """The sentence refusing the flag name `typed` (with an underscore) where vLLM `version` does not read
    underscores as dashes; None where it does."""
    from .vllm_versions import parse_version  # when a release is checked: the command line starts without it

    if parse_version(version) >= UNDERSCORES_SINCE:
        return None
    since = ".".join(map(str, UNDERSCORES_SINCE))
    return (f"{typed} needs vLLM {since} or later, whose parser reads underscores as dashes (vllm=={version} stops on "
            f"that spelling: \"unrecognized arguments\"); write {dashed(typed)}.")
