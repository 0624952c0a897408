"""Review 3's defects (session 60): each case's figure from hand arithmetic over the bundled config and vLLM's rule
read by hand (file:line cited), never from the formula under test."""

import pytest

from conftest import run_kvplan
from kvplan import api


def _state(model: str, **flags) -> int:
    return api.estimate(model, engine="vllm==0.34.0", **flags)[0].state_bytes_per_sequence_per_gpu


# ---- F1: the per-sequence state in the dtypes vLLM keeps it in ---------------------------------------------------
# mamba_utils.py 0.34.0:105-118 _mamba_state_dtype: conv state in --mamba-cache-dtype ('auto': the model dtype), the
# temporal state in --mamba-ssm-cache-dtype ('auto': the conv state's), which the config handlers set while 'auto'
# (models/config.py 0.34.0:1159-1162 NemotronH; Qwen3.5 copies mamba_ssm_dtype, 0.32.0:853-879).
# Qwen3.5-9B: 24 gated DeltaNet layers (full attention every 4th of 32), 16 key heads x 128, 32 value heads x 128,
# conv kernel 4, mamba_ssm_dtype float32: conv 3 x (2 x 16 x 128 + 32 x 128) = 24576, temporal 32 x 128 x 128 = 524288.
QWEN_CONV, QWEN_SSM, QWEN_LAYERS = 3 * (2 * 16 * 128 + 32 * 128), 32 * 128 * 128, 24
# Nemotron-H-8B: 24 Mamba-2 layers, 128 heads x 64, state 128, 8 groups, kernel 4: conv 3 x (8192 + 2 x 8 x 128),
# temporal 128 x 64 x 128; its handler's default temporal dtype float32.
NEMO_CONV, NEMO_SSM, NEMO_LAYERS = 3 * (128 * 64 + 2 * 8 * 128), 128 * 64 * 128, 24


@pytest.mark.parametrize("flags, conv, ssm", [
    ({}, 2, 4),  # the config's float32 temporal state
    ({"mamba_ssm_cache_dtype": "float32"}, 2, 4),  # asked what the config says: unchanged, not halved
    ({"mamba_ssm_cache_dtype": "bfloat16"}, 2, 2),  # an explicit flag beats the handler
    ({"mamba_cache_dtype": "float32"}, 4, 4),
])
def test_qwen35_state_follows_mamba_dtypes(flags, conv, ssm):
    assert _state("Qwen/Qwen3.5-9B", **flags) == QWEN_LAYERS * (QWEN_CONV * conv + QWEN_SSM * ssm)


@pytest.mark.parametrize("flags, conv, ssm", [
    ({}, 2, 4),
    ({"mamba_cache_dtype": "float32"}, 4, 4),  # the conv state moves to float32 too
    ({"mamba_ssm_cache_dtype": "bfloat16"}, 2, 2),
])
def test_nemotron_h_state_follows_mamba_dtypes(flags, conv, ssm):
    assert _state("nvidia/Nemotron-H-8B-Base-8K", **flags) == NEMO_LAYERS * (NEMO_CONV * conv + NEMO_SSM * ssm)


# ---- R2: rope_scaling over rope_parameters where a config has both --------------------------------------------------
# transformers_utils/config.py 0.12.0:305-306 (patch_rope_parameters: rope_parameters = rope_scaling when it is not
# None); vLLM 0.29.0 / 0.34.0 measured by the reviewer: default length 4096 x 4 = 16384 for each pair below.
LLAMA = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096, "intermediate_size": 11008,
         "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 32000,
         "torch_dtype": "bfloat16", "rope_theta": 10000.0, "max_position_embeddings": 4096}


@pytest.mark.parametrize("parameters, expected", [
    ({"rope_type": "linear", "factor": 2.0}, 4096 * 4),
    ({"rope_type": "default"}, 4096 * 4),
    (None, 4096 * 4),
])
@pytest.mark.parametrize("release", ["0.29.0", "0.34.0"])
def test_rope_scaling_wins_over_rope_parameters(tmp_path, parameters, expected, release):
    import json

    config = dict(LLAMA, rope_scaling={"type": "linear", "factor": 4.0}, rope_parameters=parameters)
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert api.estimate(str(tmp_path / "config.json"), engine=f"vllm=={release}")[0].context == expected


def test_rope_parameters_read_when_rope_scaling_is_null(tmp_path):
    import json

    config = dict(LLAMA, rope_scaling=None, rope_parameters={"rope_type": "linear", "factor": 2.0})
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert api.estimate(str(tmp_path / "config.json"), engine="vllm==0.34.0")[0].context == 4096 * 2


# ---- R1: the bundled specs carry their configs' RoPE entries, so the length rule runs for them ----------------------
# --disable-sliding-window caps the length to the window (config/model.py 0.29.0 _get_and_verify_max_len, max_len_key
# 'sliding_window'), then 0.12-0.29 replace it with YaRN's original x factor (vllm_rope_len.YARN_FROM_ORIGINAL; vLLM
# 0.29.0 measured by the reviewer: gpt-oss 131072); 0.30+ leave YaRN alone (0.34.0 measured: the window, 128).
@pytest.mark.parametrize("model, release, expected", [
    ("openai/gpt-oss-20b", "0.29.0", 4096 * 32),
    ("openai/gpt-oss-120b", "0.29.0", 4096 * 32),
    ("allenai/Olmo-3.1-32B-Instruct", "0.29.0", 8192 * 8),
    ("openai/gpt-oss-20b", "0.34.0", 128),
    ("allenai/Olmo-3.1-32B-Instruct", "0.34.0", 4096),
])
def test_bundled_yarn_length_with_window_disabled(model, release, expected):
    plan = api.estimate(model, engine=f"vllm=={release}", disable_sliding_window=True)[0]
    assert plan.context == expected


# config/model.py 0.11.0:1847-1855: NotImplementedError for --disable-sliding-window beside any rope_scaling type
# but su / longrope / llama3 (mrope is patched to 'default', still not skipped).
@pytest.mark.parametrize("model", ["openai/gpt-oss-20b", "allenai/Olmo-3.1-32B-Instruct",
                                   "Qwen/Qwen2.5-VL-7B-Instruct"])
def test_bundled_rope_with_window_disabled_refused_by_0_11(model):
    plan = api.estimate(model, engine="vllm==0.11.0", disable_sliding_window=True)[0]
    refusal = plan.engine.refusal
    assert refusal is not None and refusal.reason.startswith("Disabling sliding window is not supported")


# Without the flag the default length is the config's max_position_embeddings in every release read: YaRN's
# original x factor equals it (4096 x 32, 8192 x 8, 4096 x 40, 4096 x 64, 8192 x 48), llama3 is skipped, mrope has no
# factor (config/model.py 0.11.0:1841-1870, 0.34.0:2606-2640).
@pytest.mark.parametrize("model, length", [
    ("openai/gpt-oss-20b", 131072), ("allenai/Olmo-3.1-32B-Instruct", 65536),
    ("Qwen/Qwen2.5-VL-7B-Instruct", 128000),
    ("LGAI-EXAONE/EXAONE-4.0-32B", 131072), ("meta-llama/Llama-3.3-70B-Instruct", 131072),
    ("deepseek-ai/DeepSeek-V3.2", 163840), ("moonshotai/Kimi-K2-Instruct", 131072),
    ("mistralai/Devstral-2-123B-Instruct-2512", 262144), ("mistralai/Devstral-Small-2-24B-Instruct-2512", 393216),
])
@pytest.mark.parametrize("release", ["0.11.0", "0.12.0", "0.29.0", "0.34.0"])
def test_bundled_default_length_unchanged(model, length, release):
    assert api.estimate(model, engine=f"vllm=={release}")[0].context == length


# ---- F2: --mamba-block-size with prefix caching off: no "align" mode ------------------------------------------------
# models/config.py 0.34.0:1111-1118: caching off, the cache mode is 'none' and the Mamba block max_model_len;
# config/vllm.py 0.34.0:3583-3593 takes --mamba-block-size then only when it equals max_model_len.
def test_mamba_block_note_with_prefix_caching_off():
    out = _cli("estimate", "nvidia/Nemotron-H-8B-Base-8K", "--engine", "vllm==0.34.0", "--no-enable-prefix-caching",
               "--mamba-block-size", "8192").stdout
    said = " ".join(out.split())
    assert "--mamba-block-size changes nothing here: with prefix caching off" in said
    assert "\"align\" mode" not in said


def _cli(*args):
    """`kvplan ARGS` in this process (conftest.run_kvplan): what these tests read is the text, not the process."""
    return run_kvplan(*args)


# ---- F4: the API's bounds as the CLI's; vLLM's dtype choices are case-sensitive ------------------------------------
def test_api_mamba_block_size_bounded_like_the_cli():
    with pytest.raises(api.FieldError, match="mamba_block_size .*at most 18 digits"):
        api.estimate("nvidia/Nemotron-H-8B-Base-8K", engine="vllm==0.34.0", enable_prefix_caching=True,
                     mamba_block_size=10 ** 30)
    assert _cli("estimate", "nvidia/Nemotron-H-8B-Base-8K", "--enable-prefix-caching",
                "--mamba-block-size", str(10 ** 30)).returncode == 2


# argparse matches choices exactly; config/cache.py 0.34.0:175 MambaDType = Literal["auto", "float32", "float16",
# "bfloat16"]
@pytest.mark.parametrize("field, value", [("mamba_cache_dtype", "FLOAT32"), ("mamba_ssm_cache_dtype", "Bfloat16")])
def test_mamba_dtype_case_sensitive(field, value):
    with pytest.raises(api.FieldError, match=f"{field} must be one of auto, float32, float16, bfloat16"):
        api.estimate("nvidia/Nemotron-H-8B-Base-8K", engine="vllm==0.34.0", **{field: value})
    out = _cli("estimate", "nvidia/Nemotron-H-8B-Base-8K", "--" + field.replace("_", "-"), value)
    assert out.returncode == 2 and "Traceback" not in out.stderr and "lower case" in out.stderr


# ---- R3: before 0.12 YaRN starts from the entry's own original_max_position_embeddings -------------------------------
# config/model.py 0.11.2:2103 rope_scaling["original_max_position_embeddings"] (the entry's: 8192 x 4); from 0.12
# patch_rope_parameters copies the top-level 2048 over it (transformers_utils/config.py 0.12.0:316-318): 2048 x 4,
# measured 8192 on vLLM 0.29.0 by the reviewer; 0.34.0 leaves YaRN alone (4096, measured).
@pytest.mark.parametrize("release, expected", [("0.11.0", 8192 * 4), ("0.12.0", 2048 * 4), ("0.29.0", 2048 * 4),
                                               ("0.34.0", 4096)])
def test_yarn_original_by_release(tmp_path, release, expected):
    import json

    config = dict(LLAMA, original_max_position_embeddings=2048,
                  rope_scaling={"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 8192})
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert api.estimate(str(tmp_path / "config.json"), engine=f"vllm=={release}")[0].context == expected


# ---- R4: a null factor is read as 1.0, and said (config/model.py 0.18.0:2024-2032 warns and falls back to 1.0) -------
def test_null_factor_is_said(tmp_path):
    import json

    config = dict(LLAMA, rope_scaling={"rope_type": "linear", "factor": None})
    (tmp_path / "config.json").write_text(json.dumps(config))
    out = _cli("estimate", str(tmp_path / "config.json"), "--engine", "vllm==0.34.0")
    assert out.returncode == 0
    assert "(a null factor read as 1.0)" in " ".join(out.stdout.split())
    assert api.estimate(str(tmp_path / "config.json"), engine="vllm==0.34.0")[0].context == 4096
