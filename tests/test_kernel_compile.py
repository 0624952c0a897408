"""NVRTC compiles every kernel instantiation for sm_80, sm_89 and sm_90 on a CPU-only machine; the
kernel cache keeps its entries honest.

What is proven, for every instantiation a default launch can need (configs.INSTANTIATION_SETS):
- sm_80 and sm_90: NVRTC, with the run-time loader's options and program text, builds the cubin (front end, NVVM,
  ptxas), with the CUDA headers precompiled (byte-identical cubins: test_precompiled_headers_give_the_same_cubin);
- sm_90: ptxas reports no more than 8 bytes of spill stores (8-warp instantiations);
- sm_89: either NVRTC builds the cubin (instantiations with sm_89-specific code: the fp8 conversions), or NVRTC's
  front end gives byte-identical output for sm_89 and sm_80 (LTO IR equal but for the __CUDA_ARCH__ field), so
  the rest of the compile sees the input that passed for sm_80, and PTX valid for sm_80 is valid for sm_89
  (a "twin", see kvplan/kernels/batch.py). A twin's own sm_89 cubin is not built here.

Skips when cuda.core / NVRTC / the CUDA headers are missing, unless KVPLAN_REQUIRE_NVRTC=1 (CI), in
which case their absence fails the test. The full compile runs once per source version: entries land in
the kernel cache ($KVPLAN_CACHE_DIR, default ~/.cache/kvplan/kernels) keyed by the source hash, the
options, the arch and the NVRTC version, with ptxas's report, so a rerun on the same machine reads them
back (each one checked against its SHA-256) instead of compiling again. The opt-in variants' compile tests use the
same cache; only the cache's own tests take a fresh one.
"""

import os
import re
import time

import pytest

from kvplan.kernels import batch, build, cache, configs

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
    res = batch.compile_all(ARCHS)
    twins = sum(b.kind == "twin" for b in res.values())
    print(f"\ncompile_all: {len(res) - twins} cubins + {twins} sm_89 twins in {time.perf_counter() - t0:.1f} s")
    return res


def test_compile_every_instantiation(compiled):
    pairs = batch.every_instantiation(ARCHS)
    assert set(compiled) == {(c.name, a) for c, a in pairs} and len(compiled) == len(pairs)
    # the Hopper bulk-copy variants are compiled for sm_90 only
    assert any(name.endswith("_bulk") and arch == "sm_90" for name, arch in compiled)
    assert not any(name.endswith("_bulk") and arch != "sm_90" for name, arch in compiled)
    assert any(name.startswith("mla_") for name, _ in compiled)
    for (name, arch), b in compiled.items():
        if b.kind == "cubin":
            assert b.size > 1000, (name, arch)
        else:  # a twin stands on the sm_80 cubin of the same instantiation
            assert (b.kind, arch, b.twin_of) == ("twin", "sm_89", "sm_80"), (name, arch, b)
            assert compiled[(name, "sm_80")].kind == "cubin" and compiled[(name, "sm_80")].size > 1000


def test_sm89_twins_only_for_instantiations_without_sm89_code(compiled):
    """16-bit caches have no sm_89 code: twins. fp8 caches convert with sm_89's cvt.e4m3x2 (kvp_common.cuh): the
    front-end check is skipped for them (twin_candidate), and would fail, as checked here for one GQA and one MLA."""
    for c, arch in batch.every_instantiation(("sm_89",)):
        fp8 = "float8" in getattr(c, "kv_dtype", "")
        # a cache filled before twins existed (same keys) may answer a 16-bit sm_89 entry with its real cubin
        assert compiled[(c.name, "sm_89")].kind in (("cubin",) if fp8 else ("twin", "cubin")), c.name
        assert batch.twin_candidate(c) == (not fp8), c.name
    for c in (configs.KernelConfig("bfloat16", "bfloat16", 128, 8, 8), configs.MLAConfig("bfloat16", 16)):
        # computed here, whatever the cache holds: 16-bit front ends differ only in the arch field
        assert batch.same_but_arch(batch.front_end_ir(c, "sm_80"), batch.front_end_ir(c, "sm_89"), 800, 890)
    for c in (configs.KernelConfig("bfloat16", "float8_e4m3fn", 128, 8, 8), configs.MLAConfig("float8_e4m3fn", 16)):
        assert not batch.twin_candidate(c)
        assert not batch.same_but_arch(batch.front_end_ir(c, "sm_80"), batch.front_end_ir(c, "sm_89"), 800, 890)


def _spills(report: str, kernel: str) -> int:
    body = report.split(f"Function properties for {kernel}", 1)[1]
    return int(re.search(r"(\d+) bytes spill stores", body).group(1))


def _report(compiled: dict, cfg, kernel: str, arch: str = "sm_90") -> str:
    """ptxas's report of cfg on arch, from compile_all's results (often read back from the kernel cache).
    Seen once on the H100 machine (8 worker processes): an empty report. Asked once more, without the cache, so a
    lost log is not mistaken for a spill or a pass."""
    rep = compiled[(cfg.name, arch)].report
    if f"Function properties for {kernel}" not in rep:
        rep = build.compile_entry(cfg, arch, use_cache=False)[1]
    return rep


def test_resource_report_has_no_spills_on_sm90(compiled):
    """Registers stay in registers for every instantiation that a real model shape uses."""
    for cfg in build.all_configs("sm_90") + configs.all_mla_configs("sm_90"):
        if getattr(cfg, "max_warps", 8) > 8:  # 16-warp MQA at head_dim 256 is capped at 128 registers
            continue
        kernel = cfg.kernels[0]
        rep = _report(compiled, cfg, kernel)
        assert _spills(rep, kernel) <= 8, f"{cfg.name} spills:\n{rep}"


PROBE = configs.ReadProbeConfig()  # the cache tests compile this one: 0.05 s against ~0.8 s for a decode kernel


def test_disk_cache_roundtrip(tmp_cache):
    _require_nvrtc()
    cfg = PROBE
    first, report = build.compile_entry(cfg, "sm_90")
    files = list(tmp_cache.iterdir())
    assert len(files) == 1 and files[0].suffix == ".cubin"
    assert not list(tmp_cache.glob("*.tmp"))
    assert cache.decode(files[0].read_bytes()) == (first, report)
    # NVRTC's info log names the registers where it writes one (CI's nvidia-cuda-nvrtc 13.0 wheel; the GPU machine's
    # CUDA 13 NVRTC returns an empty log on success: benchmarks/RESULTS.md session 39)
    assert "registers" in report or report == ""
    assert build.compile_entry(cfg, "sm_90") == (first, report)  # a hit
    # other arch / options / source -> other key
    assert build.cache_key(cfg, "sm_90") != build.cache_key(cfg, "sm_80")
    one, other = (build.KernelConfig("bfloat16", "bfloat16", 64, 8, 8),
                  build.KernelConfig("bfloat16", "bfloat16", 64, 16, 8))
    assert build.cache_key(one, "sm_90") != build.cache_key(other, "sm_90")
    assert build.cache_key(cfg, "sm_90", "// changed\n" + build._source(cfg)) != build.cache_key(cfg, "sm_90")


def test_tampered_entry_is_recompiled_and_reported_once(tmp_cache, capsys):
    _require_nvrtc()
    cfg = PROBE
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
    build.compile_cubin(PROBE, "sm_90")
    assert not old.exists()  # left by a killed process: removed by the next write
    assert fresh.exists()  # may belong to a process writing right now


def test_compile_error_is_reported(tmp_cache, monkeypatch):
    _require_nvrtc()
    monkeypatch.setattr(build, "_source", lambda config=None: "this is not CUDA\n")
    with pytest.raises(build.KernelCompileError, match="NVRTC failed"):
        build.compile_cubin(build.KernelConfig("bfloat16", "bfloat16", 64, 8, 8), "sm_90", use_cache=False)


def test_twin_record_is_cached_and_checked(tmp_cache, capsys):
    _require_nvrtc()
    first = batch.compile_all(("sm_80", "sm_89"), [PROBE], workers=1)
    assert first[("read_probe", "sm_80")].kind == "cubin"
    assert first[("read_probe", "sm_89")] == batch.Built("twin", 0, first[("read_probe", "sm_89")].report, "sm_80")
    twin = next(tmp_cache.glob("*.twin"))
    assert len(list(tmp_cache.glob("*.cubin"))) == 1  # no sm_89 cubin
    assert batch.compile_all(("sm_80", "sm_89"), [PROBE], workers=1) == first  # read back
    twin.write_bytes(b"planted")
    assert batch.compile_all(("sm_80", "sm_89"), [PROBE], workers=1) == first  # proven again
    assert cache.decode(twin.read_bytes()) is not None
    assert "failed its integrity check" in capsys.readouterr().err
    full = batch.compile_all(("sm_80", "sm_89"), [PROBE], twins=False, workers=1)
    assert full[("read_probe", "sm_89")].kind == "cubin"


def test_same_but_arch():
    hdr = bytes(26) + (800).to_bytes(2, "little") + bytes(12)
    a = hdr + b"payload"
    b = a[:26] + (890).to_bytes(2, "little") + a[28:]
    assert batch.same_but_arch(a, b, 800, 890)
    assert not batch.same_but_arch(a, b[:-1] + b"X", 800, 890)  # the IR differs
    assert not batch.same_but_arch(a, a[:26] + (900).to_bytes(2, "little") + a[28:], 800, 890)
    assert not batch.same_but_arch(a, b + b"!", 800, 890)
    assert batch.twin_base("sm_89", ARCHS) == "sm_80" and batch.twin_base("sm_90", ARCHS) is None
    assert batch.twin_base("sm_80", ARCHS) is None and batch.arch_code("sm_90a") == 900


def test_precompiled_headers_give_the_same_cubin(tmp_path):
    """batch compiles with the CUDA headers precompiled (once per process and arch): same bytes as without."""
    _require_nvrtc()
    cfg = configs.DeltaNetStepConfig("bfloat16", "float32")
    pch = str(tmp_path / "sm_90.pch")
    assert build.create_pch("sm_90", pch)
    plain = build.compile_entry(cfg, "sm_90", use_cache=False)
    pre = build.compile_entry(cfg, "sm_90", use_cache=False, pch=pch)
    assert "using precompiled header" in pre[1] and "using precompiled header" not in plain[1]
    assert pre[0] == plain[0]


def test_skinny_sweep_variants_compile_without_spills_at_batch_8():
    """The variants benchmarks/skinny_gemm.py --sweep times (not in CI's default set; none beat the default on the
    H200, 2026-12-01, so they stay benchmark-only and are compiled for sm_90, the arch they were timed on): their
    8-column kernels, which batches 1-8 run, keep everything in registers. Compiled without the by-expert kernels
    (SkinnyConfig.dense_only: the same source and macros for the kernels checked, a fifth of the NVRTC time)."""
    _require_nvrtc()
    import dataclasses

    from kvplan.kernels import skinny_config as sc

    variants = {dataclasses.replace(sc.variant("bf16", o.get("unroll"), o.get("min_blocks"), o.get("prefetch")),
                                    dense_only=True) for o in sc.SWEEP.values()}
    variants.add(sc.variant("mxfp4", unroll=2))  # the MoE GPU test's mxfp4 variant: compiles (its spills are reported)
    res = batch.compile_all(("sm_90",), sorted(variants, key=lambda c: c.name))
    for cfg in variants:
        for kern in ("kvp_skinny_bf16_c8", "kvp_skinny_f16_c8"):
            rep = _report(res, cfg, kern)
            assert _spills(rep, kern) == 0, f"{cfg.name} {kern} spills:\n{rep}"


def test_pair_slot_warp_variants_compile_without_spills():
    """The MoE pairs kernel's cubins with fewer warps a CTA, which verify builds at first use for a down projection
    of short k (skinny_config.pair_warps: DeepSeek-V3 at tp 8 two, tp 16 one, Qwen3-Next at tp 2 four): they compile
    for Hopper and for the A100 (sm_80), and their 8-column kernels keep everything in registers."""
    _require_nvrtc()
    from kvplan.kernels import skinny_config as sc

    jobs = [(sc.SkinnyConfig(warps=w), "sm_90") for w in (1, 2, 4)] + [(sc.SkinnyConfig(warps=2), "sm_80")]
    res = batch.compile_all(pairs=jobs)  # in the process pool: four ~8 s cubins
    for cfg, arch in jobs:
        for kern in ("kvp_skinny_bf16_c8", "kvp_skinny_fp8_c8"):
            rep = _report(res, cfg, kern, arch)
            assert _spills(rep, kern) == 0, f"{cfg.name} {arch} {kern} spills:\n{rep}"


def test_opt_in_gemv_variants_compile_without_spills():
    """The streaming GEMV's opt-in row-owned split3 form (benchmarks/own_ring_probe.py), for sm_90, registers
    only."""
    _require_nvrtc()
    from kvplan.kernels.gemv_stream_config import GemvStreamConfig

    variants = [GemvStreamConfig(own=True, split3=True)]
    res = batch.compile_all(("sm_90",), variants)
    for cfg in variants:
        for kern in ("kvp_gemv_stream_bf16", "kvp_gemv_stream_e4m3"):
            assert _spills(_report(res, cfg, kern), kern) == 0, f"{cfg.name} {kern}"


def test_heads_in_m_variants_compile_without_spills():
    """The heads-in-M step with its opt-in parts (the lazy rescale, page_runs; the default heads-in-M configs are in
    CI's default set): what plan_cta builds for 16 heads per warp on sm_90, bulk ring and cp.async ring, 16-bit and
    fp8 caches, keeps everything in registers."""
    _require_nvrtc()
    from kvplan.kernels import configs

    variants = [configs.KernelConfig(q, kv, d, 16, 8, bulk=bulk, lazy_rescale=1, heads_in_m=1, page_runs=runs)
                for q, kv, d, bulk, runs in (("bfloat16", "bfloat16", 128, 1, 0), ("bfloat16", "bfloat16", 128, 0, 0),
                                             ("float16", "float16", 64, 1, 0), ("bfloat16", "float8_e4m3fn", 128, 1, 0),
                                             ("float16", "float8_e4m3fn", 64, 0, 0),
                                             ("bfloat16", "bfloat16", 128, 1, 1),
                                             ("bfloat16", "float8_e4m3fn", 128, 1, 1))]
    # page runs at the 168-register cap they launch with
    variants += [configs.KernelConfig("bfloat16", kv, 128, 16, 8, bulk=1, heads_in_m=1, page_runs=1, max_regs=168)
                 for kv in ("bfloat16", "float8_e4m3fn")]
    res = batch.compile_all(("sm_90",), variants)
    for cfg in variants:
        rep = _report(res, cfg, "kvp_decode")
        assert _spills(rep, "kvp_decode") == 0, f"{cfg.name} spills:\n{rep}"


def test_paged_read_probe_says_why_it_cannot_run():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("has a GPU: tests/test_kernel_gpu.py runs the probe")
    from kvplan.kernels.probes import paged_read_bandwidth

    with pytest.raises(RuntimeError, match="CUDA"):
        paged_read_bandwidth(32768)
    from kvplan.kernels.probes import paged_walk_bandwidth

    with pytest.raises(RuntimeError, match="CUDA"):
        paged_walk_bandwidth(32768, 128)


def test_mla_early_free_variants_compile_without_spills():
    """The warpgroup-MMA MLA kernel's opt-in early refill (PV in 2 or 4 commit groups, bf16 latents, 16 and 32 heads a
    CTA) builds for sm_90a and keeps its accumulators in registers."""
    _require_nvrtc()
    from kvplan.kernels import configs

    variants = [configs.MLAWgConfig("bfloat16", h, early_free=g) for h in (16, 32) for g in (2, 4)]
    res = batch.compile_all(("sm_90",), variants)
    for cfg in variants:
        rep = _report(res, cfg, "kvp_mla_wg")
        assert _spills(rep, "kvp_mla_wg") == 0, f"{cfg.name} spills:\n{rep}"


def test_decode_wg_variants_compile_without_spills():
    """The warpgroup-MMA GQA decode's opt-in forms (KernelOptions wg_heads / wg_stages / wg_warpgroups: 16 and 32
    heads a CTA, one and two warpgroups, both 16-bit dtypes and head dims; CI's default set has its 64-head defaults)
    build for sm_90a and keep their accumulators in registers."""
    _require_nvrtc()
    from kvplan.kernels import configs

    variants = [configs.DecodeWgConfig(*a) for a in (("bfloat16", 128, 32, 3, 1), ("bfloat16", 128, 32, 2, 2),
                                                     ("bfloat16", 128, 16, 3, 1), ("float16", 64, 16, 3, 2),
                                                     ("bfloat16", 128, 64, 6, 1))]
    res = batch.compile_all(("sm_90",), variants)
    for cfg in variants:
        rep = _report(res, cfg, "kvp_decode_wg")
        assert _spills(rep, "kvp_decode_wg") == 0, f"{cfg.name} spills:\n{rep}"


def test_mla_three_stage_variants_compile_without_spills():
    """The warpgroup-MMA MLA kernel's opt-in third stage (bf16, 16 heads a CTA; with and without the early refill)
    builds for sm_90a with its accumulators in registers, and its only static shared memory is the 1 KB window sm_90
    reserves (aligned to 1,024): the kernel's 232,448 dynamic bytes, with no alignment slack, then start on 1,024, as
    the kernel checks (it traps otherwise)."""
    _require_nvrtc()
    from sass_release import elf_sections

    variants = [configs.MLAWgConfig("bfloat16", 16, early_free=g, stages=3) for g in (0, 2)]
    res = batch.compile_all(("sm_90",), variants)
    for cfg in variants:
        rep = _report(res, cfg, "kvp_mla_wg")
        assert _spills(rep, "kvp_mla_wg") == 0, f"{cfg.name} spills:\n{rep}"
        assert cfg.smem == 232448 and ("KVP_MLA_WG_SMEM", "232448") in cfg.macros()
        sections = elf_sections(build.compile_entry(cfg, "sm_90")[0])
        assert sections[".nv.shared.kvp_mla_wg"] == 1024, sections
