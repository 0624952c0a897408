"""A `vllm serve` line pasted whole: every flag of vLLM 0.32.0 and 0.34.0's `vllm serve` that kvplan does not read is
classified in kvplan/cli/vllm_serve_flags.py (or flags.VLLM_SERVER_FLAGS, the hand list it extends): it changes
nothing kvplan plans ("drop it"), or it changes something kvplan does not model (exit 2, one sentence saying what),
never click's nearest kvplan flag (before: `--load-format dummy` -> "did you mean --format?", `--tokenizer-mode auto`
-> "did you mean --mm-encoder-tp-mode?", `--kv-transfer-config {}` -> "did you mean --pooler-config?").

The releases' flags come from tests/data/vllm_serve_flags.json, read from each wheel's source by
benchmarks/vllm_reference/serve_flags.py (vLLM's own declarations: engine/arg_utils.py add_argument calls, the
frontend's FrontendArgs fields), so no vLLM is needed here."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from conftest import deployments_file, one_error_line, run_kvplan
from kvplan.cli import vllm_serve_flags as serve
from kvplan.cli.flags import SERVER_SWITCHES, VLLM_SERVER_FLAGS

QWEN3_8B = "Qwen/Qwen3-8B"
COMMANDS = (("estimate", QWEN3_8B), ("check", QWEN3_8B, "-tp", "1"))
DATA = json.loads((Path(__file__).parent / "data" / "vllm_serve_flags.json").read_text())
RELEASES = {release["version"]: release["flags"] for release in DATA["releases"]}
NOTHING = "changes nothing kvplan plans (memory, capacity, speed); drop it"


def read_by_kvplan() -> set:
    from kvplan.cli.app import click_command, read_names

    command = click_command()
    return read_names(command.commands["estimate"]) | read_names(command.commands["check"])


def test_the_frozen_list_is_vllm_0_32_and_0_34s():
    assert {"0.32.0", "0.34.0"} <= set(RELEASES) and DATA["made_by"] == "benchmarks/vllm_reference/serve_flags.py"
    # a few declarations read by hand: --hf-overrides ModelConfig's dict (arg_utils.py 0.34.0:1039), -dpl
    # --data-parallel-size-local type=int (:1271-1276), --disable-log-stats store_true (:1950-1953),
    # --async-scheduling SchedulerConfig's bool | None, so a BooleanOptionalAction
    flags = RELEASES["0.34.0"]
    assert flags["--hf-overrides"]["value"] is True
    assert flags["--data-parallel-size-local"]["names"] == ["--data-parallel-size-local", "-dpl"]
    assert flags["--disable-log-stats"] == {"names": ["--disable-log-stats"], "value": False, "negative": None}
    assert flags["--async-scheduling"]["negative"] == "--no-async-scheduling"


@pytest.mark.parametrize("release", ["0.32.0", "0.34.0", "0.10.1"])
def test_every_flag_of_the_release_is_read_or_classified(release):
    read, classified = read_by_kvplan(), serve.flag_names() | set(VLLM_SERVER_FLAGS)
    missing = [flag for flag, entry in RELEASES[release].items()
               if not set(entry["names"]) & read and not set(entry["names"]) <= classified]
    assert missing == []


def test_every_classified_flag_is_a_flag_of_a_frozen_release():
    names = {name: entry for flags in RELEASES.values() for entry in flags.values() for name in entry["names"]}
    assert serve.flag_names() - set(names) == set()
    assert not (set(serve.NO_EFFECT) | set(serve.UNMODELLED)) & read_by_kvplan()  # none kvplan reads
    assert not set(serve.NO_EFFECT) & set(serve.UNMODELLED) and not set(VLLM_SERVER_FLAGS) & serve.flag_names()
    declared = {}  # name -> every release's entry of it
    for flags in RELEASES.values():
        for entry in flags.values():
            for name in entry["names"]:
                declared.setdefault(name, []).append(entry)
    for flag in (*serve.NO_EFFECT, *serve.UNMODELLED):  # as argparse declares it, in every release that has it
        values = {json.dumps(entry["value"]) for entry in declared[flag]}
        # a StoreBoolean's true / false (before 0.8.5) that became a switch: either, as "optional" says
        assert serve._value(flag) == (names[flag]["value"] if len(values) == 1 else "optional"), flag
        assert values <= {"false", '"optional"'} or len(values) == 1, flag
        assert (flag in serve.NEGATABLE) == any(entry["negative"] for entry in declared[flag]), flag  # in some release
    for flag, takes_value in VLLM_SERVER_FLAGS.items():  # the hand list agrees too (--disable-log-requests: 0.10.1)
        assert names[flag]["value"] is takes_value
        assert (flag in SERVER_SWITCHES) == any(flags.get(flag, {}).get("negative") for flags in RELEASES.values())


# ---- what each class says, estimate and check alike -----------------------------------------------------------

@pytest.mark.parametrize("args, name", [
    (("--load-format", "dummy"), "--load-format"),  # random weights of the same shapes (config/load.py 0.34.0:45)
    (("--tokenizer-mode", "auto"), "--tokenizer-mode"),
    (("--generation-config", "vllm"), "--generation-config"),
    (("--max-logprobs", "50"), "--max-logprobs"),
    (("--structured-outputs-config", "{}"), "--structured-outputs-config"),
    (("--swap-space", "4"), "--swap-space"),  # host memory for V0's swapping (0.10.1)
    (("--data-parallel-size-local", "2"), "--data-parallel-size-local"),
    (("--max_logprobs", "5"), "--max-logprobs"),  # underscores, as vLLM reads them
])
def test_a_flag_changing_nothing_is_dropped_with_its_value(args, name):
    for command in COMMANDS:
        line = one_error_line(run_kvplan(*command, *args))
        assert line == (f"kvplan: error: kvplan {command[0]} has no option {args[0]}: vLLM's {name} {NOTHING} and "
                        f"its value.")


@pytest.mark.parametrize("args, what", [
    (("--hf-overrides", '{"num_hidden_layers": 2}'), "changes the model's config"),
    (("--kv-transfer-config", "{}"), "changes the KV cache (a connector"),
    (("--kv-transfer-config.kv_connector", "NixlConnector"), "changes the KV cache (a connector"),  # a dotted key
    (("--kv-offloading-size", "64"), "changes the KV cache (an offload tier"),
    (("--enable-dbo",), "changes the step (two overlapped microbatches"),
    (("--all2all-backend", "deepep_low_latency"), "changes the MoE all-to-all kernels"),
    (("--async-scheduling",), "changes the batches in flight"),
    (("--no-async-scheduling",), "changes the batches in flight"),  # the negative, as vLLM parses it
    (("--max-seq-len-to-capture", "8192"), "changes the longest sequence decode CUDA graphs cover"),  # 0.10.1
    (("--watermark", "0.05"), "changes the resident concurrency"),
    (("--load-format", "ipc_cache"), "changes the weights (mapped from"),  # the one load format that does
])
def test_a_flag_kvplan_does_not_model_is_named_with_what_it_changes(args, what):
    name = args[0]
    for command in COMMANDS:
        line = one_error_line(run_kvplan(*command, *args))
        assert line.startswith(f"kvplan: error: kvplan {command[0]} has no option {name}: vLLM's {name} {what}")
        assert line.endswith(" and kvplan does not model it.") and "did you mean" not in line


@pytest.mark.parametrize("args, said", [
    (("-dpl", "2"), f"vLLM's -dpl (--data-parallel-size-local) {NOTHING} and its value."),  # click names "-d"
    (("-ac", "{}"), "vLLM's -ac (--attention-config) changes the attention kernels"),
    (("-sc", "{}"), "vLLM's -sc is --speculative-config; write that."),
    (("--model", "x"), "vLLM's --model is MODEL here; give the model as the command's argument."),
    (("--spec-tokens", "3"), "write --speculative-config '{\"num_speculative_tokens\": ...}'."),
    (("--hf-token",), f"vLLM's --hf-token {NOTHING} and its value, if it has one."),  # bool | str | None
    (("--no-headless",), "nor has vLLM: its --headless is a plain switch with no negative"),  # store_true
    (("--no-tokenizer",), "nor has vLLM: its --tokenizer takes a value and has no negative; drop it."),
    (("--disable-dbo",), "vLLM's --disable-dbo changes the step"),  # 0.33+'s inverse of --enable-dbo
])
def test_short_names_other_spellings_and_negatives(args, said):
    for command in COMMANDS:
        line = one_error_line(run_kvplan(*command, *args))
        assert said in line and "did you mean" not in line


def test_verify_names_them_too():
    line = one_error_line(run_kvplan("verify", QWEN3_8B, "--hf-overrides", "{}"))
    assert "vLLM's --hf-overrides changes the model's config" in line


def test_a_kvplan_typo_still_gets_the_nearest_flag():
    line = one_error_line(run_kvplan("estimate", QWEN3_8B, "--max-model-lenn", "8192"))
    assert "did you mean --max-model-len" in line


# ---- a deployments file's keys ---------------------------------------------------------------------------------

@pytest.mark.parametrize("key, value, said", [
    ("hf_overrides", "{num_hidden_layers: 2}", "vLLM's --hf-overrides changes the model's config"),
    ("kv-transfer-config", "{}", "vLLM's --kv-transfer-config changes the KV cache"),
    ("tokenizer_mode", "auto", f"vLLM's --tokenizer-mode {NOTHING}."),
    ("seed", "1", f"vLLM's --seed {NOTHING}."),  # the hand list's
    ("spec_model", "x", "vLLM's --spec-model is the speculative config's model"),
])
def test_a_deployment_key_that_is_a_vllm_flag(tmp_path, key, value, said):
    path = deployments_file(tmp_path, f"  - name: chat\n    model: {QWEN3_8B}\n    tp: 1\n    {key}: {value}\n")
    line = one_error_line(run_kvplan("check", "--file", path))
    assert f"deployment 'chat' (entry 1) has key '{key}': {said}" in line and "valid keys" not in line


def test_a_deployment_key_close_to_a_field_still_gets_it(tmp_path):
    path = deployments_file(tmp_path, f"  - name: chat\n    model: {QWEN3_8B}\n    tp: 1\n    max_num_seq: 3\n")
    assert "(did you mean 'max_num_seqs'?)" in one_error_line(run_kvplan("check", "--file", path))


# ---- startup ----------------------------------------------------------------------------------------------------

def test_estimate_does_not_import_the_classification():
    sys.modules.pop("kvplan.cli.vllm_serve_flags", None)
    assert run_kvplan("estimate", QWEN3_8B, "-c", "8192").returncode == 0
    assert "kvplan.cli.vllm_serve_flags" not in sys.modules
    run_kvplan("estimate", QWEN3_8B, "--seed", "0")  # the hand list answers without it too
    assert "kvplan.cli.vllm_serve_flags" not in sys.modules
    run_kvplan("estimate", QWEN3_8B, "--enable-dbo")
    assert "kvplan.cli.vllm_serve_flags" in sys.modules
