"""NVRTC compiles every kernel instantiation for sm_80, sm_89 and sm_90 on a CPU-only machine; the
kernel cache keeps its entries honest.

Skips when cuda.core / NVRTC / the CUDA headers are missing, unless KVPLAN_REQUIRE_NVRTC=1 (CI), in
which case their absence fails the test. The full compile runs once per source version: entries land in
the kernel cache ($KVPLAN_CACHE_DIR, default ~/.cache/kvplan/kernels) keyed by the source hash, the
options, the arch and the NVRTC version, with ptxas's report, so a rerun on the same machine reads them
back (each one checked against its SHA-256) instead of compiling again.
"""

import os
import re
import time

import pytest

from kvplan.kernels import build, cache, configs

ARCHS = ("sm_80", "sm_89", "sm_90")


def _require_nvrtc():
    try:
        build._import_cuda_core()
        major, minor = build.nvrtc_version()
        build.cuda_include_dir()
    except build.NVRTCUnavailableError as exc:
        if os.environ.get("KVPLAN_REQUIRE_NVRTC") == "1":
            pytest.fail(f"KVPLAN_REQUIRE_NVRTC=1 but NVRTC is unavailable: {exc}")
        pytest.skip(f"NVRTC unavailable: {exc}")
    return major, minor


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KVPLAN_CACHE_DIR", str(tmp_path / "kcache"))
    return tmp_path / "kcache"


@pytest.fixture(scope="module")
def compiled():
    """Every instantiation for every arch (a process per CPU; the cache answers what is already built)."""
    _require_nvrtc()
    t0 = time.perf_counter()
    res = build.compile_all(ARCHS)
    print(f"\ncompile_all: {len(res)} cubins in {time.perf_counter() - t0:.1f} s")
    return res


def test_compile_every_instantiation(compiled):
    assert len(compiled) == len(build.every_instantiation(ARCHS))
    # the Hopper bulk-copy variants are compiled for sm_90 only
    assert any(name.endswith("_bulk") and arch == "sm_90" for name, arch in compiled)
    assert not any(name.endswith("_bulk") and arch != "sm_90" for name, arch in compiled)
    assert any(name.startswith("mla_") for name, _ in compiled)
    assert all(size > 1000 for size, _ in compiled.values())


def _spills(report: str, kernel: str) -> int:
    body = report.split(f"Function properties for {kernel}", 1)[1]
    return int(re.search(r"(\d+) bytes spill stores", body).group(1))


def test_resource_report_has_no_spills_on_sm90(compiled):
    """Registers stay in registers for every instantiation that a real model shape uses."""
    for cfg in build.all_configs("sm_90") + configs.all_mla_configs("sm_90"):
        if getattr(cfg, "max_warps", 8) > 8:  # 16-warp MQA at head_dim 256 is capped at 128 registers
            continue
        kernel = cfg.kernels[0]
        rep = compiled[(cfg.name, "sm_90")][1]
        if f"Function properties for {kernel}" not in rep:
            # Seen once on the H100 machine (8 worker processes): an empty ptxas report. Ask once more,
            # without the cache, so a lost log is not mistaken for a spill or a pass.
            rep = build.compile_entry(cfg, "sm_90", use_cache=False)[1]
        assert _spills(rep, kernel) <= 8, f"{cfg.name} spills:\n{rep}"


def test_disk_cache_roundtrip(tmp_cache):
    _require_nvrtc()
    cfg = build.KernelConfig("bfloat16", "bfloat16", 64, 8, 8)
    first, report = build.compile_entry(cfg, "sm_90")
    files = list(tmp_cache.iterdir())
    assert len(files) == 1 and files[0].suffix == ".cubin"
    assert not list(tmp_cache.glob("*.tmp"))
    assert cache.decode(files[0].read_bytes()) == (first, report)
    assert "registers" in report
    assert build.compile_entry(cfg, "sm_90") == (first, report)  # a hit
    # other arch / options / source -> other key
    assert build.cache_key(cfg, "sm_90") != build.cache_key(cfg, "sm_80")
    other = build.KernelConfig("bfloat16", "bfloat16", 64, 16, 8)
    assert build.cache_key(cfg, "sm_90") != build.cache_key(other, "sm_90")
    assert build.cache_key(cfg, "sm_90", "// changed\n" + build._source(cfg)) != build.cache_key(cfg, "sm_90")


def test_tampered_entry_is_recompiled_and_reported_once(tmp_cache, capsys):
    _require_nvrtc()
    cfg = build.KernelConfig("bfloat16", "bfloat16", 64, 8, 8)
    good = build.compile_cubin(cfg, "sm_90")
    path = next(tmp_cache.glob("*.cubin"))
    for planted in (b"not a cubin", cache.encode(b"evil bytes")[:-1] + b"E", cache.MAGIC + b"{}\n" + good):
        path.write_bytes(planted)
        assert build.compile_cubin(cfg, "sm_90") == good  # recompiled, not loaded
        assert cache.decode(path.read_bytes())[0] == good  # and the entry repaired
    err = capsys.readouterr().err
    assert err.count("failed its integrity check") == 1, err  # said once per entry and process


def test_stale_temporary_files_are_removed(tmp_cache):
    _require_nvrtc()
    tmp_cache.mkdir(parents=True)
    old = tmp_cache / "x.cubin.123.dead.tmp"
    fresh = tmp_cache / "y.cubin.456.live.tmp"
    for p in (old, fresh):
        p.write_bytes(b"partial")
    past = time.time() - 2 * cache.STALE_TMP_S
    os.utime(old, (past, past))
    build.compile_cubin(build.KernelConfig("bfloat16", "bfloat16", 64, 8, 8), "sm_90")
    assert not old.exists()  # left by a killed process: removed by the next write
    assert fresh.exists()  # may belong to a process writing right now


def test_compile_error_is_reported(tmp_cache, monkeypatch):
    _require_nvrtc()
    monkeypatch.setattr(build, "_source", lambda config=None: "this is not CUDA\n")
    with pytest.raises(build.KernelCompileError, match="NVRTC failed"):
        build.compile_cubin(build.KernelConfig("bfloat16", "bfloat16", 64, 8, 8), "sm_90", use_cache=False)


def test_skinny_sweep_variants_compile_without_spills_at_batch_8(tmp_cache):
    """The variants benchmarks/skinny_gemm.py --sweep times (not in CI's default set: compiled here for every
    arch); their 8-column kernels, which batches 1-8 run, keep everything in registers on sm_90."""
    _require_nvrtc()
    from kvplan.kernels import skinny_config as sc

    variants = {sc.variant("bf16", o.get("unroll"), o.get("min_blocks"), o.get("prefetch")) for o in sc.SWEEP.values()}
    variants.add(sc.variant("mxfp4", unroll=2))  # the MoE GPU test's mxfp4 variant: compiles (its spills are reported)
    res = build.compile_all(ARCHS, sorted(variants, key=lambda c: c.name))
    for cfg in variants:
        rep = res[(cfg.name, "sm_90")][1]
        for kern in ("kvp_skinny_bf16_c8", "kvp_skinny_f16_c8"):
            assert _spills(rep, kern) == 0, f"{cfg.name} {kern} spills:\n{rep}"
