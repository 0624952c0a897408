"""`kvplan check` says what `kvplan estimate` explains of the same plan: what --enable-prefix-caching and
--mamba-block-size did (warnings on their keys, as the Mamba dtypes' and --disable-sliding-window's), and, as notices
that neither fail nor warn, the requests held against vLLM's logged "Maximum concurrency", the length a RoPE scaling
derives, a CUDA-graph reserve left out, a cache sized by num_gpu_blocks_override, the DP ranks the figures are one of,
the drafter's memory. The words are estimate's own functions' (render/estimate.py, engines/vllm_prefix_flag.py), so
the tests compare against estimate and check the numbers each sentence states by hand.

vLLM read by hand:
- 0.14.1 model_executor/models/config.py:455-459 ("all" mode, prefix caching on): base_chunk_size = mamba_block_size
  or the model's chunk; attention tokens a state = cdiv(mamba_page, attention page of one token); the block =
  lcm(base, 16) x cdiv(tokens, lcm(base, 16)); :497-505 logs the Mamba page padded by 100 x (block page - state) /
  state. :532-548 NemotronH keeps its SSM state in float16 where the config names none.
- 0.14.1 model_executor/layers/mamba/mamba_utils.py:121-144 mamba2_state_shape: conv (conv_kernel - 1, intermediate +
  2 x n_groups x state), temporal (heads, head_dim, state); models/nemotron_h.py:797 intermediate = heads x head_dim.
- 0.11.0 model_executor/models/config.py:296-298: MambaModelConfig sets enable_prefix_caching = False whatever asked.
- 0.32.0 config/vllm.py:2455-2463: --cudagraph-capture-sizes keeps only sizes <= max_num_batched_tokens.
- 0.32.0 v1/core/sched/scheduler.py:129 max_num_running_reqs = max_num_seqs; v1/core/kv_cache_utils.py:1195-1220
  and v1/kv_cache_interface.py:602-607: "Maximum concurrency" = blocks / cdiv(max_model_len, block_size) for full
  attention, logged "%.2fx" (kv_cache_utils.py:2327-2329).
- 0.32.0 config/model.py:2541-2550: --disable-sliding-window caps the derived length to the window; :2616 multiplies
  the derived length by the RoPE factor (a linear factor 2 over 4,096 positions: 8,192, as vLLM 0.34.0 itself gives
  it in tests/data/vllm_rope_max_len.json, case linear_rope_type_2).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.conftest import deployments_file, line_of, run_kvplan

NEMOTRON, JAMBA, GPT_OSS = "nvidia/Nemotron-H-8B-Base-8K", "ai21labs/AI21-Jamba-1.5-Mini", "openai/gpt-oss-20b"
GEMMA3, LLAMA, OLMO = "google/gemma-3-12b-it", "meta-llama/Llama-3.1-8B", "allenai/Olmo-3.1-32B-Instruct"
DATA = Path(__file__).resolve().parent / "data"


def _checked(path, env=None) -> tuple:
    """(exit code, {name: result}) of `kvplan check --file path --format json`."""
    r = run_kvplan("check", "--file", path, "--format", "json", env=env)
    assert r.returncode in (0, 1), r.stderr
    return r.returncode, {row["name"]: row for row in json.loads(r.stdout)["results"]}


def _said(row, level: str, key) -> list:
    return [(f["line"], f["message"]) for f in row["findings"] if (f["level"], f["key"]) == (level, key)]


def _rules(*args) -> list:
    """estimate's notes on the model as served (--format json's model.rules, its text's "Rules:" lines)."""
    r = run_kvplan("estimate", *args, "--gpu", "H100", "--format", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["model"]["rules"]


def test_prefix_caching_and_the_mamba_block_are_said_on_their_keys(tmp_path):
    path = deployments_file(tmp_path, f"""  - name: chunk
    model: {NEMOTRON}
    tp: 1
    gpu: H100
    context: 8192
    engine: vllm==0.14.1
    enable_prefix_caching: true
  - name: block
    model: {NEMOTRON}
    tp: 1
    gpu: H100
    context: 8192
    engine: vllm==0.14.1
    enable_prefix_caching: true
    mamba_block_size: 256
""")
    _, rows = _checked(path)
    chunk, block = rows["chunk"], rows["block"]
    asked = ('prefix caching on as asked: Mamba states in "all" mode, a state every block.')
    for row, name in ((chunk, "chunk"), (block, "block")):
        assert _said(row, "warning", "enable_prefix_caching") == [
            (line_of(path, "enable_prefix_caching", f"name: {name}"), asked)]
    ((line, said),) = _said(block, "warning", "mamba_block_size")
    assert line == line_of(path, "mamba_block_size: 256", "name: block")
    assert said.startswith("mamba_block_size 256 is the base of the Mamba block in place of the model's chunk")
    # estimate's note for the same flags, in its flag's spelling: one text
    rules = _rules(NEMOTRON, "-c", "8192", "--engine", "vllm==0.14.1", "--enable-prefix-caching",
                   "--mamba-block-size", "256")
    assert said.rstrip(".").replace("mamba_block_size", "--mamba-block-size") in rules
    assert asked.rstrip(".") in rules
    # what it states, by hand: a Mamba-2 state of conv (4 - 1) x (128 x 64 + 2 x 8 x 128) bf16 values and SSM
    # 128 x 64 x 128 float16 values is 2,158,592 bytes, 527 tokens of the 4,096-byte attention page (8 KV heads x
    # 128 x K,V x 2 bytes); the block is 128 x cdiv(527, 128) = 640 on the model's chunk, 256 x cdiv(527, 256) = 768
    state = 3 * (128 * 64 + 2 * 8 * 128) * 2 + 128 * 64 * 128 * 2
    per_token = 8 * 128 * 2 * 2
    assert (state, math.ceil(state / per_token)) == (2_158_592, 527)
    assert (chunk["engine"]["block_size"], block["engine"]["block_size"]) == (128 * 5, 256 * 3) == (640, 768)
    padded = 100 * (768 * per_token - state) / state
    assert f"Padding mamba page size by {padded:.2f}%" in " ".join(block["engine"]["log_lines"])  # 45.73%


def test_vllm_0_11_turning_prefix_caching_off_is_said_and_changes_nothing(tmp_path):
    path = deployments_file(tmp_path, f"""  - name: asked
    model: {JAMBA}
    tp: 2
    gpu: H100
    context: 8192
    engine: vllm==0.11.0
    enable_prefix_caching: true
  - name: plain
    model: {JAMBA}
    tp: 2
    gpu: H100
    context: 8192
    engine: vllm==0.11.0
""")
    _, rows = _checked(path)
    ((line, said),) = _said(rows["asked"], "warning", "enable_prefix_caching")
    assert line == line_of(path, "enable_prefix_caching", "name: asked")
    assert said.startswith("vLLM 0.11.0 turns prefix caching off for a model with Mamba layers whatever "
                           "enable_prefix_caching says")  # the file's key, as the file spells it
    assert "0.11.0:296-298" in said
    assert rows["asked"]["max_concurrency"] == rows["plain"]["max_concurrency"]  # off, as without the key
    assert rows["asked"]["engine"]["num_gpu_blocks"] == rows["plain"]["engine"]["num_gpu_blocks"]


def test_no_capture_size_left_means_no_graph_reserve(tmp_path):
    path = deployments_file(tmp_path, f"""  - name: default
    model: {GPT_OSS}
    tp: 1
    gpu: H100
    context: 8192
  - name: capped
    model: {GPT_OSS}
    tp: 1
    gpu: H100
    context: 8192
    max_cudagraph_capture_size: 64
  - name: none-left
    model: {GPT_OSS}
    tp: 1
    gpu: H100
    context: 8192
    cudagraph_capture_sizes: [100000]
""")
    _, rows = _checked(path)
    none_left = rows["none-left"]
    assert none_left["engine"]["max_num_batched_tokens"] < 100_000  # so vLLM keeps no size
    assert _said(none_left, "notice", "cudagraph_capture_sizes") == [
        (line_of(path, "cudagraph_capture_sizes", "name: none-left"),
         "no CUDA-graph reserve: no capture size is left, so nothing is captured.")]
    # the reserve estimate charges by default, and only it, comes back to the KV budget
    r = run_kvplan("estimate", GPT_OSS, "--gpu", "H100", "-c", "8192", "--format", "json")
    (graphs,) = [t["bytes"] for t in json.loads(r.stdout)["plans"][0]["budget"]["terms"] if t["name"] == "cuda_graphs"]
    assert graphs > 0
    assert none_left["kv_budget_bytes_per_gpu"] - rows["default"]["kv_budget_bytes_per_gpu"] == graphs
    # estimate's budget line says the same words
    text = run_kvplan("estimate", GPT_OSS, "--gpu", "H100", "-c", "8192", "--cudagraph-capture-sizes", "100000",
                      env={"COLUMNS": "400"}).stdout
    assert "; no CUDA-graph reserve: no capture size is left, so nothing is captured." in text
    # a lower cap still captures graphs: the same reserve, the same budget, nothing more to say (estimate says none)
    assert rows["capped"]["kv_budget_bytes_per_gpu"] == rows["default"]["kv_budget_bytes_per_gpu"]
    assert not [f for f in rows["capped"]["findings"] if "graph" in f["message"]]


def test_disable_sliding_window_on_gemma_3_caps_the_length_it_says(tmp_path):
    path = deployments_file(tmp_path, f"""  - name: capped
    model: {GEMMA3}
    tp: 1
    gpu: H100
    disable_sliding_window: true
  - name: longer
    model: {GEMMA3}
    tp: 1
    gpu: H100
    context: 1025
    disable_sliding_window: true
""")
    code, rows = _checked(path)
    ((line, said),) = _said(rows["capped"], "warning", "disable_sliding_window")
    assert line == line_of(path, "disable_sliding_window", "name: capped")
    # 48 layers, every 6th global (sliding_window_pattern 6): 40 sliding ones, window 1,024
    assert said.startswith(f"disable_sliding_window: its {48 - 48 // 6} sliding-window layers attend in full")
    assert "capped to the window, 1,024 tokens" in said
    assert rows["capped"]["context"] == 1024 and rows["capped"]["passed"]  # the length it says, vLLM's default
    assert code == 1 and not rows["longer"]["passed"]  # and a longer one is refused, as it says
    rules = _rules(GEMMA3, "--disable-sliding-window")
    assert said.rstrip(".").replace("disable_sliding_window", "--disable-sliding-window").replace(
        "longer context", "longer --max-model-len") in rules


def test_the_length_a_rope_scaling_derives_is_said_on_context(tmp_path):
    case = next(c for c in json.loads((DATA / "vllm_rope_max_len.json").read_text())["cases"]
                if c["name"] == "linear_rope_type_2")
    assert (case["default"], case["probe"], case["probe_refused"]) == (8192, 8193, True)  # vLLM 0.34.0's own
    (tmp_path / "config.json").write_text(json.dumps(case["config"]))
    path = deployments_file(tmp_path, """  - name: default
    model: config.json
    tp: 1
    gpu: H100
    engine: vllm==0.34.0
  - name: probe
    model: config.json
    tp: 1
    gpu: H100
    engine: vllm==0.34.0
    context: 8193
""")
    code, rows = _checked(path)
    ((line, said),) = _said(rows["default"], "notice", "context")
    assert line == rows["default"]["line"]  # no context key: the entry's line
    assert said.startswith(f"RoPE scaling: vLLM derives a max model length of {4096 * 2:,} = ")
    assert rows["default"]["context"] == 8192 and rows["default"]["passed"]
    assert code == 1 and not rows["probe"]["passed"]
    ((line, _),) = _said(rows["probe"], "notice", "context")
    assert line == line_of(path, "context: 8193", "name: probe")
    r = run_kvplan("estimate", tmp_path / "config.json", "--engine", "vllm==0.34.0", "--format", "json")
    assert said.rstrip(".") in json.loads(r.stdout)["model"]["rules"]


def test_olmo_3_1_yarn_length_before_0_30(tmp_path):
    """0.11.0 config/model.py:1859-1862: YaRN's length is original_max_position_embeddings x factor."""
    path = deployments_file(tmp_path, f"  - name: olmo\n    model: {OLMO}\n    tp: 2\n    gpu: H100\n"
                                      f"    engine: vllm==0.11.0\n    context: 8192\n")
    _, rows = _checked(path)
    ((_, said),) = _said(rows["olmo"], "notice", "context")
    assert said.startswith(f"RoPE scaling: vLLM derives a max model length of {8192 * 8:,} = YaRN's "
                           f"original_max_position_embeddings 8,192 x factor 8")


def test_requests_against_vllms_logged_concurrency_is_a_notice(tmp_path):
    path = deployments_file(tmp_path, f"  - name: capped\n    model: {LLAMA}\n    tp: 1\n    gpu: H100\n"
                                      f"    context: 8192\n    max_num_seqs: 8\n")
    env = {"GITHUB_ACTIONS": "true", "COLUMNS": "400"}
    code, rows = _checked(path)
    row = rows["capped"]
    blocks = row["engine"]["num_gpu_blocks"]
    logged = blocks / math.ceil(8192 / 16)  # full attention: blocks over cdiv(max_model_len, block_size)
    assert _said(row, "notice", "max_num_seqs") == [
        (line_of(path, "max_num_seqs", "name: capped"),
         f"max len 8,192 bf16 tp 1: requests 8 is what the engine holds at once; vLLM logs \"Maximum concurrency\" "
         f"{logged:.2f}x (max_num_seqs caps them).")]
    assert row["max_concurrency"] == 8 < logged
    # a notice neither fails nor warns: exit 0, verdict "pass", and GitHub gets a ::notice, not a ::warning
    assert code == 0 and row["passed"] and row["warnings"] == []
    r = run_kvplan("check", "--file", path, env=env)
    assert r.returncode == 0 and "pass, warned" not in r.stdout and " pass" in r.stdout
    assert "notice: capped (" in r.stdout and "requests 8 is what the engine holds at once" in r.stdout
    (annotation,) = [a for a in r.stderr.splitlines() if a.startswith("::")]
    cap_line = line_of(path, "max_num_seqs", "name: capped")
    assert annotation.startswith("::notice file=") and f",line={cap_line}::capped: max len 8,192" in annotation
    # estimate prints the same sentence for the same plan
    text = run_kvplan("estimate", LLAMA, "--gpu", "H100", "-c", "8192", "--max-num-seqs", "8",
                      env={"COLUMNS": "400"}).stdout
    assert (f"requests 8 is what the engine holds at once; vLLM logs \"Maximum concurrency\" {logged:.2f}x "
            f"(--max-num-seqs caps them).") in text


def test_a_cap_that_vllms_rounded_figure_hides_is_still_said(tmp_path):
    """EXAONE-4.0-32B at 8K with max_num_seqs 5: vLLM logs 5.25x, which rounds down to the 5 the cap runs, so no
    concurrency note; estimate's start-up block still says the cap holds them, and so does check. By hand: 64 layers
    of 8 KV heads of 128 in 4 groups of 16 (one global, three of a 4,096-token window), a block 16 layers x 16 tokens
    x 8 x 128 x 2 x 2 = 1 MiB; the KV budget 11,281,985,231 B (at vLLM's 0.705 GiB graph term) holds 10,759 blocks;
    a request takes 512 global blocks and 3 x (cdiv(min(4,095 + 8,192, 8,192), 16) + 1) = 3 x 513 windowed ones
    (vLLM 0.32.0 v1/kv_cache_interface.py:859-885, SlidingWindowSpec.max_admission_blocks_per_request), 2,051:
    10,759 / 2,051 = 5.25. (Until session 67, with vLLM's graph term at 1.25 GiB, max_num_seqs 4 showed it:
    10,201 blocks, 4.97x.)"""
    path = deployments_file(tmp_path, "  - name: five\n    model: LGAI-EXAONE/EXAONE-4.0-32B\n    tp: 1\n"
                                      "    gpu: H100\n    context: 8192\n    max_num_seqs: 5\n")
    _, rows = _checked(path)
    row = rows["five"]
    assert row["engine"]["num_gpu_blocks"] == 10_759 and row["engine"]["blocks_per_request"] == 2_051
    assert row["max_concurrency"] == 5 == int(row["engine"]["max_concurrency"]) < row["engine"]["max_concurrency"]
    assert _said(row, "notice", "max_num_seqs") == [
        (line_of(path, "max_num_seqs", "name: five"), "resident: 5 requests (max_num_seqs caps them).")]


def test_data_parallel_override_and_drafter_notes(tmp_path):
    path = deployments_file(tmp_path, f"""  - name: dp
    model: {LLAMA}
    tp: 1
    gpu: H100
    context: 8192
    dp: 2
  - name: override
    model: {LLAMA}
    tp: 1
    gpu: H100
    context: 8192
    num_gpu_blocks_override: 3000
  - name: ngram
    model: {LLAMA}
    tp: 1
    gpu: H100
    context: 8192
    speculative_config: {{method: ngram, num_speculative_tokens: 3, prompt_lookup_max: 4}}
  - name: too-few
    model: {LLAMA}
    tp: 1
    gpu: H100
    context: 8192
    num_gpu_blocks_override: 200
  - name: vision
    model: google/gemma-3-4b-it
    tp: 1
    gpu: H100
    context: 8192
""")
    _, rows = _checked(path)
    dp, override = rows["dp"], rows["override"]
    ((line, said),) = _said(dp, "notice", "dp")
    assert line == line_of(path, "dp: 2", "name: dp")
    assert said.startswith("dp 2 (tp 1): 2 engine core(s) x 1 GPU(s) = 2 GPUs; the figures above are one DP rank's")
    assert dp["max_concurrency_total"] == 2 * dp["max_concurrency"]
    assert f"{2 * dp['max_concurrency']} requests resident in all" in said
    assert "Decode" not in said  # check times nothing: estimate's decode words stay estimate's
    # 3,000 blocks of 16 tokens x 32 layers x 8 KV heads x 128 x K,V x 2 bytes = 6,291,456,000 bytes = 5.86 GiB;
    # one block is the null block, so 2,999 // cdiv(8192, 16) = 5 requests
    ((line, said),) = _said(override, "notice", "num_gpu_blocks_override")
    assert 3000 * 16 * 32 * 8 * 128 * 2 * 2 == 6_291_456_000 and f"{6_291_456_000 / 2**30:.2f}" == "5.86"
    assert said == "the KV cache is 3,000 blocks (5.86 GiB) by num_gpu_blocks_override, not what the budget leaves."
    assert override["max_concurrency"] == 2999 // 512 == 5
    ((_, said),) = _said(rows["ngram"], "notice", "speculative_config")
    assert said.startswith("speculative_config: speculative ngram, 3 draft tokens a step, no draft weights; its "
                           "memory is counted")
    # 200 blocks hold no request of 8,192 tokens: one needs cdiv(8192, 16) = 512 blocks and the null block
    too_few = rows["too-few"]
    assert too_few["max_concurrency"] == 0 and not too_few["passed"]
    said = [text for _, text in _said(too_few, "notice", "num_gpu_blocks_override")]
    assert said[0] == "the KV cache is 200 blocks (400 MiB) by num_gpu_blocks_override, not what the budget leaves."
    assert said[1].startswith(f"num_gpu_blocks_override 200 blocks hold no request of max len; one needs "
                              f"{8192 // 16 + 1} (the null block included), and the budget holds ")
    # Gemma 3's profile run: the encoder budget (max_num_batched_tokens 8,192) over 256 tokens an image = 32 images
    # (multimodal/encoder_budget.py 0.32.0:153-182); estimate's budget line says the same words, the flag named as the
    # deployments file names it
    (said,) = [text for _, text in _said(rows["vision"], "notice", None) if "vision tower" in text]
    assert said == (f"the profile peak holds the vision tower's pass over {8192 // 256} dummy images "
                    f"(skip_mm_profiling leaves it out, as vLLM's).")


def test_a_kv_budget_without_its_unit_is_warned_as_estimate_warns_it(tmp_path):
    path = deployments_file(tmp_path, f"  - name: bytes\n    model: {LLAMA}\n    tp: 1\n    kv_budget: 40\n"
                                      f"    context: 8192\n")
    _, rows = _checked(path)
    assert _said(rows["bytes"], "warning", "kv_budget") == [
        (line_of(path, "kv_budget", "name: bytes"),
         "kv_budget 40 is 40 bytes (a bare number is bytes, as in vLLM): did you mean 40G (40 GiB) or 40GiB?")]


FLAGGED = [(NEMOTRON, ("--enable-prefix-caching", "--mamba-block-size", "256")),
           (NEMOTRON, ("--no-enable-prefix-caching",)),
           (NEMOTRON, ("--mamba-cache-dtype", "float32")),
           (JAMBA, ("--enable-prefix-caching", "--engine", "vllm==0.14.1")),
           ("Qwen/Qwen3-Next-80B-A3B-Thinking", ("--enable-prefix-caching", "--engine", "vllm==0.14.1")),
           (LLAMA, ("--enable-prefix-caching", "--mamba-block-size", "64")),
           (GEMMA3, ("--disable-sliding-window",)),
           (LLAMA, ("--max-loras", "4"))]


@pytest.mark.parametrize("model,flags", FLAGGED, ids=[f"{m.split('/')[1]}{''.join(f)}" for m, f in FLAGGED])
def test_every_note_a_flag_adds_to_estimate_is_in_check(model, flags):
    """What the flags add to estimate's notes on the model (model.rules less those without them): check's findings
    for the same flags (`kvplan check MODEL`, spelled as estimate spells them) carry each one."""
    base = [f for f in flags if f.startswith("--engine") or f.startswith("vllm==")]
    added = set(_rules(model, "-c", "4096", *flags)) - set(_rules(model, "-c", "4096", *base))
    assert added  # each case adds at least one
    r = run_kvplan("check", model, "-tp", "2", "--gpu", "H100", "-c", "4096", *flags, "--format", "json")
    messages = [f["message"] for row in json.loads(r.stdout)["results"] for f in row["findings"]]
    for note in added:
        assert any(note in message for message in messages), note
