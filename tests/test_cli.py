"""kvplan estimate through the real command line: outputs, sweeps, and every bad input ending in one line on
stderr with exit code 2."""

import csv
import io
import json

import pytest
import yaml

from conftest import run_kvplan
from hub_configs import DEEPSEEK_V3, GEMMA2_9B, LLAMA3_8B, QWEN3_NEXT_80B

REQUIRED = {"context", "kv_dtype", "tp", "block_size", "kv_bytes_per_token", "kv_bytes_per_token_per_gpu",
            "kv_bytes_per_sequence_per_gpu", "kv_budget_bytes_per_gpu", "kv_capacity_tokens", "max_concurrency",
            "tp_valid", "tp_errors"}


def test_json_sweep_is_the_cross_product(write_config):
    r = run_kvplan("estimate", write_config(LLAMA3_8B), "--context", "4096,32K", "--kv-dtype", "auto,fp8",
                   "--tp", "1,2,3", "--kv-budget", "20GiB", "--format", "json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    plans = data["plans"]
    assert len(plans) == 12
    assert {(p["context"], p["kv_dtype"], p["tp"]) for p in plans} == {
        (c, d, t) for c in (4096, 32768) for d in ("bf16", "fp8_e4m3") for t in (1, 2, 3)}
    for p in plans:
        assert REQUIRED <= set(p)
        assert isinstance(p["kv_budget_bytes_per_gpu"], int)
    tp3 = [p for p in plans if p["tp"] == 3]
    assert all(not p["tp_valid"] and p["tp_errors"] for p in tp3)
    row = next(p for p in plans if (p["context"], p["kv_dtype"], p["tp"]) == (4096, "bf16", 2))
    # 20 GiB / (16 tokens x 64 KiB) = 20480 vLLM blocks at tp 2; a 4K sequence takes 256: vLLM logs 80.00x,
    # but holds one block back (the null block), so 20479 usable blocks keep 79 sequences resident.
    assert row["engine"]["num_gpu_blocks"] == 20 * 2**30 // (16 * 65536) == 20480
    assert row["engine"]["max_concurrency"] == 20480 / 256 == 80.0
    assert row["max_concurrency"] == (20480 - 1) // 256 == 79
    # Llama-3-8B's config says max_position_embeddings 8192: vLLM refuses a 32K max_model_len.
    long = next(p for p in plans if (p["context"], p["kv_dtype"], p["tp"]) == (32768, "bf16", 2))
    assert not long["engine"]["starts"] and long["max_concurrency"] == 0
    assert data["model"]["num_key_value_heads"] == 8


def test_yaml_and_csv_carry_the_same_rows(write_config):
    path = write_config(LLAMA3_8B)
    js = json.loads(run_kvplan("estimate", path, "--tp", "1,2", "--format", "json").stdout)
    ya = yaml.safe_load(run_kvplan("estimate", path, "--tp", "1,2", "--format", "yaml").stdout)
    rows = list(csv.DictReader(io.StringIO(run_kvplan("estimate", path, "--tp", "1,2", "--format", "csv").stdout)))
    assert ya["plans"] == js["plans"]
    assert [int(r["max_concurrency"]) for r in rows] == [p["max_concurrency"] for p in js["plans"]]
    assert "budget_weights_bytes_per_gpu" in rows[0]


def test_folder_and_table(write_config, tmp_path):
    write_config(GEMMA2_9B)
    r = run_kvplan("estimate", tmp_path, "--context", "8192", "--tp", "1,3", "--gpu", "h100")
    assert r.returncode == 0, r.stderr
    assert "sliding window 4096 on 21 of 42 layers" in " ".join(r.stdout.split())
    assert "bad TP" in r.stdout
    assert max(len(line) for line in r.stdout.splitlines()) <= 100


def test_table_footnotes_for_mla_and_hybrid(write_config):
    r = run_kvplan("estimate", write_config(DEEPSEEK_V3), "--tp", "8", "--gpu", "h200")
    assert r.returncode == 0, r.stderr
    text = " ".join(r.stdout.split())
    assert "MLA latent 576" in text and "replicated over TP" in text
    r = run_kvplan("estimate", write_config(QWEN3_NEXT_80B, "next.json"), "--kv-budget", "20GiB")
    assert "gated-deltanet state on 36 of 48 layers" in " ".join(r.stdout.split())


def test_does_not_fit_row_says_what_would(write_config):
    r = run_kvplan("estimate", "meta-llama/Llama-3.1-8B", "--context", "128K", "--kv-budget", "10GiB")
    assert r.returncode == 0
    text = " ".join(r.stdout.split())  # the footnote wraps at 100 columns
    assert "does not fit" in text
    # 81904 tokens: vLLM's own "estimated maximum model length" for 10 GiB less the null block (5119 x 16).
    assert "would fit with --tensor-parallel-size 2 or --kv-cache-dtype fp8 or --max-model-len 81904" in text
    assert "the estimated maximum model length is 81904" in text


def _one_line_error(result, *words):
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    err = result.stderr.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    for word in words:
        assert word in err, err


BAD_CONFIGS = [
    pytest.param('{"num_hidden_layers": 32, "num_attention_heads": ', ("not valid JSON", "line 1"), id="truncated"),
    pytest.param("[1, 2, 3]", ("JSON object", "got an array"), id="json list"),
    pytest.param("", ("not valid JSON",), id="empty"),
    pytest.param({**LLAMA3_8B, "num_hidden_layers": None}, ("num_hidden_layers", "missing", "positive integer"),
                 id="missing layers"),
    pytest.param({k: v for k, v in LLAMA3_8B.items() if k != "num_hidden_layers"}, ("num_hidden_layers",),
                 id="absent layers"),
    pytest.param({**LLAMA3_8B, "num_attention_heads": -32}, ("num_attention_heads", "-32"), id="negative heads"),
    pytest.param({**LLAMA3_8B, "num_attention_heads": 0}, ("num_attention_heads", "positive"), id="zero heads"),
    pytest.param({**LLAMA3_8B, "num_key_value_heads": "8"}, ("num_key_value_heads", '"8"'), id="string kv heads"),
    pytest.param({**LLAMA3_8B, "num_key_value_heads": 12}, ("num_key_value_heads", "(12)", "divide"),
                 id="kv not dividing heads"),
    pytest.param({**LLAMA3_8B, "head_dim": 0}, ("head_dim",), id="zero head_dim"),
    pytest.param({**LLAMA3_8B, "hidden_size": 4000, "num_attention_heads": 48, "num_key_value_heads": 8},
                 ("head_dim", "4000"), id="underivable head_dim"),
    pytest.param({**LLAMA3_8B, "torch_dtype": "int3"}, ("torch_dtype",), id="bad dtype"),
    pytest.param({**LLAMA3_8B, "layer_types": ["full_attention"] * 3}, ("layer_types", "32"), id="short layer_types"),
    pytest.param({**LLAMA3_8B, "layer_types": ["warp_attention"] * 32}, ("layer_types", "warp_attention"),
                 id="unknown layer type"),
]


@pytest.mark.parametrize("config,words", BAD_CONFIGS)
def test_bad_configs_exit_2_with_one_line(write_config, config, words):
    _one_line_error(run_kvplan("estimate", write_config(config)), *words)


BAD_FLAGS = [
    (("--kv-dtype", "fp7"), ("--kv-dtype", "fp8")),
    (("--tp", "0"), ("--tp",)),
    (("--tp", "two"), ("--tp",)),
    (("--context", "-5"), ("--context",)),
    (("--block-size", "0"), ("--block-size", "positive integer")),
    (("--kv-budget", "lots"), ("--kv-budget", "10GiB")),
    (("--gpu", "voodoo5"), ("--gpu", "H100-80GB-SXM")),
    (("--gpu-util", "1.5"), ("--gpu-util",)),
    (("--format", "xml"), ("--format", "json")),
    (("--no-such-flag",), ("--no-such-flag",)),
]


@pytest.mark.parametrize("flags,words", BAD_FLAGS, ids=[f[0][0] + " " + f[0][-1] for f in BAD_FLAGS])
def test_bad_flags_exit_2_with_one_line(write_config, flags, words):
    _one_line_error(run_kvplan("estimate", write_config(LLAMA3_8B), *flags), *words)


def test_missing_paths_and_ids(tmp_path):
    _one_line_error(run_kvplan("estimate", tmp_path / "nope.json"), "does not exist")
    _one_line_error(run_kvplan("estimate", tmp_path), "no config.json")
    _one_line_error(run_kvplan("estimate", "../etc/passwd"), "does not exist")
    _one_line_error(run_kvplan("estimate", "org/../../x"), "not a Hugging Face id")


def test_csv_cells_of_records_read_back_as_json():
    """Lists of records (decode points, budget terms) are one JSON cell each; lists of text stay ';'-joined."""
    out = run_kvplan("estimate", "meta-llama/Llama-3.1-8B-Instruct", "--max-model-len", "8192", "--batch", "4",
                     "--format", "csv")
    assert out.returncode == 0, out.stderr
    row = next(csv.DictReader(io.StringIO(out.stdout)))
    data = json.loads(run_kvplan("estimate", "meta-llama/Llama-3.1-8B-Instruct", "--max-model-len", "8192",
                                 "--batch", "4", "--format", "json").stdout)["plans"][0]
    assert json.loads(row["decode_points"]) == data["decode"]["points"]
    assert [p["batch"] for p in json.loads(row["decode_points"])] == [1, 4, data["max_concurrency"]]
    assert row["engine_log_lines"].split("; ")[0].startswith("Available KV cache memory")
