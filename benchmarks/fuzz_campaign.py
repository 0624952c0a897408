"""Offline fuzz campaign against kvplan's whole surface (not run in CI; tests/test_fuzz*.py is the CI slice).

    python benchmarks/fuzz_campaign.py                      # 10,000 configs, 1,000 flag sets, 200 deployment files
    python benchmarks/fuzz_campaign.py --hub                # and the Hub error paths, timed, on a loopback server
    python benchmarks/fuzz_campaign.py --configs 300 --flags 100 --deployments 40   # a quick look

Inputs
- configs: mutations of every bundled real config (model_specs/*.yaml) and the Hub-shaped configs of
  tests/hub_configs.py: huge / float / NaN / Infinity / negative / wrong-type values, fields removed, deep
  nesting, 4,301-digit integers, broken JSON text; model folders with malformed safetensors headers (2**40-byte
  claims, truncated, not JSON, bad shapes and dtypes), a FIFO named *.safetensors or config.json, index files
  with bad total_size. Each goes through `kvplan estimate FOLDER --format json` (some with a sweep, some through
  `kvplan check`).
- flags: random combinations of estimate/check/models/gpus options with hostile values (400-digit numbers,
  1e400, Unicode digits, NaN, path tricks, unknown ids, bad revisions, huge sweeps).
- deployment files: generated YAML with duplicate and merge keys, anchors and billion-laughs aliases, YAML 1.1
  octal/sexagesimal/hex integers, Python tags, deep nesting, workflow-command text in names; run with
  `check --file` in every format, some under GITHUB_ACTIONS=true.

Added in s62 (each off unless asked):
- --fields N: every value of every bundled config (nested text_config, rope_scaling, quantization_config, lists
  and mappings themselves) set in turn to N values, hostile (null, bools, 0, -1, floats, 1e308, NaN, Infinity,
  strings, lists, mappings, 4,301 digits, removed) or plausible for its type (halved, doubled, +1, 1, 3, 7...),
  through estimate with one of FIELD_FLAGS (sweeps, old releases, small --max-num-batched-tokens, PP, auto).
- --parity N: N deployments with random valid keys, through `check --file` and through estimate's flags: the
  numbers and the engine's figures must agree (parity_differences says what differs by design).
- --contract: every bundled model x 7 engines x tp 1/2/8 (and pp 2 at tp 1) x kv auto/fp8 through estimate --format
  json: design.md's plan/engine/decode/prefill keys present, README's `stages` (pp > 1 only: s77), no NaN/Infinity,
  and runs over 0.5 s listed.

Every run is in-process (kvplan.cli.main), stdout/stderr captured, under a 5 s alarm and a 6 GiB address-space
limit. Counted: tracebacks (an exception escaping main, or exit 3: kvplan's own crash code), exit codes
outside the command's contract, bad-input errors that are not exactly one stderr line, nonsense outputs
(invalid JSON, a non-finite number, a float in a field that counts bytes/tokens/blocks/layers, a negative
number outside the budget fields, a fitting plan with no sequence), workflow-command lines in stdout, and
runs over 5 s. All must be 0.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import random
import resource
import signal
import struct
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

HANG_SECONDS = 5.0
HUB_PATIENCE = 180  # seconds one Hub case may take before the campaign gives up on it


class Hang(BaseException):
    """Raised by the alarm: a run took longer than HANG_SECONDS."""


def _alarm(signum, frame):
    raise Hang()


# ---- running one command -------------------------------------------------------------------------------------

class Tally:
    def __init__(self):
        self.counts = Counter()
        self.examples: dict = {}
        self.slowest = 0.0
        self.slowest_cpu = 0.0

    def bad(self, kind: str, what: str) -> None:
        self.counts[kind] += 1
        self.examples.setdefault(kind, [])
        if len(self.examples[kind]) < 5:
            self.examples[kind].append(what[:400])


# profiled_bytes: the profile run's "Available KV cache memory" (vLLM 0.34's measured sizing), negative as vLLM logs it
# when the weights alone do not fit, like engine.available_kv_cache_bytes
ALLOWED_NEGATIVE = ("budget", "available", "margin", "headroom", "profiled")


COUNT_KEYS = ("context", "tp", "pp", "block_size", "batch", "num_hidden_layers", "num_attention_heads",
              "num_key_value_heads", "head_dim", "hidden_size", "parameters", "kv_blocks", "num_gpu_blocks")


def counts_something(key: str) -> bool:
    """Bytes, tokens, blocks, layers, heads: integers. (The campaign's own reading of the JSON contract in
    /work/shared/design.md, kept apart from kvplan's output guard.)"""
    if key.endswith(("_per_s", "_ms", "_s")):
        return False
    return key in COUNT_KEYS or key.endswith(("_bytes", "_tokens", "_blocks")) or "bytes_per_" in key


def nonsense(data) -> str:
    """Why this JSON output is nonsense, or ''."""
    stack = [("", None, data)]
    while stack:
        where, key, value = stack.pop()
        if isinstance(value, dict):
            stack.extend((f"{where}.{k}", str(k), v) for k, v in value.items())
            if value.get("fits") is True and isinstance(value.get("max_concurrency"), (int, float)) \
                    and value["max_concurrency"] < 1:
                return f"{where}: fits with max_concurrency {value['max_concurrency']}"
            continue
        if isinstance(value, list):
            stack.extend((f"{where}[{i}]", key, v) for i, v in enumerate(value))
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if isinstance(value, float) and not math.isfinite(value):
            return f"{where} = {value}"
        if key and counts_something(key) and isinstance(value, float):
            return f"{where} = {value!r} (a float byte/token count)"
        if value < 0 and key and not any(word in key for word in ALLOWED_NEGATIVE):
            return f"{where} = {value} (negative)"
    return ""


def workflow_commands(text: str) -> str:
    for line in text.splitlines():
        if line.lstrip().startswith("::") or "##[" in line:
            return line[:200]
    return ""


def run(tally: Tally, label: str, args: list, codes=(0, 2), env: dict | None = None, cwd=None,
        parse_json: bool = False, errors: list | None = None) -> int | None:
    """One command in this process. A run past HANG_SECONDS of wall time is run again once (other work on a
    shared machine can stall a 20 ms run for seconds): a hang is a run that is slow both times. `errors`: a list
    each exit 2's (args, stderr) is appended to (benchmarks/fuzz_surfaces.py reads whether it names the flag)."""
    from kvplan.cli import main

    for attempt in (1, 2):
        out, err = io.StringIO(), io.StringIO()
        saved_env, here = dict(os.environ), os.getcwd()
        os.environ.update({"HF_HUB_OFFLINE": "1", "COLUMNS": "100", **(env or {})})
        code, hung, started, cpu = None, False, time.monotonic(), time.process_time()
        signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS)
        try:
            if cwd:
                os.chdir(cwd)
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main([str(a) for a in args])
        except Hang:
            hung = True
        except BaseException as exc:  # an exception escaping main: what a user sees as a traceback
            tally.bad("traceback", f"{label}: {type(exc).__name__}: {str(exc)[:200]} :: {args[:6]}")
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            os.chdir(here)
            os.environ.clear()
            os.environ.update(saved_env)
        elapsed, cpu = time.monotonic() - started, time.process_time() - cpu
        if not hung:
            break
        tally.counts["reruns after 5 s of wall time"] += 1
    tally.slowest = max(tally.slowest, elapsed)
    tally.slowest_cpu = max(tally.slowest_cpu, cpu)
    tally.counts["runs"] += 1
    if hung:
        tally.bad("hang > 5 s", f"{label}: twice :: {args[:6]}")
        return None
    if elapsed > 1.0:
        tally.bad("runs over 1 s (not failures)", f"{label}: {elapsed:.2f} s wall, {cpu:.2f} s CPU :: "
                                                  f"{[str(a)[:40] for a in args]}")
    if code is None:
        return None
    stdout, stderr = out.getvalue(), err.getvalue()
    tally.counts[f"exit {code}"] += 1
    if code == 3 or "Traceback" in stderr:
        tally.bad("traceback", f"{label}: {stderr.strip()[:300]} :: {args[:6]}")
    elif code not in codes:
        tally.bad("exit code outside the contract", f"{label}: exit {code} :: {args[:6]} :: {stderr[:200]}")
    if code == 2 and os.environ.get("FUZZ_SHOW_ERRORS") and random.random() < 0.02:
        print("   e.g.", label, stderr.strip()[:220])
    if code == 2 and errors is not None:
        errors.append(([str(a) for a in args], stderr.strip()))
    lines = stderr.strip().splitlines()
    annotated = env and env.get("GITHUB_ACTIONS") == "true" and len(lines) == 2 and lines[1].startswith("::error file=")
    if code == 2 and len(lines) != 1 and not annotated:  # under GitHub Actions: the line, then its file's annotation
        tally.bad("bad-input error not one line", f"{label}: {stderr[:300]!r}")
    if code == 2 and stdout:
        tally.bad("output on stdout with exit 2", f"{label}: {stdout[:100]!r}")
    lines = [line for line in stderr.splitlines() if not line.startswith(("::error file=", "::warning file=",
                                                                          "::notice file=", "::error::",
                                                                          "::warning::", "::notice::"))]
    command = workflow_commands(stdout) or workflow_commands("\n".join(lines))
    if command:
        tally.bad("workflow command in output", f"{label}: {command!r}")
    if parse_json and code in (0, 1) and stdout:
        try:
            data = json.loads(stdout, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
        except ValueError as exc:
            tally.bad("nonsense output", f"{label}: invalid JSON ({exc})")
        else:
            why = nonsense(data)
            if why:
                tally.bad("nonsense output", f"{label}: {why}")
    return code


# ---- configs -------------------------------------------------------------------------------------------------

def base_configs() -> list:
    import yaml

    import hub_configs

    configs = []
    for path in sorted((ROOT / "model_specs").glob("*.yaml")):
        configs.append(yaml.safe_load(path.read_text())["config"])
    configs += [v for k, v in vars(hub_configs).items() if k.isupper() and isinstance(v, dict)]
    return configs


RULE_KEYS = """num_hidden_layers n_layer num_attention_heads n_head num_key_value_heads num_kv_heads hidden_size n_embd
head_dim kv_channels intermediate_size moe_intermediate_size vocab_size max_position_embeddings sliding_window
use_sliding_window sliding_window_pattern max_window_layers layer_types kv_lora_rank q_lora_rank qk_rope_head_dim
qk_nope_head_dim v_head_dim n_routed_experts num_local_experts num_experts num_experts_per_tok n_shared_experts
first_k_dense_replace full_attention_interval linear_num_key_heads linear_num_value_heads linear_key_head_dim
linear_value_head_dim linear_conv_kernel_dim attention_chunk_size no_rope_layers no_rope_layer_interval
attn_layer_period attn_layer_offset mamba_d_state mamba_num_heads hybrid_override_pattern torch_dtype model_type
tie_word_embeddings multi_query new_decoder_architecture quantization_config text_config""".split()

HUGE_INT = "1" * 4301  # one digit past Python's default int-from-text limit


def evil_value(rng: random.Random):
    choice = rng.randrange(30)
    return [
        lambda: 10 ** rng.randrange(3, 60), lambda: -(10 ** rng.randrange(1, 30)), lambda: 2**63, lambda: 2**64 + 1,
        lambda: -1, lambda: 0, lambda: 0.5, lambda: 1.5, lambda: 1e308, lambda: -1e308, lambda: 5e-324,
        lambda: float("nan"), lambda: float("inf"), lambda: float("-inf"), lambda: "", lambda: "abc",
        lambda: "32", lambda: True, lambda: False, lambda: None, lambda: [], lambda: {}, lambda: [1, 2],
        lambda: {"a": 1}, lambda: "@HUGE@", lambda: 10**44, lambda: rng.randrange(1, 9000) + 0.0,
        lambda: rng.randrange(1, 200000), lambda: ["full_attention"] * rng.randrange(0, 3000),
        lambda: "x" * rng.randrange(1, 100000),
    ][choice]()


def mild_value(rng: random.Random, old):
    """A plausible value: what a careless edit or an unusual but real model would hold."""
    if isinstance(old, bool):
        return not old
    if isinstance(old, int):
        return rng.choice([1, 2, 3, 7, 8, 64, 128, 1000, 1024, 4096, old * 2, max(1, old // 2), old + 1])
    if isinstance(old, float):
        return float(rng.randrange(1, 5000))
    return old


def mutate(config: dict, rng: random.Random) -> dict:
    cfg = json.loads(json.dumps(config))
    target = cfg["text_config"] if isinstance(cfg.get("text_config"), dict) and rng.random() < 0.7 else cfg
    mild = rng.random() < 0.4  # half the inputs stay plausible, so the numbers of accepted configs get checked
    for _ in range(rng.randrange(1, 5)):
        key = rng.choice(list(target) + RULE_KEYS) if target else rng.choice(RULE_KEYS)
        if mild and target:
            key = rng.choice(list(target))
            target[key] = mild_value(rng, target[key])
        elif rng.random() < 0.15:
            target.pop(key, None)
        else:
            target[key] = evil_value(rng)
    return cfg


def nested(depth: int) -> str:
    return '{"a": ' * depth + "1" + "}" * depth


def config_text(config: dict, rng: random.Random) -> bytes:
    text = json.dumps(config)  # NaN / Infinity literals as Python writes them
    text = text.replace('"@HUGE@"', HUGE_INT)
    roll = rng.random()
    if roll < 0.02:
        text = text[: rng.randrange(len(text))]  # truncated
    elif roll < 0.04:
        text = text[:-1] + ', "deep": ' + nested(rng.choice([40, 990, 5000, 100000])) + "}"
    elif roll < 0.05:
        return b"\xff\xfe" + text.encode("utf-16-le")
    elif roll < 0.06:
        text = "[" + text + "]"
    elif roll < 0.07:
        nines = "9" * rng.choice([20, 400, 4400])
        text = text.replace('"num_hidden_layers": ', '"num_hidden_layers": ' + nines + " + ")
    return text.encode()


def safetensors_bytes(rng: random.Random) -> bytes:
    header = {"w": {"dtype": "BF16", "shape": [4, 4], "data_offsets": [0, 32]}}
    roll = rng.randrange(12)
    if roll == 0:
        return struct.pack("<Q", 2**40) + b"{}"
    if roll == 1:
        return struct.pack("<Q", 2**64 - 1)
    if roll == 2:
        return b"\x01\x02"
    if roll == 3:
        return struct.pack("<Q", 20) + b"not json at all!!!!"
    if roll == 4:
        raw = b"[1, 2, 3]"
    elif roll == 5:
        header["w"]["shape"] = [-1, 2**70]
        raw = json.dumps(header).encode()
    elif roll == 6:
        header["w"]["shape"] = [0.5, "x"]
        raw = json.dumps(header).encode()
    elif roll == 7:
        header["w"]["dtype"] = {"x": 1}
        raw = json.dumps(header).encode()
    elif roll == 8:
        raw = nested(rng.choice([100, 5000])).encode()
    elif roll == 9:
        header = {f"t{i}": {"dtype": "F8_E4M3", "shape": [2**20, 2**20, 2**10]} for i in range(3)}
        raw = json.dumps(header).encode()
    elif roll == 10:
        raw = json.dumps({"w": "x", "__metadata__": [1] * 100}).encode()
    else:
        raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw


def config_case(index: int, base: list, rng: random.Random, work: Path, tally: Tally) -> None:
    folder = work / f"c{index}"
    folder.mkdir()
    config = mutate(rng.choice(base), rng)
    special = rng.random()
    if special < 0.005:
        os.mkfifo(folder / "config.json")
    elif special < 0.01:
        (folder / "config.json").symlink_to("/dev/zero")
    else:
        (folder / "config.json").write_bytes(config_text(config, rng))
    roll = rng.random()
    if roll < 0.15:
        (folder / "model.safetensors").write_bytes(safetensors_bytes(rng))
    elif roll < 0.17:
        os.mkfifo(folder / "model-00001-of-00002.safetensors")
    elif roll < 0.22:
        total = rng.choice(['"big"', "1e400", "-5", HUGE_INT, "null", "[1]", "16060522496"])
        (folder / "model.safetensors.index.json").write_text('{"metadata": {"total_size": ' + total + "}}")
    extra = []
    if rng.random() < 0.3:
        extra = rng.choice([["--context", "4096,32k,1000000"], ["--tp", "1,2,3,8"], ["--kv-dtype", "auto,fp8"],
                            ["--kv-budget", "1GiB"], ["--gpu", "H200"], ["--context", str(2**40)]])
    if rng.random() < 0.1:
        run(tally, "config/check", ["check", folder, "--tp", rng.choice(["1", "2", "8"]), "--format", "json"],
            codes=(0, 1, 2), parse_json=True)
    else:
        run(tally, "config", ["estimate", folder, "--format", "json", *extra], parse_json=True)


# ---- flags ---------------------------------------------------------------------------------------------------

def flag_values(rng: random.Random) -> dict:
    digits400 = "9" * 400
    return {
        "--context": ["8192", "32k", digits400, "1e400", "²", "٣", "-1", "0", "", " ", "1,,2", ",".join(["8"] * 70),
                      "99999999999999999999", "1M", "4096,32k", "1024k" * 3, "0x10", "８１９２"],
        "--kv-budget": ["10GiB", "1e400", "1e308GiB", "nan", "inf", "-5", "0x10", "10 GiB", "²", digits400, "0.1",
                        "1e18", "80GB", "1" * 5000],
        "--gpu-memory": ["80GB", "1e308GiB", "0", "nan", digits400, "79.2GiB", "-1GiB"],
        "--gpu-util": ["0.9", "nan", "inf", "-0.1", "1e-300", "2", "1", "0", "abc"],
        "--tp": ["1", "0", "3", "1,2,4,8", "99999999999999999999", "²", "64", "1,2,4,8,16,32,64",
                 ",".join(["2"] * 64)],
        "--block-size": ["16", "0", "3", "1048576", "-16", "1e3", "2", "99999999999999999999999"],
        "--max-num-batched-tokens": ["8192", "0", digits400, "-1", "1099511627776"],
        "--revision": ["main", "../x", "a/b", "x" * 300, "refs/pr/1", "..", "0123456789abcdef0123456789abcdef01234567"],
        "--hub-timeout": ["0", "nan", "5", "-1", "1e9", "0.5"],
        "--kv-dtype": ["auto", "fp8", "fp7", "int4", "auto,fp8,bf16", "", "FP8", ",".join(["fp8"] * 30)],
        "--gpu": ["H100", "h200", "H900", "", "a100", "x" * 500, "##[error]x"],
        "--format": ["table", "json", "yaml", "csv", "xml", ""],
    }


def flag_case(index: int, models: list, rng: random.Random, work: Path, tally: Tally) -> None:
    values = flag_values(rng)
    command = rng.choice(["estimate"] * 6 + ["check"] * 3 + ["models", "gpus"])
    model = rng.choice(models + ["nobody/nothing", "~nosuchuser/x", "a" * 300 + "/b", "/dev/zero", "", ".", "/",
                                 "meta-llama/Llama-3.1-8B-Instuct", "::error::x", "x" * 5000, "a\nb",
                                 str(work / "unreadable" / "config.json"), str(work / "fifo-model")])
    args = [command]
    if command in ("estimate", "check"):
        args.append(model)
    options = {"estimate": ["--context", "--kv-budget", "--gpu-memory", "--gpu-util", "--tp", "--block-size",
                            "--max-num-batched-tokens", "--revision", "--hub-timeout", "--kv-dtype", "--gpu",
                            "--format"],
               "check": ["--context", "--kv-budget", "--gpu-util", "--tp", "--revision", "--hub-timeout",
                         "--kv-dtype", "--gpu", "--format"],
               "models": ["--format"], "gpus": ["--format"]}[command]
    for option in rng.sample(options, rng.randrange(0, min(5, len(options)) + 1)):
        args += [option, rng.choice(values[option])]
    if command == "check" and "--tp" not in args:
        args += ["--tp", "2"]
    fmt = args[args.index("--format") + 1] if "--format" in args else "table"
    run(tally, "flags", args, codes=(0, 1, 2) if command == "check" else (0, 2), parse_json=fmt == "json")


# ---- deployment files ----------------------------------------------------------------------------------------

def deployment_text(rng: random.Random, model: str) -> str:
    entry = {"name": "chat", "model": model, "tp": "2"}
    clean = rng.random() < 0.5  # half the files hold only valid values: their checks run to the end
    good = {"context": ["8192", "32k", "131072", "1000000"], "gpu_util": ["0.9", "0.5", "1"],
            "kv_budget": ["10GiB", "'80GB'", "1073741824"], "min_concurrency": ["1", "10000", "64"],
            "kv_dtype": ["fp8", "auto", "bf16"], "gpu": ["H100", "4090", "H200", "L4"], "revision": ["main"],
            "pp": ["2", "4", "3"]}
    bad = {"context": ["010", "2:16:32", "0x2000", "8_192", ".inf", "1e400", "1" * 500, "-1"],
           "gpu_util": [".nan", "1:30.5", "2"], "kv_budget": ["010", "1e400", "0x10"],
           "min_concurrency": ["017", "0"], "kv_dtype": ["fp7", "[1, 2]"], "gpu": ["H900", "2024-01-01"],
           "revision": ["../x", "1234"], "pp": ["0o10", "0"]}
    lines = ["deployments:"]
    for i in range(rng.randrange(1, 4)):
        lines += [f"  - name: d{i}", f"    model: {model}", f"    tp: {rng.choice(['1', '2', '3', '8'])}"]
        for key in rng.sample(sorted(good), rng.randrange(0, 4)):
            pool = good[key] if clean or rng.random() < 0.5 else bad[key]
            lines.append(f"    {key}: {rng.choice(pool)}")
    text = "\n".join(lines) + "\n"
    roll = rng.randrange(32 if clean else 16)
    if roll == 0:  # the bypass: an empty first key, a failing entry under the second
        text = "deployments:\n" + text
    elif roll == 1:
        text += "deployments:\n  - name: late\n    model: " + model + "\n    tp: 3\n"
    elif roll == 2:
        text = f"base: &b\n  model: {model}\n  tp: 2\ndeployments:\n  - <<: *b\n    name: merged\n"
    elif roll == 3:
        text = text.replace("    tp: ", "    tp: 4\n    tp: ", 1)
    elif roll == 4:
        laughs = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
        for level in range(1, 9):
            laughs.append(f"a{level}: &a{level} [" + ",".join([f"*a{level - 1}"] * 9) + "]")
        text = "\n".join(laughs) + f"\ndeployments:\n  - name: lol\n    model: {model}\n    tp: 2\n    gpu: *a8\n"
    elif roll == 5:
        text += "  - !!python/object/apply:os.system ['true']\n"
    elif roll == 6:
        deep = "[" * 20000 + "]" * 20000
        text = "deployments:\n  - name: x\n    model: " + model + "\n    tp: 2\n    gpu: " + deep + "\n"
    elif roll == 7:
        text = text.replace("name: d0", rng.choice(['name: "::error::pwned"', 'name: "a\\n::error::b"',
                                                    "name: '##[error]x'", "name: \"\\u2028::warning::x\""]))
    elif roll == 8:
        text = "\t" + text
    elif roll == 9:
        text = text + "---\n" + text
    elif roll == 10:
        text = "deployments: " + json.dumps([entry] * 3)
    elif roll == 11:
        text = text.replace("deployments:", "? [a, b]\n: 1\ndeployments:")
    return text


def deployment_case(index: int, model: str, rng: random.Random, work: Path, tally: Tally) -> None:
    path = work / f"d{index}.yaml"
    roll = rng.random()
    if roll < 0.02:
        os.mkfifo(path)
    elif roll < 0.04:
        path.write_bytes(b"deployments:\n  - name: \xff\xfe\n")
    else:
        path.write_text(deployment_text(rng, model))
    fmt = rng.choice(["table", "json", "yaml", "csv"])
    env = {"GITHUB_ACTIONS": "true"} if rng.random() < 0.5 else {}
    run(tally, "deployments", ["check", "--file", path, "--format", fmt], codes=(0, 1, 2), env=env,
        parse_json=fmt == "json")


# ---- fields: every leaf of every bundled config (s62) -----------------------------------------------------------

def config_leaves(node, path=()):
    """The paths of every value in a config (mappings and lists themselves included; the first 3 items of a list)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from config_leaves(value, path + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node[:3]):
            if isinstance(value, (dict, list)):
                yield from config_leaves(value, path + (index,))
    if path:
        yield path


FIELD_EVIL = [None, True, False, 0, -1, -7, 0.5, 1.5, 3.0, 2**63, 10**30, 1e308, float("nan"), float("inf"), "",
              "abc", "32", [], [1, 2], [None], {}, {"a": 1}, "@HUGE@", ["x"] * 5000]


def field_values(old, rng: random.Random, mild: bool) -> list:
    """Hostile values for any field, or (mild) plausible ones of the field's own type: what an unusual real model
    or a careless edit holds, so that accepted configs reach the engine rules with odd shapes."""
    if not mild:
        return FIELD_EVIL + ["@DELETE@"]
    if isinstance(old, bool):
        return [not old, None, "@DELETE@"]
    if isinstance(old, int):
        return sorted({0, 1, 2, 3, 5, 7, 8, 16, 64, 96, max(1, old // 2), old * 2, old + 1, max(1, old - 1)})
    if isinstance(old, float):
        return [old * 2, old / 2, 1.0, 0.0, 0.25, 4.0]
    if isinstance(old, str):
        return ["", old.upper(), "linear", "yarn", "float16", "fp8", "full_attention", "sliding_attention"]
    if isinstance(old, list):
        return [old[:-1], old + old[-1:] if old else [1], [], old[::-1]]
    return ["@DELETE@", None, []]


FIELD_FLAGS = [[], ["-tp", "1,2,8"], ["--kv-cache-dtype", "auto,fp8"], ["--engine", "vllm==0.10.2"],
               ["--engine", "vllm==0.15.0"], ["--engine", "vllm==0.28.0"], ["--engine", "vllm==0.34.0"],
               ["--engine", "none"], ["-c", "8192", "--max-num-batched-tokens", "100"], ["-pp", "2"],
               ["-pp", "3", "-tp", "2"], ["--no-enable-prefix-caching"], ["--block-size", "64"], ["-c", "auto"],
               ["--disable-sliding-window"], ["--enforce-eager", "--max-num-seqs", "3"]]


def fields_family(per_leaf: int, rng: random.Random, work: Path, tally: Tally) -> None:
    """Each value of each bundled config (nested text_config, rope_scaling, quantization_config... included) set in
    turn to `per_leaf` values, half the configs hostile, half plausible; through estimate (a config.json or its
    folder) with one of FIELD_FLAGS. Runs over 0.5 s are counted apart (the design's speed bound)."""
    import yaml

    for index, path in enumerate(sorted((ROOT / "model_specs").glob("*.yaml"))):
        base = yaml.safe_load(path.read_text())["config"]
        for leaf in list(config_leaves(base)):
            node = base
            for step in leaf:
                node = node[step]
            mild = rng.random() < 0.5
            pool = field_values(node, rng, mild)
            for value in rng.sample(pool, min(per_leaf, len(pool))):
                cfg = json.loads(json.dumps(base))
                parent = cfg
                for step in leaf[:-1]:
                    parent = parent[step]
                if value == "@DELETE@" and isinstance(parent, dict):
                    del parent[leaf[-1]]
                else:
                    parent[leaf[-1]] = None if value == "@DELETE@" else value
                folder = work / f"f{index}-{tally.counts['runs']}"
                folder.mkdir()
                (folder / "config.json").write_text(json.dumps(cfg).replace('"@HUGE@"', HUGE_INT))
                target = folder / "config.json" if rng.random() < 0.5 else folder
                started = time.monotonic()
                run(tally, f"{path.stem}:{'/'.join(map(str, leaf))}={str(value)[:30]}",
                    ["estimate", target, "--format", "json", *rng.choice(FIELD_FLAGS)], parse_json=True)
                if time.monotonic() - started > 0.5:
                    tally.counts["runs over 0.5 s (not failures)"] += 1


# ---- parity: estimate's flags and check's file, the same deployment (s62) ---------------------------------------

PARITY_KEYS = {  # deployments key: (estimate flag, values); a True value is a switch
    "context": ("--max-model-len", ["4096", "8192", "32k", "32K", "131072", "1000", "100000"]),
    "kv_dtype": ("--kv-cache-dtype", ["auto", "fp8", "bfloat16", "fp8_e5m2", "fp8_e4m3", "nvfp4", "float16"]),
    "pp": ("-pp", ["1", "2", "3", "4"]),
    "gpu": ("--gpu", ["H100", "H200", "A100", "L4", "4090", "B200", "MI300X", "GH200"]),
    "gpu_util": ("--gpu-memory-utilization", ["0.5", "0.8", "0.9", "0.95", "1"]),
    "kv_budget": ("--kv-cache-memory-bytes", ["10GiB", "1G", "5e9", "80GB"]),
    "engine": ("--engine", ["vllm", "vllm==0.15.0", "vllm==0.11.0", "vllm==0.20.0", "vllm==0.28.0", "vllm==0.34.0",
                            "none", "vllm==0.10.2", "vllm==0.33.0"]),
    "enforce_eager": ("--enforce-eager", [True]),
    "block_size": ("--block-size", ["16", "32", "64", "128", "1", "256"]),
    "max_num_seqs": ("--max-num-seqs", ["1", "8", "256", "1024"]),
    "max_num_batched_tokens": ("--max-num-batched-tokens", ["512", "2048", "8192", "16k", "100"]),
    "gpu_memory": ("--gpu-memory", ["40GiB", "24GB", "141GB"]),
    "dtype": ("--dtype", ["auto", "half", "bfloat16", "float32"]),
    "quantization": ("--quantization", ["fp8", "mxfp4"]),
    "num_gpu_blocks_override": ("--num-gpu-blocks-override", ["100", "5000"]),
    "cpu_offload_gb": ("--cpu-offload-gb", ["0", "4", "10.5"]),
    "dp": ("--data-parallel-size", ["1", "2", "4"]),
    "enable_expert_parallel": ("--enable-expert-parallel", [True]),
    "max_cudagraph_capture_size": ("--max-cudagraph-capture-size", ["1", "64", "512"]),
    "disable_sliding_window": ("--disable-sliding-window", [True]),
    "mamba_block_size": ("--mamba-block-size", ["16", "256", "1024"]),
    "mamba_cache_dtype": ("--mamba-cache-dtype", ["auto", "float32", "float16"]),
    "language_model_only": ("--language-model-only", [True]),
    "skip_mm_profiling": ("--skip-mm-profiling", [True]),
    "enable_lora": ("--enable-lora", [True]),
    "max_loras": ("--max-loras", ["1", "4"]),
    "max_lora_rank": ("--max-lora-rank", ["8", "64"]),
    "gpus_per_node": ("--gpus-per-node", ["4", "8"]),
}
PARITY_FIELDS = ("context", "kv_dtype", "kv_heads_per_gpu", "kv_budget_bytes_per_gpu", "kv_bytes_per_token",
                 "kv_bytes_per_token_per_gpu", "kv_bytes_per_sequence_per_gpu", "max_concurrency",
                 "max_concurrency_limited_by", "tp", "pp", "pp_partition", "node_gpus", "runner")


def captured(args: list) -> tuple:
    from kvplan.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def parity_differences(result: dict, plan: dict, entry: dict) -> dict:
    """check's result against estimate's plan: the numbers and the engine's figures, less what the two say apart by
    design (check's pp null when not given, the refusal's remedy in the file's key names or the flag's)."""
    diffs = {k: (result.get(k), plan.get(k)) for k in PARITY_FIELDS if k in result and result.get(k) != plan.get(k)}
    ours, theirs = result.get("engine") or {}, plan.get("engine") or {}
    for key in set(ours) | set(theirs):
        a, b = ours.get(key), theirs.get(key)
        if key == "refusal" and a and b:
            a, b = ({k: v for k, v in r.items() if k not in ("remedy", "remedy_range")} for r in (a, b))
        if a != b:
            diffs[f"engine.{key}"] = (a, b)
    if "pp" not in entry:
        diffs.pop("pp", None)
    if not plan.get("tp_valid") and result.get("kv_budget_bytes_per_gpu") is None:
        diffs.pop("kv_budget_bytes_per_gpu", None)
    return diffs


def parity_case(models: list, rng: random.Random, work: Path, tally: Tally) -> None:
    model, tp = rng.choice(models), rng.choice(["1", "2", "4", "8"])
    entry, flags = {"name": "d", "model": model, "tp": tp}, ["estimate", model, "-tp", tp, "--format", "json"]
    for key in rng.sample(sorted(PARITY_KEYS), rng.randrange(0, 5)):
        flag, values = PARITY_KEYS[key]
        value = rng.choice(values)
        entry[key] = "true" if value is True else value
        flags += [flag] if value is True else [flag, value]
    path = work / f"p{tally.counts['runs']}.yaml"
    path.write_text("deployments:\n  - " + "\n    ".join(f"{k}: {v}" for k, v in entry.items()) + "\n")
    (checked, out_c, err_c), (estimated, out_e, err_e) = captured(["check", "--file", path, "--format", "json"]), \
        captured(flags)
    tally.counts["runs"] += 2
    if (checked == 2) != (estimated == 2):
        tally.counts["refused by one only (not failures: check judges sharding before pricing)"] += 1
        return
    if checked == 2:
        return
    diffs = parity_differences(json.loads(out_c)["results"][0], json.loads(out_e)["plans"][0], entry)
    tally.counts["pairs compared"] += 1
    if diffs:
        tally.bad("estimate and check differ", f"{json.dumps(diffs, default=str)[:300]} :: {flags}")


# ---- contract: design.md's JSON keys, every bundled model, engines x tp x kv dtype (s62) ------------------------

PLAN_KEYS = ("context", "kv_dtype", "tp", "pp", "block_size", "tp_valid", "tp_errors", "kv_bytes_per_token",
             "kv_bytes_per_token_per_gpu", "kv_bytes_per_sequence_per_gpu", "kv_budget_bytes_per_gpu",
             "max_concurrency", "max_concurrency_limited_by", "engine", "budget", "decode", "prefill")
ENGINE_KEYS = ("name", "version", "available_kv_cache_bytes", "num_gpu_blocks", "gpu_kv_cache_tokens",
               "max_concurrency", "starts", "refusal", "log_lines")
POINT_KEYS = ("batch", "itl_ms", "roofline_itl_ms", "tokens_per_s", "fits")
# README "What the numbers mean": a plan with pp > 1 lists every stage (s77); a pp 1 plan has no `stages` key
STAGE_KEYS = ("stage", "first_layer", "end_layer", "layers", "weights_bytes_per_gpu", "activation_bytes", "terms",
              "kv_budget_bytes_per_gpu", "kv_blocks", "sets_capacity")


def contract_gaps(plan: dict, engine: str) -> list:
    gaps = [f"plan.{k}" for k in PLAN_KEYS if k not in plan] + stage_gaps(plan)
    if not plan.get("tp_valid"):
        return gaps
    if plan.get("max_concurrency_limited_by") not in ("memory", "max_num_seqs"):
        gaps.append(f"max_concurrency_limited_by {plan.get('max_concurrency_limited_by')!r}")
    figures = plan.get("engine")
    if engine != "none":
        gaps += [f"engine.{k}" for k in ENGINE_KEYS if not isinstance(figures, dict) or k not in figures]
        if isinstance(figures, dict) and figures.get("starts") is False and not figures.get("refusal"):
            gaps.append("engine refuses with no refusal")
        if engine.startswith("vllm") and isinstance(figures, dict) and figures.get("core") not in ("v0", "v1"):
            gaps.append(f"engine.core {figures.get('core')!r} (a vLLM plan runs on v0 or v1)")
    points = (plan.get("decode") or {}).get("points", [])
    gaps += sorted({f"decode.points[].{k}" for point in points for k in POINT_KEYS if k not in point})
    if isinstance(plan.get("prefill"), dict):
        gaps += [f"prefill.{k}" for k in ("input_len", "ttft_ms") if k not in plan["prefill"]]
    return gaps


def stage_gaps(plan: dict) -> list:
    """`stages`: absent at pp 1; at pp > 1 null where the plan is not valid, else one record a stage, in order, the
    one stage setting capacity where any counted blocks and its budget the plan's (else the smallest)."""
    if plan.get("pp", 1) <= 1:
        return ["plan.stages at pp 1"] if "stages" in plan else []
    stages = plan.get("stages", "absent")
    if not plan.get("tp_valid"):
        return [] if stages is None else [f"plan.stages {stages!r} on an invalid plan"]
    if not isinstance(stages, list) or len(stages) != plan["pp"]:
        return [f"plan.stages is not {plan['pp']} stages"]
    gaps = sorted({f"stages[].{k}" for s in stages for k in STAGE_KEYS if k not in s})
    if gaps:
        return gaps
    if [s["stage"] for s in stages] != list(range(plan["pp"])):
        gaps.append("stages out of order")
    counted = any(s["kv_blocks"] is not None for s in stages)
    if sum(bool(s["sets_capacity"]) for s in stages) != (1 if counted else 0):
        return gaps + ["not one stage sets capacity"]
    tight = [s["kv_budget_bytes_per_gpu"] for s in stages if s["sets_capacity"]] or \
        [min(s["kv_budget_bytes_per_gpu"] for s in stages)]
    if tight[0] != plan.get("kv_budget_bytes_per_gpu"):
        gaps.append("the plan's kv_budget_bytes_per_gpu is not its capacity stage's")
    return gaps


def contract_family(models: list, tally: Tally) -> None:
    for model in models:
        for engine in ("vllm", "vllm==0.10.2", "vllm==0.15.0", "vllm==0.20.0", "vllm==0.28.0", "vllm==0.34.0", "none"):
            # (tp, pp): pp 2 at tp 1 for the `stages` list
            for tp, pp in (("1", "1"), ("2", "1"), ("8", "1"), ("1", "2")):
                for kv in ("auto", "fp8"):
                    args = ["estimate", model, "--engine", engine, "-tp", tp, "--kv-cache-dtype", kv,
                            "--format", "json"] + (["-pp", pp] if pp != "1" else [])
                    started = time.monotonic()
                    code, out, err = captured(args)
                    tally.counts["runs"] += 1
                    if time.monotonic() - started > 0.5:
                        tally.bad("runs over 0.5 s (not failures)", " ".join(args[1:]))
                    if code != 0:
                        if code != 2 or len(err.strip().splitlines()) != 1:
                            tally.bad("traceback" if code == 3 else "exit code outside the contract",
                                      f"{args[1:]} exit {code}: {err[:200]}")
                        continue
                    data = json.loads(out, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
                    why = nonsense(data)
                    if why:
                        tally.bad("nonsense output", f"{args[1:]}: {why}")
                    for plan in data["plans"]:
                        for gap in contract_gaps(plan, engine):
                            tally.bad("JSON contract gap", f"{args[1:]}: {gap}")


# ---- the Hub -------------------------------------------------------------------------------------------------

def hub_paths() -> list:
    """Each Hub error path against a loopback server, in a fresh process as a user runs it: (case, exit code,
    seconds, stderr line)."""
    import hashlib
    import subprocess
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import hub_configs

    body = json.dumps(hub_configs.LLAMA3_8B).encode()

    class Hub(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _answer(self, send_body: bool):
            owner = self.path.strip("/").split("/")[0]
            owner = "missing" if "Instuct" in self.path else owner
            statuses = {"missing": (404, "RepoNotFound"), "gated": (401, "GatedRepo"), "limited": (429, None),
                        "broken": (500, None), "unavailable": (503, None)}
            if owner == "slow":
                time.sleep(120)
            if owner == "trickle" and send_body:  # headers at once, then one byte a second
                self.send_response(200)
                self.send_header("Content-Length", "100000")
                self.end_headers()
                for _ in range(120):
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(1)
                return
            if owner in statuses:
                status, code = statuses[owner]
                self.send_response(status)
                if code:
                    self.send_header("X-Error-Code", code)
                if status == 429:
                    self.send_header("Retry-After", "60")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if not self.path.endswith("/config.json"):
                self.send_response(404)
                self.send_header("X-Error-Code", "EntryNotFound")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("ETag", '"' + hashlib.sha256(body).hexdigest() + '"')
            self.send_header("X-Repo-Commit", "0" * 40)
            self.end_headers()
            if send_body:
                self.wfile.write(body)

        def do_HEAD(self):
            self._answer(False)

        def do_GET(self):
            self._answer(True)

    class Quiet(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request, client_address):
            pass

    server = Quiet(("127.0.0.1", 0), Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    closed = f"http://127.0.0.1:{_closed_port()}"
    cases = [("404 not found", "missing/model", endpoint, {}),
             ("404, a typo of a bundled id", "meta-llama/Llama-3.1-8B-Instuct", endpoint, {}),
             ("401 gated", "gated/model", endpoint, {}),
             ("429 Retry-After 60", "limited/model", endpoint, {}),
             ("500", "broken/model", endpoint, {}),
             ("503", "unavailable/model", endpoint, {}),
             ("slow server (no answer for 120 s)", "slow/model", endpoint, {}),
             ("slow server, --hub-timeout 3", "slow/model", endpoint, {"flags": ["--hub-timeout", "3"]}),
             ("trickling body (1 byte/s)", "trickle/model", endpoint, {}),
             ("offline (connection refused)", "acme/model", closed, {}),
             ("offline (HF_HUB_OFFLINE=1, not cached)", "acme/model", endpoint, {"offline": True}),
             ("success (config.json, no safetensors)", "acme/model", endpoint, {})]
    results = []
    with tempfile.TemporaryDirectory() as home:
        for name, model, url, extra in cases:
            env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_ENDPOINT": url, "HF_HOME": home,
                   "HF_HUB_CACHE": str(Path(home) / f"cache-{len(results)}"),
                   "HF_HUB_OFFLINE": "1" if extra.get("offline") else "0", "HF_HUB_DISABLE_XET": "1"}
            env.pop("KVPLAN_HUB_TIMEOUT", None)
            started = time.monotonic()
            try:
                proc = subprocess.run([sys.executable, "-m", "kvplan", "estimate", model, "--format", "json",
                                       *extra.get("flags", [])], capture_output=True, text=True, env=env,
                                      timeout=HUB_PATIENCE)
                code, lines = proc.returncode, proc.stderr.strip().splitlines()
            except subprocess.TimeoutExpired:
                code, lines = f"killed after {HUB_PATIENCE} s", []
            seconds = time.monotonic() - started
            results.append({"case": name, "exit": code, "seconds": round(seconds, 2),
                            "stderr_lines": len(lines), "stderr": lines[-1] if lines else ""})
            print(f"  {name:42s} exit {code}  {seconds:6.2f} s  {(lines or [''])[-1][:150]}", flush=True)
    server.shutdown()
    return results


def _closed_port() -> int:
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


# ---- main ----------------------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=10_000)
    parser.add_argument("--flags", type=int, default=1_000)
    parser.add_argument("--deployments", type=int, default=200)
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--fields", type=int, default=0, help="values per leaf of every bundled config (s62: 2)")
    parser.add_argument("--parity", type=int, default=0, help="deployments through both estimate and check (s62: 1500)")
    parser.add_argument("--contract", action="store_true", help="every bundled model x engines x tp x kv dtype")
    parser.add_argument("--hub", action="store_true", help="also time the Hub error paths (subprocesses)")
    parser.add_argument("--out", type=Path, default=None, help="write the tallies as JSON here")
    options = parser.parse_args()

    resource.setrlimit(resource.RLIMIT_AS, (6 * 2**30, resource.RLIM_INFINITY))
    signal.signal(signal.SIGALRM, _alarm)
    rng = random.Random(options.seed)
    report = {"seed": options.seed}
    base = base_configs()
    import yaml

    models = [yaml.safe_load(p.read_text())["id"] for p in sorted((ROOT / "model_specs").glob("*.yaml"))]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "unreadable").mkdir()
        (work / "unreadable" / "config.json").write_text("{}")
        os.chmod(work / "unreadable", 0)
        os.mkfifo(work / "fifo-model")
        for name, count, case in (("configs", options.configs, lambda i, t: config_case(i, base, rng, work, t)),
                                  ("flags", options.flags, lambda i, t: flag_case(i, models, rng, work, t)),
                                  ("deployments", options.deployments,
                                   lambda i, t: deployment_case(i, rng.choice(models), rng, work, t)),
                                  ("fields", 1 if options.fields else 0,
                                   lambda i, t: fields_family(options.fields, rng, work, t)),
                                  ("parity", options.parity, lambda i, t: parity_case(models, rng, work, t)),
                                  ("contract", 1 if options.contract else 0, lambda i, t: contract_family(models, t))):
            tally, started = Tally(), time.monotonic()
            if not count:
                continue
            for index in range(count):
                case(index, tally)
            seconds = time.monotonic() - started
            report[name] = {"inputs": count, "runs": tally.counts["runs"], "seconds": round(seconds, 1),
                            "slowest_run_s": round(tally.slowest, 2),
                            "slowest_run_cpu_s": round(tally.slowest_cpu, 2), "counts": dict(tally.counts),
                            "examples": tally.examples}
            problems = {k: v for k, v in tally.counts.items()
                        if not k.startswith(("runs", "exit ", "reruns", "pairs")) and "not failures" not in k}
            print(f"{name}: {count} inputs, {tally.counts['runs']} runs in {seconds:.0f} s (slowest "
                  f"{tally.slowest:.2f} s wall, {tally.slowest_cpu:.2f} s CPU; reruns "
                  f"{tally.counts['reruns after 5 s of wall time']}); exits "
                  f"{dict(sorted((k, v) for k, v in tally.counts.items() if k.startswith('exit ')))}; "
                  f"problems {problems or 'none'}", flush=True)
            for kind, examples in tally.examples.items():
                for example in examples:
                    print(f"    {kind}: {example}")
        os.chmod(work / "unreadable", 0o700)
    if options.hub:
        print("Hub error paths (loopback server, fresh process each):")
        report["hub"] = hub_paths()
    if options.out:
        options.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
