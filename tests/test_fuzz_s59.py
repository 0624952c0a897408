"""Defects the s59 fuzz campaign (round 3, /tmp/s59/fuzz) found, each reproduced here. Bad input is one line on
stderr naming the field and what is valid, exit 2 (the API: FieldError naming the keyword); exit 3 is a defect.

F1  a YAML alias that puts a list or mapping inside itself (deployments: &a [*a]; a field: &m {x: *m}) recursed
    until Python's limit (exit 3); an alias chain can also nest deeper than the text does.
F2  an integer of 4,301 digits or more (Python's int() limit) crashed a deployments file (any integer field, nested
    ones too), -dp, --num-gpu-blocks-override, --num-redundant-experts and the API's string counts; '++2' and '²'
    crashed the same way, and '٣' was read as 3.
F3  a model folder with shards missing (model-00001-of-00002 alone; an index listing an absent file) or a
    .safetensors holding no tensors was priced from what was there: vLLM refuses to load such a folder.
F5  a deployment name with a control character or line break split the table's row, and CSV and JSON each wrote it
    their own way; NUL was written raw.
F6  num_speculative_tokens had no bound, and check printed a negative KV budget ("-1,493,469 TiB per GPU").
"""

from __future__ import annotations

import json
import re
import struct

import pytest
from conftest import deployments_file, one_error_line, run_kvplan

from kvplan import api
from kvplan.errors import FieldError
from kvplan.units import OversizedInteger, whole_number

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
BIG = "9" * 4301  # one digit past Python's int() limit (sys.get_int_max_str_digits() is 4300)
# Llama-3.1-8B's config; its bf16 checkpoint is 16,060,522,496 bytes (metadata.total_size of Meta's
# model.safetensors.index.json), which the hand count gives: per layer q, o 4096^2 + k, v 4096 x 1024 + gate, up,
# down 3 x 4096 x 14336 + 2 norms of 4096 = 218,112,000; x 32 layers + untied embedding and LM head
# 2 x 128,256 x 4,096 + the final norm 4,096 = 8,030,261,248 parameters, x 2 bytes.
LLAMA_CONFIG = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096,
                "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
                "num_key_value_heads": 8, "vocab_size": 128256, "max_position_embeddings": 131072,
                "tie_word_embeddings": False, "torch_dtype": "bfloat16"}
LLAMA_BYTES = (32 * (2 * 4096 * 4096 + 2 * 4096 * 1024 + 3 * 4096 * 14336 + 2 * 4096) + 2 * 128256 * 4096 + 4096) * 2


def _entry(extra: str = "", name: str = "a", tp: str = "1") -> str:
    return f"  - name: {name}\n    model: {LLAMA}\n    tp: {tp}\n    gpu: H100\n    context: 8192\n{extra}"


def _check_file(tmp_path, body: str, *args):
    return run_kvplan("check", "--file", deployments_file(tmp_path, body), *args)


# ---- F1: YAML aliases -------------------------------------------------------------------------------------------

def test_an_alias_inside_itself_at_the_top_is_one_line(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("deployments: &a [*a]\n")
    line = one_error_line(run_kvplan("check", "--file", path))
    assert "r.yaml:1:" in line and "holds itself through a YAML alias" in line


@pytest.mark.parametrize("field, value", [
    ("mm_processor_kwargs", "&m {x: *m}"),
    ("speculative_config", "&m {method: ngram, num_speculative_tokens: 2, x: *m}"),
    ("eplb_config", "&m {window_size: [*m]}"),
    ("pooler_config", "&m {x: *m}"),
    ("pp_layer_partition", "&p [16, *p]"),
    ("limit_mm_per_prompt", "&m {image: *m}"),
])
def test_an_alias_inside_itself_names_its_field(tmp_path, field, value):
    line = one_error_line(_check_file(tmp_path, _entry(f"    {field}: {value}\n")))
    assert f"deployment 'a' field '{field}' holds itself through a YAML alias" in line, line


def test_an_entry_holding_itself_and_tp_holding_itself(tmp_path):
    body = f"  - &e\n    name: a\n    model: {LLAMA}\n    tp: 1\n    limit_mm_per_prompt: *e\n"
    assert "field 'limit_mm_per_prompt' holds itself" in one_error_line(_check_file(tmp_path, body))
    assert "field 'tp' holds itself" in one_error_line(_check_file(tmp_path, _entry(tp="&p [1, *p]")))


def test_an_alias_chain_deeper_than_the_text_is_refused(tmp_path):
    """Each anchor nests the last one level deeper: 40 levels from text that nests two."""
    chain = "".join(f"      k{i}: &a{i} [*a{i - 1}]\n" for i in range(1, 40))
    line = one_error_line(_check_file(tmp_path, _entry("    mm_processor_kwargs:\n      k0: &a0 [1]\n" + chain)))
    assert "field 'mm_processor_kwargs' nests deeper than 32 levels through YAML aliases" in line


def test_an_alias_used_twice_side_by_side_is_still_read(tmp_path):
    body = (_entry("    speculative_config: &s {method: ngram, num_speculative_tokens: 4}\n") +
            _entry("    speculative_config: *s\n", name="b"))
    result = _check_file(tmp_path, body, "-f", "json")
    assert result.returncode == 0, result.stderr
    assert [r["name"] for r in json.loads(result.stdout)["results"]] == ["a", "b"]


# ---- F2: integers past Python's digit limit, one rule -----------------------------------------------------------

def test_whole_number_reads_ascii_counts_and_bounds_digits_before_int():
    assert whole_number("8") == 8 and whole_number(" +8 ") == 8 and whole_number(8) == 8
    assert whole_number("9" * 64) == int("9" * 64)
    assert repr(whole_number("9" * 65)) == "<an integer of 65 digits>"
    assert isinstance(whole_number(BIG), OversizedInteger)
    for text in ("++8", "٣", "²", "-1", "8.0", ""):  # left to the field, which refuses them by name
        assert whole_number(text) == text


@pytest.mark.parametrize("extra, field", [
    (f"    pp: {BIG}\n", "pp"),
    (f"    kv_budget: {BIG}\n", "kv_budget"),
    (f"    dp: {BIG}\n", "dp"),
    (f"    num_gpu_blocks_override: {BIG}\n", "num_gpu_blocks_override"),
    (f"    max_num_batched_tokens: {BIG}\n", "max_num_batched_tokens"),
    (f"    enable_lora: true\n    max_lora_rank: {BIG}\n", "max_lora_rank"),
    (f"    pp: 2\n    pp_layer_partition: [16, {BIG}]\n", "pp_layer_partition"),
    (f"    speculative_config: {{method: ngram, num_speculative_tokens: {BIG}}}\n", "speculative_config"),
    (f"    enable_eplb: true\n    eplb_config: {{window_size: {BIG}}}\n", "eplb_config"),
    (f"    mm_processor_kwargs: {{max_pixels: {BIG}}}\n", "mm_processor_kwargs"),
    (f"    limit_mm_per_prompt: {{image: {BIG}}}\n", "limit_mm_per_prompt"),
    (f"    mm_processor_kwargs: {{max_pixels: {'1_' * 4400}1}}\n", "mm_processor_kwargs"),  # YAML 1.1's 1_000 form
])
def test_a_deployments_file_integer_past_the_limit_is_one_line(tmp_path, extra, field):
    line = one_error_line(_check_file(tmp_path, _entry(extra)))
    assert f"field '{field}'" in line, line
    assert BIG[:200] not in line  # said as "<an integer of N digits>" or cut short, never the digits whole


@pytest.mark.parametrize("flag", ["-dp", "--num-gpu-blocks-override", "--num-redundant-experts"])
@pytest.mark.parametrize("value", [BIG, "++2", "²", "٣"])
def test_count_flags_past_the_limit_or_not_ascii_are_one_line(flag, value):
    extra = ["--enable-eplb", "--enable-expert-parallel"] if flag == "--num-redundant-experts" else []
    line = one_error_line(run_kvplan("estimate", LLAMA, "--engine", "vllm==0.11.0", *extra, flag, value))
    assert f"kvplan: error: {flag} must be a whole number" in line, line
    if flag != "--num-redundant-experts":  # check has no --num-redundant-experts of its own to fall through
        check = one_error_line(run_kvplan("check", LLAMA, "-tp", "1", flag, value))
        assert f"kvplan: error: {flag} must be a whole number" in check, check


@pytest.mark.parametrize("keyword, extra", [
    ("data_parallel_size", {}),
    ("num_gpu_blocks_override", {}),
    ("num_redundant_experts", {"enable_eplb": True, "enable_expert_parallel": True, "engine": "vllm==0.11.0"}),
    ("max_loras", {"enable_lora": True}),
    ("max_lora_rank", {"enable_lora": True}),
])
@pytest.mark.parametrize("value", [BIG, "++2", "²", "٣"])
def test_api_string_counts_raise_field_error(keyword, extra, value):
    for function, more in ((api.estimate, {}), (api.check, {"tensor_parallel_size": 1})):
        with pytest.raises(FieldError) as caught:
            function(LLAMA, **{keyword: value}, **extra, **more)
        assert str(caught.value).startswith(f"{keyword} must be a whole number"), caught.value


# ---- F3: a model folder with shards missing ---------------------------------------------------------------------

def _shard(path, tensors: dict) -> None:
    """A safetensors file of `tensors` (name -> shape, bf16), header only: kvplan reads nothing past it."""
    header = json.dumps({"__metadata__": {"format": "pt"},
                         **{name: {"dtype": "BF16", "shape": list(shape), "data_offsets": [0, 0]}
                            for name, shape in tensors.items()}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header)


def _folder(tmp_path, shards: dict, index: dict | None = None):
    folder = tmp_path / "model"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(LLAMA_CONFIG))
    for name, tensors in shards.items():
        _shard(folder / name, tensors)
    if index is not None:
        (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    return folder


def _model(folder) -> dict:
    result = run_kvplan("estimate", folder, "--gpu", "H100", "-c", "4096", "-f", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["model"]


INDEX_OF_TWO = {"metadata": {"total_size": LLAMA_BYTES},
                "weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}


def test_llama_config_estimate_is_the_checkpoint_size():
    assert LLAMA_BYTES == 16_060_522_496  # Meta's index total_size: the fallback below is exact for this config


def test_a_shard_named_one_of_two_alone_is_priced_from_the_config_and_said(tmp_path):
    """Before: 1,000 x 1,000 bf16 = 2,000,000 bytes, the one shard's headers."""
    model = _model(_folder(tmp_path, {"model-00001-of-00002.safetensors": {"a": (1000, 1000)}}))
    assert model["weights_source"] == "estimated from config" and model["weights_bytes"] == LLAMA_BYTES
    (note,) = [rule for rule in model["rules"] if "checkpoint" in rule]
    assert "model-00002-of-00002.safetensors missing" in note and "which vLLM refuses to load" in note


def test_an_index_listing_an_absent_shard_is_priced_from_its_total_size_and_said(tmp_path):
    model = _model(_folder(tmp_path, {"model-00001-of-00002.safetensors": {"a": (1000, 1000)}}, INDEX_OF_TWO))
    assert model["weights_bytes"] == LLAMA_BYTES
    assert model["weights_source"] == "model.safetensors.index.json total_size"
    (note,) = [rule for rule in model["rules"] if "checkpoint" in rule]
    assert "incomplete (model-00002-of-00002.safetensors missing)" in note


def test_a_file_with_no_tensors_is_priced_from_the_config(tmp_path):
    """Before: 0 bytes of weights."""
    model = _model(_folder(tmp_path, {"model.safetensors": {}}))
    assert model["weights_source"] == "estimated from config" and model["weights_bytes"] == LLAMA_BYTES
    assert any("model.safetensors holds no tensors" in rule for rule in model["rules"])


def test_complete_folders_keep_their_exact_sizes(tmp_path):
    """Two shards of 1,000 x 1,000 bf16: 4,000,000 bytes. Mistral's folders hold consolidated.safetensors beside
    the indexed shards; vLLM loads those the index lists only (weight_utils.py 0.34.0:620-646
    filter_duplicate_safetensors_files), so it is not counted twice. An index alone (the JSON files downloaded)
    still gives its total_size."""
    both = {"model-00001-of-00002.safetensors": {"a": (1000, 1000)},
            "model-00002-of-00002.safetensors": {"b": (1000, 1000)}}
    model = _model(_folder(tmp_path / "two", both))
    assert (model["weights_source"], model["weights_bytes"]) == ("safetensors headers", 4_000_000)
    consolidated = {"consolidated.safetensors": {"a": (1000, 1000), "b": (1000, 1000)}}
    mistral = _folder(tmp_path / "mistral", {**both, **consolidated}, INDEX_OF_TWO)
    assert _model(mistral)["weights_bytes"] == 4_000_000
    only_index = _model(_folder(tmp_path / "index", {}, INDEX_OF_TWO))
    assert only_index["weights_bytes"] == LLAMA_BYTES and not any("checkpoint" in r for r in only_index["rules"])


def test_check_warns_of_an_incomplete_folder(tmp_path):
    folder = _folder(tmp_path, {"model-00001-of-00002.safetensors": {"a": (1000, 1000)}})
    result = run_kvplan("check", folder, "-tp", "1", "--gpu", "H100", "-c", "4096", "-f", "json")
    assert result.returncode == 0, result.stderr
    (found,) = json.loads(result.stdout)["results"]
    assert found["passed"] and any("model-00002-of-00002.safetensors missing" in w for w in found["warnings"])


# ---- F5: control characters in names ----------------------------------------------------------------------------

@pytest.mark.parametrize("written, code", [("a\\nb", "000A"), ("a\\tb", "0009"), ("a\\0b", "0000"),
                                           ("a\\x7fb", "007F"), ("a\\x85b", "0085"), ("a\\u2028b", "2028")])
def test_a_name_with_a_control_character_is_refused(tmp_path, written, code):
    line = one_error_line(_check_file(tmp_path, _entry(name=f'"{written}"')))
    assert f"deployments entry 1 field 'name' holds U+{code}, a control character or line break" in line, line


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_printable_names_are_written_as_given(tmp_path, fmt):
    result = _check_file(tmp_path, _entry(name='"héllo wörld 😀 #1"'), "-f", fmt)
    assert result.returncode == 0, result.stderr
    written = json.loads(result.stdout)["results"][0]["name"] if fmt == "json" else result.stdout
    assert "héllo wörld 😀 #1" in written


# ---- F6: num_speculative_tokens' bound; no negative budget ------------------------------------------------------

def test_num_speculative_tokens_is_bounded_as_every_token_count():
    """vLLM bounds it below only: Field(gt=0) (config/speculative.py 0.32.0:393, 0.33.0:413, 0.34.0:455) and
    _verify_args' > 0 (0.34.0:1660-1664). kvplan's bound is units.MAX_TOKENS, 2**40."""
    spec = '{"method": "ngram", "num_speculative_tokens": %d}'
    line = one_error_line(run_kvplan("estimate", LLAMA, "--speculative-config", spec % (2**40 + 1)))
    assert "num_speculative_tokens must be at most 1,099,511,627,776" in line and "vLLM sets none" in line
    assert run_kvplan("estimate", LLAMA, "--speculative-config", spec % 2**40).returncode == 0


@pytest.mark.parametrize("text", ["[" * 100_000, '{"method": "ngram", "num_speculative_tokens": %s}' % BIG])
def test_speculative_config_json_is_read_with_bounds(text):
    line = one_error_line(run_kvplan("estimate", LLAMA, "--speculative-config", text))
    assert line.startswith("kvplan: error: --speculative-config ")


NEGATIVE_BUDGET = re.compile(r"budget of -|-[0-9][0-9,.]* (?:[KMGT]i)?B")


@pytest.mark.parametrize("extra", ["    speculative_config: {method: ngram, num_speculative_tokens: 100000000000}\n",
                                   "    max_num_batched_tokens: 1099511627776\n"])
def test_an_impossible_budget_is_a_shortfall_never_a_negative_budget(tmp_path, extra):
    result = _check_file(tmp_path, _entry(extra))
    assert result.returncode == 1, result.stderr  # vLLM would not start it: a failure (docs/ci.md)
    said = " ".join(result.stdout.split())  # the table wraps at 100 columns
    assert "with nothing left for the KV cache, " in said and "TiB short per GPU" in said, said
    assert not NEGATIVE_BUDGET.search(said), said


def test_check_says_the_shortfall_estimate_says():
    """Llama-3.1-70B on one H100: the weights alone (131 GiB) pass the GPU; check's warning and estimate's budget
    line name the same shortfall."""
    check = run_kvplan("check", "meta-llama/Llama-3.1-70B-Instruct", "-tp", "1", "--gpu", "H100", "-c", "8192")
    estimate = run_kvplan("estimate", "meta-llama/Llama-3.1-70B-Instruct", "--gpu", "H100", "-c", "8192")
    short = re.search(r"nothing left \(short by ([0-9.]+ GiB)\)", " ".join(estimate.stdout.split())).group(1)
    assert f"with nothing left for the KV cache, {short} short per GPU" in " ".join(check.stdout.split())
    assert not NEGATIVE_BUDGET.search(" ".join(check.stdout.split()))
