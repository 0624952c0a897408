"""`--gpu` hints compare names without their maker's: a bare maker's name is like no GPU (it was "did you mean
T4?", from the alias "NVIDIA T4"), while a typo of a model still gets its hint."""

import pytest

from kvplan.errors import KvplanError
from kvplan.plan.catalog import find_gpu


def _said(name: str) -> str:
    with pytest.raises(KvplanError) as caught:
        find_gpu(name)
    return str(caught.value)


@pytest.mark.parametrize("name", ["NVIDIA", "nvidia", "AMD", "nvidia-t5"])
def test_a_makers_name_alone_gets_no_hint(name):
    said = _said(name)
    assert "not in the GPU catalog" in said and "did you mean" not in said


@pytest.mark.parametrize("name, hinted", [("l4O", "L4"), ("mi30", "MI300X"), ("h100-sxm5-96gb", "H100-80GB-SXM"),
                                          ("NVIDIA l4O", "L4")])
def test_a_typo_of_a_model_keeps_its_hint(name, hinted):
    assert f"(did you mean {hinted}?)" in _said(name)
