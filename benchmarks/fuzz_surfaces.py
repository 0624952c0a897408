"""Session 69's fuzz round on the surfaces the campaign (fuzz_campaign.py) reaches least; not run in CI
(tests/test_fuzz_s69.py holds what it found).

    python benchmarks/fuzz_surfaces.py                 # 3,000 runs over five families, under a minute here
    python benchmarks/fuzz_surfaces.py --runs 300      # a quick look

Families
- engines: `estimate` with --engine vllm / vllm==<old release> / none / an engine kvplan does not model, beside
  vLLM-only flags, --pp / --dp with --tp, --gpu names in odd case and spacing, --max-num-seqs and
  --max-num-batched-tokens 0 or huge, --gpu-memory-utilization 0, 1, 1.5, nan, inf, every --format.
- deployments: `check --file` with YAML shapes the campaign does not write (an empty file, a top-level list, a
  null entry, keys in another case, engine none with vLLM-only keys, numbers as booleans, floats and strings).
- catalogs: `kvplan models` / `kvplan gpus` with stray arguments and formats.
- configs: a local config.json that is a folder, empty, a JSON list or scalar, NaN / Infinity, 4,000-digit and
  float integers, booleans where counts go, a text_config missing its fields.
- verify: `kvplan verify` on a machine without a GPU: one line, exit 2, its config checks first.

Counted as the campaign counts (fuzz_campaign.run): tracebacks, exits outside 0/1/2, bad-input errors that are
not one line, output on stdout with exit 2; and here: an exit-2 line that names none of the flags given, no config
field and no file (listed for reading by hand, as "unnamed").
"""

from __future__ import annotations

import argparse
import json
import random
import re
import resource
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fuzz_campaign import Tally, _alarm, run  # noqa: E402

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
MODELS = [LLAMA, "Qwen/Qwen3-30B-A3B", "deepseek-ai/DeepSeek-V2-Lite", "google/gemma-3-4b-it",
          "ai21labs/AI21-Jamba-1.5-Mini", "openai/gpt-oss-20b", "Qwen/Qwen2.5-VL-7B-Instruct"]
# each flag: (values vLLM takes, values it refuses); a case draws mostly the first, so that it runs to the end
ENGINES = (["vllm", "vllm==0.10.1", "vllm==0.8.5", "vllm==0.34.0", "vllm==0.32", "none", "NONE", " vllm ", "Vllm"],
           ["sglang", "trtllm", "vllm==", "vllm==abc", "", "tgi", "vllm==9.9.9"])
GPUS = (["H100", "h100", " H100", "H100 ", "H100-80GB-SXM", "nvidia h100 80gb hbm3", "a100 40gb", "l4", "B200",
         "NVIDIA H100 80GB HBM3", "rtx-4090", "H200"],
        ["h 100", "NVIDIA  H100", "H100\t", "A100_40GB", "RTX 4090", "H100,H200", "", "mi300x", "H100 H200"])
FRACTIONS = (["0.5", "0.92", "1", "0.0001", "1.0", " 0.9", "9e-1"],
             ["0", "1.5", "nan", "inf", "-inf", "1e-320", "-0.5", "1.0000001", "0x1", "", "-0"])
COUNTS = (["1", "2", "64", "256", "1024", "100000"],
          ["0", "-1", "99999999999", "9" * 30, "1e3", "8K", "1.5", "abc", ""])
TOKENS = (["1", "16", "256", "2048", "8K", "1M", " 64"],
          ["0", "-1", "99999999999999", "9" * 30, "1e3", "1.5", "", "-8K"])
ENGINE_FLAGS = {  # flags vLLM has and `--engine none` or an old release has not; None: a switch
    "--enforce-eager": None, "--skip-mm-profiling": None, "--language-model-only": None,
    "--limit-mm-per-prompt": (['{"image": 2}', '{"image": 0}'], ['{"image": -1}', "image=2", "[]", ""]),
    "--mm-encoder-tp-mode": (["data", "weights"], ["x", ""]), "--cpu-offload-gb": (["0", "2"], ["-1", "nan", ""]),
    "--num-gpu-blocks-override": (["100", "5000"], ["0", "-1", "1e9"]),
    "--speculative-config": (['{"method": "ngram", "num_speculative_tokens": 3}'], ["{}", "x", "[]"]),
    "--enable-expert-parallel": None, "--enable-eplb": None,
    "--num-redundant-experts": (["0", "8"], ["-1", "x"]), "--eplb-config": (['{"num_redundant_experts": 8}'], ["x"]),
    "--enable-lora": None, "--max-loras": (["1", "4"], ["0", "-1"]), "--max-lora-rank": (["8", "64"], ["7", "0"]),
    "--lora-dtype": (["auto", "float16"], ["int8"]), "--fully-sharded-loras": None,
    "--runner": (["auto", "pooling", "generate"], ["x"]), "--convert": (["embed", "none", "auto"], ["x"]),
    "--pooler-config": (['{"pooling_type": "MEAN"}', "{}"], ["x", "[]"]),
    "--max-cudagraph-capture-size": (["0", "512", "8"], ["-1", "x"]),
    "--cudagraph-capture-sizes": (["1 2 4", "1,2,4"], ["0", "", "1,,2"]),
    "--mamba-cache-dtype": (["auto", "float32"], ["int8"]), "--mamba-ssm-cache-dtype": (["auto", "float16"], ["x"]),
    "--disable-sliding-window": None, "--enable-prefix-caching": None, "--no-enable-prefix-caching": None,
    "--mamba-block-size": (["16", "64"], ["0", "-16"]), "--block-size": (["16", "64", "32"], ["0", "3", "-16"]),
    "--quantization": (["fp8", "awq", "mxfp4"], ["int8", ""]), "--dtype": (["auto", "half", "float32"], ["float64"]),
    "--input-len": (["1", "100", "4096"], ["0", "-1", "99999999"]), "--batch": (["8,64", "1"], ["0", "1,,2"]),
    "--kv-cache-dtype": (["auto", "fp8", "auto, fp8", "FP8"], [" ", "fp8,", "int4", ""]),
    "--kv-cache-memory-bytes": (["10G", "1GiB", "80GB"], ["0", "-1", "nan", "1e400", " "]),
    "--gpu-memory": (["80GB", "24GiB"], ["0", " ", "-1GiB"]), "--gpus-per-node": (["8", "4", "1"], ["0", "-1"]),
    "--pp-layer-partition": (["16,16", "10,22"], ["32", "0,32", ""]),
    "--max-model-len": (["8K", "auto", "4096", "128K"], ["0", "-2", "1,auto", " "]), "--chart": None,
    "-tp": (["1", "2", "4", "8", "1,2"], ["0", "-1", "3,0", ""]), "-pp": (["1", "2", "3"], ["0", "-1"]),
    "-dp": (["1", "2"], ["0", "-1", ""]), "--gpu": GPUS, "--max-num-seqs": COUNTS, "--max-num-batched-tokens": TOKENS,
    "--gpu-memory-utilization": FRACTIONS, "--engine": ENGINES,
    "--format": (["table", "json", "yaml", "csv", "html", "JSON", "Html"], ["xml", "", "htm"]),
}


def flag_args(rng: random.Random, pools: dict, count: int) -> list:
    """`count` flags of `pools` drawn at random, at most one of them given a value it refuses (a third of cases)."""
    chosen = rng.sample(sorted(pools), count)
    bad = rng.choice(chosen) if chosen and rng.random() < 0.35 else None
    args = []
    for flag in chosen:
        values = pools[flag]
        args += [flag] if values is None else [flag, rng.choice(values[1] if flag == bad else values[0])]
    return args


def engines_case(rng: random.Random, tally: Tally, errors: list) -> None:
    args = ["estimate", rng.choice(MODELS), *flag_args(rng, ENGINE_FLAGS, rng.randrange(1, 7))]
    fmt = args[args.index("--format") + 1] if "--format" in args else "table"
    run(tally, "engines", args, parse_json=fmt.lower() == "json", errors=errors)


YAML_ENTRY = f"  - name: a\n    model: {LLAMA}\n    tp: 1\n    context: 4096\n"
YAML_SHAPES = [
    "", "\n", "# nothing\n", "---\n", "deployments:\n", "deployments: []\n", "deployments: {}\n", "deployments: null\n",
    "deployments: 3\n", "deployments: [null]\n", "deployments: [[]]\n", "deployments: ['a']\n", "- name: a\n",
    "Deployments:\n" + YAML_ENTRY, "deployments:\n" + YAML_ENTRY.replace("tp:", "TP:"),
    "\ufeffdeployments:\n" + YAML_ENTRY, ("deployments:\n" + YAML_ENTRY).replace("\n", "\r\n"),
    "deployments:\n" + YAML_ENTRY + "  -\n", "deployments:\n" + YAML_ENTRY + "extra: 1\n",
    "deployments:\n" + YAML_ENTRY.replace("name: a", "name:"),
    "deployments:\n" + YAML_ENTRY.replace("name: a", "name: ''"),
    "deployments:\n" + YAML_ENTRY.replace(f"model: {LLAMA}", "model:"),
    "deployments:\n" + YAML_ENTRY.replace(f"model: {LLAMA}", "model: ' '"),
    "deployments:\n" + YAML_ENTRY.replace(f"model: {LLAMA}", "model: ./nowhere/config.json"),
    "deployments:\n" + YAML_ENTRY + YAML_ENTRY, "deployments:\n" + YAML_ENTRY + "---\ndeployments: []\n",
]
YAML_VALUES = {  # (values check takes, values it refuses), as ENGINE_FLAGS
    "tp": (["1", "2", "8"], ["0", "-1", "true", "1.0", "1.5", "'2'", "[1, 2]", "{a: 1}", "null", "'1,2'", ".inf"]),
    "pp": (["1", "2", "3"], ["0", "true", "1.0", "-2", "null"]), "dp": (["1", "2"], ["0", "-1", "true", "1.0", "null"]),
    "gpu": (["' H100'", "h100", "'H100 '", "NVIDIA H100", "4090", "l4"],
            ["'h 100'", "''", "null", "[H100]", "H100,H200"]),
    "gpu_util": (["0.5", "1", "9e-1", "'0.9'", "1.0"], ["0", "1.5", ".nan", ".inf", "-0.1", "true", "null"]),
    "engine": (["none", "vllm==0.8.5", "VLLM", "vllm==0.34.0", "vllm"], ["sglang", "trtllm", "''", "null", "1"]),
    "max_num_seqs": (["1", "64", "1024"], ["0", "-1", "99999999999", "true", "1.0", "null"]),
    "max_num_batched_tokens": (["8K", "'8K'", "2048", "16"], ["0", "-1", "99999999999999", "true", "1.0", "null"]),
    "kv_dtype": (["fp8", "FP8", "auto"], ["' '", "''", "'auto, fp8'", "null", "[fp8]"]),
    "context": (["auto", "8K", "'8K'", "4096", "-1"], ["0", "true", "null", "4096.0", "-2"]),
    "enforce_eager": (["true", "false"], ["yes", "1", "'true'", "null", "on"]),
    "enable_lora": (["true", "false"], ["0"]), "num_gpu_blocks_override": (["100"], ["0", "-1"]),
    "speculative_config": (["{method: ngram, num_speculative_tokens: 2}"], ["{}", "x"]),
    "min_concurrency": (["1", "64"], ["0", "-1", "true", "null"]), "block_size": (["16", "64"], ["0", "3", "true"]),
    "kv_budget": (["10G", "'10 GiB'", "1073741824"], ["0", "-1", "true", "null", "1e400"]),
    "cpu_offload_gb": (["2", "0"], ["-1", ".nan", "true"]),
    "limit_mm_per_prompt": (["{image: 2}"], ["{image: -1}", "x"]),
    "gpu_memory": (["80GB", "'24GiB'"], ["0", "-1", "true"]), "gpus_per_node": (["8", "4"], ["0", "-1"]),
    "unknown_key": ([], ["1"]), "max_model_len": ([], ["8192"]), "tensor_parallel_size": ([], ["2"]),
}


def deployments_case(rng: random.Random, work: Path, index: int, tally: Tally, errors: list) -> None:
    path = work / f"deploy{index}.yaml"
    if rng.random() < 0.2:
        text = rng.choice(YAML_SHAPES)
    else:
        keys = rng.sample(sorted(k for k, (good, _) in YAML_VALUES.items() if good), rng.randrange(1, 5))
        bad = rng.choice(sorted(YAML_VALUES)) if rng.random() < 0.35 else None
        lines = ["deployments:", "  - name: a", f"    model: {rng.choice(MODELS)}"]
        lines += [f"    {key}: {rng.choice(YAML_VALUES[key][0])}" for key in keys if key != bad]
        if bad:
            lines.append(f"    {bad}: {rng.choice(YAML_VALUES[bad][1])}")
        if "tp" not in keys and bad != "tp":
            lines.append("    tp: 1")
        text = "\n".join(lines) + "\n"
    roll = rng.random()
    if roll < 0.03:
        path.mkdir()
    elif roll < 0.05:
        path = work / "missing" / "deploy.yaml"
    else:
        path.write_text(text, encoding="utf-8")
    fmt = rng.choice(["table", "json", "yaml", "csv", "html"])
    extra = rng.choice([[]] * 6 + [["-tp", "2"], ["--gpu", "h100"], [LLAMA], ["--engine", "none"], ["--suggest"],
                                   ["--file", path]])  # a --file again: each is checked
    run(tally, "deployments", ["check", "--file", path, *extra, "--format", fmt], codes=(0, 1, 2),
        parse_json=fmt == "json", errors=errors)


def catalogs_case(rng: random.Random, tally: Tally, errors: list) -> None:
    args = [rng.choice(["models", "gpus"])]
    for _ in range(rng.randrange(0, 3)):
        args.append(rng.choice(["--format", "-f", "json", "html", "csv", "yaml", "table", "", " ", "JSON", "-h",
                                "--gpu", "H100", "--", "-", "--format=json", "-fjson", "--format=", "--tp"]))
    run(tally, "catalogs", args, errors=errors)


LLAMA_CONFIG = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096,
                "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
                "num_key_value_heads": 8, "vocab_size": 128256, "max_position_embeddings": 131072,
                "tie_word_embeddings": False, "torch_dtype": "bfloat16"}
ODD_VALUES = [True, False, None, 0, -1, 1.5, 32.0, float("nan"), float("inf"), 10**4000, 2**64, "32", "", [], {},
              [32], "NaN", 1e308]
TEXT_CONFIG = {"architectures": ["LlavaForConditionalGeneration"], "model_type": "llava",
               "text_config": {"model_type": "llama", "hidden_size": 4096, "num_attention_heads": 32,
                               "num_hidden_layers": 32, "intermediate_size": 11008, "vocab_size": 32064},
               "vision_config": {"model_type": "clip_vision_model"}}


def config_text(rng: random.Random) -> str:
    roll = rng.randrange(10)
    if roll == 0:
        return rng.choice(["", " ", "[]", "[{}]", "null", "3", '"x"', "{", "{}", "{} {}", "\ufeff{}", "NaN",
                           json.dumps([LLAMA_CONFIG])])
    base = json.loads(json.dumps(TEXT_CONFIG if roll < 4 else LLAMA_CONFIG))
    target = base["text_config"] if "text_config" in base else base
    for _ in range(rng.randrange(1, 3)):
        key = rng.choice(sorted(target))
        if rng.random() < 0.3:
            del target[key]
        else:
            target[key] = rng.choice(ODD_VALUES)
    if roll == 1:
        base["text_config"] = rng.choice([None, [], "x", 3, {}])
    return json.dumps(base)  # NaN and Infinity written as Python writes them, as some exporters do


def configs_case(rng: random.Random, work: Path, index: int, tally: Tally, errors: list) -> None:
    folder = work / f"model{index}"
    folder.mkdir()
    roll = rng.random()
    if roll < 0.05:
        (folder / "config.json").mkdir()
        target = folder
    elif roll < 0.1:
        target = folder  # a folder without config.json
    else:
        (folder / "config.json").write_text(config_text(rng), encoding="utf-8")
        target = folder / "config.json" if rng.random() < 0.5 else folder
    command = rng.choice(["estimate"] * 4 + ["check", "verify"])
    args = [command, target] + (["-tp", "1"] if command == "check" else []) + ["--format", "json"]
    run(tally, "configs", args, codes=(0, 1, 2), parse_json=True, errors=errors)


VERIFY_FLAGS = {"-tp": (["1", "2"], ["0", "-1", "1,2"]), "-c": (["8K", "4096"], ["0", "auto", "999999999"]),
                "--kv-cache-dtype": (["fp8", "auto"], [" ", "int4"]), "--gpu-util": FRACTIONS,
                "--block-size": (["16"], ["0", "3"]), "--max-num-seqs": COUNTS, "--max-num-batched-tokens": TOKENS,
                "--engine": ENGINES, "--mamba-block-size": (["16"], ["0"]), "--enforce-eager": None,
                "--format": (["json", "html", "table"], ["x"])}


def verify_case(rng: random.Random, tally: Tally, errors: list) -> None:
    args = ["verify", rng.choice(MODELS), *flag_args(rng, VERIFY_FLAGS, rng.randrange(0, 4))]
    run(tally, "verify", args, codes=(2,), errors=errors)


# what an error line names: a command, a field ('tp'), a flag, the model, a config, a deployments file, the GPU
FIELDS = re.compile(r"kvplan [a-z]+ (?:takes|has|needs)|'[a-z_]+'|--[a-z]|-tp|-pp|-dp|-c |-q |config|MODEL|GPU|"
                    r"deployment|\.yaml|field|model")


def unnamed(args: list, line: str) -> bool:
    """An error line that names no flag given, no field and no file."""
    return not FIELDS.search(line) and not any(a.startswith("-") and a in line for a in args)


def _import_torch_before_the_alarm() -> None:
    """verify imports torch on its first run; on a loaded machine that import can pass the 5 s alarm, whose exception
    then leaves torch half-initialised for every later run (each an 'internal error' that no user can meet)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3000, help="runs in all, shared out over the families")
    parser.add_argument("--seed", type=int, default=69)
    parser.add_argument("--out", type=Path, default=None, help="write every exit-2 line here (JSON lines)")
    options = parser.parse_args()
    resource.setrlimit(resource.RLIMIT_AS, (6 * 2**30, resource.RLIM_INFINITY))
    signal.signal(signal.SIGALRM, _alarm)
    sys.set_int_max_str_digits(0)  # config_text writes 10**4000
    _import_torch_before_the_alarm()
    rng = random.Random(options.seed)
    shares = {"engines": 0.4, "deployments": 0.2, "catalogs": 0.05, "configs": 0.25, "verify": 0.1}
    all_errors = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name, share in shares.items():
            tally, errors, started = Tally(), [], time.monotonic()
            for index in range(int(options.runs * share)):
                case = {"engines": lambda: engines_case(rng, tally, errors),
                        "deployments": lambda: deployments_case(rng, work, index, tally, errors),
                        "catalogs": lambda: catalogs_case(rng, tally, errors),
                        "configs": lambda: configs_case(rng, work, index, tally, errors),
                        "verify": lambda: verify_case(rng, tally, errors)}[name]
                case()
            for args, line in errors:
                if unnamed(args, line):
                    tally.bad("unnamed", f"{args} :: {line}")
            problems = {k: v for k, v in tally.counts.items()
                        if not k.startswith(("runs", "exit ", "reruns")) and "not failures" not in k}
            print(f"{name}: {tally.counts['runs']} runs in {time.monotonic() - started:.0f} s; exits "
                  f"{dict(sorted((k, v) for k, v in tally.counts.items() if k.startswith('exit ')))}; "
                  f"problems {problems or 'none'}", flush=True)
            for kind, examples in tally.examples.items():
                for example in examples:
                    print(f"    {kind}: {example}")
            all_errors += [{"family": name, "args": args, "line": line} for args, line in errors]
    if options.out:
        options.out.write_text("".join(json.dumps(e) + "\n" for e in all_errors))


if __name__ == "__main__":
    main()
