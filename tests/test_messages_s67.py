"""Session 67: follow-ups of the check fuzz round. A DeepSeek-V4 block size refused in words that follow the flag;
the length vLLM assumes where a config names none (2,048: config/model.py 0.32.0 _get_and_verify_max_len, Falcon's
config has no length key) warned about under --engine none as under vLLM, in estimate and in check alike; the
Mamba model types, which vLLM leaves uncapped, not warned about."""

from conftest import one_error_line, run_kvplan


def test_a_v4_block_size_is_refused_in_words_that_follow_the_flag():
    line = one_error_line(run_kvplan("estimate", "deepseek-ai/DeepSeek-V4-Flash", "--block-size", "16"))
    assert line == ("kvplan: error: --block-size must be a multiple of 256 tokens for DeepSeek-V4 (its compressed "
                    "and indexer caches' kernel block sizes in vLLM 0.32), got 16.")


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_falcon_past_2048_is_warned_under_engine_none():
    r = run_kvplan("estimate", "tiiuae/falcon-7b", "--engine", "none", "-c", "100000")
    assert r.returncode == 0, r.stderr
    assert ("--max-model-len 100,000 exceeds the model's length vLLM assumes without one in its config (2,048): "
            "vLLM refuses it unless VLLM_ALLOW_LONG_MAX_MODEL_LEN=1") in _flat(r.stdout)


def test_falcon_at_2048_and_falcon_mamba_past_it_are_not_warned():
    for args in (("tiiuae/falcon-7b", "-c", "2048"), ("tiiuae/falcon-mamba-7b", "-c", "100000")):
        r = run_kvplan("estimate", *args, "--engine", "none")
        assert r.returncode == 0, r.stderr
        assert "exceeds the model's" not in _flat(r.stdout), args


def test_check_warns_as_estimate_does(tmp_path):
    path = tmp_path / "deployments.yaml"
    path.write_text("deployments:\n  - name: falcon\n    model: tiiuae/falcon-7b\n    gpu: H100\n    tp: 1\n"
                    "    context: 100000\n    engine: none\n")
    r = run_kvplan("check", "--file", path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert ("context 100000 exceeds length vLLM assumes without one in its config (2048); vLLM serves longer "
            "sequences only with RoPE scaling or VLLM_ALLOW_LONG_MAX_MODEL_LEN.") in _flat(r.stdout + r.stderr)


def _check_text(tmp_path, text):
    path = tmp_path / "deployments.yaml"
    path.write_text(text)
    return one_error_line(run_kvplan("check", "--file", path))


def test_too_many_values_names_aliases_only_where_the_file_has_them(tmp_path):
    plain = ("deployments:\n  - name: a\n    model: m\n    tp: 1\n    gpu: ["
             + ", ".join(str(i) for i in range(21000)) + "]\n")
    line = _check_text(tmp_path, plain)
    assert "expands to more than 20,000 values; a deployments file holds a few dozen." in line
    aliased = ("deployments:\n  - name: a\n    model: m\n    tp: 1\n    gpu: [&x [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], "
               + ", ".join(["*x"] * 2100) + "]\n")
    assert "more than 20,000 values (YAML aliases repeat parts of it);" in _check_text(tmp_path, aliased)
