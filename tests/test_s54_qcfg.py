"""Session 54 (qcfg): the settings file vLLM reads for --quantization awq / gptq beside a config.json that has no
quantization_config, and transformers' defaults for Gemma4UnifiedTextConfig.

Read by hand:
- vLLM model_loader/weight_utils.py get_quant_config (0.32.0:235-242): the settings come from hf_config's
  quantization_config, its text_config's, or compression_config; with none, the model folder (a Hub repo: its
  snapshot_download of "*.json", :332-343) is globbed for *.json and the files whose path ends with one of the -q
  class's get_config_filenames() are kept (:347-369); none: "Cannot find the config file for gptq" (:375), more than
  one: "Found multiple config files for awq" (:376-380); one: json.load'ed and handed to the class's from_config
  (:382-395), so the class is the flag's whatever quant_method the file names. The same in 0.11.0 (:239-309) and
  0.34.0 (:256-430).
- get_config_filenames: GPTQConfig / AutoGPTQConfig ["quantize_config.json"] (gptq.py 0.11.0:112, auto_gptq.py
  0.32.0:187); AWQConfig ["quant_config.json", "quantize_config.json"] (awq.py 0.11.0:65-70), AutoAWQConfig
  ["quantize_config.json", "quant_config.json"] (auto_awq.py 0.32.0:238).
- A GPTQ / AWQ checkpoint's 4-bit linear layer of `out` x `in` (AutoGPTQ / AutoAWQ layout, g = group_size): qweight
  in * out / 2 bytes (int32 words of 8 values), qzeros (in / g) x out / 8 int32 = (in / g) * out / 2 bytes, scales
  (in / g) x out fp16 = (in / g) * out * 2 bytes. GPTQ's g_idx (int32 per input) is not counted (model/params.py
  says so).
- transformers 5.22.2 models/gemma4_unified/configuration_gemma4_unified.py:124-147 (Gemma4UnifiedTextConfig
  fields): vocab_size 262,144, hidden_size 2304, intermediate_size 9216, num_hidden_layers 30, heads 8, KV heads 4,
  head_dim 256, max_position_embeddings 262,144, tie_word_embeddings true, sliding_window 1024,
  use_bidirectional_attention "vision"; :153-155 halves the window under "all"; :157-162 every 6th layer full;
  :177 global_head_dim 512.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT, one_error_line, run_hub, run_kvplan
from tests.fake_hub import cached_repo, hub_env, repo_handler, serving
from kvplan.model.config import Config
from kvplan.model.kinds import FullAttention, SlidingWindow
from kvplan.model.parse import parse_config
from kvplan.model.quantization import apply_weight_precision
from kvplan.model.sources import resolve

# a tiny Llama: 2 layers, hidden 256, MLP 512, 4 heads of 64 (2 KV heads), vocab 1,000, untied, fp16
TINY = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 256, "intermediate_size": 512,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 1000,
        "max_position_embeddings": 4096, "torch_dtype": "float16", "tie_word_embeddings": False}
GPTQ_FILE = {"bits": 4, "group_size": 128, "desc_act": False, "sym": True}  # AutoGPTQ's quantize_config.json
AWQ_FILE = {"zero_point": True, "q_group_size": 128, "w_bit": 4, "version": "GEMM"}  # AutoAWQ's quant_config.json


def _int4(out: int, inputs: int, group: int = 128) -> int:
    """Bytes of one 4-bit out x in layer: qweight + qzeros + fp16 scales (module docstring)."""
    groups = inputs // group
    return inputs * out // 2 + groups * out // 2 + groups * out * 2


# q 256x256, k and v 128x256, o 256x256; gate and up 512x256, down 256x512 (out x in)
INT4_LAYER = 2 * _int4(256, 256) + 2 * _int4(128, 256) + 2 * _int4(512, 256) + _int4(256, 512)
FP16_REST = 2 * 1000 * 256 * 2 + 2 * (2 * 256 * 2) + 256 * 2  # embed + lm_head, two norms a layer, the final norm
GPTQ_BYTES = 2 * INT4_LAYER + FP16_REST
FP16_BYTES = 2 * (256 * 256 * 2 + 128 * 256 * 2 + 3 * 512 * 256) * 2 + FP16_REST


def test_the_hand_arithmetic():
    assert _int4(256, 256) == 32768 + 256 + 1024 == 34048
    assert _int4(256, 512) == 65536 + 512 + 2048 == 68096 == _int4(512, 256)
    assert INT4_LAYER == 2 * 34048 + 2 * 17024 + 3 * 68096 == 306432
    assert FP16_REST == 1_024_000 + 2_048 + 512 == 1_026_560
    assert GPTQ_BYTES == 2 * 306432 + 1_026_560 == 1_639_424
    assert FP16_BYTES == 2 * 589_824 * 2 + 1_026_560 == 3_385_856


def _folder(tmp_path, files: dict, name: str = "ckpt"):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(TINY))
    for filename, contents in files.items():
        (folder / filename).write_text(json.dumps(contents))
    return folder


def _model(target, *args) -> dict:
    r = run_kvplan("estimate", target, "--gpu", "h100", "-c", "4096", "--format", "json", *args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["model"]


# ---- a local folder, or a config.json in one ----------------------------------------------------------------------

def test_gptq_reads_quantize_config_json_beside_config_json(tmp_path):
    """Before, kvplan refused -q gptq here ("this model's config has no quantization_config"); vLLM serves it."""
    folder = _folder(tmp_path, {"quantize_config.json": GPTQ_FILE})
    for target in (folder, folder / "config.json"):  # the folder, or its config.json given bare
        model = _model(target, "-q", "gptq")
        assert (model["weights_bytes"], model["weights_dtype"]) == (GPTQ_BYTES, "int4-gptq")
        assert "gptq settings read from quantize_config.json beside config.json, as vLLM's --quantization gptq " \
               "does" in model["rules"]
    assert _model(folder)["weights_bytes"] == FP16_BYTES  # without -q vLLM reads no such file


def test_the_file_is_the_quantization_config_with_the_flags_method(tmp_path):
    folder = _folder(tmp_path, {"quantize_config.json": {**GPTQ_FILE, "quant_method": "something-else"}})
    spec = resolve(str(folder), quantization="gptq")
    assert spec.quantization == "gptq"
    assert dict(spec.quantization_fields) == {"bits": 4, "group_size": 128, "sym": True, "desc_act": False}
    assert apply_weight_precision(spec, "gptq").weights.bytes == GPTQ_BYTES
    assert resolve(str(folder)).quantization == ""  # no -q: the file is not read


def test_awq_reads_autoawqs_quant_config_json(tmp_path):
    """AWQ's 4-bit layer holds the same bytes as GPTQ's (qweight, qzeros, fp16 scales per group of 128)."""
    model = _model(_folder(tmp_path, {"quant_config.json": AWQ_FILE}), "-q", "awq")
    assert (model["weights_bytes"], model["weights_dtype"]) == (GPTQ_BYTES, "int4-awq")


def test_each_class_reads_only_its_own_names(tmp_path):
    """GPTQ's only name is quantize_config.json: AutoAWQ's quant_config.json leaves -q gptq without settings."""
    line = one_error_line(run_kvplan("estimate", _folder(tmp_path, {"quant_config.json": AWQ_FILE}), "-q", "gptq"))
    assert line == ("kvplan: error: -q gptq needs a checkpoint quantised with GPTQ: this model's config has no "
                    "quantization_config and no quantize_config.json lies beside its config.json (vLLM reads that "
                    "file instead), so vLLM stops at \"Cannot find the config file for gptq\".")


def test_two_awq_settings_files_are_refused_as_vllm_does(tmp_path):
    folder = _folder(tmp_path, {"quant_config.json": AWQ_FILE, "quantize_config.json": GPTQ_FILE})
    line = one_error_line(run_kvplan("estimate", folder, "-q", "awq"))
    assert line == ("kvplan: error: -q awq finds 2 settings files beside config.json (quant_config.json, "
                    "quantize_config.json), so vLLM stops at \"Found multiple config files for awq\"; keep one.")


def test_a_quantization_config_in_config_json_wins_over_the_file(tmp_path):
    """vLLM reads the file only when the config holds no settings (weight_utils.py 0.32.0:258-274 returns first)."""
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({**TINY, "quantization_config": {
        "quant_method": "gptq", "bits": 8, "group_size": 128, "desc_act": False, "sym": True}}))
    (folder / "quantize_config.json").write_text(json.dumps(GPTQ_FILE))
    assert dict(resolve(str(folder), quantization="gptq").quantization_fields)["bits"] == 8


def test_a_deployments_file_reads_it_too(tmp_path):
    folder = _folder(tmp_path, {"quantize_config.json": GPTQ_FILE})
    path = tmp_path / "deployments.yaml"
    path.write_text(f"deployments:\n  - name: g\n    model: {folder}\n    tp: 1\n    gpu: h100\n    context: 4096\n"
                    f"    quantization: gptq\n")
    r = run_kvplan("check", "--file", path, "--format", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["results"][0]["passed"]
    (folder / "quant_config.json").write_text(json.dumps(AWQ_FILE))  # AWQ names both files: vLLM refuses two
    path.write_text(path.read_text().replace("gptq", "awq"))
    line = one_error_line(run_kvplan("check", "--file", path))
    assert line.startswith(f"kvplan: error: {path}:7: deployment 'g' field 'quantization' awq finds 2 settings files")


# ---- the Hub ------------------------------------------------------------------------------------------------------

def test_a_cached_hub_repo_offline(tmp_path):
    cached_repo(tmp_path, "acme/tiny-gptq", {"config.json": TINY, "quantize_config.json": GPTQ_FILE})
    r = run_hub("estimate", "acme/tiny-gptq", "-q", "gptq", "--gpu", "h100", "-c", "4096", "--format", "json",
                      env=hub_env(tmp_path, offline=True))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["model"]["weights_bytes"] == GPTQ_BYTES


def test_a_cached_hub_repo_without_the_file_is_refused(tmp_path):
    cached_repo(tmp_path, "acme/tiny-gptq", {"config.json": TINY})
    r = run_hub("estimate", "acme/tiny-gptq", "-q", "gptq", env=hub_env(tmp_path, offline=True))
    # offline, the cache lacking the file says nothing of the repo: the error says the cache (s54 fix7)
    assert r.returncode == 2 and "the Hugging Face cache holds no quantize_config.json" in r.stderr, r.stderr
    assert "HF_HUB_OFFLINE is set" in r.stderr


# config.json and quantize_config.json, and the model listing naming them; anything else 404
_Repo = repo_handler({"config.json": TINY, "quantize_config.json": GPTQ_FILE})


@pytest.fixture
def repo_server():
    _Repo.asked.clear()
    with serving(_Repo) as endpoint:
        yield endpoint


def test_the_hub_is_asked_for_the_file_only_for_awq_or_gptq(repo_server, tmp_path):
    env = hub_env(tmp_path, repo_server)
    plain = run_hub("estimate", "acme/tiny", "--gpu", "h100", "-c", "4096", "--format", "json", env=env)
    assert plain.returncode == 0, plain.stderr
    assert json.loads(plain.stdout)["model"]["weights_bytes"] == FP16_BYTES
    assert _Repo.asked["config.json"] and not _Repo.asked["quantize_config.json"]
    asked = run_hub("estimate", "acme/tiny", "-q", "gptq", "--gpu", "h100", "-c", "4096", "--format", "json",
                          env=env)
    assert asked.returncode == 0, asked.stderr
    assert json.loads(asked.stdout)["model"]["weights_bytes"] == GPTQ_BYTES
    assert _Repo.asked["quantize_config.json"] and not _Repo.asked["quant_config.json"]


def test_a_bundled_model_never_imports_the_hub_client():
    """Rule 1 of model/sources.py: a bundled id is its bundled spec; -q gptq looks for no file on the Hub."""
    code = ("import sys; from kvplan.model.sources import resolve; "
            "s = resolve('meta-llama/Llama-3.2-1B-Instruct', quantization='gptq'); "
            "print(s.quantization == '', 'huggingface_hub' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.stdout.split() == ["True", "False"], out.stderr


# ---- Gemma4UnifiedTextConfig's defaults ---------------------------------------------------------------------------

UNIFIED = {"architectures": ["Gemma4UnifiedForConditionalGeneration"], "model_type": "gemma4_unified",
           "torch_dtype": "bfloat16",
           "text_config": {"model_type": "gemma4_unified_text", "num_hidden_layers": 30, "hidden_size": 2304,
                           "intermediate_size": 9216, "num_attention_heads": 8, "num_key_value_heads": 4,
                           "head_dim": 256, "vocab_size": 262144, "max_position_embeddings": 262144}}


def _text(**fields) -> dict:
    return {**UNIFIED, "text_config": {**UNIFIED["text_config"], **fields}}


def test_a_unified_config_without_its_window_takes_the_class_default():
    """Before: "config field 'sliding_window' is missing". The class gives 1024 (Gemma4TextConfig's is 512)."""
    spec = parse_config(UNIFIED, "t")
    sliding = [layer for layer in spec.layers if isinstance(layer, SlidingWindow)]
    full = [layer for layer in spec.layers if isinstance(layer, FullAttention) and layer not in sliding]
    assert len(sliding) == 25 and {layer.sliding_window for layer in sliding} == {1024}  # 5 of every 6
    assert len(full) == 5 and {layer.head_dim for layer in full} == {512}  # global_head_dim's default


def test_the_default_flag_makes_it_a_prefix_lm():
    """use_bidirectional_attention "vision" by default (vision.media_prefix); an explicit null is causal."""
    assert parse_config(UNIFIED, "t").media_prefix is not None
    assert parse_config(_text(use_bidirectional_attention=None), "t").media_prefix is None


def test_all_halves_the_default_window():
    assert Config(_text(use_bidirectional_attention="all"), "t").int("sliding_window") == 1024 // 2 + 1 == 513


def test_a_bare_text_config_gets_the_class_shapes():
    """Only model_type given: the class's own shapes (2304 wide, 30 layers, 8 heads of 256, 4 KV heads)."""
    spec = parse_config({"model_type": "gemma4_unified_text"}, "t")
    assert (spec.hidden_size, spec.num_hidden_layers, spec.num_attention_heads) == (2304, 30, 8)
    assert spec.max_position_embeddings == 262144 and spec.vocab_size == 262144
    assert {layer.kv_heads for layer in spec.layers} == {4}
