"""DeepSeek-V4's compressed sparse attention (DeepSeek-V4-Flash): the window, compressed, indexer and compressor
caches as layer kinds, their pages, what a request holds and a decode step reads, the weights, vLLM 0.32.0's rules
(fp8_ds_mla, blocks of 256, the block-outermost groups, buffers) and the refusals. Expected values are hand
arithmetic from the config and vLLM's frozen figures (tests/data/vllm_0.32.0_kv_figures.json cases 824-834, made by
vLLM's own code: benchmarks/vllm_reference/make_figures.py)."""

import json
from pathlib import Path

import pytest
from conftest import run_kvplan

from kvplan.engines.vllm import start
from kvplan.engines.vllm_settings import resolve_settings
from kvplan.engines.vllm_budget import sparse_index_buffers, v4_prefill_workspace
from kvplan.errors import FieldError
from kvplan.model.kinds import V4Compressed, V4CompressorState, V4IndexerKeys, V4Window
from kvplan.model.precision import PRECISIONS, resolve_kv_dtype
from kvplan.model.sources import resolve
from kvplan.plan.capacity import read_bytes
from kvplan.plan.catalog import find_gpu

FLASH = "deepseek-ai/DeepSeek-V4-Flash"
GiB = 2**30
DS_MLA, BF16, FP8 = PRECISIONS["fp8_ds_mla"], PRECISIONS["bf16"], PRECISIONS["fp8_e4m3"]
FROZEN = Path(__file__).parent / "data" / "vllm_0.32.0_kv_figures.json"


def kinds(spec, cls):
    return [layer for layer in spec.layers if isinstance(layer, cls)]


def test_the_layers_follow_compress_ratios():
    """43 layers: [0, 0] + [4, 128] x 20 + [4] (the 44th entry is the MTP layer's, which vLLM skips)."""
    spec = resolve(FLASH)
    assert len(kinds(spec, V4Window)) == 43
    assert sorted(layer.ratio for layer in kinds(spec, V4Compressed)) == [4] * 21 + [128] * 20
    assert len(kinds(spec, V4IndexerKeys)) == 21 and len(kinds(spec, V4CompressorState)) == 21 + 21 + 20
    assert spec.auto_kv_dtype == "fp8_ds_mla" and spec.windows == {128: 43}


def test_a_latent_entry_by_hand():
    """fp8_ds_mla: 448 nope values fp8, 448 / 64 = 7 UE8M0 scale bytes + 1 pad, 64 rope values bf16."""
    window = resolve(FLASH).layers[0]
    assert window.stored_bytes(DS_MLA) == 448 + 7 + 1 + 128 == 584
    assert window.stored_bytes(BF16) == 1024 and window.stored_bytes(FP8) == 512
    with pytest.raises(FieldError, match="DeepSeek-V4 takes"):
        window.stored_bytes(PRECISIONS["nvfp4_ds_mla"])


def test_pages_by_hand():
    """Each page rounded up to 576 bytes under fp8_ds_mla (vLLM's frozen group pages, case 826)."""
    spec = resolve(FLASH)
    window, c4 = kinds(spec, V4Window)[0], kinds(spec, V4Compressed)[0]
    c128, key = kinds(spec, V4Compressed)[1], kinds(spec, V4IndexerKeys)[0]
    assert window.page_bytes(256, 8, DS_MLA) == 65 * 576 == 37440  # 64 tokens x 584 = 37,376
    assert c4.page_bytes(256, 8, DS_MLA) == 37440  # 256 / 4 entries x 584
    assert c128.page_bytes(256, 8, DS_MLA) == 3 * 576  # 2 entries x 584 = 1,168
    assert key.page_bytes(256, 8, DS_MLA) == 15 * 576 == 8640  # 64 keys x 132 = 8,448
    states = {(s.ratio, s.width): s.page_bytes(256, 8, DS_MLA) for s in kinds(spec, V4CompressorState)}
    # float32 rows: 4 x 2 x 2 x 512 x 4 = 32,768 / 4 x 2 x 2 x 128 x 4 = 8,192 / 8 x 2 x 512 x 4 = 32,768
    assert states == {(4, 2048): 57 * 576, (4, 512): 15 * 576, (128, 1024): 57 * 576}


def test_what_one_request_holds_unpaged_at_128k_and_1m():
    spec = resolve(FLASH)

    def held(n):
        return sum(layer.held_bytes(n, 8, DS_MLA) for layer in spec.layers)

    states = 21 * 8 * 8192 + 21 * 8 * 2048 + 20 * 128 * 4096
    for n in (131072, 1048576):
        assert held(n) == 43 * 128 * 584 + 21 * (n // 4) * 584 + 20 * (n // 128) * 584 + 21 * (n // 4) * 132 + states


def test_a_decode_step_reads_topk_entries_every_key_and_the_state_windows_once_per_ratio():
    spec = resolve(FLASH)
    n = 131072
    states = 21 * 8 * 8192 // 4 + 21 * 8 * 2048 // 4 + 20 * 128 * 4096 // 128
    expected = 43 * 128 * 584 + 21 * 512 * 584 + 20 * (n // 128) * 584 + 21 * (n // 4) * 132 + states
    assert read_bytes(spec, 8, DS_MLA, n) == expected
    assert read_bytes(spec, 8, DS_MLA, 1000) == 43 * 128 * 584 + 21 * 250 * 584 + 20 * 7 * 584 + 21 * 250 * 132 + \
        states


def test_the_weights_by_hand():
    """No exact public count for Flash (V4-Pro's checkpoint listing is below): the routed and shared experts, the
    embedding / head and the routers by hand, the total against the model card's rounded 284B. (The exact estimate is
    a regression figure in tests/golden, not a source.)"""
    spec = resolve(FLASH)
    assert spec.param_count("experts") == 43 * 256 * 3 * 4096 * 2048
    assert spec.param_count("shared_experts") == 43 * 3 * 4096 * 2048
    assert spec.param_count("embed") == spec.param_count("lm_head") == 129280 * 4096
    # a gate of 256 x 4,096 a layer; a correction bias on the 40 layers after the 3 hash layers, whose tid2eid
    # tables (129,280 tokens x 6 experts) route instead
    assert spec.param_count("router") == 43 * 256 * 4096 + 40 * 256 + 3 * 129280 * 6
    assert round(spec.weights.parameters / 1e9) == 284
    experts = next(g for g in spec.params if g.name == "experts")
    assert experts.stored == "mxfp4" and experts.bytes == pytest.approx(experts.parameters * 4.25 / 8, rel=1e-9)
    assert next(g for g in spec.params if g.name == "attention").stored == "fp8"


def test_v4_pro_weights_against_its_checkpoint_listing():
    """DeepSeek-V4-Pro's checkpoint as a public model report lists it (search index id 62968290951; every shape and
    dtype, 861,608,274,846 stored elements, reproduced by hand from the list): 864,704,792,696 bytes, of which the MTP
    layer holds 13,956,587,692. kvplan's estimate from the config of what serving loads: 2,857,704 bytes (0.0003 %)
    short of the other 850,748,205,004 (the hash layers' tid2eid tables are int64 there, int32 as vLLM builds them).
    Parameters outside the MTP layer, a packed FP4 byte as two and the e8m0 scales left out, 1,572,997,201,763 by hand;
    kvplan counts the 3 x 129,280 x 6 tid2eid entries too, and 573,462 more (0.00004 %) not traced to a tensor."""
    spec = resolve("deepseek-ai/DeepSeek-V4-Pro")
    assert spec.param_count("experts") == 61 * 384 * 3 * 3072 * 7168
    assert spec.weights.parameters - 3 * 129280 * 6 == pytest.approx(1_572_997_201_763, rel=1e-6)
    assert spec.resident_weight_bytes == 850_748_205_004 - 2_857_704
    assert spec.resident_weight_bytes == pytest.approx(850_748_205_004, rel=4e-6)


def test_v4_pro_mtp_block_against_its_checkpoint_listing():
    """The same listing's mtp.0.* tensors: 13,956,587,692 bytes and 25,840,145,979 parameters (a packed FP4 byte as
    two, the e8m0 scales left out). V4's MTP block is a window-only layer (compress_ratios' entry after the 61
    layers is 0: no compressor or indexer), with fp8 e_proj and h_proj, a [4, 4 x hidden] head collapse and no
    embedding or LM head copies (V3's blocks ship both: 3.7 GB). kvplan's bytes: 85,824 over, the non-expert fp8
    block scales priced as float32 where V4 stores ue8m0 (28,608 of them)."""
    parameters, stored = resolve("deepseek-ai/DeepSeek-V4-Pro").mtp
    assert parameters == 25_840_145_979
    assert stored - 13_956_587_692 == 28_608 * 3
    assert resolve("deepseek-ai/DeepSeek-V3").mtp[0] > 2 * 129280 * 7168  # V3's blocks keep their embed and head


def _start(spec, tp, kv, length, budget, gpu="NVIDIA H100 80GB HBM3"):
    gpu = find_gpu(gpu)
    settings = resolve_settings(length, gpu.name, gpu.memory_bytes)
    return start(spec, tp=tp, precision=resolve_kv_dtype(kv, spec.dtype, spec.auto_kv_dtype), settings=settings,
                 available=[budget]).figures


def test_the_engine_groups_and_blocks_by_hand():
    """Five groups (block-outermost layout: the indexer backend takes only BLHNC / BLNHC): the window caches in two
    groups of 22 and 21, the compressed and indexer caches in one (blocks of 256), the ratio-4 and ratio-128
    compressor states one each. The pool strides blocks by the widest group: 21 x 37,440 + 20 x 1,728 + 21 x 8,640."""
    figures = _start(resolve(FLASH), 8, "auto", 131072, 40 * GiB)
    assert figures.num_kv_cache_groups == 5 and figures.kv_cache_dtype == "fp8_ds_mla"
    assert figures.num_gpu_blocks == 40 * GiB // (21 * 37440 + 20 * 1728 + 21 * 8640) == 42853
    # windows cdiv(127 + 16,384 in flight, 64) + 1 twice; 131,072 / 256; states cdiv(7 + 16,384, 4) + 1 and
    # cdiv(127 + 16,384, 8) + 1
    assert figures.blocks_per_request == 2 * 259 + 512 + 4099 + 2065
    assert figures.block_size == 4  # cache_config.block_size once sized: the smallest group's


def test_kvplan_matches_vllms_frozen_v4_cases():
    cases = [c for c in json.loads(FROZEN.read_text())["cases"] if c["inputs"]["family"] == "deepseek-v4"]
    assert len(cases) == 11 and {c["inputs"]["tp"] for c in cases} == {1, 4, 8}
    spec = resolve(FLASH)
    for case in cases:
        i = case["inputs"]
        figures = _start(spec, i["tp"], i["kv_cache_dtype"], i["max_model_len"] or 1048576,
                         i["available_kv_cache_bytes"])
        assert figures.starts == bool(case.get("starts")), case["id"]
        if case.get("starts"):
            assert (figures.num_gpu_blocks, figures.gpu_kv_cache_tokens, figures.resident_sequences) == (
                case["kv"]["num_gpu_blocks"], case["kv"]["gpu_kv_cache_tokens"], case["resident"]["requests"])
        elif case.get("refusal"):
            assert figures.refusal.estimated_max_model_len == case["refusal"]["estimated_max_model_len"]
        else:
            assert figures.refusal.reason in case["error"]


def test_bfloat16_is_refused_as_vllm_refuses_it_and_auto_is_fp8_ds_mla():
    figures = _start(resolve(FLASH), 8, "bfloat16", 131072, 40 * GiB)
    assert not figures.starts and figures.refusal.reason.startswith(
        "DeepseekV4 fp8_ds_mla layout only supports fp8 kv-cache, got bfloat16.")
    assert _start(resolve(FLASH), 8, "fp8_e5m2", 131072, 40 * GiB).kv_cache_dtype == "fp8_ds_mla"


def test_buffers_by_hand():
    """The shared top-k buffer, 8,192 x 512 int32, in the weights term; the FlashMLA prefill workspace at 1M: 4 rows
    of (262,144 + 128 + 8,192) bf16 latents of 512 and two int32 arrays of 8,192 rows (640 and 1 wide)."""
    spec = resolve(FLASH)
    gpu = find_gpu("NVIDIA H100 80GB HBM3")
    settings = resolve_settings(1048576, gpu.name, gpu.memory_bytes)
    assert sparse_index_buffers(spec, settings) == 8192 * 512 * 4
    assert v4_prefill_workspace(spec, settings) == 4 * 270464 * 512 * 2 + 8192 * 640 * 4 + 8192 * 4


@pytest.mark.parametrize("args, needle", [
    (("--block-size", "128"), "must be a multiple of 256 tokens"),
    (("--speculative-config", '{"method": "mtp", "num_speculative_tokens": 1}'), "not modelled for DeepSeek-V4"),
])
def test_what_kvplan_does_not_model_is_refused_in_one_line(args, needle):
    result = run_kvplan("estimate", FLASH, "--gpu", "h200", *args)
    assert result.returncode == 2 and result.stdout == "" and "Traceback" not in result.stderr
    line, = result.stderr.strip().splitlines()
    assert needle in line, line


def test_a_tp_degree_the_output_groups_do_not_divide_is_a_bad_row():
    """o_groups 8 over tp 16: reported in the plan (tp_valid false), as a degree that does not divide the heads is."""
    result = run_kvplan("estimate", FLASH, "--gpu", "h200", "-tp", "16", "--format", "json")
    assert result.returncode == 0, result.stderr
    (plan,) = json.loads(result.stdout)["plans"]
    assert not plan["tp_valid"] and any("o_groups (8) is not divisible by tp 16" in e for e in plan["tp_errors"])


def test_verify_refuses_v4_on_a_cpu():
    result = run_kvplan("verify", FLASH, "-tp", "8")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    line, = result.stderr.strip().splitlines()
    assert "compressed sparse attention" in line and "use estimate" in line
