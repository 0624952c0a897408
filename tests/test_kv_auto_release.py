"""Session 56 (hfqfix): what the checkpoint makes of the KV cache, release by release, and where vLLM cannot store
an NVFP4 one; the Hub's hf_quant_config.json asked once (retried on 429/5xx, its absence recorded), a Hub that
could not be asked a `check` warning; ModelOpt's "quantization" block that is not an object refused.

Read by hand (paths under vllm/ of the release named):
- NVFP4 KV: FLASHINFER is the only attention backend whose supported_kv_cache_dtypes lists nvfp4 (grep of
  v1/attention/backends/ in every release 0.20.0-0.34.0). 0.20.0 does not list it either (flashinfer.py:328-335), so
  no backend takes it on any GPU. 0.21.0 lists it (:329-337) and builds FlashInfer's trtllm-gen wrappers for it
  (:771-773, :797-799), SM100 kernels, with no capability check; 0.23.0 raises in the builder off the SM100 family
  ("--kv-cache-dtype nvfp4 requires sm100f, please try a different dtype or remove", :622-630); 0.25.0's
  supports_kv_cache_dtype takes it on SM100 only (:427-433, the same to 0.31.0 :499-505); 0.32.0 adds the SM80 /
  SM90 / SM120 families through fa2 for plain nvfp4 (:109-110, :529-539), whose supports_combination refuses head
  size 64 ("fa2 prefill misreads an NVFP4 KV cache at head_size 64") and sinks ("the sink prefill wrapper cannot read
  an NVFP4 KV cache", :542-562; 0.34.0 :669-690). FlashInfer's head sizes: 64, 128, 256, 512 (0.22.0 :402-405, 0.34.0
  :692-695); its compute capabilities 8.0 to 12.1 from 0.24.0 (:426-436). Compute capabilities: H100 9.0, B200 10.0,
  A100 8.0, L4 8.9, T4 7.5 (kvplan's catalog).
- Llama-3.1-8B's cache: 32 layers x K and V x 8 KV heads of 128; bf16 2 bytes an element: 131,072 bytes a token; fp8
  65,536; nvfp4 64 bytes of fp4 + 8 of fp8 scales a head and side: 32 x 2 x 8 x 72 = 36,864.
- Llama-3.2-1B: head_dim 64; gpt-oss-20b: head_dim 64 and a sink a head on every layer (models/gpt_oss.py
  0.32.0:187 sinks=self.sinks); Phi-3-mini: 3072 / 32 = 96 a head, in no FlashInfer list.
- compressed-tensors kv_cache_scheme: CompressedTensorsConfig keeps config.get("kv_cache_scheme")
  (compressed_tensors.py 0.16.0:238, 0.34.0:267); the Attention layer sets kv_cache_dtype and cache_config.cache_dtype
  to "fp8" whenever it is not None, whatever was asked, in 0.16.0 (model_executor/layers/attention/attention.py
  :231-236) to 0.21.0 (:231-237), only when the dtype is "auto" from 0.22.0 (:237-241; 0.32.0 :288-291, 0.34.0
  :308-312); 0.14.1 has no such step (attention/layer.py:192 keeps cache_config.cache_dtype). MLAAttention has none
  (model_executor/layers/attention/mla_attention.py 0.34.0: no kv_cache_scheme).
- ModelOpt's "quantization" not an object: ModelOptFp8Config.from_config raises "Expected 'quantization' to be a
  dictionary in config" (quantization/modelopt.py 0.11.0:131-136, 0.34.0:330-335); a producer-named config dies
  earlier on .get (model_arch_config_convertor.py 0.34.0:249-257).
- huggingface_hub 2.4.0 file_download.py:1768-1786: on a HEAD's RemoteEntryNotFoundError, hf_hub_download touches
  .no_exist/<X-Repo-Commit>/<file> and writes the revision's ref; try_to_load_from_cache reads it back (:1591-1602).
"""

from __future__ import annotations

import json
import socket

import pytest

from kvplan.engines.vllm_nvfp4 import nvfp4_refusal_line
from kvplan.model.parse import parse_config
from tests.checkpoints import NVFP4_KV_FILE, checkpoint_folder as _folder
from tests.conftest import estimate_plan, one_error_line, run_hub, run_kvplan
from tests.fake_hub import COMMIT, cached_repo, hub_env, repo_handler, send_error, serving
from tests.hub_configs import DEEPSEEK_V2_LITE, LLAMA3_8B

LLAMA = {**LLAMA3_8B, "max_position_embeddings": 131072}
BF16, FP8, NVFP4 = 32 * 2 * 8 * 128 * 2, 32 * 2 * 8 * 128, 32 * 2 * 8 * (64 + 8)
H100, B200, A100, L4, T4 = (9, 0), (10, 0), (8, 0), (8, 9), (7, 5)
KV_SCHEME = {"num_bits": 8, "type": "float", "strategy": "tensor", "dynamic": False, "symmetric": True}
FP8_GROUP = {"num_bits": 8, "type": "float", "strategy": "tensor", "dynamic": False, "symmetric": True}
CT_FP8 = {"quant_method": "compressed-tensors", "format": "float-quantized", "ignore": ["lm_head"],
          "config_groups": {"group_0": {"targets": ["Linear"], "weights": FP8_GROUP, "input_activations": FP8_GROUP}},
          "kv_cache_scheme": KV_SCHEME}


def test_the_hand_arithmetic():
    assert (BF16, FP8, NVFP4) == (131_072, 65_536, 36_864)


# ---- the NVFP4 rule, release x compute capability x head size x sinks ------------------------------------------

@pytest.mark.parametrize("version, capability, heads, sinks, refused", [
    ("0.20.0", B200, (128,), False, "no attention backend of vLLM 0.20.0 lists it"),
    ("0.20.2", B200, (128,), False, "no attention backend of vLLM 0.20.2 lists it"),
    ("0.21.0", B200, (128,), False, ""),
    ("0.21.0", H100, (128,), False, "so start-up fails at the first attention call"),
    ("0.22.1", A100, (128,), False, "so start-up fails at the first attention call"),
    ("0.23.0", H100, (128,), False, "--kv-cache-dtype nvfp4 requires sm100f, please try a different dtype or remove"),
    ("0.24.0", B200, (128,), True, ""),
    ("0.25.0", H100, (128,), False, "refuses it (kv_cache_dtype not supported)"),
    ("0.31.0", L4, (128,), False, "refuses it (kv_cache_dtype not supported)"),
    ("0.31.0", B200, (64,), True, ""),  # trtllm-gen: sinks and head 64 on SM100
    ("0.32.0", H100, (128,), False, ""),
    ("0.32.0", A100, (128,), False, ""),
    ("0.32.0", L4, (128,), False, ""),
    ("0.32.0", H100, (64,), False, "refuses it (fa2 prefill misreads an NVFP4 KV cache at head_size 64)"),
    ("0.32.0", H100, (128,), True, "refuses it (the sink prefill wrapper cannot read an NVFP4 KV cache)"),
    ("0.34.0", B200, (64,), True, ""),
    ("0.34.0", T4, (128,), False, "refuses it (compute capability not supported)"),
    ("0.34.0", B200, (96,), False, "refuses it (head_size not supported)"),
    ("0.21.0", B200, (512,), False, "refuses it (head_size not supported)"),  # 512 from 0.22.0
    ("0.22.0", B200, (512,), False, ""),
    ("0.32.0", ("rocm",), (128,), False, "No valid attention backend found for rocm with kv_cache_dtype nvfp4"),
])
def test_nvfp4_by_release_gpu_head_and_sinks(version, capability, heads, sinks, refused):
    line = nvfp4_refusal_line("nvfp4", capability, version, heads, sinks)
    assert (refused in line and bool(line)) if refused else line == "", line


@pytest.mark.parametrize("version, capability, refused", [
    ("0.28.0", B200, False), ("0.28.0", H100, True),  # 4over6 listed from 0.28 (KV_DTYPE_SINCE), SM100 only
    ("0.32.0", H100, True), ("0.34.0", L4, True), ("0.34.0", B200, False),  # fa2 takes plain nvfp4 only
])
def test_nvfp4_4over6_stays_sm100s(version, capability, refused):
    assert bool(nvfp4_refusal_line("nvfp4_4over6", capability, version, (128,))) == refused


def _estimate(model, *args) -> dict:
    return estimate_plan(model, "-c", "8192", *args)


@pytest.mark.parametrize("model", ["meta-llama/Llama-3.2-1B-Instruct", "openai/gpt-oss-20b"])
def test_head_64_and_sinks_refused_on_hopper_start_on_blackwell(model):
    """Head 64 (both) and gpt-oss's sinks: fa2's supports_combination refuses them on SM90 (0.32.0 flashinfer.py
    :542-562); SM100 keeps trtllm-gen."""
    hopper = _estimate(model, "--gpu", "h100", "--kv-cache-dtype", "nvfp4")
    refusal = hopper["engine"]["refusal"]
    assert not hopper["engine"]["starts"] and refusal["field"] == "kv_dtype"
    assert "fa2 prefill misreads an NVFP4 KV cache at head_size 64" in refusal["reason"], refusal
    assert refusal["remedy"] == "it starts with --kv-cache-dtype auto, bfloat16, fp8, fp8_e4m3", refusal
    assert _estimate(model, "--gpu", "b200", "--kv-cache-dtype", "nvfp4")["engine"]["starts"]


def test_sinks_alone_are_refused_on_hopper(tmp_path):
    """gpt-oss at head 128 (a made-up width): the sinks are what fa2 refuses, every layer having them."""
    config = {"architectures": ["GptOssForCausalLM"], "model_type": "gpt_oss", "hidden_size": 2048,
              "intermediate_size": 2048, "num_hidden_layers": 4, "num_attention_heads": 16,
              "num_key_value_heads": 4, "head_dim": 128, "num_local_experts": 4, "num_experts_per_tok": 2,
              "vocab_size": 32000, "max_position_embeddings": 8192, "torch_dtype": "bfloat16"}
    plan = _estimate(_folder(tmp_path, config), "--gpu", "h100", "--kv-cache-dtype", "nvfp4")
    assert "the sink prefill wrapper cannot read an NVFP4 KV cache" in plan["engine"]["refusal"]["reason"]


def test_llama_8b_nvfp4_on_each_gpu_under_0_32():
    for gpu in ("h100", "a100-80gb", "l4", "b200"):
        plan = _estimate("meta-llama/Llama-3.1-8B", "--gpu", gpu, "--kv-cache-dtype", "nvfp4")
        assert plan["engine"]["starts"] and plan["kv_bytes_per_token"] == NVFP4, gpu
    turing = _estimate("meta-llama/Llama-3.1-8B", "--gpu", "t4", "--kv-cache-dtype", "nvfp4")
    assert "refuses it (compute capability not supported)" in turing["engine"]["refusal"]["reason"]
    plan = _estimate("meta-llama/Llama-3.1-8B", "--gpu", "l4", "--kv-cache-dtype", "nvfp4", "--engine",
                     "vllm==0.25.0")
    assert "refuses it (kv_cache_dtype not supported)" in plan["engine"]["refusal"]["reason"]


def test_4over6_on_hopper_names_plain_nvfp4():
    plan = _estimate("meta-llama/Llama-3.1-8B", "--gpu", "h100", "--kv-cache-dtype", "nvfp4_4over6")
    assert plan["engine"]["refusal"]["remedy"] == \
        "it starts with --kv-cache-dtype auto, bfloat16, fp8, fp8_e4m3, nvfp4", plan["engine"]["refusal"]


def test_a_head_size_flashinfer_lacks_is_refused_everywhere():
    plan = _estimate("microsoft/Phi-3-mini-4k-instruct", "-c", "4096", "--gpu", "b200", "--kv-cache-dtype", "nvfp4")
    assert "refuses it (head_size not supported)" in plan["engine"]["refusal"]["reason"]


def test_an_amd_gpu_has_no_nvfp4_backend():
    plan = _estimate("meta-llama/Llama-3.1-8B", "--gpu", "mi300x", "--kv-cache-dtype", "nvfp4")
    assert "No valid attention backend found for rocm" in plan["engine"]["refusal"]["reason"]


@pytest.mark.parametrize("model_type, extra, sinks", [
    ("gpt_oss", {}, True),
    ("laguna", {"layer_types": ["sliding_attention", "full_attention"], "sliding_window": 512,
                "swa_attention_sink_enabled": True}, True),  # laguna.py 0.32.0:482-490
    ("laguna", {"layer_types": ["full_attention"] * 2, "swa_attention_sink_enabled": True}, False),
    ("granite", {"layer_types": ["sliding_attention", "full_attention"], "sliding_window": 512}, True),
    ("granite", {"layer_types": ["sliding_attention", "full_attention"], "sliding_window": 512,
                 "attention_sinks": False}, False),  # granite.py 0.32.0:109
    ("granite", {}, False),
    ("llama", {}, False),
])
def test_which_configs_have_attention_sinks(model_type, extra, sinks):
    config = {**LLAMA, "model_type": model_type, "num_hidden_layers": 2, **extra}
    if model_type == "gpt_oss":
        config.update(architectures=["GptOssForCausalLM"], num_local_experts=4, num_experts_per_tok=2,
                      head_dim=128)
    assert parse_config(config, "x").attention_sinks is sinks


def test_check_refuses_the_checkpoints_nvfp4_on_hopper(tmp_path):
    folder = _folder(tmp_path, LLAMA, NVFP4_KV_FILE)
    path = tmp_path / "deployments.yaml"
    path.write_text(f"deployments:\n  - name: fp4\n    model: {folder}\n    tp: 1\n    gpu: H100\n"
                    f"    context: 8192\n    engine: vllm==0.25.0\n    min_concurrency: 1\n")
    r = run_kvplan("check", "--file", path, "--format", "json")
    assert r.returncode == 1, r.stdout + r.stderr
    (result,) = json.loads(r.stdout)["results"]
    (error,) = result["errors"]
    assert "vLLM 0.25.0 does not start" in error and "this checkpoint" in error, error
    assert result["findings"][0]["key"] == "kv_dtype"


# ---- compressed-tensors kv_cache_scheme -------------------------------------------------------------------------

@pytest.mark.parametrize("engine, auto_bytes, bf16_bytes", [
    ("vllm==0.14.1", BF16, BF16),  # no such step yet
    ("vllm==0.16.0", FP8, FP8),  # the layer overwrites any dtype
    ("vllm==0.21.0", FP8, FP8),
    ("vllm==0.22.0", FP8, BF16),  # auto only
    ("vllm==0.32.0", FP8, BF16),
    ("vllm==0.34.0", FP8, BF16),
])
def test_a_kv_cache_scheme_makes_the_cache_fp8_by_release(tmp_path, engine, auto_bytes, bf16_bytes):
    folder = _folder(tmp_path, {**LLAMA, "quantization_config": CT_FP8})
    auto = _estimate(folder, "--gpu", "h100", "--engine", engine)
    assert (auto["kv_bytes_per_token"], auto["engine"]["starts"]) == (auto_bytes, True)
    asked = _estimate(folder, "--gpu", "h100", "--engine", engine, "--kv-cache-dtype", "bfloat16")
    assert (asked["kv_dtype"], asked["kv_bytes_per_token"]) == ("bf16", bf16_bytes)
    kept = asked["engine"]["kv_cache_dtype"]
    assert kept == ("fp8_e4m3" if bf16_bytes == FP8 else "bf16")


def test_the_capacity_doubles_where_the_scheme_is_read(tmp_path):
    """The same budget holds twice the tokens at 1 byte an element (the reviewer's repro: priced bf16 before)."""
    scheme = _estimate(_folder(tmp_path, {**LLAMA, "quantization_config": CT_FP8}, None, "a"), "--gpu", "h100")
    plain = {**CT_FP8}
    plain.pop("kv_cache_scheme")
    without = _estimate(_folder(tmp_path, {**LLAMA, "quantization_config": plain}, None, "b"), "--gpu", "h100")
    assert (scheme["kv_dtype"], without["kv_dtype"]) == ("fp8_e4m3", "bf16")
    assert scheme["kv_budget_bytes_per_gpu"] == without["kv_budget_bytes_per_gpu"]
    assert scheme["kv_capacity_tokens"] // 1000 == 2 * without["kv_capacity_tokens"] // 1000


def test_a_null_scheme_and_an_mla_model_keep_the_model_dtype(tmp_path):
    null = {**CT_FP8, "kv_cache_scheme": None}
    assert _estimate(_folder(tmp_path, {**LLAMA, "quantization_config": null}, None, "null"),
                     "--gpu", "h100")["kv_dtype"] == "bf16"
    lite = {**DEEPSEEK_V2_LITE, "quantization_config": CT_FP8}  # MLA layers: MLAAttention reads no scheme
    assert _estimate(_folder(tmp_path, lite, None, "lite"), "--gpu", "h100")["kv_dtype"] == "bf16"


def test_the_note_says_what_each_release_makes_of_it(tmp_path):
    folder = _folder(tmp_path, {**LLAMA, "quantization_config": CT_FP8})
    rules = {}
    for engine in ("0.14.1", "0.20.0", "0.32.0"):
        r = run_kvplan("estimate", folder, "--gpu", "h100", "-c", "8192", "--engine", f"vllm=={engine}",
                       "--format", "json")
        rules[engine] = [rule for rule in json.loads(r.stdout)["model"]["rules"] if "kv_cache_scheme" in rule]
    lead = "the compressed-tensors quantization_config sets a kv_cache_scheme (an fp8 KV cache): "
    assert rules == {"0.14.1": [lead + "vLLM 0.14.1 does not read it: --kv-cache-dtype auto is the model dtype"],
                     "0.20.0": [lead + "vLLM 0.20.0 stores fp8 whatever --kv-cache-dtype asks (its attention "
                                       "layers overwrite it)"],
                     "0.32.0": [lead + "vLLM 0.32.0 stores it for --kv-cache-dtype auto"]}


# ---- ModelOpt's block that is not an object ---------------------------------------------------------------------

@pytest.mark.parametrize("block", ['"FP8"', "[1]", "null"])
def test_a_modelopt_quantization_that_is_not_an_object_is_one_line(tmp_path, block):
    folder = _folder(tmp_path, LLAMA, '{"producer": {"name": "modelopt"}, "quantization": ' + block + "}")
    line = one_error_line(run_kvplan("estimate", folder))
    assert "config field 'quantization_config.quantization' must be an object of ModelOpt's settings" in line
    assert "Expected 'quantization' to be a dictionary in config" in line, line
    inline = {**LLAMA, "quantization_config": {"quant_method": "modelopt", "quantization": json.loads(block)}}
    assert "quantization_config.quantization" in one_error_line(run_kvplan("estimate", _folder(tmp_path, inline,
                                                                                                 None, "inline")))


def test_another_methods_quantization_key_is_not_modelopts(tmp_path):
    config = {**LLAMA, "quantization_config": {"quant_method": "fp8", "activation_scheme": "dynamic",
                                               "quantization": "whatever"}}
    assert _estimate(_folder(tmp_path, config), "--gpu", "h100")["kv_dtype"] == "bf16"


# ---- the Hub: hf_quant_config.json asked once, retried once, its absence recorded --------------------------------

def _flaky(files: dict, failures: int, status: int = 503):
    """A repo whose hf_quant_config.json answers `status` (Retry-After 0) the first `failures` times."""
    base = repo_handler(files)

    class Flaky(base):
        left = {"hf_quant_config.json": failures}

        def _answer(self, body):
            name = self.path.split("?")[0].rstrip("/").split("/")[-1]
            if self.left.get(name, 0) > 0:
                self.left[name] -= 1
                self.asked[name] += 1
                return send_error(self, status, retry_after="0")
            return super()._answer(body)

    return Flaky


def _hub_estimate(tmp_path, endpoint, repo: str = "acme/llama"):
    return run_hub("estimate", repo, "--gpu", "h100", "-c", "8192", "--format", "json",
                         env=hub_env(tmp_path, endpoint))


@pytest.mark.parametrize("status", [503, 429])
def test_one_busy_answer_is_asked_again(tmp_path, status):
    handler = _flaky({"config.json": LLAMA, "hf_quant_config.json": NVFP4_KV_FILE}, 1, status)
    with serving(handler) as endpoint:
        r = _hub_estimate(tmp_path, endpoint)
    assert r.returncode == 0, r.stderr
    model = json.loads(r.stdout)["model"]
    assert model["weights_dtype"] == "nvfp4", model
    assert not any("could not be asked" in rule for rule in model["rules"])


def test_two_busy_answers_leave_the_note(tmp_path):
    handler = _flaky({"config.json": LLAMA, "hf_quant_config.json": NVFP4_KV_FILE}, 2)
    with serving(handler) as endpoint:
        r = _hub_estimate(tmp_path, endpoint)
    assert r.returncode == 0, r.stderr
    rules = json.loads(r.stdout)["model"]["rules"]
    assert any("could not be asked for the repo's hf_quant_config.json (it answered 503)" in rule for rule in rules)
    assert handler.asked["hf_quant_config.json"] == 2  # asked, and once more: no third time


def test_the_absence_is_recorded_and_not_asked_again(tmp_path):
    handler = repo_handler({"config.json": LLAMA})
    with serving(handler) as endpoint:
        first = _hub_estimate(tmp_path, endpoint)
        asked_first = handler.asked["hf_quant_config.json"]
        second = _hub_estimate(tmp_path, endpoint)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert asked_first >= 1 and handler.asked["hf_quant_config.json"] == asked_first  # none the second time
    record = tmp_path / "cache" / "models--acme--llama" / ".no_exist" / COMMIT / "hf_quant_config.json"
    assert record.is_file()
    assert json.loads(second.stdout)["model"]["weights_bytes"] == json.loads(first.stdout)["model"]["weights_bytes"]


def test_check_warns_where_the_hub_could_not_be_asked(tmp_path):
    cached_repo(tmp_path, "acme/llama", {"config.json": LLAMA})
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    path = tmp_path / "deployments.yaml"
    path.write_text("deployments:\n  - name: llama\n    model: acme/llama\n    tp: 1\n    gpu: H100\n"
                    "    context: 8192\n")
    r = run_hub("check", "--file", path, "--format", "json", env=hub_env(tmp_path, f"http://127.0.0.1:{port}"))
    assert r.returncode == 0, r.stdout + r.stderr
    (result,) = json.loads(r.stdout)["results"]
    (finding,) = [f for f in result["findings"] if "hf_quant_config.json" in f["message"]]
    assert (finding["level"], finding["key"], finding["line"]) == ("warning", "model", 3)
    assert "could not be asked for the repo's hf_quant_config.json (it could not be reached)" in finding["message"]


# ---- the kv_cache_scheme vLLM refuses (compressed_tensors.py validate_kv_cache_scheme) ---------------------------

def _ct(scheme) -> dict:
    return {**CT_FP8, "kv_cache_scheme": scheme}


INT8 = {**KV_SCHEME, "type": "int"}
TYPE_BITS = "Currently supported kv cache quantization is num_bits=8, type=float, however received num_bits=8, type=int"


@pytest.mark.parametrize("scheme, engine, refused", [
    # `type != "float" and num_bits != 8` up to 0.23 (0.23.0 :986): an int8 scheme passes and the layer stores fp8
    (INT8, "vllm==0.23.0", ""),
    (INT8, "vllm==0.24.0", TYPE_BITS),  # `or` from 0.24 (0.24.0 :986)
    (INT8, "vllm==0.34.0", TYPE_BITS),  # 0.34.0 :1117
    ({**KV_SCHEME, "num_bits": 4, "type": "int"}, "vllm==0.20.0", "received num_bits=4, type=int"),
    # strategy "tensor" only up to 0.14 (0.14.1 :969), "attn_head" too from 0.16 (0.16.0 :957)
    ({**KV_SCHEME, "strategy": "attn_head"}, "vllm==0.14.1", "Expected strategy: tensor, found strategy: attn_head"),
    ({**KV_SCHEME, "strategy": "attn_head"}, "vllm==0.16.0", ""),
    ({**KV_SCHEME, "strategy": "attn_head"}, "vllm==0.34.0", ""),
    ({**KV_SCHEME, "strategy": "channel"}, "vllm==0.34.0", "found strategy: channel"),
    ({**KV_SCHEME, "symmetric": False}, "vllm==0.34.0", "However found symmetric: False"),  # 0.34.0 :1136-1141
    ({k: v for k, v in KV_SCHEME.items() if k != "symmetric"}, "vllm==0.20.0", "However found symmetric: None"),
])
def test_a_scheme_vllm_refuses_is_a_configuration_refusal(tmp_path, scheme, engine, refused):
    plan = _estimate(_folder(tmp_path, {**LLAMA, "quantization_config": _ct(scheme)}), "--gpu", "h100",
                     "--engine", engine)
    engine_figures = plan["engine"]
    assert engine_figures["starts"] is not bool(refused)
    if refused:
        assert refused in engine_figures["refusal"]["reason"] and engine_figures["refusal"]["configuration"]
    else:
        assert plan["kv_bytes_per_token"] == FP8  # the layer makes whatever scheme passes an fp8 cache


@pytest.mark.parametrize("scheme", ['"fp8"', "[8]", "true"])
def test_a_scheme_that_is_not_an_object_is_one_line(tmp_path, scheme):
    text = json.dumps({**LLAMA, "quantization_config": {**CT_FP8, "kv_cache_scheme": None}})
    text = text.replace('"kv_cache_scheme": null', '"kv_cache_scheme": ' + scheme)
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "config.json").write_text(text)
    r = run_kvplan("estimate", folder)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "config field 'quantization_config.kv_cache_scheme' must be an object" in one_error_line(r)


@pytest.mark.parametrize("engine, refused", [
    ("vllm==0.14.1", True),  # no overwrite step: attention/layer.py keeps fp8_e5m2 and refuses it
    ("vllm==0.20.0", False),  # the layer makes any dtype fp8 first (attention.py 0.20.0:233-237)
    ("vllm==0.21.0", False),
    ("vllm==0.22.0", True),  # only auto becomes fp8 (0.22.0:238), then :166-168 raises
    ("vllm==0.32.0", True),
    ("vllm==0.34.0", True),  # 0.34.0:222-235, where the config has a kv_cache_scheme
])
def test_fp8_e5m2_beside_a_scheme_by_release(tmp_path, engine, refused):
    folder = _folder(tmp_path, {**LLAMA, "quantization_config": CT_FP8})
    plan = _estimate(folder, "--gpu", "h100", "--engine", engine, "--kv-cache-dtype", "fp8_e5m2")
    assert plan["engine"]["starts"] is not refused
    if refused:
        assert plan["engine"]["refusal"]["reason"] == "fp8_e5m2 kv-cache is not supported with fp8 checkpoints."
    assert _estimate(folder, "--gpu", "h100", "--engine", engine)["engine"]["starts"]


# Falcon-7B: 32 layers, multi_query (1 KV head), head_dim 4,544 / 71 = 64: 32 x 2 x 64 = 4,096 elements a token
FALCON_BF16, FALCON_FP8 = 32 * 2 * 1 * 64 * 2, 32 * 2 * 1 * 64


def test_falcon_hand_arithmetic():
    assert (FALCON_BF16, FALCON_FP8, 4544 // 71) == (8192, 4096, 64)


@pytest.mark.parametrize("engine, asked, per_token", [
    # falcon.py 0.20.0:173-197 builds Attention without cache_config (auto) but with quant_config, so the scheme's
    # step makes every layer fp8: any dtype 0.16-0.21 (attention.py 0.20.0:233-237), auto (always so) from 0.22
    ("vllm==0.20.0", "auto", FALCON_FP8),
    ("vllm==0.20.0", "bfloat16", FALCON_FP8),
    ("vllm==0.32.0", "auto", FALCON_FP8),
    ("vllm==0.32.0", "bfloat16", FALCON_FP8),
    ("vllm==0.32.0", "fp8_e5m2", FALCON_FP8),  # the layer's dtype is auto: no fp8_e5m2 refusal either
    ("vllm==0.14.1", "fp8", FALCON_BF16),  # no such step: Falcon keeps the model dtype
])
def test_falcons_layers_take_the_scheme_whatever_is_asked(tmp_path, engine, asked, per_token):
    from tests.hub_configs import FALCON_7B

    folder = _folder(tmp_path, {**FALCON_7B, "quantization_config": CT_FP8})
    plan = estimate_plan(folder, "-c", "2048", "--gpu", "h100", "--engine", engine, "--kv-cache-dtype", asked)
    assert (plan["kv_bytes_per_token"], plan["engine"]["starts"]) == (per_token, True)


def test_falcon_without_a_scheme_keeps_the_model_dtype(tmp_path):
    from tests.hub_configs import FALCON_7B

    plain = {k: v for k, v in CT_FP8.items() if k != "kv_cache_scheme"}
    folder = _folder(tmp_path, {**FALCON_7B, "quantization_config": plain})
    plan = estimate_plan(folder, "-c", "2048", "--gpu", "h100", "--engine", "vllm==0.32.0", "--kv-cache-dtype", "fp8")
    assert plan["kv_bytes_per_token"] == FALCON_BF16


FLINT = {**LLAMA, "architectures": ["FlintForCausalLM"], "model_type": "flint", "num_hidden_layers": 4,
         "layer_types": ["full_attention"] * 4}


def test_flints_layers_have_sinks():
    """models/flint/model.py 0.34.0:296-307 builds every Attention with sinks=self.softmax_offset."""
    assert parse_config(FLINT, "x").attention_sinks is True


def test_flint_nvfp4_on_hopper_is_refused_for_its_sinks(tmp_path):
    """fa2's supports_combination refuses sinks with an NVFP4 cache on SM90 (0.34.0 flashinfer.py:669-690)."""
    plan = _estimate(_folder(tmp_path, FLINT), "--gpu", "h100", "--engine", "vllm==0.34.0", "--kv-cache-dtype",
                     "nvfp4")
    assert not plan["engine"]["starts"]
    assert "the sink prefill wrapper cannot read an NVFP4 KV cache" in plan["engine"]["refusal"]["reason"]


def test_nvfp4_asked_by_name_is_not_blamed_on_the_checkpoint(tmp_path):
    folder = _folder(tmp_path, LLAMA, NVFP4_KV_FILE)
    named = _estimate(folder, "--gpu", "h100", "--engine", "vllm==0.25.0", "--kv-cache-dtype", "nvfp4")
    auto = _estimate(folder, "--gpu", "h100", "--engine", "vllm==0.25.0")  # SM100 only (0.25.0 :427-433)
    assert not named["engine"]["starts"] and not auto["engine"]["starts"]
    assert "what --kv-cache-dtype auto stores" not in named["engine"]["refusal"]["reason"]
    assert "what --kv-cache-dtype auto stores" in auto["engine"]["refusal"]["reason"]


@pytest.mark.parametrize("engine, warned", [("vllm==0.20.0", True), ("vllm==0.32.0", False)])
def test_check_warns_where_the_scheme_overrides_kv_dtype(tmp_path, engine, warned):
    folder = _folder(tmp_path, {**LLAMA, "quantization_config": CT_FP8})
    path = tmp_path / "deployments.yaml"
    path.write_text(f"deployments:\n  - name: ct\n    model: {folder}\n    tp: 1\n    gpu: H100\n"
                    f"    context: 8192\n    engine: {engine}\n    kv_dtype: bfloat16\n")
    r = run_kvplan("check", "--file", path, "--format", "json")
    assert r.returncode == 0, r.stdout + r.stderr
    (result,) = json.loads(r.stdout)["results"]
    kept = [f for f in result["findings"] if f["key"] == "kv_dtype" and f["level"] == "warning"]
    assert bool(kept) is warned, result["findings"]
    if warned:
        assert "keeps an fp8_e4m3 cache in vllm where the KV dtype asks bfloat16" in kept[0]["message"]


@pytest.mark.parametrize("kv_dtype, warned", [("fp8", False), ("bfloat16", False)])
def test_check_does_not_warn_of_fp8_ds_mla_for_fp8(kv_dtype, warned):
    """DeepSeek-V3.2 asked fp8 keeps vLLM's fp8_ds_mla (656 B a token: its own 8-bit layout, sparse_mla rules): the
    8-bit cache asked for, so check warns of nothing on kv_dtype (estimate still names the layout). Asked bfloat16 on
    an H200 the engine refuses or keeps bf16 — either way no "keeps" warning on kv_dtype."""
    r = run_kvplan("check", "deepseek-ai/DeepSeek-V3.2", "-tp", "8", "--gpu", "h200", "-c", "8192", "--kv-dtype",
                   kv_dtype, "--format", "json")
    (result,) = json.loads(r.stdout)["results"]
    kept = [f for f in result["findings"] if f["key"] == "kv_dtype" and "keeps" in f["message"]]
    assert bool(kept) is warned, result["findings"]
