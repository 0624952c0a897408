"""Run-time compilation of the bundled CUDA sources with NVRTC (through ``cuda.core``).

One instantiation at a time (what the run-time loader asks for); :mod:`kvplan.kernels.batch` compiles all of
them (CI, no GPU needed). Cubins are cached on disk (:mod:`kvplan.kernels.cache`), keyed by the hash of the
sources, the options (limits included), the arch and the NVRTC version, together with ptxas's resource report,
so a warm cache answers every question without compiling.

Nothing here imports torch.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading

from . import cache
from .configs import (  # noqa: F401  (re-exported: the historical home of these names)
    BULK_ARCHS,
    DEFAULT_ARCHS,
    HERE,
    KV_DTYPES,
    PDL_ARCHS,
    Q_DTYPES,
    KernelConfig,
    LaunchShape,
    MLAConfig,
    ReadProbeConfig,
    all_configs,
    all_deltanet_configs,
    all_mla_configs,
    bulk_eligible,
    dtype_pairs,
    launch_shape,
)
from .limits import HEAD_DIMS, MAX_GROUP  # noqa: F401

SOURCE_PATH = HERE / "paged_decode.cu"
cache_dir = cache.cache_dir


class NVRTCUnavailableError(RuntimeError):
    """cuda.core, the NVRTC library or the CUDA headers cannot be found."""


class KernelCompileError(RuntimeError):
    """NVRTC rejected the kernel source (the message carries NVRTC's log)."""


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


_nvrtc_version: tuple[int, int] | None = None


def nvrtc_version() -> tuple[int, int]:
    """NVRTC (major, minor); raises NVRTCUnavailableError when the library cannot be loaded."""
    global _nvrtc_version
    if _nvrtc_version is not None:
        return _nvrtc_version
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
    _nvrtc_version = (int(major), int(minor))
    return _nvrtc_version


def supported_archs() -> tuple[int, ...]:
    """The compute capabilities this NVRTC compiles for (nvrtcGetSupportedArchs: 90 for sm_90); () where the library
    does not say (cuda-bindings without the call)."""
    try:
        from cuda.bindings import nvrtc

        err, archs = nvrtc.nvrtcGetSupportedArchs()
    except Exception:
        return ()
    return tuple(int(a) for a in archs) if int(err) == 0 else ()


def arch_unsupported(major: int, minor: int) -> str | None:
    """Why this NVRTC cannot compile for a GPU of compute capability (major, minor) (an NVRTC older than the GPU:
    CUDA 12.8 is the first to know sm_120), None where it can or does not say. A pure check of the library's list."""
    archs = supported_archs()
    if not archs or major * 10 + minor in archs:
        return None
    nv_major, nv_minor = nvrtc_version()
    return (f"NVRTC {nv_major}.{nv_minor} does not compile for this GPU's sm_{major}{minor} (it compiles for "
            f"sm_{min(archs)} to sm_{max(archs)}); install an nvidia-cuda-nvrtc release that lists sm_{major}{minor}")


_LOCAL_INCLUDE = re.compile(r'^#include "([A-Za-z0-9_]+\.cuh)"$', re.M)


def _source(config=None) -> str:
    """The CUDA source of ``config`` with the package's headers inlined, each once (NVRTC gets one
    self-contained text, and the kernel cache hashes all of it)."""
    name = getattr(config, "source", None) or SOURCE_PATH.name
    path = SOURCE_PATH if name == SOURCE_PATH.name else HERE / name
    return _inline(path.read_text(), set())


def _inline(text: str, seen: set) -> str:
    def one(match) -> str:
        header = match.group(1)
        if header in seen:
            return ""
        seen.add(header)
        return _inline((HERE / header).read_text(), seen)

    return _LOCAL_INCLUDE.sub(one, text)


def _lineinfo() -> bool:
    """KVPLAN_NVRTC_LINEINFO=1: cubins carry source lines (compute-sanitizer reports file:line); own cache keys."""
    return os.environ.get("KVPLAN_NVRTC_LINEINFO") == "1"


def _options(config, arch: str) -> list[str]:
    opts = [f"-arch={arch}", "-std=c++17", "--use_fast_math"] + (["-lineinfo"] if _lineinfo() else [])
    opts += [f"-D{k}={v}" for k, v in config.macros()]
    return opts


def cache_key(config, arch: str, source: str | None = None) -> str:
    src = _source(config) if source is None else source
    major, minor = nvrtc_version()
    h = hashlib.sha256()
    h.update(src.encode())
    h.update("\0".join(_options(config, arch)).encode())
    h.update(f"\0nvrtc{major}.{minor}\0{arch}".encode())
    return h.hexdigest()[:32]


def cache_path(config, arch: str, source: str | None = None):
    return cache.cache_dir() / f"{config.name}_{arch}_{cache_key(config, arch, source)}.cubin"


class _Log:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, s) -> None:
        self.parts.append(s if isinstance(s, str) else str(s))

    def text(self) -> str:
        return "".join(self.parts).strip()


def target_arch(config, arch: str) -> str:
    """What NVRTC compiles ``config`` for on a GPU of ``arch``: the arch-specific target ("sm_90a") for a config
    that asks for it (``arch_suffix``: warpgroup MMAs exist on no later arch), else ``arch``."""
    return arch + getattr(config, "arch_suffix", "")


def compile_entry(config, arch: str, *, use_cache: bool = True, pch: str | None = None) -> tuple[bytes, str]:
    """(cubin, ptxas resource report) of one instantiation for a GPU of ``arch`` (compiled for
    :func:`target_arch`), from the cache when intact.

    ``pch``: a precompiled header of :data:`PCH_PRELUDE` for ``arch`` (:func:`create_pch`); it saves about half
    the front end and gives byte-identical cubins, so it is not part of the cache key.
    """
    source = _source(config)
    arch = target_arch(config, arch)
    path = cache_path(config, arch, source)
    if use_cache:
        entry = cache.load(path)
        if entry is not None:
            return entry
    data, report = _nvrtc_compile(config, arch, source, pch)
    if use_cache:
        try:
            cache.store(path, data, report)
        except OSError:
            pass  # a read-only cache only costs a recompile
    return data, report


def compile_cubin(config, arch: str, *, use_cache: bool = True) -> bytes:
    """Compile one instantiation for ``arch`` (e.g. "sm_90") and return the cubin bytes."""
    return compile_entry(config, arch, use_cache=use_cache)[0]


def compile_report(config, arch: str) -> str:
    """ptxas's resource report (registers, spills, shared memory) for one instantiation."""
    return compile_entry(config, arch)[1]


# The CUDA headers every kernel source starts with (kvp_common.cuh): parsing them is ~85% of NVRTC's front end.
PCH_PRELUDE = "#include <cuda_fp16.h>\n#include <cuda_bf16.h>\n#include <cuda_fp8.h>\n"


def _program_options(cc, config, arch: str, **extra):
    if _lineinfo():
        extra.setdefault("lineinfo", True)
    return cc.ProgramOptions(name=getattr(config, "name", "kvp"), arch=arch, std="c++17", use_fast_math=True,
                             include_path=[cuda_include_dir()], **extra)


def program_text(config, source: str, pch: str | None = None):
    """(text, -D macros or None, extra options) for NVRTC. The text starts with the CUDA header includes and
    defines the ``KVP_*`` macros itself, after them (the CUDA headers never read them; cubins are byte-identical
    to passing them as -D), so that a precompiled header of those includes (``pch``) applies to every
    instantiation. Other macros stay -D options, and then no header is precompiled."""
    macros = config.macros()
    if not all(k.startswith("KVP_") for k, _ in macros):
        return source, macros or None, {}
    defines = "".join(f"#define {k} {v}\n" for k, v in macros)
    return PCH_PRELUDE + defines + source, None, ({"use_pch": pch} if pch else {})


def create_pch(arch: str, path: str, *, lto: bool = False) -> bool:
    """Write a precompiled header of PCH_PRELUDE for ``arch`` (``lto``: for -dlto compiles) at ``path``."""
    cc = _import_cuda_core()
    extra = {"link_time_optimization": True} if lto else {}
    try:
        prog = cc.Program(PCH_PRELUDE, "c++", options=_program_options(cc, None, arch, create_pch=path, **extra))
        try:
            prog.compile("ltoir" if lto else "cubin")  # ("ptx" asks cuda.core for the driver)
        finally:
            close = getattr(prog, "close", None)
            if close:
                close()
    except Exception:
        return False
    return os.path.isfile(path)


def _nvrtc_compile(config, arch: str, source: str, pch: str | None = None) -> tuple[bytes, str]:
    cc = _import_cuda_core()
    nvrtc_version()
    text, macros, extra = program_text(config, source, pch)
    opts = _program_options(cc, config, arch, define_macro=macros,
                            ptxas_options=["-v"], **extra)  # the resource report is kept with the cubin
    log = _Log()
    try:
        prog = cc.Program(text, "c++", options=opts)
        try:
            obj = prog.compile("cubin", logs=log)
        finally:
            close = getattr(prog, "close", None)
            if close:
                close()
    except NVRTCUnavailableError:
        raise
    except Exception as exc:
        raise KernelCompileError(f"NVRTC failed for {config.name} ({arch}): {exc}\n{log.text()}") from exc
    return bytes(obj.code), log.text()
