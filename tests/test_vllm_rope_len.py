"""vLLM's RoPE scaling of the model's derived length (engines/vllm_rope_len.py). vLLM 0.34.0's own
_get_and_verify_max_len, run on 16 configs, 20 cases with --disable-sliding-window (benchmarks/vllm_reference/
rope_max_len.py, frozen in tests/data/vllm_rope_max_len.json), gives the default length and the refusal of a
longer --max-model-len; the older releases are hand arithmetic from the vLLM source line each test cites."""

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kvplan.cli.run import main  # noqa: E402

REFERENCE = json.loads((ROOT / "tests" / "data" / "vllm_rope_max_len.json").read_text())
QWEN_YARN = json.loads(Path(ROOT / "tests" / "data" / "vllm_rope_max_len.json").read_text())["cases"][0]["config"]


def _estimate(capsys, tmp_path, config, *args):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    code = main(["estimate", str(path), "--gpu", "H100", "-f", "json", *args])
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out)


def _plan(capsys, tmp_path, config, *args):
    return _estimate(capsys, tmp_path, config, *args)["plans"][0]


def _ids(case):
    return f"{case['name']}{'-disable-sliding-window' if case['disable_sliding_window'] else ''}"


def test_the_reference_is_vllm_0_34():
    assert REFERENCE["header"]["vllm_version"].startswith("0.34.0") and len(REFERENCE["cases"]) == 20
    assert QWEN_YARN["rope_scaling"] == {"factor": 4.0, "original_max_position_embeddings": 32768, "type": "yarn"}


@pytest.mark.parametrize("case", REFERENCE["cases"], ids=_ids)
def test_default_length_is_vllm_0_34s(case, capsys, tmp_path):
    switch = ("--disable-sliding-window",) if case["disable_sliding_window"] else ()
    plan = _plan(capsys, tmp_path, case["config"], "--engine", "vllm==0.34.0", *switch)
    assert plan["context"] == case["default"]


@pytest.mark.parametrize("case", REFERENCE["cases"], ids=_ids)
def test_a_longer_length_is_refused_as_vllm_0_34_refuses_it(case, capsys, tmp_path):
    switch = ("--disable-sliding-window",) if case["disable_sliding_window"] else ()
    plan = _plan(capsys, tmp_path, case["config"], "--engine", "vllm==0.34.0", "--max-model-len", str(case["probe"]),
                 "--gpu-memory", "400GiB", *switch)  # memory enough for every probe: only the length can refuse
    refusal = (plan["engine"].get("refusal") or {}).get("reason", "")
    assert ("is greater than the derived max_model_len" in refusal) == case["probe_refused"]
    if case["probe_refused"]:  # the key and the derived length vLLM names (an int here: 6145.5 -> 6145)
        assert f"({case['limit_key']}={int(case['limit'])}" in refusal.replace(".0 or", " or")


# ---- the Qwen YaRN recipe by release ------------------------------------------------------------------------

@pytest.mark.parametrize("version, length", [
    ("0.34.0", 32768),  # config/model.py 0.34.0:2657-2664: yarn skipped
    ("0.32.0", 32768),  # 0.32.0:2595-2602
    ("0.30.0", 32768),  # 0.30.0:2471-2478: the first release skipping YaRN
    ("0.29.0", 131072),  # 0.29.0:2457-2458 original 32768, then :2469 x 4
    ("0.12.0", 131072),  # 0.12.0:2220-2223
    ("0.11.0", 131072),  # 0.11.0:1860-1863
    ("0.4.0", 131072),  # config.py 0.4.0 (the yarn branch since 0.2.2)
])
def test_qwen_yarn_recipe_by_release(version, length, capsys, tmp_path):
    assert _plan(capsys, tmp_path, QWEN_YARN, "--engine", f"vllm=={version}")["context"] == length


def test_yarn_before_0_30_starts_from_the_original_not_max_position_embeddings(capsys, tmp_path):
    # max_position_embeddings 65536, original 32768, factor 4: 0.29 derives 32768 x 4 = 131072 (0.29.0:2457-2458),
    # 0.30 keeps 65536, 0.2.0 (no yarn branch: config.py 0.2.0 derived *= factor) 65536 x 4 = 262144
    config = dict(QWEN_YARN, max_position_embeddings=65536)
    lengths = {v: _plan(capsys, tmp_path, config, "--engine", f"vllm=={v}")["context"]
               for v in ("0.2.0", "0.2.2", "0.29.0", "0.30.0")}
    assert lengths == {"0.2.0": 262144, "0.2.2": 131072, "0.29.0": 131072, "0.30.0": 65536}


def test_yarn_recipe_before_0_30_serves_131072_and_says_so(capsys, tmp_path):
    out = _estimate(capsys, tmp_path, QWEN_YARN, "--engine", "vllm==0.29.0", "--max-model-len", "131072")
    assert out["plans"][0]["engine"]["starts"] and out["model"]["max_position_embeddings"] == 131072
    note = [rule for rule in out["model"]["rules"] if rule.startswith("RoPE scaling")]
    assert note and "original_max_position_embeddings 32,768 x factor 4" in note[0] and "0.29.0" in note[0]


# ---- linear / dynamic, the sliding-window switch, LongRoPE, Gemma 3 -----------------------------------------

LINEAR = {"architectures": ["MistralForCausalLM"], "model_type": "mistral", "hidden_size": 1024,
          "intermediate_size": 2048, "num_hidden_layers": 4, "num_attention_heads": 8, "num_key_value_heads": 8,
          "max_position_embeddings": 32768, "sliding_window": 4096, "vocab_size": 32000, "torch_dtype": "bfloat16",
          "rope_scaling": {"type": "linear", "factor": 2.0}}


@pytest.mark.parametrize("version", ["0.2.0", "0.4.3", "0.11.0", "0.12.0", "0.29.0", "0.32.0"])
def test_linear_factor_multiplies_in_every_release(version, capsys, tmp_path):
    # config.py 0.2.0: derived *= factor; 0.11.0:1858-1863; 0.32.0:2603-2616: 32768 x 2
    assert _plan(capsys, tmp_path, LINEAR, "--engine", f"vllm=={version}")["context"] == 65536


def test_linear_factor_note_says_by_what(capsys, tmp_path):
    out = _estimate(capsys, tmp_path, LINEAR)
    note = [rule for rule in out["model"]["rules"] if rule.startswith("RoPE scaling")]
    assert note and "65,536 = max_position_embeddings 32,768 x linear RoPE factor 2" in note[0]


def test_switch_with_a_factor_is_refused_by_0_11_and_scaled_from_0_12(capsys, tmp_path):
    # 0.11.0:1847-1855 NotImplementedError; 0.12.0: the window (4096, 0.12.0 cap) x 2
    plan = _plan(capsys, tmp_path, LINEAR, "--engine", "vllm==0.11.0", "--disable-sliding-window")
    assert not plan["engine"]["starts"] and "Disabling sliding window is not supported" in \
        plan["engine"]["refusal"]["reason"]
    assert _plan(capsys, tmp_path, LINEAR, "--engine", "vllm==0.12.0", "--disable-sliding-window")["context"] == 8192


def test_switch_with_yarn_before_0_30_takes_original_times_factor(capsys, tmp_path):
    # 0.29.0: capped to 4096 (:2437 region), then yarn sets 8192 (:2457-2458) x 4 = 32768; 0.30: the window stands
    config = dict(LINEAR, rope_scaling={"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 8192})
    lengths = [_plan(capsys, tmp_path, config, "--engine", f"vllm=={v}", "--disable-sliding-window")["context"]
               for v in ("0.29.0", "0.30.0")]
    assert lengths == [32768, 4096]


PHI3_LONGROPE = next(case["config"] for case in REFERENCE["cases"] if case["name"] == "longrope_phi3")


def test_longrope_default_is_the_original_from_0_11_1(capsys, tmp_path):
    # config/model.py 0.11.1:2111-2119 (absent from 0.11.0): the default is original_max_position_embeddings 4096
    lengths = [_plan(capsys, tmp_path, PHI3_LONGROPE, "--engine", f"vllm=={v}")["context"]
               for v in ("0.11.0", "0.11.1", "0.34.0")]
    assert lengths == [131072, 4096, 4096]


def test_gemma3_skips_its_factor(capsys, tmp_path):
    # 0.8.0:2672-2674 "gemma3" not in model_type; the bundled gemma-3-4b-it (linear 8 in its file) stays 131072
    assert _plan(capsys, tmp_path, next(c["config"] for c in REFERENCE["cases"] if c["name"] == "gemma3_linear_8"),
                 "--engine", "vllm==0.8.0")["context"] == 131072


def test_a_bad_factor_is_bad_input(capsys, tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(dict(LINEAR, rope_scaling={"type": "linear", "factor": "two"})))
    code = main(["estimate", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "rope_scaling.factor" in err and "positive number" in err


# ---- bundled models: the RoPE factor changes no default ------------------------------------------------------

@pytest.mark.parametrize("model, length", [
    # yarn original x factor = max_position_embeddings, so every release derives the same
    ("deepseek-ai/DeepSeek-V4-Flash", 1048576),  # 65536 x 16 (its rope_scaling kept in the spec)
    ("mistralai/Devstral-2-123B-Instruct-2512", 262144),  # 4096 x 64 (notes)
    ("meta-llama/Llama-3.3-70B-Instruct", 131072),  # llama3: never multiplied
    ("google/gemma-3-4b-it", 131072),  # linear 8 skipped for gemma3
])
@pytest.mark.parametrize("version", ["0.29.0", "0.34.0"])
def test_bundled_default_lengths(model, length, version, capsys):
    from kvplan.api import estimate

    try:
        plans = estimate(model, engine=f"vllm=={version}", gpu="H200", tensor_parallel_size=8)
    except Exception as exc:  # a release that does not serve the model says so; the length is not the question
        pytest.skip(str(exc))
    assert plans[0].context == length
