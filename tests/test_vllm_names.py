"""The command line in vLLM's words: its flag names (kvplan's earlier names as aliases), its number parser, its
KV-cache dtype list and its default max model length. The expected values come from vLLM 0.32.0's own code,
frozen in tests/data/ by the scripts next to them (vllm_human_readable_int.py, vllm_kv_dtype_bytes.py)."""

import json
from pathlib import Path

import pytest

from conftest import run_kvplan
from hub_configs import LLAMA3_8B

DATA = Path(__file__).resolve().parent / "data"
VLLM_INTS = json.loads((DATA / "vllm_human_readable_int.json").read_text())
VLLM_KV = json.loads((DATA / "vllm_kv_dtype_bytes.json").read_text())
MODEL = "meta-llama/Llama-3.1-8B-Instruct"  # bundled: max_position_embeddings 131072


def plans(*args):
    r = run_kvplan("estimate", *args, "--format", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["plans"]


def one_error(result):
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == "" and len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr.strip()


# ---- flag names: vLLM's primary spelling, kvplan's aliases give the same plan -----------------------------

ALIASES = [
    (("--max-model-len", "16384"), ("--context", "16384"), ("-c", "16384")),
    (("--gpu-memory-utilization", "0.8"), ("--gpu-util", "0.8")),
    (("--kv-cache-dtype", "fp8"), ("--kv-dtype", "fp8")),
    (("-tp", "2"), ("--tensor-parallel-size", "2"), ("--tp", "2")),
    (("--kv-cache-memory-bytes", "20G"), ("--kv-budget", "20GiB")),
]


@pytest.mark.parametrize("spellings", ALIASES, ids=[s[0][0] for s in ALIASES])
def test_every_alias_gives_the_same_plans(spellings):
    base = ["--gpu", "h100", "--max-model-len", "8192"]
    results = [plans(MODEL, *base, *flag) for flag in spellings]
    assert all(r == results[0] for r in results[1:])


def test_block_size_and_max_num_batched_tokens_take_vllm_spellings():
    a = plans(MODEL, "--gpu", "h100", "--block-size", "32", "--max-num-batched-tokens", "16K")
    b = plans(MODEL, "--gpu", "h100", "--block-size", "32", "--max-num-batched-tokens", "16384")
    assert a == b and a[0]["block_size"] == 32


def test_errors_name_the_flag_the_user_typed():
    assert one_error(run_kvplan("estimate", MODEL, "--tp", "0")).startswith("kvplan: error: --tp ")
    assert one_error(run_kvplan("estimate", MODEL, "-tp", "0")).startswith("kvplan: error: -tp ")
    assert "--gpu-memory-utilization must be a fraction" in one_error(
        run_kvplan("estimate", MODEL, "--gpu-memory-utilization", "1.5"))
    assert "--gpu-util must be a fraction" in one_error(run_kvplan("estimate", MODEL, "--gpu-util", "1.5"))


def test_suggestions_use_vllm_flag_names():
    r = run_kvplan("estimate", MODEL, "--kv-budget", "10GiB", "--context", "128K")
    text = " ".join(r.stdout.split())
    assert "--tensor-parallel-size 2 or --kv-cache-dtype fp8 or --max-model-len 81904" in text


def test_typing_gpu_memory_utilization_is_a_flag_not_a_typo():
    r = run_kvplan("estimate", MODEL, "--gpu-memory-utilization", "0.5", "--gpu", "h100", "--format", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["plans"][0]["budget"]["gpu_util"] == 0.5


# ---- numbers: vLLM's human-readable integers -------------------------------------------------------------

@pytest.mark.parametrize("text", sorted(VLLM_INTS["human_readable_int"]))
def test_token_counts_parse_as_vllm_parses_them(text):
    from kvplan.errors import FieldError
    from kvplan.units import human_int

    expected = VLLM_INTS["human_readable_int"][text]
    if isinstance(expected, int):
        assert human_int(text, "context") == expected
    else:
        with pytest.raises(FieldError):
            human_int(text, "context")


def test_max_model_len_1M_and_k_versus_K():
    assert [p["context"] for p in plans(MODEL, "--max-model-len", "1M,32k,32K", "--gpu", "h200")] == \
        [1048576, 32000, 32768]


def test_decimal_with_binary_suffix_is_refused_as_vllm_refuses_it():
    err = one_error(run_kvplan("estimate", MODEL, "--max-model-len", "1.5K"))
    assert "--max-model-len takes no decimals with the binary suffix K" in err and "1.5k" in err


def test_kv_cache_memory_bytes_k_versus_K_and_explicit_units():
    from kvplan.units import parse_size

    assert parse_size("10G", "kv_budget") == 10 * 2**30 == parse_size("10GiB", "kv_budget")
    assert parse_size("10g", "kv_budget") == 10 * 10**9 == parse_size("10GB", "kv_budget")
    assert parse_size("512", "kv_budget") == 512


def test_a_bare_small_kv_budget_is_remarked_upon():
    r = run_kvplan("estimate", MODEL, "--kv-cache-memory-bytes", "10")
    assert r.returncode == 0
    text = " ".join(r.stdout.split())
    assert "--kv-cache-memory-bytes 10 is 10 bytes" in text and "did you mean 10G (10 GiB)" in text


# ---- KV dtypes: exactly vLLM's list ----------------------------------------------------------------------

def test_kv_dtypes_are_exactly_vllms():
    from kvplan.model.precision import VLLM_KV_DTYPES

    assert ["auto", *VLLM_KV_DTYPES] == VLLM_KV["cache_dtypes"]


@pytest.mark.parametrize("dtype", [d for d in VLLM_KV["head"]])
def test_packed_dtypes_cost_what_vllms_backends_allocate(dtype):
    from kvplan.model.precision import resolve_kv_dtype

    p = resolve_kv_dtype(dtype, "bf16")
    for head_dim, expected in VLLM_KV["head"][dtype].items():
        assert p.head_bytes(int(head_dim)) == expected, (dtype, head_dim)


@pytest.mark.parametrize("dtype", [d for d in VLLM_KV["mla_576"]])
def test_mla_per_token_head_scales_as_vllm(dtype):
    from kvplan.model.precision import resolve_kv_dtype

    assert resolve_kv_dtype(dtype, "bf16").latent_bytes(512, 64) == VLLM_KV["mla_576"][dtype]


def test_every_vllm_kv_dtype_plans_a_model(write_config):
    path = write_config(LLAMA3_8B)
    for dtype in VLLM_KV["cache_dtypes"]:
        if dtype.endswith("_ds_mla"):
            err = one_error(run_kvplan("estimate", path, "--kv-cache-dtype", dtype, "--kv-budget", "20G"))
            assert "MLA" in err  # FlashMLA-sparse entries exist only for DeepSeek-style latents
            continue
        # 0.33 on, ROCm only: refused on the default CUDA GPU (vllm_backend_refusals.octave_refusal)
        if dtype.startswith("octave_"):
            row = plans(path, "--kv-cache-dtype", dtype, "--kv-budget", "20G", "--engine", "vllm==0.33.0")[0]
            assert row["max_concurrency"] == 0 and row["engine"]["refusal"]["configuration"], dtype
            continue
        # nvfp4_4over6 runs on SM100's trtllm-gen only (0.32.0 flashinfer.py:529-539): on the default H100 vLLM
        # finds no backend (engines/vllm_nvfp4.py), on a B200 it starts
        gpu = ("--gpu", "b200") if dtype == "nvfp4_4over6" else ()
        assert plans(path, "--kv-cache-dtype", dtype, "--kv-budget", "20G", *gpu)[0]["max_concurrency"] > 0, dtype


def test_ds_mla_dtypes_on_an_mla_model():
    fp8 = plans("deepseek-ai/DeepSeek-V3", "--kv-cache-dtype", "fp8_ds_mla", "-tp", "8", "--gpu", "h200")[0]
    assert fp8["kv_bytes_per_token_per_gpu"] == 61 * 656  # vLLM's FlashMLA-sparse entry per layer


@pytest.mark.parametrize("name,hint", [("int8", "int8_per_token_head"), ("int4", "int4_per_token_head"),
                                       ("fp32", "no float32")])
def test_names_vllm_does_not_take_are_refused_with_its_name(name, hint):
    err = one_error(run_kvplan("estimate", MODEL, "--kv-cache-dtype", name))
    assert f"--kv-cache-dtype '{name}' is not one of vLLM's KV-cache dtypes" in err and hint in err


# ---- defaults: vLLM's max model length -------------------------------------------------------------------

def test_default_max_model_len_is_the_models_own(write_config):
    assert [p["context"] for p in plans(MODEL, "--gpu", "h100")] == [131072]
    assert plans(write_config({**LLAMA3_8B, "max_position_embeddings": 8192}), "--gpu", "h100")[0]["context"] == 8192
    no_key = {k: v for k, v in LLAMA3_8B.items() if k != "max_position_embeddings"}
    assert plans(write_config(no_key, "nokey.json"), "--gpu", "h100")[0]["context"] == 2048  # vLLM's fallback


def test_when_the_default_does_not_fit_it_says_so_and_names_what_does():
    r = run_kvplan("estimate", MODEL, "--gpu", "L4")
    text = " ".join(r.stdout.split())
    assert "max len 131,072 = the model's own (max_position_embeddings), vLLM's default" in text
    # vLLM's own refusal and estimate: the 3.77 GiB an L4 leaves at utilization 0.92 (4,192,664,225 B: the
    # 3,607,474,930 B under the old 1.25 GiB graph term + 585,189,295 B now it is 0.705 GiB, less V2's penalty counts,
    # 256 x (128,256 + 4,008) x 4 = 135,438,336 B, and its other runner buffers, 256 x (17,924 + (4,008 + 1) x 4) =
    # 8,693,760 B: tests/test_vllm_runner_buffers.py; 4,048,532,129 B) hold 1,930 blocks of 16 tokens x 131,072 B
    # (32 layers x 8 KV heads x 128 x 2 x 2 B) = 30,880 tokens at most; vLLM's binary search
    # (kv_cache_utils._estimate_max_model_len_from_groups, checked against vLLM's own code in
    # tests/data/vllm_0.32.0_kv_figures.json) lands one block below that: 1,929 x 16 = 30,864, as the check first
    # holds back the null block (kv_cache_utils.py:1123-1131)
    assert "refuses to start: To serve at least one request with the model's max seq len (131072)" in text
    assert "the estimated maximum model length is 30864" in text
    assert "does not fit" in text and "--max-model-len 30864" in text


def test_estimate_warns_beyond_max_position_embeddings():
    r = run_kvplan("estimate", MODEL, "--max-model-len", "1M", "--gpu", "h200")
    text = " ".join(r.stdout.split())
    assert "--max-model-len 1,048,576 exceeds the model's max_position_embeddings (131,072)" in text
    assert "VLLM_ALLOW_LONG_MAX_MODEL_LEN" in text


def test_check_defaults_to_the_models_max_length_too():
    r = run_kvplan("check", MODEL, "-tp", "1", "--gpu", "h100", "--format", "json")
    assert json.loads(r.stdout)["results"][0]["context"] == 131072


def test_max_model_len_auto_is_vllms_auto_fit():
    """vLLM 0.32: --max-model-len auto (or -1) keeps the model's length when it fits, else the estimate its refusal
    names (_auto_fit_max_model_len and _check_enough_kv_cache_memory share _estimate_max_model_len_from_groups)."""
    refused = plans(MODEL, "--gpu", "L4")[0]
    assert refused["engine"]["refusal"]["estimated_max_model_len"] == 30864
    for spelling in ("auto", "-1", "AUTO"):
        fitted = plans(MODEL, "--gpu", "L4", "--max-model-len", spelling)[0]
        assert fitted["context"] == 30864 and fitted["engine"]["starts"] and fitted["max_concurrency"] == 1
    assert plans(MODEL, "--gpu", "h200", "--max-model-len", "auto")[0]["context"] == 131072
    text = " ".join(run_kvplan("estimate", MODEL, "--gpu", "L4", "--max-model-len", "auto").stdout.split())
    assert "vLLM's auto-fit reduces max_model_len from 131,072 to 30,864" in text


def test_python_api_auto_fit():
    import kvplan
    from conftest import environment

    with environment({"HF_HUB_OFFLINE": "1"}):
        (plan,) = kvplan.estimate(MODEL, gpu="L4", max_model_len="auto")
    assert plan.context == 30864
