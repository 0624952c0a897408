"""The model runner's persistent GPU buffers in vLLM's budget (vllm_budget.runner_state) against what each release's
own constructors keep on the GPU (benchmarks/vllm_reference/runner_buffers.py -> tests/data/vllm_runner_buffers.json:
Model Runner V2's RequestState, InputBuffers, Sampler, StructuredOutputsWorker, EncoderRunner, RopeState and
BlockTables, V1's InputBatch, built by vLLM 0.27.0-0.34.0 on the meta device), and against hand arithmetic.

Why from 0.27 only: 0.26.0 utils/mem_utils.py:309-313 sums non-torch growth, the profile's torch peak growth and the
weights' load-time growth (gpu/model_runner.py DeviceMemoryProfiler), so a buffer built between the init snapshot and
the profile run is in none of them; 0.27.0 mem_utils.py:317-326 takes the free memory consumed since the snapshot
(total_consumed), which holds every buffer the runner keeps."""

import json
import math
import types
from pathlib import Path

from kvplan.engines import EngineFlags
from kvplan.engines.vllm_settings import Settings
from kvplan.engines import get_engine
from kvplan.engines.vllm_budget import (SAMPLER_REQUEST_BYTES, block_tables, extensible_budget, grammar_bitmask,
                                        group_table_width, inputs_embeds, lazy_stage_inputs, runner_state,
                                        sampler_state, stage_inputs, table_groups, table_width, token_history)
from kvplan.engines.vllm_profile import forward_peak, profile_peak
from kvplan.engines.vllm_runner import Runner, model_runner
from kvplan.engines.vllm_specs import CacheSpec
from kvplan.engines.vllm_speculative import served
from kvplan.engines.vllm_versions import behaviour
from kvplan.model.sources import resolve
from kvplan.plan.budget import BudgetTerm
from kvplan.plan.catalog import find_gpu
from kvplan.plan.sharding import pp_stages
from tests.conftest import run_kvplan

REFERENCE = json.loads((Path(__file__).parent / "data" / "vllm_runner_buffers.json").read_text())
V1, V2 = Runner("V1", True, "test"), Runner("V2", True, "test")
MiB = 2**20
PENALTIES = ("prompt_bin_mask", "output_bin_counts")
# The attributes runner_state prices, by the part that holds them (the rest is left out as under 1 MiB)
MODELLED = {"Sampler": ("allowed_token_ids", "logit_bias_token_ids", "logit_bias", "stop_token_ids",
                        "bad_word_token_ids", "bad_word_offsets", "token_ids") + PENALTIES,
            "StructuredOutputsWorker": ("grammar_bitmask", "logits_indices"),
            "EncoderRunner": ("inputs_embeds",),
            "BlockTables (initialize_kv_cache)": ("0", "slot_mappings"),
            "InputBatch": ("block_table", "slot_mapping")}


def _cases():
    """(release, case) for every release and case the reference ran."""
    return [(run["vllm"], case) for run in REFERENCE["releases"] for case in run["cases"]]


def _attribute(path: str) -> str:
    """The attribute a reference path names: `logits_processors.0.logit_bias.gpu` -> `logit_bias`."""
    parts = [p for p in path.split(".") if p != "gpu"]
    return parts[-1]


def _spec(case, multimodal=False, draft_tokens=0):
    config = types.SimpleNamespace(method="eagle", num_speculative_tokens=draft_tokens) if draft_tokens else None
    return types.SimpleNamespace(vocab_size=case["vocab"], hidden_size=case["hidden"], dtype="bf16",
                                 multimodal=multimodal, draft=types.SimpleNamespace(config=config))


def _settings(case):
    return Settings(case["max_model_len"], case["max_num_batched_tokens"], case["max_num_seqs"], 2)


def test_every_release_from_0_27_keeps_the_same_sampler_rows():
    """V2's sampler keeps, beside its penalty counts, fixed-width rows a sequence: 0.32.0 sample/logit_bias.py:20-22
    (1,024 allowed ids, 1,024 bias ids, 1,024 float32 biases, 128 stop ids), bad_words.py:27-36 (envs.py:115-116
    VLLM_MAX_BAD_WORDS_TOTAL_TOKENS 1,024 ids, VLLM_MAX_NUM_BAD_WORDS 128 + 1 offsets), logprob.py:244-250
    (sampling_params.py:32 MAX_LOGPROB_TOKEN_IDS 128), int32 or float32: 4 x (3 x 1,024 + 128 + 1,024 + 129 + 128)
    = 17,924 B."""
    assert SAMPLER_REQUEST_BYTES == 4 * (3 * 1024 + 128 + 1024 + 129 + 128) == 17_924
    for release, case in _cases():
        rows = case["runners"]["V2"]["Sampler"]
        own = sum(size for path, size in rows.items()
                  if not path.startswith("req_states.") and _attribute(path) not in PENALTIES)
        assert own == case["max_num_seqs"] * SAMPLER_REQUEST_BYTES, (release, case["name"])
        assert sampler_state(_settings(case), V2, release) == own
        assert sampler_state(_settings(case), V1, release) == 0


def test_the_structured_output_bitmask():
    """0.32.0 gpu/structured_outputs.py:84-89: int32 [max_num_logits, cdiv(vocab, 32)] and int32 [max_num_logits],
    max_num_logits = max_num_seqs x decode_query_len (model_runner.py:518-520); Llama-3.1-8B at 1,024 sequences:
    1,024 x (4,008 + 1) x 4 = 16,420,864 B; three draft tokens make four rows a sequence."""
    for release, case in _cases():
        built = sum(case["runners"]["V2"]["StructuredOutputsWorker"].values())
        assert grammar_bitmask(_spec(case), _settings(case), V2, release) == built, (release, case["name"])
    llama = next(case for _, case in _cases() if case["name"] == "Llama-3.1-8B 32K")
    assert grammar_bitmask(_spec(llama), _settings(llama), V2, "0.32.0") == 16_420_864
    assert grammar_bitmask(_spec(llama, draft_tokens=3), _settings(llama), V2, "0.32.0") == 4 * 16_420_864
    assert grammar_bitmask(_spec(llama), _settings(llama), V1, "0.32.0") == 0  # V1 builds its bitmask per step


def test_the_embeddings_buffer():
    """V2 builds [max_num_batched_tokens, hidden] embeddings for a multimodal model's first stage (EncoderRunner,
    gpu/mm/encoder_runner.py:58 in 0.32.0); V1 for every model on every stage (gpu_model_runner.py:811-813):
    8,192 x 4,096 x 2 = 67,108,864 B for Llama-3.1-8B's shape."""
    for release, case in _cases():
        built = case["runners"]["V2"]["EncoderRunner"]["inputs_embeds"]
        assert inputs_embeds(_spec(case, multimodal=True), _settings(case), V2, release) == built
        assert inputs_embeds(_spec(case), _settings(case), V2, release) == 0
        if release < "0.34":
            assert inputs_embeds(_spec(case), _settings(case), V1, release) == built
    llama = next(case for _, case in _cases() if case["name"] == "Llama-3.1-8B 32K")
    assert inputs_embeds(_spec(llama), _settings(llama), V1, "0.32.0") == 8192 * 4096 * 2 == 67_108_864
    later = types.SimpleNamespace(index=1, is_last=True)
    assert inputs_embeds(_spec(llama, multimodal=True), _settings(llama), V2, "0.32.0", later) == 0


def test_block_tables_count_where_built_before_sizing():
    """V1's placeholder InputBatch (gpu_model_runner.py:701-741 in 0.32.0) holds int32 [max_num_seqs,
    cdiv(max_model_len, 16)] and an int64 slot mapping of max_num_batched_tokens, before the profile: counted.
    V2's BlockTables (gpu/block_table.py:55-81: table and input copy, slot mappings) come at initialize_kv_cache:
    after the profile's sizing (0.27-0.33), before 0.34's measured one (gpu_worker.py:936-940, :1228-1236).
    Llama-3.1-8B at 131,072 tokens: V1 1,024 x 8,192 x 4 + 8,192 x 8 = 33,619,968 B; V2 in 0.34 at block 64:
    2 x 1,024 x 2,048 x 4 + 8,192 x 8 = 16,842,752 B."""
    for release, case in _cases():
        rules = behaviour(release)
        tables = case["runners"]["V2"]["BlockTables (initialize_kv_cache)"]
        main = sum(size for path, size in tables.items() if _attribute(path) in MODELLED[
            "BlockTables (initialize_kv_cache)"])
        assert block_tables(_settings(case), V2, release, rules, measured=True) == main, (release, case["name"])
        assert block_tables(_settings(case), V2, release, rules, measured=False) == 0
        if release < "0.34":
            batch = case["runners"]["V1"]["InputBatch"]
            assert block_tables(_settings(case), V1, release, rules, False) == sum(
                size for path, size in batch.items() if path.startswith("block_table."))
    llama = next(case for _, case in _cases() if case["name"] == "Llama-3.1-8B 131K")
    assert block_tables(_settings(llama), V1, "0.33.0", behaviour("0.33.0"), False) == 33_619_968
    assert block_tables(_settings(llama), V2, "0.34.0", behaviour("0.34.0"), True) == 16_842_752


def test_what_is_left_out_is_under_a_mebibyte_each():
    """Every other tensor the reference found on the GPU (input ids, positions, M-RoPE positions, sequence
    lengths, V1's sampling parameters, V2's request rows and block-table pointers) is under 1 MiB at up to 1,024
    sequences and 16,384 tokens, as vllm_budget's comment on the left-out buffers says."""
    for release, case in _cases():
        for runner, parts in case["runners"].items():
            for part, tensors in parts.items():
                for path, size in tensors.items():
                    priced = _attribute(path) in MODELLED.get(part, ()) or path.startswith("block_table.")
                    if not priced and not (part == "Sampler" and path.startswith("req_states.")):
                        assert size < MiB, (release, runner, part, path, size)


def test_nothing_counts_before_0_27():
    """0.26.0 measured from after the weights' load (module docstring), so no buffer the runner builds before the
    profile run reached the budget; V1's intermediate tensors, made inside the profile run, are the profile peak's
    (test_v1_makes_a_later_stage_s_inputs_inside_the_profile_up_to_0_26)."""
    llama = next(case for _, case in _cases() if case["name"] == "Llama-3.1-8B 32K")
    later = types.SimpleNamespace(index=1, is_last=True)
    for runner in (V1, V2):
        term = runner_state(_spec(llama, multimodal=True), _settings(llama), runner, "0.26.0", later,
                            behaviour("0.26.0"), measured=True)
        assert term.bytes == 0 and term.source == "0: none counted here"
    assert stage_inputs(_spec(llama), _settings(llama), "0.26.0", later) == 0
    # in the profile peak instead: 2 x 8,192 x 4,096 x 2 B
    assert lazy_stage_inputs(_spec(llama), _settings(llama), V1, "0.26.0", behaviour("0.26.0"), later) == 134_217_728


def test_a_later_pipeline_stage_keeps_its_inputs():
    """[max_num_batched_tokens, hidden] hidden states and residual in the model dtype (models/llama.py:399-401
    make_empty_intermediate_tensors_factory), built by V2's load_model (gpu/model_runner.py:538-541) and V1's
    first dummy run (gpu_model_runner.py:5801-5808): 2 x 8,192 x 8,192 x 2 = 268,435,456 B at Llama-70B's width."""
    case = dict(vocab=128_256, hidden=8_192, max_model_len=32_768, max_num_batched_tokens=8_192, max_num_seqs=1_024)
    first, later = types.SimpleNamespace(index=0, is_last=False), types.SimpleNamespace(index=1, is_last=True)
    assert stage_inputs(_spec(case), _settings(case), "0.32.0", later) == 268_435_456
    assert stage_inputs(_spec(case), _settings(case), "0.32.0", first) == 0
    assert stage_inputs(_spec(case), _settings(case), "0.32.0", None) == 0
    # the first stage has no sampler rows; the last no embeddings buffer on V2
    assert sampler_state(_settings(case), V2, "0.32.0", first) == 0


def _runner_state(*args) -> int:
    (row,) = json.loads(run_kvplan("estimate", *args, "--gpu", "h100", "--format", "json").stdout)["plans"]
    return next(t["bytes"] for t in row["budget"]["terms"] if t["name"] == "runner_state")


def test_bundled_models_in_the_budget():
    """Llama-3.1-8B (V2, text): penalty counts 1,024 x (128,256 + 4,008) x 4, sampler rows, bitmask; Qwen2.5-VL-7B
    (V2, multimodal, vocab 152,064, hidden 3,584): the same for its vocabulary plus 8,192 x 3,584 x 2 embeddings;
    under 0.34 each adds its block tables at block 64 (32,768 tokens: 512 blocks)."""
    llama = 1024 * (128_256 + 4_008) * 4 + 1024 * 17_924 + 1024 * (4_008 + 1) * 4
    qwen_vl = 1024 * (152_064 + 4_752) * 4 + 1024 * 17_924 + 1024 * (4_752 + 1) * 4 + 8192 * 3584 * 2
    tables = 2 * 1024 * 512 * 4 + 8192 * 8
    assert _runner_state("meta-llama/Llama-3.1-8B", "-c", "32768") == llama
    assert _runner_state("Qwen/Qwen2.5-VL-7B-Instruct", "-c", "32768") == qwen_vl
    assert _runner_state("meta-llama/Llama-3.1-8B", "-c", "32768", "--engine", "vllm==0.34.0") == llama + tables
    # text-only (config/model.py:912-918): no EncoderRunner, so no embeddings buffer
    assert _runner_state("Qwen/Qwen2.5-VL-7B-Instruct", "-c", "32768", "--language-model-only") == \
        qwen_vl - 8192 * 3584 * 2


def test_the_profiled_figure_predates_the_block_tables():
    """0.34 profiles before initialize_kv_cache (gpu_worker.py determine_available_memory, then
    initialize_from_config :936-940): its profiled figure leaves out the block tables the measured one counts."""
    gpu = find_gpu("h100")
    memory = gpu.memory_bytes
    terms = {"weights": BudgetTerm("weights", 16 * 2**30, "test"),
             "profile_peak": BudgetTerm("profile_peak", 2**30, "test"),
             "non_torch": BudgetTerm("non_torch", 2**29, "test"),
             "runner_state": BudgetTerm("runner_state", 10 * MiB, "test")}
    plain = extensible_budget(gpu, memory, memory, 1.0, "0.34.0", None, EngineFlags(), 1, terms, 0)
    tables = extensible_budget(gpu, memory, memory, 1.0, "0.34.0", None, EngineFlags(), 1, terms, 0, 4 * MiB)
    assert tables.kv_budget_bytes_per_gpu == plain.kv_budget_bytes_per_gpu
    assert tables.measured.profiled_bytes - plain.measured.profiled_bytes == 4 * MiB
    assert math.isclose(plain.measured.profiled_bytes, memory - 16 * 2**30 - 2**30 - 2**29 - 10 * MiB)


def test_table_widths_round_up_to_128_token_runs():
    """0.34.0 v1/kv_cache_interface.py:337-349 get_block_table_width (V1's 0.27.0 block_table.py:20-40): a row is
    rounded up to a multiple of 128 / gcd(128, block) blocks. Block 16: multiples of 8 (63 -> 64); 64: of 2 (2,047 ->
    2,048); 528 (gcd 16): of 8 (249 -> 256); 4: of 32."""
    assert table_width(63, 16) == 64 and table_width(64, 16) == 64
    assert table_width(2047, 64) == 2048 and table_width(2048, 64) == 2048
    assert table_width(249, 528) == 256
    assert table_width(262_144, 4) == 262_144 and table_width(1, 4) == 32


def test_a_group_s_row():
    """0.34.0 gpu/model_runner.py:684-709: spec.max_num_blocks_per_req then get_block_table_width with the spec's
    alignment. A sliding window keeps AttentionSpec's cdiv(max_len, block) (kv_cache_interface.py:621-626; no
    override in SlidingWindowSpec :915-981), so its row is as wide as full attention's. A Mamba state (:1176-1186, no
    alignment :1165-1166): cdiv(max_len, block) + speculative blocks in "align" mode, 1 + them otherwise."""
    sliding = CacheSpec("sliding", 64, 1, window=1024)
    assert group_table_width(sliding, 131_072, True) == 2048 == group_table_width(CacheSpec("full", 64, 1), 131_072,
                                                                                  True)
    assert group_table_width(CacheSpec("full", 64, 1), 131_000, True) == 2048  # 2,047 rounded up to 2,048
    mamba = CacheSpec("mamba", 1056, 1, speculative_blocks=2)
    assert group_table_width(mamba, 131_072, True) == 125 + 2  # cdiv(131,072, 1,056) = 125, unaligned
    assert group_table_width(mamba, 131_072, False) == 1 + 2


def _served(name, version):
    engine = get_engine(f"vllm=={version}")
    return engine, engine.on_gpu(served(resolve(name), engine, 1), find_gpu("h100"))


def test_v2_builds_a_table_for_every_kv_cache_group():
    """0.34.0 gpu/block_table.py:66-94: for each KV-cache group a table and an input copy, int32 [max_num_seqs,
    row], and int64 slot mappings [groups, max_num_batched_tokens]. Gemma-3-27B's 62 layers are 52 sliding and 10
    full (sliding_window_pattern 6); v1/core/kv_cache_planning.py:570-577 groups 10 layers a group (52 >= 1.5 x 10),
    so 6 sliding groups and 1 full: 7 x (2 x 1,024 x 2,048 x 4 + 8,192 x 8) = 7 x 16,842,752 B at 131,072 tokens,
    block 64. gpt-oss-120b alternates 18 sliding and 18 full layers: 2 groups."""
    engine, gemma = _served("google/gemma-3-27b-it", "0.34.0")
    gpu = find_gpu("h100")
    settings = engine.settings(131_072, gpu, 1, None, None, gemma)
    assert (settings.max_num_seqs, settings.max_num_batched_tokens) == (1024, 8192)
    groups = table_groups(gemma, 1, settings, None, engine.rules, "0.34.0", gpu)
    assert [g.kind for g in groups].count("sliding") == 6 and [g.kind for g in groups].count("full") == 1
    assert {g.block_size for g in groups} == {64}
    tables = block_tables(settings, V2, "0.34.0", engine.rules, True, groups)
    assert tables == 7 * 16_842_752 == 117_899_264
    budget = engine.budget(gemma, 1, gpu, None, context=131_072)
    assert budget.measured.kv_init_bytes == tables  # built at KV-cache init: the profiled figure leaves them out
    runner = next(t for t in budget.terms if t.name == "runner_state")
    assert "7 KV-cache groups" in runner.source
    engine, oss = _served("openai/gpt-oss-120b", "0.34.0")
    assert len(table_groups(oss, 1, settings, None, engine.rules, "0.34.0", gpu)) == 2
    assert engine.budget(oss, 1, gpu, None, context=131_072).measured.kv_init_bytes == 2 * 16_842_752


def test_the_block_size_asked_sets_the_tables():
    """--block-size: V1's placeholder takes cache_config.block_size (0.32.0 gpu_model_runner.py:701-703), set by the
    flag before the runner is built; 0.34's groups take it as their block. Llama-3.1-8B at 131,072 tokens: V1 at
    block 32 1,024 x 4,096 x 4 + 8,192 x 8 = 16,842,752 B; V2 under 0.34 at block 16 2 x 1,024 x 8,192 x 4 +
    8,192 x 8 = 67,174,400 B (at 64: 16,842,752)."""
    llama = next(case for _, case in _cases() if case["name"] == "Llama-3.1-8B 131K")
    assert block_tables(_settings(llama), V1, "0.32.0", behaviour("0.32.0"), False, block_size=32) == 16_842_752
    rules = behaviour("0.34.0")
    engine, spec = _served("meta-llama/Llama-3.1-8B", "0.34.0")
    gpu = find_gpu("h100")
    for block, expected in ((16, 67_174_400), (None, 16_842_752)):
        budget = engine.budget(spec, 1, gpu, None, context=131_072, block_size=block)
        assert budget.measured.kv_init_bytes == expected
    assert rules.block_size == 64


def test_the_runner_keeps_the_length_asked_through_auto_fit():
    """--max-model-len auto fits a shorter length after the profile (0.28.0 v1/engine/core.py:310-316:
    update_max_model_len rebuilds nothing), so V1's placeholder table and a drafter's token history keep the length
    asked: at 131,072 asked and (say) 3,360 planned, V1's table is 1,024 x 8,192 x 4 + 8,192 x 8 = 33,619,968 B, not
    1,024 x 216 x 4 + 65,536 (cdiv(3,360, 16) = 210 rounded up to 216)."""
    fitted = Settings(3360, 8192, 1024, 2)
    rules = behaviour("0.28.0")
    assert block_tables(fitted, V1, "0.28.0", rules, False, built_len=131_072) == 33_619_968
    assert block_tables(fitted, V1, "0.28.0", rules, False) == 1024 * 216 * 4 + 65_536
    ngram = types.SimpleNamespace(draft=types.SimpleNamespace(config=types.SimpleNamespace(method="ngram_gpu")))
    assert token_history(ngram, fitted, V1, "0.28.0", 131_072) == 1024 * 131_072 * 4
    # end to end: gpt-oss-120b under 0.28 runs V1 (MoE, not listed) and its table stays 131,072. 0.28's auto-fit sums
    # every group's blocks (_max_memory_usage_bytes_from_groups, kv_cache_utils.py 0.28.0:1878-1938): 18 sliding
    # (window 128, layer 0) + 18 full layers, a page 2 x 8 x 64 x 2 B x 16 = 32,768 B, a block 18 x 32,768 =
    # 589,824 B; a window holds cdiv(127 + 2 x 8,192 in flight, 16) + 1 = 1,033 blocks, so the length fitted is
    # (available // 589,824 - 1,033) x 16: 128,080 at this budget's 5,330,865,374 B (9,038 blocks). 0.14.0-0.18.1
    # price the first group (the window) alone, one batch in flight: (cdiv(127 + 8,192, 16) + 1) x 589,824 =
    # 307,298,304 B, under any budget here, so they fit the whole 131,072.
    out = run_kvplan("estimate", "openai/gpt-oss-120b", "-c", "auto", "--engine", "vllm==0.28.0", "--gpu", "h100",
                     "--gpu-memory", "76GiB", "--format", "json")
    (row,) = json.loads(out.stdout)["plans"]
    source = next(t["source"] for t in row["budget"]["terms"] if t["name"] == "runner_state")
    blocks = row["engine"]["available_kv_cache_bytes"] // 589_824
    assert row["context"] == (blocks - 1_033) * 16 < 131_072 and "max_model_len 131,072 / 16" in source
    first_group = run_kvplan("estimate", "openai/gpt-oss-120b", "-c", "auto", "--engine", "vllm==0.18.1", "--gpu",
                             "h100", "--gpu-memory", "76GiB", "--format", "json")
    assert json.loads(first_group.stdout)["plans"][0]["context"] == 131_072


def test_v1_makes_a_later_stage_s_inputs_inside_the_profile_up_to_0_26():
    """V1 makes a later stage's intermediate tensors in its first dummy run (0.26.0 gpu_model_runner.py:6050-6057),
    inside profile_run, so 0.26's torch peak growth holds them: 2 x 8,192 x 8,192 x 2 = 268,435,456 B at
    Llama-70B's width. V2 makes them in load_model (0.26.0 gpu/model_runner.py:367-375), outside both the weights'
    profiler and the profile; from 0.27 stage_inputs counts them for both runners. The first stage has none."""
    case = dict(vocab=128_256, hidden=8_192, max_model_len=32_768, max_num_batched_tokens=8_192, max_num_seqs=1_024)
    first, later = types.SimpleNamespace(index=0, is_last=False), types.SimpleNamespace(index=1, is_last=True)
    rules = behaviour("0.26.0")
    assert lazy_stage_inputs(_spec(case), _settings(case), V1, "0.26.0", rules, later) == 268_435_456
    assert lazy_stage_inputs(_spec(case), _settings(case), V1, "0.20.0", behaviour("0.20.0"), later) == 268_435_456
    assert lazy_stage_inputs(_spec(case), _settings(case), V2, "0.26.0", rules, later) == 0
    assert lazy_stage_inputs(_spec(case), _settings(case), V1, "0.26.0", rules, first) == 0
    assert lazy_stage_inputs(_spec(case), _settings(case), V1, "0.27.0", behaviour("0.27.0"), later) == 0


def test_a_later_stage_s_residual_is_its_input_buffer():
    """0.26.0 models/llama.py:414-417 starts a later stage from the runner's views of its intermediate tensors and
    every layer's fused add-norm updates the residual in place (llama.py:317-325; kernels/vllm_c.py:50-55
    inplace=True), so the forward allocates one hidden width a token fewer there: 8,192 x 8,192 x 2 = 128 MiB
    for Llama-3.1-70B. End to end at tp 2, pp 2 under 0.20 (V1): the 256 MiB of intermediate tensors come on top of
    the last stage's peak (its sampler pass, which they outlive), and the first stage has none."""
    engine, spec = _served("meta-llama/Llama-3.1-70B-Instruct", "0.20.0")
    rules = behaviour("0.20.0")
    later = forward_peak(spec, 2, 8192, rules, later_stage=True)
    assert forward_peak(spec, 2, 8192, rules) - later == 8192 * 8192 * 2
    gpu = find_gpu("h100")
    first, last = pp_stages(spec.num_hidden_layers, 2)
    peak = {s.index: engine.budget(spec, 2, gpu, None, stage=s, context=32_768).activation_bytes
            for s in (first, last)}
    settings = engine.settings(32_768, gpu, 2, None, None, spec)
    runner = model_runner(spec, rules, gpu)
    assert runner.name == "V1"
    assert peak[1] == 268_435_456 + profile_peak(spec, 2, last, settings, rules, runner, gpu=gpu)[0]
    assert peak[0] == forward_peak(spec, 2, 8192, rules)
