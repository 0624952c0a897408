"""`kvplan verify` on a machine without a GPU, session 66's fuzz round: a bad flag is named before "no GPU".

V1  vLLM refuses a max model length past the model's own while ModelConfig reads the config (config/model.py
    0.32.0 _get_and_verify_max_len:2637-2666), and an architecture its registry no longer serves
    (model_executor/models/registry.py:849, RWForCausalLM until 0.28.0), before it reads any GPU: verify said "needs
    a CUDA GPU" for both (and on a GPU stopped only after CUDA had started). Now named before torch.
V2  verify's default max model length, 8192, is past the own maximum of bundled models (Llama 2's 4,096; Gemma 3's
    1,024-token window under --disable-sliding-window), so a run given no length was refused for one on any GPU.
    Now 8192, or the model's own maximum (as the release derives it) where that is shorter.
V3  verify read the model before it checked --kv-cache-dtype / --block-size against the release's own lists.
"""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import ROOT, one_error_line, run_kvplan

import kvplan.api as api
from kvplan.commands import verify as verify_command
from kvplan.errors import FieldError, KvplanError
from kvplan.gpu import nvml

STOP = "kvplan: error: stopped before torch"


@pytest.fixture
def lengths(monkeypatch) -> list:
    """The max model length each verify run got past every check before torch with (its GPU stage stopped)."""
    seen = []

    def stop():
        raise KvplanError("stopped before torch")

    real = verify_command.refuse_prefix_flags

    def record(spec, flags, context, version):
        seen.append(context)
        return real(spec, flags, context, version)

    monkeypatch.setattr(nvml, "import_stack", stop)
    monkeypatch.setattr(verify_command, "refuse_prefix_flags", record)
    return seen


def _config(tmp_path, name: str, **changes):
    config = yaml.safe_load((ROOT / "model_specs" / name).read_text())["config"]
    config.update(changes)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return path


def test_a_length_past_the_model_s_own_is_named_before_the_gpu(tmp_path, lengths):
    path = _config(tmp_path, "meta-llama--Llama-3.2-1B-Instruct.yaml", max_position_embeddings=4096,
                   rope_scaling=None)
    line = one_error_line(run_kvplan("verify", path, "-c", "8K"))
    # vLLM's own words, the length as a float (config/model.py 0.32.0:2647), and the longest it takes
    assert line.startswith("kvplan: error: -c 8192: vLLM 0.32.0 refuses it on any GPU")
    assert "(max_position_embeddings=4096.0 or model_max_length=None" in line and "-c 4096 or less" in line
    assert "CUDA" not in line and lengths == []
    with pytest.raises(FieldError) as caught:  # the API names its keyword
        api.verify(str(path), max_model_len=4097)
    assert caught.value.field == "max_model_len" and "accepts max_model_len 4096 or less" in str(caught.value)
    assert one_error_line(run_kvplan("verify", path, "-c", "4096")) == STOP and lengths == [4096]


def test_the_length_is_the_one_the_release_derives(tmp_path, lengths):
    """A dynamic RoPE factor multiplies the config's length (config/model.py 0.32.0:2583-2615): 4096 x 2."""
    path = _config(tmp_path, "meta-llama--Llama-3.2-1B-Instruct.yaml", max_position_embeddings=4096,
                   rope_scaling={"rope_type": "dynamic", "factor": 2.0})
    assert one_error_line(run_kvplan("verify", path, "-c", "8192")) == STOP
    line = one_error_line(run_kvplan("verify", path, "-c", "8193"))
    assert "max_position_embeddings=8192.0" in line and "-c 8192 or less" in line
    assert one_error_line(run_kvplan("verify", path)) == STOP and lengths == [8192, 8192]


def test_a_retired_architecture_is_named_before_the_gpu(lengths):
    line = one_error_line(run_kvplan("verify", "tiiuae/falcon-7b"))
    assert line.startswith("kvplan: error: --engine vllm==0.32.0: vLLM 0.32.0 refuses the model on any GPU")
    assert "RWForCausalLM was supported in vLLM until v0.28.0" in line and "--engine vllm==0.28.0 or older." in line
    assert lengths == []


@pytest.mark.parametrize("model, args, length", [
    ("meta-llama/Llama-3.1-8B", (), 8192),  # max_position_embeddings 131,072: verify's own default
    ("meta-llama/Llama-2-7b-hf", (), 4096),  # max_position_embeddings 4,096
    ("google/gemma-3-4b-it", ("--disable-sliding-window",), 1024),  # sliding_window 1,024 caps the length
    ("tiiuae/falcon-mamba-7b", (), 8192),  # no length key in its config class: any length is taken as given
])
def test_verify_s_default_length_is_one_the_release_takes(lengths, model, args, length):
    assert one_error_line(run_kvplan("verify", model, *args)) == STOP
    assert lengths == [length]


def test_a_length_given_is_never_lowered(lengths):
    line = one_error_line(run_kvplan("verify", "meta-llama/Llama-2-7b-hf", "--max-model-len", "8192"))
    assert "--max-model-len 8192: vLLM 0.32.0 refuses it" in line and "--max-model-len 4096 or less" in line
    assert lengths == []


@pytest.mark.parametrize("args, said", [
    (("--kv-cache-dtype", "fp8_e4m4"), "--kv-cache-dtype 'fp8_e4m4' is not a KV-cache dtype vLLM takes"),
    (("--engine", "vllm==0.5.0", "--block-size", "64"), "--block-size 64 is not a choice of vLLM 0.5.0"),
    (("--engine", "vllm==0.2.0", "--kv-cache-dtype", "fp8"), "--kv-cache-dtype fp8 needs vLLM 0.3.0 or later"),
])
def test_a_value_the_release_does_not_list_is_named_before_the_model_is_read(args, said):
    """V3: verify read the model (from the Hub, up to --hub-timeout) before it checked --kv-cache-dtype and --block-size
    against the release's lists, which need no model; estimate checks them first. A Hub id that is neither bundled nor
    cached (offline) shows which came first."""
    line = one_error_line(run_kvplan("verify", "nobody/no-such-model", *args))
    assert said in line and "Hugging Face" not in line
