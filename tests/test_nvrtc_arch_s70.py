"""An NVRTC older than the GPU (CUDA 12.4's NVRTC on an sm_120 card) is a normal case, not a kvplan bug: the kernels'
availability check names the NVRTC release, the GPU's arch and what to install, and verify says it in one line
(before, NVRTC's 'invalid value for --gpu-architecture' surfaced as kvplan's internal error, exit 3)."""

import pytest

from kvplan.errors import KvplanError
from kvplan.kernels import _runtime, build


@pytest.fixture
def nvrtc_12_4(monkeypatch):
    """NVRTC 12.4's list (sm_50 to sm_90, no Blackwell): CUDA 12.4's nvrtcGetSupportedArchs."""
    monkeypatch.setattr(build, "supported_archs", lambda: (50, 52, 53, 60, 61, 62, 70, 72, 75, 80, 86, 87, 89, 90))
    monkeypatch.setattr(build, "nvrtc_version", lambda: (12, 4))


def test_a_listed_arch_passes(nvrtc_12_4):
    assert build.arch_unsupported(9, 0) is None
    assert build.arch_unsupported(8, 9) is None


def test_an_arch_past_the_list_is_named_with_the_release(nvrtc_12_4):
    why = build.arch_unsupported(12, 0)
    assert why == ("NVRTC 12.4 does not compile for this GPU's sm_120 (it compiles for sm_50 to sm_90); install an "
                   "nvidia-cuda-nvrtc release that lists sm_120")


def test_no_list_says_nothing(monkeypatch):
    monkeypatch.setattr(build, "supported_archs", lambda: ())
    assert build.arch_unsupported(12, 0) is None


def test_this_machines_nvrtc_lists_the_archs_ci_compiles():
    archs = build.supported_archs()
    if not archs:
        pytest.skip("cuda-bindings' NVRTC is not here")
    assert {80, 89, 90} <= set(archs)


def test_verify_refuses_in_one_sentence(nvrtc_12_4, monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (12, 0))
    monkeypatch.setattr(build, "_import_cuda_core", lambda: None)
    monkeypatch.setattr(build, "cuda_include_dir", lambda: "/usr/include")
    monkeypatch.setattr(_runtime, "_reason", [])  # the check is cached per process
    assert "NVRTC 12.4 does not compile for this GPU's sm_120" in _runtime.kernel_unavailable_reason()
    from kvplan.gpu.paged import PagedAttention

    with pytest.raises(KvplanError) as err:
        PagedAttention("cuda")
    text = str(err.value)
    assert text.startswith("kvplan verify times decode with its bundled CUDA kernel, which cannot run here (NVRTC 12.4")
    assert text.endswith("that lists sm_120).") and "\n" not in text and "kvplan[gpu]" not in text
