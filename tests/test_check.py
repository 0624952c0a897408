"""`kvplan check`, the CI gate, through its real surface (kvplan.cli.main in this process; one test in a fresh
interpreter), on config.json files shaped like the Hub's. Exit 0 pass, 1 a rule fails, 2 bad input (one stderr line)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_kvplan

REPO = Path(__file__).resolve().parents[1]

# Falcon-7B as its Hub config.json had it (legacy RW key names): 71 query heads, one KV head (multi_query).
FALCON_7B = {
    "architectures": ["FalconForCausalLM"], "model_type": "falcon", "alibi": False, "bias": False,
    "apply_residual_connection_post_layernorm": False, "attention_dropout": 0.0, "hidden_dropout": 0.0,
    "bos_token_id": 11, "eos_token_id": 11, "hidden_size": 4544, "initializer_range": 0.02,
    "layer_norm_epsilon": 1e-05, "multi_query": True, "n_head": 71, "n_layer": 32, "parallel_attn": True,
    "torch_dtype": "bfloat16", "transformers_version": "4.27.4", "use_cache": True, "vocab_size": 65024,
}

LLAMA_3_8B = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "attention_bias": False,
    "attention_dropout": 0.0, "bos_token_id": 128000, "eos_token_id": 128001, "hidden_act": "silu",
    "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 14336, "max_position_embeddings": 8192,
    "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8, "pretraining_tp": 1,
    "rms_norm_eps": 1e-05, "rope_scaling": None, "rope_theta": 500000.0, "tie_word_embeddings": False,
    "torch_dtype": "bfloat16", "transformers_version": "4.40.0.dev0", "use_cache": True, "vocab_size": 128256,
}

# A Qwen2-style GQA model with 48 query heads and 12 KV heads.
GQA_48_12 = {
    "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_act": "silu", "hidden_size": 6144,
    "intermediate_size": 16384, "max_position_embeddings": 32768, "max_window_layers": 48,
    "num_attention_heads": 48, "num_hidden_layers": 48, "num_key_value_heads": 12, "rms_norm_eps": 1e-06,
    "rope_theta": 1000000.0, "sliding_window": 32768, "use_sliding_window": False, "tie_word_embeddings": False,
    "torch_dtype": "bfloat16", "use_cache": True, "vocab_size": 152064,
}

DEEPSEEK_V2_LITE = {
    "architectures": ["DeepseekV2ForCausalLM"], "model_type": "deepseek_v2", "attention_bias": False,
    "attention_dropout": 0.0, "aux_loss_alpha": 0.001, "bos_token_id": 100000, "eos_token_id": 100001,
    "first_k_dense_replace": 1, "hidden_act": "silu", "hidden_size": 2048, "initializer_range": 0.02,
    "intermediate_size": 10944, "kv_lora_rank": 512, "max_position_embeddings": 163840,
    "moe_intermediate_size": 1408, "moe_layer_freq": 1, "n_group": 1, "n_routed_experts": 64,
    "n_shared_experts": 2, "norm_topk_prob": False, "num_attention_heads": 16, "num_experts_per_tok": 6,
    "num_hidden_layers": 27, "num_key_value_heads": 16, "pretraining_tp": 1, "q_lora_rank": None,
    "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "rms_norm_eps": 1e-06,
    "rope_scaling": {"beta_fast": 32, "beta_slow": 1, "factor": 40, "mscale": 0.707, "mscale_all_dim": 0.707,
                     "original_max_position_embeddings": 4096, "type": "yarn"},
    "rope_theta": 10000, "routed_scaling_factor": 1.0, "scoring_func": "softmax", "seq_aux": True,
    "tie_word_embeddings": False, "topk_group": 1, "topk_method": "greedy", "torch_dtype": "bfloat16",
    "use_cache": True, "v_head_dim": 128, "vocab_size": 102400,
}


def write_config(tmp_path: Path, name: str, config: dict) -> str:
    folder = tmp_path / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    return str(folder / "config.json")


def kvplan(*args, cwd=None, github=False, env=None):
    environ = {"GITHUB_ACTIONS": "true" if github else "", "GITHUB_WORKSPACE": "", "COLUMNS": "120", **(env or {})}
    return run_kvplan(*args, cwd=cwd, env=environ)


def check_json(*args, expect: int, **kwargs) -> dict:
    proc = kvplan("check", *args, "--format", "json", **kwargs)
    assert proc.returncode == expect, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    return json.loads(proc.stdout)


def assert_bad_input(proc, *needles: str) -> str:
    """Exit 2, nothing on stdout, one stderr line without a traceback that names what is wrong."""
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def deploy_file(tmp_path: Path, text: str, name: str = "deployments.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def line_of(path: Path, needle: str, after: str = "") -> int:
    """1-based line of the first line containing `needle` at or after the line containing `after`."""
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if after in line) if after else 0
    return next(i for i in range(start, len(lines)) if needle in lines[i]) + 1


# ---- the sharding rules ------------------------------------------------------------------------------------

def test_falcon_7b_71_heads_fail_at_tp2(tmp_path):
    config = write_config(tmp_path, "falcon-7b", FALCON_7B)
    report = check_json(config, "--tp", "2", expect=1)
    assert report["ok"] is False
    (result,) = report["results"]
    assert result["passed"] is False and result["tp"] == 2
    assert result["num_attention_heads"] == 71 and result["num_key_value_heads"] == 1
    assert any("num_attention_heads (71)" in e and "tp 2" in e for e in result["errors"])
    assert result["max_concurrency"] is None  # no capacity for a layout vLLM refuses
    # 71 is prime: only tp 1 and tp 71 split it, and 71 is past 64.
    assert check_json(config, "--tp", "1", expect=0)["ok"] is True


def test_llama3_8b_passes_at_tp16_with_replication_warning(tmp_path):
    config = write_config(tmp_path, "llama-3-8b", LLAMA_3_8B)
    (result,) = check_json(config, "--tp", "16", expect=0)["results"]
    assert result["passed"] is True and result["errors"] == []
    assert result["kv_heads_per_gpu"] == 1 and result["kv_heads_replicated"] is True
    (warning,) = result["warnings"]
    # 32 layers x 2 (K,V) x 128 dims x 2 bytes = 16 KiB per head per token: 16 heads in the group vs 8.
    assert "replicated on 2 GPUs" in warning
    assert "256 KiB" in warning and "128 KiB unreplicated" in warning
    assert "262144 vs 131072 bytes" in warning
    assert result["kv_bytes_per_token"] == 262144


def test_llama3_8b_bundled_id_tp8_passes_cleanly():
    (result,) = check_json("meta-llama/Meta-Llama-3-8B", "--tp", "8", expect=0)["results"]
    assert result["passed"] and result["warnings"] == [] and result["kv_heads_per_gpu"] == 1
    assert result["kv_heads_replicated"] is False


def test_48_query_12_kv_heads_fails_at_tp8_passes_at_tp24(tmp_path):
    config = write_config(tmp_path, "gqa-48-12", GQA_48_12)
    report = check_json(config, "--tp", "8,24", expect=1)
    by_tp = {r["tp"]: r for r in report["results"]}
    assert report["ok"] is False
    tp8, tp24 = by_tp[8], by_tp[24]
    assert not tp8["passed"]
    (error,) = tp8["errors"]  # 48 % 8 == 0: only the KV rule fails
    assert "num_key_value_heads (12)" in error and "tp 8" in error
    assert tp24["passed"] and tp24["errors"] == []  # 48 % 24 == 0 and 24 % 12 == 0
    assert tp24["kv_heads_per_gpu"] == 1 and tp24["kv_heads_replicated"] is True
    assert any("replicated on 2 GPUs" in w for w in tp24["warnings"])


def test_mla_exempt_from_kv_head_rule(tmp_path):
    lite = write_config(tmp_path, "deepseek-v2-lite", DEEPSEEK_V2_LITE)
    (result,) = check_json(lite, "--tp", "8", expect=0)["results"]
    assert result["passed"] and result["mla"] is True
    assert result["num_key_value_heads"] is None and result["kv_heads_per_gpu"] is None
    # The latent is replicated on every rank by design: no warning (the estimate footnote says so).
    assert result["warnings"] == []
    # Latent (512 + 64) x 27 layers x 2 bytes = 31104 bytes per token, on every one of the 8 ranks.
    assert result["kv_bytes_per_token"] == 8 * 31104

    # Same head counts with the latent removed: the KV-head rule applies and fails (16 vs 24 divide neither
    # way); with the latent, MLA is exempt and the same tp passes.
    wide_mla = dict(DEEPSEEK_V2_LITE, num_attention_heads=48, num_key_value_heads=16)
    # (nulled, not left out: DeepseekV2Config fills a missing kv_lora_rank with 512, as vLLM would read it)
    gqa_twin = {**wide_mla, **dict.fromkeys(("kv_lora_rank", "qk_rope_head_dim", "qk_nope_head_dim", "v_head_dim"))}
    gqa_twin["head_dim"] = 128
    mla = write_config(tmp_path, "mla-48", wide_mla)
    twin = write_config(tmp_path, "gqa-48-16", gqa_twin)
    (mla_result,) = check_json(mla, "--tp", "24", expect=0)["results"]
    assert mla_result["passed"] and not any("num_key_value_heads" in e for e in mla_result["errors"])
    (twin_result,) = check_json(twin, "--tp", "24", expect=1)["results"]
    assert any("num_key_value_heads (16) and tp 24" in e for e in twin_result["errors"])


def test_pp_splits_layers_unevenly_as_vllm(tmp_path):
    """vLLM's get_pp_indices (vllm/distributed/utils.py) deals 27 layers to 2 stages as [14, 13]: the remainder
    goes to the stages before the last. Only more stages than layers (or a bad explicit partition) is refused."""
    lite = write_config(tmp_path, "deepseek-v2-lite", DEEPSEEK_V2_LITE)
    (uneven,) = check_json(lite, "--tp", "2", "--pp", "2", expect=0)["results"]
    assert uneven["passed"] and uneven["pp"] == 2 and uneven["pp_partition"] == [14, 13]
    (three,) = check_json(lite, "--tp", "2", "-pp", "3", expect=0)["results"]
    assert three["passed"] and three["pp_partition"] == [9, 9, 9]
    path = deploy_file(tmp_path, f"""deployments:
  - name: lite-pp28
    model: {lite}
    tp: 2
    pp: 28
""")
    (result,) = check_json("--file", path, expect=1)["results"]
    assert result["errors"] == ["pp 28 exceeds num_hidden_layers (27): every pipeline stage needs at least one "
                                "layer."]
    assert result["findings"][0]["key"] == "pp" and result["findings"][0]["line"] == line_of(path, "pp: 28")


# ---- capacity ----------------------------------------------------------------------------------------------

def test_min_concurrency_pass_and_fail(tmp_path):
    # Llama-3-8B bf16: 128 KiB per token, 1 GiB (512 blocks of 2 MiB) per 8192-token sequence on one GPU. vLLM
    # cuts 10 GiB into 5120 blocks and holds one back (the null block): 5119 usable blocks keep 9 sequences.
    config = write_config(tmp_path, "llama-3-8b", LLAMA_3_8B)
    path = deploy_file(tmp_path, f"""deployments:
  - name: fits
    model: {config}
    tp: 1
    kv_budget: 10GiB
    context: 8192
    min_concurrency: 9
  - name: too-many
    model: {config}
    tp: 1
    kv_budget: 10GiB
    context: 8192
    min_concurrency: 10
""")
    report = check_json("--file", path, expect=1)
    fits, too_many = report["results"]
    assert fits["passed"] and fits["max_concurrency"] == 9
    assert fits["kv_budget_bytes_per_gpu"] == 10 * 2**30
    assert fits["engine"]["num_gpu_blocks"] == 5120 and fits["engine"]["max_concurrency"] == 10.0
    assert not too_many["passed"] and too_many["max_concurrency"] == 9
    (error,) = too_many["errors"]
    assert "max_concurrency 9 < min_concurrency 10" in error
    assert "10.0 GiB per GPU" in error and "10.0 GiB per GPU;" in error
    # 10 sequences fit at tp 2 (half the heads), in fp8, or at 511 blocks x 16 = 8176 tokens each
    # (10 x 511 <= 5119 usable blocks).
    assert "would fit with tp 2, kv_dtype fp8 or context 8176" in error
    assert too_many["findings"][0]["key"] == "min_concurrency"


def test_min_concurrency_counts_pipeline_stages(tmp_path):
    # pp 2: each GPU holds 16 of the 32 layers, so 10 GiB is 10240 blocks of 1 MiB; 10239 usable keep 19
    # sequences of 512 blocks; without pp, 9 (see above).
    config = write_config(tmp_path, "llama-3-8b", LLAMA_3_8B)
    args = (config, "--tp", "1", "--kv-budget", "10GiB", "--min-concurrency", "19")
    (staged,) = check_json(*args, "--pp", "2", expect=0)["results"]
    assert staged["max_concurrency"] == 19 and staged["kv_bytes_per_sequence_per_gpu"] == 2**29
    assert staged["pp_partition"] == [16, 16] and staged["engine"]["num_gpu_blocks"] == 10240
    (flat,) = check_json(*args, expect=1)["results"]
    assert flat["max_concurrency"] == 9


def test_flag_form_capacity_in_fp8(tmp_path):
    config = write_config(tmp_path, "llama-3-8b", LLAMA_3_8B)
    (result,) = check_json(config, "--tp", "1", "--kv-budget", "10GiB", "--kv-dtype", "fp8",
                           "--min-concurrency", "19", expect=0)["results"]
    assert result["kv_dtype"] == "fp8_e4m3" and result["max_concurrency"] == 19


# ---- GitHub Actions annotations ----------------------------------------------------------------------------

def test_github_annotations_point_at_the_offending_keys(tmp_path):
    write_config(tmp_path, "falcon-7b", FALCON_7B)  # read through a path relative to the file
    llama = write_config(tmp_path, "llama-3-8b", LLAMA_3_8B)
    path = deploy_file(tmp_path, f"""# production serving fleet
deployments:
  - name: chat
    model: llama-3-8b/config.json
    tp: 8

  - name: batch
    model: {llama}
    gpu: H100
    tp: 16   # replicated KV heads: a warning

  # legacy Falcon endpoint
  - name: falcon
    model: falcon-7b/config.json
    context: 2048
    tp: 2
    pp: 4
  - name: capacity
    model: {llama}
    tp: 1
    kv_budget: 10GiB
    min_concurrency: 64
""")
    proc = kvplan("check", "--file", "deployments.yaml", cwd=tmp_path, github=True)
    assert proc.returncode == 1, proc.stderr
    assert "falcon" in proc.stdout and "FAIL" in proc.stdout  # the table for people is still there
    notes = [line for line in proc.stderr.splitlines() if line.startswith("::")]
    errors = [n for n in notes if n.startswith("::error ")]
    warnings = [n for n in notes if n.startswith("::warning ")]
    falcon_tp = line_of(path, "tp: 2", after="name: falcon")
    assert falcon_tp == 16
    assert any(n.startswith(f"::error file=deployments.yaml,line={falcon_tp}::falcon: num_attention_heads (71)")
               for n in errors), notes
    capacity = line_of(path, "min_concurrency: 64")
    assert any(n.startswith(f"::error file=deployments.yaml,line={capacity}::capacity: max_concurrency 9 < "
                            f"min_concurrency 64") for n in errors), notes
    batch_tp = line_of(path, "tp: 16")
    assert any(n.startswith(f"::warning file=deployments.yaml,line={batch_tp}::batch: tp 16 > 8 KV heads")
               for n in warnings), notes
    assert not any("name=chat" in n or "::chat:" in n for n in notes)  # tp 8 passes silently
    assert len(errors) == 2  # falcon's heads (32 % 4 == 0 keeps pp quiet), capacity's target

    # Annotations go to stderr, so --format json stays parseable on stdout.
    report = check_json("--file", "deployments.yaml", expect=1, cwd=tmp_path, github=True)
    assert [r["name"] for r in report["results"] if not r["passed"]] == ["falcon", "capacity"]
    assert report["results"][2]["line"] == line_of(path, "- name: falcon")

    # An absolute path inside the checkout is made relative to GITHUB_WORKSPACE.
    proc = kvplan("check", "--file", path, github=True, env={"GITHUB_WORKSPACE": str(tmp_path)})
    assert f"::error file=deployments.yaml,line={falcon_tp}::" in proc.stderr


def test_no_annotations_outside_github_actions(tmp_path):
    falcon = write_config(tmp_path, "falcon-7b", FALCON_7B)
    proc = kvplan("check", falcon, "--tp", "2")
    assert proc.returncode == 1 and "::error" not in proc.stdout + proc.stderr
    assert "num_attention_heads (71)" in proc.stdout


def test_github_annotations_without_file_for_model_form(tmp_path):
    falcon = write_config(tmp_path, "falcon-7b", FALCON_7B)
    proc = kvplan("check", falcon, "--tp", "2", github=True)
    assert proc.returncode == 1
    assert "::error::tp2: num_attention_heads (71) is not divisible by tp 2" in proc.stderr
    assert "file=" not in proc.stderr
    llama = write_config(tmp_path, "llama-3-8b", LLAMA_3_8B)
    proc = kvplan("check", llama, "--tp", "16", github=True)
    assert proc.returncode == 0 and "::warning::tp16: tp 16 > 8 KV heads" in proc.stderr


# ---- --suggest, several files, yaml ------------------------------------------------------------------------

def test_suggest_lists_valid_tp_degrees(tmp_path):
    config = write_config(tmp_path, "gqa-48-12", GQA_48_12)
    proc = kvplan("check", "--suggest", config, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    degrees = {d["tp"]: d for d in report["valid_tp"]}
    assert sorted(degrees) == [1, 2, 3, 4, 6, 12, 24, 48]  # divide 48, and divide or are divided by 12
    assert degrees[6]["kv_heads_per_gpu"] == 2 and degrees[6]["kv_heads_replicated"] is False
    assert degrees[24]["kv_heads_per_gpu"] == 1 and degrees[24]["kv_heads_replicated"] is True
    assert degrees[48]["attention_heads_per_gpu"] == 1
    table = kvplan("check", "--suggest", config)
    assert table.returncode == 0 and "yes, x4" in table.stdout  # tp 48 replicates each KV head 4 times


def test_several_files_as_pre_commit_passes_them(tmp_path):
    llama = write_config(tmp_path, "llama-3-8b", LLAMA_3_8B)
    falcon = write_config(tmp_path, "falcon-7b", FALCON_7B)
    good = deploy_file(tmp_path, f"deployments:\n  - name: a\n    model: {llama}\n    tp: 4\n", "deploy-a.yaml")
    bad = deploy_file(tmp_path, f"deployments:\n  - name: b\n    model: {falcon}\n    tp: 2\n", "deploy-b.yml")
    report = check_json("--file", good, bad, expect=1)
    assert [(r["name"], r["passed"], r["file"]) for r in report["results"]] == [
        ("a", True, str(good)), ("b", False, str(bad))]
    assert check_json("--file", good, expect=0)["ok"] is True


def test_yaml_format(tmp_path):
    import yaml

    llama = write_config(tmp_path, "llama-3-8b", LLAMA_3_8B)
    proc = kvplan("check", llama, "--tp", "4", "--format", "yaml")
    assert proc.returncode == 0
    data = yaml.safe_load(proc.stdout)
    assert data["ok"] is True and data["results"][0]["kv_heads_per_gpu"] == 2


def test_check_imports_neither_torch_nor_hub(tmp_path):
    config = write_config(tmp_path, "llama-3-8b", LLAMA_3_8B)
    code = ("import sys; from kvplan.cli import main; "
            f"code = main(['check', {config!r}, '--tp', '8', '--kv-budget', '10GiB', '--format', 'json']); "
            "assert code == 0; "
            "assert not {'torch', 'huggingface_hub'} & set(sys.modules), sorted(sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert proc.returncode == 0, proc.stderr


# ---- bad input: exit 2, one line on stderr, nothing on stdout ----------------------------------------------

def test_missing_file(tmp_path):
    assert_bad_input(kvplan("check", "--file", tmp_path / "nope.yaml"), "--file", "nope.yaml", "does not exist",
                     "deployments:")


def test_malformed_yaml(tmp_path):
    path = deploy_file(tmp_path, "deployments:\n  - name: a\n    model: [unclosed\n    tp: 2\n")
    assert_bad_input(kvplan("check", "--file", path), "is not valid YAML at line")


@pytest.mark.parametrize("text, needles", [
    ("deployments:\n  name: a\n  model: x\n  tp: 2\n", ["'deployments'", "must be a list", "got a mapping"]),
    ("deployments:\n", ["'deployments'", "must be a list", "got nothing"]),
    ("deployments: []\n", ["empty list"]),
    ("- name: a\n  model: x\n  tp: 2\n", ["must be a mapping with a 'deployments:' list"]),
    ("", ["is empty"]),
    ("deployment:\n  - name: a\n", ["unknown key 'deployment'", "did you mean 'deployments'", "valid keys"]),
    ("deployments:\n  - just-a-string\n", [":2: deployments entry 1 must be a mapping"]),
])
def test_file_shape_errors(tmp_path, text, needles):
    assert_bad_input(kvplan("check", "--file", deploy_file(tmp_path, text)), *needles)


@pytest.mark.parametrize("entry, needles", [
    ("name: a\n    tp: 2", ["deployment 'a' (entry 2) is missing 'model'"]),
    ("name: a\n    model: {llama}", ["deployment 'a' (entry 2) is missing 'tp'", "positive integer"]),
    ("model: {llama}\n    tp: 2", ["is missing 'name'"]),
    ("name: a\n    model: {llama}\n    tpp: 2\n    tp: 2",
     [":8: deployment 'a' (entry 2) has unknown key 'tpp'", "did you mean 'tp'", "valid keys are name, model, tp, pp"]),
    ("name: a\n    model: {llama}\n    tp: 0", [":8: deployment 'a' field 'tp' must be a positive integer, got 0"]),
    ("name: a\n    model: {llama}\n    tp: -4", ["field 'tp' must be a positive integer, got -4"]),
    ("name: a\n    model: {llama}\n    tp: eight", ["field 'tp' must be a positive integer, got 'eight'"]),
    ("name: a\n    model: {llama}\n    tp: '8'", ["field 'tp' must be a positive integer, unquoted, got '8'"]),
    ("name: a\n    model: {llama}\n    tp: true", ["field 'tp' must be a positive integer, got true"]),
    ("name: a\n    model: {llama}\n    tp: 2\n    pp: 0", ["field 'pp' must be a positive integer, got 0"]),
    ("name: a\n    model: {llama}\n    tp: 2\n    gpu: H900",
     ["field 'gpu' 'H900' is not in the GPU catalog", "H100-80GB-SXM"]),
    ("name: a\n    model: {llama}\n    tp: 2\n    kv_dtype: fp7", ["field 'kv_dtype' 'fp7'", "fp8"]),
    ("name: a\n    model: {llama}\n    tp: 2\n    context: lots", ["field 'context' must be a whole number"]),
    ("name: a\n    model: {llama}\n    tp: 2\n    gpu_util: 1.5", ["field 'gpu_util' must be a fraction in (0, 1]"]),
    ("name: a\n    model: {llama}\n    tp: 2\n    kv_budget: plenty", ["field 'kv_budget' 'plenty' is not a size"]),
    ("name: a\n    model: {llama}\n    tp: 2\n    min_concurrency: 0",
     ["field 'min_concurrency' must be a positive integer, got 0"]),
    ("name: ok\n    model: {llama}\n    tp: 2", ["deployment name 'ok' is already used at line 2"]),
    ("name: a\n    model: {llama}\n    tp: 2\n    tp: 4", ["repeats key 'tp'"]),
])
def test_entry_errors(tmp_path, entry, needles):
    llama = write_config(tmp_path, "llama-3-8b", LLAMA_3_8B)
    text = f"deployments:\n  - name: ok\n    model: {llama}\n    tp: 1\n\n  - {entry.format(llama=llama)}\n"
    path = deploy_file(tmp_path, text)
    assert_bad_input(kvplan("check", "--file", path), *needles)


def test_unknown_model_id(tmp_path):
    path = deploy_file(tmp_path, "deployments:\n  - name: ghost\n    model: nobody/no-such-model-xyz\n    tp: 2\n")
    assert_bad_input(kvplan("check", "--file", path, env={"HF_HUB_CACHE": str(tmp_path / "hub")}),
                     ":3: deployment 'ghost' field 'model'", "nobody/no-such-model-xyz", "not bundled")
    assert_bad_input(kvplan("check", "nobody/no-such-model-xyz", "--tp", "2",
                            env={"HF_HUB_CACHE": str(tmp_path / "hub")}), "nobody/no-such-model-xyz")


def test_unknown_gpu_flag(tmp_path):
    llama = write_config(tmp_path, "llama-3-8b", LLAMA_3_8B)
    assert_bad_input(kvplan("check", llama, "--tp", "2", "--gpu", "H900"), "--gpu 'H900'")


@pytest.mark.parametrize("args, needles", [
    (["--tp", "0"], ["--tp", "got '0'"]),
    (["--tp", "-2"], ["--tp", "got '-2'"]),
    (["--tp", "two"], ["--tp", "got 'two'"]),
    ([], ["--tensor-parallel-size is required with MODEL"]),
    (["--tp", "2", "--pp", "0"], ["--pp must be a positive integer, got 0"]),
    (["--tp", "2", "--pp", "x"], ["--pp"]),
    (["--tp", "2", "--min-concurrency", "0"], ["--min-concurrency must be a positive integer"]),
    (["--tp", "2", "--kv-dtype", "fp7"], ["--kv-dtype 'fp7'"]),
    (["--tp", "2", "--format", "xml"], ["--format 'xml'"]),
    (["--suggest", "--tp", "2"], ["--suggest", "drop --tp"]),
])
def test_flag_errors(tmp_path, args, needles):
    llama = write_config(tmp_path, "llama-3-8b", LLAMA_3_8B)
    assert_bad_input(kvplan("check", llama, *args), *needles)


def test_usage_errors(tmp_path):
    llama = write_config(tmp_path, "llama-3-8b", LLAMA_3_8B)
    path = deploy_file(tmp_path, f"deployments:\n  - name: a\n    model: {llama}\n    tp: 2\n")
    assert_bad_input(kvplan("check"), "needs MODEL with --tensor-parallel-size")
    assert_bad_input(kvplan("check", "--file", path, "--tp", "2"), "--tp applies to MODEL only")
    assert_bad_input(kvplan("check", "--file", path, "--gpu", "H100"), "--gpu applies to MODEL only")
    assert_bad_input(kvplan("check", "--file", path, "--suggest"), "--suggest takes a MODEL")
    assert_bad_input(kvplan("check", llama, llama, "--tp", "2"), "takes one MODEL")


# ---- the engine a deployment runs --------------------------------------------------------------------------

def test_deployment_names_its_vllm_release_and_eager_mode(tmp_path):
    """Llama-3.1-8B at 8,192 tokens on an H100: 1 GiB of KV a sequence (512 blocks of 2 MiB), one null block.
    vLLM 0.32 subtracts the graph term (0.705 GiB) and V2's penalty counts (1024 x (128,256 + 4,008) x 4 B, counted
    from 0.27) with its other sampler rows (17,924 B a sequence) and structured-output bitmask ((4,008 + 1) x 4 B a
    sequence: tests/test_vllm_runner_buffers.py), 0.25.1 runs Model Runner V2 whose graph estimate is 0, and
    --enforce-eager drops the graph term; 0.21.0 runs V1, whose seeded native sampler pass (1024 x 128,256 x 14 B +
    132 Triton rows x 128,256 x 4 B + the held hidden states (8,192 + 1,024) x 4,096 x 2: tests/test_s54_fix6.py)
    sets the peak. The graph term also holds 0.21.0's budget down; until session 67 it was 1.25 GiB, 585,189,295 B
    more, and the pinned release kept 54 sequences."""
    entries = "".join(f"""  - name: {name}
    model: meta-llama/Llama-3.1-8B-Instruct
    tp: 1
    gpu: H100
    context: 8192
{extra}""" for name, extra in (("pinned", ""), ("old", "    engine: vllm==0.21.0\n"),
                               ("v2", "    engine: vllm==0.25.1\n"), ("eager", "    enforce_eager: true\n")))
    report = check_json("--file", deploy_file(tmp_path, "deployments:\n" + entries), expect=0)
    got = {r["name"]: r for r in report["results"]}
    graphs, penalties = int(0.705 * 2**30), 1024 * (128_256 + 4_008) * 4 + 1024 * 17_924 + 1024 * 4_009 * 4
    assert got["v2"]["kv_budget_bytes_per_gpu"] == got["eager"]["kv_budget_bytes_per_gpu"] + penalties == \
        got["pinned"]["kv_budget_bytes_per_gpu"] + graphs + penalties
    # blocks: budget // 2 MiB - 1 null block, then 512 a sequence
    for name, budget, have in (("pinned", 59_345_660_151, 55), ("v2", 60_679_176_520, 56),
                               ("old", 58_879_817_975, 54)):
        assert got[name]["kv_budget_bytes_per_gpu"] == budget and got[name]["max_concurrency"] == have, name
        assert (budget // 2**21 - 1) // 512 == have


def test_engine_flags_for_one_model():
    report = check_json("meta-llama/Llama-3.1-8B-Instruct", "-tp", "1", "--gpu", "h100", "-c", "8192",
                        "--engine", "vllm==0.25.1", "--min-concurrency", "56", expect=0)
    assert report["results"][0]["max_concurrency"] == 56
    report = check_json("meta-llama/Llama-3.1-8B-Instruct", "-tp", "1", "--gpu", "h100", "-c", "8192",
                        "--enforce-eager", "--min-concurrency", "56", expect=1)
    assert "max_concurrency 55 < min_concurrency 56" in report["results"][0]["errors"][0]


@pytest.mark.parametrize("value,needles", [
    ("engine: sglang", ("deployments.yaml:5", "'engine'", "sglang", "vllm==<release>")),
    ("engine: vllm==9.9", ("deployments.yaml:5", "'engine'", "from 0.2.0 to 0.34.0")),
    ("enforce_eager: yes please", ("deployments.yaml:5", "'enforce_eager'", "true or false")),
    ("enforce_eager: 1", ("deployments.yaml:5", "'enforce_eager'", "true or false")),
])
def test_bad_engine_keys_are_bad_input(tmp_path, value, needles):
    path = deploy_file(tmp_path, f"""deployments:
  - name: x
    model: meta-llama/Llama-3.1-8B-Instruct
    tp: 1
    {value}
""")
    assert_bad_input(kvplan("check", "--file", path), *needles)
