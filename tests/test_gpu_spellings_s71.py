"""--gpu takes the SKU spellings clouds and schedulers use: the form factor (SXM5) and the advertised memory (80GB,
141GB) in any order around a catalog name, where one entry fits (plan/catalog.py _by_parts). The memory a name
advertises is checked against the entry's: 94GB is the H100 NVL's, not the 80 GB SXM's, and an SXM name is no PCIe
card's."""

import pytest

from kvplan.errors import FieldError
from kvplan.plan.catalog import CATALOG, find_gpu


@pytest.mark.parametrize("spelled, entry", [
    ("H100-SXM5-80GB", "H100-80GB-SXM"),  # Lambda / CoreWeave style
    ("H100 SXM5 80GB", "H100-80GB-SXM"),
    ("H100-PCIe-80GB", "H100-80GB-PCIe"),  # memory last, not the catalog's middle
    ("H200-SXM-141GB", "H200"),
    ("H200-SXM5", "H200"),
    ("A100-80GB-SXM4", "A100-80GB"),
    ("B200-SXM6", "B200"),
    ("RTX-4090-24GB", "RTX-4090"),  # 23.6 GiB: within 10% of 24
    ("MI300X-192GB", "MI300X"),
    ("T4-16GB", "T4"),  # 14.6 GiB: within 10% of 16
    ("8xH100-SXM5-80GB", None),  # a count: refused as before, naming the entry
])
def test_sku_spellings(spelled, entry):
    if entry is None:
        with pytest.raises(FieldError, match="names 8 GPUs.*H100-80GB-SXM"):
            find_gpu(spelled)
    else:
        assert find_gpu(spelled).name == entry


@pytest.mark.parametrize("spelled", [
    "H100-SXM5-94GB",  # an SXM name, and 94 GB is 16% past the SXM's 79.2 GiB; the 94 GB H100 is the NVL (PCIe)
    "H100-SXM5-40GB",  # no 40 GB H100
    "A100-SXM",  # 40 GB or 80 GB: more than one entry fits
    "H100-PCIe-94GB",  # the PCIe entry holds 79.2 GiB
])
def test_what_no_single_entry_fits_is_still_refused(spelled):
    with pytest.raises(FieldError, match="gpu"):
        find_gpu(spelled)


def test_every_catalog_name_and_alias_still_names_its_own_entry():
    for gpu in CATALOG:
        assert find_gpu(gpu.name) is gpu
        for alias in gpu.aliases:
            assert find_gpu(alias) is gpu, alias
