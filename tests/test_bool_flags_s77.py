"""vLLM's boolean flags and their negative spellings, and flag abbreviations, against `vllm serve`'s own parser
(session 77; engines/vllm_bool_flags.py, cli/flags.py last_switches / whole_flags). What vLLM does, from its sources:

- argparse.BooleanOptionalAction gives --x a --no-x; vLLM declares its boolean flags so, explicitly or through
  get_kwargs' bool branch (engine/arg_utils.py 0.8.5:150-152, 0.9.0:199-201, 0.34.0:383-385), and the last spelling
  typed sets the field. Before that, store_true: no --no- form ("unrecognized arguments").
- from 0.33, EnableDisableAction stands in for every BooleanOptionalAction (utils/argparse_utils.py 0.33.0:179) and
  pairs --enable-x with --disable-x both ways (0.33.0:120-150, _inverse_prefixes :127); 0.32.0 has no such class.
- --enforce-eager: store_true in 0.8.5 (arg_utils.py 0.8.5:639), ModelConfig's bool from 0.9.0 (:477).
  --enable-lora: store_true in 0.8.4 (:694), BooleanOptionalAction in 0.8.5 (:696-698); absent from 0.2.7, 0.3.0:226.
  --enable-expert-parallel: absent from 0.7.3, store_true 0.8.0-0.8.4 (0.8.4:451), a bool field from 0.8.5 (:537).
  --disable-sliding-window: store_true in 0.8.5 (:573), a bool field from 0.9.0 (:483).
  --skip-mm-profiling: a bool field from its first release, 0.10.1 (:733).
- allow_abbrev: no release sets it (FlexibleArgumentParser, utils/argparse_utils.py 0.31.0-0.34.0; utils.py before),
  so argparse's default, True: `vllm serve --max-model 8192` is --max-model-len 8192 where the beginning is unique.
  kvplan reads no beginnings (cli/flags.py says why) and names the whole flag.
"""

from __future__ import annotations

import json

import pytest

from conftest import deployments_file, one_error_line, run_kvplan
from kvplan.cli import flags
from kvplan.engines.vllm_bool_flags import negatives

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
GATE = ("check", LLAMA, "-tp", "1", "-c", "8192")


def _estimate(*args) -> dict:
    run = run_kvplan("estimate", LLAMA, "-c", "8192", "--gpu", "H100", *args, "-f", "json")
    assert run.returncode == 0, run.stderr
    (plan,) = json.loads(run.stdout)["plans"]
    return plan


# ---- the spelling rule -------------------------------------------------------------------------------------------

def test_the_negatives_vllm_derives():
    # BooleanOptionalAction: "--no-" + the name after "--"; EnableDisableAction 0.33.0:127-140: the prefix swapped
    assert negatives("--enforce-eager", (0, 9)) == {"--no-enforce-eager": (0, 9)}
    assert negatives("--enable-lora", (0, 8, 5)) == {"--no-enable-lora": (0, 8, 5), "--disable-lora": (0, 33)}
    assert negatives("--disable-sliding-window", (0, 9)) == {"--no-disable-sliding-window": (0, 9),
                                                            "--enable-sliding-window": (0, 33)}


@pytest.mark.parametrize("field", sorted(flags.NEGATIVES))
def test_every_boolean_flag_keeps_the_last_spelling(field):
    """For each boolean flag a command has: whatever its spellings, the last typed is the value (argparse sets the
    field at each occurrence); off is the flag left out, or the declared off option where off is a value."""
    switches = flags.switch_spellings({flags.FLAGS[field]})
    on = flags.FLAGS[field]
    off = flags.SWITCH_OFF.get(field)
    for negative in flags.NEGATIVES[field]:
        assert flags.last_switches([LLAMA, on, negative], switches) == [LLAMA] + ([off] if off else [])
        assert flags.last_switches([LLAMA, negative, on], switches) == [LLAMA, on]
        assert flags.last_switches([on, negative, "-tp", "2", on, negative], switches) == ["-tp", "2"] + \
            ([off] if off else [])


def test_ep_is_the_flag_too():
    switches = flags.switch_spellings({"--enable-expert-parallel"})
    assert flags.last_switches(["--no-enable-expert-parallel", "-ep"], switches) == ["--enable-expert-parallel"]
    assert flags.last_switches(["-ep", "--disable-expert-parallel"], switches) == []


# ---- through the command line ------------------------------------------------------------------------------------

def test_no_enforce_eager_is_the_default():
    # 0.34.0 reserves CUDA-graph memory unless --enforce-eager (the budget's graph term), so on and off differ
    default, eager = _estimate("--engine", "vllm==0.34.0"), _estimate("--engine", "vllm==0.34.0", "--enforce-eager")
    assert default["engine"]["num_gpu_blocks"] != eager["engine"]["num_gpu_blocks"]
    assert _estimate("--engine", "vllm==0.34.0", "--no-enforce-eager")["engine"] == default["engine"]
    assert _estimate("--engine", "vllm==0.34.0", "--enforce-eager", "--no-enforce-eager")["engine"] == \
        default["engine"]
    assert _estimate("--engine", "vllm==0.34.0", "--no-enforce-eager", "--enforce-eager")["engine"] == \
        eager["engine"]


@pytest.mark.parametrize("args", [
    ("--no-enforce-eager",),  # 0.32.0 (the default release): a bool field since 0.9.0
    ("--no-enable-lora", "--no-fully-sharded-loras", "--no-enable-expert-parallel", "--no-enable-eplb"),
    ("--no-skip-mm-profiling", "--no-language-model-only", "--no-disable-sliding-window"),
    ("--disable-lora", "--disable-expert-parallel", "--disable-eplb", "--enable-sliding-window", "--engine",
     "vllm==0.33.0"),  # EnableDisableAction
    ("--no-enforce-eager", "--engine", "vllm==0.9.0"),
    ("--no-enforce-eager", "--engine", "none"),  # no release named, no release's parser
])
def test_the_gate_passes_what_vllm_parses(args):
    run = run_kvplan(*GATE, *args, "-f", "json")
    assert run.returncode == 0, run.stderr


def _leave(spelling: str, needs: str, version: str, had: str) -> str:
    """The refusal where the release has no negative of the flag: `had` says what it has."""
    return f"{spelling} needs vLLM {needs} or later (vllm=={version} {had} and stops on that spelling); leave it out."


def _write(spelling: str, needs: str, version: str, other: str) -> str:
    """The refusal where the release has another negative, `other`."""
    return (f"{spelling} needs vLLM {needs} or later (vllm=={version} stops on that spelling: \"unrecognized "
            f"arguments\"); write {other}, as that release does.")


ALONE = "takes {} alone, a switch off unless given,"


@pytest.mark.parametrize("args, sentence", [
    # 0.8.5:639 store_true; the order changes nothing: argparse stops on a spelling it lacks wherever it is
    (("--no-enforce-eager", "--engine", "vllm==0.8.5"),
     _leave("--no-enforce-eager", "0.9", "0.8.5", ALONE.format("--enforce-eager"))),
    (("--no-enforce-eager", "--enforce-eager", "--engine", "vllm==0.8.5"),
     _leave("--no-enforce-eager", "0.9", "0.8.5", ALONE.format("--enforce-eager"))),
    # 0.32.0 has BooleanOptionalAction's --no- form, not EnableDisableAction's --disable-/--enable- (0.33+)
    (("--disable-lora",), _write("--disable-lora", "0.33", "0.32.0", "--no-enable-lora")),
    (("--enable-sliding-window",), _write("--enable-sliding-window", "0.33", "0.32.0", "--no-disable-sliding-window")),
    # the error names the spelling at fault, not the flag's last spelling typed
    (("--disable-prefix-caching", "--enable-prefix-caching"),
     _write("--disable-prefix-caching", "0.33", "0.32.0", "--no-enable-prefix-caching")),
    # --enable-lora: 0.8.4:694 store_true; absent from 0.2.7
    (("--no-enable-lora", "--engine", "vllm==0.8.4"),
     _leave("--no-enable-lora", "0.8.5", "0.8.4", ALONE.format("--enable-lora"))),
    (("--no-enable-lora", "--engine", "vllm==0.2.7"),
     _leave("--no-enable-lora", "0.8.5", "0.2.7", "has no --enable-lora")),
    # --enable-expert-parallel: absent from 0.7.3
    (("--disable-expert-parallel", "--engine", "vllm==0.7.3"),
     _leave("--disable-expert-parallel", "0.33", "0.7.3", "has no --enable-expert-parallel")),
    # --skip-mm-profiling: born a bool field in 0.10.1
    (("--no-skip-mm-profiling", "--engine", "vllm==0.10.0"),
     _leave("--no-skip-mm-profiling", "0.10.1", "0.10.0", "has no --skip-mm-profiling")),
    # --disable-sliding-window: 0.8.5:573 store_true
    (("--no-disable-sliding-window", "--engine", "vllm==0.8.5"),
     _leave("--no-disable-sliding-window", "0.9", "0.8.5", ALONE.format("--disable-sliding-window"))),
])
def test_a_spelling_the_release_lacks_stops_the_gate(args, sentence):
    assert one_error_line(run_kvplan(*GATE, *args)) == f"kvplan: error: {sentence}"


def test_every_command_reads_them():
    assert _estimate("--no-enable-lora", "--enable-lora", "--disable-lora", "--engine", "vllm==0.33.0")
    line = one_error_line(run_kvplan("verify", LLAMA, "--no-enforce-eager", "--engine", "vllm==0.8.5"))
    assert line.startswith("kvplan: error: --no-enforce-eager needs vLLM 0.9 or later")
    # verify has no --enable-lora, so none of its spellings either
    assert "has no option --no-enable-lora" in one_error_line(run_kvplan("verify", LLAMA, "--no-enable-lora"))


def test_help_keeps_one_line_a_flag():
    helped = " ".join(run_kvplan("check", "--help").stdout.split())
    assert "--enforce-eager" in helped and "--no-enforce-eager" not in helped


def test_a_file_gate_takes_no_model_flags_off_either(tmp_path):
    path = deployments_file(tmp_path, f"  - name: chat\n    model: {LLAMA}\n    tp: 1\n    context: 8192\n")
    line = one_error_line(run_kvplan("check", "--file", path, "--no-enforce-eager"))
    assert line.startswith("kvplan: error: --no-enforce-eager applies to MODEL only; with --file give it on each "
                           "deployment")


# ---- the serve flags that change no plan -------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["--no-trust-remote-code", "--no-enable-auto-tool-choice",
                                  "--disable-auto-tool-choice", "--no-disable-uvicorn-access-log",
                                  "--no-enable-log-requests"])
def test_negative_server_flags_are_named_as_changing_nothing(name):
    # --trust-remote-code: ModelConfig's bool (arg_utils.py 0.9.0:457); FrontendArgs' bools (entrypoints/openai/
    # cli_args.py 0.10.2:82, :138); --enable-log-requests BooleanOptionalAction (arg_utils.py 0.10.1:1748)
    assert one_error_line(run_kvplan(*GATE, name)) == (
        f"kvplan: error: kvplan check has no option {name}: vLLM's {name} changes nothing kvplan plans (memory, "
        f"capacity, speed); drop it.")


def test_store_true_server_flags_have_no_negative():
    # --disable-log-stats is store_true in every release read (arg_utils.py 0.34.0:1950-1953)
    assert "changes nothing" not in one_error_line(run_kvplan(*GATE, "--no-disable-log-stats"))


# ---- abbreviations -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("command, typed, whole", [
    (GATE[:4], ("--max-model", "8192"), "--max-model-len"),
    (GATE[:4], ("--max-model=8192",), "--max-model-len"),
    (GATE, ("--max-num", "8"), "--max-num-batched-tokens or --max-num-seqs"),  # ambiguous: vLLM refuses it too
    (GATE, ("--no-enforce",), "--no-enforce-eager"),  # argparse matches the --no- forms' beginnings too
    (GATE, ("--device-memory", "0.9"), "--device-memory-utilization"),
    (("estimate", LLAMA), ("-t", "2"), "-tp"),  # argparse's single-dash options take beginnings as well
])
def test_a_flags_beginning_is_refused_naming_the_whole_flag(command, typed, whole):
    name = typed[0].split("=")[0]
    assert one_error_line(run_kvplan(*command, *typed)) == (
        f"kvplan: error: kvplan {command[0]} has no option {name}: write the whole flag, {whole} (kvplan does not read "
        f"a flag's beginning as vLLM's argparse does).")
