"""One call on a GPU machine: verify's GPU tests, then `kvplan verify` over the models recorded in RESULTS.md,
in order of value, each in its own process with a time limit. Everything lands in $OUT (at most 8 files come
back): results.jsonl (one JSON object per run: arguments, exit code, wall time, the verify result or the error),
progress.txt (every run's progress lines), pytest.txt and summary.txt.

    python3 benchmarks/verify_device_run.py [tests] [models] [--only NAME,NAME] [--budget SECONDS]
"""

import json
import os
import subprocess
import sys
import time

RUNS = [  # name, kvplan verify arguments (order: value first)
    ("llama8b-8k", ["meta-llama/Llama-3.1-8B-Instruct"]),
    ("dsv2-lite", ["deepseek-ai/DeepSeek-V2-Lite"]),
    ("gpt-oss-20b", ["openai/gpt-oss-20b"]),
    ("qwen3-14b", ["Qwen/Qwen3-14B"]),
    ("llama8b-32k-fp8", ["meta-llama/Llama-3.1-8B-Instruct", "--context", "32768", "--kv-dtype", "fp8"]),
    ("mixtral-tp2", ["mistralai/Mixtral-8x7B-v0.1", "--tp", "2"]),
    ("gemma3-27b", ["google/gemma-3-27b-it"]),
    ("llama70b-tp2", ["meta-llama/Llama-3.1-70B-Instruct", "--tp", "2"]),
    ("qwen3next-tp2", ["Qwen/Qwen3-Next-80B-A3B-Thinking", "--tp", "2"]),
    ("llama1b", ["meta-llama/Llama-3.2-1B-Instruct"]),
    ("nemotron-h-8b", ["nvidia/Nemotron-H-8B-Base-8K"]),  # session 35 calls 1-7: its config file, benchmarks/configs
    ("devstral-small-fp8", ["mistralai/Devstral-Small-2-24B-Instruct-2512"]),  # fp8 per-tensor weights (W8A8)
    ("devstral2-123b-tp2", ["mistralai/Devstral-2-123B-Instruct-2512", "--tp", "2"]),  # fp8, one rank of two
    ("glm47-flash", ["zai-org/GLM-4.7-Flash"]),  # MLA, sigmoid routing with a correction bias (session 37)
    ("llama4-scout-tp2", ["meta-llama/Llama-4-Scout-17B-16E-Instruct", "--tp", "2"]),  # top-1 on the input
    ("nemotron3-nano", ["benchmarks/configs/nvidia--NVIDIA-Nemotron-3-Nano-30B-A3B-BF16.json"]),  # Mamba-2 + MoE
    ("jamba-mini", ["benchmarks/configs/ai21labs--AI21-Jamba-1.5-Mini.json"]),  # Mamba-1 + MoE (session 39)
    ("jamba-mini-tp2", ["benchmarks/configs/ai21labs--AI21-Jamba-1.5-Mini.json", "--tp", "2"]),  # x_proj split
    ("dsv3-tp8", ["deepseek-ai/DeepSeek-V3", "--tp", "8"]),  # block-scaled fp8, one rank of eight (session 40)
    ("dsr1-tp8", ["deepseek-ai/DeepSeek-R1", "--tp", "8"]),
    # whole-projection q/k norms, rotary on 64 of 128, float32 router, block-scaled fp8, one rank of four (session 48)
    ("minimax-m27-tp4", ["MiniMaxAI/MiniMax-M2.7", "--tp", "4"]),
]
PER_RUN_S = 150


def main(argv):
    out = os.environ.get("OUT", "/tmp/kvplan-verify")
    os.makedirs(out, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1", "COLUMNS": "100",
           "PYTHONPATH": os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1", "NVSHMEM_DISABLE_NVLS": "1"}
    only = next((a.split("=", 1)[1] for a in argv if a.startswith("--only=")), None)
    budget = float(next((a.split("=", 1)[1] for a in argv if a.startswith("--budget=")), "480"))
    stages = [a for a in argv if not a.startswith("--")] or ["tests", "models"]
    start = time.monotonic()
    summary = open(os.path.join(out, "summary.txt"), "a")

    def say(line):
        print(line, flush=True)
        summary.write(line + "\n")
        summary.flush()

    say(subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,memory.used,driver_version",
                        "--format=csv,noheader"], capture_output=True, text=True).stdout.strip())
    say(time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()))
    if "tests" in stages:
        t0 = time.monotonic()
        with open(os.path.join(out, "pytest.txt"), "w") as log:
            rc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                                 "tests/test_verify_gpu.py", "tests/test_deltanet_step.py", "tests/test_mamba_step.py"],
                                stdout=log, stderr=subprocess.STDOUT, env=env,
                                timeout=240).returncode
        say(f"pytest tests/test_verify_gpu.py tests/test_deltanet_step.py tests/test_mamba_step.py rc={rc} "
            f"{time.monotonic() - t0:.0f}s")
    if "models" in stages:
        names = only.split(",") if only else [n for n, _ in RUNS]
        with open(os.path.join(out, "results.jsonl"), "a") as results, \
                open(os.path.join(out, "progress.txt"), "a") as progress:
            for name, args in RUNS:
                if name not in names:
                    continue
                left = budget - (time.monotonic() - start)
                if left < 60:
                    say(f"{name}: skipped ({left:.0f} s of the budget left)")
                    continue
                cmd = [sys.executable, "-m", "kvplan", "verify", *args, "--format", "json"]
                t0 = time.monotonic()
                try:
                    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=min(PER_RUN_S, left))
                    rc, stdout, stderr = p.returncode, p.stdout, p.stderr
                except subprocess.TimeoutExpired as exc:
                    rc, stdout = "timeout", ""
                    stderr = (exc.stderr or b"").decode(errors="replace") if isinstance(exc.stderr, bytes) else \
                        (exc.stderr or "")
                wall = time.monotonic() - t0
                progress.write(f"==== {name}: kvplan verify {' '.join(args)} (rc {rc}, {wall:.0f} s)\n{stderr}\n")
                progress.flush()
                try:
                    result = json.loads(stdout) if stdout.strip() else None
                except json.JSONDecodeError:
                    result = None
                results.write(json.dumps({"name": name, "args": args, "rc": rc, "wall_s": wall, "result": result,
                                          "stderr_tail": stderr[-3000:]}) + "\n")
                results.flush()
                ok = result["verdict"]["ok"] if result else None
                say(f"{name}: rc={rc} wall={wall:.0f}s ok={ok} {stderr.strip().splitlines()[-1][:200] if stderr.strip() else ''}")
    say(f"total {time.monotonic() - start:.0f}s")


if __name__ == "__main__":
    main(sys.argv[1:])
