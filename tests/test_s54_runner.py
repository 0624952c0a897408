"""The model runner's buffers in vLLM's budget, session 54: Model Runner V2's speculator buffers
(vllm_budget.drafter_buffers) against what each release's own speculator constructors keep on the GPU
(benchmarks/vllm_reference/runner_buffers.py DRAFT_CASES -> tests/data/vllm_runner_buffers.json "drafters", vLLM
0.32.0-0.34.0 on the meta device) and hand arithmetic; 0.34's block tables at the --kv-cache-dtype served; and
verify_rejudge's records that predate the runner_state row."""

import importlib.util
import json
import types
from pathlib import Path

import pytest

from kvplan.engines.vllm_settings import Settings
from kvplan.engines.vllm_budget import drafter_buffers
from kvplan.engines.vllm_runner import Runner
from kvplan.engines.vllm_speculative import Speculative, speculative_config
from kvplan.errors import FieldError
from kvplan.plan.plan import served_budget
from tests.conftest import run_kvplan

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = json.loads((ROOT / "tests" / "data" / "vllm_runner_buffers.json").read_text())
V1, V2 = Runner("V1", True, "test"), Runner("V2", True, "test")
MiB = 2**20
# the speculator attributes drafter_buffers prices (the rest left out as under 1 MiB)
PRICED = ("hidden_states", "cached_target_hidden_states", "scratch", "corpus", "table")


def _drafter_cases():
    return [(run["vllm"], case) for run in REFERENCE["releases"] for case in run.get("drafters", ())]


def _spec(case, method=None):
    """A served spec as drafter_buffers reads it: the target's dtype and hidden size, the drafter's config, its
    head's hidden size (EAGLE) and MTP module count."""
    method = method or case["method"]
    corpus = (1 << 20) if case["suffix_decoding_max_cached_requests"] else 0
    config = Speculative(method, case["num_speculative_tokens"], suffix_corpus=corpus)
    head = types.SimpleNamespace(hidden_size=case["hidden"]) if method.startswith("eagle") else None
    draft = types.SimpleNamespace(config=config, model=head, modules=case["mtp_modules"] if method == "mtp" else 0)
    return types.SimpleNamespace(dtype="bf16", hidden_size=case["hidden"], draft=draft)


def _settings(case):
    return Settings(case["max_model_len"], case["max_num_batched_tokens"], case["max_num_seqs"], 2)


def test_every_release_s_speculators_are_in_the_reference():
    """0.32 and 0.33 build EAGLE, MTP, draft-model and n-gram speculators on V2 (0.32.0 spec_decode/__init__.py
    :13-86); 0.34 adds suffix decoding (spec_decode/suffix/), which earlier releases run on V1."""
    built = {release: {case["speculator"] for r, case in _drafter_cases() if r == release}
             for release in ("0.32.0", "0.33.0", "0.34.0")}
    common = {"EagleSpeculator", "MTPSpeculator", "MultiModuleMTPSpeculator", "StandaloneARSpeculator",
              "NgramGPUSpeculator"}
    assert built["0.32.0"] == built["0.33.0"] == common
    assert built["0.34.0"] == common | {"SuffixSpeculator"}


def test_drafter_buffers_are_what_vllm_s_speculators_keep():
    """Every case of every release: drafter_buffers equals the priced tensors vLLM's constructor kept, and every
    other tensor it kept is under 1 MiB (input buffers, per-request rows of draft tokens, temperatures, seeds)."""
    for release, case in _drafter_cases():
        tensors = case["tensors"]
        priced = sum(size for path, size in tensors.items() if path.split(".")[-1] in PRICED)
        assert drafter_buffers(_spec(case), _settings(case), V2, release) == priced, (release, case["name"])
        assert all(size < MiB for path, size in tensors.items() if path.split(".")[-1] not in PRICED)


def _case(name):
    return next(case for release, case in _drafter_cases() if release == "0.34.0" and case["name"] == name)


def test_drafter_buffers_by_hand():
    """0.34.0 spec_decode/target_dependent_ar/speculator.py:33-35: bf16 [max_num_batched_tokens, draft hidden]
    (EAGLE-3 head of 4,096: 8,192 x 4,096 x 2; DeepSeek-V3's MTP, 7,168 wide: 8,192 x 7,168 x 2); three MTP modules
    with three draft tokens (multi_module_mtp/speculator.py:32-34, :63-69) also cache [256, 2, 4,096]; the n-gram
    scan (ngram/speculator.py:185-199) int64 [seqs, cdiv(len, 256)] from 1,024 tokens, blocks of 128 from 256 (300
    tokens: 3 blocks); suffix (suffix/speculator.py:520-560): its scan, an int32 corpus of 2^20 tokens and two
    int64 tables of 2^18 buckets x 8 slots, or one bucket and one corpus slot without a corpus (200 tokens: one
    block of 256)."""
    assert drafter_buffers(_spec(_case("Llama-3.1-8B EAGLE-3 head, k 3")), _settings(_case(
        "Llama-3.1-8B EAGLE-3 head, k 3")), V2, "0.34.0") == 8192 * 4096 * 2 == 67_108_864
    expected = {
        "DeepSeek-V3 MTP, k 1": 8192 * 7168 * 2,
        "three MTP modules, k 3": 2048 * 4096 * 2 + 256 * 2 * 4096 * 2,
        "draft model, k 4": 0,
        "ngram 131K": 1024 * 512 * 8,
        "ngram 300 tokens": 256 * 3 * 8,
        "suffix 32K": 1024 * 128 * 8 + (1 << 20) * 4 + 2 * (1 << 18) * 8 * 8,
        "suffix 200 tokens, no corpus": 256 * 1 * 8 + 4 + 2 * 1 * 8 * 8,
    }
    for name, size in expected.items():
        assert drafter_buffers(_spec(_case(name)), _settings(_case(name)), V2, "0.34.0") == size, name
    assert expected["suffix 32K"] == 38_797_312


def test_only_v2_s_last_stage_drafts_on_the_gpu():
    """The V1 runner drafts with suffix decoding only (0.32-0.33), on the CPU; V2 builds its speculator on the last
    pipeline stage (0.32.0 gpu/model_runner.py:292-298 is_last_pp_rank); no speculative config, no buffers."""
    case = _case("suffix 32K")
    assert drafter_buffers(_spec(case), _settings(case), V1, "0.33.0") == 0
    eagle = _case("Llama-3.1-8B EAGLE-3 head, k 3")
    first = types.SimpleNamespace(index=0, is_last=False)
    assert drafter_buffers(_spec(eagle), _settings(eagle), V2, "0.34.0", first) == 0
    plain = types.SimpleNamespace(dtype="bf16", hidden_size=4096, draft=None)
    assert drafter_buffers(plain, _settings(eagle), V2, "0.34.0") == 0


def _runner_state(*args):
    (row,) = json.loads(run_kvplan("estimate", *args, "--gpu", "h100", "--format", "json").stdout)["plans"]
    return next(t for t in row["budget"]["terms"] if t["name"] == "runner_state")


def _eagle3_head(tmp_path) -> str:
    """The EAGLE-3 Llama head config vllm_speculative_figures.json was made with (hidden 4,096)."""
    data = json.loads((ROOT / "tests" / "data" / "vllm_speculative_figures.json").read_text())
    case = next(c for c in data["cases"] if (c["inputs"]["speculative_config"] or {}).get("method") == "eagle3")
    path = tmp_path / "eagle3" / "config.json"
    path.parent.mkdir()
    path.write_text(json.dumps(case["inputs"]["draft_config"]))
    assert case["inputs"]["draft_config"]["hidden_size"] == 4096
    return str(path.parent)


def test_an_eagle3_head_s_hidden_states_in_the_budget(tmp_path):
    """Llama-3.1-8B-Instruct with an EAGLE-3 head, 3 draft tokens, vLLM 0.32 on an H100 (1,024 sequences, 8,192
    batched tokens): runner_state grows by the head's hidden states, 8,192 x 4,096 x 2, and three more rows a
    sequence of the structured-output bitmask, 3 x 1,024 x (cdiv(128,256, 32) + 1) x 4."""
    config = json.dumps({"method": "eagle3", "model": _eagle3_head(tmp_path), "num_speculative_tokens": 3})
    plain = _runner_state("meta-llama/Llama-3.1-8B-Instruct", "-c", "32768")
    drafted = _runner_state("meta-llama/Llama-3.1-8B-Instruct", "-c", "32768", "--speculative-config", config)
    assert drafted["bytes"] - plain["bytes"] == 8192 * 4096 * 2 + 3 * 1024 * 4009 * 4
    assert "the eagle3 drafter's hidden states" in drafted["source"]


def test_suffix_decoding_s_corpus_under_0_34():
    """Llama-3.1-8B-Instruct, suffix decoding with 8 draft tokens: 0.34 runs it on V2, whose speculator keeps an
    int32 corpus of 2^20 tokens and two int64 hash tables of 2^18 buckets x 8 slots; with
    suffix_decoding_max_cached_requests 0 the corpus is one slot and the tables one bucket (suffix/speculator.py
    :535-560). 0.33 runs suffix decoding on V1 (CPU drafting): nothing of it in the runner buffers."""
    suffix = '{"method": "suffix", "num_speculative_tokens": 8%s}'
    args = ("meta-llama/Llama-3.1-8B-Instruct", "-c", "32768", "--speculative-config")
    on = _runner_state(*args, suffix % "", "--engine", "vllm==0.34.0")
    off = _runner_state(*args, suffix % ', "suffix_decoding_max_cached_requests": 0', "--engine", "vllm==0.34.0")
    assert on["bytes"] - off["bytes"] == (1 << 20) * 4 + 2 * (1 << 18) * 8 * 8 - 4 - 2 * 8 * 8
    assert "corpus of 1,048,576 tokens" in on["source"] and "corpus of 0 tokens" in off["source"]
    assert "drafter" not in _runner_state(*args, suffix % "", "--engine", "vllm==0.33.0")["source"].replace(
        "drafter's token history", "")


@pytest.mark.parametrize("config,words", [
    ('{"method": "mtp", "num_speculative_tokens": 1, "draft_sample_method": "probabilistic"}',
     "draft_sample_method 'probabilistic' is not modelled yet"),
    ('{"method": "suffix", "num_speculative_tokens": 4, "suffix_decoding_corpus_tokens": -1}',
     "suffix_decoding_corpus_tokens must be a whole number, 0 or more"),
    ('{"method": "suffix", "num_speculative_tokens": 4, "suffix_decoding_max_tree_depth": 0}',
     "suffix_decoding_max_tree_depth must be a whole number, 1 or more"),
    ('{"method": "suffix", "num_speculative_tokens": 4, "suffix_decoding_corpus_tokens": 2147483648}',
     "must be below 2**31"),
])
def test_drafter_options_kvplan_cannot_price_are_refused(config, words):
    """Probabilistic draft sampling caches [max_num_seqs, k, vocab] draft logits (0.32.0 spec_decode/speculator.py
    :181-193), not modelled; suffix decoding's options as 0.34.0 suffix/config.py:34-48 checks them."""
    with pytest.raises(FieldError, match=words.replace("*", r"\*")):
        speculative_config(config)


def test_suffix_corpus_options():
    """The corpus's tokens (config/speculative.py 0.34.0:584-595 defaults 2^20), 0 with no cached requests or a
    tree depth below 2 (suffix/speculator.py:535-548)."""
    assert speculative_config('{"method": "suffix", "num_speculative_tokens": 4}').suffix_corpus == 1 << 20
    for extra, corpus in (('"suffix_decoding_corpus_tokens": 4096', 4096),
                          ('"suffix_decoding_max_cached_requests": 0', 0),
                          ('"suffix_decoding_max_tree_depth": 1', 0)):
        config = speculative_config('{"method": "suffix", "num_speculative_tokens": 4, %s}' % extra)
        assert config.suffix_corpus == corpus, extra


# 0.34's block tables at the KV dtype served

NEMOTRON_H = "nvidia/Nemotron-H-8B-Base-8K"


def _tables(*args) -> dict:
    """{kv dtype (the row's name for it): (runner_state bytes, block size, its source)} of an estimate sweeping
    --kv-cache-dtype."""
    out = run_kvplan("estimate", *args, "--gpu", "h100", "--format", "json")
    found = {}
    for row in json.loads(out.stdout)["plans"]:
        term = next(t for t in row["budget"]["terms"] if t["name"] == "runner_state")
        found[row["kv_dtype"]] = (term["bytes"], row["block_size"], term["source"])
    return found


def test_0_34_s_tables_take_the_served_cache_s_block():
    """Nemotron-H-8B (24 Mamba-2 layers, 4 attention layers of 8 KV heads x 128) under 0.34 at 8,192 tokens: the
    attention block is matched to the 4,255,744 B state page (0.34.0 platforms/interface.py:797
    _align_hybrid_block_size, multiples of 64): 64 x ceil(4,255,744 / (64 x 4,096)) = 1,088 at 2 bytes a value,
    64 x ceil(4,255,744 / (64 x 2,048)) = 2,112 under fp8. Its 7 KV-cache groups (6 of 4 Mamba layers, one of the 4
    attention layers) get a table and an input copy each (gpu/block_table.py:66-94), rows of cdiv(8,192, block)
    blocks rounded to whole 128-token runs (8 at 1,088; 4 at 2,112), and slot mappings of 8,192 int64:
    7 x 2 x 1,024 x 8 x 4 + 7 x 8,192 x 8 = 917,504 B, under fp8 7 x 2 x 1,024 x 4 x 4 + 458,752 = 688,128 B."""
    found = _tables(NEMOTRON_H, "-c", "8192", "--engine", "vllm==0.34.0", "--kv-cache-dtype", "auto,fp8")
    (auto, auto_block, _), (fp8, fp8_block, source) = found["bf16"], found["fp8_e4m3"]
    assert (auto_block, fp8_block) == (1088, 2112)
    assert auto - fp8 == 917_504 - 688_128 == 7 * 2 * 1024 * (8 - 4) * 4
    assert "max_model_len / 2112, 7 KV-cache groups" in source


def test_v1_s_placeholder_table_ignores_the_dtype():
    """V1 builds its placeholder table in __init__ at cache_config.block_size (16 unless --block-size), before
    update_block_size_for_backend aligns a hybrid's block to the cache served (0.28.0 v1/executor/
    multiproc_executor.py:680-691: load_model, then the alignment). Nemotron-H runs V1 under 0.28 (a hybrid not
    listed): the same runner buffers whatever the dtype."""
    found = _tables(NEMOTRON_H, "-c", "8192", "--engine", "vllm==0.28.0", "--kv-cache-dtype", "auto,fp8")
    assert "V1's placeholder block table" in found["fp8_e4m3"][2]
    assert found["bf16"][0] == found["fp8_e4m3"][0]
    assert found["bf16"][1] != found["fp8_e4m3"][1]  # the cache's block does move


def test_served_budget_always_passes_the_dtype():
    """plan() asks every budget_for for the dtype served, lower-cased, with the stage where there is one; one that
    cannot take the keyword fails loudly instead of losing the dtype (session 54 review)."""
    asked = []

    def engine_like(tp, stage=None, kv_dtype="auto"):
        asked.append((tp, stage, kv_dtype))
        return "budget"

    assert served_budget(engine_like, 2, None, " FP8 ") == "budget"
    assert served_budget(engine_like, 1, "stage", "auto") == "budget"
    assert asked == [(2, None, "fp8"), (1, "stage", "auto")]
    with pytest.raises(TypeError):
        served_budget(lambda tp, stage=None: (tp, stage), 1, None, "fp8")


# verify_rejudge: records without a runner_state row


def _rejudge():
    spec = importlib.util.spec_from_file_location("verify_rejudge", ROOT / "benchmarks" / "verify_rejudge.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _qwen3_14b_record() -> dict:
    lines = (ROOT / "benchmarks" / "device_runs" / "early" / "verify_h200_2026-12-01.jsonl").read_text().splitlines()
    return next(run for run in map(json.loads, lines) if run["result"] and run["args"] == ["Qwen/Qwen3-14B"])


def test_a_record_without_runner_state_is_marked_and_taken_as_predicted():
    """benchmarks/RESULTS.md's Qwen3-14B row (verify_h200_2026-12-01.jsonl, rejudged with vLLM 0.32, whose V2 runner
    keeps penalty counts and sampler rows: 1,024 x (151,936 + 4,748) x 4 + 1,024 x 17,924 + bitmask): recorded
    before verify held the runner's buffers, so it has no runner_state row. The row is marked and, as verify takes a
    term it does not measure (verify/terms.py measured_kv_budget), subtracted at its prediction: 76 planned / 76 on
    the measured budget (77 while the script left the term out, RESULTS.md's 2026-12-05 note)."""
    module = _rejudge()
    record = _qwen3_14b_record()
    assert "runner_state" not in {t["term"] for t in record["result"]["terms"]}
    judged = module.rejudge(record)
    assert set(judged["unrecorded"]) == {"runner_state"} and judged["unrecorded"]["runner_state"] > 0.1 * 2**30
    assert "runner_state" in judged["subtracted"]
    assert (judged["plan"].max_concurrency, judged["view"].max_concurrency) == (76, 76)
    assert module.subtracted_column("runner_state", judged) == "not recorded"
    assert module.subtracted_column("weights", judged) == "yes"


def test_a_release_before_the_term_counts_it_as_0():
    """vLLM 0.26 counts no runner buffer (0.26.0 mem_utils.py:309-313): the plan predicts 0, the term is not
    subtracted and nothing is marked."""
    module = _rejudge()
    record = _qwen3_14b_record()
    record["result"]["options"] = dict(record["result"]["options"], engine="vllm==0.26.0")
    judged = module.rejudge(record)
    assert judged["unrecorded"] == {} and "runner_state" not in judged["subtracted"]
    assert module.unrecorded_terms(("weights", "runner_state"), {"weights": 1}, {"runner_state": 0}) == {}
    assert module.unrecorded_terms(("nccl",), {"nccl": None}, {"nccl": 5}) == {}  # a row measured None is a row
