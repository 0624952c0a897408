"""Every pipeline stage in an estimate (session 77): the JSON's `stages` list and the table's line.

vLLM sizes one KV cache a worker: each profiles its own memory and counts its own blocks (get_kv_cache_configs,
v1/core/kv_cache_utils.py 0.32.0:2649-2660, the memory from executor/abstract.py :162-163, one figure a worker), then
every worker takes the smallest count (:2662-2679). The plan's top-level figures are that stage's; `stages` says
what each holds.

Hand arithmetic, Llama-3.1-8B (hidden 4,096, intermediate 14,336, 32 heads, 8 KV heads, head_dim 128, vocab 128,256,
32 layers, untied LM head, bf16) on an H100, vLLM 0.32.0 (pinned), max len 131,072, max_num_batched_tokens 8,192,
max_num_seqs 1,024:

- One decoder layer: q 4,096 x 4,096 + k, v 2 x 4,096 x 1,024 + o 4,096 x 4,096 + gate/up 2 x 4,096 x 14,336 +
  down 14,336 x 4,096 + two norms 2 x 4,096 = 218,112,000 parameters = 436,224,000 B. kvplan spreads the final norm
  (4,096 x 2 = 8,192 B) over the 32 layers, 256 B each: 436,224,256 B a layer.
- Embedding and LM head: 128,256 x 4,096 x 2 B = 1,050,673,152 B each (stage 0 holds the embedding, the last stage
  the LM head).
- -pp 3 splits 32 layers as get_pp_indices does (distributed/utils.py): 10 each, the 2 left over to the stages
  before the last: 11, 11, 10 -> layers [0, 11), [11, 22), [22, 32).
    stage 0: 11 x 436,224,256 + 1,050,673,152 = 5,849,139,968 B
    stage 1: 11 x 436,224,256                 = 4,798,466,816 B
    stage 2: 10 x 436,224,256 + 1,050,673,152 = 5,412,915,712 B
- A later stage receives the hidden state and residual, 2 x 8,192 x 4,096 x 2 B = 134,217,728 B (runner_state),
  and its forward holds one fewer [8,192, 4,096] bf16 buffer than stage 0's (the residual is that received buffer):
  stage 0's profile peak is 8,192 x 4,096 x 2 = 67,108,864 B higher.
- The last stage alone builds Model Runner V2's sampler: penalty counts 1,024 x (128,256 + 128,256 / 32) x 4 =
  541,753,344 B, other sampler rows 1,024 x 17,924 = 18,354,176 B, the grammar bitmask 1,024 x (4,008 + 1) x 4 =
  16,420,864 B: 576,528,384 B. Its sampler pass (0.31 GiB) stays under the 0.81 GiB forward, so its peak is stage 1's.
- So budget(1) - budget(0) = 1,050,673,152 (weights) + 67,108,864 (peak) - 134,217,728 (inputs) = 983,564,288 B,
  and budget(1) - budget(2) = (5,412,915,712 - 4,798,466,816) + 576,528,384 = 1,190,977,280 B: stage 2 has the
  smallest budget.
- One block, 16 tokens of K and V: 16 x 2 x 8 x 128 x 2 B = 65,536 B a layer; stage 0 and 1: 11 x 65,536 =
  720,896 B, stage 2: 10 x 65,536 = 655,360 B. Stage 0 has 0.98 GB less than stage 1 at the same block, and stage 2
  only 0.21 GB less than stage 0 at a block 10 % smaller: stage 0 has the fewest blocks and sets capacity, not stage
  2 (the smallest budget, the engine's available_kv_cache_bytes); the top-level budget is stage 0's.
"""

import json

from conftest import estimate_plan, run_kvplan

LLAMA = "meta-llama/Llama-3.1-8B"
LAYER, EMBED = 436_224_256, 128_256 * 4_096 * 2
INPUTS, HIDDEN, SAMPLER = 2 * 8_192 * 4_096 * 2, 8_192 * 4_096 * 2, 576_528_384
BLOCK_LAYER = 16 * 2 * 8 * 128 * 2

# a pp 1 plan's JSON keys before session 77 (main at 663d7450, Llama-3.1-8B on an H100): nothing removed, nothing
# added, the CSV's columns in their places
PP1_KEYS = ["model", "context", "kv_dtype", "kv_dtype_scheme", "tp", "pp", "pp_partition", "block_size", "tp_valid",
            "tp_errors", "tp_warnings", "kv_heads_per_gpu", "kv_bytes_per_token", "kv_bytes_per_token_per_gpu",
            "kv_bytes_per_sequence_per_gpu", "state_bytes_per_sequence_per_gpu", "kv_budget_bytes_per_gpu",
            "kv_blocks", "kv_capacity_tokens", "max_concurrency", "max_concurrency_limited_by",
            "contiguous_bytes_per_sequence_per_gpu", "contiguous_max_concurrency", "fits", "budget", "engine",
            "decode", "prefill", "suggestion", "node_gpus", "node_gpus_source", "runner"]
PP1_BUDGET_KEYS = ["kv_budget_bytes_per_gpu", "source", "gpu_name", "gpu_memory_bytes", "gpu_util", "usable_bytes",
                   "weights_bytes_per_gpu", "activation_bytes", "cuda_context_bytes", "cuda_graph_bytes", "nccl_bytes",
                   "engine", "stage", "terms"]
PP1_ENGINE_KEYS = ["name", "version", "available_kv_cache_bytes", "num_gpu_blocks", "gpu_kv_cache_tokens",
                   "max_concurrency", "starts", "refusal", "log_lines", "kv_cache_dtype", "block_size",
                   "num_kv_cache_groups", "blocks_per_request", "resident_sequences", "max_num_seqs",
                   "max_num_batched_tokens", "runner", "core"]


def _term(stage, name):
    return next((t["bytes"] for t in stage["terms"] if t["name"] == name), 0)


def test_hand_figures():
    assert LAYER == (2 * 4096 * 4096 + 2 * 4096 * 1024 + 3 * 4096 * 14336 + 2 * 4096) * 2 + 4096 * 2 // 32
    assert EMBED == 1_050_673_152 and INPUTS == 134_217_728 and HIDDEN == 67_108_864
    assert SAMPLER == 1024 * (128_256 + 128_256 // 32) * 4 + 1024 * 17_924 + 1024 * (4_008 + 1) * 4
    assert (11 * LAYER + EMBED, 11 * LAYER, 10 * LAYER + EMBED) == (5_849_139_968, 4_798_466_816, 5_412_915_712)
    assert EMBED + HIDDEN - INPUTS == 983_564_288
    assert (10 * LAYER + EMBED - 11 * LAYER) + SAMPLER == 1_190_977_280


def test_uneven_split_every_stage():
    plan = estimate_plan(LLAMA, "-pp", "3", "--gpu", "H100")
    stages = plan["stages"]
    assert [(s["stage"], s["first_layer"], s["end_layer"], s["layers"]) for s in stages] == [
        (0, 0, 11, 11), (1, 11, 22, 11), (2, 22, 32, 10)]
    assert [s["weights_bytes_per_gpu"] for s in stages] == [11 * LAYER + EMBED, 11 * LAYER, 10 * LAYER + EMBED]
    budgets = [s["kv_budget_bytes_per_gpu"] for s in stages]
    assert budgets[1] - budgets[0] == EMBED + HIDDEN - INPUTS
    assert budgets[1] - budgets[2] == (10 * LAYER + EMBED - 11 * LAYER) + SAMPLER
    assert stages[0]["activation_bytes"] - stages[1]["activation_bytes"] == HIDDEN
    assert stages[1]["activation_bytes"] == stages[2]["activation_bytes"]
    assert [_term(s, "runner_state") for s in stages] == [0, INPUTS, INPUTS + SAMPLER]
    for s in stages:  # each stage's own terms add up to its budget, its peak is its activation figure
        assert s["kv_budget_bytes_per_gpu"] == _term(s, "memory") - sum(
            t["bytes"] for t in s["terms"] if t["name"] != "memory")
        assert s["activation_bytes"] == _term(s, "profile_peak")
    # the engine's figure is the smallest worker's memory (stage 2's); the plan's budget is the capacity stage's
    # (below: stage 0, whose 11 layers make the larger block), so its KV memory and its tokens are one stage's
    assert plan["engine"]["available_kv_cache_bytes"] == min(budgets) == budgets[2]
    assert plan["kv_budget_bytes_per_gpu"] == budgets[0] and plan["budget"]["stage"] == 0
    # each stage's own count at its own block; every worker takes the smallest, stage 0's
    blocks = [b // (s["layers"] * BLOCK_LAYER) for s, b in zip(stages, budgets)]
    assert [s["kv_blocks"] for s in stages] == blocks
    assert blocks[0] < blocks[1] and blocks[0] < blocks[2]
    assert [s["sets_capacity"] for s in stages] == [True, False, False]
    assert plan["kv_blocks"] == plan["engine"]["num_gpu_blocks"] == blocks[0]


def test_ideal_pool_every_stage():
    """--engine none: the same stages, kvplan's generic budget; its blocks are budget // block too, and the stage of
    the fewest requests sets the plan."""
    plan = estimate_plan(LLAMA, "-pp", "3", "--gpu", "H100", "--engine", "none")
    stages = plan["stages"]
    assert [s["weights_bytes_per_gpu"] for s in stages] == [11 * LAYER + EMBED, 11 * LAYER, 10 * LAYER + EMBED]
    budgets = [s["kv_budget_bytes_per_gpu"] for s in stages]
    blocks = [b // (s["layers"] * BLOCK_LAYER) for s, b in zip(stages, budgets)]
    assert [s["kv_blocks"] for s in stages] == blocks
    fewest = blocks.index(min(blocks))
    assert [s["sets_capacity"] for s in stages] == [i == fewest for i in range(3)]
    assert plan["kv_budget_bytes_per_gpu"] == budgets[fewest]
    assert plan["kv_blocks"] == min(blocks)


def test_even_split_untied_head():
    """-pp 2: 16 + 16 layers; stage 0's embedding and stage 1's LM head are the same size and kvplan spreads the
    final norm over the layers, so the weights are equal (16 x 436,224,256 + 1,050,673,152 = 8,030,261,248 B); stage
    1 still has the smaller budget by its received inputs less stage 0's extra buffer, at the same block."""
    plan = estimate_plan(LLAMA, "-pp", "2", "--gpu", "H100")
    stages = plan["stages"]
    assert [s["weights_bytes_per_gpu"] for s in stages] == [16 * LAYER + EMBED] * 2 == [8_030_261_248] * 2
    budgets = [s["kv_budget_bytes_per_gpu"] for s in stages]
    assert budgets[0] - budgets[1] == INPUTS + SAMPLER - HIDDEN
    assert [s["kv_blocks"] for s in stages] == [b // (16 * BLOCK_LAYER) for b in budgets]
    assert [s["sets_capacity"] for s in stages] == [False, True]
    assert plan["kv_budget_bytes_per_gpu"] == budgets[1] and plan["budget"]["stage"] == 1


def test_pp1_keys_unchanged():
    plan = estimate_plan(LLAMA, "--gpu", "H100")
    assert list(plan) == PP1_KEYS
    assert list(plan["budget"]) == PP1_BUDGET_KEYS and list(plan["engine"]) == PP1_ENGINE_KEYS
    assert "stages" not in estimate_plan(LLAMA, "--gpu", "H100", "--engine", "none")


def test_pp_keys_and_invalid_pipeline():
    """At pp > 1 `stages` comes last; null where the plan is not laid out (32 heads do not split over tp 3)."""
    plan = estimate_plan(LLAMA, "-pp", "2", "--gpu", "H100")
    assert list(plan) == PP1_KEYS + ["stages"]
    invalid = estimate_plan(LLAMA, "-pp", "2", "-tp", "3", "--gpu", "H100")
    assert invalid["tp_valid"] is False and invalid["stages"] is None


def test_refused_before_the_memory():
    """vLLM refuses a max len past the model's own before it profiles: no worker counts blocks, none sets capacity;
    each stage's budget is still said."""
    plan = estimate_plan(LLAMA, "-pp", "2", "-c", "262144", "--gpu", "H100")
    assert plan["engine"]["refusal"] is not None
    assert [(s["kv_blocks"], s["sets_capacity"]) for s in plan["stages"]] == [(None, False), (None, False)]
    assert min(s["kv_budget_bytes_per_gpu"] for s in plan["stages"]) == plan["kv_budget_bytes_per_gpu"]


def test_table_line():
    r = run_kvplan("estimate", LLAMA, "-pp", "3", "--gpu", "H100", env={"COLUMNS": "200"})
    assert r.returncode == 0, r.stderr
    (line,) = [x for x in r.stdout.splitlines() if x.startswith("Pipeline stages")]
    assert line.startswith("Pipeline stages (tp 1): stage 0 sets capacity (")
    assert "blocks); stage 1 " in line and ", stage 2 " in line
    one = run_kvplan("estimate", LLAMA, "--gpu", "H100", env={"COLUMNS": "200"})
    assert one.returncode == 0 and "Pipeline stages" not in one.stdout


def test_csv_and_yaml_carry_stages():
    r = run_kvplan("estimate", LLAMA, "-pp", "2", "--gpu", "H100", "--format", "csv")
    assert r.returncode == 0, r.stderr
    header = r.stdout.splitlines()[0].split(",")
    assert header[-1] == "stages"
    y = run_kvplan("estimate", LLAMA, "-pp", "2", "--gpu", "H100", "--format", "yaml")
    assert y.returncode == 0 and "sets_capacity: true" in y.stdout
    assert json.loads(run_kvplan("estimate", LLAMA, "--gpu", "H100", "--format", "json").stdout)["plans"][0].get(
        "stages", "absent") == "absent"
