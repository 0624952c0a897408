"""Session 55 (sampq): V1's profile sampler peak 0.11.1-0.16 (kvplan/engines/vllm_profile.py
sorting_bytes_per_logit), and the Hub's quantisation settings files and GPTQModel's `dynamic` overrides.

The sampler pass, read by hand release by release. _dummy_sampler_run (gpu_model_runner.py 0.11.1:3900-3970,
0.11.2:3904, 0.12.0:4121, 0.13.0:4268, 0.14.0/0.14.1:4531, 0.16.0:4944; the same SamplingMetadata in all:
temperature 0.5, top_p 0.9, top_k vocab - 1, no logprobs, no penalties) keeps the LM head's bf16 logits [N, V]
while Sampler.forward (sampler.py 0.11.1:87, 0.12.0-0.16.0:90) rebinds its own `logits` to a float32 copy,
greedy-samples (argmax, [N]), divides by the temperature in place (0.11.1:138, 0.12.0-0.16.0:141) and calls
TopKTopPSampler, which on CUDA is forward_native unless VLLM_USE_FLASHINFER_SAMPLER=1 (topk_topp_sampler.py
0.11.1:30-47, 0.12.0-0.16.0:31-58: opt-in from 0.11.1; ROCm's aiter sampler, 0.12 on, only with aiter enabled, and
bypassed from 0.14). apply_top_k_top_p (0.11.1:152-192, 0.12.0/0.13.0:239-279, 0.14.0-0.16.0:243-283), per logit:
  logits.sort -> float32 values 4 + int64 order 8 (outputs that stay to the end);
  during the sort (torch aten/src/ATen/native/cuda/Sort.cpp sort_cuda_kernel, rows longer than 4096 ->
    SortStable.cu launch_stable_sort_kernel): at >= 128 rows (or 1) segmented_sort_pairs' int64 reverse indices 8
    and CUB DeviceSegmentedRadixSort::SortPairs' temporary storage, a third keys buffer (float32 4) and a third
    values buffer (int64 8) since the non-double-buffer call may not overwrite its input
    (dispatch_segmented_radix_sort.cuh InvokePasses): 2 + 4 + 12 + 8 + 12 = 38;
    at 2-127 rows segmented_sort_pairs_by_full_sort: two int2 (index, row) tensors 8 + 8, radix_sort_pairs' float32
    keys output 4 (keys_out nullptr) and DeviceRadixSort's third keys 4 and values 8 buffers: 2 + 4 + 12 + 32 = 50;
  after it: top-k mask (bool 1), probs_sort (float32 4; cumsum in place), top-p mask (bool 1), logits_sort.scatter
    into a new float32 tensor 4: 2 + 4 + 12 + 10 = 28, then freed down to 2 + 4 + 4 before softmax (4) and q (4).
So the peak is the sort: 38 bytes a logit for the usual 256 / 1,024 dummy requests, 50 for 2-127; the 28 priced
before this session was the post-sort phase only. The same torch sort gave the 0.10.1 / 0.11.0 logs (A19 / A20, a
pip install without FlashInfer) their measured 36.5 and 37.1 bytes a logit, the constant fitted there (37).

Session 55 (sampqfix): float32 logits are not copied (sampler.py 0.13.0:90, .to of a float32 tensor returns it);
0.17 on below 8 rows runs the same CUDA sort (apply_top_k_top_p_pytorch, topk_topp_sampler.py 0.17.0:251-299); a
vocabulary of 1,000,000 or more is sorted row by row (SortStable.cu); vLLM's module names family by family for the
`dynamic` rules (0.32.0 model files); dynamic bits vLLM refuses, patterns only the regex package reads, values named
in JSON's words; the Hub listing failing on the network falls back to the cached snapshot."""

import importlib.util
import json
import sys

import pytest

from conftest import run_hub, run_kvplan
from fake_hub import cached_repo, hub_env, repo_handler, serving

GiB = 2**30
MIXTRAL_VOCAB = 32000
GPT_OSS_VOCAB = 201088


def _profile_term(*args) -> dict:
    result = run_kvplan("estimate", *args, "--format", "json")
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)["plans"]
    return next(t for t in row["budget"]["terms"] if t["name"] == "profile_peak")


@pytest.mark.parametrize("engine", ["0.11.1", "0.11.2", "0.12.0", "0.13.0", "0.14.0", "0.14.1", "0.16.0"])
def test_the_sort_peaks_inside_torch_sort_at_1024_requests(engine):
    """Mixtral-8x7B on two H100s: 1,024 dummy requests (vllm serve's default there), bf16 logits: 38 bytes a logit
    (module docstring), 1,024 x 32,000 x 38 = 1,245,184,000 bytes."""
    term = _profile_term("mistralai/Mixtral-8x7B-v0.1", "--gpu", "h100", "--tp", "2", "--context", "8192",
                         "--engine", f"vllm=={engine}")
    assert "1024 requests x 32000 logits x 38 B (top-k/top-p by sorting)" in term["source"]


def test_between_2_and_127_requests_torch_sorts_flat():
    """64 dummy requests: segmented_sort_pairs_by_full_sort, 50 bytes a logit (module docstring)."""
    term = _profile_term("mistralai/Mixtral-8x7B-v0.1", "--gpu", "h100", "--tp", "2", "--context", "8192",
                         "--engine", "vllm==0.13.0", "--max-num-seqs", "64")
    assert "64 requests x 32000 logits x 50 B (top-k/top-p by sorting)" in term["source"]


@pytest.mark.parametrize("requests, per_logit", [(1, 38), (2, 50), (127, 50), (128, 38), (1024, 38)])
def test_sorting_bytes_by_row_count(requests, per_logit):
    """bf16 logits (width 2), a 201,088 vocabulary: one row is a single large segment (an nsort int64 index array 8
    and CUB's third keys and values buffers 12: 2 + 4 + 12 + 20 = 38); 2-127 the flat sort 50; from 128 the
    segmented sort 38."""
    from kvplan.engines.vllm_profile import sorting_bytes_per_logit

    assert sorting_bytes_per_logit(2, requests, GPT_OSS_VOCAB) == per_logit


def test_a_short_vocabulary_sorts_in_place():
    """Rows of at most 4,096 take torch's in-place bitonic sort (Sort.h should_use_small_sort): no buffers beside the
    outputs, so the post-sort phase sets the peak: 2 + 4 + 12 + 2 + 4 + 4 = 28."""
    from kvplan.engines.vllm_profile import sorting_bytes_per_logit

    assert sorting_bytes_per_logit(2, 1024, 4096) == 28
    assert sorting_bytes_per_logit(2, 1024, 4097) == 38


@pytest.mark.parametrize("requests, in_place, per_logit", [
    (1, False, 38), (2, False, 28), (1024, False, 28), (2, True, 28), (3, True, 25), (1024, True, 24)])
def test_a_vocabulary_of_a_million_sorts_row_by_row(requests, in_place, per_logit):
    """nsort >= 1,000,000 (SortStable.cu launch_stable_sort_kernel) takes segmented_sort_large_segments at any row
    count: one row's int64 index array (8) and radix_sort_pairs' third keys and values (12), reused row after row:
    20 bytes a logit of one row, 20 / rows a logit, beside the logits 2, their float32 copy 4 and the outputs 12.
    2 rows: 18 + 10 = 28, the post-sort phase's 18 + 10 (0.16's new scattered tensor) too; 3 rows in place:
    18 + ceil(20 / 3) = 25 over the post-sort 18 + 6; 1,024 rows: the post-sort phase, 28 or 24. One row short of
    a million, 2 rows sort flat: 50."""
    from kvplan.engines.vllm_profile import sorting_bytes_per_logit

    assert sorting_bytes_per_logit(2, requests, 1_000_000, in_place_scatter=in_place) == per_logit
    assert sorting_bytes_per_logit(2, 2, 999_999) == 50


def test_the_boundary_releases_keep_their_own_paths():
    """0.11.0 keeps the fitted FlashInfer constant (37); 0.17.0 masks with the Triton kernel from 8 requests
    (topk_topp_sampler.py 0.17.0:245-255): 2 + 12 bytes a logit and the cached rows."""
    args = ("mistralai/Mixtral-8x7B-v0.1", "--gpu", "h100", "--tp", "2", "--context", "8192", "--engine")
    assert "x 37 B (FlashInfer)" in _profile_term(*args, "vllm==0.11.0")["source"]
    assert "1024 requests x 32000 logits x 14 B + Triton" in _profile_term(*args, "vllm==0.17.0")["source"]


@pytest.mark.parametrize("engine", ["0.17.0", "0.19.0", "0.20.0"])
@pytest.mark.parametrize("requests, per_logit", [(1, 38), (4, 50), (7, 50)])
def test_below_8_requests_0_17_sorts_on_the_gpu_too(engine, requests, per_logit):
    """Below 8 rows apply_top_k_top_p takes apply_top_k_top_p_pytorch (topk_topp_sampler.py 0.17.0:251-256, the same
    in 0.19.0 / 0.20.0): logits.sort (:279), the same CUDA sort as 0.11.1-0.16's, then scatter_ into the logits in
    place (:299). The sort's peak: 1 row 2 + 4 + 12 + 20 = 38, 2-7 rows 2 + 4 + 12 + 32 = 50 (module docstring);
    before, width + 22 = 24 (the post-sort phase alone) was priced."""
    term = _profile_term("mistralai/Mixtral-8x7B-v0.1", "--gpu", "h100", "--tp", "2", "--context", "8192",
                         "--engine", f"vllm=={engine}", "--max-num-seqs", str(requests))
    assert f"{requests} requests x 32000 logits x {per_logit} B (top-k/top-p by sorting)" in term["source"]


def test_the_in_place_scatter_sets_the_short_vocabulary_peak():
    """Rows of at most 4,096 sort in place (no buffers): the post-sort phase is the peak, 2 + 4 + 12 + 2 + 4 = 24
    with 0.17's scatter_ in place, 28 with 0.16's new scattered tensor."""
    from kvplan.engines.vllm_profile import sorting_bytes_per_logit

    assert sorting_bytes_per_logit(2, 4, 4096, in_place_scatter=True) == 24
    assert sorting_bytes_per_logit(2, 4, 4096) == 28


def test_float32_logits_are_not_copied():
    """--dtype float32: the LM head's logits are float32 already and Sampler.forward's logits.to(torch.float32)
    (sampler.py 0.13.0:90) hands them back without a copy. 0.13.0, 1,024 rows: logits 4 + sorted values 4 + int64
    order 8 + reverse indices 8 + CUB's keys 4 and values 8 = 36 (40 before, counting a copy). 0.17.0 from 8 rows
    (topk_topp_sampler.py 0.17.0:251-252, the Triton mask in place): logits 4 + softmax 4 + exponential q 4 = 12."""
    args = ("mistralai/Mixtral-8x7B-v0.1", "--gpu", "h100", "--tp", "2", "--context", "8192", "--dtype", "float32",
            "--engine")
    assert "1024 requests x 32000 logits x 36 B (top-k/top-p by sorting)" in _profile_term(*args, "vllm==0.13.0")[
        "source"]
    assert "1024 requests x 32000 logits x 12 B + Triton" in _profile_term(*args, "vllm==0.17.0")["source"]


def test_gpt_oss_120b_sampler_on_0_11_1_matches_the_0_11_0_logs_measure():
    """gpt-oss-120b on an H100 with 0.11.1: 1,024 x 201,088 x 38 = 7,824,736,256 bytes (7.29 GiB) of sampler pass
    beside the forward's hidden states profile_run holds, (8,192 tokens + 1,024 rows) x 2,880 x 2 = 53,084,160 (MXFP4
    experts: no fused-MoE workspace kept): 7,877,820,416, above the forward's 0.69 GiB; against 37 a logit fitted on
    the 0.11.0 log (A20), whose pip install ran this same torch sort."""
    term = _profile_term("openai/gpt-oss-120b", "--gpu", "h100", "--context", "8192", "--engine", "vllm==0.11.1")
    assert "1024 requests x 201088 logits x 38 B" in term["source"]
    assert term["bytes"] == 7_824_736_256 + 53_084_160 == 7_877_820_416


# ---- the settings file on the Hub: matched by the ending of its name, as vLLM globs it ------------------------------
# vLLM's get_quant_config with no quantization_config in the config (weight_utils.py 0.11.0:260-292, 0.32.0:332-380,
# 0.34.0:363-415): snapshot_download(allow_patterns="*.json") of the repo, glob(folder/*.json) (the top level only,
# no hidden name), and the files whose path ends with one of the -q class's get_config_filenames() (GPTQ:
# quantize_config.json; AWQ: quant_config.json, quantize_config.json): none refused, more than one refused, one read.

TINY = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 256, "intermediate_size": 512,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 1000,
        "max_position_embeddings": 4096, "torch_dtype": "float16", "tie_word_embeddings": False}
GPTQ_FILE = {"bits": 4, "group_size": 128, "desc_act": False, "sym": True}
AWQ_FILE = {"zero_point": True, "q_group_size": 128, "w_bit": 4, "version": "GEMM"}


# A 4-bit GPTQ layer of out x in, groups of 128 (qweight in x out / 2, qzeros (in / 128) x out / 2, fp16 scales
# (in / 128) x out x 2 bytes): q and o 256 x 256: 32,768 + 256 + 1,024 = 34,048; k and v 128 x 256: 17,024; gate and
# up 512 x 256 and down 256 x 512: 65,536 + 512 + 2,048 = 68,096. A layer: 2 x 34,048 + 2 x 17,024 + 3 x 68,096 =
# 306,432. The fp16 rest: embed + lm_head 2 x 1,000 x 256 x 2 = 1,024,000, two norms a layer 2 x 2 x 256 x 2 =
# 2,048, the final norm 512: 1,026,560.
INT4_LAYER = 306_432
FP16_REST = 1_026_560
GPTQ_BYTES = 1_639_424  # 2 x 306,432 + 1,026,560


@pytest.fixture
def hub():
    """A fake Hub of one repo, acme/tiny (fake_hub.repo_handler): the handler, its endpoint."""
    handler = repo_handler({})
    with serving(handler) as endpoint:
        yield handler, endpoint


def _hub_estimate(hub, tmp_path, files: dict, method: str):
    handler, endpoint = hub
    handler.hold({"config.json": TINY, **files})
    return run_hub("estimate", "acme/tiny", "-q", method, "--gpu", "h100", "-c", "4096", "--format", "json",
                         env=hub_env(tmp_path, endpoint))


def test_a_hub_file_ending_quantize_config_json_is_read(hub, tmp_path):
    """Before, kvplan asked for quantize_config.json by name and refused; vLLM's glob takes any *quantize_config.json:
    the weights are the GPTQ checkpoint's, 2 x 306,432 + 1,026,560 = 1,639,424 bytes."""
    r = _hub_estimate(hub, tmp_path, {"model_quantize_config.json": GPTQ_FILE}, "gptq")
    assert r.returncode == 0, r.stderr
    model = json.loads(r.stdout)["model"]
    assert (model["weights_bytes"], model["weights_dtype"]) == (GPTQ_BYTES, "int4-gptq")
    assert "gptq settings read from model_quantize_config.json beside config.json" in " ".join(model["rules"])
    asked = hub[0].asked
    assert asked["model_quantize_config.json"] and not asked["quantize_config.json"]


def test_awq_meets_modelopts_hf_quant_config_json_first(hub, tmp_path):
    """hf_quant_config.json ends with quant_config.json, but vLLM's AWQ glob never sees it: get_config has already
    made it hf_config.quantization_config (transformers_utils/config.py 0.32.0:890-902), so get_quant_config globs
    nothing, and this one names no quant_method: ModelConfig's "(None) does not match" (config/model.py
    0.34.0:1472-1481)."""
    r = _hub_estimate(hub, tmp_path, {"quant_config.json": AWQ_FILE, "hf_quant_config.json": {"producer": {}}}, "awq")
    assert r.returncode == 2 and "(None) does not match" in r.stderr, r.stderr
    assert "settings files" not in r.stderr


def test_a_file_in_a_sub_folder_is_not_globbed(hub, tmp_path):
    r = _hub_estimate(hub, tmp_path, {"gptq/quantize_config.json": GPTQ_FILE}, "gptq")
    assert r.returncode == 2 and "no quantize_config.json lies beside its config.json" in r.stderr, r.stderr
    assert not hub[0].asked["quantize_config.json"]


def test_offline_the_cached_snapshot_is_globbed_alike(tmp_path):
    cached_repo(tmp_path, "acme/tiny-gptq", {"config.json": TINY, "tiny_quantize_config.json": GPTQ_FILE})
    r = run_hub("estimate", "acme/tiny-gptq", "-q", "gptq", "--gpu", "h100", "-c", "4096", "--format", "json",
                      env=hub_env(tmp_path, offline=True))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["model"]["weights_bytes"] == GPTQ_BYTES


def test_a_listing_that_cannot_reach_the_hub_falls_back_to_the_snapshot(tmp_path):
    """Online, but nothing answers at HF_ENDPOINT (a closed port): config.json comes from the cache (hub.py
    _fetch_config), and the repo's listing failing on the network, the cached snapshot is globbed as offline
    (_settings_files): its tiny_quantize_config.json read, the GPTQ total 1,639,424."""
    import socket

    cached_repo(tmp_path, "acme/tiny-gptq", {"config.json": TINY, "tiny_quantize_config.json": GPTQ_FILE})
    with socket.socket() as probe:  # a port nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    r = run_hub("estimate", "acme/tiny-gptq", "-q", "gptq", "--gpu", "h100", "-c", "4096", "--format", "json",
                      env=hub_env(tmp_path, f"http://127.0.0.1:{port}"))
    assert r.returncode == 0, r.stderr
    model = json.loads(r.stdout)["model"]
    assert (model["weights_bytes"], model["weights_dtype"]) == (GPTQ_BYTES, "int4-gptq")
    assert "gptq settings read from tiny_quantize_config.json" in " ".join(model["rules"])


def test_a_hidden_file_is_not_globbed(tmp_path):
    """glob's * skips a leading dot: a local folder's .quantize_config.json is not read."""
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(TINY))
    (folder / ".quantize_config.json").write_text(json.dumps(GPTQ_FILE))
    r = run_kvplan("estimate", folder, "-q", "gptq")
    assert r.returncode == 2 and "no quantize_config.json lies beside" in r.stderr


# ---- GPTQModel's `dynamic`: per-module overrides, as vLLM applies them -------------------------------------------
# vLLM utils/gptq_utils.py get_dynamic_override (0.11.0:54-72, 0.32.0:85-103): the rules in order, re.match against
# vLLM's module name (model.layers.1.self_attn.qkv_proj, model.layers.1.mlp.gate_up_proj, ...: vLLM's own test,
# tests/quantization/test_gptq_dynamic.py 0.14.0:55-80, names them so); the first match decides; "-:" ->
# UnquantizedLinearMethod (0.32.0:189-195), else bits / group_size override the config's (override_config :55-61).
# An 8-bit layer of out x in at groups of g, GPTQ layout: qweight in x out, qzeros (in / g) x out, fp16 scales
# (in / g) x out x 2. Groups of 32: 256 x 256: 65,536 + 3 x 8 x 256 = 71,680; 128 x 256: 35,840; 512 x 256 and
# 256 x 512: 131,072 + 3 x 4,096 = 143,360 (a layer 2 x 71,680 + 2 x 35,840 + 3 x 143,360 = 645,120). Groups of 128:
# down 256 x 512: 131,072 + 3 x 4 x 256 = 134,144. The fp16 layer: (2 x 256 x 256 + 2 x 128 x 256 + 3 x 512 x 256)
# x 2 = 1,179,648; its q, k and v alone (256 + 2 x 128) x 256 x 2 = 262,144.
FP16_LAYER = 1_179_648


def _gptq_folder(tmp_path, dynamic, name="ckpt"):
    folder = tmp_path / name
    folder.mkdir()
    qcfg = {"quant_method": "gptq", **GPTQ_FILE, "dynamic": dynamic}
    (folder / "config.json").write_text(json.dumps({**TINY, "quantization_config": qcfg}))
    return folder


def _weights(folder) -> int:
    r = run_kvplan("estimate", folder, "--gpu", "h100", "-c", "4096", "--format", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["model"]["weights_bytes"]


@pytest.mark.parametrize("dynamic, layer0, layer1", [
    # vLLM's test model's shape: layer 1 at 8 bits, groups of 32 (2 x 71,680 + 2 x 35,840 + 3 x 143,360 = 645,120)
    ({r"+:.*\.1\..*": {"bits": 8, "group_size": 32}}, INT4_LAYER, 645_120),
    ({r"-:model\.layers\.1\..*": {}}, INT4_LAYER, FP16_LAYER),  # layer 1 left 16-bit
    ({r".*down_proj": {"bits": 8}}, 372_480, 372_480),  # bare = "+:": 306,432 - 68,096 + 134,144
    ({r"-:.*\.1\..*": {}, r"+:.*\.1\..*": {"bits": 8}}, INT4_LAYER, FP16_LAYER),  # the first match decides
    ({r"+:.*\.1\..*": {"desc_act": False}, r"-:.*\.1\..*": {}}, INT4_LAYER, INT4_LAYER),  # ... keeping the config's
    ({r"-:.*\.q_proj": {}}, INT4_LAYER, INT4_LAYER),  # vLLM's module is qkv_proj: an unfused name never matches
    ({r"-:self_attn": {}}, INT4_LAYER, INT4_LAYER),  # re.match anchors at the start of the full name
    # q, k and v 16-bit, o_proj 4-bit: 306,432 - 34,048 - 2 x 17,024 + 262,144 = 500,480
    ({r"-:.*self_attn\.qkv_proj": {}}, 500_480, 500_480),
])
def test_dynamic_rules_price_each_module(tmp_path, dynamic, layer0, layer1):
    assert _weights(_gptq_folder(tmp_path, dynamic)) == layer0 + layer1 + FP16_REST


def test_a_skipped_fused_moe_stays_16_bit(tmp_path):
    """Qwen3-MoE: vLLM's FusedMoE is model.layers.N.mlp.experts (qwen3_moe.py 0.32.0); "-:" on it gives
    UnquantizedFusedMoEMethod (auto_gptq.py 0.32.0:69-86). 4 experts x 3 matrices of 128 x 256 in fp16 = 786,432
    bytes a layer, 1,572,864 for the two; at 4 bits each 128 x 256 (out x in: qweight 16,384 + qzeros 2 x 128 / 2
    + scales 2 x 128 x 2) or 256 x 128 matrix is 17,024 bytes: 2 x 4 x 3 x 17,024 = 408,576."""
    from kvplan.model.sources import resolve

    moe = {**TINY, "architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe", "num_experts": 4,
           "num_experts_per_tok": 2, "moe_intermediate_size": 128, "head_dim": 64}
    for dynamic, expected in (({r"-:.*\.mlp\.experts": {}}, 2 * 4 * 3 * 128 * 256 * 2),
                              ({}, 408_576)):
        folder = tmp_path / f"moe{len(dynamic)}"
        folder.mkdir()
        qcfg = {"quant_method": "gptq", **GPTQ_FILE, "dynamic": dynamic}
        (folder / "config.json").write_text(json.dumps({**moe, "quantization_config": qcfg}))
        experts = next(g for g in resolve(str(folder)).params if g.name == "experts")
        assert experts.bytes == expected, dynamic


# ---- vLLM's module names, family by family (read in 0.32.0's model files) ---------------------------------------
SMALL = {"hidden_size": 256, "intermediate_size": 512, "num_attention_heads": 4, "num_key_value_heads": 2,
         "vocab_size": 1000, "max_position_embeddings": 4096, "torch_dtype": "float16"}
JAMBA = {**SMALL, "architectures": ["JambaForCausalLM"], "model_type": "jamba", "num_hidden_layers": 2,
         "attn_layer_period": 2, "attn_layer_offset": 1, "expert_layer_period": 2, "expert_layer_offset": 1,
         "num_experts": 4, "num_experts_per_tok": 2, "mamba_d_state": 16, "mamba_d_conv": 4, "mamba_expand": 2,
         "mamba_dt_rank": 16}
NEMOTRON_H = {**SMALL, "architectures": ["NemotronHForCausalLM"], "model_type": "nemotron_h", "num_hidden_layers": 4,
              "hybrid_override_pattern": "M*-E", "mamba_num_heads": 8, "mamba_head_dim": 64, "n_groups": 1,
              "ssm_state_size": 16, "conv_kernel": 4, "attention_head_dim": 64, "n_routed_experts": 4,
              "num_experts_per_tok": 2, "moe_intermediate_size": 128, "moe_shared_expert_intermediate_size": 128}
LFM2 = {**SMALL, "architectures": ["Lfm2ForCausalLM"], "model_type": "lfm2", "num_hidden_layers": 2,
        "layer_types": ["conv", "full_attention"], "conv_L_cache": 3, "conv_dim": 256, "block_ff_dim": 768}
LFM2_MOE = {**SMALL, "architectures": ["Lfm2MoeForCausalLM"], "model_type": "lfm2_moe", "num_hidden_layers": 2,
            "layer_types": ["conv", "full_attention"], "conv_L_cache": 3, "conv_dim": 256, "num_dense_layers": 1,
            "num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 128}
FALCON = {**SMALL, "architectures": ["FalconForCausalLM"], "model_type": "falcon", "num_hidden_layers": 1,
          "new_decoder_architecture": True, "num_kv_heads": 2}
QWEN3_NEXT = {**SMALL, "architectures": ["Qwen3NextForCausalLM"], "model_type": "qwen3_next", "num_hidden_layers": 2,
              "head_dim": 64, "full_attention_interval": 2, "linear_num_key_heads": 2, "linear_num_value_heads": 4,
              "linear_key_head_dim": 32, "linear_value_head_dim": 32, "linear_conv_kernel_dim": 4, "num_experts": 4,
              "num_experts_per_tok": 2, "moe_intermediate_size": 128, "shared_expert_intermediate_size": 128}


@pytest.mark.parametrize("raw, layers", [
    # jamba.py: the Mamba layer's MambaMixer under mixer (:142), every layer's MLP or MoE under feed_forward
    # (:150-158, :246-254; LlamaMLP's gate_up_proj / down_proj, JambaMoE's experts :94), the attention layer's
    # qkv_proj and o_proj directly under the layer (:222, :229)
    (JAMBA, [{"0.mixer", "0.feed_forward.gate_up_proj", "0.feed_forward.down_proj"},
             {"1.qkv_proj", "1.o_proj", "1.feed_forward.experts"}]),
    # nemotron_h.py: every layer one mixer: MambaMixer2 (:406), NemotronHAttention's qkv_proj / o_proj (:468-475,
    # :527), NemotronHMLP's up_proj / down_proj (:116-125, :314), NemotronHMoE's experts and shared_experts
    # (:193, :242, :357)
    (NEMOTRON_H, [{"0.mixer"}, {"1.mixer.qkv_proj", "1.mixer.o_proj"}, {"2.mixer.up_proj", "2.mixer.down_proj"},
                  {"3.mixer.experts", "3.mixer.shared_experts.up_proj", "3.mixer.shared_experts.down_proj"}]),
    # lfm2.py: ShortConv under short_conv (:261), Lfm2Attention's qkv_proj and out_proj (:138, :145, :210),
    # Lfm2MLP's w13 and w2 under feed_forward (:75-82, :220, :271)
    (LFM2, [{"0.short_conv", "0.feed_forward.w13", "0.feed_forward.w2"},
            {"1.self_attn.qkv_proj", "1.self_attn.out_proj", "1.feed_forward.w13", "1.feed_forward.w2"}]),
    # lfm2_moe.py: the same, and Lfm2MoeSparseMoeBlock's experts under feed_forward (:151, :306)
    (LFM2_MOE, [{"0.short_conv", "0.feed_forward.w13", "0.feed_forward.w2"},
                {"1.self_attn.qkv_proj", "1.self_attn.out_proj", "1.feed_forward.experts"}]),
    # qwen3_next.py: the gated DeltaNet under linear_attn (:504), the single shared expert shared_expert (:165 of
    # qwen2_moe.py's pattern, Qwen3NextSparseMoeBlock)
    (QWEN3_NEXT, [{"0.linear_attn", "0.mlp.experts", "0.mlp.shared_expert.gate_up_proj",
                   "0.mlp.shared_expert.down_proj"},
                  {"1.self_attn.qkv_proj", "1.self_attn.o_proj", "1.mlp.experts", "1.mlp.shared_expert.gate_up_proj",
                   "1.mlp.shared_expert.down_proj"}]),
])
def test_vllms_module_names_by_family(raw, layers):
    """Each linear module's full name as kvplan gives it to a `dynamic` rule: model.layers.N. + the names above (the
    mixers' projections unnamed: their block)."""
    names = _layer_modules(raw)
    assert names == [{f"model.layers.{name}" for name in layer} for layer in layers]


def test_falcon_and_gpt2_layers_are_transformer_h():
    """falcon.py: FalconModel's layers transformer.h (:391, :493), self_attention.query_key_value / .dense (:140,
    :157, :279), mlp.dense_h_to_4h / dense_4h_to_h (:241, :254, :281); gpt2.py: attn.c_attn / c_proj (:86, :93,
    :162), mlp.c_fc / c_proj (:130, :137, :165), transformer.h (:214, :277)."""
    assert _layer_modules(FALCON) == [{"transformer.h.0.self_attention.query_key_value",
                                       "transformer.h.0.self_attention.dense", "transformer.h.0.mlp.dense_h_to_4h",
                                       "transformer.h.0.mlp.dense_4h_to_h"}]
    gpt2 = {**SMALL, "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_layer": 1, "n_positions": 1024}
    assert _layer_modules(gpt2) == [{"transformer.h.0.attn.c_attn", "transformer.h.0.attn.c_proj",
                                     "transformer.h.0.mlp.c_fc", "transformer.h.0.mlp.c_proj"}]


def test_shared_expert_naming_is_decided_once():
    """The shared experts' name (qwen2_moe.py:165 shared_expert for a single one of its own size, llama4.py:113;
    deepseek_v2.py shared_experts) is what both the `dynamic` names and compressed-tensors' projection style read."""
    from kvplan.model.config import Config
    from kvplan.model.params import projection_styles
    from kvplan.model.tensors import vllm_blocks

    for raw, name, style in ((QWEN3_NEXT, "mlp.shared_expert", "shared_expert"),
                             ({"model_type": "llama4_text"}, "feed_forward.shared_expert", "shared_expert"),
                             ({"model_type": "deepseek_v3"}, "mlp.shared_experts", None),
                             (NEMOTRON_H, "mixer.shared_experts", None)):
        cfg = Config(raw, "t")
        assert vllm_blocks(cfg)["shared_experts"] == name
        assert projection_styles(cfg).get("shared_experts") == style
    assert vllm_blocks(Config({"model_type": "mixtral"}, "t"))["experts"] == "block_sparse_moe.experts"
    assert projection_styles(Config(QWEN3_NEXT, "t")).get("linear") is None  # linear_attn, _PROJECTIONS["linear"]
    assert projection_styles(Config(JAMBA, "t"))["linear"] == "mixer"


def _layer_modules(raw) -> list:
    """{full module name} of each decoder layer's linear tensors, as kvplan names them for the `dynamic` rules."""
    from kvplan.model.config import Config
    from kvplan.model.gptq_dynamic import module_name
    from kvplan.model.params import decoder_layers
    from kvplan.model.tensors import layer_tensors, vllm_blocks

    cfg = Config(raw, "t")
    dims = {"hidden": 256, "heads": 4, "kv_heads": 2, "head_dim": 64}
    n = cfg.int(("num_hidden_layers", "n_layer"))
    return [{module_name(t, i, vllm_blocks(cfg)) for t in layer_tensors(cfg, dims, *kind) if t.linear}
            for i, kind in enumerate(decoder_layers(cfg, n))]


def test_a_jamba_rule_on_feed_forward_meets_its_mlp(tmp_path):
    """Before, Jamba's MLP was named mlp.gate_up_proj and this rule met nothing. Layer 0's dense MLP (gate and up
    512 x 256, down 256 x 512) stays fp16: 3 x 131,072 x 2 = 786,432 bytes, against 3 x 68,096 = 204,288 at 4 bits
    (qweight 65,536 + qzeros 512 + scales 2,048 a matrix)."""
    from kvplan.model.sources import resolve

    for dynamic, dense in (({r"-:.*\.feed_forward\.(gate_up|down)_proj": {}}, 786_432), ({}, 204_288)):
        folder = tmp_path / f"jamba{len(dynamic)}"
        folder.mkdir()
        qcfg = {"quant_method": "gptq", **GPTQ_FILE, "dynamic": dynamic}
        (folder / "config.json").write_text(json.dumps({**JAMBA, "quantization_config": qcfg}))
        assert next(g for g in resolve(str(folder)).params if g.name == "dense").bytes == dense, dynamic


def test_an_lfm2_rule_on_out_proj_meets_its_attention_output(tmp_path):
    """LFM2's attention output is self_attn.out_proj (lfm2.py:145): "-:.*out_proj" keeps it fp16, 256 x 256 x 2 =
    131,072 bytes, where at 4 bits it is 34,048 (32,768 + 256 + 1,024); q / k / v stay 4-bit (34,048 + 2 x 17,024)."""
    from kvplan.model.sources import resolve

    for dynamic, attention in (({r"-:.*\.out_proj": {}}, 131_072 + 68_096), ({}, 34_048 + 68_096)):
        folder = tmp_path / f"lfm2{len(dynamic)}"
        folder.mkdir()
        qcfg = {"quant_method": "gptq", **GPTQ_FILE, "dynamic": dynamic}
        (folder / "config.json").write_text(json.dumps({**LFM2, "quantization_config": qcfg}))
        group = next(g for g in resolve(str(folder)).params if g.name == "attention")
        assert group.bytes == attention + 2 * 64 * 2, dynamic  # + the q / k norms, 64 wide each, fp16


def test_a_bad_dynamic_pattern_is_one_error_line(tmp_path):
    from conftest import one_error_line

    line = one_error_line(run_kvplan("estimate", _gptq_folder(tmp_path, {"-:(": {}}), "--gpu", "h100"))
    # "(" is refused by regex and by Python's re alike; without regex (README's install, which does not require it)
    # the line says re refused it (test_without_regex_such_a_pattern_is_kvplans_limit)
    said = "not a regular expression" if importlib.util.find_spec("regex") else "which Python's re refuses"
    assert line.startswith(f"kvplan: error: config field 'quantization_config.dynamic' holds \"-:(\", {said} ")
    line = one_error_line(run_kvplan("estimate", _gptq_folder(tmp_path, {".*": 8}, "two"), "--gpu", "h100"))
    assert 'maps ".*" to a number, not an object of overrides' in line


BITS_WORDS = ("an integer from 1 to 8, the widths some vLLM class takes: AWQ 4, or 8 with Marlin; GPTQ 2, 3, 4 or 8, "
              "with Marlin 4 or 8; INC 2 to 8; BitBLAS 1, 2, 4 or 8")


@pytest.mark.parametrize("override, shown, words", [
    ({"bits": 32}, "bits 32", BITS_WORDS), ({"bits": True}, "bits true", BITS_WORDS),
    ({"group_size": 0}, "group_size 0", "a positive integer, or -1 for one group a row"),
    ({"group_size": -7}, "group_size -7", "a positive integer, or -1 for one group a row"),
])
def test_dynamic_values_no_class_takes_are_refused_as_the_configs_are(tmp_path, override, shown, words):
    """override_config takes any int for the module, true too (gptq_utils.py 0.32.0:56-61); kvplan reads an applied
    rule's bits and group_size with the config's own validators, so what it refuses in the config it refuses in a rule.
    Before: group_size 0 and -7 were priced silently at the config's 128."""
    from conftest import one_error_line

    r = run_kvplan("estimate", _gptq_folder(tmp_path, {"+:.*": override}), "--gpu", "h100")
    assert one_error_line(r) == (f"kvplan: error: config field 'quantization_config.dynamic' gives \"+:.*\" {shown}, "
                                 f"which vLLM applies to the modules the rule decides; a rule's {shown.split()[0]}, as "
                                 f"the config's, must be {words}.")


@pytest.mark.parametrize("engine, override, reason", [
    # AutoGPTQ's override_config: (bits, sym) in TYPE_MAP {(4, true), (8, true)} (gptq_utils.py 0.32.0:76-80)
    ("vllm==0.32.0", {"bits": 5}, "Unsupported quantization config: bits=5, sym=True"),
    ("vllm==0.32.0", {"bits": 1}, "Unsupported quantization config: bits=1, sym=True"),
    ("vllm==0.32.0", {"sym": False}, "Unsupported quantization config: bits=4, sym=False"),
    # then its linear method asks Marlin for the group size (auto_gptq.py 0.32.0:317-331)
    ("vllm==0.32.0", {"group_size": 7},
     "Marlin does not support group_size = 7. Only group_sizes = [-1, 32, 64, 128] are supported."),
    # 0.21 on an H100: GPTQ Marlin claims the checkpoint (4-bit, sym, group 128) and its override_config checks the
    # same TYPE_MAP (gptq_utils.py 0.21.0:46-50)
    ("vllm==0.21.0", {"bits": 3}, "Unsupported quantization config: bits=3, sym=True"),
])
def test_dynamic_values_a_release_refuses_are_its_refusal_as_the_configs_are(tmp_path, engine, override, reason):
    """The same path as the config's own bits: exit 0, the engine's refusal in vLLM's words (before: exit 2 for bits 5
    and 1, and nothing for group_size 7 or sym false)."""
    r = run_kvplan("estimate", _gptq_folder(tmp_path, {"+:.*": override}), "--gpu", "h100", "-c", "4096",
                   "--engine", engine, "--format", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["plans"][0]["engine"]["refusal"]["reason"] == reason


def test_a_rules_bits_vllm_would_refuse_still_price_under_engine_none(tmp_path):
    """As the config's bits 5 prices int5: a 5-bit layer 1 at groups of 128 (vLLM's GPTQ layout, qweight 5 bits a
    weight, per 128 inputs and output row a fp16 scale and a 5-bit zero): 2 x 256 x 256 + 2 x 128 x 256 + 3 x 512 x
    256 = 589,824 weights, 368,640 bytes, and 589,824 / 128 x 2.625 = 12,096 of scales and zeros."""
    r = run_kvplan("estimate", _gptq_folder(tmp_path, {r"+:.*\.1\..*": {"bits": 5}}), "--engine", "none", "-c",
                   "4096", "--format", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["model"]["weights_bytes"] == INT4_LAYER + 368_640 + 12_096 + FP16_REST


def test_dynamic_bits_vllm_ignores_keep_the_configs(tmp_path):
    """A non-integer bits ("8") fails override_config's isinstance(weight_bits, int): the config's 4 stays, every
    layer 4-bit (2 x 306,432 + the fp16 rest). A "-:" rule's object is never read (gptq_utils.py 0.32.0:93-95)."""
    for i, dynamic in enumerate(({"+:.*": {"bits": "8"}}, {r"-:nothing": {"bits": 5}})):
        folder = _gptq_folder(tmp_path, dynamic, name=f"ckpt{i}")
        assert _weights(folder) == 2 * 306_432 + FP16_REST, dynamic


# ---- the patterns: vLLM compiles them with the regex package (gptq_utils.py 0.11.0:9, 0.34.0:8) ---------------

def test_a_pattern_only_regex_reads_is_read_where_regex_is_installed(tmp_path):
    r"""\p{L} (any letter) is regex's, not Python's re's: "-:\p{L}.*" matches every module (model.layers...
    starts with a letter), so both layers stay fp16 (2 x 1,179,648 + the rest)."""
    pytest.importorskip("regex")
    assert _weights(_gptq_folder(tmp_path, {r"-:\p{L}.*": {}})) == 2 * FP16_LAYER + FP16_REST


def test_without_regex_such_a_pattern_is_kvplans_limit(monkeypatch):
    """kvplan does not require regex: without it Python's re refuses \\p, and the error says the limit is kvplan's."""
    from kvplan.errors import KvplanError
    from kvplan.model.gptq_dynamic import dynamic_rules

    monkeypatch.setitem(sys.modules, "regex", None)  # import regex raises ImportError
    with pytest.raises(KvplanError) as refused:
        dynamic_rules({"dynamic": {r"-:\p{L}.*": {}}})
    assert str(refused.value).startswith("config field 'quantization_config.dynamic' holds \"-:\\\\p{L}.*\", which "
                                         "Python's re refuses (bad escape \\p at position 0): vLLM reads these "
                                         "patterns with the regex package, which kvplan uses only where it is "
                                         "installed, and it is not here.")
    assert dynamic_rules({"dynamic": {r"-:.*\.1\.": {}}})[0].pattern.match("model.layers.1.mlp")  # re still reads


@pytest.mark.parametrize("dynamic, says", [
    ({"+:.*": None}, "maps \"+:.*\" to null, not an object of overrides."),
    ({"+:.*": [4]}, "maps \"+:.*\" to an array, not an object of overrides."),
    ({"+:.*": "8"}, "maps \"+:.*\" to a string, not an object of overrides."),
    ([".*"], "must map module-name patterns to overrides, got an array."),
    (4, "must map module-name patterns to overrides, got a number."),
])
def test_bad_dynamic_values_are_named_in_jsons_words(dynamic, says):
    """The file is JSON: null, an array, a number (before: NoneType, list, int)."""
    from kvplan.errors import KvplanError
    from kvplan.model.gptq_dynamic import dynamic_rules

    with pytest.raises(KvplanError) as refused:
        dynamic_rules({"dynamic": dynamic})
    assert str(refused.value) == f"config field 'quantization_config.dynamic' {says}"


def test_a_settings_file_and_a_config_not_objects_are_named_in_jsons_words(tmp_path):
    from conftest import one_error_line

    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(TINY))
    (folder / "quantize_config.json").write_text("[4]")
    assert one_error_line(run_kvplan("estimate", folder, "-q", "gptq")).endswith("got an array.")
    (folder / "config.json").write_text("[1, 2]")
    assert one_error_line(run_kvplan("estimate", folder)).endswith("must be a JSON object of fields, got an array.")


# ---- review (session 55): only the rule vLLM applies to a module is read --------------------------------------

@pytest.mark.parametrize("dynamic", [{"-:.*": {}, "+:.*": {"bits": 5}}, {"+:.*visual.*": {"bits": 16}}])
def test_a_rule_vllm_never_applies_is_not_checked(tmp_path, dynamic):
    """get_dynamic_override returns at the first pattern matching the module (gptq_utils.py 0.32.0:91-103): "+:.*"
    after "-:.*" is shadowed (both layers stay fp16: 2 x 1,179,648 + the rest), ".*visual.*" matches no module of a
    text model (both layers 4-bit: 2 x 306,432 + the rest). Before: both exit 2 over bits vLLM never reads."""
    expected = 2 * FP16_LAYER + FP16_REST if "-:.*" in dynamic else 2 * 306_432 + FP16_REST
    assert _weights(_gptq_folder(tmp_path, dynamic)) == expected


# ---- review (session 55): module names of the Mamba, Granite 4.0 hybrid and Bailing families (0.32.0) -----------

def test_mamba_layers_are_backbone_layers():
    """mamba.py: MambaForCausalLM's model is `backbone` (:187-188), its layers backbone.layers (:131), each a mixer
    (:78); FalconMamba is the same class (registry.py:104); mamba2.py the same (:231-232, :126, :74)."""
    from tiny_models import TINY as MODELS

    for family in ("mamba", "falcon_mamba", "mamba2"):
        layers = _layer_modules(MODELS[family])
        assert layers == [{f"backbone.layers.{i}.mixer"} for i in range(3)], family


def test_granite_4_hybrid_names_block_sparse_moe_and_shared_mlp():
    """granitemoehybrid.py: the Mamba layer's mixer (:88), the attention layer's self_attn (:164; qkv_proj :265,
    o_proj :273), block_sparse_moe's experts (:99, :175; granitemoe.py:115) and shared_mlp (:106, :182), whose
    projections are input_linear and output_linear (granitemoeshared.py:58, :65). Before: mlp.experts and
    mlp.shared_experts.gate_up_proj, which no rule on vLLM's names meets."""
    from tiny_models import TINY as MODELS

    moe = {"block_sparse_moe.experts", "shared_mlp.input_linear", "shared_mlp.output_linear"}
    layers = _layer_modules(MODELS["granite4"])
    assert layers == [{f"model.layers.{i}.{name}" for name in names} for i, names in
                      enumerate([{"mixer"} | moe, {"self_attn.qkv_proj", "self_attn.o_proj"} | moe, {"mixer"} | moe,
                                 {"mixer"} | moe])]
    # without experts shared_mlp is the layer's only MLP (granitemoehybrid.py:102-107), a dense one to kvplan
    dense = _layer_modules({**MODELS["granite4"], "num_local_experts": 0})
    assert dense[1] == {"model.layers.1.self_attn.qkv_proj", "model.layers.1.self_attn.o_proj",
                        "model.layers.1.shared_mlp.input_linear", "model.layers.1.shared_mlp.output_linear"}


def test_bailing_moe_names_its_attention_query_key_value_and_dense():
    """bailing_moe.py: the layer's attention block `attention` (:343-344) with query_key_value (:108) and dense
    (:129); the MLP's gate_up_proj / down_proj (:197, :205) under mlp (:354-355)."""
    bailing = {**SMALL, "architectures": ["BailingMoeForCausalLM"], "model_type": "bailing_moe", "num_hidden_layers": 1}
    assert _layer_modules(bailing) == [{"model.layers.0.attention.query_key_value", "model.layers.0.attention.dense",
                                        "model.layers.0.mlp.gate_up_proj", "model.layers.0.mlp.down_proj"}]
