"""The on-disk cubin cache: one file per (kernel, arch, source hash, options, NVRTC version).

Each entry carries the SHA-256 of its cubin and is checked when read: a mismatch (a planted or damaged
file) is recompiled, said once on stderr. Writes go to a temporary file that is renamed into place;
temporary files are named ``*.tmp`` and any older than :data:`STALE_TMP_S` (left by a killed process)
are removed by the next write. Nothing here imports torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

MAGIC = b"KVPLAN-CUBIN-1\n"
STALE_TMP_S = 300.0  # a write takes well under a second; older temporaries belong to dead processes
_warned: set[str] = set()


def cache_dir() -> Path:
    env = os.environ.get("KVPLAN_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "kvplan" / "kernels"


def encode(cubin: bytes, report: str = "") -> bytes:
    header = {"sha256": hashlib.sha256(cubin).hexdigest(), "size": len(cubin), "report": report}
    return MAGIC + json.dumps(header).encode() + b"\n" + cubin


def decode(data: bytes) -> tuple[bytes, str] | None:
    """(cubin, ptxas report) when ``data`` is an intact entry, else None."""
    if not data.startswith(MAGIC):
        return None
    end = data.find(b"\n", len(MAGIC))
    if end < 0:
        return None
    try:
        header = json.loads(data[len(MAGIC):end])
        cubin = data[end + 1:]
        ok = len(cubin) == int(header["size"]) and hashlib.sha256(cubin).hexdigest() == header["sha256"]
        report = str(header.get("report", ""))
    except (ValueError, KeyError, TypeError):
        return None
    return (cubin, report) if ok and cubin else None


def load(path: Path) -> tuple[bytes, str] | None:
    """The entry at ``path``, or None when missing; a damaged entry is reported once and ignored."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    entry = decode(data)
    if entry is None and path.name not in _warned:
        _warned.add(path.name)
        print(f"kvplan: kernel cache entry {path} failed its integrity check; recompiling it", file=sys.stderr)
    return entry


def store(path: Path, cubin: bytes, report: str = "") -> None:
    """Atomic write (temporary file + rename); stale temporaries of earlier runs are removed first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_tmp(path.parent)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(encode(cubin, report))
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def remove_stale_tmp(folder: Path, older_than_s: float = STALE_TMP_S) -> int:
    """Delete ``*.tmp`` files older than ``older_than_s`` in ``folder``; returns how many went."""
    now = time.time()
    n = 0
    try:
        candidates = list(folder.glob("*.tmp"))
    except OSError:
        return 0
    for p in candidates:
        try:
            if now - p.stat().st_mtime > older_than_s:
                p.unlink()
                n += 1
        except OSError:
            pass  # another process removed or renamed it
    return n
