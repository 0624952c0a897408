"""Shared-memory loads still in flight when a kernel releases a ring stage, read from its SASS (nvdisasm -hex).

A consumer releases a stage with a plain mbarrier arrive (SASS `SYNCS.ARRIVE.TRANS64.A1T0`); the producer may then
refill it. The arrive does not wait for the thread's own outstanding shared loads (LDS / LDSM), and ptxas may place
it above the instructions that first read their registers: the stage can then be overwritten before it was read
(the streaming GEMV's e4m3 kernel, H200, session 36: wrong sums). Each instruction's control bits name the
scoreboard it sets when its result lands (bits 110-112; 7 = none) and the scoreboards it waits on first (bits
116-121): a load whose scoreboard no instruction waited on between it and the arrive is in flight there.

The scan is linear in address order from each mbarrier wait (`SYNCS.PHASECHK`, a stage becoming ready) to the
next arrive: branches are not followed, which fits these kernels' straight-line stage bodies."""

from __future__ import annotations

import bisect
import glob
import os
import re
import shutil
import subprocess

_LINE = re.compile(r"/\*([0-9a-f]{4,})\*/\s+(.*?)\s*;\s*/\* (0x[0-9a-f]+) \*/")
_HIGH = re.compile(r"^\s*/\* (0x[0-9a-f]+) \*/\s*$")


def nvdisasm():
    """The nvdisasm binary (PATH, or the nvidia-cuda-nvdisasm wheel), or None."""
    found = shutil.which("nvdisasm")
    if found:
        return found
    import importlib.util

    spec = importlib.util.find_spec("nvidia")
    for root in (spec.submodule_search_locations or []) if spec else []:
        for path in glob.glob(os.path.join(root, "cu*", "bin", "nvdisasm")):
            return path
    return None


def disassemble(cubin: bytes, tool: str, workdir: str) -> str:
    path = os.path.join(workdir, "k.cubin")
    with open(path, "wb") as f:
        f.write(cubin)
    return subprocess.run([tool, "-hex", "-c", path], capture_output=True, text=True, check=True).stdout


def kernels_of(cubins: list, tool: str, workdir: str, arch: str = "SM90") -> list:
    """instructions() of every kernel of every cubin, [{kernel: code}] in the cubins' order, from one nvdisasm run:
    a run costs ~0.5 s of CPU before it reads a byte (a run per cubin was most of the test's time), so the kernels'
    code sections go in as one raw instruction binary (-b), each kernel's addresses then taken back to its own.
    The encodings, hence each instruction's text, scoreboard and wait bits, are the cubin's; only a branch target
    prints as an address where the cubin's symbols give it a label (the scan follows no branch)."""
    spans, blob = [], bytearray()
    for i, cubin in enumerate(cubins):
        for name, code in elf_code_sections(cubin).items():
            assert len(code) % 16 == 0, (name, len(code))  # whole 128-bit instructions: the next kernel aligns
            spans.append((i, name, len(blob), len(code)))
            blob += code
    path = os.path.join(workdir, "kernels.bin")
    with open(path, "wb") as f:
        f.write(blob)
    listing = subprocess.run([tool, "-hex", "-b", arch, path], capture_output=True, text=True, check=True).stdout
    code = instructions(".text.all:\n" + listing)["all"]
    addresses = [a for a, *_ in code]
    out: list = [{} for _ in cubins]
    for i, name, start, size in spans:
        first, end = bisect.bisect_left(addresses, start), bisect.bisect_left(addresses, start + size)
        out[i][name] = [(a - start, *rest) for a, *rest in code[first:end]]
    return out


def instructions(sass: str) -> dict:
    """function -> [(address, text, scoreboard set, wait mask)]."""
    out: dict = {}
    current = None
    lines = sass.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(".text."):
            current = out.setdefault(line[len(".text."):].rstrip(":"), [])
            continue
        m = _LINE.search(line)
        if current is None or not m or i + 1 >= len(lines):
            continue
        high = _HIGH.match(lines[i + 1])
        if not high:
            continue
        control = int(high.group(1), 16) >> 41
        current.append((int(m.group(1), 16), m.group(2), (control >> 5) & 7, (control >> 11) & 0x3F))
    return out


def loads_in_flight_at_releases(code: list) -> list:
    """[(arrive address, [load texts in flight])] for each consumer release that has any."""
    found, pending = [], {}
    for address, text, sets, waits in code:
        op = re.sub(r"^@!?U?P\w+\s+", "", text)
        for board in range(6):
            if waits >> board & 1:
                pending.pop(board, None)
        if op.startswith("SYNCS.PHASECHK"):
            pending = {}
        elif op.startswith("SYNCS.ARRIVE.TRANS64.A1T0"):
            if pending:
                found.append((address, [f"{a:04x} {t}" for a, t in pending.values()]))
            pending = {}
        elif re.match(r"LDS(M)?\b|LDS\.", op) and sets != 7:
            pending[sets] = (address, text)
    return found


def _section_headers(blob: bytes) -> dict:
    """{section name: (file offset, size)} of an ELF64 file (a cubin)."""
    import struct

    shoff = struct.unpack_from("<Q", blob, 0x28)[0]
    entsize, count, names_at = struct.unpack_from("<HHH", blob, 0x3A)
    heads = [struct.unpack_from("<IIQQQQ", blob, shoff + i * entsize) for i in range(count)]
    names = blob[heads[names_at][4]:heads[names_at][4] + heads[names_at][5]]
    return {names[h[0]:names.index(b"\0", h[0])].decode(): (h[4], h[5]) for h in heads}


def elf_sections(blob: bytes) -> dict:
    """{section name: size} of an ELF64 file (a cubin): the static shared memory ptxas gave each kernel
    (.nv.shared.NAME) without a GPU."""
    return {name: size for name, (_, size) in _section_headers(blob).items()}


def elf_code_sections(blob: bytes) -> dict:
    """{kernel: its instructions' bytes} of a cubin (the .text.KERNEL sections)."""
    return {name[len(".text."):]: blob[at:at + size] for name, (at, size) in _section_headers(blob).items()
            if name.startswith(".text.")}
