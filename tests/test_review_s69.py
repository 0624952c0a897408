"""Session 69's review of the two branches merged that session (several architectures in one config; the fuzz round's
fixes), each defect it found reproduced here.

R1  vLLM 0.12-0.14 turns prefix caching off for a hybrid whose class lacks SupportsMambaPrefixCaching, by the class it
    resolved from the top-level config (model_executor/models/config.py MambaModelConfig, 0.12.0:304-309). kvplan
    checked that class but named another in its note: for a multimodal wrapper over a Nemotron-H language model
    (NemotronH_Nano_VL_V2, whose text_config names NemotronHForCausalLM) it said "turns prefix caching off again for
    NemotronHForCausalLM, a class without Mamba prefix caching", a class that has it (nemotron_h.py, as
    vllm_mamba_mode.MAMBA_PREFIX_CLASSES reads it).
R2  `kvplan models --format` said "--format needs a value after it; the command's -h says which it takes": every other
    usage error names the help to read (`kvplan models -h`).
R3  (kept sound, held here) --gpu reads past the maker's name: every catalog entry's own names, with and without
    "NVIDIA " / "AMD Instinct " before them, name that entry and no other; the two ambiguous names stay ambiguous.
R4  (kept sound, held here) the registry walk's test of one name (vllm_registry.lists) and the one-name refusal
    (vllm_config_read.architecture_refusal) are two writings of one rule: they agree for every name kvplan knows at
    every release it models, not only the sample tests/test_multi_architecture_s69.py takes.
"""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import ROOT, one_error_line, run_kvplan

from kvplan.engines.vllm_registry import lists
from kvplan.errors import KvplanError
from kvplan.plan.catalog import CATALOG, find_gpu

NEMOTRON_H = yaml.safe_load((ROOT / "model_specs" / "nvidia--Nemotron-H-8B-Base-8K.yaml").read_text())["config"]


# ---- R1: the prefix-caching note names the class vLLM checks ------------------------------------------------------

def _rules(path, engine: str) -> list:
    r = run_kvplan("estimate", path, "-c", "8192", "--engine", f"vllm=={engine}", "--enable-prefix-caching",
                   "--format", "json")
    assert r.returncode == 0, r.stderr
    return [rule for rule in json.loads(r.stdout)["model"]["rules"] if "prefix caching" in rule]


def test_the_prefix_caching_note_names_the_served_class(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"architectures": ["NemotronH_Nano_VL_V2"], "model_type": "NemotronH_Nano_VL_V2",
                                "text_config": NEMOTRON_H}))
    (note,) = _rules(path, "0.12.0")
    assert note.startswith("vLLM 0.12.0 turns prefix caching off again for NemotronH_Nano_VL_V2, a class without "
                           "Mamba prefix caching")
    assert "NemotronHForCausalLM" not in note


def test_the_language_model_alone_keeps_prefix_caching():
    """The control: Nemotron-H's own class has Mamba prefix caching in 0.12.0, so no "off again" note."""
    assert not any("off again" in rule for rule in _rules("nvidia/Nemotron-H-8B-Base-8K", "0.12.0"))


# ---- R2: an option given no value names the command's help ---------------------------------------------------------

@pytest.mark.parametrize("command", ["estimate", "check", "verify", "models", "gpus"])
def test_an_option_without_its_value_names_the_command_s_help(command):
    line = one_error_line(run_kvplan(command, "--format"))
    assert line == f"kvplan: error: --format needs a value after it; `kvplan {command} -h` says what it takes."
    helped = run_kvplan(command, "-h")
    assert helped.returncode == 0 and "--format" in helped.stdout  # the help it names does list the option


# ---- R3: --gpu with the maker's name -------------------------------------------------------------------------------

# the device names nvidia-smi / rocm-smi print for these cards (the catalog's sources: vLLM logs, public nvidia-smi
# outputs), each with the entry it is
DRIVER_NAMES = {"NVIDIA H100 80GB HBM3": "H100-80GB-SXM", "NVIDIA H100 PCIe": "H100-80GB-PCIe",
                "NVIDIA H100 NVL": "H100-NVL", "NVIDIA A100-SXM4-80GB": "A100-80GB", "NVIDIA A100-SXM4-40GB":
                "A100-40GB", "NVIDIA A100 80GB PCIe": "A100-80GB-PCIe", "NVIDIA H200": "H200", "NVIDIA L4": "L4",
                "NVIDIA L40S": "L40S", "NVIDIA A10G": "A10G", "Tesla T4": "T4", "NVIDIA GeForce RTX 4090": "RTX-4090",
                "AMD Instinct MI300X": "MI300X", "NVIDIA B200": "B200", "NVIDIA GH200 480GB": "GH200"}


def _names(gpu) -> tuple:
    return (gpu.name, *gpu.aliases)


@pytest.mark.parametrize("gpu", CATALOG, ids=lambda gpu: gpu.name)
def test_every_catalog_name_with_a_maker_names_its_own_entry(gpu):
    makers = ("AMD ", "AMD Instinct ", "amd_instinct_") if gpu.name.startswith("MI") else \
        ("NVIDIA ", "nvidia-", "Nvidia_", "NVIDIA  ")
    for name in _names(gpu):
        for spelled in (name, name.upper(), *(maker + name for maker in makers)):
            assert find_gpu(spelled).name == gpu.name, spelled


def test_no_maker_s_name_turns_one_entry_into_another():
    for gpu in CATALOG:
        for name in _names(gpu):
            for maker in ("NVIDIA ", "AMD ", "AMD Instinct "):
                try:
                    found = find_gpu(maker + name).name
                except KvplanError:
                    continue
                assert found == gpu.name, maker + name


@pytest.mark.parametrize("name, entry", DRIVER_NAMES.items())
def test_driver_names_name_their_card(name, entry):
    assert find_gpu(name).name == entry


@pytest.mark.parametrize("name", ["NVIDIA A100", "nvidia-a100", "A100", "NVIDIA RTX 6000", "rtx 6000"])
def test_the_ambiguous_names_stay_ambiguous_with_a_maker(name):
    with pytest.raises(KvplanError, match="could mean"):
        find_gpu(name)


# ---- R4: one rule of the registry, written twice, agrees everywhere ------------------------------------------------

def test_the_walk_and_the_refusal_agree_on_every_known_name_and_release():
    from kvplan.engines import vllm_registry as registry
    from kvplan.engines.vllm_config_read import architecture_refusal, listed_anywhere
    from kvplan.engines.vllm_registry_names import LISTED_0_32

    names = set(LISTED_0_32).union(registry.ADDED_ARCHITECTURES, registry.UNLISTED, registry.RETIRED,
                                   registry.LAST_RUNS, registry.PLUGINS, registry.TRANSFORMERS_ONLY)
    names |= {name.replace("ForCausalLM", "ForSequenceClassification") for name in names}  # _normalize_arch's
    names |= {"FooBarForCausalLM"}  # no release lists it
    differ = [(name, release) for release in registry.PUBLISHED for name in sorted(names)
              if lists(name, release) != (listed_anywhere(name) and architecture_refusal(name, release) is None)]
    assert differ == []
