"""One batched call on the GPU machine: environment, tests, sanitizers, benchmark vs FlashInfer.

    python benchmarks/kernel_device_run.py [env] [tests] [sanitize] [bench] [--quick] [--racecheck-each]

Run from the kvplan checkout, with the FlashInfer wheels in .peers there (carry it) or in ../../.peers.
FlashInfer's JIT modules and kvplan's cubins are built in the background first; the tests and the two
sanitizers then run side by side (correctness only), the benchmark alone at the end. Each step logs to
$OUT/<step>.log and has its own time limit; a failing step does not stop the others. The last lines
printed are a summary and the benchmark table.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(os.environ.get("OUT") or ROOT / "kernel_run")
OUT.mkdir(parents=True, exist_ok=True)
PY = sys.executable
# the FlashInfer wheels: $KVPLAN_PEERS, else .peers in the checkout, else two levels up (a .wt/<name> copy)
PEERS = Path(os.environ.get("KVPLAN_PEERS") or next(
    (p for p in (ROOT / ".peers", (ROOT / ".." / ".." / ".peers").resolve()) if p.is_dir()), ROOT / ".peers"))
ENV = dict(os.environ, PYTHONUNBUFFERED="1", KVPLAN_REQUIRE_NVRTC="1",
           KVPLAN_CACHE_DIR=os.environ.get("KVPLAN_CACHE_DIR", "/tmp/kvplan-kcache"),
           FLASHINFER_WORKSPACE_BASE="/tmp/fi_ws", TVM_FFI_CACHE_DIR="/tmp/fi_ws/tvm",
           PYTHONPATH=os.pathsep.join([str(ROOT), "/tmp/site", os.environ.get("PYTHONPATH", "")]))
T0 = time.time()


def start(cmd, log):
    f = open(OUT / log, "a")
    f.write(f"$ {cmd}\n")
    f.flush()
    return subprocess.Popen(cmd, shell=True, cwd=ROOT, env=ENV, stdout=f, stderr=subprocess.STDOUT), f, time.time()


def finish(p, timeout):
    proc, f, t0 = p
    try:
        rc = proc.wait(timeout=max(1, timeout))
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = "timeout"
    f.write(f"\n[rc={rc} in {time.time() - t0:.1f}s]\n")
    f.close()
    return rc


def tail(log, n):
    try:
        return "".join(open(OUT / log).readlines()[-n:])
    except OSError:
        return ""


def main():
    steps = [a for a in sys.argv[1:] if not a.startswith("--")]
    flags = [a for a in sys.argv[1:] if a.startswith("--")]
    summary = []
    bg = []
    if "bench" in steps and PEERS.is_dir() and list(PEERS.glob("*.whl")):
        rc = finish(start(f"{PY} -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade "
                          f"--target /tmp/site {PEERS}/*.whl", "env.log"), 120)
        summary.append(f"flashinfer wheels rc={rc}")
        specs = ["128:bfloat16:0", "128:bfloat16:1", "64:bfloat16:0", "64:bfloat16:1", "128:float8_e4m3fn:0",
                 "128:float8_e4m3fn:1", "mla"]
        for s in specs:
            bg.append(start(f"{PY} benchmarks/kernel_vs_flashinfer.py --fi-warm {s}", "fi_warm.log"))
    if "env" in steps:
        rc = finish(start("nvidia-smi -L; nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,power.draw "
                          f"--format=csv; {PY} -c 'import torch,cuda.core as c;print(torch.__version__, c.__version__)';"
                          f" {PY} -c 'from kvplan.kernels import build,kernel_backend;print(build.nvrtc_version(), "
                          "kernel_backend())'; which compute-sanitizer", "env.log"), 60)
        summary.append(f"env rc={rc}")
    # every default cubin for this GPU, 8 processes (the tests then load them from the cache)
    rc = finish(start(f"{PY} -m kvplan.kernels.batch sm_90", "env.log"), 120)
    summary.append(f"build rc={rc}: " + tail("env.log", 2).strip().replace("\n", " | "))
    par = []
    if "tests" in steps:
        par.append(("tests", start(f"{PY} -m pytest -q -p no:cacheprovider --durations=8 tests/test_kernel_gpu.py "
                                   "tests/test_kernel_mla_gpu.py tests/test_kernel_reference.py "
                                   "tests/test_kernel_mla_fragments.py tests/test_skinny_gpu.py "
                                   "tests/test_deltanet_step.py", "tests.log"), 330))
    if "sanitize" in steps:
        san = "compute-sanitizer --report-api-errors no --error-exitcode 1"
        par.append(("memcheck", start(f"{san} --tool memcheck {PY} benchmarks/kernel_memcheck.py", "memcheck.log"), 240))
        if "--racecheck-each" in flags:
            cmd = "; ".join(f"{san} --tool racecheck {PY} benchmarks/kernel_memcheck.py --only {i} || echo CASE_{i}_FAILED"
                            for i in range(34))  # 22 GQA + 12 MLA cases
        else:
            cmd = f"{san} --tool racecheck {PY} benchmarks/kernel_memcheck.py"
        par.append(("racecheck", start(cmd, "racecheck.log"), 300))
    for name, p, limit in par:
        rc = finish(p, limit - (time.time() - p[2]))
        summary.append(f"{name} rc={rc}: " + tail(f"{name}.log", 3).strip().replace("\n", " | ")[-300:])
    for p in bg:  # FlashInfer's JIT builds: done by now, or given until 4 minutes into the call
        finish(p, 240 - (time.time() - T0))
    if "bench" in steps:
        rc = finish(start(f"{PY} benchmarks/kernel_vs_flashinfer.py {' '.join(x for x in flags if x in ('--quick', '--sweep'))}",
                          "bench.log"), 330)
        summary.append(f"bench rc={rc}")
    print(f"total {time.time() - T0:.0f} s")
    print("\n".join(summary))
    if "bench" in steps:
        print(tail("bench.log", 75))


if __name__ == "__main__":
    main()
