"""Review of the pre-MLA DeepSeek caching (kvplan/engines/vllm_premla.py), against the wheels:

    # ModelConfig.get_head_size, config.py 0.6.6:719-726: 256 for a 'deepseek_v2' / 'deepseek_v3' config
    # ModelConfig.use_mla, config.py 0.7.1:972-978: False for a quantization other than fp8 / compressed-tensors
    # config.py 0.7.3:998-999: use_mla = is_deepseek_mla and not VLLM_MLA_DISABLE (whatever the quantization)

- verify lays out and forwards the MLA latent (verify/layout.py cache_layout: [num_blocks, block_size, latent_dim] a
  layer); a release that caches every head's K and V instead (0.5.1-0.7.0, and 0.7.1-0.7.2 under AWQ / GPTQ) is
  refused before torch (commands/verify.py refuse_per_head_mla), naming the first release that caches this
  checkpoint's latent: 0.7.1 unquantized, 0.7.3 under AWQ; and after the weights' refusal, so an AWQ checkpoint
  (int4, which verify's forward runs on no release) is not sent to a release where verify refuses it all the same.
  The tiny DeepSeek-V2 (tests/tiny_models.py): 2 layers, 4 heads, latent 32 + rope 8 = 40: its latent is
  2 x 40 x 2 = 160 B a token; 0.6.3 keeps 2 layers x 2 x 4 heads x 256 x 2 B = 8,192 B.
- the note reads as one sentence in the table's "Rules:" line (which adds the full stop): no "..".
"""

from __future__ import annotations

import json

import pytest

from conftest import one_error_line, run_kvplan
from tiny_models import TINY

import kvplan
from kvplan.engines.vllm_premla import per_head_view
from kvplan.model.bundled import find_bundled, load_bundled

LITE = "deepseek-ai/DeepSeek-V2-Lite"


def _tiny(tmp_path, **changes) -> str:
    folder = tmp_path / "tiny_deepseek_v2"
    folder.mkdir()
    body = {**TINY["deepseek_v2"], "architectures": ["DeepseekV2ForCausalLM"], **changes}
    (folder / "config.json").write_text(json.dumps(body))
    return str(folder)


def test_estimate_of_the_tiny_model_by_hand(tmp_path):
    folder = _tiny(tmp_path)
    (old,) = kvplan.estimate(folder + "/config.json", gpu="H100", engine="vllm==0.6.3", max_model_len=4096)
    (new,) = kvplan.estimate(folder + "/config.json", gpu="H100", engine="vllm==0.8.0", max_model_len=4096)
    assert (old.kv_bytes_per_token_per_gpu, new.kv_bytes_per_token_per_gpu) == (2 * 2 * 4 * 256 * 2, 2 * 40 * 2)


@pytest.mark.parametrize("version, first", [("0.6.3", "0.7.1"), ("0.7.0", "0.7.1")])
def test_verify_refuses_a_per_head_release_before_torch(tmp_path, version, first):
    run = run_kvplan("verify", _tiny(tmp_path), "--engine", f"vllm=={version}")
    line = one_error_line(run)
    assert run.returncode == 2
    assert f"--engine vllm=={first} or newer" in line and "every head's K and V" in line and "CUDA" not in line


def test_the_first_latent_release_under_awq_is_0_7_3():
    """use_mla is off for AWQ in 0.7.1-0.7.2 (config.py 0.7.1:972-978), on whatever the quantization in 0.7.3."""
    from dataclasses import replace

    from kvplan.engines.vllm_premla import latent_since

    spec = load_bundled(find_bundled(LITE))[1]
    assert (latent_since(spec), latent_since(replace(spec, quantization="awq"))) == ("0.7.1", "0.7.3")
    assert latent_since(replace(spec, quantization="fp8")) == "0.7.1"


def test_verify_says_first_that_it_runs_no_awq_weights(tmp_path):
    """An AWQ checkpoint verify's forward cannot run on any release: that refusal, not a release to move to."""
    awq = {"quant_method": "awq", "bits": 4, "group_size": 32, "zero_point": True, "version": "gemm"}
    line = one_error_line(run_kvplan("verify", _tiny(tmp_path, quantization_config=awq), "--engine", "vllm==0.7.2"))
    assert "int4" in line and "every head's K and V" not in line


def test_verify_passes_a_latent_release_on_to_the_gpu_check(tmp_path):
    """0.8.0 caches the latent: without a GPU the next refusal is the GPU's own (with one, verify runs)."""
    run = run_kvplan("verify", _tiny(tmp_path), "--engine", "vllm==0.8.0")
    assert "every head's K and V" not in run.stderr


def test_the_note_is_one_sentence_in_the_table():
    run = run_kvplan("estimate", LITE, "--gpu", "H100", "--engine", "vllm==0.6.3", "-c", "32768")
    said = " ".join(run.stdout.split())
    assert "MLA cached per head: vLLM 0.6.3" in said and "before 0.7.1." in said and ".." not in said


@pytest.mark.parametrize("version, quantization", [("0.6.3", ""), ("0.7.1", "awq")])
def test_notes_end_without_a_full_stop_as_the_others_do(version, quantization):
    from dataclasses import replace

    spec = replace(load_bundled(find_bundled(LITE))[1], quantization=quantization)
    (note,) = [n for n in per_head_view(spec, version).notes if n.startswith("MLA cached per head")]
    assert not note.endswith(".")
