"""`vllm serve` lines of older releases (0.5.5, 0.6.3.post1, 0.6.6, 0.7.3, 0.8.5, 0.9.2) pasted whole: each flag is
read by kvplan or classified in kvplan/cli/vllm_serve_flags.py (tests/test_serve_flags_s78.py does 0.10.1, 0.32.0,
0.34.0 with the same frozen list, tests/data/vllm_serve_flags.json), a flag's beginning that only vLLM's argparse
would read is named whole with what kvplan does with the flag, a deployments file is pointed at its own keys, and a
bad value after --enable-chunked-prefill= is told the spelling its release takes.

Before: `--num-scheduler-steps 8` -> "did you mean --max-num-batched-tokens?"; `--max-logprob 5` -> "did you mean
--max-loras or --max-lora-rank?"; a deployments key spec_model -> "write --speculative-config '{"model": ...}'";
`--enable-chunked-prefill=yes --engine vllm==0.6.6` -> "or write --enable-chunked-prefill /
--no-enable-chunked-prefill", a spelling 0.6.6 stops on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import deployments_file, one_error_line, run_kvplan
from kvplan.cli import vllm_serve_flags as serve
from kvplan.cli.flags import VLLM_SERVER_FLAGS

QWEN3_8B = "Qwen/Qwen3-8B"
COMMANDS = (("estimate", QWEN3_8B), ("check", QWEN3_8B, "-tp", "1"))
DATA = json.loads((Path(__file__).parent / "data" / "vllm_serve_flags.json").read_text())
RELEASES = {release["version"]: release["flags"] for release in DATA["releases"]}
OLD = ("0.5.5", "0.6.3.post1", "0.6.6", "0.7.3", "0.8.5", "0.9.2")
NOTHING = "changes nothing kvplan plans (memory, capacity, speed); drop it"


def read_by_kvplan() -> set:
    from kvplan.cli.app import click_command, read_names

    command = click_command()
    return read_names(command.commands["estimate"]) | read_names(command.commands["check"])


# ---- the frozen list --------------------------------------------------------------------------------------------

def test_the_frozen_list_reads_the_older_layouts():
    assert set(OLD) <= set(RELEASES)
    # read by hand: --use-v2-block-manager action='store_true' (engine/arg_utils.py 0.6.6:449-450),
    # --num-scheduler-steps type=int (:689-690), --enable-chunked-prefill StoreBoolean with nargs "?" (:710-714): a
    # value or none
    old = RELEASES["0.6.6"]
    assert old["--use-v2-block-manager"] == {"names": ["--use-v2-block-manager"], "value": False, "negative": None}
    assert old["--num-scheduler-steps"]["value"] is True
    assert old["--enable-chunked-prefill"] == {"names": ["--enable-chunked-prefill"], "value": "optional",
                                               "negative": None}
    # the serve subcommand's own: --config from scripts.py (0.6.6:161-169; 0.5.5's serve has none), -dpr from
    # entrypoints/cli/serve.py (0.9.2:79-84)
    assert "--config" in old and "--config" not in RELEASES["0.5.5"]
    assert RELEASES["0.9.2"]["--data-parallel-start-rank"]["names"] == ["--data-parallel-start-rank", "-dpr"]
    # SchedulerConfig's `SkipValidation[bool]` (config/scheduler.py 0.10.1:89) through get_kwargs (arg_utils.py
    # 0.10.1:821-822): a BooleanOptionalAction, as from 0.8.5 (engines/vllm_bool_flags.py)
    for release in ("0.8.5", "0.9.2", "0.10.1"):
        assert RELEASES[release]["--enable-chunked-prefill"]["negative"] == "--no-enable-chunked-prefill"


@pytest.mark.parametrize("release", OLD)
def test_every_flag_of_an_older_release_is_read_or_classified(release):
    read, classified = read_by_kvplan(), serve.flag_names() | set(VLLM_SERVER_FLAGS)
    missing = [flag for flag, entry in RELEASES[release].items()
               if not set(entry["names"]) & read and not set(entry["names"]) <= classified]
    assert missing == []


# ---- what the older flags say -----------------------------------------------------------------------------------

@pytest.mark.parametrize("args, said", [
    (("--num-scheduler-steps", "8"), "vLLM's --num-scheduler-steps changes V0's multi-step scheduling (a decoding "
                                     "sequence holds KV slots for the steps ahead"),
    (("--use-v2-block-manager",), "changes a sliding-window request's KV blocks before vLLM 0.6.3"),
    # V0 captures after sizing the cache (worker.py 0.6.6:260-275): no graph memory in the budget, only the step time
    (("--max-seq-len-to-capture", "8192"), "so V0's decode step time (V0 captures its graphs after sizing the KV "
                                           "cache; V1 does not read it)"),
    (("--num-lookahead-slots", "4"), "in V0's scheduler (V1 holds the speculative config's only)"),
    (("--speculative-model", "x"), "changes speculative decoding (a draft model's weights and KV cache"),
    (("-spec-draft-tp", "1"), "vLLM's -spec-draft-tp (--speculative-draft-tensor-parallel-size) changes the draft"),
    (("--tokenizer-pool-size", "4"), f"vLLM's --tokenizer-pool-size {NOTHING} and its value."),
    (("--worker-use-ray",), f"vLLM's --worker-use-ray {NOTHING}."),
    (("--device", "cuda"), f"vLLM's --device {NOTHING} and its value."),
    (("--device", "cpu"), "vLLM's --device changes the device (the CPU in place of the CUDA GPU kvplan plans)"),
    (("--multi-step-stream-outputs", "false"), f"{NOTHING} and its value, if it has one."),  # StoreBoolean 0.6.3-0.7.3
    (("--no-multi-step-stream-outputs",), f"{NOTHING}"),  # SchedulerConfig's bool from 0.8.5: a negative vLLM has
    (("--max-context-len-to-capture", "8192"), "stops vLLM at startup (\"`max_context_len_to_capture` is "
                                               "deprecated. Use `max_seq_len_to_capture` instead.\"); leave it out."),
])
def test_an_older_flag_is_named_with_what_kvplan_does(args, said):
    for command in COMMANDS:
        line = one_error_line(run_kvplan(*command, *args))
        assert said in line and "did you mean" not in line and "nor has vLLM" not in line


# ---- a flag's beginning ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("args, said", [
    # the only flag of vLLM's (any release frozen) or kvplan's beginning so: argparse reads it as that flag
    (("--max-logprob", "5"), f"vLLM's argparse reads --max-logprob as --max-logprobs, which {NOTHING} and its "
                             f"value."),
    (("--num-scheduler", "8"), "vLLM's argparse reads --num-scheduler as --num-scheduler-steps, which changes V0's "
                               "multi-step scheduling"),
    (("--trust-remote",), f"vLLM's argparse reads --trust-remote as --trust-remote-code, which {NOTHING}."),
    (("--spec-tok", "3"), "vLLM's argparse reads --spec-tok as --spec-tokens: vLLM's --spec-tokens is the "
                          "speculative config's num_speculative_tokens"),
    (("--max_logprob", "5"), "vLLM's argparse reads --max_logprob as --max-logprobs"),  # underscores as vLLM reads
])
def test_a_unique_beginning_of_a_vllm_flag_names_it_and_what_kvplan_does(args, said):
    for command in COMMANDS:
        line = one_error_line(run_kvplan(*command, *args))
        assert f"has no option {args[0]}: {said}" in line and "did you mean" not in line


def test_a_beginning_of_several_vllm_flags_lists_them():
    line = one_error_line(run_kvplan("estimate", QWEN3_8B, "--tokenizer-pool", "4"))
    assert line.endswith("write the whole flag, --tokenizer-pool-extra-config or --tokenizer-pool-size or "
                         "--tokenizer-pool-type (kvplan does not read a flag's beginning as vLLM's argparse does).")


def test_a_beginning_of_kvplans_flags_still_names_them():
    line = one_error_line(run_kvplan("estimate", QWEN3_8B, "--max-model", "8192"))
    assert line.endswith("write the whole flag, --max-model-len (kvplan does not read a flag's beginning as vLLM's "
                         "argparse does).")


# ---- a deployments file's pointers -------------------------------------------------------------------------------

@pytest.mark.parametrize("key, value, said", [
    ("spec_model", "x", "vLLM's --spec-model is the speculative config's model; write speculative_config: "
                        "{model: ...}."),
    ("spec_tokens", "3", "write speculative_config: {num_speculative_tokens: ...}."),
    ("spec-method", "ngram", "write speculative_config: {method: ...}."),
    ("config", "x.yaml", "give them in this entry as keys."),
    # a pointer to a flag kvplan reads names the file's key (cudagraph_capture_sizes, runner / convert)
    ("cuda_graph_sizes", "[1, 2]", "(the graph memory; cudagraph_capture_sizes from vLLM 0.11.1)"),
    ("task", "embed", "the model's task (runner / convert from vLLM 0.10.2)"),
])
def test_a_deployment_key_is_pointed_at_the_files_keys(tmp_path, key, value, said):
    path = deployments_file(tmp_path, f"  - name: chat\n    model: {QWEN3_8B}\n    tp: 1\n    {key}: {value}\n")
    line = one_error_line(run_kvplan("check", "--file", path))
    assert f"has key '{key}': " in line and said in line and "--speculative-config" not in line


def test_the_command_line_keeps_its_flags():
    line = one_error_line(run_kvplan("estimate", QWEN3_8B, "--spec-model", "x"))
    assert "write --speculative-config '{\"model\": ...}'." in line


# ---- --enable-chunked-prefill=<not a boolean>, by release -------------------------------------------------------

@pytest.mark.parametrize("engine, instead", [
    # StoreBoolean (engine/arg_utils.py 0.6.6:710-716) raises on 'yes' ("Expected 'true' or 'false'", utils.py
    # 0.6.6:1100-1109); the release has no --no- form (0.8.5 is its first: engines/vllm_bool_flags.py)
    ("vllm==0.6.6", "write --enable-chunked-prefill alone, --enable-chunked-prefill=true or "
                    "--enable-chunked-prefill=false, as vllm==0.6.6 takes them."),
    ("vllm==0.8.4", "write --enable-chunked-prefill alone, --enable-chunked-prefill=true or "
                    "--enable-chunked-prefill=false, as vllm==0.8.4 takes them."),
    # a BooleanOptionalAction from 0.8.5: no value at all
    ("vllm==0.10.1", "write --enable-chunked-prefill or --no-enable-chunked-prefill, as vllm==0.10.1 takes them."),
    # store_true 0.4.1-0.5.2: on, or left out
    ("vllm==0.5.0", "write --enable-chunked-prefill alone, or leave it out for off, as vllm==0.5.0 takes them."),
])
def test_a_bad_value_is_told_the_spelling_its_release_takes(engine, instead):
    for value_form in (("--enable-chunked-prefill=yes",), ("--enable_chunked_prefill=yes",)):
        line = one_error_line(run_kvplan("estimate", QWEN3_8B, *value_form, "--engine", engine))
        assert "got 'yes'" in line and line.endswith(instead)
        if engine in ("vllm==0.6.6", "vllm==0.8.4", "vllm==0.5.0"):
            assert "--no-enable-chunked-prefill" not in line


def test_a_bad_value_under_the_default_release():
    from kvplan.engines.vllm_engine import _release

    line = one_error_line(run_kvplan("estimate", QWEN3_8B, "--engine=vllm", "--enable-chunked-prefill=yes"))
    assert line.endswith(f"write --enable-chunked-prefill or --no-enable-chunked-prefill, as vllm=={_release(None)} "
                         f"takes them.")
