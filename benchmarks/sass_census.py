"""Instruction census of the decode kernel's main loop, on this machine (no GPU): compiles one instantiation with
NVRTC, disassembles it and counts the SASS of the loop that holds the last MMA, by opcode. A per-step instruction
budget is what bounds the MQA-like shapes (H200 ncu, session 10: issue-bound, two warps per scheduler), so compare
variants here before spending device time on them.

    python benchmarks/sass_census.py [q=bfloat16] [kv=bfloat16] [d=128] [hpw=16] [bulk=1] [lazy=1] [hm=0] [run=0] [maxreg=0]
                                     [arch=sm_90]

Needs cuobjdump and nvdisasm (CUDA toolkit, or `pip download nvidia-cuda-cuobjdump nvidia-cuda-nvdisasm` and their
bin directory on PATH)."""

import collections
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kvplan.kernels import build, configs  # noqa: E402

SHOWN = ("HMMA", "LDS", "IMAD", "MOV", "SHFL", "MUFU", "FMUL", "FADD", "FMNMX", "FSEL", "PRMT", "F2FP", "MOVM",
         "UBLKCP", "SYNCS", "BAR", "BRA", "LDL", "STL")


def loop_census(sass: str, function: str = "kvp_decode") -> tuple[int, collections.Counter]:
    """(instructions, opcode counts) of the innermost loop around ``function``'s last HMMA (the backward branch after
    it and its target)."""
    body = sass.split(f"Function : {function}", 1)[1].split("Function :", 1)[0]
    rows = [ln for ln in body.splitlines() if re.match(r"\s+/\*[0-9a-f]+\*/\s+\S", ln)]
    addr = [int(re.search(r"/\*([0-9a-f]+)\*/", ln).group(1), 16) for ln in rows]
    last = max(i for i, ln in enumerate(rows) if "HMMA" in ln)
    for end in range(last, len(rows)):
        m = re.search(r"BRA (0x[0-9a-f]+)", rows[end])
        if m and int(m.group(1), 16) < addr[end]:
            start = addr.index(int(m.group(1), 16))
            break
    else:
        raise SystemExit("no loop around the last HMMA")
    ops = collections.Counter()
    for ln in rows[start:end + 1]:
        words = re.sub(r"/\*[0-9a-f]+\*/", "", ln).split(";")[0].split()
        op = words[1] if words[0].startswith("@") else words[0]
        ops[op.split(".")[0]] += 1
    return end + 1 - start, ops


def main(argv):
    kw = dict(a.split("=", 1) for a in argv)
    config = configs.KernelConfig(kw.get("q", "bfloat16"), kw.get("kv", "bfloat16"), int(kw.get("d", 128)),
                                  int(kw.get("hpw", 16)), 8, bulk=int(kw.get("bulk", 1)),
                                  lazy_rescale=int(kw.get("lazy", 1)), heads_in_m=int(kw.get("hm", 0)),
                                  page_runs=int(kw.get("run", 0)), max_regs=int(kw.get("maxreg", 0)))
    tool = shutil.which("cuobjdump")
    if tool is None or shutil.which("nvdisasm") is None:
        raise SystemExit("cuobjdump and nvdisasm must be on PATH (see this script's docstring)")
    cubin, report = build.compile_entry(config, kw.get("arch", "sm_90"))
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        sass = subprocess.run([tool, "-sass", f.name], check=True, capture_output=True, text=True).stdout
    n, ops = loop_census(sass)
    regs = re.findall(r"Used (\d+) registers", report.split("kvp_decode", 1)[1])[0]
    print(f"{config.name}: {regs} registers, main loop {n} instructions: "
          + ", ".join(f"{k} {ops[k]}" for k in SHOWN if ops[k]))


if __name__ == "__main__":
    main(sys.argv[1:])
