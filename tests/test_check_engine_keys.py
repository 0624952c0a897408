"""`kvplan check` takes the flags that change capacity which `kvplan estimate` takes: quantization, dtype,
max_num_seqs, max_num_batched_tokens, pp_layer_partition and gpu_memory, as deployments-file keys and as check's
own flags. A deployment plans as estimate plans the same flags (the same budget, concurrency and refusal), a bad
value is one sentence naming file:line, deployment and key (exit 2), and a refusal caused by one of them lands on
its key's line with a remedy that names the file's keys.

vLLM read by hand (0.32.0 unless named):
- v1/core/sched/scheduler.py:129 max_num_running_reqs = scheduler_config.max_num_seqs: at most --max-num-seqs
  requests run at once, whatever the KV cache holds.
- distributed/utils.py:142-150 get_pp_indices: VLLM_PP_LAYER_PARTITION "41,39" gives stage 0 layers 0-40 and stage
  1 layers 41-79; without it 80 layers split 40,40 (:152-153).
- utils/torch_utils.py:536-538 kv_cache_dtype_str_to_dtype: `auto` is the model dtype, so --dtype float32 stores
  the cache in 4-byte elements.
- config/vllm.py:895-913 VllmConfig._get_quantization_config: "The quantization method {q} is not supported for the
  current GPU. Minimum capability: {min}. Current capability: {cc}."; mxfp4.py:71-80 minimum 80 (a T4 is 75).
- platforms/cuda.py:636-654 check_if_supports_dtype: bfloat16 needs compute capability 8.0.
"""

from __future__ import annotations

import csv
import io
import json

import pytest

from tests.conftest import run_kvplan

LLAMA_8B, LLAMA_70B, LLAMA_1B, GEMMA3 = ("meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-70B-Instruct",
                                         "meta-llama/Llama-3.2-1B-Instruct", "google/gemma-3-4b-it")
NEW_KEYS = ("quantization", "dtype", "max_num_seqs", "max_num_batched_tokens", "pp_layer_partition", "gpu_memory")


def _write(tmp_path, entries: str):
    path = tmp_path / "deployments.yaml"
    path.write_text("deployments:\n" + entries)
    return path


def _line(path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), start=1) if text in line)


def _estimate(*args) -> dict:
    r = run_kvplan("estimate", *args, "--format", "json")
    assert r.returncode == 0, r.stderr
    (plan,) = json.loads(r.stdout)["plans"]
    return plan


def _check_file(path) -> tuple:
    r = run_kvplan("check", "--file", path, "--format", "json")
    assert r.returncode in (0, 1), r.stderr
    return r.returncode, {row["name"]: row for row in json.loads(r.stdout)["results"]}


# (name, the entry's keys, the same deployment as estimate's flags)
SAME = [
    ("llama8b-fp8-h100", "    model: {LLAMA_8B}\n    tp: 1\n    gpu: H100\n    context: 8192\n    quantization: fp8\n",
     (LLAMA_8B, "--gpu", "H100", "-c", "8192", "-q", "fp8")),
    ("gemma3-fp32-a100", "    model: {GEMMA3}\n    tp: 1\n    gpu: A100-80GB\n    dtype: float32\n",
     (GEMMA3, "--gpu", "A100-80GB", "--dtype", "float32")),
    ("llama70b-tp4-batch", "    model: {LLAMA_70B}\n    tp: 4\n    gpu: H100\n    context: 4096\n"
                           "    max_num_seqs: 64\n    max_num_batched_tokens: 16384\n",
     (LLAMA_70B, "-tp", "4", "--gpu", "H100", "-c", "4096", "--max-num-seqs", "64",
      "--max-num-batched-tokens", "16384")),
    ("llama70b-pp2", "    model: {LLAMA_70B}\n    tp: 2\n    pp: 2\n    gpu: H100\n    context: 8192\n"
                     "    pp_layer_partition: 41,39\n    gpu_memory: 80GB\n",
     (LLAMA_70B, "-tp", "2", "-pp", "2", "--gpu", "H100", "-c", "8192", "--pp-layer-partition", "41,39",
      "--gpu-memory", "80GB")),
    ("llama1b-mxfp4-t4", "    model: {LLAMA_1B}\n    tp: 1\n    gpu: T4\n    context: 4096\n    quantization: mxfp4\n"
                         "    engine: vllm==0.27.0\n",
     (LLAMA_1B, "--gpu", "T4", "-c", "4096", "-q", "mxfp4", "--engine", "vllm==0.27.0")),
]


@pytest.fixture(scope="module")
def same_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("same") / "deployments.yaml"
    names = dict(LLAMA_8B=LLAMA_8B, GEMMA3=GEMMA3, LLAMA_70B=LLAMA_70B, LLAMA_1B=LLAMA_1B)
    path.write_text("deployments:\n" + "".join(f"  - name: {name}\n" + keys.format(**names)
                                               for name, keys, _ in SAME))
    code, rows = _check_file(path)
    assert code == 1  # the T4's refusal fails the file
    return path, rows


@pytest.mark.parametrize("name,flags", [(name, flags) for name, _, flags in SAME])
def test_a_deployment_plans_as_estimate_plans_its_flags(same_file, name, flags):
    path, rows = same_file
    row, plan = rows[name], _estimate(*flags)
    assert row["kv_budget_bytes_per_gpu"] == plan["kv_budget_bytes_per_gpu"]
    assert row["max_concurrency"] == plan["max_concurrency"]
    assert row["max_concurrency_limited_by"] == plan["max_concurrency_limited_by"]
    assert row["kv_bytes_per_token"] == plan["kv_bytes_per_token"]
    assert row["kv_dtype"] == plan["kv_dtype"]
    refused, asked = row["engine"]["refusal"], plan["engine"]["refusal"]
    assert (refused is None) == (asked is None)
    if asked is not None:  # the same refusal; its remedy names the file's keys where estimate names flags
        assert (refused["reason"], refused["field"]) == (asked["reason"], asked["field"])
    assert (row["engine"]["max_num_seqs"], row["engine"]["max_num_batched_tokens"]) == \
        (plan["engine"]["max_num_seqs"], plan["engine"]["max_num_batched_tokens"])


def test_the_numbers_by_hand(same_file):
    _, rows = same_file
    # scheduler.py:129: 64 run at once; 80 layers x 8 KV heads x 128 x (K, V) x 2 bytes a token
    batch = rows["llama70b-tp4-batch"]
    assert (batch["max_concurrency"], batch["max_concurrency_limited_by"]) == (64, "max_num_seqs")
    assert batch["kv_bytes_per_token"] == 80 * 8 * 128 * 2 * 2 == 327_680
    assert batch["engine"]["max_num_batched_tokens"] == 16384
    # torch_utils.py:536-538: auto follows --dtype float32: 34 layers x 4 KV heads x 256 x (K, V) x 4 bytes
    gemma = rows["gemma3-fp32-a100"]
    assert (gemma["kv_dtype"], gemma["kv_bytes_per_token"]) == ("fp32", 34 * 4 * 256 * 2 * 4)
    # get_pp_indices with VLLM_PP_LAYER_PARTITION=41,39
    assert rows["llama70b-pp2"]["pp_partition"] == [41, 39]


def test_fp8_weights_free_a_byte_a_linear_weight(same_file, tmp_path):
    """Fp8LinearMethod quantises a 16-bit checkpoint's linear layers online (fp8.py): a byte a weight instead of two,
    plus one scale a matrix. Llama-3.1-8B's 32 layers hold q, o 4096x4096, k, v 4096x1024, gate, up 4096x14336 and
    down 14336x4096: 218,103,808 weights a layer, 6,979,321,856 in all, which the KV budget gains."""
    _, rows = same_file
    plain = _check_file(_write(tmp_path, f"  - name: plain\n    model: {LLAMA_8B}\n    tp: 1\n    gpu: H100\n"
                                         f"    context: 8192\n"))[1]["plain"]
    per_layer = 2 * 4096 * 4096 + 2 * 4096 * 1024 + 3 * 4096 * 14336
    gained = rows["llama8b-fp8-h100"]["kv_budget_bytes_per_gpu"] - plain["kv_budget_bytes_per_gpu"]
    assert per_layer * 32 == 6_979_321_856
    assert 0 <= 6_979_321_856 - gained < 4096  # the scales: a few bytes a matrix
    assert rows["llama8b-fp8-h100"]["max_concurrency"] > plain["max_concurrency"]


def test_a_refusal_lands_on_the_quantization_line_in_the_files_words(same_file):
    path, rows = same_file
    row = rows["llama1b-mxfp4-t4"]
    assert not row["passed"]
    (finding,) = row["findings"]
    assert (finding["key"], finding["line"]) == ("quantization", _line(path, "quantization: mxfp4"))
    # 0.27.0 builds Mxfp4Config (minimum 80) for --quantization mxfp4; 0.28.0 the online class (75)
    assert finding["message"] == ("vLLM 0.27.0 does not start: The quantization method mxfp4 is not supported for the "
                                  "current GPU; it starts with engine vllm==0.28.0 or newer; or vLLM accepts the model "
                                  "without quantization mxfp4, or a GPU of compute capability 8.0 or more.")


def test_a_release_remedy_names_the_engine_key(tmp_path):
    """fp8's minimum was 80 before 0.14 (fp8.py 0.11.0:110-115) and 75 from 0.14.0 (:148-153): the remedy names the
    release as the file's engine key, the method as its quantization key; the MODEL form names vLLM's flags."""
    path = _write(tmp_path, f"  - name: old\n    model: {LLAMA_1B}\n    tp: 1\n    gpu: T4\n    context: 4096\n"
                            f"    engine: vllm==0.12.0\n    quantization: fp8\n")
    (finding,) = _check_file(path)[1]["old"]["findings"]
    assert (finding["key"], finding["line"]) == ("quantization", _line(path, "quantization: fp8"))
    assert finding["message"].endswith("; it starts with engine vllm==0.14.0 or newer; or vLLM accepts the model "
                                       "without quantization fp8, or a GPU of compute capability 8.0 or more.")
    r = run_kvplan("check", LLAMA_1B, "-tp", "1", "--gpu", "T4", "-c", "4096", "--engine", "vllm==0.12.0", "-q", "fp8",
                   "--format", "json")
    assert r.returncode == 1, r.stderr
    (finding,) = json.loads(r.stdout)["results"][0]["findings"]
    assert finding["message"].endswith("; it starts with --engine vllm==0.14.0 or newer; or vLLM accepts the model "
                                       "without --quantization fp8, or a GPU of compute capability 8.0 or more.")
    assert "--engine vllm==0.14.0 or newer" in _estimate(LLAMA_1B, "--gpu", "T4", "-c", "4096", "--engine",
                                                         "vllm==0.12.0", "-q", "fp8")["engine"]["refusal"]["remedy"]


def test_a_dtype_refusal_lands_on_the_dtype_line(tmp_path):
    """cuda.py:636-654: a T4 (7.5) refuses --dtype bfloat16; Gemma 3 takes no float16 (config/model.py
    _check_valid_dtype), so the remedy is float32."""
    path = _write(tmp_path, f"  - name: bf16\n    model: {GEMMA3}\n    tp: 1\n    gpu: T4\n    context: 4096\n"
                            f"    dtype: bfloat16\n")
    (finding,) = _check_file(path)[1]["bf16"]["findings"]
    assert (finding["key"], finding["line"]) == ("dtype", _line(path, "dtype: bfloat16"))
    assert finding["message"].endswith("; vLLM accepts dtype float32 (or auto, which vLLM resolves to it).")


def test_the_model_form_takes_the_flags():
    r = run_kvplan("check", LLAMA_70B, "-tp", "4", "--gpu", "H100", "-c", "4096", "--max-num-seqs", "64",
                   "--max-num-batched-tokens", "16K", "--format", "json")
    assert r.returncode == 0, r.stderr
    (row,) = json.loads(r.stdout)["results"]
    assert (row["max_concurrency"], row["max_num_seqs"], row["max_num_batched_tokens"]) == (64, 64, 16384)


def test_a_layer_partition_without_pp_is_refused_on_its_key(tmp_path):
    """Two stages' counts against pp 1 contradict the file's own settings: bad input (exit 2) at the key's line
    (session 55; plan/sharding.py require_stage_counts), no longer a finding."""
    path = _write(tmp_path, f"  - name: halves\n    model: {LLAMA_8B}\n    tp: 1\n    pp_layer_partition: [16, 16]\n")
    r = run_kvplan("check", "--file", path, "--format", "json")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith(f"kvplan: error: {path}:{_line(path, 'pp_layer_partition')}: deployment 'halves' "
                               f"field 'pp_layer_partition' has 2 stages (16,16) but pp is 1 (its default)")


# (key: value, the flag estimate takes and its value) for values both refuse
BAD = [
    ("quantization: int3", ("-q", "int3")),
    ("dtype: float64", ("--dtype", "float64")),
    ("max_num_seqs: 0", ("--max-num-seqs", "0")),
    ("max_num_batched_tokens: 16.5K", ("--max-num-batched-tokens", "16.5K")),
    ("max_num_batched_tokens: 0", ("--max-num-batched-tokens", "0")),
    ("pp_layer_partition: 16;16", ("--pp-layer-partition", "16;16")),
    ("gpu_memory: lots", ("--gpu-memory", "lots")),
]


@pytest.mark.parametrize("entry,flags", BAD)
def test_a_bad_value_names_file_line_deployment_and_key_as_estimate_words_it(tmp_path, entry, flags):
    key = entry.split(":")[0]
    path = _write(tmp_path, f"  - name: bad\n    model: {LLAMA_8B}\n    tp: 1\n    {entry}\n")
    r = run_kvplan("check", "--file", path)
    assert r.returncode == 2 and r.stdout == ""
    (line,) = r.stderr.strip().splitlines()
    prefix = f"kvplan: error: {path}:{_line(path, entry)}: deployment 'bad' field '{key}' "
    assert line.startswith(prefix)
    flag, value = flags
    est = run_kvplan("estimate", LLAMA_8B, flag, value)
    assert est.returncode == 2
    assert est.stderr.strip() == f"kvplan: error: {flag} {line[len(prefix):]}"


def test_a_quoted_count_and_a_yaml_1_1_number_are_refused(tmp_path):
    for entry, problem in (("max_num_seqs: '64'", "must be a positive integer, unquoted, got '64'."),
                           ("max_num_batched_tokens: 0x4000", "is written '0x4000', which YAML 1.1 reads as")):
        path = _write(tmp_path, f"  - name: bad\n    model: {LLAMA_8B}\n    tp: 1\n    {entry}\n")
        r = run_kvplan("check", "--file", path)
        assert r.returncode == 2 and problem in r.stderr


def test_a_checkpoint_quantised_another_way_is_refused_at_its_line(tmp_path):
    path = _write(tmp_path, "  - name: oss\n    model: openai/gpt-oss-20b\n    tp: 1\n    quantization: fp8\n")
    r = run_kvplan("check", "--file", path)
    assert r.returncode == 2
    assert r.stderr.strip() == (f"kvplan: error: {path}:{_line(path, 'quantization')}: deployment 'oss' field "
                                f"'quantization' fp8 does not match the checkpoint, whose weights are stored as mxfp4; "
                                f"vLLM refuses a different method for a quantised checkpoint.")


def test_with_a_file_the_flags_are_refused(tmp_path):
    path = _write(tmp_path, f"  - name: a\n    model: {LLAMA_8B}\n    tp: 1\n")
    r = run_kvplan("check", "--file", path, "-q", "fp8")
    assert r.returncode == 2 and r.stderr.startswith("kvplan: error: -q applies to MODEL only")


def test_the_row_gains_a_key_only_when_set_and_the_csv_has_every_column(tmp_path):
    path = _write(tmp_path, f"  - name: plain\n    model: {LLAMA_8B}\n    tp: 1\n    context: 8192\n"
                            f"  - name: set\n    model: {LLAMA_8B}\n    tp: 1\n    context: 8192\n"
                            f"    quantization: fp8\n    dtype: bfloat16\n    max_num_seqs: 32\n"  # FP8: refused (s77)
                            f"    max_num_batched_tokens: 4K\n    pp_layer_partition: [32]\n    gpu_memory: 80GiB\n")
    rows = _check_file(path)[1]
    assert not set(NEW_KEYS) & set(rows["plain"])
    assert {key: rows["set"][key] for key in NEW_KEYS} == {
        "quantization": "fp8", "dtype": "bfloat16", "max_num_seqs": 32, "max_num_batched_tokens": 4096,
        "pp_layer_partition": [32], "gpu_memory": 80 * 2**30}
    r = run_kvplan("check", "--file", path, "--format", "csv")
    header, plain, chosen = list(csv.reader(io.StringIO(r.stdout)))
    columns = header[header.index("block_size") + 1:header.index("block_size") + 1 + len(NEW_KEYS)]
    assert tuple(columns) == NEW_KEYS
    assert [plain[header.index(k)] for k in NEW_KEYS] == [""] * len(NEW_KEYS)
    assert chosen[header.index("max_num_seqs")] == "32"


def test_the_python_api_takes_them_as_estimate_does():
    import kvplan

    (row,) = kvplan.check(LLAMA_8B, tensor_parallel_size=1, gpu="H100", max_model_len=8192, quantization="fp8",
                          max_num_seqs=64, max_num_batched_tokens="4K", gpu_memory="80GB")
    (plan,) = kvplan.estimate(LLAMA_8B, gpu="H100", max_model_len=8192, quantization="fp8", max_num_seqs=64,
                              max_num_batched_tokens="4K", gpu_memory="80GB")
    assert (row["kv_budget_bytes_per_gpu"], row["max_concurrency"]) == (plan.kv_budget_bytes_per_gpu,
                                                                        plan.max_concurrency)


def test_the_api_remedy_names_its_keywords():
    import kvplan

    (plan,) = kvplan.estimate(LLAMA_1B, gpu="T4", max_model_len=4096, quantization="fp8", engine="vllm==0.12.0")
    assert plan.engine.refusal.remedy == ("it starts with engine vllm==0.14.0 or newer; or vLLM accepts the model "
                                          "without quantization fp8, or a GPU of compute capability 8.0 or more")


@pytest.mark.parametrize("written", ["[010, 24]", "[0x10, 16]", "[1_6, 16]"])
def test_a_partition_lists_counts_are_read_strictly(tmp_path, written):
    """YAML 1.1 reads 010 as 8 and 0x10 as 16, YAML 1.2 010 as 10: a list item in such a form is refused as the same
    number written alone is."""
    path = _write(tmp_path, f"  - name: a\n    model: {LLAMA_8B}\n    tp: 1\n    pp: 2\n"
                            f"    pp_layer_partition: {written}\n")
    r = run_kvplan("check", "--file", path)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith(f"kvplan: error: {path}:6: deployment 'a' field 'pp_layer_partition' is written ")


def test_a_max_num_seqs_cap_under_min_concurrency_names_max_num_seqs(tmp_path):
    """Llama-3.1-8B at 8K on an H100 holds 55 sequences of KV (1 GiB each in a ~55 GiB budget), but vLLM's scheduler
    runs at most max_num_seqs (v1/core/sched/scheduler.py): 8 < 16 is that key's doing, not memory's."""
    path = _write(tmp_path, f"  - name: a\n    model: {LLAMA_8B}\n    tp: 1\n    gpu: H100\n    context: 8192\n"
                            f"    max_num_seqs: 8\n    min_concurrency: 16\n")
    (finding,) = [f for f in _check_file(path)[1]["a"]["findings"] if f["level"] != "notice"]
    assert (finding["key"], finding["line"]) == ("max_num_seqs", _line(path, "max_num_seqs: 8"))
    assert finding["message"].startswith("max_concurrency 8 < min_concurrency 16: vLLM runs at most max_num_seqs 8 "
                                         "sequences at once (")
    assert finding["message"].endswith("; it holds 16 with max_num_seqs 16.")


@pytest.mark.parametrize("want,enough", [(885, True), (886, False)])
def test_raising_max_num_seqs_is_advised_only_where_it_is_enough(want, enough):
    """At 512 tokens a request takes 64 MiB of KV (32 blocks of 2 MiB); Model Runner V2's per-request rows (penalty
    counts: 4 x (128,256 + 4,008) B, the sampler's 17,924 B, the grammar bitmask 4 x 4,009 B: 563,016 B a request)
    grow with max_num_seqs, so the advice is planned at the raised value before it is given. The KV budget at vLLM's
    default cap of 1024 is 59,345,660,151 B (58,760,470,856 with vLLM's graph term at 1.25 GiB, plus 585,189,295 at
    0.705 GiB). At 885: + 139 x 563,016 = 59,423,919,375 B, 28,335 blocks, 28,334 // 32 = 885 held, enough; at 886:
    + 138 x 563,016 = 59,423,356,359 B, the same 28,335 blocks, 885 held, one short. (Until session 67 the pair was
    870 and 884, where the cache held 876.)"""
    r = run_kvplan("check", LLAMA_8B, "--tp", "1", "--gpu", "H100", "-c", "512", "--max-num-seqs", "16",
                   "--min-concurrency", want, "--format", "json")
    (finding,) = [f for f in json.loads(r.stdout)["results"][0]["findings"] if f["level"] != "notice"]
    assert finding["message"].endswith(f"; it holds {want} with --max-num-seqs {want}.") == enough
    if not enough:
        assert f"and at --max-num-seqs {want} its KV cache holds 885; would fit with --tensor-parallel-size 2" in \
            finding["message"] and finding["message"].endswith(f", each with --max-num-seqs {want}.")
    followed = run_kvplan("check", LLAMA_8B, "--tp", "1", "--gpu", "H100", "-c", "512", "--max-num-seqs", want,
                          "--min-concurrency", want)
    assert followed.returncode == (0 if enough else 1)


def test_a_dtype_refusal_the_quantization_brings_lands_on_its_line(tmp_path):
    """A T4 serves Gemma 3 in float32 (no float16 for it, no bfloat16 below 8.0); fp8 takes bfloat16 or float16
    (config/vllm.py 0.32.0:907-913): vLLM's refusal names the dtype, which the entry does not set, so the finding
    points at the key that brought it."""
    path = _write(tmp_path, f"  - name: g\n    model: {GEMMA3}\n    tp: 1\n    gpu: T4\n    context: 4096\n"
                            f"    quantization: fp8\n")
    (finding,) = _check_file(path)[1]["g"]["findings"]
    assert (finding["key"], finding["line"]) == ("quantization", _line(path, "quantization: fp8"))
    assert "torch.float32 is not supported for quantization method fp8" in finding["message"]


def test_a_block_size_remedy_is_planned_on_that_block_sizes_budget():
    """0.34's block tables are part of the budget and scale with the blocks a request needs (block_table.py): at
    --block-size 1 they take ~1.2 GiB more than at 64, so the remedy's plan at 64 must be the plan asked at 64."""
    args = ("deepseek-ai/DeepSeek-V3.2", "--gpu", "H200", "--gpu-memory", "103G", "--tp", "8", "--engine",
            "vllm==0.34.0")
    at_64 = _estimate(*args, "--block-size", "64")
    assert at_64["max_concurrency"] == 1
    remedy = _estimate(*args, "--block-size", "1")["engine"]["refusal"]["remedy"]
    assert remedy.startswith("it starts with --block-size 64, 128")


def test_a_context_past_the_models_own_stays_a_finding_without_max_num_batched_tokens(tmp_path):
    """300M tokens is 36,621 chunks of the default 8,192, past what kvplan walks; with no max_num_batched_tokens in
    the entry that is not the entry's doing: vLLM refuses the length (config/model.py), one failing finding."""
    path = _write(tmp_path, f"  - name: big\n    model: {LLAMA_8B}\n    tp: 1\n    context: 300M\n")
    code, rows = _check_file(path)
    assert code == 1 and [f["key"] for f in rows["big"]["findings"]] == ["context"]
    assert "User-specified max_model_len (314572800)" in rows["big"]["errors"][0]


def test_the_api_takes_a_layer_partition_as_the_commands_do():
    """VLLM_PP_LAYER_PARTITION 41,39 for Llama-3.1-70B's 80 layers (distributed/utils.py get_pp_indices): the API's
    estimate and check plan what the CLI plans, and refuse a zero stage as it does."""
    import kvplan

    cli = _estimate(LLAMA_70B, "--gpu", "H100", "--tp", "4", "--pp", "2", "--pp-layer-partition", "41,39", "-c", "8192")
    (plan,) = kvplan.estimate(LLAMA_70B, gpu="H100", tensor_parallel_size=4, pipeline_parallel_size=2,
                              pp_layer_partition=[41, 39], max_model_len=8192)
    (row,) = kvplan.check(LLAMA_70B, gpu="H100", tensor_parallel_size=4, pipeline_parallel_size=2,
                          pp_layer_partition="41,39", max_model_len=8192)
    assert list(plan.pp_partition) == row["pp_partition"] == cli["pp_partition"] == [41, 39]
    assert plan.kv_budget_bytes_per_gpu == row["kv_budget_bytes_per_gpu"] == cli["kv_budget_bytes_per_gpu"]
    with pytest.raises(kvplan.KvplanError, match="pp_layer_partition takes positive whole numbers"):
        kvplan.estimate(LLAMA_70B, pipeline_parallel_size=2, pp_layer_partition=[41, 0])


def test_more_sequences_than_batched_tokens_is_refused_as_vllm_refuses_it():
    """config/scheduler.py verify_max_model_len (0.32.0:328-333): max_num_batched_tokens must be >= max_num_seqs;
    the H100's default 8,192 tokens take at most 8,192 sequences. check's advice raises both where it must."""
    r = run_kvplan("estimate", LLAMA_8B, "--gpu", "H100", "-c", "512", "--max-num-seqs", "10000")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip() == (
        'kvplan: error: --max-num-seqs 10000 is more than vLLM\'s `max_num_batched_tokens` 8192 (the default here), '
        'which '
        'vLLM refuses ("max_num_batched_tokens (8192) must be greater than or equal to max_num_seqs (10000)"); set '
        '--max-num-batched-tokens to 10000 or more, or --max-num-seqs to 8192 or less.')
    r = run_kvplan("check", LLAMA_8B, "--tp", "1", "--gpu", "H100", "-c", "512", "--max-num-seqs", "16",
                   "--max-num-batched-tokens", "512", "--min-concurrency", "870", "--format", "json")
    (finding,) = [f for f in json.loads(r.stdout)["results"][0]["findings"] if f["level"] != "notice"]
    assert finding["message"].endswith("; it holds 870 with --max-num-seqs 870 and --max-num-batched-tokens 870.")
