"""The cards serving engineers ran in late 2026 that the catalog lacked: NVIDIA H800 (SXM, PCIe), A800 (80GB SXM, 80GB
PCIe, 40GB Active), RTX PRO 6000 Blackwell (Server; Workstation and Max-Q Workstation), GeForce RTX 5090 and AMD
Instinct MI355X. Each resolves from the name nvidia-smi / ROCm prints and from its short names, carries its facts in
every table keyed by the catalog's name, and plans.

Public figures the tests hold the catalog to (the search index ids are the catalog's sources):
- nvidia-smi names: "NVIDIA H800", "NVIDIA H800 PCIe", "NVIDIA A800-SXM4-80GB", "NVIDIA A800 80GB PCIe" ("... LC"),
  "NVIDIA A800 40GB Active" (NVIDIA's driver list of supported GPUs, search index id 67161954526), "NVIDIA RTX PRO
  6000 Blackwell Server Edition", "... Workstation Edition", "... Max-Q Workstation Edition", "NVIDIA GeForce RTX
  5090"; ROCm's "AMD Instinct MI355X".
- Memory as torch sees it: "GPU 0 has a total capacity of 31.36 GiB" on an RTX 5090 (nvidia-smi 32607 MiB), "94.97 GiB"
  on an RTX PRO 6000 Max-Q (97887 MiB), "287.98 GiB" on an MI355X; the H800 has the H100 SXM's 81559 MiB.
- Compute capability 12.0 for GB202 (RTX PRO 6000, RTX 5090), 9.0 for the H800, 8.0 for the A800; SMs: H800 132, H800
  PCIe 114, A800 108, RTX PRO 6000 188, RTX 5090 170; MI355X 256 CUs (8 XCDs x 32).

vLLM 0.32.0 on SM12x, read by hand (vllm/platforms/cuda.py :121-125 _get_backend_priorities: an MLA layer there gets
TRITON_MLA then FLASHINFER_MLA_SPARSE_SM120; v1/attention/backends/mla/flashinfer_mla_sparse.py :172-177 takes auto,
fp8, fp8_e4m3, fp8_ds_mla; model_executor/layers/attention/mla_attention.py :369-374 keeps every one as fp8_ds_mla;
model_executor/models/config.py :38-40 turns DeepSeek-V3.2's bfloat16 into auto first). DeepSeek-V3.2's cache a token
a GPU, worked by hand: 61 layers; the fp8_ds_mla entry 512 fp8 latent + 4 float32 scales + 64 bf16 rope = 656 bytes,
the bf16 latent (512 + 64) x 2 = 1,152 bytes; the indexer key 132 bytes on every layer: 61 x 656 + 61 x 132 = 48,068
with fp8_ds_mla, 61 x 1,152 + 61 x 132 = 78,324 with a bf16 latent.
"""

from __future__ import annotations

import pytest

from kvplan.engines.vllm_runner import is_rocm
from kvplan.errors import KvplanError
from kvplan.plan.catalog import (COMPUTE, SM_COUNTS, device_name, find_gpu, match_device_name, sm_count,
                                 speed_profile)
from tests.conftest import estimate_plan, run_kvplan

GiB, MiB = 2**30, 2**20

# (a name it is known by, the catalog entry): nvidia-smi's / ROCm's names first, then short names people type
NAMES = [
    ("NVIDIA H800", "H800"), ("H800", "H800"), ("h800-sxm", "H800"), ("H800 80GB", "H800"),
    ("NVIDIA H800 PCIe", "H800-PCIe"), ("h800-pcie", "H800-PCIe"),
    ("NVIDIA A800-SXM4-80GB", "A800-80GB"), ("a800-sxm4-80gb", "A800-80GB"), ("A800 80GB", "A800-80GB"),
    ("NVIDIA A800 80GB PCIe", "A800-80GB-PCIe"), ("NVIDIA A800 80GB PCIe LC", "A800-80GB-PCIe"),
    ("a800-pcie", "A800-80GB-PCIe"),
    ("NVIDIA A800 40GB Active", "A800-40GB"), ("a800-40gb", "A800-40GB"), ("A800 40GB PCIe", "A800-40GB"),
    ("NVIDIA RTX PRO 6000 Blackwell Server Edition", "RTX-PRO-6000-Server"),
    ("rtx pro 6000 server", "RTX-PRO-6000-Server"), ("rtx-pro-6000-se", "RTX-PRO-6000-Server"),
    ("NVIDIA RTX PRO 6000 Blackwell Workstation Edition", "RTX-PRO-6000-Workstation"),
    ("NVIDIA RTX PRO 6000 Blackwell Max-Q Workstation Edition", "RTX-PRO-6000-Workstation"),
    ("rtx pro 6000 workstation", "RTX-PRO-6000-Workstation"), ("RTX PRO 6000 Max-Q", "RTX-PRO-6000-Workstation"),
    ("NVIDIA GeForce RTX 5090", "RTX-5090"), ("5090", "RTX-5090"), ("rtx5090", "RTX-5090"), ("RTX 5090", "RTX-5090"),
    ("AMD Instinct MI355X", "MI355X"), ("mi355x", "MI355X"), ("mi355", "MI355X"),
    ("NVIDIA A40", "A40"), ("a40", "A40"), ("A40 48GB", "A40"),  # groundtruth A24's card (nvidia-smi's name)
]
DEVICE_NAMES = [(name, entry) for name, entry in NAMES if name.startswith(("NVIDIA ", "AMD "))]


@pytest.mark.parametrize("name, entry", NAMES)
def test_each_card_resolves_from_its_names(name, entry):
    assert find_gpu(name).name == entry


@pytest.mark.parametrize("name, entry", DEVICE_NAMES)
def test_a_detected_device_name_is_the_card(name, entry):
    assert match_device_name(name).name == entry


@pytest.mark.parametrize("name, entry", [("NVIDIA H800 PCIe 80GB", "H800-PCIe"), ("NVIDIA H800 80GB HBM3", "H800"),
                                         ("NVIDIA A800-SXM4-40GB", "A800-40GB"), ("NVIDIA A800-PCIE-80GB",
                                                                                 "A800-80GB-PCIe"),
                                         ("NVIDIA GeForce RTX 5090 D", "RTX-5090")])
def test_a_spelling_the_catalog_does_not_list_falls_to_its_family(name, entry):
    assert match_device_name(name).name == entry


@pytest.mark.parametrize("name", ["NVIDIA RTX PRO 6000D Blackwell Workstation Edition",  # the 84 GB China card
                                  "NVIDIA GeForce RTX 5090 Laptop GPU",  # 24 GB
                                  "NVIDIA GeForce RTX 4090 Laptop GPU"])  # 16 GB
def test_another_card_named_after_one_is_not_taken_for_it(name):
    assert match_device_name(name) is None  # detection then reads NVML's memory and bandwidth


@pytest.mark.parametrize("name", ["a800", "A800", "rtx pro 6000", "RTX PRO 6000 Blackwell"])
def test_a_name_of_several_cards_lists_them(name):
    with pytest.raises(KvplanError) as caught:
        find_gpu(name)
    said = str(caught.value)
    assert "could mean" in said and "did you mean" not in said
    wanted = ("A800-40GB", "A800-80GB", "A800-80GB-PCIe") if "800" in name else \
        ("RTX-PRO-6000-Server", "RTX-PRO-6000-Workstation")
    assert all(card in said for card in wanted)


def test_h800_is_no_longer_taken_for_an_h200():
    r = run_kvplan("estimate", "meta-llama/Llama-3.1-8B", "--gpu", "H800", "--max-model-len", "8192")
    assert r.returncode == 0, r.stderr
    assert "H200" not in r.stderr and "did you mean" not in r.stderr
    with pytest.raises(KvplanError) as caught:
        find_gpu("h800x")
    assert "(did you mean H800?)" in str(caught.value)


# entry: (compute capability, SMs / CUs)
FACTS = {"H800": ((9, 0), 132), "H800-PCIe": ((9, 0), 114), "A800-80GB": ((8, 0), 108),
         "A800-80GB-PCIe": ((8, 0), 108), "A800-40GB": ((8, 0), 108), "RTX-PRO-6000-Server": ((12, 0), 188),
         "RTX-PRO-6000-Workstation": ((12, 0), 188), "RTX-5090": ((12, 0), 170), "MI355X": ((), 256),
         "A40": ((8, 6), 84)}


@pytest.mark.parametrize("entry", sorted(FACTS))
def test_each_card_has_its_facts_in_every_table(entry):
    gpu = find_gpu(entry)
    capability, sms = FACTS[entry]
    assert gpu.compute_capability == capability and SM_COUNTS[entry] == sms == sm_count(gpu)
    assert gpu.node_gpus == 8  # HGX boards, 8-OAM platforms, 8-slot PCIe servers
    assert entry in COMPUTE and "no compute figures" not in (speed_profile(gpu).fallback or "")  # its own peaks
    assert is_rocm(gpu) == (entry == "MI355X")
    assert device_name(gpu).startswith(("NVIDIA ", "AMD "))  # vLLM's messages name it as NVML / ROCm do


def test_fp8_tensor_cores_where_the_die_has_them():
    # Ampere (A800) has none: vLLM runs fp8 weights there as W8A16; Hopper, GB202 and CDNA 4 have them
    assert COMPUTE["A800-80GB"].fp8 is None and COMPUTE["A800-40GB"].fp8 is None
    assert COMPUTE["H800"].fp8 == COMPUTE["H100-80GB-SXM"].fp8  # the H800 keeps the H100 SXM's tensor cores
    assert COMPUTE["RTX-5090"].fp8 == 2 * COMPUTE["RTX-5090"].bf16  # 419 = 2 x 209.5 TFLOPS, FP32 accumulate
    assert COMPUTE["H800"].link == COMPUTE["H100-80GB-SXM"].link * 400 / 900  # NVLink 400 GB/s against 900


def test_memory_is_what_torch_reports():
    assert find_gpu("H800").memory_bytes == find_gpu("H100-80GB-SXM").memory_bytes  # both 81559 MiB on nvidia-smi
    for entry, torch_gib, smi_mib in (("RTX-5090", 31.36, 32607), ("RTX-PRO-6000-Workstation", 94.97, 97887),
                                      ("RTX-PRO-6000-Server", 94.97, 97887)):
        gpu = find_gpu(entry)
        assert round(gpu.memory_bytes / GiB, 2) == torch_gib
        reserve = smi_mib * MiB - gpu.memory_bytes  # what the driver keeps: 0.3-0.7 GiB on the other cards
        assert 0.3 * GiB < reserve < 0.7 * GiB
    assert round(find_gpu("MI355X").memory_bytes / GiB, 2) == 287.98


def test_estimate_on_an_h800_plans_from_its_memory():
    plan = estimate_plan("meta-llama/Llama-3.1-8B", "--gpu", "H800", "--max-model-len", "8192")
    budget = plan["budget"]
    assert budget["gpu_memory_bytes"] == 85_017_493_504
    usable = next(t["bytes"] for t in budget["terms"] if t["name"] == "memory")
    assert usable == 78_216_094_024  # 85,017,493,504 x vLLM's default 0.92 = 78,216,094,023.68
    others = sum(t["bytes"] for t in budget["terms"] if t["name"] != "memory")
    assert plan["kv_budget_bytes_per_gpu"] == usable - others
    # a 16-token block: 16 x (2 x 8 KV heads x 128 x 2 bytes x 32 layers = 131,072) = 2 MiB; 512 blocks a request
    assert plan["kv_blocks"] == plan["kv_budget_bytes_per_gpu"] // (2 * MiB)
    assert plan["max_concurrency"] == plan["kv_blocks"] // 512
    h100 = estimate_plan("meta-llama/Llama-3.1-8B", "--gpu", "H100", "--max-model-len", "8192")
    assert plan["kv_budget_bytes_per_gpu"] == h100["kv_budget_bytes_per_gpu"]  # the same memory, the same rules


def _v32(gpu: str, dtype: str) -> dict:
    return estimate_plan("deepseek-ai/DeepSeek-V3.2", "--gpu", gpu, "-tp", "8", "--max-model-len", "32768",
                         "--kv-cache-dtype", dtype)


@pytest.mark.parametrize("dtype", ["auto", "bfloat16", "fp8", "fp8_ds_mla"])
def test_sparse_mla_on_sm120_keeps_fp8_ds_mla_whatever_is_asked(dtype):
    plan = _v32("RTX-PRO-6000-Server", dtype)
    assert plan["engine"]["starts"] and plan["kv_bytes_per_token_per_gpu"] == 48_068
    if dtype == "auto":
        assert plan["kv_dtype"] == "fp8_ds_mla"


def test_sparse_mla_on_hopper_keeps_a_bf16_latent_under_auto():
    assert _v32("H200", "auto")["kv_bytes_per_token_per_gpu"] == 78_324


@pytest.mark.parametrize("model, dtype", [("deepseek-ai/DeepSeek-V3.2", "fp8_e5m2"),
                                          ("deepseek-ai/DeepSeek-V3.2", "nvfp4_ds_mla"),
                                          ("zai-org/GLM-5.2", "bfloat16")])  # GLM's bfloat16 is not rewritten
def test_sparse_mla_on_sm120_refuses_what_its_backend_does_not_list(model, dtype):
    plan = estimate_plan(model, "--gpu", "RTX-5090", "-tp", "8", "--max-model-len", "8192", "--kv-cache-dtype", dtype)
    refusal = plan["engine"]["refusal"]
    assert not plan["engine"]["starts"] and refusal["field"] == "kv_dtype"
    assert refusal["reason"] == (f"No valid attention backend found for cuda (compute capability 12.0) with "
                                 f"kv_cache_dtype {dtype}: no sparse MLA backend takes it (kv_cache_dtype not "
                                 f"supported).")
    if "V3.2" in model:  # its bfloat16 is auto by then, which the backend takes
        assert "bfloat16" in refusal["remedy"]
    else:
        assert "bfloat16" not in refusal["remedy"]


def test_an_a40_holds_what_an_l40_does():
    """The A40 and the L40 are both 48 GB GDDR6 cards (nvidia-smi 46068 MiB each): the same model at the same length
    plans the same KV cache on both; only the decode speed differs (696 against 864 GB/s)."""
    a40, l40 = (estimate_plan("meta-llama/Llama-3.1-8B-Instruct", "--gpu", gpu, "-c", "8192") for gpu in ("A40", "L40"))
    assert a40["kv_capacity_tokens"] == l40["kv_capacity_tokens"] > 0
    assert find_gpu("A40").bandwidth == 696e9
