"""Session 56 (hfquant): ModelOpt's hf_quant_config.json, read as the quantization_config of a config.json with none.

Read by hand:
- vLLM transformers_utils/config.py get_config (0.34.0:998-1010; 0.11.0:601-611, 0.14.0:684-696, 0.20.0:757-769,
  0.32.0:890-902, the same lines in every release between): quantization_config = config_dict.get(
  "quantization_config"); when that is None (absent or null) and file_or_path_exists(model, "hf_quant_config.json"),
  the file's JSON becomes config.quantization_config. config_dict is config.json's top level: a compression_config
  or a text_config's quantization_config does not stop it, and both are read only after hf_config's
  quantization_config (model_arch_config_convertor.py 0.34.0:241-292 get_quantization_config; model_loader/
  weight_utils.py 0.32.0:235-242 get_quant_config). A local folder: the file must be a file (repo_utils.py
  0.34.0:262-266). The Hub: the cache first, then the Hub (:267-283); offline, the id is the cached snapshot folder
  (engine/arg_utils.py 0.34.0:940-949).
- ModelOpt's own config ({"producer": {"name": "modelopt"}, "quantization": {"quant_algo": ...}}) is named by its
  algorithm, FP8 -> modelopt, NVFP4 -> modelopt_fp4 (model_arch_config_convertor.py 0.34.0:247-269).
- Checkpoint layouts (model_executor/layers/quantization/modelopt.py 0.32.0): FP8 per-tensor (KFp8StaticTensor
  :2104-2145): an out x in float8 weight, one float32 weight_scale and one float32 input_scale per matrix (per
  shard of a fused q/k/v or gate/up layer). NVFP4 (KNvfp4Static :1987-2035, KNvfp4Dynamic :2067-2085): an
  out x in/2 uint8 weight, an out x in/16 float8 weight_scale, one float32 weight_scale_2 and one float32
  input_scale per matrix. exclude_modules ["lm_head"] keeps the LM head in the model dtype.
- kv_cache_quant_algo: vLLM 0.14.0 on resolves --kv-cache-dtype auto through resolve_kv_cache_dtype_string
  (engine/arg_utils.py 0.14.0:1397-1400, 0.34.0:2329-2332; utils/torch_utils.py 0.34.0:518-537), which for a
  modelopt* method maps kv_cache_quant_algo "FP8" to fp8_e4m3 (0.14.0 on) and "NVFP4" to nvfp4 (0.20.0 on; the map
  0.14.0:57-62, 0.20.0:62-65); 0.13.0 has no such call, so auto is the model dtype. It reads hf_config's own
  quantization_config only (torch_utils.py 0.34.0:528-533).
- Llama-3.1-8B (the bundled spec's config: hidden 4096, MLP 14336, 32 layers, 32 heads, 8 KV heads of 128, vocab
  128,256, untied, bf16): per layer q and o 4096 x 4096, k and v 1024 x 4096, gate and up 14336 x 4096, down
  4096 x 14336 (7 matrices); two norms of 4096 a layer, a final norm; embed and LM head 128,256 x 4096. In bf16 that
  is 16,060,522,496 bytes, the index total_size the bundled spec quotes (Meta's checkpoint): the hand count checks.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.checkpoints import NVFP4_FILE, NVFP4_KV_FILE, checkpoint_folder as _folder
from tests.conftest import ROOT, one_error_line, run_hub, run_kvplan
from tests.fake_hub import cached_repo, hub_env, repo_handler, serving
from tests.hub_configs import LLAMA3_8B, MISTRAL3_WRAPPER
from kvplan.model.sources import resolve

LLAMA = {**LLAMA3_8B, "max_position_embeddings": 131072}  # Llama-3.1-8B's shape
# hf_quant_config.json as ModelOpt 0.29 writes it (nvidia/Llama-3.1-8B-Instruct-FP8, nvidia/*-FP4)
FP8_FILE = {"producer": {"name": "modelopt", "version": "0.29.0"},
            "quantization": {"quant_algo": "FP8", "kv_cache_quant_algo": "FP8", "exclude_modules": ["lm_head"]}}

MATRICES = ((4096, 4096), (1024, 4096), (1024, 4096), (4096, 4096), (14336, 4096), (14336, 4096), (4096, 14336))
ELEMENTS = sum(rows * cols for rows, cols in MATRICES)  # one layer's linear weights
REST = 2 * 128256 * 4096 * 2 + 32 * 2 * 4096 * 2 + 4096 * 2  # embed + LM head, the layers' norms, the final norm
BF16_BYTES = 32 * ELEMENTS * 2 + REST
FP8_BYTES = 32 * (ELEMENTS + len(MATRICES) * (4 + 4)) + REST  # fp8 weight, weight_scale, input_scale
NVFP4_BYTES = 32 * sum(r * c // 2 + r * (c // 16) + 4 + 4 for r, c in MATRICES) + REST


def test_the_hand_arithmetic():
    assert ELEMENTS == 2 * 16_777_216 + 2 * 4_194_304 + 3 * 58_720_256 == 218_103_808
    assert REST == 2 * 1_050_673_152 + 524_288 + 8_192 == 2_101_878_784
    assert BF16_BYTES == 16_060_522_496  # meta-llama/Llama-3.1-8B's index total_size (model_specs/)
    assert FP8_BYTES == 32 * 218_103_864 + 2_101_878_784 == 9_081_202_432
    # 4 bits a weight, an fp8 scale per 16: 218,103,808 / 2 + 218,103,808 / 16 + 7 x 8 a layer
    assert NVFP4_BYTES == 32 * (109_051_904 + 13_631_488 + 56) + 2_101_878_784 == 6_027_749_120


def _plan(*args) -> dict:
    r = run_kvplan("estimate", *args, "--gpu", "h100", "-c", "8192", "--format", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


# ---- a local folder -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("side, method, total, stored", [(FP8_FILE, "modelopt", FP8_BYTES, "fp8-w8a8"),
                                                         (NVFP4_FILE, "modelopt_fp4", NVFP4_BYTES, "nvfp4")])
def test_the_file_prices_the_quantised_checkpoint(tmp_path, side, method, total, stored):
    spec = resolve(str(_folder(tmp_path, LLAMA, side)))
    assert (spec.quantization, spec.weights.bytes, spec.weights.dtype) == (method, total, stored)
    assert any("hf_quant_config.json beside config.json" in note for note in spec.notes)
    assert spec.modelopt_legacy == (side["quantization"]["quant_algo"], True)  # vllm_quant.modelopt_legacy_refusal


@pytest.mark.parametrize("side", [FP8_FILE, NVFP4_FILE])
def test_the_same_plan_as_the_dict_in_config_json(tmp_path, side):
    """vLLM sets the file's dict as hf_config.quantization_config: the checkpoint is the one that carries it inline."""
    beside = _plan(_folder(tmp_path, LLAMA, side, "beside"))
    inline = _plan(_folder(tmp_path, {**LLAMA, "quantization_config": side}, None, "inline"))
    for result in (beside, inline):
        result["model"].pop("id")
        result["model"]["rules"] = [r for r in result["model"]["rules"] if "hf_quant_config.json" not in r]
        for plan in result["plans"]:
            plan.pop("model")
    assert beside == inline
    assert beside["plans"][0]["kv_dtype"] == "fp8_e4m3"


def test_a_config_json_path_reads_the_file_beside_it(tmp_path):
    folder = _folder(tmp_path, LLAMA, FP8_FILE)
    assert resolve(str(folder / "config.json")).weights.bytes == FP8_BYTES
    (folder / "llama.json").write_text(json.dumps(LLAMA))  # not config.json: vLLM takes a folder, not this file
    assert resolve(str(folder / "llama.json")).weights.bytes == BF16_BYTES


def test_config_jsons_own_quantization_config_wins(tmp_path):
    """vLLM reads the file only when config.json's top level has no quantization_config (config.py 0.34.0:998-1004)."""
    own = {"quant_method": "fp8", "activation_scheme": "dynamic"}
    spec = resolve(str(_folder(tmp_path, {**LLAMA, "quantization_config": own}, NVFP4_FILE)))
    assert spec.quantization == "fp8" and not any("hf_quant_config" in note for note in spec.notes)
    # a null one is none: the file is read
    spec = resolve(str(_folder(tmp_path, {**LLAMA, "quantization_config": None}, NVFP4_FILE, "null")))
    assert (spec.quantization, spec.weights.bytes) == ("modelopt_fp4", NVFP4_BYTES)


def test_no_file_no_change(tmp_path):
    spec = resolve(str(_folder(tmp_path, LLAMA)))
    assert (spec.quantization, spec.weights.bytes, spec.auto_kv_dtype) == ("", BF16_BYTES, "")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "config.json").write_text(json.dumps(LLAMA))
    (tmp_path / "dir" / "hf_quant_config.json").mkdir()  # not a file: vLLM's is_file() says no
    assert resolve(str(tmp_path / "dir")).quantization == ""


def test_a_compression_config_does_not_stop_the_file(tmp_path):
    """compression_config is read after hf_config's quantization_config, which the file has become."""
    config = {**LLAMA, "compression_config": {"quant_method": "compressed-tensors"}}
    assert resolve(str(_folder(tmp_path, config, FP8_FILE))).weights.bytes == FP8_BYTES


WRAPPER = MISTRAL3_WRAPPER  # a multimodal wrapper over a small Mistral (tests/hub_configs.py)
FP8_INLINE = {"quant_method": "fp8", "activation_scheme": "static"}


def test_a_text_configs_quantization_config_does_not_stop_the_file(tmp_path):
    """The wrapper's top level has none: vLLM reads the file, which as hf_config's quantization_config is read before
    the text_config's (model_arch_config_convertor.py 0.34.0:285-292; weight_utils.py 0.32.0:235-240)."""
    nested = {**WRAPPER, "text_config": {**WRAPPER["text_config"], "quantization_config": FP8_INLINE}}
    assert resolve(str(_folder(tmp_path, nested, NVFP4_FILE))).quantization == "modelopt_fp4"
    assert resolve(str(_folder(tmp_path, nested, None, "alone"))).quantization == "fp8"
    # the wrapper's own beats its text_config's, with no file at all
    both = {**nested, "quantization_config": NVFP4_FILE}
    assert resolve(str(_folder(tmp_path, both, None, "both"))).quantization == "modelopt_fp4"


def test_a_text_configs_modelopt_kv_cache_leaves_auto_alone(tmp_path):
    """resolve_kv_cache_dtype_string reads hf_config.quantization_config only (torch_utils.py 0.34.0:528-533)."""
    nested = {**WRAPPER, "text_config": {**WRAPPER["text_config"], "quantization_config": FP8_FILE}}
    spec = resolve(str(_folder(tmp_path, nested)))
    assert (spec.quantization, spec.auto_kv_dtype) == ("modelopt", "")
    outer = resolve(str(_folder(tmp_path, WRAPPER, FP8_FILE, "outer")))
    assert (outer.quantization, outer.auto_kv_dtype) == ("modelopt", "fp8_e4m3")


# ---- errors -------------------------------------------------------------------------------------------------------

def test_a_malformed_file_is_one_line_naming_it(tmp_path):
    folder = _folder(tmp_path, LLAMA, '{"producer": {"name": "modelopt"}, ')
    line = one_error_line(run_kvplan("estimate", folder))
    assert "hf_quant_config.json" in line and "is not valid JSON" in line, line


def test_a_file_that_is_not_an_object_is_one_line(tmp_path):
    folder = _folder(tmp_path, LLAMA, "[1, 2]")
    line = one_error_line(run_kvplan("estimate", folder))
    assert "hf_quant_config.json" in line and "must be a JSON object of quantization settings" in line, line


def test_an_algorithm_vllm_does_not_know_is_its_refusal(tmp_path):
    side = {"producer": {"name": "modelopt"}, "quantization": {"quant_algo": "INT3"}}
    line = one_error_line(run_kvplan("estimate", _folder(tmp_path, LLAMA, side)))
    assert "Unknown ModelOpt quant algo" in line, line


# ---- the KV cache auto stores -------------------------------------------------------------------------------------

@pytest.mark.parametrize("engine, kv_dtype, per_token", [
    ("vllm==0.13.0", "bf16", 32 * 2 * 8 * 128 * 2),  # no resolution before 0.14.0
    ("vllm==0.14.0", "fp8_e4m3", 32 * 2 * 8 * 128),
    ("vllm==0.34.0", "fp8_e4m3", 32 * 2 * 8 * 128),
])
def test_kv_cache_quant_algo_fp8_makes_auto_fp8_from_0_14(tmp_path, engine, kv_dtype, per_token):
    plan = _plan(_folder(tmp_path, LLAMA, FP8_FILE), "--engine", engine)["plans"][0]
    assert (plan["kv_dtype"], plan["kv_bytes_per_token"]) == (kv_dtype, per_token)


@pytest.mark.parametrize("engine, kv_dtype, per_token, starts", [
    ("vllm==0.19.1", "bf16", 32 * 2 * 8 * 128 * 2, True),  # nvfp4 is not in 0.19's map: auto
    # 0.20 maps it, but no attention backend lists nvfp4 (v1/attention/backends/flashinfer.py 0.20.0:328-335)
    ("vllm==0.20.0", "nvfp4", 32 * 2 * 8 * (128 // 2 + 128 // 16), False),  # fp4 values + an fp8 scale per 16
    # FlashInfer's trtllm-gen reads it on SM100 (0.21.0 flashinfer.py:329-337; 0.25.0 :427-433)
    ("vllm==0.21.0", "nvfp4", 32 * 2 * 8 * (128 // 2 + 128 // 16), True),
    ("vllm==0.25.0", "nvfp4", 32 * 2 * 8 * (128 // 2 + 128 // 16), True),
])
def test_kv_cache_quant_algo_nvfp4_from_0_20_on_blackwell(tmp_path, engine, kv_dtype, per_token, starts):
    r = run_kvplan("estimate", _folder(tmp_path, LLAMA, NVFP4_KV_FILE), "--gpu", "b200", "-c", "8192", "--engine",
                   engine, "--format", "json")
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)["plans"][0]
    assert (plan["kv_dtype"], plan["kv_bytes_per_token"], plan["engine"]["starts"]) == (kv_dtype, per_token, starts)


@pytest.mark.parametrize("engine", ["vllm==0.20.0", "vllm==0.25.0"])
def test_the_checkpoints_nvfp4_is_refused_on_hopper_saying_so(tmp_path, engine):
    """No backend reads NVFP4 on SM90 in 0.20 (flashinfer.py 0.20.0:328-335) nor 0.25-0.31 (supports_kv_cache_dtype
    asks for SM100, 0.25.0 :427-433): auto is the checkpoint's nvfp4, and `auto` is no remedy."""
    plan = _plan(_folder(tmp_path, LLAMA, NVFP4_KV_FILE), "--engine", engine)["plans"][0]
    refusal = plan["engine"]["refusal"]
    assert plan["kv_dtype"] == "nvfp4" and not plan["engine"]["starts"] and refusal["configuration"]
    assert "No valid attention backend found for cuda (compute capability 9.0) with kv_cache_dtype nvfp4 (what " \
           "--kv-cache-dtype auto stores for this checkpoint, whose ModelOpt quantization_config names an NVFP4 KV " \
           "cache)" in refusal["reason"], refusal
    assert refusal["remedy"].startswith("it starts with --kv-cache-dtype bfloat16, fp8, fp8_e4m3"), refusal


@pytest.mark.parametrize("kv, expected", [
    (None, ""), ("none", ""), ("INT8", ""), ("fp8", "fp8_e4m3"),
    # ModelOpt 0.31's kv_cache_scheme, read before kv_cache_quant_algo
    ({"dynamic": False, "num_bits": 8, "type": "float"}, "fp8_e4m3"), ({"num_bits": 8, "type": "float"}, ""),
])
def test_which_kv_cache_names_vllm_maps(tmp_path, kv, expected):
    side = {**FP8_FILE, "quantization": {**FP8_FILE["quantization"], "kv_cache_quant_algo": kv}}
    if isinstance(kv, dict):  # the scheme wins over a kv_cache_quant_algo FP8 beside it
        side["quantization"].update(kv_cache_scheme=kv, kv_cache_quant_algo="FP8")
    spec = resolve(str(_folder(tmp_path, LLAMA, side)))
    assert spec.auto_kv_dtype == expected


def test_an_explicit_kv_dtype_is_kept(tmp_path):
    plan = _plan(_folder(tmp_path, LLAMA, FP8_FILE), "--kv-dtype", "bfloat16")["plans"][0]
    assert plan["kv_dtype"] == "bf16"


# ---- the Hub ------------------------------------------------------------------------------------------------------

@pytest.fixture
def hub():
    handler = repo_handler({})
    with serving(handler) as endpoint:
        yield handler, endpoint


def _hub_plan(hub, tmp_path, files: dict):
    handler, endpoint = hub
    handler.asked.clear()
    handler.hold(files)
    return run_hub("estimate", "acme/llama-fp8", "--gpu", "h100", "-c", "8192", "--format", "json",
                         env=hub_env(tmp_path, endpoint))


def test_the_hub_repos_file_is_read(hub, tmp_path):
    r = _hub_plan(hub, tmp_path, {"config.json": LLAMA, "hf_quant_config.json": FP8_FILE})
    assert r.returncode == 0, r.stderr
    model = json.loads(r.stdout)["model"]
    assert (model["weights_bytes"], model["weights_dtype"]) == (FP8_BYTES, "fp8-w8a8")
    assert json.loads(r.stdout)["plans"][0]["kv_dtype"] == "fp8_e4m3"


def test_a_repo_without_the_file_is_unquantised(hub, tmp_path):
    r = _hub_plan(hub, tmp_path, {"config.json": LLAMA})
    assert r.returncode == 0, r.stderr
    model = json.loads(r.stdout)["model"]
    assert model["weights_bytes"] == BF16_BYTES
    assert not any("hf_quant_config" in rule for rule in model["rules"])  # a 404 is no file, said nowhere
    assert hub[0].asked["hf_quant_config.json"]


def test_a_config_with_its_own_quantization_config_asks_nothing_more(hub, tmp_path):
    """No extra round trip: the file is asked for only when config.json has no quantization_config."""
    r = _hub_plan(hub, tmp_path, {"config.json": {**LLAMA, "quantization_config": NVFP4_FILE},
                                  "hf_quant_config.json": FP8_FILE})
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["model"]["weights_bytes"] == NVFP4_BYTES
    assert not hub[0].asked["hf_quant_config.json"]


def test_a_malformed_hub_file_is_one_line_naming_the_repo(hub, tmp_path):
    r = _hub_plan(hub, tmp_path, {"config.json": LLAMA, "hf_quant_config.json": b"{oops"})
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "hf_quant_config.json of acme/llama-fp8 on the Hugging Face Hub is not valid JSON" in r.stderr


def test_offline_the_cached_snapshot_holds_it_or_not(tmp_path):
    cached_repo(tmp_path, "acme/llama-fp8", {"config.json": LLAMA, "hf_quant_config.json": NVFP4_FILE})
    cached_repo(tmp_path, "acme/llama", {"config.json": LLAMA})
    env = hub_env(tmp_path, offline=True)
    for repo, total in (("acme/llama-fp8", NVFP4_BYTES), ("acme/llama", BF16_BYTES)):
        r = run_hub("estimate", repo, "--gpu", "h100", "-c", "8192", "--format", "json", env=env)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["model"]["weights_bytes"] == total


def test_a_hub_that_cannot_be_reached_leaves_a_note(tmp_path):
    """Online, nothing at HF_ENDPOINT (a closed port): config.json comes from the cache (hub.py _fetch_config); the
    file cannot be asked for, which the plan says rather than stopping (nearly every repo has none)."""
    import socket

    cached_repo(tmp_path, "acme/llama", {"config.json": LLAMA})
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    r = run_hub("estimate", "acme/llama", "--gpu", "h100", "-c", "8192", "--format", "json",
                      env=hub_env(tmp_path, f"http://127.0.0.1:{port}"))
    assert r.returncode == 0, r.stderr
    model = json.loads(r.stdout)["model"]
    assert model["weights_bytes"] == BF16_BYTES
    assert any("could not be asked for the repo's hf_quant_config.json (it could not be reached)" in rule
               for rule in model["rules"]), model["rules"]


def test_a_bundled_model_still_never_imports_the_hub_client():
    code = ("import sys; from kvplan.model.sources import resolve; s = resolve('meta-llama/Llama-3.1-8B'); "
            "print(s.quantization == '', s.auto_kv_dtype == '', 'huggingface_hub' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.stdout.split() == ["True", "True", "False"], out.stderr
