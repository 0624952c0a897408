"""tests/test_kernel_release.py reads every kernel's SASS from one nvdisasm run over the kernels' code sections as a
raw instruction binary (sass_release.kernels_of) instead of a run per cubin: the instructions it scans are the
ones nvdisasm lists from the cubin itself (same addresses, text, scoreboard and wait bits), branch targets aside."""

from sass_release import disassemble, instructions, kernels_of, loads_in_flight_at_releases
from test_kernel_release import _configs, nvrtc_and_nvdisasm


def _same_instructions(raw, listed) -> bool:
    """The same addresses, scoreboard and wait bits and text, but for a branch's or call's target: a label (or
    function) named from the cubin's symbols, an address in the raw binary."""
    if [(a, s, w) for a, _, s, w in raw] != [(a, s, w) for a, _, s, w in listed]:
        return False
    return all(r == c or ("`(" in c and r.rsplit(" 0x", 1)[0] == c.split(" `(")[0])
               for (_, r, _, _), (_, c, _, _) in zip(raw, listed))


def test_the_raw_listing_is_the_cubins_listing(tmp_path):
    from kvplan.kernels import build

    tool = nvrtc_and_nvdisasm()
    # the streaming GEMV's four kernels (the e4m3 one had the race; branches, calls), then a warpgroup-MMA kernel's
    # (sm_90a instructions), one after another in the raw binary
    cfgs = [next(c for c in _configs() if type(c).__name__ == kind) for kind in ("GemvStreamConfig", "MLAWgConfig")]
    cubins = [build.compile_entry(cfg, "sm_90")[0] for cfg in cfgs]
    for cubin, kernels in zip(cubins, kernels_of(cubins, tool, str(tmp_path))):
        listed = instructions(disassemble(cubin, tool, str(tmp_path)))
        assert sorted(kernels) == sorted(listed) and len(listed) >= 3
        for name, code in listed.items():
            assert _same_instructions(kernels[name], code), name
            assert loads_in_flight_at_releases(kernels[name]) == loads_in_flight_at_releases(code)
