"""The prompt kvplan times where none is asked (plan.default_prompt): the longest one the vLLM release admits at the
max model length. vLLM's front end, read by hand (v1/engine/processor.py, later input_processor.py):

- 0.11.0 processor.py:512 refuses only `prompt_len > max_prompt_len`: a prompt as long as the length is served.
- 0.11.1 processor.py:566 (`>`) and :602-604 (`prompt_len == max_prompt_len` ... `and not
  model_config.is_multimodal_model`): as long is refused for a text model, served for a multimodal class;
  0.16.0 input_processor.py:728 and :766-768 the same.
- 0.17.0 input_processor.py:373 (`>`) and :392 (`elif prompt_len == max_prompt_len and model_config.runner_type ==
  "generate"`): as long is refused for every generate model; 0.34.0 :569 and :588 the same.

So at -c 8192 the default prompt is 8,192 tokens where the release admits it (and for the ideal engine) and 8,191
where it keeps room for one output token. An asked --input-len still meets check_input_len unchanged."""

from __future__ import annotations

import pytest

from conftest import estimate_plan, one_error_line, run_kvplan

TEXT = "Qwen/Qwen3-8B"  # Qwen3ForCausalLM: no multimodal class
MULTIMODAL = "Qwen/Qwen2.5-VL-7B-Instruct"  # Qwen2_5_VLForConditionalGeneration: a multimodal class
KEEPS_ROOM = "keeps room for one output token"


def spec_of(model: str):
    from kvplan.model.sources import resolve

    return resolve(model, None)


# (release, text model's default prompt, multimodal model's) at a max model length of 8,192, by the lines above
BY_RELEASE = [
    ("0.11.0", 8192, 8192),  # processor.py:512: only longer is refused
    ("0.11.1", 8191, 8192),  # processor.py:602-604: as long refused, multimodal classes exempt
    ("0.16.0", 8191, 8192),  # input_processor.py:766-768: the same exemption
    ("0.17.0", 8191, 8191),  # input_processor.py:392: every generate model
    ("0.34.0", 8191, 8191),  # input_processor.py:588
]


@pytest.mark.parametrize("release, text, multimodal", BY_RELEASE)
def test_default_prompt_by_release(release, text, multimodal):
    from kvplan.plan.plan import default_prompt

    for model, expected in ((TEXT, text), (MULTIMODAL, multimodal)):
        prompt = default_prompt(8192, spec_of(model), release)
        assert prompt.tokens == expected, (model, release)
        assert prompt.note == (f"vLLM {release} {KEEPS_ROOM}" if expected == 8191 else None)


def test_ideal_engine_times_the_whole_length():
    from kvplan.plan.plan import default_prompt

    for model in (TEXT, MULTIMODAL):
        prompt = default_prompt(8192, spec_of(model), None)
        assert (prompt.tokens, prompt.note) == (8192, None)


def test_a_length_of_one_leaves_no_prompt_where_room_is_kept():
    """0.34.0 :569/:588: 1 token at max_model_len 1 is refused, and an empty prompt is too (:560-561, "cannot be
    empty"): no prefill is timed, the plan still is."""
    from kvplan.plan.plan import default_prompt

    assert default_prompt(1, spec_of(TEXT), "0.34.0").tokens == 0
    assert default_prompt(1, spec_of(TEXT), "0.11.0").tokens == 1
    plan = estimate_plan(TEXT, "--gpu", "H100", "-c", "1", "--engine", "vllm==0.34.0")
    assert plan["prefill"] is None and plan["context"] == 1


# --- estimate: the prompt timed, in JSON and in words ---------------------------------------------------------------

@pytest.mark.parametrize("engine, tokens, note", [
    ("vllm==0.34.0", 8191, f"vLLM 0.34.0 {KEEPS_ROOM}"),
    ("vllm==0.11.0", 8192, None),
    ("none", 8192, None),
])
def test_estimate_times_the_release_default(engine, tokens, note):
    prefill = estimate_plan(TEXT, "--gpu", "H100", "-c", "8K", "--engine", engine)["prefill"]
    assert (prefill["input_len"], prefill["input_len_note"]) == (tokens, note)
    assert prefill["chunks"] == 1 and prefill["chunk_tokens"] >= tokens  # 8,192-token chunks on an H100


def test_estimate_says_the_prompt_and_why():
    out = run_kvplan("estimate", TEXT, "--gpu", "H100", "-c", "8K", "--engine", "vllm==0.34.0")
    assert out.returncode == 0
    said = " ".join(out.stdout.split())  # the line wraps at the terminal's width
    assert f"Time to first token, 8,191-token prompt (vLLM 0.34.0 {KEEPS_ROOM}) at batch 1 (tp 1):" in said
    ideal = run_kvplan("estimate", TEXT, "--gpu", "H100", "-c", "8K", "--engine", "none")
    assert "Time to first token, 8,192-token prompt at batch 1 (tp 1):" in " ".join(ideal.stdout.split())


def test_asked_prompt_still_checked_and_carries_no_note():
    asked = estimate_plan(TEXT, "--gpu", "H100", "-c", "8K", "--input-len", "8191", "--engine", "vllm==0.34.0")
    assert (asked["prefill"]["input_len"], asked["prefill"]["input_len_note"]) == (8191, None)
    line = one_error_line(run_kvplan("estimate", TEXT, "--gpu", "H100", "-c", "8K", "--input-len", "8192",
                                     "--engine", "vllm==0.34.0"))
    assert "must be below -c (8,192) for vLLM 0.34.0" in line and line.endswith("at most 8,191.")


def test_longer_length_runs_in_more_chunks_one_token_short():
    """32,768 - 1 = 32,767 tokens in chunks of 4,096: ceil(32,767 / 4,096) = 8 chunks, the last of 4,095."""
    prefill = estimate_plan(TEXT, "--gpu", "H100", "-c", "32K", "--max-num-batched-tokens", "4096",
                            "--engine", "vllm==0.34.0")["prefill"]
    assert (prefill["input_len"], prefill["chunks"], prefill["chunk_tokens"]) == (32767, 8, 4096)


# --- verify: the prompt it times and estimates, decided before any GPU work ------------------------------------------

@pytest.mark.parametrize("version, tokens, note", [
    ("0.34.0", 8191, f"vLLM 0.34.0 {KEEPS_ROOM}"),  # input_processor.py:588
    (None, 8192, None),  # the ideal engine admits the whole length
])
def test_verify_prompt_at_one_chunk(version, tokens, note):
    from kvplan.verify.terms import ttft_prompt

    prompt = ttft_prompt(spec_of(TEXT), 8192, 8192, version)
    assert (prompt.tokens, prompt.note) == (tokens, note)


def test_verify_prompt_cut_to_one_chunk():
    """Verify times one forward pass: at -c 32768 with 8,192-token chunks the prompt is the chunk (32,767 > 8,192),
    and the release's rule is not why."""
    from kvplan.verify.terms import ttft_prompt

    prompt = ttft_prompt(spec_of(TEXT), 32768, 8192, "0.34.0")
    assert (prompt.tokens, prompt.note) == (8192, None)
    assert ttft_prompt(spec_of(TEXT), 8192, 8191, "0.34.0").note == f"vLLM 0.34.0 {KEEPS_ROOM}"  # both 8,191


def test_verify_refuses_a_length_with_no_prompt_before_torch():
    from kvplan.commands.verify import verify
    from kvplan.errors import FieldError

    with pytest.raises(FieldError) as caught:
        verify(TEXT, context=1, engine="vllm==0.34.0")
    assert caught.value.field == "context" and KEEPS_ROOM in caught.value.problem


def test_verify_says_the_prompt_and_why():
    from kvplan.render.verify import timing_lines

    result = {"decode": {"per_layer_fixed_us": 10.0, "per_layer_fixed_how": "how", "points": []},
              "prefill": {"input_len": 8191, "ttft_ms": 300.0, "estimate_ms": 310.0, "error": -0.03,
                          "input_len_note": f"vLLM 0.34.0 {KEEPS_ROOM}"}}
    assert timing_lines(result)[1].startswith(f"TTFT of one 8,191-token prompt (vLLM 0.34.0 {KEEPS_ROOM}): ")
    del result["prefill"]["input_len_note"]  # a result recorded before the note: as it was printed
    assert timing_lines(result)[1].startswith("TTFT of one 8,191-token prompt: ")
