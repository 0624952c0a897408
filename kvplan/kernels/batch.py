"""Compile many kernel instantiations at once (CI, cache warm-up) in a pool of processes; no GPU needed.

``compile_all(("sm_80", "sm_89", "sm_90"))`` compiles every instantiation that
:data:`kvplan.kernels.configs.INSTANTIATION_SETS` lists, each for each arch, with the same NVRTC call the run-time
loader makes (:func:`kvplan.kernels.build.compile_entry`), so the cubins land in the kernel cache.

Twins. An instantiation asked for two archs of one major version (sm_80 and sm_89) is compiled once, for the lower
one, when NVRTC's front end gives byte-identical output for both (its LTO IR, inline PTX included, equal except
the ``__CUDA_ARCH__`` field of the container header): the rest of the compile then sees exactly the input that
passed for the lower arch, and every PTX valid for sm_80 is valid for sm_89 (forward compatibility, what the
driver relies on to JIT sm_80 PTX there). The higher arch's cubin, which the run-time loader builds on such a
device, is then not built here. Instantiations whose code depends on the arch (fp8 conversions on sm_89) are
compiled for both (and not checked: :func:`twin_candidate`). Front-end output costs ~0.08 s against ~0.8 s for
a cubin (NOTES_kernel.md v11).

Nothing here imports torch.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass

from . import build, cache
from . import configs as kconfigs


@dataclass(frozen=True)
class Built:
    """What compile_all did for one (instantiation, arch)."""

    kind: str  # "cubin": compiled (or read intact from the cache); "twin": stands on ``twin_of``'s compile
    size: int  # cubin bytes (0 for a twin)
    report: str  # ptxas's resource report (for a twin: why it is one)
    twin_of: str | None = None  # the arch whose compile covers this one


def every_instantiation(archs=kconfigs.DEFAULT_ARCHS) -> list[tuple[object, str]]:
    """(config, arch) for every instantiation a default launch can need on each of ``archs``."""
    return [(c, a) for fn in kconfigs.INSTANTIATION_SETS for a in archs for c in fn(a)]


def arch_code(arch: str) -> int:
    """``__CUDA_ARCH__`` of ``arch``: "sm_89" -> 890."""
    m = re.fullmatch(r"(?:sm|compute)_(\d+)[a-z]?", arch)
    if not m:
        raise ValueError(f"arch must look like 'sm_89', got {arch!r}")
    return int(m.group(1)) * 10


def twin_base(arch: str, archs) -> str | None:
    """The lowest arch in ``archs`` of ``arch``'s major version when lower than ``arch`` (the twin candidate's base)."""
    same = [a for a in archs if arch_code(a) // 100 == arch_code(arch) // 100 and arch_code(a) < arch_code(arch)]
    return min(same, key=arch_code) if same else None


def front_end_ir(config, arch: str, source: str | None = None, pch: str | None = None) -> bytes:
    """NVRTC's front-end output (LTO IR, ``-dlto``) of ``config`` for ``arch``: no optimiser, no ptxas."""
    cc = build._import_cuda_core()
    text, macros, extra = build.program_text(config, build._source(config) if source is None else source, pch)
    opts = build._program_options(cc, config, arch, define_macro=macros, link_time_optimization=True, **extra)
    prog = cc.Program(text, "c++", options=opts)
    try:
        return bytes(prog.compile("ltoir").code)
    except Exception as exc:
        raise build.KernelCompileError(f"NVRTC failed for {config.name} ({arch}, front end): {exc}") from exc
    finally:
        close = getattr(prog, "close", None)
        if close:
            close()


def same_but_arch(a: bytes, b: bytes, code_a: int, code_b: int) -> bool:
    """``a`` and ``b`` are equal except one little-endian u16 in the first 64 bytes holding code_a / code_b."""
    if len(a) != len(b):
        return False
    pos = a.find(code_a.to_bytes(2, "little"), 0, 64)
    return (pos >= 0 and b[pos:pos + 2] == code_b.to_bytes(2, "little")
            and a[:pos] == b[:pos] and a[pos + 2:] == b[pos + 2:])


def twin_path(config, arch: str, source: str | None = None):
    return cache.cache_dir() / f"{config.name}_{arch}_{build.cache_key(config, arch, source)}.twin"


_pchs: dict = {}  # this process's precompiled headers: key -> path or None (NVRTC refuses another process's)


def _pch(folder: str | None, arch: str, lto: bool = False) -> str | None:
    """This process's precompiled CUDA headers for ``arch`` in ``folder`` (made on first use; None: none)."""
    if folder is None:
        return None
    key = (folder, arch, lto)
    if key not in _pchs:
        path = os.path.join(folder, f"{os.getpid()}-{arch}{'-lto' if lto else ''}.pch")
        _pchs[key] = path if build.create_pch(arch, path, lto=lto) else None
    return _pchs[key]


def _twin(config, arch: str, base: str, use_cache: bool, pch_dir: str | None) -> Built | None:
    """The twin record of ``config`` on ``arch`` (cached or proven now), or None when its code differs."""
    source = build._source(config)
    path = twin_path(config, arch, source)
    why = f"front-end output identical to {base}'s: covered by the {base} compile"
    if use_cache:
        if cache.load(build.cache_path(config, arch, source)) is not None:
            return None  # the real cubin is already there: report it
        if cache.load(path) is not None:
            return Built("twin", 0, why, base)
    ir = front_end_ir(config, arch, source, _pch(pch_dir, arch, lto=True))
    if not same_but_arch(front_end_ir(config, base, source, _pch(pch_dir, base, lto=True)), ir, arch_code(base),
                         arch_code(arch)):
        return None
    if use_cache:
        try:
            cache.store(path, ir, why)
        except OSError:
            pass
    return Built("twin", 0, why, base)


def twin_candidate(config) -> bool:
    """Worth the front-end check: fp8 caches convert with sm_89 instructions (kvp_common.cuh ``e4m3x2_to_h2``), so
    their output always differs. Saying no only costs a full compile; a twin is only ever declared by the check."""
    return getattr(config, "kv_dtype", None) != "float8_e4m3fn"


def _job(job) -> tuple[str, str, Built]:
    config, arch, base, use_cache, pch_dir = job
    if base is not None:
        twin = _twin(config, arch, base, use_cache, pch_dir)
        if twin is not None:
            return config.name, arch, twin
    data, report = build.compile_entry(config, arch, use_cache=use_cache,
                                       pch=_pch(pch_dir, build.target_arch(config, arch)))
    return config.name, arch, Built("cubin", len(data), report)


def compile_all(archs=kconfigs.DEFAULT_ARCHS, configs=None, *, pairs=None, use_cache: bool = True,
                twins: bool = True, pch: bool = True, workers: int | None = None) -> dict:
    """Compile every instantiation for every arch in ``archs``; raise on the first failure.

    Returns ``{(config.name, arch): Built}``. ``configs`` replaces the registered instantiations (each built for
    every arch), ``pairs`` names the (config, arch) jobs outright (``archs`` then only picks twin bases);
    ``twins=False`` builds every cubin, twins included; ``pch`` parses the CUDA headers once per
    arch (build.create_pch, in a temporary folder). Runs in ``workers`` processes (default: one per CPU, at most
    8; NVRTC holds the GIL), longest jobs first; intact cache entries are not compiled again.
    """
    if pairs is not None:
        pairs = list(pairs)
    elif configs is None:
        pairs = every_instantiation(archs)
    else:
        pairs = [(c, a) for a in archs for c in configs]
    build.nvrtc_version()
    build.cuda_include_dir()
    with tempfile.TemporaryDirectory(prefix="kvplan-pch-") as tmp:
        wanted = set(pairs)
        jobs = []
        for c, a in pairs:
            base = twin_base(a, archs) if twins and twin_candidate(c) else None
            jobs.append((c, a, base if (c, base) in wanted else None, use_cache, tmp if pch else None))
        # longest first, so that the pool's processes finish together
        jobs.sort(key=lambda j: getattr(j[0], "compile_cost", 1.0), reverse=True)
        try:
            return _run(jobs, workers)
        finally:
            _pchs.clear()  # their folder goes now


def _run(jobs, workers: int | None) -> dict:
    if workers is None:
        workers = min(len(jobs), os.cpu_count() or 1, 8)
    if workers <= 1 or len(jobs) <= 1:
        done = [_job(job) for job in jobs]
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawn: never fork a process that may hold a CUDA context
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as ex:
            done = list(ex.map(_job, jobs))
    return {(name, arch): built for name, arch, built in done}


def main(argv) -> None:
    """python -m kvplan.kernels.batch [arch ...]: compile everything, print a summary."""
    import time

    archs = tuple(argv) or kconfigs.DEFAULT_ARCHS
    t0 = time.perf_counter()
    res = compile_all(archs)
    n_twin = sum(b.kind == "twin" for b in res.values())
    print(f"compiled {len(res) - n_twin} cubins ({n_twin} twins covered by a lower arch) for {', '.join(archs)}"
          f" in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
