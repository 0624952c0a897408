"""Run-time compilation of the bundled CUDA source with NVRTC (through ``cuda.core``).

Needs no GPU: ``compile_all(archs=("sm_80", "sm_89", "sm_90"))`` builds every instantiation, which
is what CI does. Compiled cubins are cached on disk, keyed by source hash, options, arch and the
NVRTC version, in ``$KVPLAN_CACHE_DIR`` (default ``~/.cache/kvplan/kernels``); writes are atomic
(temporary file + ``os.replace``), so concurrent processes never see half a file.

Nothing here imports torch.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

SOURCE_PATH = Path(__file__).with_name("paged_decode.cu")

# name -> macro value; the kernel computes fp8 caches on fp16 tensor cores
Q_DTYPES = {"float16": 0, "bfloat16": 1}
KV_DTYPES = {"float16": 0, "bfloat16": 1, "float8_e4m3fn": 2}
HEAD_DIMS = (64, 128, 256)
MAX_GROUP = 128
DEFAULT_ARCHS = ("sm_80", "sm_89", "sm_90")


class NVRTCUnavailableError(RuntimeError):
    """cuda.core, the NVRTC library or the CUDA headers cannot be found."""


class KernelCompileError(RuntimeError):
    """NVRTC rejected the kernel source (the message carries NVRTC's log)."""


@dataclass(frozen=True)
class KernelConfig:
    """One compiled instantiation. Everything else (G, HT, NWS, STAGES, splits) is a launch argument."""

    q_dtype: str  # "float16" | "bfloat16"
    kv_dtype: str  # "float16" | "bfloat16" | "float8_e4m3fn"
    head_dim: int  # 64 | 128 | 256
    heads_per_warp: int  # 8 | 16
    max_warps: int  # 8 | 16 (launch bounds)
    l2_prefetch: int = 2  # cp.async L2 prefetch hint: 0 none, 1 = 128 B, 2 = 256 B
    k_coalesced: int = 1  # 1: K copied as whole rows (see paged_decode.cu)
    bulk: int = 0  # 1: Hopper cp.async.bulk rows + mbarriers instead of the cp.async ring (sm_90 only)
    trace: int = 0  # 1: per-CTA timeline into the trace buffer (benchmarks)
    early_page: int = 1  # 1: first page ids loaded together with seqlens

    def macros(self) -> list[tuple[str, str]]:
        return [
            ("KVP_QT", str(Q_DTYPES[self.q_dtype])),
            ("KVP_KVT", str(KV_DTYPES[self.kv_dtype])),
            ("KVP_D", str(self.head_dim)),
            ("KVP_HPW", str(self.heads_per_warp)),
            ("KVP_MAXW", str(self.max_warps)),
            ("KVP_L2PF", str(self.l2_prefetch)),
            ("KVP_KCOAL", str(self.k_coalesced)),
            ("KVP_BULK", str(self.bulk)),
            ("KVP_TRACE", str(self.trace)),
            ("KVP_EARLY_PAGE", str(self.early_page)),
        ]

    @property
    def name(self) -> str:
        return (f"decode_q{self.q_dtype}_kv{self.kv_dtype}_d{self.head_dim}_h{self.heads_per_warp}"
                f"_w{self.max_warps}_p{self.l2_prefetch}_k{self.k_coalesced}" + ("_bulk" if self.bulk else "")
                + ("_trace" if self.trace else "") + ("" if self.early_page else "_late_page"))


@dataclass(frozen=True)
class LaunchShape:
    """Warp layout of one CTA for a group of ``G`` query heads per KV head."""

    heads_per_warp: int
    head_tiles: int  # warps sharing one token slice (HT)
    max_warps: int


def dtype_pairs() -> list[tuple[str, str]]:
    """(q dtype, kv dtype) pairs the kernel supports: 16-bit caches match q; fp8 takes either."""
    return [("float16", "float16"), ("bfloat16", "bfloat16"), ("float16", "float8_e4m3fn"), ("bfloat16", "float8_e4m3fn")]


def launch_shape(group: int, head_dim: int) -> LaunchShape:
    """Heads per warp and head tiles for ``group`` query heads per KV head (1..128)."""
    if not 1 <= group <= MAX_GROUP:
        raise ValueError(f"query heads per KV head must be 1..{MAX_GROUP}, got {group}")
    # 16 heads per warp doubles the q and accumulator registers: too many at head_dim 256
    hpw = 8 if (group <= 8 or head_dim >= 256) else 16
    tiles = 1
    while tiles * hpw < group:
        tiles *= 2
    return LaunchShape(hpw, tiles, 16 if tiles > 8 else 8)


BULK_ARCHS = ("sm_90",)  # archs on which the bulk-copy variant may be selected


def bulk_eligible(kv_dtype: str, head_dim: int, head_tiles: int) -> bool:
    """Shapes the bulk-copy variant handles: one head tile per token slice, rows of 128*n bytes."""
    rowb = head_dim * (1 if kv_dtype == "float8_e4m3fn" else 2)
    return head_tiles == 1 and rowb % 128 == 0


def all_configs(arch: str | None = None) -> list[KernelConfig]:
    """Every instantiation a supported call can need (on ``arch``: the bulk variants are sm_90 only)."""
    seen: dict[KernelConfig, None] = {}
    for qd, kvd in dtype_pairs():
        for d in HEAD_DIMS:
            for g in range(1, MAX_GROUP + 1):
                s = launch_shape(g, d)
                seen[KernelConfig(qd, kvd, d, s.heads_per_warp, s.max_warps)] = None
                if arch in BULK_ARCHS and bulk_eligible(kvd, d, s.head_tiles):
                    seen[KernelConfig(qd, kvd, d, s.heads_per_warp, s.max_warps, bulk=1)] = None
    return list(seen)


# ---------------------------------------------------------------------------------------------
# NVRTC plumbing


def _import_cuda_core():
    try:
        import cuda.core as cc  # noqa: F401

        if not hasattr(cc, "Program"):
            import cuda.core.experimental as cc  # older releases
        return cc
    except Exception as exc:  # ImportError, or a broken cuda-bindings install
        raise NVRTCUnavailableError(
            f"cuda.core is not importable ({exc}); install 'cuda-core' and 'cuda-bindings'"
        ) from exc


_include_lock = threading.Lock()
_include_dir: str | None = None


def cuda_include_dir() -> str:
    """Directory holding cuda_fp16.h / cuda_bf16.h / cuda_fp8.h (CUDA runtime wheel via cuda.pathfinder)."""
    global _include_dir
    with _include_lock:
        if _include_dir is not None:
            return _include_dir
        candidates: list[str] = []
        try:
            import cuda.pathfinder as pf

            for lib in ("cudart", "nvrtc"):
                try:
                    found = pf.find_nvidia_header_directory(lib)
                except Exception:
                    found = None
                if found:
                    candidates.append(str(found))
        except ImportError:
            pass
        for env in ("CUDA_HOME", "CUDA_PATH"):
            if os.environ.get(env):
                candidates.append(os.path.join(os.environ[env], "include"))
        candidates.append("/usr/local/cuda/include")
        for c in candidates:
            if os.path.isfile(os.path.join(c, "cuda_fp8.h")) and os.path.isfile(os.path.join(c, "cuda_bf16.h")):
                _include_dir = c
                return c
        raise NVRTCUnavailableError(
            "CUDA headers (cuda_fp8.h, cuda_bf16.h) not found; install 'nvidia-cuda-runtime' "
            "(pip) and 'cuda-pathfinder', or set CUDA_HOME"
        )


def nvrtc_version() -> tuple[int, int]:
    """NVRTC (major, minor); raises NVRTCUnavailableError when the library cannot be loaded."""
    try:
        from cuda.bindings import nvrtc
    except Exception as exc:
        raise NVRTCUnavailableError(f"cuda.bindings.nvrtc is not importable ({exc})") from exc
    try:
        err, major, minor = nvrtc.nvrtcVersion()
    except Exception as exc:  # the shared library itself is missing
        raise NVRTCUnavailableError(
            f"the NVRTC library cannot be loaded ({exc}); install 'nvidia-cuda-nvrtc'"
        ) from exc
    if int(err) != 0:
        raise NVRTCUnavailableError(f"nvrtcVersion failed: {err}")
    return int(major), int(minor)


def cache_dir() -> Path:
    env = os.environ.get("KVPLAN_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "kvplan" / "kernels"


def _source() -> str:
    return SOURCE_PATH.read_text()


def _options(config: KernelConfig, arch: str) -> list[str]:
    opts = [f"-arch={arch}", "-std=c++17", "--use_fast_math"]
    opts += [f"-D{k}={v}" for k, v in config.macros()]
    return opts


def cache_key(config: KernelConfig, arch: str, source: str | None = None) -> str:
    src = _source() if source is None else source
    major, minor = nvrtc_version()
    h = hashlib.sha256()
    h.update(src.encode())
    h.update("\0".join(_options(config, arch)).encode())
    h.update(f"\0nvrtc{major}.{minor}\0{arch}".encode())
    return h.hexdigest()[:32]


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class _Log:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, s) -> None:
        self.parts.append(s if isinstance(s, str) else str(s))

    def text(self) -> str:
        return "".join(self.parts).strip()


def compile_cubin(config: KernelConfig, arch: str, *, use_cache: bool = True, verbose: bool = False) -> bytes:
    """Compile one instantiation for ``arch`` (e.g. "sm_90") and return the cubin bytes.

    Looks in the disk cache first. ``verbose=True`` adds ptxas's register/spill report to the
    returned log (see :func:`compile_report`) and bypasses the cache.
    """
    source = _source()
    key = cache_key(config, arch, source)
    path = cache_dir() / f"{config.name}_{arch}_{key}.cubin"
    if use_cache and not verbose:
        try:
            data = path.read_bytes()
            if data:
                return data
        except OSError:
            pass
    data, _ = _nvrtc_compile(config, arch, source, verbose)
    if use_cache:
        try:
            _write_atomic(path, data)
        except OSError:
            pass  # a read-only cache only costs a recompile
    return data


def compile_report(config: KernelConfig, arch: str) -> str:
    """ptxas's resource report (registers, spills, shared memory) for one instantiation."""
    _, log = _nvrtc_compile(config, arch, _source(), True)
    return log


def _nvrtc_compile(config: KernelConfig, arch: str, source: str, verbose: bool) -> tuple[bytes, str]:
    cc = _import_cuda_core()
    nvrtc_version()
    inc = cuda_include_dir()
    kwargs = dict(
        name=config.name,
        arch=arch,
        std="c++17",
        use_fast_math=True,
        include_path=[inc],
        define_macro=config.macros(),
    )
    if verbose:
        kwargs["ptxas_options"] = ["-v"]
        # a unique define defeats any compile cache below us, which would return no ptxas report
        kwargs["define_macro"] = config.macros() + [("KVP_REPORT_NONCE", os.urandom(6).hex())]
    opts = cc.ProgramOptions(**kwargs)
    log = _Log()
    try:
        prog = cc.Program(source, "c++", options=opts)
        try:
            obj = prog.compile("cubin", logs=log)
        finally:
            close = getattr(prog, "close", None)
            if close:
                close()
    except NVRTCUnavailableError:
        raise
    except Exception as exc:
        msg = log.text()
        raise KernelCompileError(f"NVRTC failed for {config.name} ({arch}): {exc}\n{msg}") from exc
    return bytes(obj.code), log.text()


def _compile_job(job) -> tuple[str, str, int, str]:
    config, arch, use_cache, report = job
    if report:
        data, log = _nvrtc_compile(config, arch, _source(), True)
        return config.name, arch, len(data), log
    return config.name, arch, len(compile_cubin(config, arch, use_cache=use_cache)), ""


def compile_all(archs=DEFAULT_ARCHS, configs=None, *, use_cache: bool = False, workers: int | None = None,
                reports: bool = False) -> dict:
    """Compile every instantiation for every arch in ``archs``; raise on the first failure.

    Returns ``{(config.name, arch): cubin_size_bytes}``, or with ``reports=True``
    ``{(config.name, arch): (cubin_size_bytes, ptxas_report)}`` (no cache then). Needs NVRTC but no GPU
    (used by CI). Runs in ``workers`` processes (default: one per CPU, at most 8): NVRTC holds the GIL.
    """
    if configs is None:
        jobs = [(c, a, use_cache, reports) for a in archs for c in all_configs(a)]
    else:
        jobs = [(c, a, use_cache, reports) for a in archs for c in configs]
    nvrtc_version()
    cuda_include_dir()
    if workers is None:
        workers = min(len(jobs), os.cpu_count() or 1, 8)
    if workers <= 1 or len(jobs) <= 1:
        done = [_compile_job(job) for job in jobs]
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawn: never fork a process that may hold a CUDA context
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as ex:
            done = list(ex.map(_compile_job, jobs))
    if reports:
        return {(name, arch): (size, log) for name, arch, size, log in done}
    return {(name, arch): size for name, arch, size, _ in done}


if __name__ == "__main__":  # python -m kvplan.kernels.build [arch ...] : compile everything, print a summary
    import sys
    import time

    archs = tuple(sys.argv[1:]) or DEFAULT_ARCHS
    t0 = time.perf_counter()
    res = compile_all(archs)
    print(f"compiled {len(res)} cubins for {', '.join(archs)} in {time.perf_counter() - t0:.1f} s")
