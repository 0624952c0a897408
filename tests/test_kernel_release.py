"""No kernel releases a ring stage while its own shared-memory loads of it are in flight (tests/sass_release.py):
the streaming GEMV's three kernels in every form CI compiles, the paged decode's head_dim-128 instantiations (its
shared ring), one of each warpgroup-MMA kernel (MLA, GQA) and the MLA kernel's opt-in three-stage form. (Every
sm_90 instantiation CI compiles was clean on 2026-12-03; these cover each kind of stage body at a tenth of the
compile time.) Needs NVRTC and nvdisasm (the nvidia-cuda-nvdisasm wheel .ci/run installs); skipped without them
unless KVPLAN_REQUIRE_NVRTC=1."""

import os

import pytest

from sass_release import instructions, kernels_of, loads_in_flight_at_releases, nvdisasm

REQUIRED = os.environ.get("KVPLAN_REQUIRE_NVRTC") == "1"

# the e4m3 GEMV kernel before session 36's fix, SASS as nvdisasm -hex prints it: six LDSMs (scoreboards 1-5, 0),
# then the release, then the conversions that wait on them
BEFORE_THE_FIX = """.text.kvp_gemv_stream_e4m3:
        /*0f50*/                   SYNCS.PHASECHK.TRANS64.TRYWAIT P0, [R7+URZ+0x12000], R12 ;  /* 0x0000000000007948 */
                                                                                               /* 0x000fea0003800000 */
        /*0f80*/                   LDSM.16.M88.4 R40, [R8+0x10000] ;                           /* 0x010000000828783b */
                                                                                               /* 0x000e620000000200 */
        /*0fc0*/                   LDSM.16.M88.4 R12, [R10] ;                                  /* 0x000000000a0c783b */
                                                                                               /* 0x000ea20000000200 */
        /*1000*/                   LDSM.16.M88.4 R32, [R32] ;                                  /* 0x000000002020783b */
                                                                                               /* 0x000ee20000000200 */
        /*1030*/                   LDSM.16.M88.4 R16, [R16+0x10000] ;                          /* 0x010000001010783b */
                                                                                               /* 0x000f220000000200 */
        /*1060*/                   LDSM.16.M88.4 R28, [R28] ;                                  /* 0x000000001c1c783b */
                                                                                               /* 0x000f680000000200 */
        /*1070*/                   LDSM.16.M88.4 R24, [R24] ;                                  /* 0x000000001818783b */
                                                                                               /* 0x000e220000000200 */
        /*1080*/                   SYNCS.ARRIVE.TRANS64.A1T0 RZ, [R7+URZ+0x12040], RZ ;        /* 0x012040ff07ff79a7 */
                                                                                               /* 0x0001e2000810003f */
        /*1090*/                   F2FP.F16.E4M3.UNPACK_B R38, R40 ;                           /* 0x00000028ff26723e */
                                                                                               /* 0x002fc400020006ff */
"""


def test_the_scan_finds_the_race_the_e4m3_kernel_had():
    code = instructions(BEFORE_THE_FIX)["kvp_gemv_stream_e4m3"]
    assert [(a, s, w) for a, _, s, w in code][1:3] == [(0x0F80, 1, 0), (0x0FC0, 2, 0)]
    (address, loads), = loads_in_flight_at_releases(code)
    assert address == 0x1080 and len(loads) == 6 and loads[0].startswith("0f80 LDSM")


def _configs():
    from kvplan.kernels import configs

    out = []
    for make in configs.INSTANTIATION_SETS:
        out += [c for c in make("sm_90") if type(c).__name__ in ("GemvStreamConfig", "KernelConfig")]
    for make in configs.INSTANTIATION_SETS:  # one of each warpgroup-MMA kernel (their hand-overs are arrives too)
        out += [next((c for c in make("sm_90") if type(c).__name__ == kind), None)
                for kind in ("MLAWgConfig", "DecodeWgConfig")]
    out.append(configs.MLAWgConfig("bfloat16", 16, stages=3))  # the opt-in third stage (two rings, P over the rope)
    return [c for c in out if c is not None]


def nvrtc_and_nvdisasm() -> str:
    """The nvdisasm binary, where NVRTC can compile the kernels too; the test is skipped (failed under
    KVPLAN_REQUIRE_NVRTC=1) otherwise."""
    from kvplan.kernels import build

    try:
        build._import_cuda_core()
        build.cuda_include_dir()
        missing = None if nvdisasm() else "nvdisasm is not installed (pip install nvidia-cuda-nvdisasm)"
    except build.NVRTCUnavailableError as exc:
        missing = f"NVRTC unavailable: {exc}"
    if missing:
        if REQUIRED:
            pytest.fail(f"KVPLAN_REQUIRE_NVRTC=1 but {missing}")
        pytest.skip(missing)
    return nvdisasm()


def test_no_stage_is_released_with_its_loads_in_flight(tmp_path):
    from kvplan.kernels import build

    tool = nvrtc_and_nvdisasm()
    # the decode kernel's four stage bodies (16-bit / e4m3 x heads in M or not) at head_dim 128
    cfgs = [cfg for cfg in _configs()
            if type(cfg).__name__ != "KernelConfig" or (cfg.head_dim == 128 and cfg.q_dtype == "bfloat16")]
    cubins = [build.compile_entry(cfg, "sm_90")[0] for cfg in cfgs]
    checked, races = 0, []
    for cfg, kernels in zip(cfgs, kernels_of(cubins, tool, str(tmp_path))):
        for name, code in kernels.items():
            if name in cfg.kernels:
                checked += 1
                races += [(cfg.name, name, a, loads) for a, loads in loads_in_flight_at_releases(code)]
    assert checked >= 18 + 15 + 2 and not races, races
